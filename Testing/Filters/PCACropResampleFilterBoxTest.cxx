// PCACropResampleFilter with a box prompt (SetBox): the cube holds the box, its side follows the box's longest
// physical side (margin and minimum side as for the PCA crop), its axes are the CT's, under an oblique direction and
// anisotropic spacing; the mask is not needed; errors.
#include "DivAttentionTestImages.h"
#include "FilterTestUtilities.h"
#include "itkBoxPrompt.h"
#include "itkPCACropResampleFilter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace
{
using MaskImageType = itk::Image<unsigned char, 3>;
using CTImageType = itk::Image<float, 3>;
using FilterType = itk::PCACropResampleFilter<CTImageType, MaskImageType>;
using PointType = CTImageType::PointType;
using IndexPoint = itk::ContinuousIndex<double, 3>;

// An affine CT value: linear interpolation reproduces it exactly, so a voxel's value tells where it sampled.
double
AffineValue(const PointType & p)
{
  return 0.5 * p[0] - 0.25 * p[1] + 0.75 * p[2] + 3.0;
}

// 60 x 50 x 20 voxels of 0.7 x 0.9 x 2.5 mm, rotated about z and x (no axis aligned with LPS).
CTImageType::Pointer
MakeAffineCT()
{
  auto ct = DivAttentionTest::MakeObliqueImage<CTImageType>({ { 60, 50, 20 } });
  for (itk::ImageRegionIteratorWithIndex<CTImageType> it(ct, ct->GetBufferedRegion()); !it.IsAtEnd(); ++it)
  {
    PointType p;
    ct->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    it.Set(static_cast<float>(AffineValue(p)));
  }
  return ct;
}

PointType
At(const CTImageType * ct, double i, double j, double k)
{
  IndexPoint index;
  index[0] = i;
  index[1] = j;
  index[2] = k;
  PointType p;
  ct->TransformContinuousIndexToPhysicalPoint(index, p);
  return p;
}

std::string
Describe(const itk::ExceptionObject & error)
{
  return error.GetDescription();
}
} // namespace

// Box from index (10.3, 12, 4) to (40, 30.5, 13): 29.7 x 18.5 x 9 voxels, 20.79 x 16.65 x 22.5 mm. The longest side
// is the one with the fewest voxels (2.5 mm slices): a side measured in voxels, or along LPS instead of the CT's axes,
// gives another cube.
TEST(PCACropResampleFilterBox, CubeHoldsTheBoxAlongTheCTsAxes)
{
  const auto ct = MakeAffineCT();
  const auto corner1 = At(ct, 40.0, 12.0, 13.0); // corners in any order: (40, 12, 13) and (10.3, 30.5, 4)
  const auto corner2 = At(ct, 10.3, 30.5, 4.0);
  auto       filter = FilterType::New();
  filter->SetInput(ct);
  filter->SetOutputSize({ { 32, 24, 16 } });
  filter->SetMarginFactor(1.5);
  filter->SetMinimumSideLength(10.0);
  filter->SetAxes(FilterType::AxesEnum::Principal); // not used with a box: the CT's axes
  filter->SetBox(corner1, corner2);
  EXPECT_TRUE(filter->GetUseBox());
  filter->Update(); // no mask: the box places the cube

  // Geometry is double arithmetic on a few numbers: 1e-9 mm.
  const double tolerance = 1e-9;
  EXPECT_NEAR(filter->GetLongestAxisLength(), 22.5, tolerance);
  EXPECT_NEAR(filter->GetCropSideLength(), 1.5 * 22.5, tolerance);
  EXPECT_FALSE(filter->GetUsedFallback());
  const CTImageType * output = filter->GetOutput();
  const double        side = filter->GetCropSideLength();
  const auto          size = output->GetLargestPossibleRegion().GetSize();
  for (unsigned int r = 0; r < 3; ++r)
  {
    EXPECT_NEAR(output->GetSpacing()[r], side / static_cast<double>(size[r]), tolerance) << r;
    for (unsigned int c = 0; c < 3; ++c)
    {
      EXPECT_NEAR(output->GetDirection()[r][c], ct->GetDirection()[r][c], 1e-12) << r << "," << c;
    }
  }
  PointType midpoint;
  midpoint.SetToMidPoint(corner1, corner2);
  EXPECT_LT(DivAttentionTest::PhysicalCentre(output).EuclideanDistanceTo(midpoint), tolerance);

  // Each of the box's 8 corners lies in the cube, exactly where the geometry puts it: the CT's axes are the cube's,
  // so a corner sits (side of the box along that axis) / 2 from the cube's centre, in output voxels.
  const double half[3] = { 0.5 * 29.7 * 0.7, 0.5 * 18.5 * 0.9, 0.5 * 9.0 * 2.5 };
  for (const double i : { 10.3, 40.0 })
  {
    for (const double j : { 12.0, 30.5 })
    {
      for (const double k : { 4.0, 13.0 })
      {
        const auto index = output->TransformPhysicalPointToContinuousIndex<double>(At(ct, i, j, k));
        const int  sign[3] = { i > 20 ? 1 : -1, j > 20 ? 1 : -1, k > 8 ? 1 : -1 };
        for (unsigned int d = 0; d < 3; ++d)
        {
          EXPECT_GE(index[d], -0.5) << "corner (" << i << ", " << j << ", " << k << ") outside the cube, axis " << d;
          EXPECT_LE(index[d], static_cast<double>(size[d]) - 0.5) << "corner (" << i << ", " << j << ", " << k << ")";
          const double expected =
            0.5 * (static_cast<double>(size[d]) - 1.0) + sign[d] * half[d] / output->GetSpacing()[d];
          EXPECT_NEAR(index[d], expected, 1e-6) << "corner (" << i << ", " << j << ", " << k << "), axis " << d;
        }
      }
    }
  }

  // The content: voxel (i, j, k) shows the CT at the physical point it lies at (float output, values below 300:
  // 1e-3).
  for (const itk::Index<3> & index : { itk::Index<3>{ { 16, 12, 8 } }, itk::Index<3>{ { 3, 20, 11 } } })
  {
    PointType p;
    output->TransformIndexToPhysicalPoint(index, p);
    EXPECT_NEAR(output->GetPixel(index), AffineValue(p), 1e-3) << index;
  }
}

