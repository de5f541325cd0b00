#ifndef itkClickGuidedSegmentationSession_hxx
#define itkClickGuidedSegmentationSession_hxx

#include "itkClickPoints.h"
#include "itkDivAttentionRuntime.h"
#include "itkSegmentationInputCheck.h"
#include "itkSegmentationModelSupport.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace itk
{
template<typename TInputImage, typename TOutputImage>
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::ClickGuidedSegmentationSession()
    : m_Filter(SegmentationFilterType::New())
{
  // The session keeps only the mask: no float image of the CT's size, no attention map.
  m_Filter->ComputeProbabilityImageOff();
  m_Filter->ComputeAttentionMapOff();
  // The session adds the like-intensity region itself when the pipeline finds nothing ("like-intensity" outcome).
  m_Filter->LikeIntensityWhenNothingFoundOff();
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::SetImage(const InputImageType * image)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  if (image == nullptr)
  {
    itkDivAttentionInputError("image", "is null");
  }
  if (image->GetBufferedRegion() != image->GetLargestPossibleRegion())
  {
    itkDivAttentionInputError("image", "is not buffered whole (Update() its source first)");
  }
  // Once per image: a volume too thin, too coarse or of one value is refused before any click.
  SegmentationInputCheck::CheckImage(image, "image");
  m_Image = image;
  m_Filter->SetInput(image);
  m_PreviousMask = nullptr;
  m_Mask = nullptr;
  m_History.clear();
  m_Cache.clear();
  m_WindowCache.clear();
  this->StartMask();
  this->Modified();
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::SetCoarseModel(ModelPointer model)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  m_CoarseModel = std::move(model);
  this->ClearCache();
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::SetRefineModel(ModelPointer model)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  m_RefineModel = std::move(model);
  this->ClearCache();
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::SetCoarseModelFile(std::string file)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  m_CoarseModelFile = std::move(file);
  m_CoarseFileModel = nullptr;
  this->ClearCache();
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::SetRefineModelFile(std::string file)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  m_RefineModelFile = std::move(file);
  m_RefineFileModel = nullptr;
  this->ClearCache();
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::SetDevice(std::string device)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  if (device != m_Device)
  {
    m_Device = std::move(device);
    // Models loaded from files live on the old device.
    m_CoarseFileModel = nullptr;
    m_RefineFileModel = nullptr;
    this->ClearCache();
  }
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::SetThreshold(double threshold)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  if (!(threshold > 0.0 && threshold < 1.0))
  {
    itkDivAttentionInputError("Threshold", "must lie in (0, 1), got " << threshold);
  }
  if (threshold != m_Threshold)
  {
    m_Threshold = threshold;
    this->ClearCache();
  }
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::SetPreviousMask(const OutputImageType * mask)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  if (mask != nullptr)
  {
    if (!m_Image)
    {
      itkDivAttentionInputError("previous mask", "set the image first (SetImage), the mask must lie on its grid");
    }
    MaskCorrectionSupport::CheckSameGrid(m_Image, mask, "previous mask");
    if (mask->GetBufferedRegion() != mask->GetLargestPossibleRegion())
    {
      itkDivAttentionInputError("previous mask", "is not buffered whole (Update() its source first)");
    }
    auto copy = OutputImageType::New();
    copy->CopyInformation(m_Image);
    copy->SetRegions(m_Image->GetLargestPossibleRegion());
    copy->Allocate();
    const auto * from = mask->GetBufferPointer();
    auto *       to = copy->GetBufferPointer();
    const auto   count = copy->GetBufferedRegion().GetNumberOfPixels();
    for (SizeValueType i = 0; i < count; ++i)
    {
      to[i] = from[i] != 0 ? 1 : 0;
    }
    m_PreviousMask = copy;
  }
  else
  {
    m_PreviousMask = nullptr;
  }
  m_History.clear();
  if (m_Image)
  {
    this->StartMask();
  }
  this->Modified();
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::RequireImage(const char * what) const
{
  if (!m_Image || !m_Mask)
  {
    itkDivAttentionInputError(what, "no image: call SetImage() first");
  }
}

template<typename TInputImage, typename TOutputImage>
auto
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::CheckedIndex(const PointType & click,
                                                                        const char *      kind) const -> IndexType
{
  this->RequireImage(kind);
  IndexType index;
  if (!ClickPoints::IsInside(click, m_Image) || !m_Image->TransformPhysicalPointToIndex(click, index))
  {
    itkDivAttentionInputError(kind, click << " (LPS, mm) lies outside the image");
  }
  return index;
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::ResolveModels()
{
  const auto device = DivAttentionRuntime::ResolveDevice(m_Device);
  auto       resolve = [&](const ModelPointer & given, const std::string & file, ModelPointer & cache,
                     const char * what) -> ModelPointer
  {
    if (given)
    {
      return given;
    }
    if (file.empty())
    {
      itkDivAttentionInputError(what, "no model given (neither a model file nor a loaded model)");
    }
    if (!cache)
    {
      cache = SegmentationModelSupport::Load(file, device, what);
    }
    return cache;
  };
  m_Filter->SetCoarseModel(resolve(m_CoarseModel, m_CoarseModelFile, m_CoarseFileModel, "coarse model"));
  m_Filter->SetRefineModel(resolve(m_RefineModel, m_RefineModelFile, m_RefineFileModel, "refine model"));
  m_Filter->SetDevice(m_Device);
  m_Filter->SetThreshold(m_Threshold);
}

template<typename TInputImage, typename TOutputImage>
bool
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::CoarseModelReadsNegativeClicks()
{
  this->ResolveModels();
  return m_Filter->GetCoarseModel()->network->GetInputChannels() >= 3;
}

template<typename TInputImage, typename TOutputImage>
std::vector<double>
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::CacheKey(const PointListType & clicks,
                                                                    const PointListType & negatives)
{
  std::vector<double> key{ static_cast<double>(clicks.size()) };
  for (const auto * list : { &clicks, &negatives })
  {
    for (const auto & point : *list)
    {
      key.insert(key.end(), point.Begin(), point.End());
    }
  }
  return key;
}

template<typename TInputImage, typename TOutputImage>
auto
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::RunCoarseWindow(const PointType &     click,
                                                                           const PointListType & negatives)
  -> const FloatImageType *
{
  const auto key = CacheKey({ click }, negatives);
  const auto cached = m_WindowCache.find(key);
  if (cached != m_WindowCache.end())
  {
    return cached->second.GetPointer();
  }
  this->ResolveModels();
  auto window = m_Filter->RunCoarseWindow(click, negatives);
  ++m_NumberOfPipelineRuns;
  return (m_WindowCache[key] = window).GetPointer();
}

template<typename TInputImage, typename TOutputImage>
auto
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::RunPipeline(const PointListType & clicks,
                                                                       const PointListType & negatives)
  -> const OffsetListType &
{
  const auto key = CacheKey(clicks, negatives);
  const auto cached = m_Cache.find(key);
  if (cached != m_Cache.end())
  {
    return cached->second;
  }
  this->ResolveModels();
  m_Filter->SetClicks(clicks);
  m_Filter->SetNegativeClicks(negatives);
  m_Filter->Update();
  ++m_NumberOfPipelineRuns;
  // The result's component at the clicks: the object the user pointed at, nothing elsewhere. Each click seeds it from
  // the voxel the filter accepted as "found at the click": its own, or the nearest object voxel within the click
  // tolerance (a thin object that the 3 mm stage places a voxel off), so a session's click keeps what the filter
  // returns for it.
  std::vector<IndexType> seeds;
  for (const auto & click : clicks)
  {
    IndexType index;
    if (SegmentationInputCheck::NearestVoxelWithin(m_Filter->GetOutput(), click, m_Filter->GetUsedClickTolerance(),
                                                   index))
    {
      seeds.push_back(index);
    }
  }
  return m_Cache[key] = MaskCorrectionSupport::ConnectedVoxels(m_Filter->GetOutput(), seeds);
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::Apply(Step & step)
{
  auto * mask = m_Mask->GetBufferPointer();
  for (const auto offset : step.added)
  {
    mask[offset] = 1;
  }
  for (const auto offset : step.removed)
  {
    mask[offset] = 0;
  }
  // Every step adds only background voxels and removes only object voxels.
  m_NumberOfObjectVoxels += step.added.size();
  m_NumberOfObjectVoxels -= step.removed.size();
  m_Mask->Modified();
  m_History.push_back(std::move(step));
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::AddPositiveClick(const PointType & click)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  const IndexType                   index = this->CheckedIndex(click, "positive click");
  Step                              step;
  step.positive = true;
  step.click = click;
  if (m_Mask->GetPixel(index) == 0)
  {
    // Outside the mask: the pipeline at this click; (the kept part of) its component joins the mask.
    PointListType negatives;
    if (this->CoarseModelReadsNegativeClicks())
    {
      negatives = this->GetNegativeClicksLocked();
    }
    if (m_NumberOfObjectVoxels == 0)
    {
      // The first object: the whole pipeline's component at the click, whole (every voxel of it is background).
      step.added = this->RunPipeline({ click }, negatives);
      step.outcome = "pipeline";
    }
    else
    {
      // A correction: of stage 1's answer in one window at the click, the like-intensity part near the click.
      bool far = false;
      step.added = MaskCorrectionSupport::PositiveCorrectionFromProbability(
        m_Image.GetPointer(), m_Mask.GetPointer(), this->RunCoarseWindow(click, negatives), m_Threshold, index,
        MaskCorrectionSupport::LikeIntensityK, MaskCorrectionSupport::LikeIntensityMinimumHalfWidth, &far);
      step.outcome = "stage 1";
      if (far)
      {
        // Farther from the mask than stage 1's answer reaches: a new object, the whole pipeline's answer (the rule
        // keeps its like-intensity part at the click).
        step.added = MaskCorrectionSupport::PositiveCorrection(
          m_Image.GetPointer(), m_Mask.GetPointer(), this->RunPipeline({ click }, negatives), index,
          MaskCorrectionSupport::LikeIntensityK, MaskCorrectionSupport::LikeIntensityMinimumHalfWidth, false);
        step.outcome = "pipeline";
      }
    }
    if (step.added.empty())
    {
      // The pipeline found nothing new at the click: its like-intensity neighbourhood instead (for a correction near
      // the mask, within a radius that grows with the click's distance to it; a first click or a new object far from
      // it, within the nothing-found radius, which later negative clicks also cut radially).
      step.added = MaskCorrectionSupport::PositiveFallbackRegion(
        m_Image.GetPointer(), m_Mask.GetPointer(), index, m_LikeIntensityRadius, m_NumberOfObjectVoxels == 0,
        m_NothingFoundRadius, &step.likeIntensityAnswer, m_GrowLargeNothingFoundRegion);
      step.outcome = "like-intensity";
    }
  }
  else
  {
    step.outcome = "anchor";
  }
  // Inside the mask: an anchor, a seed of the object side for later negative clicks; nothing changes now.
  // The click's stand-in for later carves (its voxel, or the nearest voxel of a component seeded within the tolerance).
  step.hasAnchor = MaskCorrectionSupport::PositiveAnchor(m_Mask.GetPointer(), click, index, step.added, step.anchor);
  this->Apply(step);
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::AddNegativeClick(const PointType & click)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  const IndexType                   index = this->CheckedIndex(click, "negative click");
  std::vector<IndexType>            positives;
  for (const auto & earlier : m_History)
  {
    if (!earlier.positive)
    {
      continue;
    }
    IndexType positive;
    m_Image->TransformPhysicalPointToIndex(earlier.click, positive);
    if (positive == index)
    {
      itkDivAttentionInputError("negative click", click << " (LPS, mm) lies on the voxel " << index
                                                        << " of positive click " << earlier.click
                                                        << " (LPS, mm): a voxel cannot be both object and background");
    }
    // The carve keeps the object side of each positive click: its anchor (the click's voxel, or the voxel of its
    // component nearest to it), unless this negative click is on that voxel.
    if (earlier.hasAnchor && earlier.anchor != index)
    {
      positives.push_back(earlier.anchor);
    }
  }
  Step step;
  step.positive = false;
  step.click = click;
  if (m_Mask->GetPixel(index) != 0)
  {
    bool decided = false;
    if (this->CoarseModelReadsNegativeClicks())
    {
      // The networks read negative clicks: run the pipeline again at the positive clicks of the part under this
      // click that ran it, with every negative click; its result replaces that part.
      const auto        part = MaskCorrectionSupport::ConnectedVoxels(m_Mask.GetPointer(), { index });
      std::vector<bool> inPart(m_Mask->GetBufferedRegion().GetNumberOfPixels(), false);
      for (const auto offset : part)
      {
        inPart[offset] = true;
      }
      PointListType clicks;
      for (const auto & earlier : m_History)
      {
        if (earlier.positive && !earlier.added.empty() && earlier.hasAnchor &&
            inPart[m_Mask->ComputeOffset(earlier.anchor)])
        {
          clicks.push_back(earlier.click);
        }
      }
      if (!clicks.empty())
      {
        auto negatives = this->GetNegativeClicksLocked();
        negatives.push_back(click);
        const auto &      result = this->RunPipeline(clicks, negatives);
        std::vector<bool> inResult(inPart.size(), false);
        const auto *      mask = m_Mask->GetBufferPointer();
        for (const auto offset : result)
        {
          inResult[offset] = true;
          if (mask[offset] == 0)
          {
            step.added.push_back(offset);
          }
        }
        for (const auto offset : part)
        {
          if (!inResult[offset])
          {
            step.removed.push_back(offset);
          }
        }
        decided = true;
        step.outcome = "network";
      }
    }
    if (!decided)
    {
      step.removed = MaskCorrectionSupport::LocalGeodesicCarve(m_Mask.GetPointer(), index, positives);
      // A like-intensity answer within the nothing-found radius was bounded only by that radius: the click also says
      // where it stops.
      for (const auto & earlier : m_History)
      {
        if (earlier.positive && earlier.likeIntensityAnswer)
        {
          IndexType seed;
          m_Image->TransformPhysicalPointToIndex(earlier.click, seed);
          MaskCorrectionSupport::MergeOffsets(
            step.removed,
            MaskCorrectionSupport::LikeIntensityRadialCut(m_Mask.GetPointer(), earlier.added, seed, index, positives));
        }
      }
      step.outcome = "carve";
    }
  }
  else
  {
    step.outcome = "background";
  }
  // On the background: nothing to remove.
  this->Apply(step);
}

template<typename TInputImage, typename TOutputImage>
bool
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::Undo()
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  if (m_History.empty())
  {
    return false;
  }
  const Step & step = m_History.back();
  auto *       mask = m_Mask->GetBufferPointer();
  for (const auto offset : step.added)
  {
    mask[offset] = 0;
  }
  for (const auto offset : step.removed)
  {
    mask[offset] = 1;
  }
  m_NumberOfObjectVoxels -= step.added.size();
  m_NumberOfObjectVoxels += step.removed.size();
  m_History.pop_back();
  m_Mask->Modified();
  return true;
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::Reset()
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  m_History.clear();
  if (m_Image)
  {
    this->StartMask();
  }
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::StartMask()
{
  if (!m_Mask)
  {
    m_Mask = OutputImageType::New();
    m_Mask->CopyInformation(m_Image);
    m_Mask->SetRegions(m_Image->GetLargestPossibleRegion());
    m_Mask->Allocate();
  }
  const auto count = m_Mask->GetBufferedRegion().GetNumberOfPixels();
  if (m_PreviousMask)
  {
    const auto * previous = m_PreviousMask->GetBufferPointer();
    std::copy_n(previous, count, m_Mask->GetBufferPointer());
    m_NumberOfObjectVoxels =
      static_cast<SizeValueType>(std::count_if(previous, previous + count, [](auto value) { return value != 0; }));
  }
  else
  {
    m_Mask->FillBuffer(0);
    m_NumberOfObjectVoxels = 0;
  }
  m_Mask->Modified();
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::ClearCache()
{
  m_Cache.clear();
  m_WindowCache.clear();
  this->Modified();
}

template<typename TInputImage, typename TOutputImage>
auto
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::GetMask() const -> const OutputImageType *
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  this->RequireImage("mask");
  return m_Mask.GetPointer();
}

template<typename TInputImage, typename TOutputImage>
unsigned int
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::GetNumberOfPositiveClicks() const
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  return static_cast<unsigned int>(
    std::count_if(m_History.begin(), m_History.end(), [](const Step & step) { return step.positive; }));
}

template<typename TInputImage, typename TOutputImage>
unsigned int
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::GetNumberOfNegativeClicks() const
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  return static_cast<unsigned int>(
    std::count_if(m_History.begin(), m_History.end(), [](const Step & step) { return !step.positive; }));
}

template<typename TInputImage, typename TOutputImage>
auto
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::GetPositiveClicks() const -> PointListType
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  PointListType                     clicks;
  for (const auto & step : m_History)
  {
    if (step.positive)
    {
      clicks.push_back(step.click);
    }
  }
  return clicks;
}

template<typename TInputImage, typename TOutputImage>
auto
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::GetNegativeClicks() const -> PointListType
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  return this->GetNegativeClicksLocked();
}

