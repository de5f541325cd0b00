#ifndef divaFlopCounter_h
#define divaFlopCounter_h

#include <torch/types.h>

namespace diva
{
/** \brief Counts the floating-point operations of the networks' convolutions, linear layers and matrix products.
 *
 * Why: benchmarks report GFLOP/s achieved, and a count taken from the very tensors a forward pass produced cannot
 * drift from the architecture the way a hand formula does. Counting is off unless a FlopCountScope is alive on the
 * calling thread, so the cost in normal use is one thread-local flag test per layer. One multiply-add counts as two
 * FLOPs; norms, activations and element-wise sums are not counted (they are memory-bound and < 2 % here).
 * \ingroup DivAttention
 */
class FlopCountScope
{
public:
  FlopCountScope();
  ~FlopCountScope();
  FlopCountScope(const FlopCountScope &) = delete;
  FlopCountScope &
  operator=(const FlopCountScope &) = delete;

  /** FLOPs counted on this thread since this scope began. */
  double
  Flops() const;

private:
  double m_Start;
  bool   m_WasCounting;
};

/** Adds a convolution's FLOPs: 2 * output elements * (input channels / groups) * kernel volume. */
void
CountConvolution(const torch::Tensor & output, const torch::Tensor & weight);

/** Adds a transposed convolution's FLOPs: every input element meets (output channels / groups) * kernel volume. */
void
CountTransposedConvolution(const torch::Tensor & input, const torch::Tensor & weight);

/** Adds a linear layer's FLOPs: 2 * output elements * input features. */
void
CountLinear(const torch::Tensor & output, int64_t inputFeatures);

/** Adds raw FLOPs (e.g. attention's batched matrix products). */
void
CountFlops(double flops);

} // namespace diva

#endif
