#ifndef divaUnetrBlocks_h
#define divaUnetrBlocks_h

#include <torch/nn/functional/instancenorm.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/instancenorm.h>
#include <torch/nn/pimpl.h>

namespace diva
{
/** \brief A bare (transposed) convolution held under the child name "conv", as MONAI's Convolution with
 * conv_only=True is, so state-dict keys read "<name>.conv.weight". Padding keeps the size for odd kernels
 * ("same"); a transposed one with kernel = stride multiplies the size by the stride.
 * \ingroup DivAttention */
class ConvOnlyImpl : public torch::nn::Module
{
public:
  ConvOnlyImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, bool bias, bool transposed);
  torch::Tensor
  forward(const torch::Tensor & x);

  torch::nn::Conv3d          conv{ nullptr };
  torch::nn::ConvTranspose3d transposed_conv{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(ConvOnly);

/** \brief Two conv-3 -> instance norm (no affine) with LeakyReLU(0.01) and a residual (1x1x1 conv + norm when the
 * channels change), MONAI's UnetResBlock. \ingroup DivAttention */
class UnetResBlockImpl : public torch::nn::Module
{
public:
  UnetResBlockImpl(int64_t in, int64_t out, int64_t kernel);
  torch::Tensor
  forward(const torch::Tensor & x);

  ConvOnly                  conv1{ nullptr };
  ConvOnly                  conv2{ nullptr };
  ConvOnly                  conv3{ nullptr }; ///< residual projection, only when in != out
  torch::nn::InstanceNorm3d norm1{ nullptr };
  torch::nn::InstanceNorm3d norm2{ nullptr };
  torch::nn::InstanceNorm3d norm3{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(UnetResBlock);

/** \brief UNETR's first encoder path on the image itself (MONAI's UnetrBasicBlock: child "layer").
 * \ingroup DivAttention */
class UnetrBasicBlockImpl : public torch::nn::Module
{
public:
  UnetrBasicBlockImpl(int64_t in, int64_t out, int64_t kernel);
  torch::Tensor
  forward(const torch::Tensor & x);

  UnetResBlock layer{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(UnetrBasicBlock);

/** \brief Projects transformer tokens up to a skip resolution: a transposed conv, then `upsamplings` times
 * (transposed conv, residual block) (MONAI's UnetrPrUpBlock: "transp_conv_init", "blocks.i.0", "blocks.i.1").
 * \ingroup DivAttention */
class UnetrPrUpBlockImpl : public torch::nn::Module
{
public:
  UnetrPrUpBlockImpl(int64_t in, int64_t out, int64_t upsamplings, int64_t kernel, int64_t upsampleKernel);
  torch::Tensor
  forward(const torch::Tensor & x);

  ConvOnly              transp_conv_init{ nullptr };
  torch::nn::ModuleList blocks{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(UnetrPrUpBlock);

/** \brief Decoder step: transposed conv up, concatenate the skip, residual block (MONAI's UnetrUpBlock).
 * \ingroup DivAttention */
class UnetrUpBlockImpl : public torch::nn::Module
{
public:
  UnetrUpBlockImpl(int64_t in, int64_t out, int64_t kernel, int64_t upsampleKernel);
  torch::Tensor
  forward(const torch::Tensor & x, const torch::Tensor & skip);

  ConvOnly     transp_conv{ nullptr };
  UnetResBlock conv_block{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(UnetrUpBlock);

/** \brief 1x1x1 convolution with bias to the output channels (MONAI's UnetOutBlock). \ingroup DivAttention */
class UnetOutBlockImpl : public torch::nn::Module
{
public:
  UnetOutBlockImpl(int64_t in, int64_t out);
  torch::Tensor
  forward(const torch::Tensor & x);

  ConvOnly conv{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(UnetOutBlock);

} // namespace diva

#endif
