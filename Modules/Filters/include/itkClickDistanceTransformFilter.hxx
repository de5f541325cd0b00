#ifndef itkClickDistanceTransformFilter_hxx
#define itkClickDistanceTransformFilter_hxx

#include "itkClickDistanceTransformFilter.h"
#include "itkDivAttentionFilterUtilities.h"
#include "itkImageScanlineIterator.h"

#include <cmath>
#include <limits>

namespace itk
{
template<typename TReferenceImage, typename TOutputImage>
ClickDistanceTransformFilter<TReferenceImage, TOutputImage>::ClickDistanceTransformFilter()
{
  this->SetNumberOfRequiredOutputs(2);
  this->SetNthOutput(1, this->MakeOutput(1));
  this->DynamicMultiThreadingOn();
}

template<typename TReferenceImage, typename TOutputImage>
void
ClickDistanceTransformFilter<TReferenceImage, TOutputImage>::SetClicks(const PointListType & clicks)
{
  m_Clicks = clicks;
  this->Modified();
}

template<typename TReferenceImage, typename TOutputImage>
void
ClickDistanceTransformFilter<TReferenceImage, TOutputImage>::AddClick(const PointType & click)
{
  m_Clicks.push_back(click);
  this->Modified();
}

template<typename TReferenceImage, typename TOutputImage>
void
ClickDistanceTransformFilter<TReferenceImage, TOutputImage>::SetNegativeClicks(const PointListType & clicks)
{
  m_NegativeClicks = clicks;
  this->Modified();
}

template<typename TReferenceImage, typename TOutputImage>
void
ClickDistanceTransformFilter<TReferenceImage, TOutputImage>::AddNegativeClick(const PointType & click)
{
  m_NegativeClicks.push_back(click);
  this->Modified();
}

template<typename TReferenceImage, typename TOutputImage>
void
ClickDistanceTransformFilter<TReferenceImage, TOutputImage>::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if (m_Clicks.empty())
  {
    itkDivAttentionInputError("Clicks", "at least one click is required");
  }
  const auto checkFinite = [this](const PointListType & clicks, const char * name)
  {
    for (std::size_t n = 0; n < clicks.size(); ++n)
    {
      for (unsigned int d = 0; d < ImageDimension; ++d)
      {
        if (!std::isfinite(clicks[n][d]))
        {
          itkDivAttentionInputError(name, "click " << n << " is not finite: " << clicks[n]);
        }
      }
    }
  };
  checkFinite(m_Clicks, "Clicks");
  checkFinite(m_NegativeClicks, "NegativeClicks");
  if (m_Encoding == EncodingEnum::ClippedScaled && !(m_ClipRadius > 0.0))
  {
    itkDivAttentionInputError("ClipRadius", "must be > 0 mm for the ClippedScaled encoding, got " << m_ClipRadius);
  }
  if (m_Encoding == EncodingEnum::Gaussian && !(m_GaussianSigma > 0.0))
  {
    itkDivAttentionInputError("GaussianSigma", "must be > 0 mm for the Gaussian encoding, got " << m_GaussianSigma);
  }
}

template<typename TReferenceImage, typename TOutputImage>
void
ClickDistanceTransformFilter<TReferenceImage, TOutputImage>::GenerateInputRequestedRegion()
{
  // No Superclass call: it would ask for the output's region of the reference, and only its geometry is used.
  auto * reference = const_cast<ReferenceImageType *>(this->GetInput());
  if (reference != nullptr)
  {
    typename ReferenceImageType::RegionType none = reference->GetLargestPossibleRegion();
    none.SetSize(typename ReferenceImageType::SizeType{}); // zero pixels: the source upstream computes nothing
    reference->SetRequestedRegion(none);
  }
}

template<typename TReferenceImage, typename TOutputImage>
void
ClickDistanceTransformFilter<TReferenceImage, TOutputImage>::AllocateOutputs()
{
  OutputImageType * positive = this->GetOutput(0);
  positive->SetBufferedRegion(positive->GetRequestedRegion());
  DivAttentionDetail::AllocateOnHostAllocator(positive);
  OutputImageType *     negative = this->GetOutput(1);
  OutputImageRegionType negativeRegion = negative->GetRequestedRegion();
  if (m_NegativeClicks.empty())
  {
    negativeRegion.SetSize(typename OutputImageType::SizeType{}); // nothing to encode: buffer nothing
  }
  negative->SetBufferedRegion(negativeRegion);
  DivAttentionDetail::AllocateOnHostAllocator(negative);
}

template<typename TReferenceImage, typename TOutputImage>
void
ClickDistanceTransformFilter<TReferenceImage, TOutputImage>::DynamicThreadedGenerateData(
  const OutputImageRegionType & outputRegion)
{
  EncodeRegion(this->GetOutput(0), m_Clicks, outputRegion);
  if (!m_NegativeClicks.empty())
  {
    EncodeRegion(this->GetOutput(1), m_NegativeClicks, outputRegion);
  }
}

