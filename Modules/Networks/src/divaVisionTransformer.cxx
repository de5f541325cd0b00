#include "divaVisionTransformer.h"

#include "divaCountedLayers.h"
#include "divaWeightInitialization.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/dropout.h>
#include <torch/nn/init.h>

#include <cmath>
#include <stdexcept>
#include <string>

namespace diva
{
namespace F = torch::nn::functional;

namespace
{
torch::Tensor
Dropout(const torch::Tensor & x, double rate, bool training)
{
  return rate > 0.0 ? F::dropout(x, F::DropoutFuncOptions().p(rate).training(training)) : x;
}

// MONAI initialises linear weights from a normal of std 0.02 truncated at +-2 (absolute, i.e. ~100 sigma: the
// truncation never bites), biases at 0.
torch::nn::Linear
MakeLinear(int64_t in, int64_t out, bool bias)
{
  torch::nn::Linear  linear(torch::nn::LinearOptions(in, out).bias(bias));
  torch::NoGradGuard noGrad;
  if (WeightInitializationSkipped())
  {
    return linear; // weights about to be loaded (divaWeightInitialization.h)
  }
  linear->weight.normal_(0.0, 0.02);
  if (bias)
  {
    linear->bias.zero_();
  }
  return linear;
}

torch::nn::LayerNorm
MakeLayerNorm(int64_t features)
{
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({ features }).eps(1e-5));
}
} // namespace

PatchEmbeddingBlockImpl::PatchEmbeddingBlockImpl(const VisionTransformerOptions & opts) : options(opts)
{
  if (options.patch_size() <= 0 || options.image_size() <= 0 || options.image_size() % options.patch_size() != 0)
  {
    throw std::invalid_argument("PatchEmbeddingBlock: image size " + std::to_string(options.image_size()) +
                                " must be a positive multiple of patch size " + std::to_string(options.patch_size()));
  }
  const int64_t side = options.image_size() / options.patch_size();
  patch_embeddings = register_module(
    "patch_embeddings",
    torch::nn::Conv3d(torch::nn::Conv3dOptions(options.in_channels(), options.hidden_size(), options.patch_size())
                        .stride(options.patch_size())));
  auto embeddings = torch::zeros({ 1, side * side * side, options.hidden_size() });
  if (!WeightInitializationSkipped())
  {
    embeddings.normal_(0.0, 0.02);
  }
  position_embeddings = register_parameter("position_embeddings", embeddings);
}

torch::Tensor
PatchEmbeddingBlockImpl::forward(const torch::Tensor & image)
{
  const auto patches = Counted(patch_embeddings, image).flatten(2).transpose(1, 2);
  if (patches.size(1) != position_embeddings.size(1))
  {
    throw std::invalid_argument("PatchEmbeddingBlock: the input " + std::to_string(image.size(2)) + "x" +
                                std::to_string(image.size(3)) + "x" + std::to_string(image.size(4)) +
                                " does not match the image size the position embedding was built for (" +
                                std::to_string(options.image_size()) + " per side)");
  }
  return Dropout(patches + position_embeddings, options.dropout_rate(), is_training());
}

SelfAttentionBlockImpl::SelfAttentionBlockImpl(const VisionTransformerOptions & opts) : options(opts)
{
  if (options.num_heads() <= 0 || options.hidden_size() % options.num_heads() != 0)
  {
    throw std::invalid_argument("SelfAttentionBlock: hidden size " + std::to_string(options.hidden_size()) +
                                " must be divisible by the number of heads " + std::to_string(options.num_heads()));
  }
  qkv = register_module("qkv", MakeLinear(options.hidden_size(), 3 * options.hidden_size(), options.qkv_bias()));
  out_proj = register_module("out_proj", MakeLinear(options.hidden_size(), options.hidden_size(), true));
}

torch::Tensor
SelfAttentionBlockImpl::forward(const torch::Tensor & tokens)
{
  const int64_t batch = tokens.size(0);
  const int64_t length = tokens.size(1);
  const int64_t heads = options.num_heads();
  const int64_t headDim = options.hidden_size() / heads;
  // [N, L, 3*hidden] -> [3, N, heads, L, headDim], the layout of MONAI's "b h (qkv l d) -> qkv b l h d".
  const auto qkvHeads = Counted(qkv, tokens).view({ batch, length, 3, heads, headDim }).permute({ 2, 0, 3, 1, 4 });
  const auto query = qkvHeads[0];
  const auto key = qkvHeads[1];
  const auto value = qkvHeads[2];
  auto       weights = torch::softmax(torch::matmul(query, key.transpose(-2, -1)) / std::sqrt(double(headDim)), -1);
  weights = Dropout(weights, options.dropout_rate(), is_training());
  const auto mixed = torch::matmul(weights, value).permute({ 0, 2, 1, 3 }).reshape({ batch, length, heads * headDim });
  CountFlops(4.0 * double(batch) * double(heads) * double(length) * double(length) * double(headDim));
  return Dropout(Counted(out_proj, mixed), options.dropout_rate(), is_training());
}

MLPBlockImpl::MLPBlockImpl(const VisionTransformerOptions & opts) : options(opts)
{
  linear1 = register_module("linear1", MakeLinear(options.hidden_size(), options.mlp_dim(), true));
  linear2 = register_module("linear2", MakeLinear(options.mlp_dim(), options.hidden_size(), true));
}

torch::Tensor
MLPBlockImpl::forward(const torch::Tensor & tokens)
{
  auto x = Dropout(F::gelu(Counted(linear1, tokens)), options.dropout_rate(), is_training());
  return Dropout(Counted(linear2, x), options.dropout_rate(), is_training());
}

TransformerBlockImpl::TransformerBlockImpl(const VisionTransformerOptions & options)
{
  mlp = register_module("mlp", MLPBlock(options));
  norm1 = register_module("norm1", MakeLayerNorm(options.hidden_size()));
  attn = register_module("attn", SelfAttentionBlock(options));
  norm2 = register_module("norm2", MakeLayerNorm(options.hidden_size()));
}

torch::Tensor
TransformerBlockImpl::forward(const torch::Tensor & tokens)
{
  auto x = tokens + attn(norm1(tokens));
  return x + mlp(norm2(x));
}

VisionTransformerImpl::VisionTransformerImpl(const VisionTransformerOptions & opts) : options(opts)
{
  patch_embedding = register_module("patch_embedding", PatchEmbeddingBlock(options));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t layer = 0; layer < options.num_layers(); ++layer)
  {
    blocks->push_back(TransformerBlock(options));
  }
  norm = register_module("norm", MakeLayerNorm(options.hidden_size()));
}

std::pair<torch::Tensor, std::vector<torch::Tensor>>
VisionTransformerImpl::forward(const torch::Tensor & image)
{
  auto                       x = patch_embedding(image);
  std::vector<torch::Tensor> hiddenStates;
  hiddenStates.reserve(blocks->size());
  for (const auto & block : *blocks)
  {
    x = block->as<TransformerBlockImpl>()->forward(x);
    hiddenStates.push_back(x);
  }
  return { norm(x), std::move(hiddenStates) };
}

} // namespace diva
