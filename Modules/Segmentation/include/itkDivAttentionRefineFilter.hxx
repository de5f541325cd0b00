#ifndef itkDivAttentionRefineFilter_hxx
#define itkDivAttentionRefineFilter_hxx

#include "itkDivAttentionRuntime.h"
#include "itkImageTensorBridge.h"

#include <torch/torch.h>

#include <cstring>

namespace itk
{
template<typename TInputImage, typename TOutputImage>
DivAttentionRefineFilter<TInputImage, TOutputImage>::DivAttentionRefineFilter()
{
  this->AddOptionalInputName("ClickMap");
  this->SetNumberOfRequiredOutputs(2);
  this->SetNthOutput(1, this->MakeOutput(1));
}

template<typename TInputImage, typename TOutputImage>
auto
DivAttentionRefineFilter<TInputImage, TOutputImage>::ResolveModel() -> ModelPointer
{
  const auto   device = DivAttentionRuntime::ResolveDevice(m_Device);
  ModelPointer model = m_Model;
  if (!model)
  {
    const auto key = m_ModelFile + "|" + device.str();
    if (!m_FileModel || key != m_FileModelKey)
    {
      m_FileModel = SegmentationModelSupport::Load(m_ModelFile, device, "refine model");
      m_FileModelKey = key;
    }
    model = m_FileModel;
  }
  else if (m_Device != "auto" && SegmentationModelSupport::DeviceOf(*model) != device)
  {
    itkDivAttentionInputError("refine model", "the loaded model lives on " << SegmentationModelSupport::DeviceOf(*model)
                                                                           << " but Device asks for " << device);
  }
  SegmentationModelSupport::CheckRole(*model, "refine", "refine model");
  return model;
}

template<typename TInputImage, typename TOutputImage>
void
DivAttentionRefineFilter<TInputImage, TOutputImage>::GenerateInputRequestedRegion()
{
  Superclass::GenerateInputRequestedRegion();
  for (const auto & name : this->GetInputNames())
  {
    if (auto * image = dynamic_cast<ImageBase<3> *>(this->ProcessObject::GetInput(name)))
    {
      image->SetRequestedRegionToLargestPossibleRegion();
    }
  }
}

template<typename TInputImage, typename TOutputImage>
void
DivAttentionRefineFilter<TInputImage, TOutputImage>::EnlargeOutputRequestedRegion(DataObject * output)
{
  Superclass::EnlargeOutputRequestedRegion(output);
  for (unsigned int i = 0; i < this->GetNumberOfOutputs(); ++i)
  {
    this->GetOutput(i)->SetRequestedRegionToLargestPossibleRegion();
  }
}

template<typename TInputImage, typename TOutputImage>
void
DivAttentionRefineFilter<TInputImage, TOutputImage>::GenerateData()
{
  this->AllocateOutputs();
  const InputImageType *    patch = this->GetInput();
  const ClickMapImageType * clickMap = this->GetClickMap();
  OutputImageType *         probabilityImage = this->GetOutput(0);
  OutputImageType *         attentionImage = this->GetOutput(1);

  const auto model = this->ResolveModel();
  SegmentationModelSupport::CheckInputChannels(*model, clickMap ? 2 : 1, clickMap ? "patch, click map" : "patch",
                                               "refine model");
  m_DeviceUsed = SegmentationModelSupport::DeviceOf(*model).str();
  const auto size = patch->GetLargestPossibleRegion().GetSize();
  for (unsigned int a = 0; a < 3; ++a)
  {
    if (static_cast<int64_t>(size[a]) % model->network->GetSizeDivisor() != 0)
    {
      itkDivAttentionInputError("patch", "size " << size << " is not a multiple of the refine network's size divisor "
                                                 << model->network->GetSizeDivisor());
    }
  }

  auto ct = ImageToTensorAs(patch, torch::kFloat32);
  if (torch::isnan(ct).any().template item<bool>())
  {
    itkDivAttentionInputError("patch", "contains NaN voxels");
  }
  std::vector<torch::Tensor> channels{ SegmentationModelSupport::NormalizeIntensities(
    ct, model->description.preprocessing) };
  if (clickMap)
  {
    if (!SameGrid(patch, clickMap))
    {
      itkDivAttentionInputError("ClickMap", "does not lie on the patch's grid");
    }
    channels.push_back(ImageToTensorAs(clickMap, torch::kFloat32));
  }
  const auto                 input = torch::cat(channels, 1);
  std::vector<torch::Tensor> maps;
  const auto                 probability =
    SegmentationModelSupport::Forward(*model, input, "refine model", m_ComputeAttentionMap ? &maps : nullptr);

  auto copyInto = [](const torch::Tensor & tensor, OutputImageType * image)
  {
    const auto values = tensor.to(torch::kFloat32).contiguous();
    auto *     buffer = image->GetBufferPointer();
    const auto count = image->GetBufferedRegion().GetNumberOfPixels();
    for (SizeValueType i = 0; i < count; ++i)
    {
      buffer[i] = static_cast<typename OutputImageType::PixelType>(values.template data_ptr<float>()[i]);
    }
  };
  copyInto(probability, probabilityImage);

  m_NumberOfAttentionMaps = static_cast<unsigned int>(maps.size());
  auto attention = torch::zeros_like(probability);
  for (const auto & map : maps)
  {
    auto level = map.mean(1, /*keepdim=*/true);
    if (level.sizes() != probability.sizes())
    {
      level = torch::nn::functional::interpolate(
        level, torch::nn::functional::InterpolateFuncOptions()
                 .size(std::vector<int64_t>(probability.sizes().begin() + 2, probability.sizes().end()))
                 .mode(torch::kTrilinear)
                 .align_corners(false));
    }
    const double maximum = level.max().template item<double>();
    if (maximum > 0.0)
    {
      level = level / maximum;
    }
    attention += level;
  }
  if (!maps.empty())
  {
    attention /= static_cast<double>(maps.size());
  }
  copyInto(attention, attentionImage);
  this->UpdateProgress(1.0f);
}

template<typename TInputImage, typename TOutputImage>
void
DivAttentionRefineFilter<TInputImage, TOutputImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "ModelFile: " << m_ModelFile << std::endl;
  os << indent << "ComputeAttentionMap: " << (m_ComputeAttentionMap ? "On" : "Off") << std::endl;
  os << indent << "Model: " << (m_Model ? "loaded" : "(none)") << std::endl;
  os << indent << "Device: " << m_Device << std::endl;
  os << indent << "FileModel: " << (m_FileModel ? m_FileModelKey : std::string("(none)")) << std::endl;
  os << indent << "NumberOfAttentionMaps: " << m_NumberOfAttentionMaps << std::endl;
  os << indent << "DeviceUsed: " << m_DeviceUsed << std::endl;
}
} // namespace itk

#endif
