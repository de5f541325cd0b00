// NextCorrectionClick: a miss gives a positive click at its centre, a false positive a negative one, the larger
// region wins by physical volume, ties go to the first voxel, equal masks give no click, and bad input is refused.
#include "DivAttentionTestImages.h"
#include "itkCorrectionClickSimulator.h"
#include "itkImageRegionIterator.h"

#include <gtest/gtest.h>

#include <string>

namespace
{
using MaskType = itk::Image<uint8_t, 3>;
using ReferenceType = itk::Image<int16_t, 3>;
using IndexType = itk::Index<3>;

// The oblique, anisotropic test grid (0.7 x 0.9 x 2.5 mm, rotated about two axes, non-zero origin).
template<typename TImage>
typename TImage::Pointer
MakeGrid()
{
  auto image = DivAttentionTest::MakeObliqueImage<TImage>({ { 48, 40, 20 } });
  image->FillBuffer(0);
  return image;
}

template<typename TImage>
void
FillBox(TImage * image, const IndexType & low, const IndexType & high, typename TImage::PixelType value)
{
  typename TImage::RegionType box;
  for (unsigned int d = 0; d < 3; ++d)
  {
    box.SetIndex(d, low[d]);
    box.SetSize(d, static_cast<itk::SizeValueType>(high[d] - low[d] + 1));
  }
  for (itk::ImageRegionIterator<TImage> it(image, box); !it.IsAtEnd(); ++it)
  {
    it.Set(value);
  }
}

itk::Point<double, 3>
PointOf(const MaskType * image, const IndexType & index)
{
  itk::Point<double, 3> p;
  image->TransformIndexToPhysicalPoint(index, p);
  return p;
}

constexpr double VoxelVolume = 0.7 * 0.9 * 2.5;

// The click is the physical point of a voxel centre, computed by the same affine map: equal to 1e-9 mm.
void
ExpectAt(const itk::CorrectionClick & click, const MaskType * grid, const IndexType & index)
{
  EXPECT_LT(click.point.EuclideanDistanceTo(PointOf(grid, index)), 1e-9)
    << "click at " << click.point << ", expected voxel " << index << " = " << PointOf(grid, index);
}

std::string
ErrorOf(const MaskType * mask, const ReferenceType * reference)
{
  try
  {
    itk::NextCorrectionClick(mask, reference);
  }
  catch (const itk::ExceptionObject & error)
  {
    return error.GetDescription();
  }
  return "";
}
} // namespace

// Box B (15 x 11 x 5 voxels = 10.5 x 9.9 x 12.5 mm) is in the reference and not in the mask. A voxel's depth is the
// distance to its nearest voxel outside B; along each axis spacing x (voxels to B's first outside voxel). B's centre
// (7, 5, 2) relative to B has depth min(0.7 * 8, 0.9 * 6, 2.5 * 3) = 5.4 mm; every other voxel is shallower.
TEST(CorrectionClickSimulator, AMissGivesAPositiveClickAtItsCentre)
{
  auto mask = MakeGrid<MaskType>();
  auto reference = MakeGrid<ReferenceType>();
  FillBox<MaskType>(mask, { { 2, 2, 2 } }, { { 12, 30, 15 } }, 1);
  FillBox<ReferenceType>(reference, { { 2, 2, 2 } }, { { 12, 30, 15 } }, 7); // any non-zero value is "in"
  FillBox<ReferenceType>(reference, { { 20, 10, 6 } }, { { 34, 20, 10 } }, 7);
  const auto click = itk::NextCorrectionClick(mask.GetPointer(), reference.GetPointer());
  ASSERT_TRUE(click.has_value());
  EXPECT_TRUE(click->positive);
  ExpectAt(*click, mask, { { 27, 15, 8 } });
  EXPECT_NEAR(click->regionVolume, 15 * 11 * 5 * VoxelVolume, 1e-9);
}

