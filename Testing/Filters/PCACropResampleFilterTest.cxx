// PCACropResampleFilter: the PCA estimator on rotated ellipsoids, the output's physical geometry and content,
// options, streaming, requested regions, errors and the basic object API.
#include "DivAttentionTestImages.h"
#include "FilterTestUtilities.h"
#include "itkCastImageFilter.h"
#include "itkNearestNeighborInterpolateImageFunction.h"
#include "itkPCACropResampleFilter.h"
#include "itkTestingMacros.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace
{
using MaskImageType = itk::Image<unsigned char, 3>;
using CTImageType = itk::Image<float, 3>;
using FilterType = itk::PCACropResampleFilter<CTImageType, MaskImageType>;
using PointType = CTImageType::PointType;
using AxesEnum = FilterType::AxesEnum;

// A CT whose value is an affine function of the physical point: linear interpolation reproduces it exactly, so the
// output shows whether voxel (i, j, k) samples the physical point it claims to lie at.
double
AffineValue(const PointType & p)
{
  return 0.5 * p[0] - 0.25 * p[1] + 0.75 * p[2] + 3.0;
}

CTImageType::Pointer
MakeAffineCT(const CTImageType::SizeType & size)
{
  auto                                           ct = DivAttentionTest::MakeObliqueImage<CTImageType>(size);
  itk::ImageRegionIteratorWithIndex<CTImageType> it(ct, ct->GetBufferedRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    PointType p;
    ct->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    it.Set(static_cast<float>(AffineValue(p)));
  }
  return ct;
}

double
AngleDegrees(const itk::Matrix<double, 3, 3> & a,
             unsigned int                      columnA,
             const itk::Matrix<double, 3, 3> & b,
             unsigned int                      columnB)
{
  double dot = 0.0;
  for (unsigned int r = 0; r < 3; ++r)
  {
    dot += a[r][columnA] * b[r][columnB];
  }
  return std::acos(std::min(1.0, std::abs(dot))) * 180.0 / M_PI; // axes have no sign
}

int
ExerciseObject()
{
  auto filter = FilterType::New();
  ITK_EXERCISE_BASIC_OBJECT_METHODS(filter, PCACropResampleFilter, ImageToImageFilter);
  FilterType::SizeType size{ { 64, 48, 32 } };
  filter->SetOutputSize(size);
  ITK_TEST_SET_GET_VALUE(size, filter->GetOutputSize());
  filter->SetMaskThreshold(0.3);
  ITK_TEST_SET_GET_VALUE(0.3, filter->GetMaskThreshold());
  filter->SetMarginFactor(2.0);
  ITK_TEST_SET_GET_VALUE(2.0, filter->GetMarginFactor());
  filter->SetMinimumSideLength(30.0);
  ITK_TEST_SET_GET_VALUE(30.0, filter->GetMinimumSideLength());
  filter->SetAxes(AxesEnum::Principal);
  ITK_TEST_SET_GET_VALUE(AxesEnum::Principal, filter->GetAxes());
  filter->SetDefaultPixelValue(-5.0f);
  ITK_TEST_SET_GET_VALUE(-5.0f, filter->GetDefaultPixelValue());
  ITK_TEST_SET_GET_BOOLEAN(filter, UseFallback, true);
  PointType centre;
  centre.Fill(7.0);
  filter->SetFallbackCenter(centre);
  ITK_TEST_SET_GET_VALUE(centre, filter->GetFallbackCenter());
  filter->SetFallbackSideLength(40.0);
  ITK_TEST_SET_GET_VALUE(40.0, filter->GetFallbackSideLength());
  auto interpolator = itk::NearestNeighborInterpolateImageFunction<CTImageType, double>::New();
  filter->SetInterpolator(interpolator);
  ITK_TEST_SET_GET_VALUE(interpolator.GetPointer(), filter->GetInterpolator());
  return EXIT_SUCCESS;
}

struct Ellipsoid
{
  PointType                 centre;
  itk::Matrix<double, 3, 3> axes;
  itk::Vector<double, 3>    semiAxes;
};

// Ellipsoid with semi-axes 36, 22, 12 mm in a rotation drawn from `seed`, centred near the image's middle.
Ellipsoid
MakeEllipsoid(const MaskImageType * mask, unsigned int seed)
{
  std::mt19937 generator(seed);
  const auto   uniform = [&generator](double low, double high)
  { return low + (high - low) * static_cast<double>(generator()) / 4294967296.0; };
  Ellipsoid e;
  e.centre = DivAttentionTest::PhysicalCentre(mask);
  for (unsigned int d = 0; d < 3; ++d)
  {
    e.centre[d] += uniform(-3.0, 3.0);
  }
  e.axes = DivAttentionTest::Rotation(uniform(0.0, 2.0 * M_PI), uniform(-M_PI / 2, M_PI / 2), uniform(0.0, 2 * M_PI));
  e.semiAxes[0] = 36.0;
  e.semiAxes[1] = 22.0;
  e.semiAxes[2] = 12.0;
  return e;
}
} // namespace

