#ifndef divaCountedLayers_h
#define divaCountedLayers_h

#include "divaFlopCounter.h"

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

namespace diva
{
/** \brief Calls a layer and adds its FLOPs to the active FlopCountScope (if any). \ingroup DivAttention */
inline torch::Tensor
Counted(const torch::nn::Conv3d & conv, const torch::Tensor & input)
{
  auto output = conv.ptr()->forward(input);
  CountConvolution(output, conv->weight);
  return output;
}

/** \copydoc Counted(const torch::nn::Conv3d &, const torch::Tensor &) */
inline torch::Tensor
Counted(const torch::nn::ConvTranspose3d & conv, const torch::Tensor & input)
{
  auto output = conv.ptr()->forward(input);
  CountTransposedConvolution(input, conv->weight);
  return output;
}

/** \copydoc Counted(const torch::nn::Conv3d &, const torch::Tensor &) */
inline torch::Tensor
Counted(const torch::nn::Linear & linear, const torch::Tensor & input)
{
  auto output = linear.ptr()->forward(input);
  CountLinear(output, linear->options.in_features());
  return output;
}

} // namespace diva

#endif