// The same box in the mask and not in the reference: a negative click at the same voxel.
TEST(CorrectionClickSimulator, AFalsePositiveGivesANegativeClickAtItsCentre)
{
  auto mask = MakeGrid<MaskType>();
  auto reference = MakeGrid<ReferenceType>();
  FillBox<MaskType>(mask, { { 2, 2, 2 } }, { { 12, 30, 15 } }, 255);
  FillBox<ReferenceType>(reference, { { 2, 2, 2 } }, { { 12, 30, 15 } }, 1);
  FillBox<MaskType>(mask, { { 20, 10, 6 } }, { { 34, 20, 10 } }, 255);
  const auto click = itk::NextCorrectionClick(mask.GetPointer(), reference.GetPointer());
  ASSERT_TRUE(click.has_value());
  EXPECT_FALSE(click->positive);
  ExpectAt(*click, mask, { { 27, 15, 8 } });
  EXPECT_NEAR(click->regionVolume, 15 * 11 * 5 * VoxelVolume, 1e-9);
}

// Spacing 0.7 x 0.9 x 2.5 mm. The false positive F is 30 x 3 x 2 voxels (180 voxels = 283.5 mm^3), the longest
// region. The miss M is 4 x 4 x 12 voxels (192 voxels = 302.4 mm^3): larger by volume, it wins; one voxel layer
// shorter (176 voxels), F wins. A miss touching a false positive is a region of its own: T (a false positive of
// 3 x 4 x 12 = 144 voxels) lies against M's face and is not joined to it (M + T would be 336 voxels).
TEST(CorrectionClickSimulator, TheLargerRegionByPhysicalVolumeWins)
{
  auto mask = MakeGrid<MaskType>();
  auto reference = MakeGrid<ReferenceType>();
  FillBox<MaskType>(mask, { { 5, 30, 3 } }, { { 34, 32, 4 } }, 1);           // F: 180 voxels
  FillBox<ReferenceType>(reference, { { 10, 5, 4 } }, { { 13, 8, 15 } }, 1); // M: 192 voxels
  FillBox<MaskType>(mask, { { 14, 5, 4 } }, { { 16, 8, 15 } }, 1);           // T: 144 voxels, touching M
  auto click = itk::NextCorrectionClick(mask.GetPointer(), reference.GetPointer());
  ASSERT_TRUE(click.has_value());
  EXPECT_TRUE(click->positive);
  EXPECT_NEAR(click->regionVolume, 192 * VoxelVolume, 1e-9);

  FillBox<ReferenceType>(reference, { { 10, 5, 15 } }, { { 13, 8, 15 } }, 0); // M: 4 x 4 x 11 = 176 voxels
  click = itk::NextCorrectionClick(mask.GetPointer(), reference.GetPointer());
  ASSERT_TRUE(click.has_value());
  EXPECT_FALSE(click->positive);
  EXPECT_NEAR(click->regionVolume, 180 * VoxelVolume, 1e-9);
  // F's depth: 0.9 * 2 = 1.8 mm on its middle row y = 31 (z gives 2.5 mm everywhere), where x is at least 3 voxels
  // (2.1 mm) from F's ends: x = 7..32. Ties go to the first in buffer order: (7, 31, 3).
  ExpectAt(*click, mask, { { 7, 31, 3 } });
}

// The click goes by physical, not index, distance. Region R: x 10..30, y 10..14, z 5..7 (21 x 5 x 3 voxels). In mm
// its depth is at most 0.9 * 3 = 2.7 (y = 12; z = 6 gives 5 mm, z = 5 or 7 gives 2.5 mm), reached where x is at least
// 4 voxels from R's ends (x = 13..27): the first of these in buffer order is (13, 12, 6). In voxel units the
// deepest would be z = 6 with y = 11..13 and x = 11..29, first (11, 11, 6).
TEST(CorrectionClickSimulator, DepthIsPhysicalAndTiesGoToTheFirstVoxel)
{
  auto mask = MakeGrid<MaskType>();
  auto reference = MakeGrid<ReferenceType>();
  FillBox<ReferenceType>(reference, { { 10, 10, 5 } }, { { 30, 14, 7 } }, 1);
  const auto click = itk::NextCorrectionClick(mask.GetPointer(), reference.GetPointer());
  ASSERT_TRUE(click.has_value());
  ExpectAt(*click, mask, { { 13, 12, 6 } });

  // Two regions of equal volume: the one whose first voxel comes first in buffer order (lower z) wins. Its depth is
  // 1.4 mm (x = 3) at (3, 31, 2..4) (z = 2 and 4: 2.5 mm): the first is (3, 31, 2).
  auto twoMask = MakeGrid<MaskType>();
  auto twoReference = MakeGrid<ReferenceType>();
  FillBox<ReferenceType>(twoReference, { { 30, 2, 10 } }, { { 32, 4, 12 } }, 1); // miss, later in buffer order
  FillBox<MaskType>(twoMask, { { 2, 30, 2 } }, { { 4, 32, 4 } }, 1);             // false positive, first
  const auto tie = itk::NextCorrectionClick(twoMask.GetPointer(), twoReference.GetPointer());
  ASSERT_TRUE(tie.has_value());
  EXPECT_FALSE(tie->positive);
  ExpectAt(*tie, twoMask, { { 3, 31, 2 } });
}

