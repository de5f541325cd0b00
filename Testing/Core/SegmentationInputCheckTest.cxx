// What a CT and its clicks must satisfy before a click-guided segmentation runs (itk::SegmentationInputCheck): a
// click on the air around the patient is refused, a click on air inside the body (lung, airway, a ground-glass
// lesion) is not; a single slice or 50 mm voxels are errors naming the input.
#include "DivAttentionTestImages.h"
#include "itkSegmentationInputCheck.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

namespace
{
using ImageType = itk::Image<float, 3>;
using PointType = itk::SegmentationInputCheck::PointType;

// A chest-like phantom, 2 mm voxels, index axes (i, j, k) = (x, y, z) unless `axialAxis` puts S-I elsewhere: air
// (-1000 HU) around an elliptic body (40 HU); inside it a lung (-850 HU) holding a ground-glass lesion (-600 HU);
// a trachea (-1000 HU), a tube from the lung up through the body's top slice, open at the image's top border.
ImageType::Pointer
MakeChest(unsigned int axialAxis = 2)
{
  const unsigned int  n[3] = { 80, 64, 40 };
  auto                image = ImageType::New();
  ImageType::SizeType size;
  for (unsigned int a = 0; a < 3; ++a)
  {
    size[a] = n[a];
  }
  if (axialAxis != 2)
  {
    std::swap(size[axialAxis], size[2]);
  }
  image->SetRegions(size);
  ImageType::SpacingType spacing;
  spacing.Fill(2.0);
  image->SetSpacing(spacing);
  ImageType::DirectionType direction;
  direction.SetIdentity();
  if (axialAxis != 2)
  {
    // Index axis `axialAxis` runs along LPS z, index axis 2 along the physical axis it replaced.
    direction.Fill(0.0);
    for (unsigned int a = 0; a < 3; ++a)
    {
      direction[a][a] = 1.0;
    }
    direction[axialAxis][axialAxis] = 0.0;
    direction[2][2] = 0.0;
    direction[2][axialAxis] = 1.0;
    direction[axialAxis][2] = 1.0;
  }
  image->SetDirection(direction);
  image->Allocate();
  image->FillBuffer(-1000.0f);
  for (int z = 0; z < 40; ++z)
  {
    for (int y = 0; y < 64; ++y)
    {
      for (int x = 0; x < 80; ++x)
      {
        const double body = std::pow((x - 40) / 34.0, 2) + std::pow((y - 32) / 26.0, 2);
        const double lung = std::pow((x - 28) / 12.0, 2) + std::pow((y - 32) / 14.0, 2);
        const double lesion = std::pow(x - 26, 2) + std::pow(y - 30, 2) + std::pow(z - 20, 2);
        const double trachea = std::pow(x - 40, 2) + std::pow(y - 32, 2);
        float        value = -1000.0f;
        if (body < 1.0)
        {
          value = 40.0f;
          if (lung < 1.0 && z > 4 && z < 30)
          {
            value = lesion < 16.0 ? -600.0f : -850.0f;
          }
          if (trachea < 9.0 && z >= 20)
          {
            value = -1000.0f;
          }
        }
        // Physical point of (x, y, z) in the unpermuted layout, written at its index in this layout.
        ImageType::IndexType index{ { x, y, z } };
        if (axialAxis != 2)
        {
          std::swap(index[axialAxis], index[2]);
        }
        image->SetPixel(index, value);
      }
    }
  }
  return image;
}

PointType
At(const ImageType * image, int x, int y, int z, unsigned int axialAxis = 2)
{
  ImageType::IndexType index{ { x, y, z } };
  if (axialAxis != 2)
  {
    std::swap(index[axialAxis], index[2]);
  }
  PointType point;
  image->TransformIndexToPhysicalPoint(index, point);
  return point;
}

std::string
Message(const std::function<void()> & function)
{
  try
  {
    function();
  }
  catch (const itk::ExceptionObject & error)
  {
    return error.GetDescription();
  }
  return {};
}
} // namespace