TEST(PCACropResampleFilter, BasicObjectMethods)
{
  EXPECT_EQ(ExerciseObject(), EXIT_SUCCESS);
}

// For solid ellipsoids in random rotations on an oblique, anisotropic (0.7 x 0.9 x 2.5 mm) grid, the longest-axis
// estimate 2 sqrt(5 lambda_max) is within 5 % of the true 72 mm and every principal axis within 5 degrees.
TEST(PCACropResampleFilter, LongestAxisAndAxesOfRotatedEllipsoids)
{
  auto mask = DivAttentionTest::MakeObliqueImage<MaskImageType>({ { 150, 130, 50 } });
  auto ct = MakeAffineCT({ { 20, 20, 20 } });
  for (unsigned int seed = 1; seed <= 4; ++seed)
  {
    const auto e = MakeEllipsoid(mask, seed);
    DivAttentionTest::FillEllipsoid(mask.GetPointer(), e.centre, e.axes, e.semiAxes);
    mask->Modified();
    auto filter = FilterType::New();
    filter->SetInput(ct);
    filter->SetMaskImage(mask);
    filter->UpdateOutputInformation();
    SCOPED_TRACE(seed);
    EXPECT_NEAR(filter->GetLongestAxisLength(), 72.0, 0.05 * 72.0);
    for (unsigned int k = 0; k < 3; ++k)
    {
      EXPECT_LT(AngleDegrees(filter->GetPrincipalAxes(), k, e.axes, k), 5.0) << "axis " << k;
      // The variances follow a^2 / 5 for each semi-axis (same 5 % on the length, so ~10 % on the variance).
      EXPECT_NEAR(std::sqrt(5.0 * filter->GetPrincipalVariances()[k]), e.semiAxes[k], 0.05 * e.semiAxes[k]);
    }
    // The centroid of a symmetric object is its centre (within half the largest voxel step).
    EXPECT_LT(filter->GetCropCenter().EuclideanDistanceTo(e.centre), 1.25);
    EXPECT_NEAR(filter->GetCropSideLength(), 1.5 * filter->GetLongestAxisLength(), 1e-9);
    EXPECT_GT(vnl_determinant(vnl_matrix<double>(filter->GetPrincipalAxes().GetVnlMatrix().data_block(), 3, 3)), 0.0);
  }
}