TEST(PCACropResampleFilterBox, MarginAndMinimumSideAsForThePCACrop)
{
  const auto ct = MakeAffineCT();
  auto       filter = FilterType::New();
  filter->SetInput(ct);
  filter->SetOutputSize({ { 16, 16, 16 } });
  // A 7 x 9 x 10 mm box (10 x 10 x 4 voxels) with a 48 mm minimum: the minimum wins.
  filter->SetBox(At(ct, 20.0, 20.0, 5.0), At(ct, 30.0, 30.0, 9.0));
  filter->SetMinimumSideLength(48.0);
  filter->Update();
  EXPECT_NEAR(filter->GetLongestAxisLength(), 10.0, 1e-9);
  EXPECT_NEAR(filter->GetCropSideLength(), 48.0, 1e-9);
  // A margin below 1 never cuts the box: the side is at least the box's longest side.
  filter->SetMinimumSideLength(0.0);
  filter->SetMarginFactor(0.5);
  filter->Update();
  EXPECT_NEAR(filter->GetCropSideLength(), 10.0, 1e-9);
  filter->SetMarginFactor(2.0);
  filter->Update();
  EXPECT_NEAR(filter->GetCropSideLength(), 20.0, 1e-9);
}

TEST(PCACropResampleFilterBox, TheBoxReplacesTheMaskAndRemoveBoxRestoresIt)
{
  const auto ct = MakeAffineCT();
  auto       empty = MaskImageType::New();
  empty->CopyInformation(ct);
  empty->SetRegions(ct->GetLargestPossibleRegion());
  empty->Allocate();
  empty->FillBuffer(0);
  auto filter = FilterType::New();
  filter->SetInput(ct);
  filter->SetOutputSize({ { 8, 8, 8 } });
  filter->SetMaskImage(empty);
  filter->SetBox(At(ct, 5.0, 5.0, 2.0), At(ct, 25.0, 25.0, 10.0));
  filter->Update(); // an empty mask would throw: the box is used instead
  EXPECT_EQ(filter->GetNumberOfObjectVoxels(), 0u);
  EXPECT_NEAR(filter->GetCropSideLength(), std::max(48.0, 1.5 * 20.0), 1e-9);

  filter->RemoveBox();
  EXPECT_FALSE(filter->GetUseBox());
  try
  {
    filter->Update();
    ADD_FAILURE() << "without the box the empty mask must throw";
  }
  catch (const itk::ExceptionObject & error)
  {
    EXPECT_NE(Describe(error).find("\"MaskImage\": the mask is empty"), std::string::npos) << Describe(error);
  }

  auto noMask = FilterType::New();
  noMask->SetInput(ct);
  try
  {
    noMask->Update();
    ADD_FAILURE() << "neither a mask nor a box must throw";
  }
  catch (const itk::ExceptionObject & error)
  {
    EXPECT_NE(Describe(error).find("\"MaskImage\": no mask and no box"), std::string::npos) << Describe(error);
  }
  PointType bad = At(ct, 5.0, 5.0, 2.0);
  bad[1] = std::numeric_limits<double>::quiet_NaN();
  noMask->SetBox(bad, At(ct, 25.0, 25.0, 10.0));
  try
  {
    noMask->Update();
    ADD_FAILURE() << "a NaN corner must throw";
  }
  catch (const itk::ExceptionObject & error)
  {
    EXPECT_NE(Describe(error).find("\"Box\": corner"), std::string::npos) << Describe(error);
  }
}

