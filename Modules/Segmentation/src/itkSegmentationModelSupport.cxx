#include "itkSegmentationModelSupport.h"

#include "divaSegmentationLoss.h"
#include "itkDivAttentionMacros.h"

#include <torch/torch.h>

#include <sstream>

namespace itk
{
namespace
{
std::string
ChannelNames(const diva::LoadedModel & model)
{
  std::string names;
  for (const auto & name : model.description.inputChannels)
  {
    names += (names.empty() ? "" : ", ") + name;
  }
  return names.empty() ? std::string("unnamed") : names;
}

// The static helpers are not itk::Object members, so itkExceptionMacro's this->GetNameOfClass() is unavailable.
[[noreturn]] void
Fail(const std::string & what, const std::string & problem)
{
  throw ExceptionObject(__FILE__, __LINE__, "DivAttention: input \"" + what + "\": " + problem, ITK_LOCATION);
}
} // namespace

SegmentationModelSupport::ModelPointer
SegmentationModelSupport::Load(const std::string & path, const torch::Device & device, const std::string & what)
{
  if (path.empty())
  {
    Fail(what, "no model given (neither a model file nor a loaded model)");
  }
  try
  {
    return std::make_shared<diva::LoadedModel>(diva::LoadModel(path, device));
  }
  catch (const std::exception & error)
  {
    Fail(what, error.what());
  }
}

void
SegmentationModelSupport::CheckRole(const diva::LoadedModel & model,
                                    const std::string &       expected,
                                    const std::string &       what)
{
  const auto & role = model.description.role;
  if (role != expected && role != "unknown")
  {
    Fail(what, "the model is a \"" + role + "\" model but a \"" + expected +
                 "\" model is needed here (stage-1 and stage-2 " + "models swapped?)");
  }
}

void
SegmentationModelSupport::CheckInputChannels(const diva::LoadedModel & model,
                                             int64_t                   provided,
                                             const std::string &       providedNames,
                                             const std::string &       what)
{
  const auto expected = model.network->GetInputChannels();
  if (expected != provided)
  {
    std::ostringstream message;
    message << "the model takes " << expected << " input channels (" << ChannelNames(model) << "), the filter provides "
            << provided << " (" << providedNames << ")";
    Fail(what, message.str());
  }
}

torch::Device
SegmentationModelSupport::DeviceOf(const diva::LoadedModel & model)
{
  const auto parameters = model.network->parameters();
  return parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
}

torch::Tensor
SegmentationModelSupport::NormalizeIntensities(const torch::Tensor & ct, const diva::Preprocessing & p)
{
  auto clipped = ct.clamp(p.clipMinimum, p.clipMaximum);
  if (p.normalization == "zscore")
  {
    return (clipped - p.mean) / p.standardDeviation;
  }
  if (p.normalization == "range")
  {
    const double width = p.clipMaximum - p.clipMinimum;
    return width > 0.0 ? (clipped - p.clipMinimum) / width : clipped * 0.0;
  }
  if (p.normalization == "none")
  {
    return clipped;
  }
  Fail("model preprocessing", "unknown normalization \"" + p.normalization + "\" (expected zscore, range or none)");
}

ClickDistanceTransformFilterEnums::Encoding
SegmentationModelSupport::ClickEncodingOf(const std::string & text, const std::string & what)
{
  using Encoding = ClickDistanceTransformFilterEnums::Encoding;
  if (text.rfind("euclidean", 0) == 0)
  {
    return Encoding::EuclideanDistance;
  }
  if (text.rfind("clipped", 0) == 0)
  {
    return Encoding::ClippedScaled;
  }
  if (text.rfind("gaussian", 0) == 0)
  {
    return Encoding::Gaussian;
  }
  Fail(what, "unknown click encoding \"" + text + "\" (expected euclidean-distance-mm, clipped-scaled or gaussian)");
}

torch::Tensor
SegmentationModelSupport::Forward(diva::LoadedModel &          model,
                                  const torch::Tensor &        input,
                                  const std::string &          what,
                                  std::vector<torch::Tensor> * attention)
{
  try
  {
    torch::InferenceMode      inference;
    const auto                device = DeviceOf(model);
    diva::SegmentationRequest request;
    request.attentionMaps = attention != nullptr; // unasked, the modules skip writing them
    const auto output = model.network->Segment(input.to(device), request);
    if (attention)
    {
      attention->clear();
      for (const auto & map : output.attentionMaps)
      {
        attention->push_back(map.to(torch::kCPU, torch::kFloat32));
      }
    }
    return diva::ForegroundProbability(output.logits).to(torch::kCPU, torch::kFloat32).contiguous();
  }
  catch (const std::exception & error)
  {
    Fail(what, std::string("the network failed: ") + error.what());
  }
}

void
SegmentationModelSupport::WarmUp(diva::LoadedModel & model, const std::string & what, bool attentionMaps)
{
  // A thread other than the main one starts with OpenMP's default team size: take the budget first.
  at::init_num_threads();
  const auto & patch = model.description.preprocessing.patchSize;
  const auto   input = torch::zeros({ 1, model.network->GetInputChannels(), patch[2], patch[1], patch[0] },
                                    torch::TensorOptions().dtype(torch::kFloat32).device(DeviceOf(model)));
  std::vector<torch::Tensor> maps;
  // Forward takes the result back to the CPU, which also waits for a CUDA device to finish.
  Forward(model, input, what, attentionMaps ? &maps : nullptr);
}

} // namespace itk