TEST(PCACropResampleFilter, OutputVoxelsLieAtThePhysicalPointsTheyShow)
{
  auto       mask = DivAttentionTest::MakeObliqueImage<MaskImageType>({ { 150, 130, 50 } });
  const auto e = MakeEllipsoid(mask, 7);
  DivAttentionTest::FillEllipsoid(mask.GetPointer(), e.centre, e.axes, e.semiAxes);
  // The CT lies on the same oblique grid but is smaller than the cube, so some output falls outside it.
  auto ct = MakeAffineCT({ { 110, 100, 40 } });

  for (const auto axes : { AxesEnum::Image, AxesEnum::Principal })
  {
    auto filter = FilterType::New();
    filter->SetInput(ct);
    filter->SetMaskImage(mask);
    filter->SetAxes(axes);
    filter->SetOutputSize({ { 40, 36, 32 } });
    filter->Update();
    const CTImageType * output = filter->GetOutput();
    const double        side = filter->GetCropSideLength();
    EXPECT_EQ(output->GetLargestPossibleRegion().GetSize(), (CTImageType::SizeType{ { 40, 36, 32 } }));
    EXPECT_NEAR(output->GetSpacing()[0], side / 40.0, 1e-12);
    EXPECT_NEAR(output->GetSpacing()[2], side / 32.0, 1e-12);
    const auto expectedDirection = axes == AxesEnum::Image ? ct->GetDirection() : filter->GetPrincipalAxes();
    EXPECT_EQ(output->GetDirection(), expectedDirection);
    EXPECT_EQ(filter->GetCropAxes(), expectedDirection);
    // The cube is centred on the centroid.
    EXPECT_LT(DivAttentionTest::PhysicalCentre(output).EuclideanDistanceTo(filter->GetCropCenter()), 1e-9);

    std::size_t                                         inside = 0, outside = 0;
    itk::ImageRegionConstIteratorWithIndex<CTImageType> it(output, output->GetBufferedRegion());
    for (; !it.IsAtEnd(); ++it)
    {
      PointType p;
      output->TransformIndexToPhysicalPoint(it.GetIndex(), p);
      itk::ContinuousIndex<double, 3> c;
      const bool                      inCT = ct->TransformPhysicalPointToContinuousIndex(p, c);
      bool                            wellInside = inCT;
      for (unsigned int d = 0; d < 3; ++d)
      {
        const double last = static_cast<double>(ct->GetLargestPossibleRegion().GetSize(d)) - 1.0;
        wellInside = wellInside && c[d] > 0.01 && c[d] < last - 0.01;
      }
      if (wellInside)
      {
        // float32 values of magnitude < 400: rounding below 1e-4; 1e-3 leaves room for interpolation weights.
        ASSERT_NEAR(it.Get(), AffineValue(p), 1e-3) << it.GetIndex();
        ++inside;
      }
      else if (!inCT)
      {
        ASSERT_EQ(it.Get(), -1024.0f) << it.GetIndex(); // beyond the CT's half-voxel border: padding
        ++outside;
      }
    }
    EXPECT_GT(inside, 1000u);
    EXPECT_GT(outside, 1000u);
  }
}

TEST(PCACropResampleFilter, MaskAndCTOnDifferentGridsMeetInPhysicalSpace)
{
  // Mask on an axis-aligned isotropic 1 mm grid, CT on the oblique grid: the cube is placed by physical points.
  auto ct = MakeAffineCT({ { 150, 130, 50 } });
  auto mask = MaskImageType::New();
  mask->SetRegions(MaskImageType::SizeType{ { 120, 120, 120 } });
  auto origin = DivAttentionTest::PhysicalCentre(ct.GetPointer()); // both grids centred on the same point
  for (unsigned int d = 0; d < 3; ++d)
  {
    origin[d] -= 59.5;
  }
  mask->SetOrigin(origin);
  mask->Allocate();
  const PointType centre = DivAttentionTest::PhysicalCentre(mask.GetPointer());
  Ellipsoid       e{ centre, DivAttentionTest::Rotation(0.3, 0.2, 0.1), {} };
  e.semiAxes[0] = 30.0;
  e.semiAxes[1] = 20.0;
  e.semiAxes[2] = 10.0;
  DivAttentionTest::FillEllipsoid(mask.GetPointer(), e.centre, e.axes, e.semiAxes);
  auto filter = FilterType::New();
  filter->SetInput(ct);
  filter->SetMaskImage(mask);
  filter->Update();
  EXPECT_LT(filter->GetCropCenter().EuclideanDistanceTo(centre), 0.5);
  EXPECT_NEAR(filter->GetLongestAxisLength(), 60.0, 3.0);
  const auto * output = filter->GetOutput();
  EXPECT_EQ(output->GetDirection(), ct->GetDirection());
  PointType p;
  output->TransformIndexToPhysicalPoint({ { 48, 48, 48 } }, p);
  itk::ContinuousIndex<double, 3> c;
  ASSERT_TRUE(ct->TransformPhysicalPointToContinuousIndex(p, c));
  EXPECT_NEAR(output->GetPixel({ { 48, 48, 48 } }), AffineValue(p), 1e-3);
}

TEST(PCACropResampleFilter, SmallObjectGetsTheMinimumSide)
{
  auto mask = DivAttentionTest::MakeObliqueImage<MaskImageType>({ { 40, 40, 20 } });
  mask->FillBuffer(0);
  mask->SetPixel({ { 20, 20, 10 } }, 1);
  mask->SetPixel({ { 21, 20, 10 } }, 1);
  auto ct = MakeAffineCT({ { 40, 40, 20 } });
  auto filter = FilterType::New();
  filter->SetInput(ct);
  filter->SetMaskImage(mask);
  filter->SetMinimumSideLength(30.0);
  filter->UpdateOutputInformation();
  EXPECT_EQ(filter->GetNumberOfObjectVoxels(), 2u);
  EXPECT_NEAR(filter->GetCropSideLength(), 30.0, 1e-12);
  EXPECT_NEAR(filter->GetOutput()->GetSpacing()[0], 30.0 / 96.0, 1e-12);
}

