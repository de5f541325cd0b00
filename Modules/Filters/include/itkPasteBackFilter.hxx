#ifndef itkPasteBackFilter_hxx
#define itkPasteBackFilter_hxx

#include "itkDivAttentionFilterUtilities.h"
#include "itkImageScanlineIterator.h"
#include "itkLinearInterpolateImageFunction.h"
#include "itkPasteBackFilter.h"

#include <algorithm>
#include <type_traits>
#include <typeinfo>

namespace itk
{
template<typename TInputImage, typename TOutputImage, typename TReferenceImage, typename TFallbackImage>
PasteBackFilter<TInputImage, TOutputImage, TReferenceImage, TFallbackImage>::PasteBackFilter()
{
  this->AddRequiredInputName("ReferenceImage", 1);
  this->AddOptionalInputName("FallbackImage", 2);
  m_Interpolator = LinearInterpolateImageFunction<TInputImage, double>::New();
  this->DynamicMultiThreadingOn();
}

template<typename TInputImage, typename TOutputImage, typename TReferenceImage, typename TFallbackImage>
void
PasteBackFilter<TInputImage, TOutputImage, TReferenceImage, TFallbackImage>::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if (m_OutputMode == OutputEnum::Probability && std::is_integral<OutputPixelType>::value)
  {
    itkDivAttentionInputError("OutputMode",
                              "Probability needs a floating-point output pixel type; use Label for an integer output");
  }
  if (!std::isfinite(m_Threshold))
  {
    itkDivAttentionInputError("Threshold", "must be finite, got " << m_Threshold);
  }
  if (m_Interpolator.IsNull())
  {
    itkDivAttentionInputError("Interpolator", "no interpolator was set");
  }
}

template<typename TInputImage, typename TOutputImage, typename TReferenceImage, typename TFallbackImage>
void
PasteBackFilter<TInputImage, TOutputImage, TReferenceImage, TFallbackImage>::GenerateOutputInformation()
{
  Superclass::GenerateOutputInformation(); // meta-data of the patch; the grid is replaced by the reference's
  const ReferenceImageType * reference = this->GetReferenceImage();
  OutputImageType *          output = this->GetOutput();
  output->SetLargestPossibleRegion(reference->GetLargestPossibleRegion());
  output->SetSpacing(reference->GetSpacing());
  output->SetOrigin(reference->GetOrigin());
  output->SetDirection(reference->GetDirection());

  const FallbackImageType * fallback = this->GetFallbackImage();
  if (fallback != nullptr)
  {
    // Same tolerance as ITK's own VerifyInputInformation: a fraction of a voxel.
    const double tolerance = 1e-6 * reference->GetSpacing().GetVnlVector().max_value();
    const bool   sameRegion = fallback->GetLargestPossibleRegion() == reference->GetLargestPossibleRegion();
    const bool   sameOrigin = fallback->GetOrigin().EuclideanDistanceTo(reference->GetOrigin()) <= tolerance;
    const bool   sameSpacing = (fallback->GetSpacing() - reference->GetSpacing()).GetNorm() <= tolerance;
    const bool   sameDirection =
      (fallback->GetDirection().GetVnlMatrix() - reference->GetDirection().GetVnlMatrix()).absolute_value_max() <= 1e-6;
    if (!(sameRegion && sameOrigin && sameSpacing && sameDirection))
    {
      itkDivAttentionInputError(
        "FallbackImage", "must lie on the reference grid (region, origin, spacing and direction); fallback "
                           << fallback->GetLargestPossibleRegion() << " origin " << fallback->GetOrigin() << " spacing "
                           << fallback->GetSpacing() << ", reference " << reference->GetLargestPossibleRegion()
                           << " origin " << reference->GetOrigin() << " spacing " << reference->GetSpacing());
    }
  }
}

template<typename TInputImage, typename TOutputImage, typename TReferenceImage, typename TFallbackImage>
void
PasteBackFilter<TInputImage, TOutputImage, TReferenceImage, TFallbackImage>::GenerateInputRequestedRegion()
{
  // No Superclass call: the patch and the output do not share an index space.
  const OutputImageType * output = this->GetOutput();
  auto *                  reference = const_cast<ReferenceImageType *>(this->GetReferenceImage());
  if (reference != nullptr)
  {
    typename ReferenceImageType::RegionType none = reference->GetLargestPossibleRegion();
    none.SetSize(typename ReferenceImageType::SizeType{}); // geometry only: the source upstream computes nothing
    reference->SetRequestedRegion(none);
  }
  auto * patch = const_cast<InputImageType *>(this->GetInput());
  if (patch != nullptr)
  {
    patch->SetRequestedRegion(DivAttentionDetail::InputRegionForOutputRegion(output, output->GetRequestedRegion(),
                                                                             patch, m_Interpolator->GetRadius()));
  }
  auto * fallback = const_cast<FallbackImageType *>(this->GetFallbackImage());
  if (fallback != nullptr)
  {
    fallback->SetRequestedRegion(output->GetRequestedRegion());
  }
}

template<typename TInputImage, typename TOutputImage, typename TReferenceImage, typename TFallbackImage>
void
PasteBackFilter<TInputImage, TOutputImage, TReferenceImage, TFallbackImage>::AllocateOutputs()
{
  OutputImageType * output = this->GetOutput();
  output->SetBufferedRegion(output->GetRequestedRegion());
  DivAttentionDetail::AllocateOnHostAllocator(output);
}

