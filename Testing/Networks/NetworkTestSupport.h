// Shared helpers of the network tests: a phantom patch and a bounded overfitting loop.
#ifndef NetworkTestSupport_h
#define NetworkTestSupport_h

#include "divaSegmentationLoss.h"
#include "divaSegmentationMetrics.h"
#include "divaSegmentationNetwork.h"

#include "DivAttentionTestDevice.h"

#include <torch/torch.h>

#include <utility>

namespace diva::testing
{
/** A bright ellipsoid (the "lesion") on a noisy background, [1, channels, side^3]; channel 1 (if any) is a click map
 * (distance to the lesion centre, as the stage-1 input has), and the mask [1, 1, side^3]. Deterministic (drawn on the
 * CPU), then moved to the test device (TestDevice()). */
inline std::pair<torch::Tensor, torch::Tensor>
MakePhantom(int64_t side, int64_t channels = 1)
{
  torch::manual_seed(7);
  const auto axis = torch::linspace(-1.0, 1.0, side);
  const auto grids = torch::meshgrid({ axis, axis, axis }, "ij");
  const auto z = grids[0] - 0.1;
  const auto y = grids[1] + 0.15;
  const auto x = grids[2];
  const auto inside = (z * z / 0.25 + y * y / 0.16 + x * x / 0.3).le(1.0);
  const auto mask = inside.to(torch::kFloat32).view({ 1, 1, side, side, side });
  auto       image = mask * 1.0 + 0.3 * torch::randn({ 1, 1, side, side, side });
  if (channels == 2)
  {
    const auto click = (z * z + y * y + x * x).sqrt().view({ 1, 1, side, side, side });
    image = torch::cat({ image, click }, 1);
  }
  const auto device = TestDevice();
  return { image.to(device), mask.to(device) };
}

/** Trains on one phantom with Adam until the final output's Dice exceeds 0.9 or maxSteps pass; returns
 * {steps taken, Dice reached}. */
inline std::pair<int, double>
Overfit(SegmentationNetworkImpl & network,
        const torch::Tensor &     image,
        const torch::Tensor &     mask,
        int                       maxSteps,
        double                    learningRate)
{
  network.to(image.device());
  network.train();
  torch::optim::Adam optimizer(network.parameters(), torch::optim::AdamOptions(learningRate));
  double             dice = 0.0;
  for (int step = 1; step <= maxSteps; ++step)
  {
    optimizer.zero_grad();
    const auto output = network.Segment(image);
    const auto loss = DeepSupervisedLoss(output, mask, SegmentationLossOptions());
    loss.backward();
    optimizer.step();
    const auto prediction = ForegroundProbability(output.logits.detach()).gt(0.5);
    dice = ComputeBinaryMetrics(prediction, mask).dice;
    if (dice > 0.9)
    {
      return { step, dice };
    }
  }
  return { maxSteps, dice };
}

/** Names of the parameters that received no gradient, or a non-finite one, after one backward of the full loss. */
inline std::vector<std::string>
ParametersWithoutGradient(SegmentationNetworkImpl & network, const torch::Tensor & image, const torch::Tensor & mask)
{
  network.to(image.device());
  network.train();
  network.zero_grad();
  const auto output = network.Segment(image);
  DeepSupervisedLoss(output, mask, SegmentationLossOptions()).backward();
  std::vector<std::string> missing;
  for (const auto & item : network.named_parameters())
  {
    const auto & grad = item.value().grad();
    if (!grad.defined() || !torch::isfinite(grad).all().item<bool>() || grad.abs().sum().item<double>() == 0.0)
    {
      missing.push_back(item.key());
    }
  }
  return missing;
}

} // namespace diva::testing

#endif
