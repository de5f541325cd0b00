#ifndef itkPCACropResampleFilter_h
#define itkPCACropResampleFilter_h

#include "itkDivAttentionMacros.h"
#include "itkFixedArray.h"
#include "itkImageToImageFilter.h"
#include "itkInterpolateImageFunction.h"

#include <iostream>

namespace itk
{
/** \class PCACropResampleFilterEnums
 * \brief Enumerations of PCACropResampleFilter.
 * \ingroup DivAttention
 */
class PCACropResampleFilterEnums
{
public:
  /** Orientation of the crop cube. */
  enum class Axes : uint8_t
  {
    /** The CT's own direction (default; the paper crops and resizes without rotating). */
    Image = 0,
    /** The object's principal axes, longest first (right-handed). */
    Principal = 1
  };
};

inline std::ostream &
operator<<(std::ostream & out, const PCACropResampleFilterEnums::Axes value)
{
  switch (value)
  {
    case PCACropResampleFilterEnums::Axes::Image:
      return out << "Image";
    case PCACropResampleFilterEnums::Axes::Principal:
      return out << "Principal";
  }
  return out << "INVALID";
}

/** \class PCACropResampleFilter
 * \brief Resamples a CT into a fixed-size cube around an object, sized by PCA of the object's mask (stage 2 input).
 *
 * Inputs: the CT (input 0) and a mask (SetMaskImage: binary, or a probability read with MaskThreshold). The two may
 * lie on different grids: everything goes through physical points.
 *
 * Geometry from the object voxels (mask >= MaskThreshold), all in physical space:
 * - centre: their centroid;
 * - principal axes and variances: eigen-decomposition of the covariance of their physical centres;
 * - longest axis length L = 2 sqrt(5 lambda_max): exact for a solid ellipsoid, whose variance along a semi-axis a
 *   is a^2 / 5 (Documentation/Filters.md discusses other shapes);
 * - cube side s = max(MarginFactor * L, MinimumSideLength).
 * The output is an ordinary ITK image of OutputSize voxels covering that cube (spacing s / OutputSize, direction the
 * CT's or the principal axes), so voxel (i, j, k) lies at the physical point it shows; CT values are interpolated
 * there (linear by default) and points outside the CT get DefaultPixelValue (-1024 HU, air).
 *
 * The geometry depends on the mask's pixels, so GenerateOutputInformation() brings the whole mask up to date first
 * (the pattern of itk::AutoCropLabelMapFilter); the CT is asked only for the region the requested output needs.
 * Any output region can be computed on its own: the filter streams and threads.
 *
 * A box instead of the mask (SetBox(corner1, corner2), a box prompt; RemoveBox() returns to the mask): the box
 * says where the object is and how large, which is what PCA of the mask says otherwise. The box is axis-aligned in
 * the CT's index space (itk::BoxPrompt: corners are physical LPS points, the CT's direction is honoured); the cube is
 * centred on the corners' midpoint, along the CT's axes (Axes is not used), and its side is
 * max(MarginFactor * L, MinimumSideLength, L) with L the box's longest side (mm) along the CT's axes in place of the
 * PCA longest axis, so the cube always holds the whole box. The mask is then not needed (not read if given).
 *
 * Errors (itk::ExceptionObject): neither a mask nor a box; an empty mask, unless UseFallback is on, in which case a
 * cube of FallbackSideLength around FallbackCenter (e.g. the user's click) is used; a mask containing NaN; a box
 * corner that is not finite; non-positive sizes or factors.
 *
 * \ingroup DivAttention
 */
template<typename TInputImage, typename TMaskImage, typename TOutputImage = TInputImage>
class ITK_TEMPLATE_EXPORT PCACropResampleFilter : public ImageToImageFilter<TInputImage, TOutputImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(PCACropResampleFilter);

  using Self = PCACropResampleFilter;
  using Superclass = ImageToImageFilter<TInputImage, TOutputImage>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;

  itkNewMacro(Self);
  itkDivAttentionTypeMacro(PCACropResampleFilter, ImageToImageFilter);

  static constexpr unsigned int ImageDimension = TOutputImage::ImageDimension;

  using InputImageType = TInputImage;
  using MaskImageType = TMaskImage;
  using OutputImageType = TOutputImage;
  using OutputPixelType = typename TOutputImage::PixelType;
  using OutputImageRegionType = typename TOutputImage::RegionType;
  using SizeType = typename TOutputImage::SizeType;
  using PointType = typename TOutputImage::PointType;
  using DirectionType = typename TOutputImage::DirectionType;
  using VarianceArrayType = FixedArray<double, ImageDimension>;
  using InterpolatorType = InterpolateImageFunction<TInputImage, double>;
  using InterpolatorPointer = typename InterpolatorType::Pointer;
  using AxesEnum = PCACropResampleFilterEnums::Axes;

  /** The mask that places the cube. */
  itkSetInputMacro(MaskImage, MaskImageType);
  itkGetInputMacro(MaskImage, MaskImageType);

