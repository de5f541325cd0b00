// The geometry filters on a 512 x 512 x 300 CT grid (0.78 x 0.78 x 1 mm, oblique): click distance map (against a
// distance transform of a one-voxel seed), PCA crop of a 150 mm object to 96^3, and paste back of 96^3 to the grid.
// Every iteration builds a fresh filter, as a pipeline does per case, so output allocation is part of the figure.
#include "itkClickDistanceTransformFilter.h"
#include "itkDivAttentionRuntime.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkLinearInterpolateImageFunction.h"
#include "itkPCACropResampleFilter.h"
#include "itkPasteBackFilter.h"
#include "itkSignedMaurerDistanceMapImageFilter.h"

#include <benchmark/benchmark.h>

#include <cmath>

namespace
{
using CTImageType = itk::Image<short, 3>;
using MaskImageType = itk::Image<unsigned char, 3>;
using FloatImageType = itk::Image<float, 3>;

unsigned int
Threads(const benchmark::State & state)
{
  return static_cast<unsigned int>(state.range(0));
}

template<typename TFilter>
void
UseThreads(benchmark::State & state, TFilter * filter)
{
  itk::DivAttentionRuntime::SetThreadBudget(static_cast<int>(Threads(state)));
  if (filter != nullptr)
  {
    filter->SetNumberOfWorkUnits(Threads(state));
    filter->GetMultiThreader()->SetMaximumNumberOfThreads(Threads(state));
  }
}

// The CT grid: 512 x 512 x 300 at 0.78 x 0.78 x 1 mm, tilted 10 degrees about x (a gantry tilt), non-zero origin.
template<typename TImage>
typename TImage::Pointer
MakeGrid(bool allocate)
{
  auto image = TImage::New();
  image->SetRegions(typename TImage::SizeType{ { 512, 512, 300 } });
  const double spacing[3] = { 0.78, 0.78, 1.0 };
  const double origin[3] = { -199.6, -180.3, -420.0 };
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  typename TImage::DirectionType direction;
  direction.SetIdentity();
  const double tilt = 10.0 * M_PI / 180.0;
  direction[1][1] = std::cos(tilt);
  direction[1][2] = -std::sin(tilt);
  direction[2][1] = std::sin(tilt);
  direction[2][2] = std::cos(tilt);
  image->SetDirection(direction);
  if (allocate)
  {
    image->Allocate();
  }
  return image;
}

itk::Point<double, 3>
GridCentre(const itk::ImageBase<3> * image)
{
  itk::ContinuousIndex<double, 3> c;
  for (unsigned int d = 0; d < 3; ++d)
  {
    c[d] = 0.5 * (static_cast<double>(image->GetLargestPossibleRegion().GetSize(d)) - 1.0);
  }
  itk::Point<double, 3> p;
  image->TransformContinuousIndexToPhysicalPoint(c, p);
  return p;
}

void
BM_ClickDistanceMap(benchmark::State & state)
{
  UseThreads(state, static_cast<itk::ProcessObject *>(nullptr));
  const auto reference = MakeGrid<CTImageType>(false); // geometry only: never allocated
  const auto click = GridCentre(reference);
  for (auto _ : state)
  {
    auto filter = itk::ClickDistanceTransformFilter<CTImageType, FloatImageType>::New();
    UseThreads(state, filter.GetPointer());
    filter->SetReferenceImage(reference);
    filter->AddClick(click);
    filter->Update();
    benchmark::DoNotOptimize(filter->GetOutput()->GetBufferPointer());
  }
  state.counters["Mvoxel/s"] = benchmark::Counter(
    512.0 * 512.0 * 300.0 * 1e-6 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// The same map from a one-voxel seed image by ITK's exact distance transform (Maurer), for comparison.
void
BM_MaurerDistanceMapOfSeed(benchmark::State & state)
{
  UseThreads(state, static_cast<itk::ProcessObject *>(nullptr));
  auto seed = MakeGrid<MaskImageType>(true);
  seed->FillBuffer(0);
  seed->SetPixel({ { 256, 256, 150 } }, 1);
  for (auto _ : state)
  {
    auto filter = itk::SignedMaurerDistanceMapImageFilter<MaskImageType, FloatImageType>::New();
    UseThreads(state, filter.GetPointer());
    filter->SetInput(seed);
    filter->SetUseImageSpacing(true);
    filter->SetSquaredDistance(false);
    filter->SetInsideIsPositive(false);
    filter->Update();
    benchmark::DoNotOptimize(filter->GetOutput()->GetBufferPointer());
  }
}

// Mask of a solid ellipsoid with semi-axes 75 x 45 x 35 mm (150 mm longest axis), rotated, at the grid's centre.
MaskImageType::Pointer
MakeObjectMask()
{
  auto mask = MakeGrid<MaskImageType>(true);
  mask->FillBuffer(0);
  const auto   centre = GridCentre(mask);
  const double semi[3] = { 75.0, 45.0, 35.0 };
  const double a = 0.5, b = 0.3; // rotation about z then y
  const double axes[3][3] = { { std::cos(a) * std::cos(b), -std::sin(a), std::cos(a) * std::sin(b) },
                              { std::sin(a) * std::cos(b), std::cos(a), std::sin(a) * std::sin(b) },
                              { -std::sin(b), 0.0, std::cos(b) } };
  itk::ImageRegionIteratorWithIndex<MaskImageType> it(mask, mask->GetBufferedRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    itk::Point<double, 3> p;
    mask->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    double sum = 0.0;
    for (unsigned int k = 0; k < 3; ++k)
    {
      double along = 0.0;
      for (unsigned int r = 0; r < 3; ++r)
      {
        along += axes[r][k] * (p[r] - centre[r]);
      }
      sum += (along / semi[k]) * (along / semi[k]);
    }
    if (sum <= 1.0)
    {
      it.Set(1);
    }
  }
  return mask;
}

void
BM_PCACrop96(benchmark::State & state)
{
  UseThreads(state, static_cast<itk::ProcessObject *>(nullptr));
  static const auto mask = MakeObjectMask();
  static const auto ct = []
  {
    auto image = MakeGrid<CTImageType>(true);
    image->FillBuffer(40);
    return image;
  }();
  for (auto _ : state)
  {
    auto filter = itk::PCACropResampleFilter<CTImageType, MaskImageType, FloatImageType>::New();
    UseThreads(state, filter.GetPointer());
    filter->SetInput(ct);
    filter->SetMaskImage(mask);
    filter->Update();
    benchmark::DoNotOptimize(filter->GetOutput()->GetBufferPointer());
  }
}

// ITK's linear interpolator under another type name: PasteBackFilter then evaluates it through the interpolator's
// virtual call per voxel (its generic path), the baseline of the inline interpolation it uses for ITK's own.
class GenericLinearInterpolator : public itk::LinearInterpolateImageFunction<FloatImageType, double>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(GenericLinearInterpolator);
  using Self = GenericLinearInterpolator;
  using Superclass = itk::LinearInterpolateImageFunction<FloatImageType, double>;
  using Pointer = itk::SmartPointer<Self>;
  itkNewMacro(Self);

protected:
  GenericLinearInterpolator() = default;
  ~GenericLinearInterpolator() override = default;
};

template<typename TOutputImage>
void
PasteBack96(benchmark::State & state, itk::PasteBackFilterEnums::Output mode, bool generic = false)
{
  UseThreads(state, static_cast<itk::ProcessObject *>(nullptr));
  const auto reference = MakeGrid<TOutputImage>(false); // geometry only
  // A 96^3 probability patch over a 160 mm cube at the grid's centre (the crop of a 150 mm object would be 225 mm;
  // 160 mm is a typical organ crop), holding a sphere.
  auto patch = FloatImageType::New();
  patch->SetRegions(FloatImageType::SizeType{ { 96, 96, 96 } });
  patch->SetSpacing(160.0 / 96.0);
  auto origin = GridCentre(reference);
  for (unsigned int d = 0; d < 3; ++d)
  {
    origin[d] -= 80.0 - 0.5 * 160.0 / 96.0;
  }
  patch->SetOrigin(origin);
  patch->Allocate();
  itk::ImageRegionIteratorWithIndex<FloatImageType> it(patch, patch->GetBufferedRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    double r2 = 0.0;
    for (unsigned int d = 0; d < 3; ++d)
    {
      r2 += (it.GetIndex()[d] - 47.5) * (it.GetIndex()[d] - 47.5);
    }
    it.Set(r2 < 30.0 * 30.0 ? 1.0f : 0.0f);
  }
  for (auto _ : state)
  {
    auto filter = itk::PasteBackFilter<FloatImageType, TOutputImage, TOutputImage, TOutputImage>::New();
    UseThreads(state, filter.GetPointer());
    filter->SetInput(patch);
    filter->SetReferenceImage(reference);
    filter->SetOutputMode(mode);
    if (generic)
    {
      filter->SetInterpolator(GenericLinearInterpolator::New());
    }
    filter->Update();
    benchmark::DoNotOptimize(filter->GetOutput()->GetBufferPointer());
  }
}

void
BM_PasteBack96ToLabel(benchmark::State & state)
{
  PasteBack96<MaskImageType>(state, itk::PasteBackFilterEnums::Output::Label);
}

void
BM_PasteBack96ToLabelGenericInterpolator(benchmark::State & state)
{
  PasteBack96<MaskImageType>(state, itk::PasteBackFilterEnums::Output::Label, true);
}

void
BM_PasteBack96ToProbability(benchmark::State & state)
{
  PasteBack96<FloatImageType>(state, itk::PasteBackFilterEnums::Output::Probability);
}
} // namespace

BENCHMARK(BM_ClickDistanceMap)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_MaurerDistanceMapOfSeed)
  ->Arg(1)
  ->Arg(2)
  ->ArgName("threads")
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime()
  ->Iterations(2);
BENCHMARK(BM_PCACrop96)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PasteBack96ToLabel)->Arg(1)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PasteBack96ToLabelGenericInterpolator)
  ->Arg(1)
  ->Arg(2)
  ->ArgName("threads")
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime();
BENCHMARK(BM_PasteBack96ToProbability)
  ->Arg(1)
  ->Arg(2)
  ->ArgName("threads")
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime();