TEST(PCACropResampleFilter, ProbabilityMaskUsesTheThreshold)
{
  using ProbabilityType = itk::Image<float, 3>;
  auto probability = DivAttentionTest::MakeObliqueImage<ProbabilityType>({ { 40, 40, 20 } });
  probability->FillBuffer(0.2f);
  probability->SetPixel({ { 10, 10, 5 } }, 0.9f);
  probability->SetPixel({ { 30, 30, 15 } }, 0.6f);
  auto ct = MakeAffineCT({ { 40, 40, 20 } });
  auto filter = itk::PCACropResampleFilter<CTImageType, ProbabilityType>::New();
  filter->SetInput(ct);
  filter->SetMaskImage(probability);
  filter->SetMaskThreshold(0.5);
  filter->UpdateOutputInformation();
  EXPECT_EQ(filter->GetNumberOfObjectVoxels(), 2u);
  filter->SetMaskThreshold(0.7);
  filter->UpdateOutputInformation();
  EXPECT_EQ(filter->GetNumberOfObjectVoxels(), 1u);
  PointType expected;
  probability->TransformIndexToPhysicalPoint({ { 10, 10, 5 } }, expected);
  EXPECT_LT(filter->GetCropCenter().EuclideanDistanceTo(expected), 1e-9);
}

TEST(PCACropResampleFilter, StreamingThreadingAndRequestedRegions)
{
  auto       mask = DivAttentionTest::MakeObliqueImage<MaskImageType>({ { 150, 130, 50 } });
  const auto e = MakeEllipsoid(mask, 3);
  DivAttentionTest::FillEllipsoid(mask.GetPointer(), e.centre, e.axes, e.semiAxes);
  // The CT is larger than the cube (108 mm), so the crop needs only part of it.
  auto ct = MakeAffineCT({ { 220, 200, 80 } });
  // Both inputs come out of filters, so the test sees what the crop asked of each.
  auto castCT = itk::CastImageFilter<CTImageType, CTImageType>::New();
  castCT->SetInput(ct);
  auto castMask = itk::CastImageFilter<MaskImageType, MaskImageType>::New();
  castMask->SetInput(mask);
  auto filter = FilterType::New();
  filter->SetInput(castCT->GetOutput());
  filter->SetMaskImage(castMask->GetOutput());
  filter->SetAxes(AxesEnum::Principal);
  filter->SetOutputSize({ { 48, 40, 36 } });

  const auto whole = DivAttentionTest::Stream<CTImageType>(filter->GetOutput(), 1);
  const auto pieces = DivAttentionTest::Stream<CTImageType>(filter->GetOutput(), 7);
  EXPECT_TRUE(DivAttentionTest::ImagesIdentical<CTImageType>(whole, pieces));

  filter->SetNumberOfWorkUnits(1);
  filter->UpdateLargestPossibleRegion();
  CTImageType::Pointer one = filter->GetOutput();
  one->DisconnectPipeline();
  filter->SetNumberOfWorkUnits(2);
  filter->UpdateLargestPossibleRegion();
  EXPECT_TRUE(DivAttentionTest::ImagesIdentical<CTImageType>(one, filter->GetOutput()));
  EXPECT_TRUE(DivAttentionTest::ImagesIdentical<CTImageType>(whole, filter->GetOutput()));
  // The whole mask was read; of the CT only the cube's neighbourhood.
  EXPECT_EQ(castMask->GetOutput()->GetBufferedRegion(), mask->GetLargestPossibleRegion());
  const auto wholeCTPixels = castCT->GetOutput()->GetBufferedRegion().GetNumberOfPixels();
  EXPECT_LT(wholeCTPixels, ct->GetLargestPossibleRegion().GetNumberOfPixels() / 2);

  // A sub-region request computes that region only, with the same values, from a smaller piece of the CT.
  auto sub = FilterType::New();
  sub->SetInput(castCT->GetOutput());
  sub->SetMaskImage(castMask->GetOutput());
  sub->SetAxes(AxesEnum::Principal);
  sub->SetOutputSize({ { 48, 40, 36 } });
  const CTImageType::RegionType region({ { 4, 30, 2 } }, { { 9, 5, 12 } });
  sub->GetOutput()->SetRequestedRegion(region);
  sub->Update();
  ASSERT_EQ(sub->GetOutput()->GetBufferedRegion(), region);
  itk::ImageRegionConstIteratorWithIndex<CTImageType> it(sub->GetOutput(), region);
  for (; !it.IsAtEnd(); ++it)
  {
    ASSERT_EQ(it.Get(), whole->GetPixel(it.GetIndex())) << it.GetIndex();
  }
  // What the sub-region asked of the CT (the cast keeps its larger buffer from the whole run, so ask the request).
  EXPECT_LT(castCT->GetOutput()->GetRequestedRegion().GetNumberOfPixels(), wholeCTPixels / 4);
}

