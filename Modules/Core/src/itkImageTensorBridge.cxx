#include "itkImageTensorBridge.h"

#include "itkMacro.h"

#include <cmath>

namespace itk
{
namespace
{
torch::Tensor
Concatenate(const std::vector<torch::Tensor> & parts, int64_t axis, const char * what)
{
  if (parts.empty())
  {
    itkGenericExceptionMacro(<< "DivAttention: " << what << ": nothing to stack");
  }
  for (size_t i = 0; i < parts.size(); ++i)
  {
    const auto & part = parts[i];
    if (!part.defined() || part.dim() != 5)
    {
      itkGenericExceptionMacro(<< "DivAttention: " << what << ": tensor " << i << " is "
                               << (part.defined() ? "of rank " + std::to_string(part.dim()) : std::string("undefined"))
                               << "; expected (N, C, z, y, x)");
    }
    if (i == 0)
    {
      continue;
    }
    const auto & first = parts[0];
    for (int64_t d = 0; d < 5; ++d)
    {
      if (d != axis && part.size(d) != first.size(d))
      {
        std::ostringstream message;
        message << "DivAttention: " << what << ": tensor " << i << " has shape " << part.sizes()
                << ", incompatible with tensor 0 of shape " << first.sizes();
        itkGenericExceptionMacro(<< message.str());
      }
    }
    if (part.scalar_type() != first.scalar_type() || part.device() != first.device())
    {
      itkGenericExceptionMacro(<< "DivAttention: " << what << ": tensor " << i << " is " << part.scalar_type() << " on "
                               << part.device() << ", tensor 0 is " << first.scalar_type() << " on " << first.device());
    }
  }
  return torch::cat(parts, axis);
}
} // namespace

torch::Tensor
StackChannels(const std::vector<torch::Tensor> & channels)
{
  return Concatenate(channels, 1, "StackChannels");
}

torch::Tensor
StackBatch(const std::vector<torch::Tensor> & samples)
{
  return Concatenate(samples, 0, "StackBatch");
}

bool
SameGrid(const ImageBase<3> * a, const ImageBase<3> * b, double tolerance)
{
  if (a == nullptr || b == nullptr)
  {
    return false;
  }
  if (a->GetLargestPossibleRegion() != b->GetLargestPossibleRegion())
  {
    return false;
  }
  const auto & spacingA = a->GetSpacing();
  const auto & spacingB = b->GetSpacing();
  for (unsigned d = 0; d < 3; ++d)
  {
    const double scale = std::abs(spacingA[d]);
    if (std::abs(spacingA[d] - spacingB[d]) > tolerance * scale ||
        std::abs(a->GetOrigin()[d] - b->GetOrigin()[d]) > tolerance * scale)
    {
      return false;
    }
    for (unsigned e = 0; e < 3; ++e)
    {
      if (std::abs(a->GetDirection()[d][e] - b->GetDirection()[d][e]) > tolerance)
      {
        return false;
      }
    }
  }
  return true;
}

} // namespace itk
