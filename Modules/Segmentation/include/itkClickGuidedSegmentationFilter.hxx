#ifndef itkClickGuidedSegmentationFilter_hxx
#define itkClickGuidedSegmentationFilter_hxx

#include "divaHostAllocator.h"
#include "itkBinaryThresholdImageFilter.h"
#include "itkBoxPrompt.h"
#include "itkClickPoints.h"
#include "itkDivAttentionRuntime.h"
#include "itkImageAlgorithm.h"
#include "itkImageRegionIterator.h"
#include "itkImageScanlineIterator.h"
#include "itkMetaDataObject.h"
#include "itkProgressAccumulator.h"
#include "itkSegmentationInputCheck.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <type_traits>

namespace itk
{
template<typename TInputImage, typename TOutputImage>
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::ClickGuidedSegmentationFilter()
{
  this->AddOptionalInputName("PreviousMask");
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::SetCoarseModel(ModelPointer model)
{
  if (model != m_CoarseModel)
  {
    m_CoarseModel = std::move(model);
    this->Modified();
  }
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::SetRefineModel(ModelPointer model)
{
  if (model != m_RefineModel)
  {
    m_RefineModel = std::move(model);
    this->Modified();
  }
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::SetClicks(const PointListType & clicks)
{
  m_Clicks = clicks;
  this->Modified();
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::SetNegativeClicks(const PointListType & clicks)
{
  m_NegativeClicks = clicks;
  this->Modified();
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::SetBox(const PointType & corner1, const PointType & corner2)
{
  if (!m_UseBox || corner1 != m_BoxCorner1 || corner2 != m_BoxCorner2)
  {
    m_UseBox = true;
    m_BoxCorner1 = corner1;
    m_BoxCorner2 = corner2;
    this->Modified();
  }
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::RemoveBox()
{
  if (m_UseBox)
  {
    m_UseBox = false;
    this->Modified();
  }
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if (m_Clicks.empty() && this->GetPreviousMask() == nullptr && !m_UseBox)
  {
    itkDivAttentionInputError("Clicks", "at least one click is needed");
  }
  if (!(m_Threshold > 0.0 && m_Threshold < 1.0))
  {
    itkDivAttentionInputError("Threshold", "must lie in (0, 1), got " << m_Threshold);
  }
  if (!(m_NothingFoundRadius > 0.0) || !std::isfinite(m_NothingFoundRadius))
  {
    itkDivAttentionInputError("NothingFoundRadius", "must be a positive number of mm, got " << m_NothingFoundRadius);
  }
  if (!m_CoarseModel && m_CoarseModelFile.empty())
  {
    itkDivAttentionInputError("coarse model", "no model given (neither a model file nor a loaded model)");
  }
  if (!m_RefineModel && m_RefineModelFile.empty())
  {
    itkDivAttentionInputError("refine model", "no model given (neither a model file nor a loaded model)");
  }
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::VerifyInputInformation() ITKv5_CONST
{
  // Only the previous mask is a second image, and it must be on the CT's grid (its own error, naming it).
  const OutputImageType * previous = this->GetPreviousMask();
  if (previous != nullptr && this->GetInput() != nullptr)
  {
    MaskCorrectionSupport::CheckSameGrid(this->GetInput(), previous, "PreviousMask");
  }
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::GenerateInputRequestedRegion()
{
  Superclass::GenerateInputRequestedRegion();
  if (auto * input = const_cast<InputImageType *>(this->GetInput()))
  {
    input->SetRequestedRegionToLargestPossibleRegion();
  }
  if (auto * previous = const_cast<OutputImageType *>(this->GetPreviousMask()))
  {
    previous->SetRequestedRegionToLargestPossibleRegion();
  }
}

template<typename TInputImage, typename TOutputImage>
auto
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::ResolveModel(const ModelPointer & given,
                                                                       const std::string &  file,
                                                                       ModelPointer &       cache,
                                                                       std::string &        cacheKey,
                                                                       const std::string &  what) -> ModelPointer
{
  const auto device = DivAttentionRuntime::ResolveDevice(m_Device);
  if (given)
  {
    return given;
  }
  const auto key = file + "|" + device.str();
  if (!cache || key != cacheKey)
  {
    cache = SegmentationModelSupport::Load(file, device, what);
    cacheKey = key;
  }
  return cache;
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::RunPipeline(bool likeIntensityFallback)
{
  // The mini-pipeline reads a shallow copy of the input, so that its requests never travel upstream.
  auto input = InputImageType::New();
  input->Graft(this->GetInput());

  const auto coarseModel =
    this->ResolveModel(m_CoarseModel, m_CoarseModelFile, m_CoarseFileModel, m_CoarseFileModelKey, "coarse model");
  const auto refineModel =
    this->ResolveModel(m_RefineModel, m_RefineModelFile, m_RefineFileModel, m_RefineFileModelKey, "refine model");
  SegmentationModelSupport::CheckRole(*coarseModel, "coarse", "coarse model");
  SegmentationModelSupport::CheckRole(*refineModel, "refine", "refine model");
  // A volume too thin or too coarse to segment, or a click on the air around the patient: an error, never a mask.
  const auto & workingSpacing = coarseModel->description.preprocessing.targetSpacing;
  SegmentationInputCheck::CheckImage(input.GetPointer(), "CT",
                                     *std::max_element(workingSpacing.begin(), workingSpacing.end()));
  SegmentationInputCheck::CheckClicks(input.GetPointer(), m_Clicks);
  // A box prompt places the crop instead of stage 1 (class description); its clicks must lie in it.
  typename OutputImageType::RegionType boxRegion;
  if (m_UseBox)
  {
    BoxPrompt::Check(input.GetPointer(), m_BoxCorner1, m_BoxCorner2, "Box");
    boxRegion = BoxPrompt::IndexRegion(input.GetPointer(), m_BoxCorner1, m_BoxCorner2);
    for (size_t k = 0; k < m_Clicks.size(); ++k)
    {
      typename InputImageType::IndexType index;
      if (!input->TransformPhysicalPointToIndex(m_Clicks[k], index) || !boxRegion.IsInside(index))
      {
        itkDivAttentionInputError("Clicks", "click " << k + 1 << " " << m_Clicks[k]
                                                     << " (LPS, mm) lies outside the box (voxels "
                                                     << boxRegion.GetIndex() << " + " << boxRegion.GetSize() << ")");
      }
    }
  }
  // The clicks the refine model's click map shows: the box's centre when a box comes without a click.
  const PointListType refineClicks =
    m_Clicks.empty() ? PointListType{ BoxPrompt::Centre(m_BoxCorner1, m_BoxCorner2) } : m_Clicks;

  auto progress = ProgressAccumulator::New();
  progress->SetMiniPipelineFilter(this);

  // Stage 1 and its click maps; skipped with a box, which places the crop itself.
  typename ClickMapFilterType::Pointer clickMap;
  typename CoarseFilterType::Pointer   coarse;
  if (!m_UseBox)
  {
    clickMap = ClickMapFilterType::New();
    clickMap->SetReferenceImage(input);
    clickMap->SetClicks(m_Clicks);
    clickMap->SetNegativeClicks(m_NegativeClicks);
    clickMap->SetEncoding(
      SegmentationModelSupport::ClickEncodingOf(coarseModel->description.preprocessing.clickEncoding, "coarse model"));

    // The click maps serve only the coarse stage: ITK releases their buffers once it has read them, so the refinement
    // never runs beside an image the size of the CT's region that nothing reads any more.
    clickMap->GetOutput()->ReleaseDataFlagOn();
    clickMap->GetNegativeOutput()->ReleaseDataFlagOn();

    coarse = CoarseFilterType::New();
    coarse->SetInput(input);
    coarse->SetClickMap(clickMap->GetOutput());
    if (!m_NegativeClicks.empty())
    {
      coarse->SetNegativeClickMap(clickMap->GetNegativeOutput());
    }
    coarse->SetModel(coarseModel);
    coarse->SetDevice(m_Device);
    coarse->SetClick(m_Clicks.front());
    coarse->SetMaximumExtent(m_CoarseMaximumExtent);
    coarse->SetWindowPlacement(m_CoarseWindowPlacement);
    coarse->SetGrowthThreshold(m_Threshold);
  }

  typename CropFilterType::SizeType patchSize;
  for (unsigned int a = 0; a < 3; ++a)
  {
    patchSize[a] = static_cast<SizeValueType>(refineModel->description.preprocessing.patchSize[a]);
  }
  // The crop follows the clicked object, not every object the coarse mask holds (KeepClickedComponent).
  typename ComponentFilterType::Pointer component;
  if (m_KeepClickedComponent && coarse)
  {
    component = ComponentFilterType::New();
    component->SetInput(coarse->GetOutput());
    component->SetClicks(m_Clicks);
    component->SetThreshold(m_Threshold);
  }
  auto crop = CropFilterType::New();
  crop->SetInput(input);
  if (coarse)
  {
    crop->SetMaskImage(component ? component->GetOutput() : coarse->GetOutput());
  }
  else
  {
    crop->SetBox(m_BoxCorner1, m_BoxCorner2);
  }
  crop->SetOutputSize(patchSize);
  crop->SetMaskThreshold(m_Threshold);
  // The crop the refinement was trained on (the model file's record), unless set here.
  const auto & refinePreprocessing = refineModel->description.preprocessing;
  crop->SetMarginFactor(m_CropMarginFactor > 0.0 ? m_CropMarginFactor : refinePreprocessing.cropMargin);
  crop->SetMinimumSideLength(m_CropMinimumSize >= 0.0 ? m_CropMinimumSize : refinePreprocessing.cropMinimumSide);
  crop->SetAxes(m_AlignCropWithPrincipalAxes ? CropFilterType::AxesEnum::Principal : CropFilterType::AxesEnum::Image);
  crop->UseFallbackOn();
  crop->SetFallbackCenter(refineClicks.front());
  crop->SetFallbackSideLength(m_FallbackCropSize);

  auto refine = RefineFilterType::New();
  refine->SetInput(crop->GetOutput());
  refine->SetModel(refineModel);
  refine->SetDevice(m_Device);
  refine->SetComputeAttentionMap(m_ComputeAttentionMap);
  typename CropClickMapFilterType::Pointer cropClickMap;
  if (refineModel->network->GetInputChannels() == 2)
  {
    cropClickMap = CropClickMapFilterType::New();
    cropClickMap->SetReferenceImage(crop->GetOutput());
    cropClickMap->SetClicks(refineClicks);
    cropClickMap->SetEncoding(
      SegmentationModelSupport::ClickEncodingOf(refineModel->description.preprocessing.clickEncoding, "refine model"));
    refine->SetClickMap(cropClickMap->GetOutput());
  }

  // Stage 2 decides the border only (RefinementBand): deeper inside the coarse mask object, farther outside it
  // background.
  typename BandFilterType::Pointer band;
  if (m_RefinementBand >= 0.0 && coarse)
  {
    const auto & coarseSpacing = coarseModel->description.preprocessing.targetSpacing;
    band = BandFilterType::New();
    band->SetInput(refine->GetOutput());
    band->SetCoarseMask(component ? component->GetOutput() : coarse->GetOutput());
    band->SetThreshold(m_Threshold);
    band->SetBandWidth(m_RefinementBand * *std::max_element(coarseSpacing.begin(), coarseSpacing.end()));
  }
  FloatImageType * refined = band ? band->GetOutput() : refine->GetOutput();

  // Paste back: the probability on the input's grid, then a threshold; or (ComputeProbabilityImage off) straight
  // into the label, which never holds a float image of the input's size.
  typename PasteFilterType::Pointer                                             paste;
  typename BinaryThresholdImageFilter<FloatImageType, OutputImageType>::Pointer threshold;
  typename LabelPasteFilterType::Pointer                                        labelPaste;
  ProcessObject *                                                               pasteStep = nullptr;
  OutputImageType *                                                             label = nullptr;
  if (m_ComputeProbabilityImage)
  {
    paste = PasteFilterType::New();
    paste->SetInput(refined);
    paste->SetReferenceImage(input);
    paste->SetOutputMode(PasteFilterType::OutputEnum::Probability);
    threshold = BinaryThresholdImageFilter<FloatImageType, OutputImageType>::New();
    threshold->SetInput(paste->GetOutput());
    threshold->SetLowerThreshold(static_cast<float>(m_Threshold));
    threshold->SetUpperThreshold(NumericTraits<float>::max());
    threshold->SetInsideValue(1);
    threshold->SetOutsideValue(0);
    pasteStep = paste;
    label = threshold->GetOutput();
  }
  else
  {
    labelPaste = LabelPasteFilterType::New();
    labelPaste->SetInput(refined);
    labelPaste->SetReferenceImage(input);
    labelPaste->SetOutputMode(LabelPasteFilterType::OutputEnum::Label);
    labelPaste->SetThreshold(m_Threshold);
    pasteStep = labelPaste;
    label = labelPaste->GetOutput();
  }

  if (coarse)
  {
    progress->RegisterInternalFilter(clickMap, 0.05f);
    progress->RegisterInternalFilter(coarse, component ? 0.39f : 0.4f);
  }
  if (component)
  {
    progress->RegisterInternalFilter(component, 0.01f);
  }
  progress->RegisterInternalFilter(crop, 0.1f);
  if (cropClickMap)
  {
    progress->RegisterInternalFilter(cropClickMap, 0.02f);
  }
  progress->RegisterInternalFilter(refine, cropClickMap ? 0.27f : 0.29f);
  if (band)
  {
    progress->RegisterInternalFilter(band, 0.01f);
  }
  progress->RegisterInternalFilter(pasteStep, threshold ? 0.1f : 0.15f);
  if (threshold)
  {
    progress->RegisterInternalFilter(threshold, 0.05f);
  }

  // Step timings: each internal filter's StartEvent..EndEvent, wall clock.
  m_StepSeconds.clear();
  std::vector<std::pair<std::string, ProcessObject *>> steps{ { "click map", clickMap.GetPointer() },
                                                              { "coarse segmentation", coarse.GetPointer() },
                                                              { "crop", crop.GetPointer() },
                                                              { "refinement", refine.GetPointer() },
                                                              { "paste back", pasteStep } };
  if (threshold)
  {
    steps.emplace_back("threshold", threshold.GetPointer());
  }
  if (band)
  {
    steps.insert(steps.end() - (threshold ? 2 : 1), { "coarse band", band.GetPointer() });
  }
  if (component)
  {
    steps.insert(steps.begin() + 2, { "clicked component", component.GetPointer() });
  }
  if (cropClickMap)
  {
    steps.insert(steps.begin() + (component ? 4 : 3), { "crop click map", cropClickMap.GetPointer() });
  }
  // Without stage 1 (a box) its steps are absent.
  steps.erase(std::remove_if(steps.begin(), steps.end(), [](const auto & step) { return step.second == nullptr; }),
              steps.end());
  std::vector<std::chrono::steady_clock::time_point> started(steps.size());
  std::vector<double>                                seconds(steps.size(), -1.0);
  for (size_t k = 0; k < steps.size(); ++k)
  {
    steps[k].second->AddObserver(StartEvent(),
                                 [&started, k](const EventObject &) { started[k] = std::chrono::steady_clock::now(); });
    steps[k].second->AddObserver(
      EndEvent(), [&started, &seconds, k](const EventObject &)
      { seconds[k] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started[k]).count(); });
  }

  if (m_ReleaseCacheBetweenStages)
  {
    // After each network: memory back to the system, at the cost of first touches (see the header).
    if (coarse)
    {
      coarse->AddObserver(EndEvent(), [](const EventObject &) { diva::ReleaseCachedHostMemory(); });
    }
    refine->AddObserver(EndEvent(), [](const EventObject &) { diva::ReleaseCachedHostMemory(); });
  }
  label->Update();
  for (size_t k = 0; k < steps.size(); ++k)
  {
    if (seconds[k] >= 0.0)
    {
      m_StepSeconds.emplace_back(steps[k].first, seconds[k]);
    }
  }

  m_Label = label;
  m_ProbabilityImage = paste ? paste->GetOutput() : nullptr;
  m_CoarseProbability = coarse ? coarse->GetOutput() : nullptr;
  m_Crop = crop->GetOutput();
  m_RefinedPatch = refine->GetOutput();
  m_AttentionMap = refine->GetAttentionOutput();
  for (DataObject * image : std::initializer_list<DataObject *>{ m_Label, m_ProbabilityImage, m_CoarseProbability,
                                                                 m_Crop, m_RefinedPatch, m_AttentionMap })
  {
    if (image != nullptr)
    {
      image->DisconnectPipeline();
    }
  }
  m_UsedFallbackCrop = crop->GetUsedFallback();
  m_UsedAllCoarseComponents = component ? component->GetUsedAllComponents() : false;
  m_DeviceUsed = coarse ? coarse->GetDeviceUsed() : refine->GetDeviceUsed();
  m_NumberOfCoarseWindows = coarse ? coarse->GetNumberOfWindows() : 0;
  if (m_UseBox)
  {
    // The result is restricted to the box: voxels outside it are background (probability 0).
    const auto outside = [&boxRegion](auto * image)
    {
      if (image == nullptr)
      {
        return;
      }
      using ImageType = std::remove_pointer_t<decltype(image)>;
      for (ImageScanlineIterator<ImageType> it(image, image->GetBufferedRegion()); !it.IsAtEnd(); it.NextLine())
      {
        auto index = it.GetIndex();
        bool rowInside = true;
        for (unsigned int d = 1; d < 3; ++d)
        {
          rowInside = rowInside && index[d] >= boxRegion.GetIndex(d) &&
                      index[d] < boxRegion.GetIndex(d) + static_cast<IndexValueType>(boxRegion.GetSize(d));
        }
        for (; !it.IsAtEndOfLine(); ++it)
        {
          const auto x = it.GetIndex()[0];
          if (!rowInside || x < boxRegion.GetIndex(0) ||
              x >= boxRegion.GetIndex(0) + static_cast<IndexValueType>(boxRegion.GetSize(0)))
          {
            it.Set(0);
          }
        }
      }
    };
    outside(m_Label.GetPointer());
    outside(m_ProbabilityImage.GetPointer());
  }
  // The mask holds the main click, or nothing was found there: an object elsewhere (a coarse mask no click touches,
  // a refinement that moved off the click) is not returned in its place. An empty coarse mask is not "elsewhere": the
  // refinement then looked at a crop around the click (the fallback), and its mask decides.
  // A box without a click: nothing was found when the mask is empty in the box.
  m_ClickTissueFraction = 1.0;
  m_MaskNotOfClickedTissue = false;
  if (m_Clicks.empty())
  {
    const auto   count = m_Label->GetBufferedRegion().GetNumberOfPixels();
    const auto * voxels = m_Label->GetBufferPointer();
    m_NothingFoundAtClick = std::none_of(voxels, voxels + count, [](const auto value) { return value != 0; });
  }
  else
  {
    double tolerance = m_ClickTolerance;
    if (tolerance < 0.0)
    {
      const auto coarseModel =
        this->ResolveModel(m_CoarseModel, m_CoarseModelFile, m_CoarseFileModel, m_CoarseFileModelKey, "coarse model");
      const auto & spacing = coarseModel->description.preprocessing.targetSpacing;
      tolerance = std::sqrt(3.0) * *std::max_element(spacing.begin(), spacing.end());
    }
    m_UsedClickTolerance = tolerance;
    m_NothingFoundAtClick =
      (m_UsedAllCoarseComponents && !m_UsedFallbackCrop) ||
      !SegmentationInputCheck::ContainsClickWithin(m_Label.GetPointer(), m_Clicks.front(), tolerance);
    // A mask that holds the click yet is mostly of another tissue was not found at the click either.
    if (!m_NothingFoundAtClick && m_MinimumClickTissueFraction > 0.0)
    {
      typename InputImageType::IndexType clickIndex;
      input->TransformPhysicalPointToIndex(m_Clicks.front(), clickIndex);
      m_ClickTissueFraction =
        MaskCorrectionSupport::ClickTissueFraction(input.GetPointer(), m_Label.GetPointer(), clickIndex);
      m_MaskNotOfClickedTissue = m_ClickTissueFraction < m_MinimumClickTissueFraction;
      m_NothingFoundAtClick = m_MaskNotOfClickedTissue;
    }
  }
  m_UsedLikeIntensityFallback = false;
  m_UsedNothingFoundRadius = 0.0;
  m_LikeIntensityRegion.clear();
  if (m_NothingFoundAtClick)
  {
    m_Label->FillBuffer(0);
    if (likeIntensityFallback && !m_Clicks.empty())
    {
      // The networks found nothing, yet a click inside the body lies on the tissue the user means: its like-intensity
      // region stands for the answer (as a session's first click), never an object elsewhere. The probability output
      // follows the mask (1 inside, 0 outside), so thresholding it gives the same mask.
      typename InputImageType::IndexType clickIndex;
      input->TransformPhysicalPointToIndex(m_Clicks.front(), clickIndex);
      // With a box, the region grows inside it only (the voxels outside it block the growth, as object voxels do).
      typename OutputImageType::Pointer blocked = m_Label;
      if (m_UseBox)
      {
        blocked = OutputImageType::New();
        blocked->CopyInformation(m_Label);
        blocked->SetRegions(m_Label->GetLargestPossibleRegion());
        blocked->Allocate();
        blocked->FillBuffer(1);
        for (ImageRegionIterator<OutputImageType> it(blocked, boxRegion); !it.IsAtEnd(); ++it)
        {
          it.Set(0);
        }
      }
      m_LikeIntensityRegion = MaskCorrectionSupport::WholeObjectLikeIntensityRegion(
        input.GetPointer(), blocked.GetPointer(), clickIndex, m_NothingFoundRadius, m_GrowLargeNothingFoundRegion,
        &m_UsedNothingFoundRadius);
      const auto & region = m_LikeIntensityRegion;
      for (const auto offset : region)
      {
        m_Label->GetBufferPointer()[offset] = 1;
      }
      if (m_ProbabilityImage)
      {
        m_ProbabilityImage->FillBuffer(0.0f);
        for (const auto offset : region)
        {
          m_ProbabilityImage->GetBufferPointer()[offset] = 1.0f;
        }
      }
      m_UsedLikeIntensityFallback = !region.empty();
    }
  }
}

template<typename TInputImage, typename TOutputImage>
auto
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::RunCoarseWindow(const PointType &     click,
                                                                          const PointListType & negatives)
  -> FloatImageType::Pointer
{
  if (this->GetInput() == nullptr)
  {
    itkDivAttentionInputError("CT", "no input image");
  }
  auto input = InputImageType::New();
  input->Graft(this->GetInput());
  const auto coarseModel =
    this->ResolveModel(m_CoarseModel, m_CoarseModelFile, m_CoarseFileModel, m_CoarseFileModelKey, "coarse model");
  SegmentationModelSupport::CheckRole(*coarseModel, "coarse", "coarse model");
  SegmentationInputCheck::CheckClicks(input.GetPointer(), PointListType{ click });
  // One window: a region no wider than the patch on any axis.
  const auto & preprocessing = coarseModel->description.preprocessing;
  double       extent = std::numeric_limits<double>::infinity();
  for (unsigned int a = 0; a < 3; ++a)
  {
    extent = std::min(extent, preprocessing.patchSize[a] * preprocessing.targetSpacing[a]);
  }
  auto clickMap = ClickMapFilterType::New();
  clickMap->SetReferenceImage(input);
  clickMap->SetClicks(PointListType{ click });
  clickMap->SetNegativeClicks(negatives);
  clickMap->SetEncoding(SegmentationModelSupport::ClickEncodingOf(preprocessing.clickEncoding, "coarse model"));
  auto coarse = CoarseFilterType::New();
  coarse->SetInput(input);
  coarse->SetClickMap(clickMap->GetOutput());
  if (!negatives.empty())
  {
    coarse->SetNegativeClickMap(clickMap->GetNegativeOutput());
  }
  coarse->SetModel(coarseModel);
  coarse->SetDevice(m_Device);
  coarse->SetClick(click);
  coarse->SetMaximumExtent(extent);
  coarse->GrowRegionOff();
  coarse->SetWindowPlacement(m_CoarseWindowPlacement);
  coarse->SetGrowthThreshold(m_Threshold);

  const std::array<std::pair<const char *, ProcessObject *>, 2> steps{
    { { "click map", clickMap.GetPointer() }, { "coarse segmentation", coarse.GetPointer() } }
  };
  std::array<std::chrono::steady_clock::time_point, 2> started;
  std::array<double, 2>                                seconds{ { -1.0, -1.0 } };
  for (size_t k = 0; k < steps.size(); ++k)
  {
    steps[k].second->AddObserver(StartEvent(),
                                 [&started, k](const EventObject &) { started[k] = std::chrono::steady_clock::now(); });
    steps[k].second->AddObserver(
      EndEvent(), [&started, &seconds, k](const EventObject &)
      { seconds[k] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started[k]).count(); });
  }
  coarse->Update();
  m_StepSeconds.clear();
  for (size_t k = 0; k < steps.size(); ++k)
  {
    if (seconds[k] >= 0.0)
    {
      m_StepSeconds.emplace_back(steps[k].first, seconds[k]);
    }
  }
  FloatImageType::Pointer probability = coarse->GetOutput();
  probability->DisconnectPipeline();
  return probability;
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::RunWithCorrections()
{
  const InputImageType * input = this->GetInput();
  const auto             coarseModel =
    this->ResolveModel(m_CoarseModel, m_CoarseModelFile, m_CoarseFileModel, m_CoarseFileModelKey, "coarse model");
  const bool              networkNegatives = coarseModel->network->GetInputChannels() >= 3;
  const OutputImageType * previous = this->GetPreviousMask();
  if (previous == nullptr && networkNegatives)
  {
    // The networks read the negative clicks: the plain pipeline.
    this->RunPipeline(m_LikeIntensityWhenNothingFound);
    return;
  }
  using IndexType = MaskCorrectionSupport::IndexType;
  auto indexOf = [input](const PointType & click, const char * what, size_t k)
  {
    IndexType index;
    if (!ClickPoints::IsInside(click, input) || !input->TransformPhysicalPointToIndex(click, index))
    {
      itkGenericExceptionMacro(<< "DivAttention: input \"" << what << "\": click " << k + 1 << " " << click
                               << " (LPS, mm) lies outside the image");
    }
    return index;
  };
  std::vector<IndexType> positives, negatives;
  for (size_t k = 0; k < m_Clicks.size(); ++k)
  {
    positives.push_back(indexOf(m_Clicks[k], "Clicks", k));
  }
  for (size_t k = 0; k < m_NegativeClicks.size(); ++k)
  {
    negatives.push_back(indexOf(m_NegativeClicks[k], "NegativeClicks", k));
    for (size_t p = 0; p < positives.size(); ++p)
    {
      if (negatives.back() == positives[p])
      {
        itkExceptionMacro(<< "DivAttention: input \"NegativeClicks\": negative click " << k + 1 << " "
                          << m_NegativeClicks[k] << " (LPS, mm) lies on the voxel " << positives[p] << " of click "
                          << p + 1 << " " << m_Clicks[p] << ": a voxel cannot be both object and background");
      }
    }
  }

  // Each positive click's voxel on the object side for the carves (PositiveAnchor): its own unless a correction below
  // seeded its component within the click tolerance.
  std::vector<IndexType> anchors = positives;
  // Like-intensity answers within the nothing-found radius (a first click, or a correction far from the mask, where the
  // networks found nothing) and their seeds: negative clicks also cut them radially, as in a session
  // (MaskCorrectionSupport::LikeIntensityRadialCut()).
  std::vector<std::pair<MaskCorrectionSupport::OffsetListType, IndexType>> likeIntensityAnswers;
  // The positive clicks: together through the pipeline (no previous mask), or each outside the previous mask alone.
  const PointListType               clicks = m_Clicks;
  const PointListType               negativeClicks = m_NegativeClicks;
  typename OutputImageType::Pointer mask;
  try
  {
    m_NegativeClicks = networkNegatives ? negativeClicks : PointListType{};
    if (previous == nullptr)
    {
      this->RunPipeline(m_LikeIntensityWhenNothingFound);
      mask = m_Label;
      if (m_UsedLikeIntensityFallback)
      {
        // The mask is the first click's like-intensity region, whole.
        likeIntensityAnswers.emplace_back(m_LikeIntensityRegion, positives.front());
      }
      for (size_t k = 0; k < clicks.size(); ++k)
      {
        // A click whose voxel the mask leaves out, found within the click tolerance: the voxel found stands for it.
        IndexType seed;
        if (mask->GetPixel(positives[k]) == 0 &&
            SegmentationInputCheck::NearestVoxelWithin(mask.GetPointer(), clicks[k], m_UsedClickTolerance, seed))
        {
          anchors[k] = seed;
        }
      }
    }
    else
    {
      mask = OutputImageType::New();
      mask->CopyInformation(input);
      mask->SetRegions(input->GetLargestPossibleRegion());
      mask->Allocate();
      const auto count = mask->GetBufferedRegion().GetNumberOfPixels();
      std::transform(previous->GetBufferPointer(), previous->GetBufferPointer() + count, mask->GetBufferPointer(),
                     [](typename OutputImageType::PixelType value) { return value != 0 ? 1 : 0; });
      // A click on an empty mask runs the whole pipeline; a correction (the mask holds something) stage 1's window.
      SizeValueType           objectVoxels = static_cast<SizeValueType>(std::count_if(
                  mask->GetBufferPointer(), mask->GetBufferPointer() + count, [](auto value) { return value != 0; }));
      bool                    ran = false;
      bool                    checked = false;
      bool                    firstObjectByLikeIntensity = false;
      FloatImageType::Pointer window;
      for (size_t k = 0; k < clicks.size(); ++k)
      {
        if (mask->GetPixel(positives[k]) != 0)
        {
          continue; // inside the mask: it keeps its part from the negative clicks
        }
        m_Clicks = { clicks[k] };
        MaskCorrectionSupport::OffsetListType added;
        if (objectVoxels == 0)
        {
          // As a session: the first object is the pipeline's component at the click (seeded as a session seeds it),
          // whole; its like-intensity region when the networks find nothing (below, as a session adds it).
          this->RunPipeline(false);
          ran = true;
          checked = true;
          IndexType seed;
          if (SegmentationInputCheck::NearestVoxelWithin(m_Label.GetPointer(), clicks[k], m_UsedClickTolerance, seed))
          {
            added = MaskCorrectionSupport::ConnectedVoxels(m_Label.GetPointer(), { seed });
          }
        }
        else
        {
          // As a session: of stage 1's answer at the click, the like-intensity part near it.
          if (!checked)
          {
            const auto & spacing = coarseModel->description.preprocessing.targetSpacing;
            SegmentationInputCheck::CheckImage(input, "CT", *std::max_element(spacing.begin(), spacing.end()));
            checked = true;
          }
          window = this->RunCoarseWindow(clicks[k], m_NegativeClicks);
          bool far = false;
          added = MaskCorrectionSupport::PositiveCorrectionFromProbability(
            input, mask.GetPointer(), window.GetPointer(), m_Threshold, positives[k],
            MaskCorrectionSupport::LikeIntensityK, MaskCorrectionSupport::LikeIntensityMinimumHalfWidth, &far);
          if (far)
          {
            // As a session: farther from the mask than stage 1's answer reaches, a new object: the whole pipeline's
            // component (seeded as a session seeds it) through the correction rule.
            this->RunPipeline(false);
            ran = true;
            IndexType seed;
            added.clear();
            if (SegmentationInputCheck::NearestVoxelWithin(m_Label.GetPointer(), clicks[k], m_UsedClickTolerance, seed))
            {
              added = MaskCorrectionSupport::PositiveCorrection(
                input, mask.GetPointer(), MaskCorrectionSupport::ConnectedVoxels(m_Label.GetPointer(), { seed }),
                positives[k], MaskCorrectionSupport::LikeIntensityK,
                MaskCorrectionSupport::LikeIntensityMinimumHalfWidth, false);
            }
          }
        }
        if (added.empty())
        {
          // As a session: the click's like-intensity neighbourhood when the pipeline adds nothing.
          bool wholeAnswer = false;
          added = MaskCorrectionSupport::PositiveFallbackRegion(
            input, mask.GetPointer(), positives[k], MaskCorrectionSupport::LikeIntensityDefaultRadius,
            objectVoxels == 0, m_NothingFoundRadius, &wholeAnswer, m_GrowLargeNothingFoundRegion);
          firstObjectByLikeIntensity = firstObjectByLikeIntensity || (objectVoxels == 0 && !added.empty());
          if (wholeAnswer && !added.empty())
          {
            likeIntensityAnswers.emplace_back(added, positives[k]);
          }
        }
        // As a session: the click's stand-in for the carves below.
        IndexType anchor;
        if (MaskCorrectionSupport::PositiveAnchor(mask.GetPointer(), clicks[k], positives[k], added, anchor))
        {
          anchors[k] = anchor;
        }
        for (const auto offset : added)
        {
          mask->GetBufferPointer()[offset] = 1;
        }
        objectVoxels += added.size();
      }
      if (!ran)
      {
        m_ProbabilityImage = nullptr;
        m_CoarseProbability = window;
        m_Crop = nullptr;
        m_RefinedPatch = nullptr;
        m_AttentionMap = nullptr;
        if (!window)
        {
          m_StepSeconds.clear();
        }
        m_UsedFallbackCrop = false;
        m_UsedAllCoarseComponents = false;
        m_NumberOfCoarseWindows = window ? 1 : 0;
      }
      m_NothingFoundAtClick = false;
      m_MaskNotOfClickedTissue = false;
      m_ClickTissueFraction = 1.0;
      m_UsedLikeIntensityFallback = firstObjectByLikeIntensity;
    }
  }
  catch (...)
  {
    m_Clicks = clicks;
    m_NegativeClicks = negativeClicks;
    throw;
  }
  m_Clicks = clicks;
  m_NegativeClicks = negativeClicks;

  // The negative clicks, in order, each on the mask the previous one left (as a session).
  if (!networkNegatives || previous != nullptr)
  {
    for (const auto & negative : negatives)
    {
      std::vector<IndexType> keep;
      for (const auto & anchor : anchors)
      {
        if (anchor != negative) // a negative click on a stand-in (never on a click's own voxel: refused above) wins
        {
          keep.push_back(anchor);
        }
      }
      auto removed = MaskCorrectionSupport::LocalGeodesicCarve(mask.GetPointer(), negative, keep);
      for (const auto & [region, seed] : likeIntensityAnswers)
      {
        MaskCorrectionSupport::MergeOffsets(
          removed, MaskCorrectionSupport::LikeIntensityRadialCut(mask.GetPointer(), region, seed, negative, keep));
      }
      for (const auto offset : removed)
      {
        mask->GetBufferPointer()[offset] = 0;
      }
    }
  }
  m_Label = mask;
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::GenerateData()
{
  const InputImageType * input = this->GetInput();
  auto                   resultTime = std::max(this->GetMTime(), input->GetMTime());
  if (const OutputImageType * previous = this->GetPreviousMask())
  {
    resultTime = std::max(resultTime, previous->GetMTime());
  }
  if (!m_Label || m_ResultInput != input || m_ResultTime != resultTime)
  {
    if (this->GetPreviousMask() != nullptr || !m_NegativeClicks.empty())
    {
      this->RunWithCorrections();
    }
    else
    {
      this->RunPipeline(m_LikeIntensityWhenNothingFound);
    }
    m_ResultInput = input;
    m_ResultTime = resultTime;
  }

  OutputImageType * output = this->GetOutput();
  const auto        requested = output->GetRequestedRegion();
  if (requested == m_Label->GetLargestPossibleRegion())
  {
    this->GraftOutput(m_Label);
  }
  else
  {
    // A piece of a streamed request: copy it from the result computed once.
    output->SetBufferedRegion(requested);
    output->Allocate();
    ImageAlgorithm::Copy(m_Label.GetPointer(), output, requested, requested);
  }
  EncapsulateMetaData<std::string>(output->GetMetaDataDictionary(), FallbackCropKey,
                                   std::string(m_UsedFallbackCrop ? "true" : "false"));
  EncapsulateMetaData<std::string>(output->GetMetaDataDictionary(), NothingFoundAtClickKey,
                                   std::string(m_NothingFoundAtClick ? "true" : "false"));
  EncapsulateMetaData<std::string>(output->GetMetaDataDictionary(), MaskNotOfClickedTissueKey,
                                   std::string(m_MaskNotOfClickedTissue ? "true" : "false"));
  EncapsulateMetaData<std::string>(output->GetMetaDataDictionary(), LikeIntensityFallbackKey,
                                   std::string(m_UsedLikeIntensityFallback ? "true" : "false"));
}

template<typename TInputImage, typename TOutputImage>
void
ClickGuidedSegmentationFilter<TInputImage, TOutputImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "CoarseModelFile: " << m_CoarseModelFile << std::endl;
  os << indent << "RefineModelFile: " << m_RefineModelFile << std::endl;
  os << indent << "CoarseModel: " << (m_CoarseModel ? "loaded" : "(none)") << std::endl;
  os << indent << "RefineModel: " << (m_RefineModel ? "loaded" : "(none)") << std::endl;
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
  os << indent << "Device: " << m_Device << std::endl;
  os << indent << "Threshold: " << m_Threshold << std::endl;
  os << indent << "CropMarginFactor: " << m_CropMarginFactor << std::endl;
  os << indent << "CropMinimumSize: " << m_CropMinimumSize << std::endl;
  os << indent << "AlignCropWithPrincipalAxes: " << m_AlignCropWithPrincipalAxes << std::endl;
  os << indent << "KeepClickedComponent: " << m_KeepClickedComponent << std::endl;
  os << indent << "RefinementBand: " << m_RefinementBand << std::endl;
  os << indent << "FallbackCropSize: " << m_FallbackCropSize << std::endl;
  os << indent << "CoarseMaximumExtent: " << m_CoarseMaximumExtent << std::endl;
  os << indent << "CoarseWindowPlacement: " << m_CoarseWindowPlacement << std::endl;
  os << indent << "ComputeProbabilityImage: " << (m_ComputeProbabilityImage ? "On" : "Off") << std::endl;
  os << indent << "ComputeAttentionMap: " << (m_ComputeAttentionMap ? "On" : "Off") << std::endl;
  os << indent << "ReleaseCacheBetweenStages: " << (m_ReleaseCacheBetweenStages ? "On" : "Off") << std::endl;
  os << indent << "UseBox: " << m_UseBox << std::endl;
  os << indent << "BoxCorner1: " << m_BoxCorner1 << std::endl;
  os << indent << "BoxCorner2: " << m_BoxCorner2 << std::endl;
  os << indent << "CoarseFileModel: " << (m_CoarseFileModel ? m_CoarseFileModelKey : std::string("(none)"))
     << std::endl;
  os << indent << "RefineFileModel: " << (m_RefineFileModel ? m_RefineFileModelKey : std::string("(none)"))
     << std::endl;
  os << indent << "Label: " << m_Label.GetPointer() << std::endl;
  os << indent << "ProbabilityImage: " << m_ProbabilityImage.GetPointer() << std::endl;
  os << indent << "CoarseProbability: " << m_CoarseProbability.GetPointer() << std::endl;
  os << indent << "Crop: " << m_Crop.GetPointer() << std::endl;
  os << indent << "RefinedPatch: " << m_RefinedPatch.GetPointer() << std::endl;
  os << indent << "AttentionMap: " << m_AttentionMap.GetPointer() << std::endl;
  os << indent << "ResultInput: " << m_ResultInput << std::endl;
  os << indent << "ResultTime: " << m_ResultTime << std::endl;
  os << indent << "UsedFallbackCrop: " << m_UsedFallbackCrop << std::endl;
  os << indent << "UsedAllCoarseComponents: " << m_UsedAllCoarseComponents << std::endl;
  os << indent << "NothingFoundAtClick: " << m_NothingFoundAtClick << std::endl;
  os << indent << "ClickTolerance: " << m_ClickTolerance << std::endl;
  os << indent << "LikeIntensityWhenNothingFound: " << m_LikeIntensityWhenNothingFound << std::endl;
  os << indent << "NothingFoundRadius: " << m_NothingFoundRadius << std::endl;
  os << indent << "GrowLargeNothingFoundRegion: " << m_GrowLargeNothingFoundRegion << std::endl;
  os << indent << "UsedLikeIntensityFallback: " << m_UsedLikeIntensityFallback << std::endl;
  os << indent << "MinimumClickTissueFraction: " << m_MinimumClickTissueFraction << std::endl;
  os << indent << "MaskNotOfClickedTissue: " << m_MaskNotOfClickedTissue << std::endl;
  os << indent << "ClickTissueFraction: " << m_ClickTissueFraction << std::endl;
  os << indent << "DeviceUsed: " << m_DeviceUsed << std::endl;
  os << indent << "NumberOfCoarseWindows: " << m_NumberOfCoarseWindows << std::endl;
}
} // namespace itk

#endif
