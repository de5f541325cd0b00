#ifndef itkCoarseBandRefinementImageFilter_h
#define itkCoarseBandRefinementImageFilter_h

#include "itkDivAttentionMacros.h"
#include "itkImage.h"
#include "itkImageToImageFilter.h"

#include <iostream>

namespace itk
{
/** \class CoarseBandRefinementImageFilter
 * \brief Lets stage 2 decide the border only: the refined probability inside a band around the coarse mask's border,
 * the coarse mask's own answer elsewhere.
 *
 * Input 0 is the refined probability on the patch grid (DivAttentionRefineFilter's output); the input "CoarseMask" is
 * the coarse probability (or the clicked component of it) on its own grid (any geometry). The coarse mask (value >=
 * Threshold, sampled at each patch voxel's centre by linear interpolation, 0 outside its grid) is split by its
 * physical distance to its border (SignedMaurerDistanceMapImageFilter on the patch grid, with spacing):
 * - more than BandWidth mm inside: probability 1 (the coarse stage found the object there);
 * - more than BandWidth mm outside: probability 0 (the refinement cannot add another object: a neighbouring organ in
 *   the crop);
 * - within BandWidth mm of the border: the refined probability.
 * Distances are measured between voxel centres of the patch grid, so the band is exact to half a patch voxel.
 *
 * Why (Documentation/Pipeline.md, "Stage 2 within the coarse border"): a refinement that segments a neighbouring
 * object in its crop, or misses part of the clicked one, made the whole pipeline worse than stage 1 alone (held-out
 * phantom organs: Dice 0.888 -> 0.765 with the bundled refinement); bounded to the band it changes the coarse mask
 * only where the coarse mask's own resolution leaves the border undecided.
 *
 * An empty coarse mask (nothing >= Threshold on the patch grid) leaves the refined probability as it is
 * (GetCoarseMaskIsEmpty()): the pipeline's fallback crop then has nothing else to go by. The output has the geometry
 * of input 0; the whole patch is computed at once.
 *
 * Errors (itk::ExceptionObject naming the parameter): a negative or non-finite BandWidth, a Threshold outside (0, 1).
 * \ingroup DivAttention
 */
template<typename TImage = Image<float, 3>, typename TCoarseImage = Image<float, 3>>
class ITK_TEMPLATE_EXPORT CoarseBandRefinementImageFilter : public ImageToImageFilter<TImage, TImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(CoarseBandRefinementImageFilter);

  using Self = CoarseBandRefinementImageFilter;
  using Superclass = ImageToImageFilter<TImage, TImage>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkDivAttentionTypeMacro(CoarseBandRefinementImageFilter, ImageToImageFilter);
  static_assert(TImage::ImageDimension == 3 && TCoarseImage::ImageDimension == 3, "3D images only");

  using ImageType = TImage;
  using CoarseImageType = TCoarseImage;

  /** The coarse probability (or mask) whose border bounds the refinement. */
  itkSetInputMacro(CoarseMask, CoarseImageType);
  itkGetInputMacro(CoarseMask, CoarseImageType);

  /** Coarse values at and above this are object; default 0.5. */
  itkSetMacro(Threshold, double);
  itkGetConstMacro(Threshold, double);

  /** Half-width of the band, mm; default 1.5 (half a voxel of the bundled 3 mm coarse grid). 0: the coarse mask's
   * answer everywhere except on its border voxels. */
  itkSetMacro(BandWidth, double);
  itkGetConstMacro(BandWidth, double);

  /** Smallest fraction of the coarse object (its voxels on the patch grid) the banded refinement must keep; default
   * 0.5. A refinement that keeps less is not a refinement of the coarse object but a disagreement with it (on real CT
   * the bundled refinement, trained on phantoms, answers "background" on thin or low-contrast objects that stage 1
   * found: the duodenum, the gallbladder): the coarse mask then stands on the patch, GetRefinementRejected() is true.
   * 0 keeps every refinement. */
  itkSetClampMacro(MinimumKeptFraction, double, 0.0, 1.0);
  itkGetConstMacro(MinimumKeptFraction, double);

  /** After Update(): the coarse mask had no object voxel on the patch grid, so the refinement was passed through. */
  itkGetConstMacro(CoarseMaskIsEmpty, bool);
  /** After Update(): the refinement kept less than MinimumKeptFraction of the coarse object, which stands instead. */
  itkGetConstMacro(RefinementRejected, bool);

protected:
  CoarseBandRefinementImageFilter();
  ~CoarseBandRefinementImageFilter() override = default;

  void
  PrintSelf(std::ostream & os, Indent indent) const override;
  void
  VerifyPreconditions() ITKv5_CONST override;
  /** The two inputs lie on different grids by design (the patch and the coarse grid). */
  void
  VerifyInputInformation() ITKv5_CONST override
  {
  }
  /** Input 0 and the output whole; the coarse mask whole (it is small). */
  void
  GenerateInputRequestedRegion() override;
  void
  EnlargeOutputRequestedRegion(DataObject * output) override;
  void
  GenerateData() override;

private:
  double m_Threshold{ 0.5 };
  double m_BandWidth{ 1.5 };
  double m_MinimumKeptFraction{ 0.5 };
  bool   m_CoarseMaskIsEmpty{ false };
  bool   m_RefinementRejected{ false };
};
} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkCoarseBandRefinementImageFilter.hxx"
#endif

#endif
