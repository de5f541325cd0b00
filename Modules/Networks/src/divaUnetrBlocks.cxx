#include "divaUnetrBlocks.h"

#include "divaCountedLayers.h"

#include <torch/nn/modules/container/sequential.h>

namespace diva
{
namespace
{
constexpr double kMonaiLeakySlope = 0.01; // MONAI's default "leakyrelu" act

// MONAI's "instance" norm: InstanceNorm3d with its PyTorch defaults (no affine, no running statistics).
torch::nn::InstanceNorm3d
MakeInstanceNorm(int64_t channels)
{
  return torch::nn::InstanceNorm3d(torch::nn::InstanceNorm3dOptions(channels));
}
} // namespace

ConvOnlyImpl::ConvOnlyImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, bool bias, bool transposed)
{
  // Registered under one name, "conv", whichever kind it is, so the keys match MONAI's.
  if (transposed)
  {
    transposed_conv = register_module(
      "conv", torch::nn::ConvTranspose3d(torch::nn::ConvTranspose3dOptions(in, out, kernel).stride(stride).bias(bias)));
  }
  else
  {
    conv = register_module(
      "conv",
      torch::nn::Conv3d(torch::nn::Conv3dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(bias)));
  }
}

torch::Tensor
ConvOnlyImpl::forward(const torch::Tensor & x)
{
  return conv ? Counted(conv, x) : Counted(transposed_conv, x);
}

UnetResBlockImpl::UnetResBlockImpl(int64_t in, int64_t out, int64_t kernel)
{
  conv1 = register_module("conv1", ConvOnly(in, out, kernel, 1, false, false));
  conv2 = register_module("conv2", ConvOnly(out, out, kernel, 1, false, false));
  norm1 = register_module("norm1", MakeInstanceNorm(out));
  norm2 = register_module("norm2", MakeInstanceNorm(out));
  if (in != out)
  {
    conv3 = register_module("conv3", ConvOnly(in, out, 1, 1, false, false));
    norm3 = register_module("norm3", MakeInstanceNorm(out));
  }
}

torch::Tensor
UnetResBlockImpl::forward(const torch::Tensor & x)
{
  // MONAI's order: conv-norm-act, conv-norm, + (norm of a 1x1x1 conv of) the input, act; fused for inference.
  const auto y = InstanceNorm3d(norm1, conv1(x), {}, kMonaiLeakySlope);
  const auto residual = conv3 ? InstanceNorm3d(norm3, conv3(x)) : x;
  return InstanceNorm3d(norm2, conv2(y), residual, kMonaiLeakySlope);
}

UnetrBasicBlockImpl::UnetrBasicBlockImpl(int64_t in, int64_t out, int64_t kernel)
{
  layer = register_module("layer", UnetResBlock(in, out, kernel));
}

torch::Tensor
UnetrBasicBlockImpl::forward(const torch::Tensor & x)
{
  return layer(x);
}

UnetrPrUpBlockImpl::UnetrPrUpBlockImpl(int64_t in,
                                       int64_t out,
                                       int64_t upsamplings,
                                       int64_t kernel,
                                       int64_t upsampleKernel)
{
  transp_conv_init =
    register_module("transp_conv_init", ConvOnly(in, out, upsampleKernel, upsampleKernel, false, true));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < upsamplings; ++i)
  {
    blocks->push_back(torch::nn::Sequential(ConvOnly(out, out, upsampleKernel, upsampleKernel, false, true),
                                            UnetResBlock(out, out, kernel)));
  }
}

torch::Tensor
UnetrPrUpBlockImpl::forward(const torch::Tensor & x)
{
  auto y = transp_conv_init(x);
  for (const auto & block : *blocks)
  {
    y = block->as<torch::nn::SequentialImpl>()->forward(y);
  }
  return y;
}

UnetrUpBlockImpl::UnetrUpBlockImpl(int64_t in, int64_t out, int64_t kernel, int64_t upsampleKernel)
{
  transp_conv = register_module("transp_conv", ConvOnly(in, out, upsampleKernel, upsampleKernel, false, true));
  conv_block = register_module("conv_block", UnetResBlock(2 * out, out, kernel));
}

torch::Tensor
UnetrUpBlockImpl::forward(const torch::Tensor & x, const torch::Tensor & skip)
{
  return conv_block(torch::cat({ transp_conv(x), skip }, 1));
}

UnetOutBlockImpl::UnetOutBlockImpl(int64_t in, int64_t out)
{
  conv = register_module("conv", ConvOnly(in, out, 1, 1, true, false));
}

torch::Tensor
UnetOutBlockImpl::forward(const torch::Tensor & x)
{
  return conv(x);
}

} // namespace diva