  /** Voxels per axis of the output; default 96^3 (the paper's stage-2 input). */
  itkSetMacro(OutputSize, SizeType);
  itkGetConstReferenceMacro(OutputSize, SizeType);

  /** Mask values >= this are object; default 0.5. */
  itkSetMacro(MaskThreshold, double);
  itkGetConstMacro(MaskThreshold, double);

  /** Cube side / longest axis length; default 1.5 (Documentation/Filters.md). */
  itkSetMacro(MarginFactor, double);
  itkGetConstMacro(MarginFactor, double);

  /** Smallest cube side (mm); default 48 mm. */
  itkSetMacro(MinimumSideLength, double);
  itkGetConstMacro(MinimumSideLength, double);

  /** Orientation of the cube; default Image. */
  itkSetEnumMacro(Axes, AxesEnum);
  itkGetEnumMacro(Axes, AxesEnum);

  /** Interpolator of the CT; default linear. */
  itkSetObjectMacro(Interpolator, InterpolatorType);
  itkGetModifiableObjectMacro(Interpolator, InterpolatorType);

  /** Value of output voxels outside the CT; default -1024 (air in HU). */
  itkSetMacro(DefaultPixelValue, OutputPixelType);
  itkGetConstMacro(DefaultPixelValue, OutputPixelType);

  /** With an empty mask, crop a cube of FallbackSideLength (mm, default 64) around FallbackCenter instead of
   * throwing; default off. */
  itkSetMacro(UseFallback, bool);
  itkGetConstMacro(UseFallback, bool);
  itkBooleanMacro(UseFallback);
  itkSetMacro(FallbackCenter, PointType);
  itkGetConstReferenceMacro(FallbackCenter, PointType);
  itkSetMacro(FallbackSideLength, double);
  itkGetConstMacro(FallbackSideLength, double);

  /** Place the cube by a box (two opposite corners, physical points) instead of the mask; see the class
   * description. */
  virtual void
  SetBox(const PointType & corner1, const PointType & corner2);
  /** Place the cube by the mask again. */
  virtual void
  RemoveBox();
  /** Whether a box places the cube. */
  itkGetConstMacro(UseBox, bool);
  itkGetConstReferenceMacro(BoxCorner1, PointType);
  itkGetConstReferenceMacro(BoxCorner2, PointType);

  /** Geometry found by the last GenerateOutputInformation(). */
  itkGetConstReferenceMacro(CropCenter, PointType);
  itkGetConstMacro(CropSideLength, double);
  /** Columns are the cube's axes (the output's direction). */
  itkGetConstReferenceMacro(CropAxes, DirectionType);
  itkGetConstMacro(LongestAxisLength, double);
  /** Columns are the principal axes, longest first; right-handed. */
  itkGetConstReferenceMacro(PrincipalAxes, DirectionType);
  /** Variances (mm^2) along the principal axes, largest first. */
  itkGetConstReferenceMacro(PrincipalVariances, VarianceArrayType);
  itkGetConstMacro(NumberOfObjectVoxels, SizeValueType);
  /** Whether the last geometry came from the fallback (empty mask). */
  itkGetConstMacro(UsedFallback, bool);

protected:
  PCACropResampleFilter();
  ~PCACropResampleFilter() override = default;

  void
  PrintSelf(std::ostream & os, Indent indent) const override;

  void
  VerifyPreconditions() ITKv5_CONST override;

  /** The CT and the mask need not share a grid: both are read through physical points. */
  void
  VerifyInputInformation() ITKv5_CONST override
  {
  }

  /** Updates the whole mask, computes the crop geometry from it and sets the output's geometry. */
  void
  GenerateOutputInformation() override;

  /** The whole mask (the geometry needs it), and only the CT region that the requested output samples. */
  void
  GenerateInputRequestedRegion() override;

  void
  BeforeThreadedGenerateData() override;

  void
  DynamicThreadedGenerateData(const OutputImageRegionType & outputRegion) override;

  void
  AfterThreadedGenerateData() override;

private:
  void
  ComputeCropGeometry();
  void
  ComputeBoxGeometry();

  SizeType            m_OutputSize;
  double              m_MaskThreshold{ 0.5 };
  double              m_MarginFactor{ 1.5 };
  double              m_MinimumSideLength{ 48.0 };
  AxesEnum            m_Axes{ AxesEnum::Image };
  InterpolatorPointer m_Interpolator;
  OutputPixelType     m_DefaultPixelValue;
  bool                m_UseFallback{ false };
  PointType           m_FallbackCenter;
  double              m_FallbackSideLength{ 64.0 };
  bool                m_UseBox{ false };
  PointType           m_BoxCorner1;
  PointType           m_BoxCorner2;

  PointType         m_CropCenter;
  double            m_CropSideLength{ 0.0 };
  DirectionType     m_CropAxes;
  double            m_LongestAxisLength{ 0.0 };
  DirectionType     m_PrincipalAxes;
  VarianceArrayType m_PrincipalVariances;
  SizeValueType     m_NumberOfObjectVoxels{ 0 };
  bool              m_UsedFallback{ false };
};
} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkPCACropResampleFilter.hxx"
#endif

#endif
