#ifndef itkClickedComponentImageFilter_hxx
#define itkClickedComponentImageFilter_hxx

#include "itkClickedComponentImageFilter.h"
#include "itkImageRegionConstIterator.h"
#include "itkImageRegionIterator.h"

#include <cmath>
#include <deque>
#include <limits>

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
  const InputImageType * input = this->GetInput();
  OutputImageType *      output = this->GetOutput();
  this->AllocateOutputs();
  const auto region = input->GetBufferedRegion();
  const auto size = region.GetSize();
  // Linear offsets within the buffer; the input's and the output's buffers cover the same (whole) region.
  const SizeValueType        count = region.GetNumberOfPixels();
  std::vector<unsigned char> object(count);
  {
    ImageRegionConstIterator<InputImageType> it(input, region);
    for (SizeValueType n = 0; !it.IsAtEnd(); ++it, ++n)
    {
      object[n] = static_cast<double>(it.Get()) >= m_Threshold ? 1 : 0;
    }
  }
  OffsetValueType stride[ImageDimension];
  stride[0] = 1;
  for (unsigned int d = 1; d < ImageDimension; ++d)
  {
    stride[d] = stride[d - 1] * static_cast<OffsetValueType>(size[d - 1]);
  }
  const auto offsetOf = [&](const typename InputImageType::IndexType & index)
  {
    OffsetValueType offset = 0;
    for (unsigned int d = 0; d < ImageDimension; ++d)
    {
      offset += (index[d] - region.GetIndex(d)) * stride[d];
    }
    return offset;
  };

  // Seeds: the click's voxel, else the nearest object voxel within SearchRadius (physical distance).
  std::deque<OffsetValueType> queue;
  std::vector<unsigned char>  kept(count, 0);
  for (const auto & click : m_Clicks)
  {
    const auto                          centre = input->template TransformPhysicalPointToContinuousIndex<double>(click);
    typename InputImageType::IndexType  nearestIndex;
    double                              best = std::numeric_limits<double>::infinity();
    bool                                found = false;
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
    ImageRegionConstIterator<InputImageType> it(input, window);
    for (; !it.IsAtEnd(); ++it)
    {
      const auto index = it.GetIndex();
      if (!object[offsetOf(index)])
      {
        continue;
      }
      typename InputImageType::PointType p;
      input->TransformIndexToPhysicalPoint(index, p);
      const double distance = p.EuclideanDistanceTo(click);
      if (distance < best)
      {
        best = distance;
        nearestIndex = index;
        found = true;
      }
    }
    // The voxel containing the click is at most half a voxel diagonal away; any object voxel within the radius
    // otherwise.
    if (found && best <= m_SearchRadius + 0.5 * input->GetSpacing().GetNorm())
    {
      const auto seed = offsetOf(nearestIndex);
      if (!kept[seed])
      {
        kept[seed] = 1;
        queue.push_back(seed);
      }
    }
  }

  m_UsedAllComponents = queue.empty();
  if (m_UsedAllComponents)
  {
    kept = object;
  }
  // Flood fill over face neighbours.
  while (!queue.empty())
  {
    const OffsetValueType at = queue.front();
    queue.pop_front();
    OffsetValueType rest = at;
    for (int d = static_cast<int>(ImageDimension) - 1; d >= 0; --d)
    {
      const auto coordinate = rest / stride[d];
      rest -= coordinate * stride[d];
      for (const int step : { -1, 1 })
      {
        const auto neighbourCoordinate = coordinate + step;
        if (neighbourCoordinate < 0 || neighbourCoordinate >= static_cast<OffsetValueType>(size[d]))
        {
          continue;
        }
        const OffsetValueType neighbour = at + step * stride[d];
        if (object[neighbour] && !kept[neighbour])
        {
          kept[neighbour] = 1;
          queue.push_back(neighbour);
        }
      }
    }
  }

  m_NumberOfObjectVoxels = 0;
  ImageRegionIterator<OutputImageType> out(output, region);
  for (SizeValueType n = 0; !out.IsAtEnd(); ++out, ++n)
  {
    out.Set(kept[n] ? 1 : 0);
    m_NumberOfObjectVoxels += kept[n];
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
  os << indent << "UsedAllComponents: " << m_UsedAllComponents << std::endl;
  os << indent << "NumberOfObjectVoxels: " << m_NumberOfObjectVoxels << std::endl;
}
} // namespace itk

#endif
