#ifndef itkClickedComponentImageFilter_hxx
#define itkClickedComponentImageFilter_hxx

#include "itkBinaryThresholdImageFilter.h"
#include "itkClickedComponentImageFilter.h"
#include "itkConnectedThresholdImageFilter.h"
#include "itkImageRegionConstIterator.h"
#include "itkImageRegionConstIteratorWithIndex.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

namespace itk
{
template<typename TInputImage, typename TOutputImage>
void
ClickedComponentImageFilter<TInputImage, TOutputImage>::SetClicks(const PointListType & clicks)
{
  m_Clicks = clicks;
  this->Modified();
}

template<typename TInputImage, typename TOutputImage>
void
ClickedComponentImageFilter<TInputImage, TOutputImage>::GenerateInputRequestedRegion()
{
  Superclass::GenerateInputRequestedRegion();
  if (auto * input = const_cast<InputImageType *>(this->GetInput()))
  {
    input->SetRequestedRegionToLargestPossibleRegion();
  }
}

template<typename TInputImage, typename TOutputImage>
void
ClickedComponentImageFilter<TInputImage, TOutputImage>::EnlargeOutputRequestedRegion(DataObject * output)
{
  Superclass::EnlargeOutputRequestedRegion(output);
  output->SetRequestedRegionToLargestPossibleRegion();
}

template<typename TInputImage, typename TOutputImage>
void
ClickedComponentImageFilter<TInputImage, TOutputImage>::GenerateData()
{
  if (m_Clicks.empty())
  {
    itkDivAttentionInputError("Clicks", "at least one click is needed");
  }
  using InputPixelType = typename InputImageType::PixelType;
  const InputImageType * input = this->GetInput();
  // Object: value >= Threshold, as the pixel type compares (an integer label needs the next integer up).
  const double         threshold = std::is_integral<InputPixelType>::value ? std::ceil(m_Threshold) : m_Threshold;
  const InputPixelType lower = static_cast<InputPixelType>(
    std::max(threshold, static_cast<double>(NumericTraits<InputPixelType>::NonpositiveMin())));

  // Seeds: the click's voxel, else the nearest object voxel within SearchRadius (physical distance).
  std::vector<typename InputImageType::IndexType> seeds;
  const auto &                                    region = input->GetBufferedRegion();
  for (const auto & click : m_Clicks)
  {
    const auto                          centre = input->template TransformPhysicalPointToContinuousIndex<double>(click);
    typename InputImageType::RegionType window;
    for (unsigned int d = 0; d < ImageDimension; ++d)
    {
      const double reach = m_SearchRadius / input->GetSpacing()[d] + 1.0;
      const auto   low = static_cast<IndexValueType>(std::floor(centre[d] - reach));
      const auto   high = static_cast<IndexValueType>(std::ceil(centre[d] + reach));
      window.SetIndex(d, low);
      window.SetSize(d, static_cast<SizeValueType>(std::max<IndexValueType>(high - low + 1, 0)));
    }
    if (!window.Crop(region))
    {
      continue;
    }
    double                             best = std::numeric_limits<double>::infinity();
    typename InputImageType::IndexType nearest;
    for (ImageRegionConstIteratorWithIndex<InputImageType> it(input, window); !it.IsAtEnd(); ++it)
    {
      if (!(it.Get() >= lower))
      {
        continue;
      }
      typename InputImageType::PointType p;
      input->TransformIndexToPhysicalPoint(it.GetIndex(), p);
      const double distance = p.EuclideanDistanceTo(click);
      if (distance < best)
      {
        best = distance;
        nearest = it.GetIndex();
      }
    }
    // The voxel containing the click is at most half a voxel diagonal away; any object voxel within the radius
    // otherwise.
    if (best <= m_SearchRadius + 0.5 * input->GetSpacing().GetNorm())
    {
      seeds.push_back(nearest);
    }
  }

  // The seeded components by ITK's region growing (face connectivity); without a seed, the plain threshold. Both run
  // on a shallow copy of the input, so they do not reach into the pipeline upstream.
  auto localInput = InputImageType::New();
  localInput->Graft(input);
  m_UsedAllComponents = seeds.empty();
  typename OutputImageType::Pointer result;
  if (m_UsedAllComponents)
  {
    auto all = BinaryThresholdImageFilter<InputImageType, OutputImageType>::New();
    all->SetInput(localInput);
    all->SetLowerThreshold(lower);
    all->SetInsideValue(m_EmptyWhenNothingClicked ? 0 : 1);
    all->SetOutsideValue(0);
    all->Update();
    result = all->GetOutput();
  }
  else
  {
    auto grow = ConnectedThresholdImageFilter<InputImageType, OutputImageType>::New();
    grow->SetInput(localInput);
    grow->SetLower(lower);
    grow->SetUpper(NumericTraits<InputPixelType>::max());
    grow->SetReplaceValue(1);
    grow->SetConnectivity(ConnectedThresholdImageFilterEnums::Connectivity::FaceConnectivity);
    for (const auto & seed : seeds)
    {
      grow->AddSeed(seed);
    }
    grow->Update();
    result = grow->GetOutput();
  }
  this->GraftOutput(result);

  m_NumberOfObjectVoxels = 0;
  for (ImageRegionConstIterator<OutputImageType> it(result, result->GetBufferedRegion()); !it.IsAtEnd(); ++it)
  {
    m_NumberOfObjectVoxels += it.Get() != 0 ? 1 : 0;
  }
}

template<typename TInputImage, typename TOutputImage>
void
ClickedComponentImageFilter<TInputImage, TOutputImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Clicks: " << m_Clicks.size() << std::endl;
  os << indent << "Threshold: " << m_Threshold << std::endl;
  os << indent << "SearchRadius: " << m_SearchRadius << std::endl;
  os << indent << "EmptyWhenNothingClicked: " << (m_EmptyWhenNothingClicked ? "On" : "Off") << std::endl;
  os << indent << "UsedAllComponents: " << m_UsedAllComponents << std::endl;
  os << indent << "NumberOfObjectVoxels: " << m_NumberOfObjectVoxels << std::endl;
}
} // namespace itk

#endif
