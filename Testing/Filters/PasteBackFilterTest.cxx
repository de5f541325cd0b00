// PasteBackFilter: values on the reference grid, outside values and fallback, label mode, geometry-only reference,
// streaming and threading, errors and the basic object API.
#include "DivAttentionTestImages.h"
#include "FilterTestUtilities.h"
#include "itkCastImageFilter.h"
#include "itkLinearInterpolateImageFunction.h"
#include "itkNearestNeighborInterpolateImageFunction.h"
#include "itkPasteBackFilter.h"
#include "itkTestingMacros.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace
{
using ProbabilityImageType = itk::Image<float, 3>;
using LabelImageType = itk::Image<unsigned char, 3>;
using FilterType = itk::PasteBackFilter<ProbabilityImageType, ProbabilityImageType>;
using LabelFilterType = itk::PasteBackFilter<ProbabilityImageType, LabelImageType, LabelImageType, LabelImageType>;
using PointType = ProbabilityImageType::PointType;
using OutputEnum = FilterType::OutputEnum;

// The patch holds an affine function of the physical point: linear interpolation reproduces it exactly, so the output
// shows whether each voxel sampled the patch at its own physical centre.
// It is 0.5 at the centre of the tests' 70 x 60 x 24 reference, where the patch is centred, so that a 0.5 threshold
// splits the patch.
double
Affine(const PointType & p)
{
  static const PointType centre = DivAttentionTest::PhysicalCentre(
    DivAttentionTest::MakeObliqueImage<ProbabilityImageType>({ { 70, 60, 24 } }).GetPointer());
  return 0.5 + 0.01 * (p[0] - centre[0]) - 0.004 * (p[1] - centre[1]) + 0.006 * (p[2] - centre[2]);
}

// The patch: 30 x 26 x 22 voxels of 1.3 x 1.1 x 1.6 mm, rotated differently from the reference, centred in it.
ProbabilityImageType::Pointer
MakePatch(const ProbabilityImageType * reference)
{
  auto patch = ProbabilityImageType::New();
  patch->SetRegions(ProbabilityImageType::SizeType{ { 30, 26, 22 } });
  const double spacing[3] = { 1.3, 1.1, 1.6 };
  patch->SetSpacing(spacing);
  patch->SetDirection(DivAttentionTest::Rotation(0.4, -0.3, 0.9));
  patch->SetOrigin(reference->GetOrigin());
  patch->Allocate();
  // Move it so that its centre is the reference's centre.
  const auto offset =
    DivAttentionTest::PhysicalCentre(reference) - DivAttentionTest::PhysicalCentre(patch.GetPointer());
  patch->SetOrigin(patch->GetOrigin() + offset);
  itk::ImageRegionIteratorWithIndex<ProbabilityImageType> it(patch, patch->GetBufferedRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    PointType p;
    patch->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    it.Set(static_cast<float>(Affine(p)));
  }
  return patch;
}

int
ExerciseObject()
{
  auto filter = FilterType::New();
  ITK_EXERCISE_BASIC_OBJECT_METHODS(filter, PasteBackFilter, ImageToImageFilter);
  filter->SetOutputMode(OutputEnum::Label);
  ITK_TEST_SET_GET_VALUE(OutputEnum::Label, filter->GetOutputMode());
  filter->SetThreshold(0.25);
  ITK_TEST_SET_GET_VALUE(0.25, filter->GetThreshold());
  auto interpolator = itk::NearestNeighborInterpolateImageFunction<ProbabilityImageType, double>::New();
  filter->SetInterpolator(interpolator);
  ITK_TEST_SET_GET_VALUE(interpolator.GetPointer(), filter->GetInterpolator());
  auto reference = ProbabilityImageType::New();
  filter->SetReferenceImage(reference);
  ITK_TEST_SET_GET_VALUE(reference.GetPointer(), filter->GetReferenceImage());
  ITK_TEST_SET_GET_NULL_VALUE(filter->GetFallbackImage());
  return EXIT_SUCCESS;
}

// Where in the patch the output voxel `index` of `reference` lies: 0 well inside (>= 0.01 voxel from the centres'
// hull), 1 outside the half-voxel border, 2 in between (not checked).
int
Where(const ProbabilityImageType * patch, const PointType & p)
{
  itk::ContinuousIndex<double, 3> c;
  if (!patch->TransformPhysicalPointToContinuousIndex(p, c))
  {
    return 1;
  }
  for (unsigned int d = 0; d < 3; ++d)
  {
    if (c[d] < 0.01 || c[d] > static_cast<double>(patch->GetLargestPossibleRegion().GetSize(d)) - 1.01)
    {
      return 2;
    }
  }
  return 0;
}

// ITK's linear interpolator under another type: PasteBackFilter evaluates it through its generic path (one virtual
// call per voxel), the reference for the filter's inline interpolation of ITK's own linear interpolator.
class GenericLinearInterpolator : public itk::LinearInterpolateImageFunction<itk::Image<float, 3>, double>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(GenericLinearInterpolator);
  using Self = GenericLinearInterpolator;
  using Superclass = itk::LinearInterpolateImageFunction<itk::Image<float, 3>, double>;
  using Pointer = itk::SmartPointer<Self>;
  using ConstPointer = itk::SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(GenericLinearInterpolator, LinearInterpolateImageFunction);

protected:
  GenericLinearInterpolator() = default;
  ~GenericLinearInterpolator() override = default;
};
} // namespace

