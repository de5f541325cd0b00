// Click texts to physical points: the three spaces, and every malformed text refused with a message quoting it.
#include "DivAttentionTestImages.h"
#include "itkClickPoints.h"

#include <gtest/gtest.h>

using itk::ClickPoints;

TEST(ClickPoints, ParsesCommasSpacesSignsAndExponents)
{
  EXPECT_EQ(ClickPoints::ParseTriple("1,2,3"), (std::array<double, 3>{ 1, 2, 3 }));
  EXPECT_EQ(ClickPoints::ParseTriple(" -1.5 , +2e1,3.25 "), (std::array<double, 3>{ -1.5, 20, 3.25 }));
  EXPECT_EQ(ClickPoints::ParseTriple("4 5 6"), (std::array<double, 3>{ 4, 5, 6 }));
}

TEST(ClickPoints, RefusesMalformedTextQuotingIt)
{
  for (const char * bad :
       { "", "1,2", "1,2,3,4", "a,b,c", "1,,2,3", "1,2,nan", "1,inf,2", "1,2,3x", "1;2;3", "1e999,0,0" })
  {
    try
    {
      ClickPoints::ParseTriple(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    }
    catch (const itk::ExceptionObject & error)
    {
      EXPECT_NE(std::string(error.GetDescription()).find(std::string("\"") + bad + "\""), std::string::npos)
        << error.GetDescription();
    }
  }
}

TEST(ClickPoints, SpacesGiveTheSamePhysicalPointOnAnObliqueGrid)
{
  using ImageType = itk::Image<float, 3>;
  auto image = DivAttentionTest::MakeObliqueImage<ImageType>({ { 20, 16, 12 } });
  // The voxel (7, 3, 9) in index space ...
  ImageType::PointType expected;
  image->TransformIndexToPhysicalPoint({ { 7, 3, 9 } }, expected);
  const auto fromIndex = ClickPoints::ToPhysicalPoint({ 7, 3, 9 }, ClickPoints::Space::Index, image.GetPointer());
  // ... in LPS, and in RAS (x and y negated).
  const auto fromLps =
    ClickPoints::ToPhysicalPoint({ expected[0], expected[1], expected[2] }, ClickPoints::Space::LPS, nullptr);
  const auto fromRas =
    ClickPoints::ToPhysicalPoint({ -expected[0], -expected[1], expected[2] }, ClickPoints::Space::RAS, nullptr);
  for (unsigned d = 0; d < 3; ++d)
  {
    EXPECT_NEAR(fromIndex[d], expected[d], 1e-9);
    EXPECT_NEAR(fromLps[d], expected[d], 1e-12);
    EXPECT_NEAR(fromRas[d], expected[d], 1e-12);
  }
  EXPECT_TRUE(ClickPoints::IsInside(fromIndex, image.GetPointer()));
  const auto outside = ClickPoints::ToPhysicalPoint({ 20.6, 3, 9 }, ClickPoints::Space::Index, image.GetPointer());
  EXPECT_FALSE(ClickPoints::IsInside(outside, image.GetPointer()));
  EXPECT_THROW(ClickPoints::ToPhysicalPoint({ 1, 2, 3 }, ClickPoints::Space::Index, nullptr), itk::ExceptionObject);
}

TEST(ClickPoints, ParsesSpaceNames)
{
  EXPECT_EQ(ClickPoints::ParseSpace("LPS"), ClickPoints::Space::LPS);
  EXPECT_EQ(ClickPoints::ParseSpace("ras"), ClickPoints::Space::RAS);
  EXPECT_EQ(ClickPoints::ParseSpace("Index"), ClickPoints::Space::Index);
  EXPECT_THROW(ClickPoints::ParseSpace("voxel"), itk::ExceptionObject);
}