// A region cut by the image's edge: the edge is border, so the click is B's centre, not the voxel farthest from the
// faces inside the image (which would be the corner (0, 0, 0)).
TEST(CorrectionClickSimulator, TheImageEdgeIsBorder)
{
  auto mask = MakeGrid<MaskType>();
  auto reference = MakeGrid<ReferenceType>();
  FillBox<ReferenceType>(reference, { { 0, 0, 0 } }, { { 14, 10, 4 } }, 1); // 15 x 11 x 5 at the corner
  const auto click = itk::NextCorrectionClick(mask.GetPointer(), reference.GetPointer());
  ASSERT_TRUE(click.has_value());
  ExpectAt(*click, mask, { { 7, 5, 2 } });
}

TEST(CorrectionClickSimulator, EqualMasksGiveNoClick)
{
  auto mask = MakeGrid<MaskType>();
  auto reference = MakeGrid<ReferenceType>();
  EXPECT_FALSE(itk::NextCorrectionClick(mask.GetPointer(), reference.GetPointer()).has_value()); // both empty
  FillBox<MaskType>(mask, { { 3, 4, 5 } }, { { 20, 30, 12 } }, 1);
  FillBox<ReferenceType>(reference, { { 3, 4, 5 } }, { { 20, 30, 12 } }, -3);
  EXPECT_FALSE(itk::NextCorrectionClick(mask.GetPointer(), reference.GetPointer()).has_value());
  // One voxel of difference is a click, on that voxel.
  mask->SetPixel({ { 40, 35, 18 } }, 1);
  const auto click = itk::NextCorrectionClick(mask.GetPointer(), reference.GetPointer());
  ASSERT_TRUE(click.has_value());
  EXPECT_FALSE(click->positive);
  ExpectAt(*click, mask, { { 40, 35, 18 } });
  EXPECT_NEAR(click->regionVolume, VoxelVolume, 1e-12);
}

TEST(CorrectionClickSimulator, ImagesOnDifferentGridsAreRefused)
{
  auto mask = MakeGrid<MaskType>();
  auto reference = MakeGrid<ReferenceType>();
  EXPECT_EQ(ErrorOf(mask, reference), "");

  auto shifted = MakeGrid<ReferenceType>();
  auto origin = shifted->GetOrigin();
  origin[1] += 0.5;
  shifted->SetOrigin(origin);
  EXPECT_NE(ErrorOf(mask, shifted).find("input \"Reference\": must lie on the mask's grid"), std::string::npos);

  auto spaced = MakeGrid<ReferenceType>();
  auto spacing = spaced->GetSpacing();
  spacing[2] = 2.0;
  spaced->SetSpacing(spacing);
  EXPECT_NE(ErrorOf(mask, spaced).find("must lie on the mask's grid"), std::string::npos);

  auto turned = MakeGrid<ReferenceType>();
  turned->SetDirection(MaskType::DirectionType::GetIdentity());
  EXPECT_NE(ErrorOf(mask, turned).find("must lie on the mask's grid"), std::string::npos);

  auto smaller = ReferenceType::New();
  smaller->CopyInformation(mask);
  smaller->SetRegions(ReferenceType::SizeType{ { 48, 40, 19 } });
  smaller->Allocate(true);
  EXPECT_NE(ErrorOf(mask, smaller).find("must lie on the mask's grid"), std::string::npos);

  EXPECT_NE(ErrorOf(nullptr, reference).find("input \"Mask\": no image was given"), std::string::npos);
  EXPECT_NE(ErrorOf(mask, nullptr).find("input \"Reference\": no image was given"), std::string::npos);
  auto unbuffered = ReferenceType::New();
  unbuffered->CopyInformation(mask);
  unbuffered->SetLargestPossibleRegion(mask->GetLargestPossibleRegion());
  EXPECT_NE(ErrorOf(mask, unbuffered).find("not fully buffered"), std::string::npos);
}