TEST(PCACropResampleFilter, EmptyMaskThrowsOrFallsBack)
{
  auto mask = DivAttentionTest::MakeObliqueImage<MaskImageType>({ { 30, 30, 10 } });
  mask->FillBuffer(0);
  auto ct = MakeAffineCT({ { 30, 30, 10 } });
  auto filter = FilterType::New();
  filter->SetInput(ct);
  filter->SetMaskImage(mask);
  try
  {
    filter->Update();
    ADD_FAILURE() << "an empty mask must throw";
  }
  catch (const itk::ExceptionObject & error)
  {
    EXPECT_NE(std::string(error.GetDescription()).find("\"MaskImage\": the mask is empty"), std::string::npos)
      << error.GetDescription();
  }
  PointType click;
  ct->TransformIndexToPhysicalPoint({ { 15, 15, 5 } }, click);
  filter->UseFallbackOn();
  filter->SetFallbackCenter(click);
  filter->SetFallbackSideLength(40.0);
  filter->Update();
  EXPECT_TRUE(filter->GetUsedFallback());
  EXPECT_EQ(filter->GetCropCenter(), click);
  EXPECT_EQ(filter->GetCropSideLength(), 40.0);
  EXPECT_LT(DivAttentionTest::PhysicalCentre(filter->GetOutput()).EuclideanDistanceTo(click), 1e-9);
  // Voxel 48 of 96 lies half a patch voxel (0.21 mm per axis) off the centre; the CT's slope is below 1.5 per mm.
  EXPECT_NEAR(filter->GetOutput()->GetPixel({ { 48, 48, 48 } }), AffineValue(click), 0.5 * 40.0 / 96.0 * 1.5 * 3);
}

TEST(PCACropResampleFilter, BadInputsGiveTheDocumentedErrors)
{
  using ProbabilityType = itk::Image<float, 3>;
  auto probability = DivAttentionTest::MakeObliqueImage<ProbabilityType>({ { 20, 20, 10 } });
  probability->FillBuffer(1.0f);
  probability->SetPixel({ { 3, 4, 5 } }, std::numeric_limits<float>::quiet_NaN());
  auto ct = MakeAffineCT({ { 20, 20, 10 } });
  auto filter = itk::PCACropResampleFilter<CTImageType, ProbabilityType>::New();
  filter->SetInput(ct);
  filter->SetMaskImage(probability);
  const auto expectError = [&](const char * fragment)
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
  expectError("\"MaskImage\": the mask contains 1 NaN voxel(s)");
  probability->FillBuffer(1.0f);
  probability->Modified();
  filter->SetMarginFactor(0.0);
  expectError("MarginFactor");
  filter->SetMarginFactor(1.5);
  filter->SetOutputSize({ { 96, 0, 96 } });
  expectError("OutputSize");
  filter->SetOutputSize({ { 8, 8, 8 } });
  filter->SetMinimumSideLength(-1.0);
  expectError("MinimumSideLength");
  filter->SetMinimumSideLength(10.0);
  filter->UseFallbackOn();
  filter->SetFallbackSideLength(0.0);
  expectError("FallbackSideLength");
  filter->SetFallbackSideLength(10.0);
  filter->Update(); // everything valid again
  EXPECT_EQ(filter->GetNumberOfObjectVoxels(), 20u * 20u * 10u);
}
