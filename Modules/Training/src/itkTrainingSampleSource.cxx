#include "itkTrainingSampleSource.h"

#include "divaModelFile.h"
#include "divaSegmentationLoss.h"
#include "itkBinaryThresholdImageFilter.h"
#include "itkClickDistanceTransformFilter.h"
#include "itkClickSampler.h"
#include "itkClickedComponentImageFilter.h"
#include "itkCoarseSegmentationFilter.h"
#include "itkCorrectionClickSimulator.h"
#include "itkDatasetCaseValidator.h"
#include "itkImageFileReader.h"
#include "itkImageRegionConstIterator.h"
#include "itkImageRegionIterator.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkImageTensorBridge.h"
#include "itkLabelInstanceExtractor.h"
#include "itkLinearInterpolateImageFunction.h"
#include "itkNearestNeighborInterpolateImageFunction.h"
#include "itkPCACropResampleFilter.h"
#include "itkResampleImageFilter.h"
#include "itkSegmentationModelSupport.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <optional>

namespace itk
{
namespace
{
using FloatImageType = Image<float, 3>;

// Uniform in [-1, 1) from 53 bits of the generator: fixed by IEEE arithmetic, unlike std:: distributions.
double
SignedUniform(std::mt19937_64 & generator)
{
  return 2.0 * (static_cast<double>(generator() >> 11) * 0x1.0p-53) - 1.0;
}

Matrix<double, 3>
RandomRotation(std::mt19937_64 & generator, double maximumDegrees)
{
  Matrix<double, 3> rotation;
  rotation.SetIdentity();
  for (unsigned int axis = 0; axis < 3; ++axis)
  {
    const double      angle = SignedUniform(generator) * maximumDegrees * M_PI / 180.0;
    Matrix<double, 3> about;
    about.SetIdentity();
    const unsigned int a = (axis + 1) % 3;
    const unsigned int b = (axis + 2) % 3;
    about[a][a] = std::cos(angle);
    about[a][b] = -std::sin(angle);
    about[b][a] = std::sin(angle);
    about[b][b] = std::cos(angle);
    rotation = about * rotation;
  }
  return rotation;
}

// Geometry augmentation acts on the sampling grid: rotating and zooming the cube about its centre resamples CT and
// mask with one and the same geometry, so image and label can never drift apart.
void
AugmentCube(SamplingCube & cube, std::mt19937_64 & generator, const diva::TrainingOptions & options)
{
  cube.axes = RandomRotation(generator, options.rotationDegrees) * cube.axes;
  const double zoom = 1.0 + options.scaleRange * SignedUniform(generator);
  for (unsigned int d = 0; d < 3; ++d)
  {
    cube.side[d] *= zoom;
  }
}

// A cut of the field of view beside the object (FieldOfViewCut), or none: with the given probability, one axis of
// the CT's grid and one side at random, the plane uniform between the object's extent (the instance's mask, which
// carries a one-voxel margin) and the image's edge. No room on that side: no cut. Nothing is drawn at probability 0,
// so samples without the option are those of earlier versions.
std::optional<FieldOfViewCut>
DrawFieldOfViewCut(const Image<int16_t, 3> * ct,
                   const Image<uint8_t, 3> * mask,
                   std::mt19937_64 &         generator,
                   double                    probability)
{
  if (!(probability > 0.0) || 0.5 * (SignedUniform(generator) + 1.0) >= probability)
  {
    return std::nullopt;
  }
  FieldOfViewCut cut;
  cut.axis = static_cast<unsigned int>(generator() % 3);
  cut.high = (generator() & 1u) != 0;
  const double position = 0.5 * (SignedUniform(generator) + 1.0);
  // The object's extent along the axis, in the CT's continuous index: the mask region's eight corners.
  const auto & region = mask->GetLargestPossibleRegion();
  double       low = std::numeric_limits<double>::infinity(), high = -low;
  for (unsigned int corner = 0; corner < 8; ++corner)
  {
    ContinuousIndex<double, 3> c;
    for (unsigned int d = 0; d < 3; ++d)
    {
      c[d] = static_cast<double>(region.GetIndex(d)) - 0.5 +
             ((corner >> d) & 1u ? static_cast<double>(region.GetSize(d)) : 0.0);
    }
    Point<double, 3> p;
    mask->TransformContinuousIndexToPhysicalPoint(c, p);
    const double along = ct->TransformPhysicalPointToContinuousIndex<double>(p)[cut.axis];
    low = std::min(low, along);
    high = std::max(high, along);
  }
  const auto & image = ct->GetLargestPossibleRegion();
  const double first = static_cast<double>(image.GetIndex(cut.axis)) - 0.5;
  const double last = first + static_cast<double>(image.GetSize(cut.axis));
  if (cut.high)
  {
    if (!(high < last - 1.0))
    {
      return std::nullopt;
    }
    cut.index = high + position * (last - high);
  }
  else
  {
    if (!(low > first + 1.0))
    {
      return std::nullopt;
    }
    cut.index = low - position * (low - first);
  }
  return cut;
}

SamplingCube
CubeFromFilterGeometry(const Point<double, 3> &       center,
                       double                         side,
                       const Matrix<double, 3> &      axes,
                       const std::array<int64_t, 3> & patchSize)
{
  SamplingCube cube;
  cube.center = center;
  cube.axes = axes;
  for (unsigned int d = 0; d < 3; ++d)
  {
    cube.side[d] = side;
    cube.size[d] = static_cast<SizeValueType>(patchSize[d]);
  }
  return cube;
}

TrainingSampleSource::MaskImageType::Pointer
BinaryCrop(const LabelInstanceExtractor::InstanceImageType * instances, uint16_t id, ImageRegion<3> box)
{
  box.PadByRadius(1);
  box.Crop(instances->GetLargestPossibleRegion());
  auto mask = TrainingSampleSource::MaskImageType::New();
  mask->CopyInformation(instances);
  mask->SetRegions(box);
  mask->Allocate();
  ImageRegionConstIterator<LabelInstanceExtractor::InstanceImageType> in(instances, box);
  ImageRegionIterator<TrainingSampleSource::MaskImageType>            out(mask, box);
  for (; !in.IsAtEnd(); ++in, ++out)
  {
    out.Set(in.Get() == id ? 1 : 0);
  }
  return mask;
}

ClickSamplerEnums::Strategy
ParseStrategy(const std::string & text)
{
  return text == "interior" ? ClickSamplerEnums::Strategy::Interior : ClickSamplerEnums::Strategy::Uniform;
}
} // namespace

Image<float, 3>::Pointer
MakeCubeGrid(const SamplingCube & cube)
{
  auto                        grid = FloatImageType::New();
  FloatImageType::SpacingType spacing;
  Point<double, 3>            origin = cube.center;
  for (unsigned int d = 0; d < 3; ++d)
  {
    spacing[d] = cube.side[d] / static_cast<double>(cube.size[d]);
    const double along = -0.5 * cube.side[d] + 0.5 * spacing[d];
    for (unsigned int r = 0; r < 3; ++r)
    {
      origin[r] += cube.axes[r][d] * along;
    }
  }
  grid->SetRegions(ImageRegion<3>(cube.size));
  grid->SetSpacing(spacing);
  grid->SetOrigin(origin);
  grid->SetDirection(cube.axes);
  return grid;
}

SamplingCube
ClickRegionCube(const Point<double, 3> &       click,
                const std::array<int64_t, 3> & patchSize,
                const std::array<double, 3> &  spacing,
                const Matrix<double, 3> &      ctDirection)
{
  SamplingCube cube;
  cube.center = click;
  cube.axes = ctDirection;
  for (unsigned int d = 0; d < 3; ++d)
  {
    cube.size[d] = static_cast<SizeValueType>(patchSize[d]);
    cube.side[d] = spacing[d] * static_cast<double>(patchSize[d]);
  }
  return cube;
}

SamplingCube
PlaceStage1Window(SamplingCube cube, const Vector<double, 3> & offset, const Image<int16_t, 3> * ct, bool insideImage)
{
  for (unsigned int d = 0; d < 3; ++d)
  {
    for (unsigned int r = 0; r < 3; ++r)
    {
      cube.center[r] += cube.axes[r][d] * offset[d] * 0.5 * cube.side[d];
    }
  }
  // CoarseSegmentationFilter's grid covers the CT (along each CT axis, from the first voxel's outer edge to the
  // last's), and half a window more on each side unless its windows stay inside the image; its windows are clamped
  // into the grid. Inside the image only, a CT narrower than a window gets one window centred on it.
  auto         centre = ct->TransformPhysicalPointToContinuousIndex<double>(cube.center);
  const auto & region = ct->GetLargestPossibleRegion();
  for (unsigned int d = 0; d < 3; ++d)
  {
    const double low = static_cast<double>(region.GetIndex(d)) - 0.5;
    const double high = low + static_cast<double>(region.GetSize(d));
    if (!insideImage)
    {
      centre[d] = std::clamp(centre[d], low, high); // the grid's half-window margin beyond the CT
      continue;
    }
    const double half = 0.5 * cube.side[d] / ct->GetSpacing()[d];
    centre[d] = high - low >= 2.0 * half ? std::clamp(centre[d], low + half, high - half) : 0.5 * (low + high);
  }
  ct->TransformContinuousIndexToPhysicalPoint(centre, cube.center);
  return cube;
}

namespace
{
// The training volumes are shared by the loader threads, and a filter writes its requested region into its input:
// each sample's pipeline reads through its own image object over the same pixel buffer, so concurrent samples never
// touch each other's pipeline state.
template<typename TImage>
typename TImage::Pointer
SharedBufferView(const TImage * image)
{
  auto view = TImage::New();
  view->Graft(image);
  return view;
}
} // namespace

torch::Tensor
PreprocessCT(const Image<int16_t, 3> *   ct,
             const Image<float, 3> *     grid,
             const diva::Preprocessing & preprocessing,
             const FieldOfViewCut *      cut)
{
  using ResampleType = ResampleImageFilter<Image<int16_t, 3>, FloatImageType>;
  auto resample = ResampleType::New();
  resample->SetInput(SharedBufferView(ct));
  resample->SetOutputParametersFromImage(grid);
  resample->SetInterpolator(LinearInterpolateImageFunction<Image<int16_t, 3>, double>::New());
  resample->SetDefaultPixelValue(-1024.0f);
  resample->Update();
  if (cut != nullptr)
  {
    // The CT's continuous index along the cut's axis is affine in the grid's index: c = c0 + sum_d step_d * i_d.
    FloatImageType * values = resample->GetOutput();
    const auto       along = [&](const FloatImageType::IndexType & index)
    {
      Point<double, 3> p;
      values->TransformIndexToPhysicalPoint(index, p);
      return ct->TransformPhysicalPointToContinuousIndex<double>(p)[cut->axis];
    };
    const double c0 = along({ { 0, 0, 0 } });
    const double step[3] = { along({ { 1, 0, 0 } }) - c0, along({ { 0, 1, 0 } }) - c0, along({ { 0, 0, 1 } }) - c0 };
    ImageRegionIteratorWithIndex<FloatImageType> it(values, values->GetBufferedRegion());
    for (; !it.IsAtEnd(); ++it)
    {
      const auto & i = it.GetIndex();
      const double c = c0 + step[0] * static_cast<double>(i[0]) + step[1] * static_cast<double>(i[1]) +
                       step[2] * static_cast<double>(i[2]);
      if (cut->high ? c > cut->index : c < cut->index)
      {
        it.Set(-1024.0f);
      }
    }
  }
  torch::Tensor x = ImageToTensor(resample->GetOutput()).clone();
  x = x.clamp(preprocessing.clipMinimum, preprocessing.clipMaximum);
  if (preprocessing.normalization == "zscore")
  {
    x = (x - preprocessing.mean) / preprocessing.standardDeviation;
  }
  else if (preprocessing.normalization == "range")
  {
    x = (x - preprocessing.clipMinimum) / (preprocessing.clipMaximum - preprocessing.clipMinimum);
  }
  else if (preprocessing.normalization != "none")
  {
    itkGenericExceptionMacro(<< "DivAttention: unknown normalization \"" << preprocessing.normalization << "\"");
  }
  return x;
}

torch::Tensor
ResampleMask(const Image<uint8_t, 3> * mask, const Image<float, 3> * grid)
{
  using ResampleType = ResampleImageFilter<Image<uint8_t, 3>, Image<uint8_t, 3>>;
  auto resample = ResampleType::New();
  resample->SetInput(SharedBufferView(mask));
  resample->SetOutputParametersFromImage(grid);
  resample->SetInterpolator(NearestNeighborInterpolateImageFunction<Image<uint8_t, 3>, double>::New());
  resample->SetDefaultPixelValue(0);
  resample->Update();
  return ImageToTensorAs(resample->GetOutput(), torch::kFloat32);
}

torch::Tensor
ClickMap(const Image<float, 3> * grid, const Point<double, 3> & click, const std::string & encoding)
{
  return ClickMap(grid, std::vector<Point<double, 3>>{ click }, encoding);
}

torch::Tensor
ClickMap(const Image<float, 3> * grid, const std::vector<Point<double, 3>> & clicks, const std::string & encoding)
{
  const auto encodingEnum = SegmentationModelSupport::ClickEncodingOf(encoding, "click encoding");
  if (clicks.empty())
  {
    const auto & size = grid->GetLargestPossibleRegion().GetSize();
    return torch::full(
      { 1, 1, static_cast<int64_t>(size[2]), static_cast<int64_t>(size[1]), static_cast<int64_t>(size[0]) },
      ClickMapValueWithoutClicks(encodingEnum), torch::kFloat32);
  }
  auto encode = ClickDistanceTransformFilter<FloatImageType>::New();
  encode->SetInput(grid);
  encode->SetClicks(clicks);
  encode->SetEncoding(encodingEnum);
  encode->Update();
  return ImageToTensor(encode->GetOutput()).clone();
}

uint64_t
TrainingSampleSource::SampleSeed(uint64_t seed, uint64_t epoch, uint64_t index, uint64_t purpose)
{
  uint64_t state = seed;
  for (const uint64_t value : { epoch, index, purpose })
  {
    state ^= value + 0x9E3779B97F4A7C15ULL + (state << 6) + (state >> 2);
    // splitmix64 finaliser
    state = (state ^ (state >> 30)) * 0xBF58476D1CE4E5B9ULL;
    state = (state ^ (state >> 27)) * 0x94D049BB133111EBULL;
    state ^= state >> 31;
  }
  return state;
}

TrainingSampleSource::TrainingSampleSource(const diva::TrainingOptions &                        options,
                                           const std::vector<SegmentationDatasetReader::Case> & cases,
                                           std::vector<Problem>                                 listingProblems)
    : m_Options(options), m_Preprocessing(std::make_shared<diva::Preprocessing>()),
      m_Problems(std::move(listingProblems))
{
  auto report = [this](const std::string & id, const std::string & reason)
  {
    if (m_Options.strict)
    {
      itkGenericExceptionMacro(<< "DivAttention: case \"" << id << "\": " << reason << " (--strict)");
    }
    std::cerr << "warning: case \"" << id << "\" skipped: " << reason << std::endl;
    m_Problems.push_back({ id, reason });
  };
  if (m_Options.strict && !m_Problems.empty())
  {
    itkGenericExceptionMacro(<< "DivAttention: case \"" << m_Problems.front().caseId
                             << "\": " << m_Problems.front().reason << " (--strict)");
  }
  DatasetCaseValidator::Options checks;
  checks.targetLabels = options.targetLabels;
  checks.expectBinary = options.expectBinary;
  LabelInstanceExtractor::Options extraction;
  extraction.targetLabels = options.targetLabels;
  extraction.mode = LabelInstanceExtractor::ModeFromName(options.instances);
  extraction.minimumExtent = options.minimumExtent;
  extraction.minimumVoxels = options.minimumVoxels;

  for (const auto & entry : cases)
  {
    const auto reasons = DatasetCaseValidator::Check(entry, checks);
    if (!reasons.empty())
    {
      std::string joined;
      for (const auto & reason : reasons)
      {
        joined += (joined.empty() ? "" : "; ") + reason;
      }
      report(entry.id, joined);
      continue;
    }
    auto ctReader = ImageFileReader<CTImageType>::New();
    ctReader->SetFileName(entry.image);
    ctReader->Update();
    // A label map (one file, the target labels), or one mask file per structure (TotalSegmentator layout): there every
    // structure is a target, its non-zero voxels its mask, split into instances as the label map's labels are.
    using LabelImageType = LabelInstanceExtractor::LabelImageType;
    std::vector<LabelImageType::Pointer> labelImages;
    auto                                 structureExtraction = extraction;
    structureExtraction.targetLabels = { 1 };
    if (entry.structures.empty())
    {
      auto labelReader = ImageFileReader<LabelImageType>::New();
      labelReader->SetFileName(entry.label);
      labelReader->Update();
      labelImages.push_back(labelReader->GetOutput());
    }
    for (const auto & structure : entry.structures)
    {
      auto maskReader = ImageFileReader<LabelImageType>::New();
      maskReader->SetFileName(structure.mask);
      auto binary = BinaryThresholdImageFilter<LabelImageType, LabelImageType>::New();
      binary->SetInput(maskReader->GetOutput());
      binary->SetLowerThreshold(1);
      binary->SetInsideValue(1);
      binary->SetOutsideValue(0);
      binary->Update();
      labelImages.push_back(binary->GetOutput());
    }
    const size_t caseIndex = m_CaseIds.size();
    size_t       instancesKept = 0;
    for (const auto & labels : labelImages)
    {
      const auto extracted =
        LabelInstanceExtractor::Extract(labels, entry.structures.empty() ? extraction : structureExtraction);
      m_Discarded += extracted.discarded;
      for (const auto & kept : extracted.kept)
      {
        Instance instance;
        instance.caseIndex = caseIndex;
        instance.id = kept.id;
        instance.voxels = kept.voxels;
        instance.mask = BinaryCrop(extracted.instances, kept.id, kept.boundingBox);
        instance.cropMask = instance.mask;
        m_Instances.push_back(instance);
        ++instancesKept;
      }
    }
    if (instancesKept == 0)
    {
      report(entry.id, "no instance left after discarding those below the size rule");
      continue;
    }
    m_CaseIds.push_back(entry.id);
    m_Images.push_back(ctReader->GetOutput());
  }
  if (m_Instances.empty())
  {
    itkGenericExceptionMacro(<< "DivAttention: no usable case (" << m_Problems.size() << " skipped with problems)");
  }
  m_Preprocessing->clipMinimum = options.clipMinimum;
  m_Preprocessing->clipMaximum = options.clipMaximum;
  m_Preprocessing->targetSpacing = options.targetSpacing;
  m_Preprocessing->patchSize = options.patchSize;
}

std::pair<double, double>
TrainingSampleSource::ForegroundStatistics() const
{
  double sum = 0.0;
  double squares = 0.0;
  double count = 0.0;
  for (const auto & instance : m_Instances)
  {
    const CTImageType *                     ct = m_Images[instance.caseIndex];
    ImageRegionConstIterator<MaskImageType> it(instance.mask, instance.mask->GetBufferedRegion());
    for (; !it.IsAtEnd(); ++it)
    {
      if (it.Get() != 0)
      {
        const double value = std::min(std::max(static_cast<double>(ct->GetPixel(it.GetIndex())), m_Options.clipMinimum),
                                      m_Options.clipMaximum);
        sum += value;
        squares += value * value;
        count += 1.0;
      }
    }
  }
  const double mean = sum / count;
  const double variance = std::max(squares / count - mean * mean, 0.0);
  // A constant foreground (phantoms without noise) would divide by zero: fall back to unit scale.
  return { mean, variance > 1e-12 ? std::sqrt(variance) : 1.0 };
}

void
TrainingSampleSource::SetPreprocessing(const diva::Preprocessing & preprocessing)
{
  *m_Preprocessing = preprocessing;
}

const diva::Preprocessing &
TrainingSampleSource::GetPreprocessing() const
{
  return *m_Preprocessing;
}

size_t
TrainingSampleSource::UseStage1Predictions(const std::shared_ptr<diva::LoadedModel> & coarseModel,
                                           const std::string &                        device)
{
  using ClickMapType = ClickDistanceTransformFilter<CTImageType, FloatImageType>;
  using CoarseType = CoarseSegmentationFilter<CTImageType, FloatImageType>;
  using ComponentType = ClickedComponentImageFilter<FloatImageType, FloatImageType>;
  using MaskType = BinaryThresholdImageFilter<FloatImageType, MaskImageType>;
  const auto encoding =
    SegmentationModelSupport::ClickEncodingOf(coarseModel->description.preprocessing.clickEncoding, "stage-1 model");
  m_Stage1Fallbacks = 0;
  for (size_t index = 0; index < m_Instances.size(); ++index)
  {
    Instance & instance = m_Instances[index];
    auto       sampler = ClickSampler<MaskImageType>::New();
    sampler->SetMask(instance.mask);
    sampler->SetSeed(SampleSeed(m_Options.seed, 0, index, 2));
    const auto click = sampler->Sample();
    const auto ct = SharedBufferView(m_Images[instance.caseIndex].GetPointer());
    // The pipeline's first three steps, as ClickGuidedSegmentationFilter runs them.
    auto clickMap = ClickMapType::New();
    clickMap->SetReferenceImage(ct);
    clickMap->SetClicks({ click });
    clickMap->SetEncoding(encoding);
    auto coarse = CoarseType::New();
    coarse->SetInput(ct);
    coarse->SetClickMap(clickMap->GetOutput());
    coarse->SetModel(coarseModel);
    coarse->SetDevice(device);
    coarse->SetClick(click);
    auto component = ComponentType::New();
    component->SetInput(coarse->GetOutput());
    component->SetClicks({ click });
    auto mask = MaskType::New();
    mask->SetInput(component->GetOutput());
    mask->SetLowerThreshold(0.5f);
    mask->SetInsideValue(1);
    mask->SetOutsideValue(0);
    mask->Update();
    size_t                                  found = 0;
    ImageRegionConstIterator<MaskImageType> it(mask->GetOutput(), mask->GetOutput()->GetBufferedRegion());
    for (; !it.IsAtEnd(); ++it)
    {
      found += it.Get() != 0 ? 1 : 0;
    }
    if (found == 0 || component->GetUsedAllComponents())
    {
      ++m_Stage1Fallbacks; // nothing under the click: the reference mask places this instance's crops
      instance.cropMask = instance.mask;
      continue;
    }
    instance.cropMask = mask->GetOutput();
    instance.cropMask->DisconnectPipeline();
  }
  return m_Stage1Fallbacks;
}

SamplingCube
TrainingSampleSource::Stage2Cube(const Instance & instance) const
{
  using CropType = PCACropResampleFilter<CTImageType, MaskImageType, FloatImageType>;
  auto crop = CropType::New();
  crop->SetInput(SharedBufferView(m_Images[instance.caseIndex].GetPointer()));
  crop->SetMaskImage(SharedBufferView(instance.cropMask.GetPointer()));
  typename CropType::SizeType size;
  for (unsigned int d = 0; d < 3; ++d)
  {
    size[d] = static_cast<SizeValueType>(m_Options.patchSize[d]);
  }
  crop->SetOutputSize(size);
  crop->SetMarginFactor(m_Options.cropMargin);
  crop->SetMinimumSideLength(m_Options.cropMinimumSide);
  crop->UpdateOutputInformation();
  return CubeFromFilterGeometry(crop->GetCropCenter(), crop->GetCropSideLength(), crop->GetCropAxes(),
                                m_Options.patchSize);
}

TrainingSampleSource::Sample
TrainingSampleSource::MakeTrainingSample(size_t index, int64_t epoch) const
{
  std::mt19937_64 generator(SampleSeed(m_Options.seed, static_cast<uint64_t>(epoch), index, 0));
  return MakeSample(index, generator, m_Options.augment, true);
}

TrainingSampleSource::Sample
TrainingSampleSource::MakeValidationSample(size_t index, uint64_t clickIndex) const
{
  std::mt19937_64 generator(SampleSeed(m_Options.seed, clickIndex, index, 1));
  return MakeSample(index, generator, false, false);
}

std::pair<Point<double, 3>, SamplingCube>
TrainingSampleSource::Stage1Window(const Instance &  instance,
                                   std::mt19937_64 & generator,
                                   bool              augment,
                                   bool              training) const
{
  const CTImageType * ct = m_Images[instance.caseIndex];
  auto                sampler = ClickSampler<MaskImageType>::New();
  sampler->SetMask(instance.mask);
  sampler->SetStrategy(ParseStrategy(m_Options.clickStrategy));
  sampler->SetSeed(generator());
  const auto   click = sampler->Sample();
  SamplingCube cube =
    ClickRegionCube(click, m_Preprocessing->patchSize, m_Preprocessing->targetSpacing, ct->GetDirection());
  if (m_Options.windowOffset > 0.0)
  {
    // As at inference: off-centre (growth windows; training samples only, validation is the first window) and
    // clamped into the CT. Nothing is drawn at offset 0, so earlier recipes keep their samples.
    Vector<double, 3> offset;
    for (unsigned int d = 0; d < 3; ++d)
    {
      offset[d] = training ? m_Options.windowOffset * SignedUniform(generator) : 0.0;
    }
    cube = PlaceStage1Window(cube, offset, ct, m_Options.stage1WindowsInsideImage);
  }
  if (augment)
  {
    AugmentCube(cube, generator, m_Options);
  }
  return { click, cube };
}

TrainingSampleSource::Sample
TrainingSampleSource::MakeSample(size_t index, std::mt19937_64 & generator, bool augment, bool training) const
{
  const Instance &    instance = m_Instances.at(index);
  const CTImageType * ct = m_Images[instance.caseIndex];
  Sample              sample;
  if (m_Options.stage == 1)
  {
    const auto window = Stage1Window(instance, generator, augment, training);
    const auto grid = MakeCubeGrid(window.second);
    const auto cut =
      augment ? DrawFieldOfViewCut(ct, instance.mask, generator, m_Options.fieldOfViewCutProbability) : std::nullopt;
    std::vector<torch::Tensor> channels{ PreprocessCT(ct, grid, *m_Preprocessing, cut ? &*cut : nullptr),
                                         ClickMap(grid, window.first, m_Preprocessing->clickEncoding) };
    if (m_Options.negativeClickChannel)
    {
      channels.push_back(ClickMap(grid, std::vector<Point<double, 3>>{}, m_Preprocessing->clickEncoding));
    }
    sample.input = torch::cat(channels, 1);
    sample.clicks = { window.first };
    sample.target = ResampleMask(instance.mask, grid);
    for (unsigned int d = 0; d < 3; ++d)
    {
      sample.spacing[d] = grid->GetSpacing()[d];
    }
  }
  else
  {
    SamplingCube cube = Stage2Cube(instance);
    if (augment)
    {
      for (unsigned int d = 0; d < 3; ++d)
      {
        const double shift = SignedUniform(generator) * m_Options.cropCenterJitter * cube.side[d];
        for (unsigned int r = 0; r < 3; ++r)
        {
          cube.center[r] += cube.axes[r][d] * shift;
        }
      }
      const double resize = 1.0 + SignedUniform(generator) * m_Options.cropSizeJitter;
      for (unsigned int d = 0; d < 3; ++d)
      {
        cube.side[d] *= resize;
      }
      AugmentCube(cube, generator, m_Options);
    }
    const auto grid = MakeCubeGrid(cube);
    const auto cut =
      augment ? DrawFieldOfViewCut(ct, instance.mask, generator, m_Options.fieldOfViewCutProbability) : std::nullopt;
    sample.input = PreprocessCT(ct, grid, *m_Preprocessing, cut ? &*cut : nullptr);
    sample.target = ResampleMask(instance.mask, grid);
    for (unsigned int d = 0; d < 3; ++d)
    {
      sample.spacing[d] = grid->GetSpacing()[d];
    }
  }
  if (augment)
  {
    // Intensity augmentation on the CT channel only (the click map is geometry, not intensity).
    const double  scale = 1.0 + m_Options.intensityScale * SignedUniform(generator);
    const double  shift = m_Options.intensityShift * SignedUniform(generator);
    auto          noiseGenerator = at::detail::createCPUGenerator(generator());
    torch::Tensor ctChannel = sample.input.narrow(1, 0, 1);
    torch::Tensor noise = at::randn(ctChannel.sizes(), noiseGenerator, torch::kFloat32);
    ctChannel.mul_(scale).add_(shift).add_(noise * m_Options.noiseStandardDeviation);
  }
  sample.input = sample.input.squeeze(0);
  sample.target = sample.target.squeeze(0);
  return sample;
}

int64_t
TrainingSampleSource::CorrectionRounds(size_t index, int64_t epoch) const
{
  if (m_Options.stage != 1 || m_Options.correctionRounds <= 0)
  {
    return 0;
  }
  std::mt19937_64 generator(SampleSeed(m_Options.seed, static_cast<uint64_t>(epoch), index, 3));
  const double    uniform = 0.5 * (SignedUniform(generator) + 1.0);
  return uniform < m_Options.correctionProbability ? m_Options.correctionRounds : 0;
}

torch::Tensor
TrainingSampleSource::SimulateCorrections(size_t                         index,
                                          int64_t                        epoch,
                                          const torch::Tensor &          input,
                                          const torch::Tensor &          target,
                                          const Segmenter &              segment,
                                          std::vector<CorrectionClick> * clicks) const
{
  const int64_t rounds = CorrectionRounds(index, epoch);
  if (rounds == 0)
  {
    return input;
  }
  // The sample's window again: the first draws of its generator (MakeTrainingSample), so the grid is the sample's.
  std::mt19937_64            generator(SampleSeed(m_Options.seed, static_cast<uint64_t>(epoch), index, 0));
  const auto                 window = Stage1Window(m_Instances.at(index), generator, m_Options.augment, true);
  const auto                 grid = MakeCubeGrid(window.second);
  const auto &               size = grid->GetLargestPossibleRegion().GetSize();
  const std::vector<int64_t> shape{ static_cast<int64_t>(size[2]), static_cast<int64_t>(size[1]),
                                    static_cast<int64_t>(size[0]) };
  const int64_t              channels = m_Options.negativeClickChannel ? 3 : 2;
  if (input.dim() != 4 || input.size(0) != channels || input.sizes().slice(1) != at::IntArrayRef(shape) ||
      target.numel() != shape[0] * shape[1] * shape[2])
  {
    itkGenericExceptionMacro(<< "DivAttention: SimulateCorrections: the input " << input.sizes() << " and target "
                             << target.sizes() << " are not training sample " << index << "'s of epoch " << epoch);
  }
  const auto toMask = [&](const torch::Tensor & values)
  { return TensorToImage<MaskImageType>((values.cpu() != 0).to(torch::kUInt8).reshape(shape).contiguous(), grid); };
  const auto                    reference = toMask(target);
  std::vector<Point<double, 3>> positive{ window.first };
  std::vector<Point<double, 3>> negative;
  torch::Tensor                 current = input.clone();
  for (int64_t round = 0; round < rounds; ++round)
  {
    const auto predicted = toMask(segment(current));
    const auto click = NextCorrectionClick(predicted.GetPointer(), reference.GetPointer());
    if (!click || (!click->positive && !m_Options.negativeClickChannel))
    {
      break; // nothing to correct, or a false positive the network has no channel for
    }
    (click->positive ? positive : negative).push_back(click->point);
    if (clicks != nullptr)
    {
      clicks->push_back(*click);
    }
    const auto   encoding = m_Preprocessing->clickEncoding;
    const auto & changed = click->positive ? positive : negative;
    current.narrow(0, click->positive ? 1 : 2, 1)
      .copy_(ClickMap(grid, changed, encoding).squeeze(0).to(current.device()));
  }
  return current;
}
diva::SampleProvider
MakeSampleProvider(const TrainingSampleSource & training, const TrainingSampleSource & validation)
{
  diva::SampleProvider provider;
  provider.trainingCount = training.NumberOfInstances();
  provider.validationCount = validation.NumberOfInstances();
  const auto * trainingSource = &training;
  const auto * validationSource = &validation;
  provider.training = [trainingSource](size_t index, int64_t epoch)
  {
    auto sample = trainingSource->MakeTrainingSample(index, epoch);
    return std::make_pair(sample.input, sample.target);
  };
  provider.validation = [validationSource](size_t index)
  {
    auto sample = validationSource->MakeValidationSample(index);
    return std::make_pair(sample.input, sample.target);
  };
  if (training.CorrectionRoundsEnabled())
  {
    provider.correction = [trainingSource](size_t index, int64_t epoch, const torch::Tensor & input,
                                           const torch::Tensor &                   target,
                                           const diva::SampleProvider::Segmenter & segment)
    { return trainingSource->SimulateCorrections(index, epoch, input, target, segment); };
  }
  return provider;
}

std::vector<TrainingSampleSource::Problem>
TrainingData::AllProblems() const
{
  std::vector<TrainingSampleSource::Problem> all;
  for (const auto * source : { training.get(), validation.get() })
  {
    if (source != nullptr)
    {
      all.insert(all.end(), source->Problems().begin(), source->Problems().end());
    }
  }
  return all;
}

TrainingData
PrepareTrainingData(const diva::TrainingOptions & options)
{
  options.Validate();
  TrainingData data;
  data.listing =
    SegmentationDatasetReader::Read(options.dataset, SegmentationDatasetReader::ParseLayout(options.layout));
  if (options.strict && !data.listing.problems.empty())
  {
    itkGenericExceptionMacro(<< "DivAttention: case \"" << data.listing.problems.front().id
                             << "\": " << data.listing.problems.front().reason << " (--strict)");
  }
  std::vector<SegmentationDatasetReader::Case> cases = data.listing.cases;
  if (options.maximumCases > 0 && cases.size() > options.maximumCases)
  {
    cases.resize(options.maximumCases);
  }
  if (!options.splitFile.empty())
  {
    data.split = DatasetSplit::Load(options.splitFile);
  }
  else
  {
    std::vector<std::string> ids;
    for (const auto & entry : cases)
    {
      ids.push_back(entry.id);
    }
    data.split = DatasetSplit::Make(ids, DatasetSplit::ParseScheme(options.splitScheme), options.seed);
  }
  if (!options.outputDirectory.empty())
  {
    data.split.Save(options.outputDirectory + "/split.json");
  }
  auto pick = [&cases](const std::vector<std::string> & ids)
  {
    std::vector<SegmentationDatasetReader::Case> picked;
    for (const auto & entry : cases)
    {
      if (std::find(ids.begin(), ids.end(), entry.id) != ids.end())
      {
        picked.push_back(entry);
      }
    }
    return picked;
  };
  std::vector<TrainingSampleSource::Problem> listingProblems;
  for (const auto & problem : data.listing.problems)
  {
    listingProblems.push_back({ problem.id, problem.reason });
  }
  // Listing problems are reported once, with the training source.
  data.training = std::make_unique<TrainingSampleSource>(options, pick(data.split.train), listingProblems);
  data.validation = std::make_unique<TrainingSampleSource>(options, pick(data.split.validation));
  diva::Preprocessing preprocessing = data.training->GetPreprocessing();
  const auto          statistics = data.training->ForegroundStatistics();
  preprocessing.normalization = "zscore";
  preprocessing.mean = statistics.first;
  preprocessing.standardDeviation = statistics.second;
  preprocessing.clickEncoding = options.clickEncoding;
  preprocessing.cropMargin = options.cropMargin;
  preprocessing.cropMinimumSide = options.cropMinimumSide;
  preprocessing.windowPlacement = options.stage1WindowsInsideImage ? "inside-image" : "centred-on-click";
  data.training->SetPreprocessing(preprocessing);
  data.validation->SetPreprocessing(preprocessing);
  return data;
}
} // namespace itk
