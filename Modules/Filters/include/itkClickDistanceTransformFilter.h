#ifndef itkClickDistanceTransformFilter_h
#define itkClickDistanceTransformFilter_h

#include "itkDivAttentionMacros.h"
#include "itkImage.h"
#include "itkImageToImageFilter.h"
#include "itkPoint.h"

#include <iostream>
#include <vector>

namespace itk
{
/** \class ClickDistanceTransformFilterEnums
 * \brief Enumerations of ClickDistanceTransformFilter.
 * \ingroup DivAttention
 */
class ClickDistanceTransformFilterEnums
{
public:
  /** How a distance d (mm) to the nearest click becomes a voxel value. */
  enum class Encoding : uint8_t
  {
    /** d itself: the paper's "distance transform image" (default). */
    EuclideanDistance = 0,
    /** min(d, ClipRadius) / ClipRadius: 0 on a click, 1 at and beyond the radius. */
    ClippedScaled = 1,
    /** exp(-d^2 / (2 GaussianSigma^2)): 1 on a click, towards 0 far away (MONAI's guidance style). */
    Gaussian = 2
  };
};

inline std::ostream &
operator<<(std::ostream & out, const ClickDistanceTransformFilterEnums::Encoding value)
{
  switch (value)
  {
    case ClickDistanceTransformFilterEnums::Encoding::EuclideanDistance:
      return out << "EuclideanDistance";
    case ClickDistanceTransformFilterEnums::Encoding::ClippedScaled:
      return out << "ClippedScaled";
    case ClickDistanceTransformFilterEnums::Encoding::Gaussian:
      return out << "Gaussian";
  }
  return out << "INVALID";
}

/** The value a click map holds where there is no click at all: a negative click map without negative clicks, for a
 * model that takes one (training and the coarse filter both fill it so). It is the encoding of a click 1000 mm away
 * (farther than any point of a stage-1 window from a click in it), with the filter's default radius and sigma:
 * EuclideanDistance 1000, ClippedScaled 1, Gaussian 0. */
inline float
ClickMapValueWithoutClicks(ClickDistanceTransformFilterEnums::Encoding encoding)
{
  switch (encoding)
  {
    case ClickDistanceTransformFilterEnums::Encoding::EuclideanDistance:
      return 1000.0f;
    case ClickDistanceTransformFilterEnums::Encoding::ClippedScaled:
      return 1.0f;
    case ClickDistanceTransformFilterEnums::Encoding::Gaussian:
      return 0.0f;
  }
  return 1000.0f;
}

/** \class ClickDistanceTransformFilter
 * \brief Encodes user clicks (physical points) as a map of the distance to the nearest click on a reference grid.
 *
 * The first input gives only the geometry (origin, spacing, direction, largest region): no pixel of it is requested,
 * so an unread or huge reference costs nothing. Every output voxel holds the encoded Euclidean distance, in
 * millimetres, from its physical centre to the nearest click, so oblique and anisotropic grids give true physical
 * distances. Distances are computed analytically (a click list is short), which is far faster than a
 * distance-transform of a seed image and lets every requested region be computed on its own: the filter streams and
 * threads over any output region.
 *
 * Output 0 encodes the (positive) clicks, of which there must be at least one. Output 1 (GetNegativeOutput())
 * encodes the negative clicks; without negative clicks it is left empty (no pixels buffered), so the common
 * single-click case does not pay for a second full-size image. Clicks outside the image are allowed; a click with a
 * non-finite coordinate is an error (itk::ExceptionObject).
 *
 * \ingroup DivAttention
 */
template<typename TReferenceImage, typename TOutputImage = Image<float, TReferenceImage::ImageDimension>>
class ITK_TEMPLATE_EXPORT ClickDistanceTransformFilter : public ImageToImageFilter<TReferenceImage, TOutputImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(ClickDistanceTransformFilter);

  using Self = ClickDistanceTransformFilter;
  using Superclass = ImageToImageFilter<TReferenceImage, TOutputImage>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;

  itkNewMacro(Self);
  itkDivAttentionTypeMacro(ClickDistanceTransformFilter, ImageToImageFilter);

  static constexpr unsigned int ImageDimension = TOutputImage::ImageDimension;

  using ReferenceImageType = TReferenceImage;
  using OutputImageType = TOutputImage;
  using OutputPixelType = typename TOutputImage::PixelType;
  using OutputImageRegionType = typename TOutputImage::RegionType;
  using PointType = Point<double, ImageDimension>;
  using PointListType = std::vector<PointType>;
  using EncodingEnum = ClickDistanceTransformFilterEnums::Encoding;

  /** The reference image: geometry only. */
  void
  SetReferenceImage(const ReferenceImageType * image)
  {
    this->SetInput(image);
  }
  const ReferenceImageType *
  GetReferenceImage() const
  {
    return this->GetInput();
  }

  /** Positive clicks (LPS physical points, mm). */
  virtual void
  SetClicks(const PointListType & clicks);
  itkGetConstReferenceMacro(Clicks, PointListType);
  virtual void
  AddClick(const PointType & click);

  /** Negative clicks (may be empty), encoded in output 1. */
  virtual void
  SetNegativeClicks(const PointListType & clicks);
  itkGetConstReferenceMacro(NegativeClicks, PointListType);
  virtual void
  AddNegativeClick(const PointType & click);

  /** Encoding of the distance; default EuclideanDistance. */
  itkSetEnumMacro(Encoding, EncodingEnum);
  itkGetEnumMacro(Encoding, EncodingEnum);

  /** Radius (mm, > 0) of the ClippedScaled encoding; default 20 mm. */
  itkSetMacro(ClipRadius, double);
  itkGetConstMacro(ClipRadius, double);

  /** Standard deviation (mm, > 0) of the Gaussian encoding; default 5 mm. */
  itkSetMacro(GaussianSigma, double);
  itkGetConstMacro(GaussianSigma, double);

  /** Output 1: the map of the negative clicks (empty without negative clicks). */
  OutputImageType *
  GetNegativeOutput()
  {
    return this->GetOutput(1);
  }

protected:
  ClickDistanceTransformFilter();
  ~ClickDistanceTransformFilter() override = default;

  void
  PrintSelf(std::ostream & os, Indent indent) const override;

  /** Checks the clicks and the encoding's parameter before anything runs. */
  void
  VerifyPreconditions() ITKv5_CONST override;

  /** Requests no pixel of the reference: only its geometry is used. */
  void
  GenerateInputRequestedRegion() override;

  void
  AllocateOutputs() override;

  void
  DynamicThreadedGenerateData(const OutputImageRegionType & outputRegion) override;

private:
  void
  EncodeRegion(OutputImageType * output, const PointListType & clicks, const OutputImageRegionType & region) const;

  PointListType m_Clicks;
  PointListType m_NegativeClicks;
  EncodingEnum  m_Encoding{ EncodingEnum::EuclideanDistance };
  double        m_ClipRadius{ 20.0 };
  double        m_GaussianSigma{ 5.0 };
};
} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkClickDistanceTransformFilter.hxx"
#endif

#endif
