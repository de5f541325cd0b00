#ifndef divaThreadBudget_h
#define divaThreadBudget_h

namespace diva
{
/** \brief The number of CPU threads LibTorch (and the BLAS under it) may use.
 *
 * LibTorch runs its intra-op work on an OpenMP pool, and Debian's OpenBLAS (the pthread flavour) keeps a pool of its
 * own; left alone, each sizes itself to the machine and they oversubscribe the cores when one calls the other. This
 * sets both to the same budget. The ITK side (itk::DivAttentionRuntime::SetThreadBudget) calls this and also sets
 * ITK's global default number of threads, so one call governs everything.
 * \ingroup DivAttention
 */
void
SetTorchThreadBudget(int threads);

/** The budget last set (or the default if never set). */
int
GetTorchThreadBudget();

/** The default budget: $DIVATTENTION_NUM_THREADS if set and valid, else the CPUs this process may run on
 * (sched_getaffinity, so container CPU limits by cpuset are honoured). */
int
DefaultThreadBudget();

} // namespace diva

#endif
