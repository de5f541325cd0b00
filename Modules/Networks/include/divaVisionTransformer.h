#ifndef divaVisionTransformer_h
#define divaVisionTransformer_h

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <utility>
#include <vector>

namespace diva
{
/** \brief Options of the 3D vision transformer UNETR encodes with (MONAI's ViT, classification off).
 * \ingroup DivAttention */
struct VisionTransformerOptions
{
  TORCH_ARG(int64_t, in_channels) = 1;
  TORCH_ARG(int64_t, image_size) = 96; ///< cubic input side (the learnable position embedding fixes it)
  TORCH_ARG(int64_t, patch_size) = 16;
  TORCH_ARG(int64_t, hidden_size) = 768;
  TORCH_ARG(int64_t, mlp_dim) = 3072;
  TORCH_ARG(int64_t, num_layers) = 12;
  TORCH_ARG(int64_t, num_heads) = 12;
  TORCH_ARG(double, dropout_rate) = 0.0;
  TORCH_ARG(bool, qkv_bias) = false;
};

/** \brief Convolutional patch embedding plus a learnable position embedding (MONAI's PatchEmbeddingBlock, "conv").
 * \ingroup DivAttention */
class PatchEmbeddingBlockImpl : public torch::nn::Module
{
public:
  explicit PatchEmbeddingBlockImpl(const VisionTransformerOptions & options);
  /** [N, C, D, H, W] -> [N, patches, hidden]. */
  torch::Tensor
  forward(const torch::Tensor & image);

  VisionTransformerOptions options;
  torch::nn::Conv3d        patch_embeddings{ nullptr };
  torch::Tensor            position_embeddings;
};
/** \ingroup DivAttention */
TORCH_MODULE(PatchEmbeddingBlock);

/** \brief Multi-head self-attention (MONAI's SABlock: one qkv projection laid out [q|k|v][head][dim]).
 * \ingroup DivAttention */
class SelfAttentionBlockImpl : public torch::nn::Module
{
public:
  explicit SelfAttentionBlockImpl(const VisionTransformerOptions & options);
  torch::Tensor
  forward(const torch::Tensor & tokens);

  VisionTransformerOptions options;
  torch::nn::Linear        qkv{ nullptr };
  torch::nn::Linear        out_proj{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(SelfAttentionBlock);

/** \brief Two linear layers with GELU between (MONAI's MLPBlock). \ingroup DivAttention */
class MLPBlockImpl : public torch::nn::Module
{
public:
  explicit MLPBlockImpl(const VisionTransformerOptions & options);
  torch::Tensor
  forward(const torch::Tensor & tokens);

  VisionTransformerOptions options;
  torch::nn::Linear        linear1{ nullptr };
  torch::nn::Linear        linear2{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(MLPBlock);

/** \brief Pre-norm transformer layer: x + attn(norm1(x)), then + mlp(norm2(x)) (MONAI's TransformerBlock).
 * \ingroup DivAttention */
class TransformerBlockImpl : public torch::nn::Module
{
public:
  explicit TransformerBlockImpl(const VisionTransformerOptions & options);
  torch::Tensor
  forward(const torch::Tensor & tokens);

  MLPBlock             mlp{ nullptr };
  torch::nn::LayerNorm norm1{ nullptr };
  SelfAttentionBlock   attn{ nullptr };
  torch::nn::LayerNorm norm2{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(TransformerBlock);

/** \brief The encoder of UNETR (MONAI's ViT without classification head). \ingroup DivAttention */
class VisionTransformerImpl : public torch::nn::Module
{
public:
  explicit VisionTransformerImpl(const VisionTransformerOptions & options);
  /** Returns the final (layer-normed) tokens and the tokens after every block (not normed), as MONAI does. */
  std::pair<torch::Tensor, std::vector<torch::Tensor>>
  forward(const torch::Tensor & image);

  VisionTransformerOptions options;
  PatchEmbeddingBlock      patch_embedding{ nullptr };
  torch::nn::ModuleList    blocks{ nullptr };
  torch::nn::LayerNorm     norm{ nullptr };
};
/** \ingroup DivAttention */
TORCH_MODULE(VisionTransformer);

} // namespace diva

#endif