TEST(SegmentationInputCheck, AirIsRefusedOnlyOutsideTheBody)
{
  for (const unsigned int axial : { 2u, 1u, 0u })
  {
    SCOPED_TRACE("S-I along index axis " + std::to_string(axial));
    const auto ct = MakeChest(axial);
    using Check = itk::SegmentationInputCheck;
    // Air around the patient, beside the body and in a corner: outside.
    EXPECT_TRUE(Check::IsOnAirOutsideTheBody(ct.GetPointer(), At(ct, 2, 32, 20, axial)));
    EXPECT_TRUE(Check::IsOnAirOutsideTheBody(ct.GetPointer(), At(ct, 0, 0, 0, axial)));
    // A ground-glass lesion (-600 HU) and the lung around it (-850 HU): inside.
    EXPECT_FALSE(Check::IsOnAirOutsideTheBody(ct.GetPointer(), At(ct, 26, 30, 20, axial)));
    EXPECT_FALSE(Check::IsOnAirOutsideTheBody(ct.GetPointer(), At(ct, 22, 36, 10, axial)));
    // The trachea reaches the image's top border in 3D, but each axial slice encloses it: inside.
    EXPECT_FALSE(Check::IsOnAirOutsideTheBody(ct.GetPointer(), At(ct, 40, 32, 39, axial)));
    // Soft tissue is never air.
    EXPECT_FALSE(Check::IsOnAirOutsideTheBody(ct.GetPointer(), At(ct, 60, 32, 20, axial)));
    // The filter's check names the click by number and says where it lies.
    const std::string message = Message(
      [&] {
        Check::CheckClicks(ct.GetPointer(), { At(ct, 26, 30, 20, axial), At(ct, 2, 32, 20, axial) });
      });
    EXPECT_NE(message.find("click 2 "), std::string::npos) << message;
    EXPECT_NE(message.find("lies on air outside the body"), std::string::npos) << message;
    EXPECT_EQ(Message([&] { Check::CheckClicks(ct.GetPointer(), { At(ct, 26, 30, 20, axial) }); }), "");
  }
}

TEST(SegmentationInputCheck, ASingleSliceCoarseVoxelsAndOneValueEverywhereAreErrorsNamingTheInput)
{
  using Check = itk::SegmentationInputCheck;
  auto slice = ImageType::New();
  slice->SetRegions(ImageType::SizeType{ { 128, 128, 1 } });
  slice->Allocate();
  slice->FillBuffer(40.0f);
  std::string message = Message([&] { Check::CheckImage(slice.GetPointer(), "--input \"slice.nii.gz\""); });
  EXPECT_NE(message.find("input \"--input \"slice.nii.gz\"\""), std::string::npos) << message;
  EXPECT_NE(message.find("only 1 voxel (a single slice) along z"), std::string::npos) << message;

  auto coarse = ImageType::New();
  coarse->SetRegions(ImageType::SizeType{ { 8, 8, 8 } });
  ImageType::SpacingType spacing;
  spacing.Fill(50.0);
  coarse->SetSpacing(spacing);
  coarse->Allocate();
  message = Message([&] { Check::CheckImage(coarse.GetPointer(), "CT", 3.0); });
  EXPECT_NE(message.find("8x8x8 voxels of 50 x 50 x 50 mm"), std::string::npos) << message;
  EXPECT_NE(message.find("too coarse"), std::string::npos) << message;
  EXPECT_NE(message.find("the coarse model works on 3 mm voxels"), std::string::npos) << message;

  // The limits themselves pass: 4 voxels along an axis, 10 mm voxels (old thick-slice CT).
  auto thin = ImageType::New();
  thin->SetRegions(ImageType::SizeType{ { 64, 64, 4 } });
  spacing[0] = 0.7;
  spacing[1] = 0.7;
  spacing[2] = 10.0;
  thin->SetSpacing(spacing);
  thin->Allocate();
  thin->FillBuffer(3000.0f);
  // One value in every voxel (a volume all at 3000 HU) holds no object.
  message = Message([&] { Check::CheckImage(thin.GetPointer(), "CT"); });
  EXPECT_NE(message.find("every voxel holds the same value (3000)"), std::string::npos) << message;
  thin->SetPixel({ { 63, 63, 3 } }, 2999.0f); // the last voxel differs: the scan reaches it
  EXPECT_EQ(Message([&] { Check::CheckImage(thin.GetPointer(), "CT"); }), "");
}

