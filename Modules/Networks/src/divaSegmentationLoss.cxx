#include "divaSegmentationLoss.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/upsampling.h>

#include <sstream>
#include <stdexcept>

namespace diva
{
namespace F = torch::nn::functional;

namespace
{
struct LogProbabilities
{
  torch::Tensor logForeground;
  torch::Tensor logBackground;
};

void
CheckLogits(const torch::Tensor & logits, const char * caller)
{
  if (!logits.defined() || logits.dim() < 3 || (logits.size(1) != 1 && logits.size(1) != 2))
  {
    std::ostringstream message;
    message << caller << ": logits must be [N, 1 or 2, ...]";
    if (logits.defined())
    {
      message << ", got " << logits.sizes();
    }
    throw std::invalid_argument(message.str());
  }
}

// Computed from logits with log-sigmoid / log-softmax so that confident predictions do not give log(0).
LogProbabilities
ComputeLogProbabilities(const torch::Tensor & logits)
{
  if (logits.size(1) == 1)
  {
    return { F::logsigmoid(logits), F::logsigmoid(-logits) };
  }
  const auto logSoftmax = torch::log_softmax(logits, 1);
  return { logSoftmax.narrow(1, 1, 1), logSoftmax.narrow(1, 0, 1) };
}

torch::Tensor
AsChannelTarget(const torch::Tensor & logits, const torch::Tensor & target, const char * caller)
{
  auto t = target.dim() == logits.dim() - 1 ? target.unsqueeze(1) : target;
  if (t.dim() != logits.dim() || t.size(1) != 1 || t.size(0) != logits.size(0) ||
      t.sizes().slice(2) != logits.sizes().slice(2))
  {
    std::ostringstream message;
    message << caller << ": the target " << target.sizes() << " does not match the logits " << logits.sizes()
            << " (expected [N, 1, ...] or [N, ...] with the logits' N and spatial size)";
    throw std::invalid_argument(message.str());
  }
  return t.to(logits.dtype());
}
} // namespace

std::string
ToString(DiceForm form)
{
  return form == DiceForm::Standard ? "standard" : "as-printed";
}

DiceForm
ParseDiceForm(const std::string & text)
{
  if (text == "standard")
  {
    return DiceForm::Standard;
  }
  if (text == "as-printed")
  {
    return DiceForm::AsPrinted;
  }
  throw std::invalid_argument("Dice form must be 'standard' or 'as-printed', got '" + text + "'");
}

torch::Tensor
ForegroundProbability(const torch::Tensor & logits)
{
  CheckLogits(logits, "ForegroundProbability");
  return logits.size(1) == 1 ? torch::sigmoid(logits) : torch::softmax(logits, 1).narrow(1, 1, 1);
}

torch::Tensor
WeightedBinaryCrossEntropy(const torch::Tensor & logits, const torch::Tensor & target, double gamma)
{
  CheckLogits(logits, "WeightedBinaryCrossEntropy");
  const auto y = AsChannelTarget(logits, target, "WeightedBinaryCrossEntropy");
  const auto logs = ComputeLogProbabilities(logits);
  return -((1.0 - y) * logs.logBackground + gamma * y * logs.logForeground).mean();
}

torch::Tensor
SoftDiceLoss(const torch::Tensor & logits, const torch::Tensor & target, DiceForm form, double smooth)
{
  CheckLogits(logits, "SoftDiceLoss");
  const auto y = AsChannelTarget(logits, target, "SoftDiceLoss").flatten(1);
  const auto p = ForegroundProbability(logits).flatten(1);
  const auto overlap = (p * y).sum(1);
  auto       denominator = p.sum(1) + y.sum(1) + smooth;
  if (form == DiceForm::AsPrinted)
  {
    denominator = denominator + overlap;
  }
  return (1.0 - (2.0 * overlap + smooth) / denominator).mean();
}

torch::Tensor
SegmentationLoss(const torch::Tensor & logits, const torch::Tensor & target, const SegmentationLossOptions & options)
{
  return options.alpha() * WeightedBinaryCrossEntropy(logits, target, options.gamma()) +
         options.beta() * SoftDiceLoss(logits, target, options.dice_form(), options.smooth());
}

std::vector<double>
DeepSupervisionWeights(std::size_t outputs, bool zeroLowest)
{
  std::vector<double> weights(outputs);
  double              weight = 1.0;
  for (auto & w : weights)
  {
    w = weight;
    weight *= 0.5;
  }
  if (zeroLowest && outputs > 1)
  {
    weights.back() = 0.0;
  }
  double sum = 0.0;
  for (const auto w : weights)
  {
    sum += w;
  }
  for (auto & w : weights)
  {
    w /= sum;
  }
  return weights;
}

torch::Tensor
DeepSupervisedLoss(const SegmentationOutput &      output,
                   const torch::Tensor &           target,
                   const SegmentationLossOptions & options)
{
  std::vector<torch::Tensor> outputs{ output.logits };
  outputs.insert(outputs.end(), output.intermediateLogits.begin(), output.intermediateLogits.end());
  const auto weights = DeepSupervisionWeights(outputs.size(), options.zero_lowest_weight());
  const auto fullTarget = AsChannelTarget(output.logits, target, "DeepSupervisedLoss");
  auto       total = torch::zeros({}, output.logits.options());
  for (std::size_t i = 0; i < outputs.size(); ++i)
  {
    if (weights[i] == 0.0)
    {
      continue;
    }
    auto levelTarget = fullTarget;
    if (outputs[i].sizes().slice(2) != fullTarget.sizes().slice(2))
    {
      levelTarget = F::interpolate(
        fullTarget, F::InterpolateFuncOptions()
                      .size(std::vector<int64_t>(outputs[i].sizes().begin() + 2, outputs[i].sizes().end()))
                      .mode(torch::kNearest));
    }
    total = total + weights[i] * SegmentationLoss(outputs[i], levelTarget, options);
  }
  return total;
}

} // namespace diva