TEST(PasteBackFilter, BasicObjectMethods)
{
  EXPECT_EQ(ExerciseObject(), EXIT_SUCCESS);
}

TEST(PasteBackFilter, ProbabilityOnTheReferenceGridWithFallbackOutside)
{
  const auto reference = DivAttentionTest::MakeObliqueImage<ProbabilityImageType>({ { 70, 60, 24 } });
  const auto patch = MakePatch(reference);
  auto       fallback = DivAttentionTest::MakeObliqueImage<ProbabilityImageType>({ { 70, 60, 24 } });
  DivAttentionTest::FillWithIndexCode(fallback.GetPointer());

  for (const bool withFallback : { false, true })
  {
    auto filter = FilterType::New();
    filter->SetInput(patch);
    filter->SetReferenceImage(reference);
    if (withFallback)
    {
      filter->SetFallbackImage(fallback);
    }
    filter->Update();
    const auto * output = filter->GetOutput();
    EXPECT_EQ(output->GetLargestPossibleRegion(), reference->GetLargestPossibleRegion());
    EXPECT_EQ(output->GetOrigin(), reference->GetOrigin());
    EXPECT_EQ(output->GetSpacing(), reference->GetSpacing());
    EXPECT_EQ(output->GetDirection(), reference->GetDirection());
    std::size_t                                                  inside = 0, outside = 0;
    itk::ImageRegionConstIteratorWithIndex<ProbabilityImageType> it(output, output->GetBufferedRegion());
    for (; !it.IsAtEnd(); ++it)
    {
      PointType p;
      output->TransformIndexToPhysicalPoint(it.GetIndex(), p);
      switch (Where(patch, p))
      {
        case 0:
          // Linear interpolation of an affine function is exact; float32 rounding of values < 5 is below 1e-6.
          ASSERT_NEAR(it.Get(), Affine(p), 1e-4) << it.GetIndex();
          ++inside;
          break;
        case 1:
          ASSERT_EQ(it.Get(), withFallback ? fallback->GetPixel(it.GetIndex()) : 0.0f) << it.GetIndex();
          ++outside;
          break;
        default:
          break;
      }
    }
    EXPECT_GT(inside, 5000u);
    EXPECT_GT(outside, 5000u);
  }
}