template<typename TInputImage, typename TOutputImage>
auto
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::GetNegativeClicksLocked() const -> PointListType
{
  PointListType clicks;
  for (const auto & step : m_History)
  {
    if (!step.positive)
    {
      clicks.push_back(step.click);
    }
  }
  return clicks;
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::SetLikeIntensityRadius(double radius)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  if (!(radius > 0.0) || !std::isfinite(radius))
  {
    itkDivAttentionInputError("LikeIntensityRadius", "must be a positive number of mm, got " << radius);
  }
  m_LikeIntensityRadius = radius;
}

template<typename TInputImage, typename TOutputImage>
double
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::GetLikeIntensityRadius() const
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  return m_LikeIntensityRadius;
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::SetNothingFoundRadius(double radius)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  if (!(radius > 0.0) || !std::isfinite(radius))
  {
    itkDivAttentionInputError("NothingFoundRadius", "must be a positive number of mm, got " << radius);
  }
  m_NothingFoundRadius = radius;
}

template<typename TInputImage, typename TOutputImage>
double
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::GetNothingFoundRadius() const
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  return m_NothingFoundRadius;
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::SetGrowLargeNothingFoundRegion(bool grow)
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  m_GrowLargeNothingFoundRegion = grow;
}

template<typename TInputImage, typename TOutputImage>
bool
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::GetGrowLargeNothingFoundRegion() const
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  return m_GrowLargeNothingFoundRegion;
}

