#ifndef itkClickGuidedSegmentationSession_h
#define itkClickGuidedSegmentationSession_h

#include "itkClickGuidedSegmentationFilter.h"
#include "itkDivAttentionMacros.h"
#include "itkImage.h"
#include "itkMaskCorrectionSupport.h"
#include "itkObject.h"
#include "itkObjectFactory.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace itk
{
/** \class ClickGuidedSegmentationSession
 * \brief One CT, its models and a mask that the user corrects click by click: positive clicks add, negative clicks
 * remove, Undo and Reset go back; each click's result is ready when the call returns.
 *
 * The mask (GetMask(): a label image on the image's grid, 1 = object) starts empty, or as the previous mask
 * (SetPreviousMask(), e.g. a mask from another tool or an earlier session). Each click changes it:
 *
 * - A **positive click outside the mask** runs the whole pipeline (ClickGuidedSegmentationFilter, with that click
 *   alone) and adds the result's component that holds the click (26-connected) to the mask (union); on a non-empty
 *   mask only the part of it connected to the click through voxels of like intensity and within twice the click's
 *   distance to the mask (MaskCorrectionSupport::PositiveCorrection()). When that adds nothing, the click's
 *   like-intensity neighbourhood joins instead (MaskCorrectionSupport::LikeIntensityRegion()): on an empty mask (the
 *   networks find nothing at a first click) within the nothing-found radius (30 mm), for a correction (a non-empty
 *   mask) within the like-intensity radius, or up to twice the click's distance to the mask
 *   (MaskCorrectionSupport::CorrectionLikeIntensityRadius()).
 * - A **positive click inside the mask** runs no network: it marks that part of the mask as wanted. It is a seed of
 *   the object side for every later negative click (below), so a negative click next to it cannot remove it.
 * - A **negative click on the mask** removes the false positive under it. With models whose stage 1 reads no negative
 *   click map (the bundled models: CT and click map), the part of the mask closer to the negative click than to every
 *   positive click, measured geodesically inside the mask (shortest paths through the mask's voxels at physical
 *   spacing: MaskCorrectionSupport::GeodesicCarve), is removed, the cut moved to the narrowing where a false positive
 *   joins the object when there is one; a connected part of the mask that holds no positive click is removed whole.
 *   When the first click's answer is its like-intensity region (the networks found nothing), the negative click also
 *   removes every voxel of that region at least as far from the first click as itself
 *   (MaskCorrectionSupport::LikeIntensityRadialCut()).
 *   With a coarse model that reads a negative click map (a third input channel), the networks decide instead: the
 *   pipeline is run again at the positive clicks of the mask's part under the negative click, with every negative
 *   click so far, and its result replaces that part (the part is carved as above when none of its positive clicks ran
 *   the pipeline, e.g. a part of the previous mask).
 * - A **negative click on the background** (a voxel the mask does not hold) changes nothing; it counts, and Undo
 *   takes it back.
 *
 * Reuse: each pipeline run's component is cached by its click (and, for a coarse model with a negative click map,
 * the negative clicks it saw), so a click given again after Undo runs no network; Undo and negative clicks with the
 * bundled models never run one (GetNumberOfPipelineRuns() counts the runs). Each step keeps the voxels it changed,
 * so Undo restores exactly the mask before the last click. The image is checked (SegmentationInputCheck) once per
 * SetImage(); the models are loaded once (files) and shared with the pipeline.
 *
 * Threads: every member function locks the session's mutex, so the mask and the counts may be read from another
 * thread while the session is idle; a click waits for a read in progress, and a read waits for a click. The image
 * GetMask() returns is the session's own and changes with the next click: copy it to keep it.
 *
 * Errors (itk::ExceptionObject naming the input): a click outside the image, a click before SetImage() or without
 * models, GetMask() before SetImage(), a previous mask on another grid (size, origin, spacing or direction) or set
 * before the image, a negative click on the voxel of a positive click (naming both points), a bad image (as the
 * pipeline refuses it). A failed click leaves the mask and the history as they were. Undo() with no click to take
 * back returns false and changes nothing.
 * \ingroup DivAttention
 */
template<typename TInputImage, typename TOutputImage = Image<uint8_t, 3>>
class ITK_TEMPLATE_EXPORT ClickGuidedSegmentationSession : public Object
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(ClickGuidedSegmentationSession);

  using Self = ClickGuidedSegmentationSession;
  using Superclass = Object;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;

  itkNewMacro(Self);
  itkDivAttentionTypeMacro(ClickGuidedSegmentationSession, Object);

  static_assert(TInputImage::ImageDimension == 3 && TOutputImage::ImageDimension == 3, "3D images only");

  using InputImageType = TInputImage;
  using OutputImageType = TOutputImage;
  using SegmentationFilterType = ClickGuidedSegmentationFilter<TInputImage, TOutputImage>;
  using PointType = typename SegmentationFilterType::PointType;
  using PointListType = typename SegmentationFilterType::PointListType;
  using ModelPointer = typename SegmentationFilterType::ModelPointer;

  /** The CT. Clears the clicks, the history, the cached results and the previous mask; keeps the models. Checks the
   * image (SegmentationInputCheck::CheckImage), once. */
  void
  SetImage(const InputImageType * image);
  /** Models: a loaded (shared, read-only) model each, or a file each (loaded at the first click that needs it); a
   * loaded model wins. Changing a model, the device or the threshold clears the cached results, not the mask. */
  void
  SetCoarseModel(ModelPointer model);
  void
  SetRefineModel(ModelPointer model);
  void
  SetCoarseModelFile(std::string file);
  void
  SetRefineModelFile(std::string file);
  /** "auto" (default), "cpu", "cuda", "cuda:N". */
  void
  SetDevice(std::string device);
  /** Probability threshold of the pipeline's masks; default 0.5. */
  void
  SetThreshold(double threshold);
  /** The mask to start from (non-zero = object), copied; on the image's grid, else itk::ExceptionObject. Clears the
   * clicks and the history; null starts from an empty mask again. */
  void
  SetPreviousMask(const OutputImageType * mask);

  /** A positive click (physical LPS, mm); the mask is current when it returns. */
  void
  AddPositiveClick(const PointType & click);
  /** A negative click (physical LPS, mm); the mask is current when it returns. */
  void
  AddNegativeClick(const PointType & click);
  /** Takes the last click back, restoring the mask exactly as it was before it; false when there is no click. */
  bool
  Undo();
  /** Back to the previous mask (or an empty mask) with no clicks; the cached results stay. */
  void
  Reset();

  /** The current mask (never null after SetImage(); itk::ExceptionObject before). */
  const OutputImageType *
  GetMask() const;
  unsigned int
  GetNumberOfPositiveClicks() const;
  unsigned int
  GetNumberOfNegativeClicks() const;
  /** The clicks in force, in the order given. */
  PointListType
  GetPositiveClicks() const;
  PointListType
  GetNegativeClicks() const;
  /** Radius (mm) of the like-intensity fallback of a correction (a positive click outside a non-empty mask) where
   * the pipeline adds nothing; default 5 (the composite filter's). It grows with the click's distance to the mask, up
   * to 3 x this radius (MaskCorrectionSupport::CorrectionLikeIntensityRadius()). Must be positive. */
  void
  SetLikeIntensityRadius(double radius);
  double
  GetLikeIntensityRadius() const;
  /** Radius (mm) of the like-intensity region that answers a positive click on an empty mask where the networks find
   * nothing (the composite filter's NothingFoundRadius); default
   * MaskCorrectionSupport::LikeIntensityNothingFoundRadius (30). Must be positive. */
  void
  SetNothingFoundRadius(double radius);
  double
  GetNothingFoundRadius() const;
  /** Grow that region to twice the radius where the click's tissue is homogeneous and the region fills most of its
   * ball (the composite filter's GrowLargeNothingFoundRegion; MaskCorrectionSupport::WholeObjectLikeIntensityRegion());
   * default on. */
  void
  SetGrowLargeNothingFoundRegion(bool grow);
  bool
  GetGrowLargeNothingFoundRegion() const;
  /** What the last click in force did (Documentation/Pipeline.md, "Corrections"): "pipeline" (a positive click's
   * pipeline component joined the mask), "like-intensity" (the pipeline added nothing; the click's like-intensity
   * neighbourhood joined), "anchor" (a positive click inside the mask), "network" (a negative click re-ran a pipeline
   * that reads negative clicks), "carve" (a negative click removed voxels), "background" (a negative click removed
   * nothing), "" (no click). */
  std::string
  GetLastClickOutcome() const;
  /** How many times the pipeline (the networks) ran since this session was created. */
  unsigned int
  GetNumberOfPipelineRuns() const;
  /** Wall-clock seconds of each step of the last pipeline run, in pipeline order
   * (ClickGuidedSegmentationFilter::GetStepSeconds(): "click map", "coarse segmentation", ..., "paste back"): where a
   * positive click outside the mask spends its time. Empty before the first run; a click that runs no pipeline
   * leaves it as it was. */
  std::vector<std::pair<std::string, double>>
  GetLastPipelineStepSeconds() const
  {
    const std::lock_guard<std::mutex> lock(m_Mutex);
    return m_Filter->GetStepSeconds();
  }

protected:
  ClickGuidedSegmentationSession();
  ~ClickGuidedSegmentationSession() override = default;

  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  using OffsetListType = MaskCorrectionSupport::OffsetListType;
  using IndexType = MaskCorrectionSupport::IndexType;

  // One click and the voxels it changed (set to 1 for an added voxel, to 0 for a removed one).
  struct Step
  {
    bool      positive = true;
    PointType click;
    /** A positive click's voxel on the object side, which a later negative click's carve keeps: the click's own
     * voxel, or, when the click's component was seeded within the click tolerance (the click's voxel outside it),
     * the added voxel nearest to the click. hasAnchor is false when the step added nothing. */
    IndexType      anchor{};
    bool           hasAnchor = false;
    OffsetListType added;
    OffsetListType removed;
    const char *   outcome = "";
    /** A like-intensity answer within the nothing-found radius (the networks found nothing at a first click, or at a
     * correction far from the mask): a later negative click also cuts it radially
     * (MaskCorrectionSupport::LikeIntensityRadialCut()). */
    bool likeIntensityAnswer = false;
  };

  void
  RequireImage(const char * what) const;
  IndexType
  CheckedIndex(const PointType & click, const char * kind) const;
  void
  ResolveModels();
  bool
  CoarseModelReadsNegativeClicks();
  using FloatImageType = typename SegmentationFilterType::FloatImageType;

  static std::vector<double>
  CacheKey(const PointListType & clicks, const PointListType & negatives);
  const OffsetListType &
  RunPipeline(const PointListType & clicks, const PointListType & negatives);
  const FloatImageType *
  RunCoarseWindow(const PointType & click, const PointListType & negatives);
  void
  Apply(Step & step);
  PointListType
  GetNegativeClicksLocked() const;
  void
  ClearCache();
  void
  StartMask();

  mutable std::mutex                       m_Mutex;
  typename InputImageType::ConstPointer    m_Image;
  typename OutputImageType::Pointer        m_PreviousMask;
  typename OutputImageType::Pointer        m_Mask;
  typename SegmentationFilterType::Pointer m_Filter;
  ModelPointer                             m_CoarseModel;
  ModelPointer                             m_RefineModel;
  std::string                              m_CoarseModelFile;
  std::string                              m_RefineModelFile;
  ModelPointer                             m_CoarseFileModel;
  ModelPointer                             m_RefineFileModel;
  std::string                              m_Device{ "auto" };
  double                                   m_Threshold{ 0.5 };
  double                                   m_LikeIntensityRadius{ MaskCorrectionSupport::LikeIntensityDefaultRadius };
  double            m_NothingFoundRadius{ MaskCorrectionSupport::LikeIntensityNothingFoundRadius };
  bool              m_GrowLargeNothingFoundRegion{ true };
  std::vector<Step> m_History;
  std::map<std::vector<double>, OffsetListType>                   m_Cache;
  std::map<std::vector<double>, typename FloatImageType::Pointer> m_WindowCache;
  SizeValueType                                                   m_NumberOfObjectVoxels{ 0 };
  unsigned int                                                    m_NumberOfPipelineRuns{ 0 };
};
} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkClickGuidedSegmentationSession.hxx"
#endif

#endif
