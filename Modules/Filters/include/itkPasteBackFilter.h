#ifndef itkPasteBackFilter_h
#define itkPasteBackFilter_h

#include "itkDivAttentionMacros.h"
#include "itkImageToImageFilter.h"
#include "itkInterpolateImageFunction.h"

#include <iostream>

namespace itk
{
/** \class PasteBackFilterEnums
 * \brief Enumerations of PasteBackFilter.
 * \ingroup DivAttention
 */
class PasteBackFilterEnums
{
public:
  /** What the output holds. */
  enum class Output : uint8_t
  {
    /** The interpolated probability (default); needs a floating-point output pixel type. */
    Probability = 0,
    /** 1 where the probability is >= Threshold, else 0. */
    Label = 1
  };
};

inline std::ostream &
operator<<(std::ostream & out, const PasteBackFilterEnums::Output value)
{
  switch (value)
  {
    case PasteBackFilterEnums::Output::Probability:
      return out << "Probability";
    case PasteBackFilterEnums::Output::Label:
      return out << "Label";
  }
  return out << "INVALID";
}

/** \class PasteBackFilter
 * \brief Returns a patch's answer (a probability on its own physical grid) to the patient's grid.
 *
 * Input 0 is the patch, e.g. the stage-2 probability on the grid PCACropResampleFilter produced. The reference image
 * (SetReferenceImage) gives only the output grid: no pixel of it is requested. The optional fallback image
 * (SetFallbackImage, on the reference grid, e.g. the coarse stage-1 mask) supplies values outside the patch; without
 * it they are 0.
 *
 * Inside the patch the probability is interpolated at each output voxel's physical centre (linear by default), so
 * oblique, anisotropic grids on either side are handled. In Probability mode the output holds it (or the fallback's
 * value); in Label mode it holds 1 where that value is >= Threshold (default 0.5), else 0 (use an unsigned char
 * output). Like a resampler, every output region is computed on its own: the filter streams and threads.
 *
 * Errors (itk::ExceptionObject): a fallback image whose grid differs from the reference's; Probability mode with an
 * integer output pixel type (it would truncate every probability to 0).
 *
 * \ingroup DivAttention
 */
template<typename TInputImage,
         typename TOutputImage = TInputImage,
         typename TReferenceImage = TOutputImage,
         typename TFallbackImage = TOutputImage>
class ITK_TEMPLATE_EXPORT PasteBackFilter : public ImageToImageFilter<TInputImage, TOutputImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(PasteBackFilter);

  using Self = PasteBackFilter;
  using Superclass = ImageToImageFilter<TInputImage, TOutputImage>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;

  itkNewMacro(Self);
  itkDivAttentionTypeMacro(PasteBackFilter, ImageToImageFilter);

  static constexpr unsigned int ImageDimension = TOutputImage::ImageDimension;

  using InputImageType = TInputImage;
  using OutputImageType = TOutputImage;
  using ReferenceImageType = TReferenceImage;
  using FallbackImageType = TFallbackImage;
  using OutputPixelType = typename TOutputImage::PixelType;
  using OutputImageRegionType = typename TOutputImage::RegionType;
  using InterpolatorType = InterpolateImageFunction<TInputImage, double>;
  using InterpolatorPointer = typename InterpolatorType::Pointer;
  using OutputEnum = PasteBackFilterEnums::Output;

  /** The output grid (geometry only). */
  itkSetInputMacro(ReferenceImage, ReferenceImageType);
  itkGetInputMacro(ReferenceImage, ReferenceImageType);

  /** Values outside the patch, on the reference grid (optional). */
  itkSetInputMacro(FallbackImage, FallbackImageType);
  itkGetInputMacro(FallbackImage, FallbackImageType);

  /** Probability (default) or Label. */
  itkSetEnumMacro(OutputMode, OutputEnum);
  itkGetEnumMacro(OutputMode, OutputEnum);

  /** Label mode: values >= Threshold are 1; default 0.5. */
  itkSetMacro(Threshold, double);
  itkGetConstMacro(Threshold, double);

  /** Interpolator of the patch; default linear. */
  itkSetObjectMacro(Interpolator, InterpolatorType);
  itkGetModifiableObjectMacro(Interpolator, InterpolatorType);

protected:
  PasteBackFilter();
  ~PasteBackFilter() override = default;

  void
  PrintSelf(std::ostream & os, Indent indent) const override;

  void
  VerifyPreconditions() ITKv5_CONST override;

  /** The patch lies on its own grid by design; the fallback is checked against the reference in
   * GenerateOutputInformation(). */
  void
  VerifyInputInformation() ITKv5_CONST override
  {
  }

  /** The output takes the reference's grid. */
  void
  GenerateOutputInformation() override;

  /** No pixel of the reference; the patch region the requested output samples; the fallback's matching region. */
  void
  GenerateInputRequestedRegion() override;

  void
  AllocateOutputs() override;

  void
  BeforeThreadedGenerateData() override;

  void
  DynamicThreadedGenerateData(const OutputImageRegionType & outputRegion) override;

  void
  AfterThreadedGenerateData() override;

private:
  OutputEnum          m_OutputMode{ OutputEnum::Probability };
  double              m_Threshold{ 0.5 };
  InterpolatorPointer m_Interpolator;
};
} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkPasteBackFilter.hxx"
#endif

#endif