template<typename TInputImage, typename TOutputImage, typename TReferenceImage, typename TFallbackImage>
void
PasteBackFilter<TInputImage, TOutputImage, TReferenceImage, TFallbackImage>::BeforeThreadedGenerateData()
{
  m_Interpolator->SetInputImage(this->GetInput());
}

template<typename TInputImage, typename TOutputImage, typename TReferenceImage, typename TFallbackImage>
void
PasteBackFilter<TInputImage, TOutputImage, TReferenceImage, TFallbackImage>::DynamicThreadedGenerateData(
  const OutputImageRegionType & outputRegion)
{
  if (outputRegion.GetNumberOfPixels() == 0)
  {
    return;
  }
  OutputImageType *         output = this->GetOutput();
  const InputImageType *    patch = this->GetInput();
  const FallbackImageType * fallback = this->GetFallbackImage();
  const auto &              buffered = patch->GetBufferedRegion();

  DivAttentionDetail::IndexToIndexAffine<ImageDimension> affine;
  affine.Compute(output, patch);
  Vector<double, ImageDimension>          step;
  ContinuousIndex<double, ImageDimension> low, high;
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    step[d] = affine.matrix[d][0];
    low[d] = static_cast<double>(buffered.GetIndex(d)) - 0.5;
    high[d] = static_cast<double>(buffered.GetIndex(d) + static_cast<IndexValueType>(buffered.GetSize(d))) - 0.5;
  }
  const auto               length = static_cast<SizeValueType>(outputRegion.GetSize(0));
  const InterpolatorType * interpolator = m_Interpolator.GetPointer();
  const bool               label = m_OutputMode == OutputEnum::Label;
  // ITK's own linear interpolator (not a subclass, which may evaluate otherwise) of a 3D patch: the same values,
  // computed inline (LinearInterpolateRow).
  const bool   linear = typeid(*interpolator) == typeid(LinearInterpolateImageFunction<InputImageType, double>);
  const double threshold = m_Threshold;
  const auto   encode = [label, threshold](double value) -> OutputPixelType
  {
    if (label)
    {
      return value >= threshold ? OutputPixelType{ 1 } : OutputPixelType{ 0 };
    }
    return DivAttentionDetail::ConvertInterpolatedValue<OutputPixelType>(value);
  };
  // Outside the patch: the fallback's value (encoded like the patch's), or 0.
  const auto fillOutside = [&](OutputPixelType * out, const typename OutputImageType::IndexType & rowIndex,
                               SizeValueType begin, SizeValueType end)
  {
    if (begin >= end)
    {
      return;
    }
    if (fallback == nullptr)
    {
      std::fill(out + begin, out + end, OutputPixelType{ 0 });
      return;
    }
    const auto * source = fallback->GetBufferPointer() + fallback->ComputeOffset(rowIndex);
    for (SizeValueType t = begin; t < end; ++t)
    {
      out[t] = encode(static_cast<double>(source[t]));
    }
  };

  ImageScanlineIterator<OutputImageType> it(output, outputRegion);
  while (!it.IsAtEnd())
  {
    const auto        rowIndex = it.GetIndex();
    const auto        base = affine.Map(rowIndex);
    OutputPixelType * out = &it.Value();
    const auto        run = DivAttentionDetail::InsideRun(interpolator, base, step, low, high, length);
    fillOutside(out, rowIndex, 0, run.first);
    bool interpolated = false;
    if constexpr (ImageDimension == 3)
    {
      if (linear)
      {
        DivAttentionDetail::LinearInterpolateRow(patch, base, step, run.first, run.second,
                                                 [out, &encode](SizeValueType t, double value)
                                                 { out[t] = encode(value); });
        interpolated = true;
      }
    }
    if (!interpolated)
    {
      ContinuousIndex<double, ImageDimension> position;
      for (SizeValueType t = run.first; t < run.second; ++t)
      {
        for (unsigned int d = 0; d < ImageDimension; ++d)
        {
          position[d] = base[d] + static_cast<double>(t) * step[d];
        }
        out[t] = encode(interpolator->EvaluateAtContinuousIndex(position));
      }
    }
    fillOutside(out, rowIndex, std::max(run.first, run.second), length);
    it.NextLine();
  }
}

template<typename TInputImage, typename TOutputImage, typename TReferenceImage, typename TFallbackImage>
void
PasteBackFilter<TInputImage, TOutputImage, TReferenceImage, TFallbackImage>::AfterThreadedGenerateData()
{
  m_Interpolator->SetInputImage(nullptr);
}

template<typename TInputImage, typename TOutputImage, typename TReferenceImage, typename TFallbackImage>
void
PasteBackFilter<TInputImage, TOutputImage, TReferenceImage, TFallbackImage>::PrintSelf(std::ostream & os,
                                                                                       Indent         indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "OutputMode: " << m_OutputMode << std::endl;
  os << indent << "Threshold: " << m_Threshold << std::endl;
  os << indent << "Interpolator: " << m_Interpolator.GetPointer() << std::endl;
}
} // namespace itk

#endif
