#include "divaFlopCounter.h"

namespace diva
{
namespace
{
thread_local bool   t_Counting = false;
thread_local double t_Flops = 0.0;

double
WeightVolumePerOutputChannel(const torch::Tensor & weight)
{
  // Conv weight: [out, in/groups, k...]; transposed: [in, out/groups, k...]. Either way numel / size(0) is what one
  // element of the "driving" tensor multiplies with.
  return static_cast<double>(weight.numel()) / static_cast<double>(weight.size(0));
}
} // namespace

FlopCountScope::FlopCountScope() : m_Start(t_Flops), m_WasCounting(t_Counting)
{
  t_Counting = true;
}

FlopCountScope::~FlopCountScope()
{
  t_Counting = m_WasCounting;
}

double
FlopCountScope::Flops() const
{
  return t_Flops - m_Start;
}

void
CountConvolution(const torch::Tensor & output, const torch::Tensor & weight)
{
  if (t_Counting)
  {
    t_Flops += 2.0 * static_cast<double>(output.numel()) * WeightVolumePerOutputChannel(weight);
  }
}

void
CountTransposedConvolution(const torch::Tensor & input, const torch::Tensor & weight)
{
  if (t_Counting)
  {
    t_Flops += 2.0 * static_cast<double>(input.numel()) * WeightVolumePerOutputChannel(weight);
  }
}

void
CountLinear(const torch::Tensor & output, int64_t inputFeatures)
{
  if (t_Counting)
  {
    t_Flops += 2.0 * static_cast<double>(output.numel()) * static_cast<double>(inputFeatures);
  }
}

void
CountFlops(double flops)
{
  if (t_Counting)
  {
    t_Flops += flops;
  }
}

} // namespace diva
