// DivAttentionInYourNetwork: the div-attention module plugged into a network of your own, in a few lines.
//
// The paper's module is "plug-and-play": it sits between two adjacent decoder paths of any encoder-decoder, looks at
// where their predictions disagree (eq. 4), re-reads the input image there (eq. 5), and hands back fused features that
// replace the finer path's features. This example writes a small two-level 3D U-Net in the PyTorch C++ frontend
// (TORCH_MODULE style, nothing of DivAttention's own networks), plugs diva::DivAttentionBlock in between its two
// decoder levels, and checks that it trains: forward, loss, backward and one Adam step on a random 32^3 volume.
//
// Usage: DivAttentionInYourNetwork        (no arguments; LibTorch only, no ITK)
//
// It prints the output shapes, the range of the attention map (eq. 4 bounds it by 1/sqrt(D*H*W)), the parameter
// counts with and without the module, and that every parameter received a finite gradient. It returns non-zero if a
// shape, the attention bound, a gradient or the Adam step is not as expected.
#include "divaDivAttentionBlock.h"
#include "divaSegmentationLoss.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>

namespace
{
// Two 3x3x3 convolutions, each followed by instance normalisation and LeakyReLU (nnU-Net's building block). The
// convolutions have no bias: the normalisation right after them would cancel it.
torch::nn::Sequential
ConvBlock(int64_t in, int64_t out)
{
  namespace nn = torch::nn;
  return nn::Sequential(nn::Conv3d(nn::Conv3dOptions(in, out, 3).padding(1).bias(false)),
                        nn::InstanceNorm3d(nn::InstanceNorm3dOptions(out).affine(true)),
                        nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.01)),
                        nn::Conv3d(nn::Conv3dOptions(out, out, 3).padding(1).bias(false)),
                        nn::InstanceNorm3d(nn::InstanceNorm3dOptions(out).affine(true)),
                        nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.01)));
}

// What the network returns: the final logits, the module's own (deep-supervision) logits at the finer decoder level,
// and the module's attention map (eq. 4).
struct TinyOutput
{
  torch::Tensor logits;
  torch::Tensor intermediateLogits;
  torch::Tensor attention;
};

// Your network: a two-level 3D U-Net.
//
//   x ─ encoder1 ────────────────────────── (skip) ──┐
//         └ pool ─ encoder2 ─ decoder2 ─ up ─ concat ─┴─ decoder1 ─ head ─ logits
//                             (lower: O_1, 16^3)        (upper: O_2, 32^3)
//
// With div-attention, decoder1's output O_2 and decoder2's output O_1 go through the module, whose fused output
// replaces O_2 before the head.
class TinyUNetImpl : public torch::nn::Module
{
public:
  TinyUNetImpl(int64_t inChannels, int64_t outChannels, int64_t features, bool useDivAttention)
  {
    namespace nn = torch::nn;
    encoder1 = register_module("encoder1", ConvBlock(inChannels, features));
    encoder2 = register_module("encoder2", ConvBlock(features, 2 * features));
    decoder2 = register_module("decoder2", ConvBlock(2 * features, 2 * features));
    up = register_module("up", nn::ConvTranspose3d(nn::ConvTranspose3dOptions(2 * features, features, 2).stride(2)));
    decoder1 = register_module("decoder1", ConvBlock(2 * features, features));
    head = register_module("head", nn::Conv3d(nn::Conv3dOptions(features, outChannels, 1)));

    if (useDivAttention)
    {
      // (1) The module, told the channels of the finer path (upper), the coarser path (lower) and the input image,
      // the size ratio of the two paths (2, the default), and the channels of its own intermediate prediction.
      divAttention = register_module(
        "div_attention", diva::DivAttentionBlock(diva::DivAttentionOptions(features, 2 * features, inChannels)
                                                   .scale_factor(2)
                                                   .prediction_channels(outChannels)));
    }
  }

  TinyOutput
  forward(const torch::Tensor & x)
  {
    const auto skip = encoder1->forward(x);                                              // [N, f, 32^3]
    const auto lower = decoder2->forward(encoder2->forward(torch::max_pool3d(skip, 2))); // [N, 2f, 16^3]
    auto       upper = decoder1->forward(torch::cat({ up->forward(lower), skip }, 1));   // [N, f, 32^3]

    TinyOutput output;
    if (!divAttention.is_empty())
    {
      // (2) The plug: the module reads both decoder paths and the input image; its fused features replace the finer
      // path's features, and its logits and attention map come along for the loss and for review.
      const auto result = divAttention->forward(upper, lower, x);
      upper = result.fused;
      output.intermediateLogits = result.logits;
      output.attention = result.attention;
    }
    output.logits = head->forward(upper);
    return output;
  }

  torch::nn::Sequential      encoder1{ nullptr }, encoder2{ nullptr }, decoder2{ nullptr }, decoder1{ nullptr };
  torch::nn::ConvTranspose3d up{ nullptr };
  torch::nn::Conv3d          head{ nullptr };
  diva::DivAttentionBlock    divAttention{ nullptr };
};
TORCH_MODULE(TinyUNet);

int64_t
CountParameters(torch::nn::Module & module)
{
  int64_t count = 0;
  for (const auto & parameter : module.parameters())
  {
    count += parameter.numel();
  }
  return count;
}

