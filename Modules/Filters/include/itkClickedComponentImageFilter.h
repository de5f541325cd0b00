#ifndef itkClickedComponentImageFilter_h
#define itkClickedComponentImageFilter_h

#include "itkDivAttentionMacros.h"
#include "itkImageToImageFilter.h"
#include "itkPoint.h"

#include <iostream>
#include <vector>

namespace itk
{
/** \class ClickedComponentImageFilter
 * \brief Keeps the connected components of a thresholded probability (or label) image that the user clicked.
 *
 * Why: the paper crops stage 2's patch around the stage-1 mask by PCA. When that mask also holds a second object
 * (a neighbouring organ the coarse network half-believes in), the centroid and the longest axis fall between the two
 * and the crop misses the clicked object. Keeping only the clicked component first makes the crop follow the click.
 *
 * Object voxels are those with value >= Threshold; components are face-connected (6 neighbours in 3D). Every click
 * (a physical point) seeds the component under it; a click whose voxel is not object (a small target at a coarse
 * spacing, or a click on its border) seeds the object voxel nearest to it within SearchRadius mm (physical distance,
 * so anisotropic and oblique grids are honoured). The output (same grid as the input) is 1 on the seeded components
 * and 0 elsewhere. When no click seeds anything, the output is every object voxel (the plain threshold) and
 * GetUsedAllComponents() says so: the caller's own fallback (e.g. PCACropResampleFilter's crop around the click
 * for an empty mask) still decides what an empty mask means. With EmptyWhenNothingClicked on, the output is then
 * empty instead (the click found nothing: what a click-guided tool answers).
 *
 * The components are grown by ITK's ConnectedThresholdImageFilter from the seeds (the plain threshold by
 * BinaryThresholdImageFilter when there is none); the whole input is read and the whole output computed (components
 * are global). Meant for the stage-1 grid, which is small (a 40 cm region at 3 mm is 134^3 voxels).
 *
 * Errors (itk::ExceptionObject naming the input): no click.
 * \ingroup DivAttention
 */
template<typename TInputImage, typename TOutputImage>
class ITK_TEMPLATE_EXPORT ClickedComponentImageFilter : public ImageToImageFilter<TInputImage, TOutputImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(ClickedComponentImageFilter);
  using Self = ClickedComponentImageFilter;
  using Superclass = ImageToImageFilter<TInputImage, TOutputImage>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkDivAttentionTypeMacro(ClickedComponentImageFilter, ImageToImageFilter);

  static constexpr unsigned int ImageDimension = TInputImage::ImageDimension;
  using InputImageType = TInputImage;
  using OutputImageType = TOutputImage;
  using PointType = Point<double, ImageDimension>;
  using PointListType = std::vector<PointType>;

  /** Physical points (LPS, as every ITK image); at least one. */
  void
  SetClicks(const PointListType & clicks);
  const PointListType &
  GetClicks() const
  {
    return m_Clicks;
  }
  /** Values >= this are object; default 0.5. */
  itkSetMacro(Threshold, double);
  itkGetConstMacro(Threshold, double);
  /** How far (mm) from a click that misses the object its nearest object voxel may lie; default 10. */
  itkSetMacro(SearchRadius, double);
  itkGetConstMacro(SearchRadius, double);
  /** When no click seeds a component: off (default), the output is every object voxel; on, it is empty (e.g. to
   * score stage 1 alone as the pipeline reads it for a click: DivAttentionEvaluate's stage-1 column). */
  itkSetMacro(EmptyWhenNothingClicked, bool);
  itkGetConstMacro(EmptyWhenNothingClicked, bool);
  itkBooleanMacro(EmptyWhenNothingClicked);
  /** After Update(): true when no click seeded a component (the output is every object voxel, or empty with
   * EmptyWhenNothingClicked). */
  itkGetConstMacro(UsedAllComponents, bool);
  /** After Update(): object voxels in the output. */
  itkGetConstMacro(NumberOfObjectVoxels, SizeValueType);

protected:
  ClickedComponentImageFilter() = default;
  ~ClickedComponentImageFilter() override = default;
  void
  GenerateInputRequestedRegion() override;
  void
  EnlargeOutputRequestedRegion(DataObject * output) override;
  void
  GenerateData() override;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  PointListType m_Clicks;
  double        m_Threshold{ 0.5 };
  double        m_SearchRadius{ 10.0 };
  bool          m_EmptyWhenNothingClicked{ false };
  bool          m_UsedAllComponents{ false };
  SizeValueType m_NumberOfObjectVoxels{ 0 };
};
} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkClickedComponentImageFilter.hxx"
#endif

#endif