TEST(PasteBackFilter, LabelModeThresholds)
{
  const auto reference = DivAttentionTest::MakeObliqueImage<LabelImageType>({ { 70, 60, 24 } });
  const auto probabilityReference = DivAttentionTest::MakeObliqueImage<ProbabilityImageType>({ { 70, 60, 24 } });
  const auto patch = MakePatch(probabilityReference);
  auto       fallback = DivAttentionTest::MakeObliqueImage<LabelImageType>({ { 70, 60, 24 } });
  fallback->FillBuffer(0);
  fallback->SetPixel({ { 1, 1, 1 } }, 1);
  auto filter = LabelFilterType::New();
  filter->SetInput(patch);
  filter->SetReferenceImage(reference);
  filter->SetFallbackImage(fallback);
  filter->SetOutputMode(LabelFilterType::OutputEnum::Label);
  filter->Update();
  const auto *                                           output = filter->GetOutput();
  std::size_t                                            ones = 0, zeros = 0;
  itk::ImageRegionConstIteratorWithIndex<LabelImageType> it(output, output->GetBufferedRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    PointType p;
    output->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    if (Where(patch, p) == 0 && std::abs(Affine(p) - 0.5) > 1e-4)
    {
      ASSERT_EQ(it.Get(), Affine(p) >= 0.5 ? 1 : 0) << it.GetIndex();
      (it.Get() ? ones : zeros)++;
    }
  }
  EXPECT_GT(ones, 1000u);
  EXPECT_GT(zeros, 1000u);
  EXPECT_EQ(output->GetPixel({ { 1, 1, 1 } }), 1); // the fallback's label, outside the patch
  EXPECT_EQ(output->GetPixel({ { 2, 1, 1 } }), 0);
}

TEST(PasteBackFilter, RequestsNoPixelOfTheReferenceAndStreams)
{
  const auto reference = DivAttentionTest::MakeObliqueImage<ProbabilityImageType>({ { 70, 60, 24 } });
  auto       fallback = DivAttentionTest::MakeObliqueImage<ProbabilityImageType>({ { 70, 60, 24 } });
  DivAttentionTest::FillWithIndexCode(fallback.GetPointer());
  auto castReference = itk::CastImageFilter<ProbabilityImageType, ProbabilityImageType>::New();
  castReference->SetInput(reference);
  auto filter = FilterType::New();
  filter->SetInput(MakePatch(reference));
  filter->SetReferenceImage(castReference->GetOutput());
  filter->SetFallbackImage(fallback);

  const auto whole = DivAttentionTest::Stream<ProbabilityImageType>(filter->GetOutput(), 1);
  EXPECT_EQ(castReference->GetOutput()->GetBufferedRegion().GetNumberOfPixels(), 0u);
  const auto pieces = DivAttentionTest::Stream<ProbabilityImageType>(filter->GetOutput(), 7);
  EXPECT_TRUE(DivAttentionTest::ImagesIdentical<ProbabilityImageType>(whole, pieces));

  filter->SetNumberOfWorkUnits(1);
  filter->UpdateLargestPossibleRegion();
  ProbabilityImageType::Pointer one = filter->GetOutput();
  one->DisconnectPipeline();
  filter->SetNumberOfWorkUnits(2);
  filter->UpdateLargestPossibleRegion();
  EXPECT_TRUE(DivAttentionTest::ImagesIdentical<ProbabilityImageType>(one, filter->GetOutput()));
  EXPECT_TRUE(DivAttentionTest::ImagesIdentical<ProbabilityImageType>(whole, filter->GetOutput()));

  auto sub = FilterType::New();
  sub->SetInput(MakePatch(reference));
  sub->SetReferenceImage(castReference->GetOutput());
  sub->SetFallbackImage(fallback);
  const ProbabilityImageType::RegionType region({ { 20, 25, 5 } }, { { 30, 8, 10 } });
  sub->GetOutput()->SetRequestedRegion(region);
  sub->Update();
  ASSERT_EQ(sub->GetOutput()->GetBufferedRegion(), region);
  itk::ImageRegionConstIteratorWithIndex<ProbabilityImageType> it(sub->GetOutput(), region);
  for (; !it.IsAtEnd(); ++it)
  {
    ASSERT_EQ(it.Get(), whole->GetPixel(it.GetIndex())) << it.GetIndex();
  }
}