template<typename TReferenceImage, typename TOutputImage>
void
ClickDistanceTransformFilter<TReferenceImage, TOutputImage>::EncodeRegion(OutputImageType *             output,
                                                                          const PointListType &         clicks,
                                                                          const OutputImageRegionType & region) const
{
  if (region.GetNumberOfPixels() == 0)
  {
    return;
  }
  const auto         matrix = DivAttentionDetail::IndexToPhysicalMatrix(output);
  const auto &       origin = output->GetOrigin();
  const auto         length = static_cast<SizeValueType>(region.GetSize(0));
  const EncodingEnum encoding = m_Encoding;
  const float        inverseRadius = static_cast<float>(1.0 / m_ClipRadius);
  const double       gaussianFactor = -0.5 / (m_GaussianSigma * m_GaussianSigma);

  // Along a row the physical point moves by the first column of (direction x spacing). Per click and row, the
  // offset of the row's first voxel from the click is taken in double (it may be hundreds of mm) and the rest in
  // float: component d of (voxel - click) is start_d + t * step_d, exact to ~1e-5 mm, and the loops over t have no
  // branch, so they vectorise. t counts from the largest region's first column, whatever region is computed, so
  // every voxel gets the same arithmetic and streamed or threaded results are bit-identical.
  float rowStep[ImageDimension];
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    rowStep[d] = static_cast<float>(matrix[d][0]);
  }
  std::vector<float>   squaredBuffer(length), clickBuffer(length), positionBuffer(length);
  float * const        squared = squaredBuffer.data();
  float * const        perClick = clickBuffer.data();
  float * const        position = positionBuffer.data();
  const IndexValueType firstColumn = output->GetLargestPossibleRegion().GetIndex(0);
  for (SizeValueType t = 0; t < length; ++t)
  {
    position[t] = static_cast<float>(region.GetIndex(0) - firstColumn + static_cast<IndexValueType>(t));
  }

  ImageScanlineIterator<OutputImageType> it(output, region);
  while (!it.IsAtEnd())
  {
    auto index = it.GetIndex();
    index[0] = firstColumn;
    double rowStart[ImageDimension];
    for (unsigned int r = 0; r < ImageDimension; ++r)
    {
      double sum = origin[r];
      for (unsigned int c = 0; c < ImageDimension; ++c)
      {
        sum += matrix[r][c] * static_cast<double>(index[c]);
      }
      rowStart[r] = sum;
    }
    for (std::size_t n = 0; n < clicks.size(); ++n)
    {
      float * const target = (n == 0) ? squared : perClick;
      for (unsigned int d = 0; d < ImageDimension; ++d)
      {
        const float start = static_cast<float>(rowStart[d] - clicks[n][d]);
        const float step = rowStep[d];
        if (d == 0)
        {
          for (SizeValueType t = 0; t < length; ++t)
          {
            const float component = start + position[t] * step;
            target[t] = component * component;
          }
        }
        else
        {
          for (SizeValueType t = 0; t < length; ++t)
          {
            const float component = start + position[t] * step;
            target[t] += component * component;
          }
        }
      }
      if (n > 0)
      {
        for (SizeValueType t = 0; t < length; ++t)
        {
          squared[t] = perClick[t] < squared[t] ? perClick[t] : squared[t];
        }
      }
    }
    OutputPixelType * out = &it.Value();
    switch (encoding)
    {
      case EncodingEnum::EuclideanDistance:
        DivAttentionDetail::SquareRootInPlace(squared, length);
        for (SizeValueType t = 0; t < length; ++t)
        {
          out[t] = static_cast<OutputPixelType>(squared[t]);
        }
        break;
      case EncodingEnum::ClippedScaled:
        DivAttentionDetail::SquareRootInPlace(squared, length);
        for (SizeValueType t = 0; t < length; ++t)
        {
          const float scaled = squared[t] * inverseRadius;
          out[t] = static_cast<OutputPixelType>(scaled < 1.0f ? scaled : 1.0f);
        }
        break;
      case EncodingEnum::Gaussian:
        for (SizeValueType t = 0; t < length; ++t)
        {
          out[t] = static_cast<OutputPixelType>(std::exp(static_cast<double>(squared[t]) * gaussianFactor));
        }
        break;
    }
    it.NextLine();
  }
}

template<typename TReferenceImage, typename TOutputImage>
void
ClickDistanceTransformFilter<TReferenceImage, TOutputImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Clicks: " << m_Clicks.size() << std::endl;
  for (const auto & click : m_Clicks)
  {
    os << indent.GetNextIndent() << click << std::endl;
  }
  os << indent << "NegativeClicks: " << m_NegativeClicks.size() << std::endl;
  for (const auto & click : m_NegativeClicks)
  {
    os << indent.GetNextIndent() << click << std::endl;
  }
  os << indent << "Encoding: " << m_Encoding << std::endl;
  os << indent << "ClipRadius: " << m_ClipRadius << std::endl;
  os << indent << "GaussianSigma: " << m_GaussianSigma << std::endl;
}
} // namespace itk

#endif
