#include "divaSegmentationMetrics.h"

#include <sstream>
#include <stdexcept>

namespace diva
{
namespace
{
double
RatioOrOne(int64_t numerator, int64_t denominator)
{
  return denominator == 0 ? 1.0 : static_cast<double>(numerator) / static_cast<double>(denominator);
}
} // namespace

BinaryMetrics
ComputeBinaryMetrics(const torch::Tensor & prediction, const torch::Tensor & reference)
{
  if (!prediction.defined() || !reference.defined() || prediction.sizes() != reference.sizes())
  {
    std::ostringstream message;
    message << "ComputeBinaryMetrics: the prediction and the reference must be defined masks of one shape";
    if (prediction.defined() && reference.defined())
    {
      message << ", got " << prediction.sizes() << " and " << reference.sizes();
    }
    throw std::invalid_argument(message.str());
  }
  const auto    predicted = prediction.ne(0);
  const auto    actual = reference.ne(0);
  BinaryMetrics m;
  m.truePositives = (predicted & actual).sum().item<int64_t>();
  m.falsePositives = (predicted & actual.logical_not()).sum().item<int64_t>();
  m.falseNegatives = (predicted.logical_not() & actual).sum().item<int64_t>();
  m.dice = RatioOrOne(2 * m.truePositives, 2 * m.truePositives + m.falsePositives + m.falseNegatives);
  m.recall = RatioOrOne(m.truePositives, m.truePositives + m.falseNegatives);
  m.precision = RatioOrOne(m.truePositives, m.truePositives + m.falsePositives);
  return m;
}

} // namespace diva