TEST(PasteBackFilter, InlineLinearInterpolationEqualsITKsBitForBit)
{
  // Random values (an affine patch would hide a changed order of operations), a patch whose buffer does not start at
  // index 0, rotated and larger than part of the reference, so that rows cross its clamped start and end borders.
  using DoubleImageType = itk::Image<double, 3>;
  const auto reference = DivAttentionTest::MakeObliqueImage<ProbabilityImageType>({ { 70, 60, 24 } });
  auto       patch = MakePatch(reference);
  ProbabilityImageType::RegionType region({ { 3, -2, 5 } }, patch->GetLargestPossibleRegion().GetSize());
  patch->SetRegions(region);
  patch->Allocate();
  std::mt19937                          random(7);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (itk::ImageRegionIterator<ProbabilityImageType> it(patch, region); !it.IsAtEnd(); ++it)
  {
    it.Set(uniform(random));
  }
  patch->SetSpacing(patch->GetSpacing() * 1.7); // reaches past the reference on some sides

  const auto paste = [&](bool inlinePath)
  {
    auto filter = itk::PasteBackFilter<ProbabilityImageType, DoubleImageType, ProbabilityImageType>::New();
    filter->SetInput(patch);
    filter->SetReferenceImage(reference);
    if (!inlinePath)
    {
      filter->SetInterpolator(GenericLinearInterpolator::New());
    }
    filter->Update();
    return DoubleImageType::Pointer(filter->GetOutput());
  };
  const auto                                     inlined = paste(true);
  const auto                                     generic = paste(false);
  std::size_t                                    inside = 0, differing = 0;
  itk::ImageRegionConstIterator<DoubleImageType> a(inlined, inlined->GetBufferedRegion());
  itk::ImageRegionConstIterator<DoubleImageType> b(generic, generic->GetBufferedRegion());
  for (; !a.IsAtEnd(); ++a, ++b)
  {
    inside += a.Get() != 0.0 ? 1 : 0;
    differing += a.Get() != b.Get() ? 1 : 0; // exact: the inline path promises ITK's values bit for bit
  }
  EXPECT_EQ(differing, 0u);
  EXPECT_GT(inside, 10000u) << "the patch must cover a good part of the reference for the comparison to mean much";
  EXPECT_LT(inside, inlined->GetBufferedRegion().GetNumberOfPixels()) << "and leave some of it outside";
}

TEST(PasteBackFilter, BadInputsGiveTheDocumentedErrors)
{
  const auto reference = DivAttentionTest::MakeObliqueImage<ProbabilityImageType>({ { 20, 20, 10 } });
  const auto patch = MakePatch(reference);
  const auto expectError = [](itk::ProcessObject * filter, const char * fragment)
  {
    try
    {
      filter->Update();
      ADD_FAILURE() << "no exception; expected one mentioning " << fragment;
    }
    catch (const itk::ExceptionObject & error)
    {
      EXPECT_NE(std::string(error.GetDescription()).find(fragment), std::string::npos) << error.GetDescription();
    }
  };
  // A fallback on another grid.
  auto shifted = DivAttentionTest::MakeObliqueImage<ProbabilityImageType>({ { 20, 20, 10 } });
  auto origin = shifted->GetOrigin();
  origin[0] += 0.5;
  shifted->SetOrigin(origin);
  auto filter = FilterType::New();
  filter->SetInput(patch);
  filter->SetReferenceImage(reference);
  filter->SetFallbackImage(shifted);
  expectError(filter, "\"FallbackImage\": must lie on the reference grid");
  // Probability into an integer image.
  auto label = LabelFilterType::New();
  label->SetInput(patch);
  label->SetReferenceImage(DivAttentionTest::MakeObliqueImage<LabelImageType>({ { 20, 20, 10 } }));
  expectError(label, "\"OutputMode\": Probability needs a floating-point output pixel type");
  // Missing reference.
  auto noReference = FilterType::New();
  noReference->SetInput(patch);
  expectError(noReference, "ReferenceImage");
}
