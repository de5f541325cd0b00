#ifndef itkClickGuidedSegmentationFilter_h
#define itkClickGuidedSegmentationFilter_h

#include "itkClickDistanceTransformFilter.h"
#include "itkClickedComponentImageFilter.h"
#include "itkCoarseBandRefinementImageFilter.h"
#include "itkCoarseSegmentationFilter.h"
#include "itkDivAttentionMacros.h"
#include "itkDivAttentionRefineFilter.h"
#include "itkImage.h"
#include "itkImageToImageFilter.h"
#include "itkMaskCorrectionSupport.h"
#include "itkPCACropResampleFilter.h"
#include "itkPasteBackFilter.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace itk
{
/** \class ClickGuidedSegmentationFilter
 * \brief A CT and a click in, a full-resolution mask out: the whole coarse-to-fine pipeline of the paper.
 *
 * Internal mini-pipeline: ClickDistanceTransformFilter (click map on the CT grid, encoded as the coarse model says)
 * -> CoarseSegmentationFilter (stage 1 around the first click) -> ClickedComponentImageFilter (the coarse mask's
 * components the clicks touch; KeepClickedComponent) -> PCACropResampleFilter (cube sized by PCA of that mask,
 * resampled to the refine model's patch size) -> DivAttentionRefineFilter (stage 2; a click map on the patch grid is
 * added when the refine model takes one) -> CoarseBandRefinementImageFilter (stage 2 decides only within
 * RefinementBand coarse voxels of the coarse mask's border) -> PasteBackFilter (probability back on the CT grid) ->
 * threshold. Progress is accumulated over the steps.
 *
 * A box prompt (SetBox(corner1, corner2), two opposite corners, physical LPS points; RemoveBox() unsets it) says
 * where the object is and how large, which is what stage 1 and the PCA of its mask say otherwise: stage 1 is then
 * skipped, the crop is placed by the box (PCACropResampleFilter::SetBox: a cube around the box, the box's longest side
 * in place of the PCA longest axis), the refinement decides alone (no coarse mask, so no RefinementBand), and the
 * result is restricted to the box: voxels outside it are background. The box is axis-aligned in the CT's index space
 * (itk::BoxPrompt); both corners must lie inside the image and be at least half a voxel apart along each image axis.
 * Clicks are optional with a box: given, they must lie in the box and go into the refine model's click map as usual;
 * without any, the box's centre is the refine model's click (a model trained with clicks inside the object, and the
 * centre of a box drawn around an object is the best single guess of a point inside it), and "nothing found" means
 * an empty mask in the box. GetCoarseProbability() is null after a run with a box.
 *
 * If the coarse mask is empty, the crop is a cube of FallbackCropSize mm centred on the first click
 * (GetUsedFallbackCrop(), and the output's MetaDataDictionary key "DivAttention.FallbackCrop" is "true").
 *
 * The mask holds the first click (a voxel within ClickTolerance mm of it), or the networks found nothing there and
 * GetNothingFoundAtClick() is true (metadata key "DivAttention.NothingFoundAtClick"): when the final mask misses the
 * click, when no click touched a coarse mask that is not empty (GetUsedAllCoarseComponents()), or when less than
 * MinimumClickTissueFraction of the mask is of the clicked tissue (GetMaskNotOfClickedTissue()). No object elsewhere
 * is returned in its place: the output is then the click's like-intensity region (MaskCorrectionSupport::
 * LikeIntensityRegion() within NothingFoundRadius mm, as a session answers such a first click;
 * GetUsedLikeIntensityFallback(), metadata key "DivAttention.LikeIntensityFallback"), or empty with
 * LikeIntensityWhenNothingFound off. Documentation/Pipeline.md, "When the networks find nothing".
 * Bad input is an itk::ExceptionObject naming it (SegmentationInputCheck): a volume under 4 voxels along an axis, of
 * voxels coarser than 10 mm or of one value everywhere, a click on the air around the patient, a click outside the
 * image, a NaN or infinite voxel.
 *
 * Output 0: the label image (1 = object) on the input's grid with its geometry. Streaming
 * (Documentation/Pipeline.md): the networks need whole windows, so the first request computes the whole result once
 * and keeps it; every requested region (e.g. each piece of a StreamingImageFilter) is then copied from it, until
 * the input or a parameter changes. The input is requested whole.
 *
 * Intermediate results (after Update()): GetProbabilityImage() (float, input grid), GetCoarseProbability() (its own
 * grid), GetCrop() (the patch), GetRefinedPatch(), GetAttentionMap() (patch grid), GetDeviceUsed().
 * Errors are itk::ExceptionObject from the step that failed, naming the input.
 * \ingroup DivAttention
 */
template<typename TInputImage, typename TOutputImage = Image<uint8_t, 3>>
class ITK_TEMPLATE_EXPORT ClickGuidedSegmentationFilter : public ImageToImageFilter<TInputImage, TOutputImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(ClickGuidedSegmentationFilter);

  using Self = ClickGuidedSegmentationFilter;
  using Superclass = ImageToImageFilter<TInputImage, TOutputImage>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;

  itkNewMacro(Self);
  itkDivAttentionTypeMacro(ClickGuidedSegmentationFilter, ImageToImageFilter);

  static_assert(TInputImage::ImageDimension == 3 && TOutputImage::ImageDimension == 3, "3D images only");

  using InputImageType = TInputImage;
  using OutputImageType = TOutputImage;
  using FloatImageType = Image<float, 3>;
  using PointType = Point<double, 3>;
  using PointListType = std::vector<PointType>;
  using ModelPointer = std::shared_ptr<diva::LoadedModel>;
  using OutputImageRegionType = typename TOutputImage::RegionType;

  /** Models: a file each, or an already loaded (shared, read-only) model each; a loaded model wins. */
  itkSetStringMacro(CoarseModelFile);
  itkGetStringMacro(CoarseModelFile);
  itkSetStringMacro(RefineModelFile);
  itkGetStringMacro(RefineModelFile);
  virtual void
  SetCoarseModel(ModelPointer model);
  virtual void
  SetRefineModel(ModelPointer model);
  ModelPointer
  GetCoarseModel() const
  {
    return m_CoarseModel;
  }
  ModelPointer
  GetRefineModel() const
  {
    return m_RefineModel;
  }

  /** Positive clicks (physical LPS, mm; at least one without a box; the first places the coarse region and the
   * fallback crop). */
  virtual void
  SetClicks(const PointListType & clicks);
  itkGetConstReferenceMacro(Clicks, PointListType);
  /** Negative clicks (optional). A coarse model with a negative click map (a third input channel) reads them; with
   * the others (the bundled models) each removes the part of the mask geodesically closer to it than to every
   * positive click (MaskCorrectionSupport::GeodesicCarve; Documentation/Pipeline.md, "Corrections"). */
  virtual void
  SetNegativeClicks(const PointListType & clicks);
  itkGetConstReferenceMacro(NegativeClicks, PointListType);
  /** The mask to correct (optional; non-zero = object, on the CT's grid, else itk::ExceptionObject naming it). The
   * output is then what ClickGuidedSegmentationSession gives when started from this mask and given the positive
   * clicks, then the negative clicks: a positive click outside the mask runs the pipeline at that click alone and adds
   * the part of the result's component under it that MaskCorrectionSupport::PositiveCorrection() keeps (of the click's
   * tissue and near it; all of it when the mask is empty), one inside it keeps that part from the negative clicks, and
   * each negative click carves (above; a coarse model with a negative click map also reads them in each run). Positive
   * clicks may then be none. The nothing-found rule below does not apply: the output holds the previous mask at least.
   */
  itkSetInputMacro(PreviousMask, OutputImageType);
  itkGetInputMacro(PreviousMask, OutputImageType);

  /** "auto" (default), "cpu", "cuda", "cuda:N". */
  itkSetStringMacro(Device);
  itkGetStringMacro(Device);

  /** Probability at and above which a voxel is object; default 0.5 (also the coarse mask's threshold). */
  itkSetMacro(Threshold, double);
  itkGetConstMacro(Threshold, double);

  /** Crop cube side / longest axis length of the coarse mask. Default (any value <= 0): the refine model file's
   * `crop_margin`, the margin it was trained with (1.5 for files without the record). */
  itkSetMacro(CropMarginFactor, double);
  itkGetConstMacro(CropMarginFactor, double);
  /** Smallest crop side, mm. Default (any negative value): the refine model file's `crop_minimum_side` (48 mm for
   * files without the record). */
  itkSetMacro(CropMinimumSize, double);
  itkGetConstMacro(CropMinimumSize, double);
  /** Orient the crop along the object's principal axes (default off: the CT's axes, as the paper). */
  itkSetMacro(AlignCropWithPrincipalAxes, bool);
  itkGetConstMacro(AlignCropWithPrincipalAxes, bool);
  itkBooleanMacro(AlignCropWithPrincipalAxes);
  /** Crop around only the coarse mask's components that the clicks touch (ClickedComponentImageFilter; default on).
   * Off, the crop is placed by PCA of the whole coarse mask, as the paper states it: a second object in that mask
   * (a neighbouring organ) then pulls the crop away from the click. GetUsedAllCoarseComponents() tells when no click
   * touched the mask and the whole of it was used. */
  itkSetMacro(KeepClickedComponent, bool);
  itkGetConstMacro(KeepClickedComponent, bool);
  itkBooleanMacro(KeepClickedComponent);
  /** Half-width of the band around the coarse mask's border (the clicked component) within which stage 2 decides, in
   * voxels of the coarse model's grid (its largest target spacing); default 0.5 (1.5 mm for a 3 mm coarse model).
   * Deeper inside the coarse mask the result is object, farther outside it is background
   * (CoarseBandRefinementImageFilter), so a refinement that bleeds into a neighbouring object or hollows the clicked
   * one cannot make the coarse mask worse beyond the band. A negative value switches the band off: the refinement's
   * mask as it is (the paper's literal pipeline). An empty coarse mask (the fallback crop) leaves the refinement as it
   * is. Documentation/Pipeline.md, "Stage 2 within the coarse border". */
  itkSetMacro(RefinementBand, double);
  itkGetConstMacro(RefinementBand, double);
  /** How far (mm) the mask's nearest voxel may lie from the first click for the mask to count as found at the click
   * (GetNothingFoundAtClick()). Default (any negative value): one voxel diagonal of the coarse model's grid (sqrt(3) x
   * its largest spacing: 5.2 mm for a 3 mm model), the coarse stage's own resolution, so a click on a thin or small
   * object (a duodenal wall, the gallbladder) whose mask the 3 mm stage places a voxel off is not thrown away; 0: the
   * click's own voxel must be object. */
  itkSetMacro(ClickTolerance, double);
  itkGetConstMacro(ClickTolerance, double);
  /** The click tolerance (mm) of the last run: ClickTolerance, or its default from the coarse model's spacing. A
   * session seeds the clicked component with the mask's voxel nearest to the click within it
   * (SegmentationInputCheck::NearestVoxelWithin). */
  itkGetConstMacro(UsedClickTolerance, double);
  /** When the networks find nothing at the first click (GetNothingFoundAtClick()), return the click's like-intensity
   * region (connected voxels within mean +- max(2.5 SD, 20 HU) of its 3 x 3 x 3 neighbourhood, within
   * NothingFoundRadius mm) instead of an empty mask. Default on: a click inside the body always lies on some tissue
   * the user pointed at, and a session answers such a first click the same way. Off: the empty mask (callers that
   * want the networks' answer alone). With a box the region stays inside it; a box without a click never falls
   * back. */
  itkSetMacro(LikeIntensityWhenNothingFound, bool);
  itkGetConstMacro(LikeIntensityWhenNothingFound, bool);
  itkBooleanMacro(LikeIntensityWhenNothingFound);
  /** The like-intensity region's radius (mm) for LikeIntensityWhenNothingFound; default
   * MaskCorrectionSupport::LikeIntensityNothingFoundRadius (30 mm). Must be positive. */
  itkSetMacro(NothingFoundRadius, double);
  itkGetConstMacro(NothingFoundRadius, double);
  /** Grow the like-intensity region of LikeIntensityWhenNothingFound to twice NothingFoundRadius where the click's
   * tissue is homogeneous and the region fills most of its ball (an object larger than the ball: a liver, a spleen;
   * MaskCorrectionSupport::WholeObjectLikeIntensityRegion()); default on. Off: always within NothingFoundRadius. */
  itkSetMacro(GrowLargeNothingFoundRegion, bool);
  itkGetConstMacro(GrowLargeNothingFoundRegion, bool);
  itkBooleanMacro(GrowLargeNothingFoundRegion);
  /** The share of the networks' mask that must be of the clicked tissue (MaskCorrectionSupport::ClickTissueFraction():
   * voxels in the click's like-intensity band) for the mask to count as found at the click; default 0.3, 0 turns
   * the check off. Below it the networks marked another tissue that merely touches the click (vertebral bone for a
   * click on the spinal cord, a vein's wall and fat for a click in the vein), and the mask is treated as nothing
   * found (GetNothingFoundAtClick(), GetMaskNotOfClickedTissue()). Documentation/Pipeline.md, "When the networks
   * find nothing". */
  itkSetClampMacro(MinimumClickTissueFraction, double, 0.0, 1.0);
  itkGetConstMacro(MinimumClickTissueFraction, double);
  /** Crop side (mm) around the click when the coarse mask is empty; default 64. */
  itkSetMacro(FallbackCropSize, double);
  itkGetConstMacro(FallbackCropSize, double);
  /** Largest region (mm) the coarse stage may grow to; default 400. */
  itkSetMacro(CoarseMaximumExtent, double);
  itkGetConstMacro(CoarseMaximumExtent, double);
  /** CoarseSegmentationFilter::WindowPlacement for every stage-1 run (default AsTrained: as the coarse model file
   * says; InsideImage / CentredOnClick override it). */
  using CoarseWindowPlacementEnum = CoarseSegmentationFilterEnums::WindowPlacement;
  itkSetEnumMacro(CoarseWindowPlacement, CoarseWindowPlacementEnum);
  itkGetEnumMacro(CoarseWindowPlacement, CoarseWindowPlacementEnum);
  /** Keep the refined probability pasted onto the input's grid (GetProbabilityImage(); default on). Off, the patch
   * is pasted straight into the label (PasteBackFilter's Label mode, the same threshold), which saves a float image
   * of the input's size (315 MB for 512x512x300) and the threshold pass; GetProbabilityImage() is then null. */
  itkSetMacro(ComputeProbabilityImage, bool);
  itkGetConstMacro(ComputeProbabilityImage, bool);
  itkBooleanMacro(ComputeProbabilityImage);
  /** Compute the refinement's attention map (GetAttentionMap(); default on). Off, the refinement network writes no
   * maps and GetAttentionMap() is all zeros; the mask is the same. */
  itkSetMacro(ComputeAttentionMap, bool);
  itkGetConstMacro(ComputeAttentionMap, bool);
  itkBooleanMacro(ComputeAttentionMap);
  /** Give LibTorch's cached host blocks back to the system when each network stage ends (default off). The caching
   * host allocator (diva::InstallHostAllocator) serves a request from cached blocks of any size (best fit, or several
   * moved together), so stage 1's cache becomes stage 2's buffers and keeping it costs no memory beyond the larger
   * stage (paper presets, 512x512x300 CT: 1364 MiB peak either way), while a release makes the next stage and the
   * next click first-touch their buffers again (+0.2-0.3 s). On, for a process that keeps the filter idle between
   * clicks and wants that memory back. Only cached blocks are released; a run in another thread keeps everything it
   * holds. */
  itkSetMacro(ReleaseCacheBetweenStages, bool);
  itkGetConstMacro(ReleaseCacheBetweenStages, bool);
  itkBooleanMacro(ReleaseCacheBetweenStages);

  /** A box prompt: two opposite corners (physical LPS, mm), in any order; see the class description. */
  virtual void
  SetBox(const PointType & corner1, const PointType & corner2);
  /** Back to the click-only pipeline (stage 1 places the crop). */
  virtual void
  RemoveBox();
  /** Whether a box is set. */
  itkGetConstMacro(UseBox, bool);
  itkGetConstReferenceMacro(BoxCorner1, PointType);
  itkGetConstReferenceMacro(BoxCorner2, PointType);

  /** Intermediate results of the last run (the probability image only with ComputeProbabilityImage on). */
  FloatImageType *
  GetProbabilityImage() const
  {
    return m_ProbabilityImage.GetPointer();
  }
  FloatImageType *
  GetCoarseProbability() const
  {
    return m_CoarseProbability.GetPointer();
  }
  FloatImageType *
  GetCrop() const
  {
    return m_Crop.GetPointer();
  }
  FloatImageType *
  GetRefinedPatch() const
  {
    return m_RefinedPatch.GetPointer();
  }
  FloatImageType *
  GetAttentionMap() const
  {
    return m_AttentionMap.GetPointer();
  }
  itkGetConstMacro(UsedFallbackCrop, bool);
  /** After Update(), with KeepClickedComponent on: no click touched the coarse mask, so the whole mask placed the
   * crop. */
  itkGetConstMacro(UsedAllCoarseComponents, bool);
  /** After Update(): the mask missed the first click's voxel, or no click touched the coarse mask; the output is then
   * empty (see the class description). */
  itkGetConstMacro(NothingFoundAtClick, bool);
  /** After Update(): the networks' mask held the click but less than MinimumClickTissueFraction of it was of the
   * clicked tissue, so it counts as nothing found (GetNothingFoundAtClick() is true too); metadata key
   * "DivAttention.MaskNotOfClickedTissue". GetClickTissueFraction(): that share for the networks' mask (1 when the
   * check did not run: no click, nothing found already, or the check off). */
  itkGetConstMacro(MaskNotOfClickedTissue, bool);
  itkGetConstMacro(ClickTissueFraction, double);
  /** After Update(): nothing was found at the click and the output is its like-intensity region
   * (LikeIntensityWhenNothingFound). */
  itkGetConstMacro(UsedLikeIntensityFallback, bool);
  /** After Update() with GetUsedLikeIntensityFallback(): the radius (mm) the region was grown within
   * (NothingFoundRadius, or twice it for a large homogeneous object: GrowLargeNothingFoundRegion); 0 otherwise. */
  itkGetConstMacro(UsedNothingFoundRadius, double);
  itkGetStringMacro(DeviceUsed);
  /** Windows the coarse stage ran. */
  itkGetConstMacro(NumberOfCoarseWindows, unsigned int);

  /** Wall-clock seconds each step of the last run took, in pipeline order ("click map", "coarse segmentation",
   * "crop", "crop click map", "refinement", "paste back", "threshold"), measured from each internal filter's
   * StartEvent to its EndEvent (benchmarks and --verbose logs; a step that did not run is absent). */
  const std::vector<std::pair<std::string, double>> &
  GetStepSeconds() const
  {
    return m_StepSeconds;
  }

  /** Stage 1 alone, for a positive correction click (ClickGuidedSegmentationSession, and the PreviousMask mode
   * above): the coarse model's probability on one window of its patch size centred on `click` (the window shifted
   * inside the CT where the click lies near its edge; the click map computed only under it), with `negatives` as the
   * negative click map when the coarse model reads one. No refinement, no paste back: the caller keeps the part near
   * the click (MaskCorrectionSupport::PositiveCorrectionFromProbability()). Uses this filter's input, models, device
   * and threshold; replaces GetStepSeconds() ("click map", "coarse segmentation"), changes no output. Errors as
   * Update() (a click outside the image, no model, a bad model). */
  FloatImageType::Pointer
  RunCoarseWindow(const PointType & click, const PointListType & negatives);

  /** Metadata key of the output that records the fallback crop ("true"/"false"). */
  static constexpr const char * FallbackCropKey = "DivAttention.FallbackCrop";
  /** Metadata key of the output that records GetNothingFoundAtClick() ("true"/"false"). */
  static constexpr const char * NothingFoundAtClickKey = "DivAttention.NothingFoundAtClick";
  /** Metadata key of the output that records GetMaskNotOfClickedTissue() ("true"/"false"). */
  static constexpr const char * MaskNotOfClickedTissueKey = "DivAttention.MaskNotOfClickedTissue";
  /** Metadata key of the output that records GetUsedLikeIntensityFallback() ("true"/"false"). */
  static constexpr const char * LikeIntensityFallbackKey = "DivAttention.LikeIntensityFallback";

protected:
  ClickGuidedSegmentationFilter();
  ~ClickGuidedSegmentationFilter() override = default;

  void
  PrintSelf(std::ostream & os, Indent indent) const override;

  void
  VerifyPreconditions() ITKv5_CONST override;

  /** The previous mask must lie on the CT's grid (size, origin, spacing, direction). */
  void
  VerifyInputInformation() ITKv5_CONST override;

  /** The networks need the whole input. */
  void
  GenerateInputRequestedRegion() override;

  /** Runs the mini-pipeline once per change, then serves the requested region from its result. */
  void
  GenerateData() override;

private:
  /** The networks at the clicks (or the box); with `likeIntensityFallback`, a first click on which they find nothing
   * gets its like-intensity region (LikeIntensityWhenNothingFound; the PreviousMask mode adds it as a session does). */
  void
  RunPipeline(bool likeIntensityFallback);
  /** Negative clicks that carve (models without a negative click map) and the previous mask
   * (Documentation/Pipeline.md, "Corrections"). */
  void
  RunWithCorrections();

  using ClickMapFilterType = ClickDistanceTransformFilter<InputImageType, FloatImageType>;
  using CropClickMapFilterType = ClickDistanceTransformFilter<FloatImageType, FloatImageType>;
  using CoarseFilterType = CoarseSegmentationFilter<InputImageType, FloatImageType>;
  using CropFilterType = PCACropResampleFilter<InputImageType, FloatImageType, FloatImageType>;
  using ComponentFilterType = ClickedComponentImageFilter<FloatImageType, FloatImageType>;
  using RefineFilterType = DivAttentionRefineFilter<FloatImageType, FloatImageType>;
  using BandFilterType = CoarseBandRefinementImageFilter<FloatImageType, FloatImageType>;
  using PasteFilterType = PasteBackFilter<FloatImageType, FloatImageType, InputImageType, FloatImageType>;
  using LabelPasteFilterType = PasteBackFilter<FloatImageType, OutputImageType, InputImageType, OutputImageType>;

  std::string               m_CoarseModelFile;
  std::string               m_RefineModelFile;
  ModelPointer              m_CoarseModel;
  ModelPointer              m_RefineModel;
  PointListType             m_Clicks;
  PointListType             m_NegativeClicks;
  std::string               m_Device{ "auto" };
  double                    m_Threshold{ 0.5 };
  double                    m_CropMarginFactor{ -1.0 };
  double                    m_CropMinimumSize{ -1.0 };
  bool                      m_AlignCropWithPrincipalAxes{ false };
  bool                      m_KeepClickedComponent{ true };
  double                    m_RefinementBand{ 0.5 };
  double                    m_FallbackCropSize{ 64.0 };
  bool                      m_LikeIntensityWhenNothingFound{ true };
  double                    m_NothingFoundRadius{ MaskCorrectionSupport::LikeIntensityNothingFoundRadius };
  double                    m_MinimumClickTissueFraction{ 0.3 };
  bool                      m_GrowLargeNothingFoundRegion{ true };
  double                    m_ClickTolerance{ -1.0 };
  double                    m_UsedClickTolerance{ 0.0 };
  double                    m_CoarseMaximumExtent{ 400.0 };
  CoarseWindowPlacementEnum m_CoarseWindowPlacement{ CoarseWindowPlacementEnum::AsTrained };
  bool                      m_ComputeProbabilityImage{ true };
  bool                      m_ComputeAttentionMap{ true };
  bool                      m_ReleaseCacheBetweenStages{ false };
  bool                      m_UseBox{ false };
  PointType                 m_BoxCorner1{};
  PointType                 m_BoxCorner2{};

  // Models loaded from the files, kept until the file or the device changes.
  ModelPointer
               ResolveModel(const ModelPointer & given,
                            const std::string &  file,
                            ModelPointer &       cache,
                            std::string &        cacheKey,
                            const std::string &  what);
  ModelPointer m_CoarseFileModel;
  std::string  m_CoarseFileModelKey;
  ModelPointer m_RefineFileModel;
  std::string  m_RefineFileModelKey;

  // Result of the last run and what it was computed from.
  typename OutputImageType::Pointer           m_Label;
  FloatImageType::Pointer                     m_ProbabilityImage;
  FloatImageType::Pointer                     m_CoarseProbability;
  FloatImageType::Pointer                     m_Crop;
  FloatImageType::Pointer                     m_RefinedPatch;
  FloatImageType::Pointer                     m_AttentionMap;
  const InputImageType *                      m_ResultInput{ nullptr };
  std::vector<std::pair<std::string, double>> m_StepSeconds;
  ModifiedTimeType                            m_ResultTime{ 0 };
  bool                                        m_UsedFallbackCrop{ false };
  bool                                        m_UsedAllCoarseComponents{ false };
  bool                                        m_NothingFoundAtClick{ false };
  bool                                        m_UsedLikeIntensityFallback{ false };
  bool                                        m_MaskNotOfClickedTissue{ false };
  double                                      m_UsedNothingFoundRadius{ 0.0 };
  double                                      m_ClickTissueFraction{ 1.0 };
  MaskCorrectionSupport::OffsetListType       m_LikeIntensityRegion; // the fallback's voxels (offsets) of the last run
  std::string                                 m_DeviceUsed;
  unsigned int                                m_NumberOfCoarseWindows{ 0 };
};
} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkClickGuidedSegmentationFilter.hxx"
#endif

#endif
