#ifndef divaWeightInitialization_h
#define divaWeightInitialization_h

namespace diva
{
/** \brief While an object of this class lives, networks built on its thread skip the project's own weight
 * initialisation (e.g. the transformer's N(0, 0.02) linear weights, as MONAI's); LibTorch's default initialisation of
 * each layer still runs, so the network is always usable.
 *
 * Why: LoadModel builds a network only to overwrite every weight with the file's; drawing 85 M normal numbers for
 * UNETR `paper` first cost ~0.27 s of its ~1 s load. Nests; restores the previous state when destroyed.
 * \ingroup DivAttention
 */
class SkipWeightInitialization
{
public:
  SkipWeightInitialization();
  ~SkipWeightInitialization();
  SkipWeightInitialization(const SkipWeightInitialization &) = delete;
  SkipWeightInitialization &
  operator=(const SkipWeightInitialization &) = delete;

private:
  bool m_Previous;
};

/** Whether a SkipWeightInitialization is alive on this thread. */
bool
WeightInitializationSkipped();

} // namespace diva

#endif