// itk::BoxPrompt, which the crop's callers use to check a box and to restrict a result to it.
TEST(BoxPrompt, VoxelsSidesAndChecksOnAnObliqueGrid)
{
  const auto ct = MakeAffineCT();
  // Corners at continuous index (10.3, 30.5, 4.4) and (40, 12, 13.6): voxels 10..40, 12..31 (30.5 rounds up), 4..14.
  const auto region = itk::BoxPrompt::IndexRegion(ct, At(ct, 10.3, 30.5, 4.4), At(ct, 40.0, 12.0, 13.6));
  EXPECT_EQ(region.GetIndex(), (itk::Index<3>{ { 10, 12, 4 } }));
  EXPECT_EQ(region.GetSize(), (itk::Size<3>{ { 31, 20, 11 } }));
  // Clipped to the image: a corner on the image's outer face (index -0.5) starts at voxel 0.
  const auto clipped = itk::BoxPrompt::IndexRegion(ct, At(ct, -0.5, -0.5, -0.5), At(ct, 59.5, 49.5, 19.5));
  EXPECT_EQ(clipped, ct->GetLargestPossibleRegion());
  const auto sides = itk::BoxPrompt::Sides(ct, At(ct, 10.0, 30.0, 4.0), At(ct, 40.0, 12.0, 14.0));
  EXPECT_NEAR(sides[0], 30.0 * 0.7, 1e-9);
  EXPECT_NEAR(sides[1], 18.0 * 0.9, 1e-9);
  EXPECT_NEAR(sides[2], 10.0 * 2.5, 1e-9);

  const auto expectError = [&](const PointType & a, const PointType & b, const char * fragment)
  {
    try
    {
      itk::BoxPrompt::Check(ct, a, b, "--box");
      ADD_FAILURE() << "no exception; expected one mentioning " << fragment;
    }
    catch (const itk::ExceptionObject & error)
    {
      EXPECT_NE(Describe(error).find(fragment), std::string::npos) << Describe(error);
      EXPECT_NE(Describe(error).find("\"--box\""), std::string::npos) << Describe(error);
    }
  };
  EXPECT_NO_THROW(itk::BoxPrompt::Check(ct, At(ct, 0.0, 0.0, 0.0), At(ct, 59.0, 49.0, 19.0), "--box"));
  expectError(At(ct, 10.0, 10.0, 5.0), At(ct, 70.0, 20.0, 10.0), "lies outside the image");
  expectError(At(ct, 10.0, 10.0, -1.0), At(ct, 20.0, 20.0, 10.0), "lies outside the image");
  expectError(At(ct, 10.0, 10.0, 5.0), At(ct, 20.0, 20.0, 5.0), "degenerate box");
  expectError(At(ct, 10.0, 10.0, 5.0), At(ct, 10.2, 20.0, 8.0), "along image axis i");
  PointType nan = At(ct, 10.0, 10.0, 5.0);
  nan[2] = std::numeric_limits<double>::quiet_NaN();
  expectError(nan, At(ct, 20.0, 20.0, 10.0), "is not a finite point");
}
