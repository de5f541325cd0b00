// ClickedComponentImageFilter: the clicked components only, the search for a click beside the object, several
// clicks, the threshold, face connectivity, the fallback to every component, errors and the basic object API.
#include "DivAttentionTestImages.h"
#include "itkClickedComponentImageFilter.h"
#include "itkImageRegionConstIterator.h"
#include "itkImageRegionIterator.h"
#include "itkTestingMacros.h"

#include <gtest/gtest.h>

namespace
{
using ImageType = itk::Image<float, 3>;
using FilterType = itk::ClickedComponentImageFilter<ImageType, ImageType>;
using IndexType = ImageType::IndexType;

void
FillBox(ImageType * image, const IndexType & low, const IndexType & high, float value)
{
  ImageType::RegionType box;
  for (unsigned int d = 0; d < 3; ++d)
  {
    box.SetIndex(d, low[d]);
    box.SetSize(d, static_cast<itk::SizeValueType>(high[d] - low[d] + 1));
  }
  for (itk::ImageRegionIterator<ImageType> it(image, box); !it.IsAtEnd(); ++it)
  {
    it.Set(value);
  }
}

// On the oblique, anisotropic test grid (0.7 x 0.9 x 2.5 mm): A (600 voxels, 0.9) and B (660 voxels, 0.8) are
// joined only by C (30 voxels, 0.4, below the default threshold); D (18 voxels, 0.9) touches A at one corner only.
ImageType::Pointer
MakeProbability()
{
  auto image = DivAttentionTest::MakeObliqueImage<ImageType>({ { 40, 36, 16 } });
  image->FillBuffer(0.0f);
  FillBox(image, { { 5, 5, 3 } }, { { 14, 14, 8 } }, 0.9f);    // A
  FillBox(image, { { 20, 5, 3 } }, { { 30, 14, 8 } }, 0.8f);   // B
  FillBox(image, { { 15, 8, 5 } }, { { 19, 10, 6 } }, 0.4f);   // C
  FillBox(image, { { 15, 15, 9 } }, { { 17, 17, 10 } }, 0.9f); // D
  return image;
}

ImageType::PointType
PointOf(const ImageType * image, const IndexType & index)
{
  ImageType::PointType p;
  image->TransformIndexToPhysicalPoint(index, p);
  return p;
}

struct Result
{
  ImageType::Pointer mask;
  std::size_t        voxels = 0;
  bool               usedAll = false;
};

Result
KeepClicked(const ImageType *                 probability,
            const FilterType::PointListType & clicks,
            double                            threshold = 0.5,
            double                            radius = 10.0,
            bool                              emptyWhenNothingClicked = false)
{
  auto filter = FilterType::New();
  filter->SetInput(probability);
  filter->SetClicks(clicks);
  filter->SetThreshold(threshold);
  filter->SetSearchRadius(radius);
  filter->SetEmptyWhenNothingClicked(emptyWhenNothingClicked);
  filter->Update();
  Result result;
  result.mask = filter->GetOutput();
  for (itk::ImageRegionConstIterator<ImageType> it(result.mask, result.mask->GetBufferedRegion()); !it.IsAtEnd(); ++it)
  {
    EXPECT_TRUE(it.Get() == 0.0f || it.Get() == 1.0f);
    result.voxels += it.Get() == 1.0f ? 1 : 0;
  }
  EXPECT_EQ(result.voxels, filter->GetNumberOfObjectVoxels());
  result.usedAll = filter->GetUsedAllComponents();
  return result;
}

int
ExerciseObject()
{
  auto filter = FilterType::New();
  ITK_EXERCISE_BASIC_OBJECT_METHODS(filter, ClickedComponentImageFilter, ImageToImageFilter);
  ITK_TEST_SET_GET_VALUE(0.5, filter->GetThreshold());
  ITK_TEST_SET_GET_VALUE(10.0, filter->GetSearchRadius());
  filter->SetThreshold(0.25);
  ITK_TEST_SET_GET_VALUE(0.25, filter->GetThreshold());
  filter->SetSearchRadius(4.0);
  ITK_TEST_SET_GET_VALUE(4.0, filter->GetSearchRadius());
  ITK_TEST_SET_GET_BOOLEAN(filter, EmptyWhenNothingClicked, false);
  filter->EmptyWhenNothingClickedOn();
  ITK_TEST_SET_GET_VALUE(true, filter->GetEmptyWhenNothingClicked());
  return EXIT_SUCCESS;
}
} // namespace

TEST(ClickedComponentImageFilter, BasicObjectMethods)
{
  EXPECT_EQ(ExerciseObject(), EXIT_SUCCESS);
}

