#ifndef divaCountedLayers_h
#define divaCountedLayers_h

#include "divaCpuKernelSelection.h"
#include "divaFlopCounter.h"

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <variant>

namespace diva
{
namespace detail
{
/** The alternative T held by a convolution option's variant, or nullptr. Unqualified `get_if` finds std::get_if or,
 * by argument-dependent lookup, c10::get_if: LibTorch 1.13 holds these options in c10::variant, LibTorch 2.x in
 * std::variant. */
template<typename T, typename Variant>
const T *
Alternative(const Variant & option)
{
  using std::get_if;
  return get_if<T>(&option);
}
} // namespace detail

/** \brief Calls a layer and adds its FLOPs to the active FlopCountScope (if any). \ingroup DivAttention */
inline torch::Tensor
Counted(const torch::nn::Conv3d & conv, const torch::Tensor & input)
{
  const auto &  o = conv->options;
  const auto *  padding = detail::Alternative<torch::ExpandingArray<3>>(o.padding());
  torch::Tensor output;
  if (padding != nullptr && detail::Alternative<torch::enumtype::kZeros>(o.padding_mode()) != nullptr)
  {
    // The CPU kernel selection (divaCpuKernelSelection.h); on CUDA it is torch::conv3d, as forward() would call.
    output = Convolution3d(input, conv->weight, conv->bias, *o.stride(), **padding, *o.dilation(), o.groups());
  }
  else
  {
    output = conv.ptr()->forward(input);
  }
  CountConvolution(output, conv->weight);
  return output;
}

/** \copydoc Counted(const torch::nn::Conv3d &, const torch::Tensor &) */
inline torch::Tensor
Counted(const torch::nn::ConvTranspose3d & conv, const torch::Tensor & input)
{
  const auto &  o = conv->options;
  torch::Tensor output;
  const auto *  padding = detail::Alternative<torch::ExpandingArray<3>>(o.padding());
  if (padding != nullptr && detail::Alternative<torch::enumtype::kZeros>(o.padding_mode()) != nullptr)
  {
    // The CPU kernel selection (divaCpuKernelSelection.h); forward() without an output size computes the same.
    output = TransposedConvolution3d(input, conv->weight, conv->bias, *o.stride(), **padding, *o.output_padding(),
                                     o.groups(), *o.dilation());
  }
  else
  {
    output = conv.ptr()->forward(input);
  }
  CountTransposedConvolution(input, conv->weight);
  return output;
}

/** \copydoc Counted(const torch::nn::Conv3d &, const torch::Tensor &) */
inline torch::Tensor
Counted(const torch::nn::Linear & linear, const torch::Tensor & input)
{
  auto output = Linear(input, linear->weight, linear->bias);
  CountLinear(output, linear->options.in_features());
  return output;
}

} // namespace diva

#endif