// Within a radius: physical distance from the click to a voxel's centre, under anisotropic spacing and an oblique
// direction (MakeObliqueImage: 0.7 x 0.9 x 2.5 mm, rotated).
TEST(SegmentationInputCheck, ContainsClickWithinMeasuresPhysicalDistance)
{
  auto mask = DivAttentionTest::MakeObliqueImage<itk::Image<uint8_t, 3>>({ { 20, 20, 10 } });
  mask->FillBuffer(0);
  mask->SetPixel({ { 10, 10, 5 } }, 1);
  PointType object;
  mask->TransformIndexToPhysicalPoint({ { 10, 10, 5 } }, object);
  PointType away;
  mask->TransformIndexToPhysicalPoint({ { 10, 10, 7 } }, away); // two slices: 5.0 mm off
  EXPECT_FALSE(itk::SegmentationInputCheck::ContainsClick(mask.GetPointer(), away));
  EXPECT_FALSE(itk::SegmentationInputCheck::ContainsClickWithin(mask.GetPointer(), away, 4.9));
  EXPECT_TRUE(itk::SegmentationInputCheck::ContainsClickWithin(mask.GetPointer(), away, 5.1));
  EXPECT_FALSE(itk::SegmentationInputCheck::ContainsClickWithin(mask.GetPointer(), away, 0.0));
  mask->TransformIndexToPhysicalPoint({ { 16, 10, 5 } }, away); // six columns: 4.2 mm off
  EXPECT_FALSE(itk::SegmentationInputCheck::ContainsClickWithin(mask.GetPointer(), away, 4.1));
  EXPECT_TRUE(itk::SegmentationInputCheck::ContainsClickWithin(mask.GetPointer(), away, 4.3));
  EXPECT_TRUE(itk::SegmentationInputCheck::ContainsClickWithin(mask.GetPointer(), object, 0.0));
  // A click outside the grid still finds an object voxel within reach, and nothing beyond it.
  mask->SetPixel({ { 0, 0, 0 } }, 1);
  PointType corner;
  mask->TransformIndexToPhysicalPoint({ { 0, 0, 0 } }, corner);
  itk::ContinuousIndex<double, 3> outside;
  outside[0] = -2.0; // 1.4 mm before the grid's first column
  outside[1] = 0.0;
  outside[2] = 0.0;
  mask->TransformContinuousIndexToPhysicalPoint(outside, corner);
  EXPECT_TRUE(itk::SegmentationInputCheck::ContainsClickWithin(mask.GetPointer(), corner, 1.5));
  EXPECT_FALSE(itk::SegmentationInputCheck::ContainsClickWithin(mask.GetPointer(), corner, 1.3));
}

TEST(SegmentationInputCheck, ContainsClickReadsTheClickedVoxel)
{
  auto mask = itk::Image<uint8_t, 3>::New();
  mask->SetRegions(itk::Image<uint8_t, 3>::SizeType{ { 10, 10, 10 } });
  mask->Allocate();
  mask->FillBuffer(0);
  mask->SetPixel({ { 3, 4, 5 } }, 1);
  PointType point;
  mask->TransformIndexToPhysicalPoint({ { 3, 4, 5 } }, point);
  EXPECT_TRUE(itk::SegmentationInputCheck::ContainsClick(mask.GetPointer(), point));
  point[0] += 1.0;
  EXPECT_FALSE(itk::SegmentationInputCheck::ContainsClick(mask.GetPointer(), point));
  point[0] = 100.0;
  EXPECT_FALSE(itk::SegmentationInputCheck::ContainsClick(mask.GetPointer(), point));
}