TEST(ClickedComponentImageFilter, KeepsOnlyTheClickedComponentOnTheInputsGrid)
{
  const auto probability = MakeProbability();
  const auto a = KeepClicked(probability, { PointOf(probability, { { 10, 10, 5 } }) });
  EXPECT_EQ(a.voxels, 600u); // A alone: not B (across C, below the threshold), not D (a shared corner only)
  EXPECT_FALSE(a.usedAll);
  EXPECT_EQ(a.mask->GetPixel({ { 14, 14, 8 } }), 1.0f);
  EXPECT_EQ(a.mask->GetPixel({ { 20, 5, 3 } }), 0.0f);
  EXPECT_EQ(a.mask->GetPixel({ { 15, 15, 9 } }), 0.0f);
  EXPECT_EQ(a.mask->GetLargestPossibleRegion(), probability->GetLargestPossibleRegion());
  EXPECT_EQ(a.mask->GetOrigin(), probability->GetOrigin());
  EXPECT_EQ(a.mask->GetSpacing(), probability->GetSpacing());
  EXPECT_EQ(a.mask->GetDirection(), probability->GetDirection());

  const auto b = KeepClicked(probability, { PointOf(probability, { { 25, 10, 5 } }) });
  EXPECT_EQ(b.voxels, 660u);
  const auto both =
    KeepClicked(probability, { PointOf(probability, { { 10, 10, 5 } }), PointOf(probability, { { 25, 10, 5 } }) });
  EXPECT_EQ(both.voxels, 1260u);
  // At 0.3, C is object and joins A to B; D still touches only at a corner.
  const auto joined = KeepClicked(probability, { PointOf(probability, { { 10, 10, 5 } }) }, 0.3);
  EXPECT_EQ(joined.voxels, 1290u);
}

TEST(ClickedComponentImageFilter, AClickBesideTheObjectSeedsItsNearestVoxelWithinTheRadius)
{
  const auto probability = MakeProbability();
  // Two slices above A's top face: 5 mm away (slices are 2.5 mm apart).
  const auto beside = PointOf(probability, { { 10, 10, 10 } });
  const auto found = KeepClicked(probability, { beside }, 0.5, 10.0);
  EXPECT_EQ(found.voxels, 600u);
  EXPECT_FALSE(found.usedAll);
  // With a 3 mm radius nothing is near enough: every object voxel (A, B, D), and the filter says so.
  const auto all = KeepClicked(probability, { beside }, 0.5, 3.0);
  EXPECT_TRUE(all.usedAll);
  EXPECT_EQ(all.voxels, 600u + 660u + 18u);
  // A click outside the image altogether behaves the same way.
  auto far = PointOf(probability, { { 10, 10, 5 } });
  far[2] += 1000.0;
  EXPECT_TRUE(KeepClicked(probability, { far }).usedAll);
}

TEST(ClickedComponentImageFilter, EmptyWhenNothingClickedAnswersNothingInsteadOfEveryObject)
{
  const auto probability = MakeProbability();
  const auto beside = PointOf(probability, { { 10, 10, 10 } }); // 5 mm above A's top face
  // Within the radius the option changes nothing: A alone.
  const auto found = KeepClicked(probability, { beside }, 0.5, 10.0, true);
  EXPECT_EQ(found.voxels, 600u);
  EXPECT_FALSE(found.usedAll);
  // Beyond it: no object voxel at all (not A, B and D), on the input's grid, and the filter says why.
  const auto nothing = KeepClicked(probability, { beside }, 0.5, 3.0, true);
  EXPECT_TRUE(nothing.usedAll);
  EXPECT_EQ(nothing.voxels, 0u);
  EXPECT_EQ(nothing.mask->GetLargestPossibleRegion(), probability->GetLargestPossibleRegion());
  EXPECT_EQ(nothing.mask->GetBufferedRegion(), probability->GetLargestPossibleRegion());
}

TEST(ClickedComponentImageFilter, AnEmptyMaskStaysEmptyAndNoClickIsAnError)
{
  auto empty = DivAttentionTest::MakeObliqueImage<ImageType>({ { 12, 10, 8 } });
  empty->FillBuffer(0.1f);
  const auto result = KeepClicked(empty, { PointOf(empty, { { 5, 5, 4 } }) });
  EXPECT_EQ(result.voxels, 0u);
  EXPECT_TRUE(result.usedAll);

  auto filter = FilterType::New();
  filter->SetInput(empty);
  try
  {
    filter->Update();
    FAIL() << "no click must throw";
  }
  catch (const itk::ExceptionObject & error)
  {
    EXPECT_NE(std::string(error.GetDescription()).find("Clicks"), std::string::npos) << error.GetDescription();
  }
}