template<typename TInputImage, typename TOutputImage>
std::string
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::GetLastClickOutcome() const
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  return m_History.empty() ? std::string() : std::string(m_History.back().outcome);
}

template<typename TInputImage, typename TOutputImage>
unsigned int
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::GetNumberOfPipelineRuns() const
{
  const std::lock_guard<std::mutex> lock(m_Mutex);
  return m_NumberOfPipelineRuns;
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationSession<TInputImage, TOutputImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  const std::lock_guard<std::mutex> lock(m_Mutex);
  os << indent << "Image: " << m_Image.GetPointer() << std::endl;
  os << indent << "PreviousMask: " << m_PreviousMask.GetPointer() << std::endl;
  os << indent << "Mask: " << m_Mask.GetPointer() << std::endl;
  os << indent << "CoarseModel: " << (m_CoarseModel ? "loaded" : "(none)") << std::endl;
  os << indent << "RefineModel: " << (m_RefineModel ? "loaded" : "(none)") << std::endl;
  os << indent << "CoarseModelFile: " << m_CoarseModelFile << std::endl;
  os << indent << "RefineModelFile: " << m_RefineModelFile << std::endl;
  os << indent << "Device: " << m_Device << std::endl;
  os << indent << "Threshold: " << m_Threshold << std::endl;
  os << indent << "LikeIntensityRadius: " << m_LikeIntensityRadius << std::endl;
  os << indent << "NothingFoundRadius: " << m_NothingFoundRadius << std::endl;
  os << indent << "Clicks: " << m_History.size() << std::endl;
  for (const auto & step : m_History)
  {
    os << indent.GetNextIndent() << (step.positive ? "+ " : "- ") << step.click << " (" << step.added.size()
       << " voxels added, " << step.removed.size() << " removed)" << std::endl;
  }
  os << indent << "CachedResults: " << m_Cache.size() << std::endl;
  os << indent << "CachedWindows: " << m_WindowCache.size() << std::endl;
  os << indent << "NumberOfObjectVoxels: " << m_NumberOfObjectVoxels << std::endl;
  os << indent << "NumberOfPipelineRuns: " << m_NumberOfPipelineRuns << std::endl;
}
} // namespace itk

#endif