int
Run()
{
  torch::manual_seed(2026);
  int failures = 0;
  // Prints the check and counts it as a failure when it does not hold.
  const auto check = [&failures](bool ok, const std::string & what)
  {
    std::cout << (ok ? "  ok      " : "  FAILED  ") << what << std::endl;
    failures += ok ? 0 : 1;
  };

  constexpr int64_t size = 32, features = 8, classes = 2; // two-class softmax output, as DivAttention's networks

  // Random input: one CT-like channel of noise with a brighter ball in it; the target is the ball.
  const auto grid = torch::arange(size, torch::kFloat32) - (size - 1) / 2.0;
  const auto radius2 =
    grid.view({ size, 1, 1 }).pow(2) + grid.view({ 1, size, 1 }).pow(2) + grid.view({ 1, 1, size }).pow(2);
  const auto target = (radius2 < 81.0).to(torch::kFloat32).view({ 1, 1, size, size, size });
  const auto image = torch::randn({ 1, 1, size, size, size }) + 2.0 * target;

  TinyUNet baseline(1, classes, features, false);
  TinyUNet network(1, classes, features, true);
  std::cout << "parameters: " << CountParameters(*baseline) << " without div-attention, " << CountParameters(*network)
            << " with it (+" << CountParameters(*network->divAttention) << " in the module)" << std::endl;

  // --- Forward. ---
  network->train();
  const auto output = network->forward(image);
  std::cout << "input " << image.sizes() << " -> logits " << output.logits.sizes() << ", intermediate logits "
            << output.intermediateLogits.sizes() << ", attention " << output.attention.sizes() << std::endl;
  const double bound = 1.0 / std::sqrt(static_cast<double>(size * size * size));
  const double attentionMin = output.attention.min().item<double>();
  const double attentionMax = output.attention.max().item<double>();
  std::cout << "attention map: min " << attentionMin << ", max " << attentionMax
            << " (eq. 4 bound 1/sqrt(32^3) = " << bound << ", a uniform map "
            << bound / static_cast<double>(size * size * size) << "); each channel sums to "
            << output.attention.sum({ 2, 3, 4 }).mean().item<double>() << std::endl;
  check(output.logits.sizes() == torch::IntArrayRef({ 1, classes, size, size, size }), "logits are [1, 2, 32, 32, 32]");
  check(output.intermediateLogits.sizes() == output.logits.sizes(), "the module's logits have the same shape");
  check(output.attention.sizes() == torch::IntArrayRef({ 1, features, size, size, size }),
        "the attention map is [1, 8, 32, 32, 32] (the finer path's channels and size)");
  check(attentionMin >= 0.0 && attentionMax <= bound * (1.0 + 1e-5), "attention values lie in [0, 1/sqrt(D*H*W)]");

  // --- One training step: the paper's loss (weighted BCE + Dice, eq. 8) on the final output plus half of it on the
  // module's own prediction (deep supervision), backward, Adam. ---
  torch::optim::Adam                  optimizer(network->parameters(), torch::optim::AdamOptions(1e-3));
  const diva::SegmentationLossOptions lossOptions;
  const auto                          lossOf = [&](const TinyOutput & o)
  {
    return diva::SegmentationLoss(o.logits, target, lossOptions) +
           0.5 * diva::SegmentationLoss(o.intermediateLogits, target, lossOptions);
  };
  optimizer.zero_grad();
  const auto loss = lossOf(output);
  loss.backward();

  int64_t withGradient = 0, zeroGradient = 0, total = 0;
  for (const auto & parameter : network->named_parameters())
  {
    ++total;
    const auto & gradient = parameter.value().grad();
    if (gradient.defined() && torch::isfinite(gradient).all().item<bool>())
    {
      ++withGradient;
      // A bias right before an instance normalisation (e.g. in the module's image branch) is cancelled by it, so its
      // gradient is (numerically) zero: it still is a gradient, but worth knowing.
      if (gradient.abs().max().item<double>() < 1e-9)
      {
        std::cout << "  zero gradient: " << parameter.key() << std::endl;
        ++zeroGradient;
      }
    }
    else
    {
      std::cout << "  no gradient: " << parameter.key() << std::endl;
    }
  }
  std::cout << "gradients: " << withGradient << " of " << total << " parameter tensors have a finite gradient ("
            << zeroGradient << " of them zero)" << std::endl;
  check(withGradient == total, "every parameter got a gradient");

  const auto before = network->divAttention->fuse_conv->weight.clone();
  optimizer.step();
  const double       change = (network->divAttention->fuse_conv->weight - before).abs().max().item<double>();
  torch::NoGradGuard noGradient;
  const double       lossAfter = lossOf(network->forward(image)).item<double>();
  std::cout << "Adam step: loss " << loss.item<double>() << " -> " << lossAfter
            << ", largest change of the module's fusion weights " << change << std::endl;
  check(change > 0.0 && std::isfinite(lossAfter), "Adam updated the module's weights and the loss stays finite");

  std::cout << (failures == 0 ? "all checks passed" : "some checks FAILED") << std::endl;
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
} // namespace

int
main()
{
  try
  {
    return Run();
  }
  catch (const std::exception & error) // c10::Error is a std::exception
  {
    std::cerr << "DivAttentionInYourNetwork: " << error.what() << std::endl;
    return EXIT_FAILURE;
  }
}
