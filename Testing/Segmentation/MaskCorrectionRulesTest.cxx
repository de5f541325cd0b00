// The correction rules of MaskCorrectionSupport on small synthetic images (Documentation/Pipeline.md, "Corrections"):
// what a positive correction click keeps of the pipeline's component at it. Each case is one where adding the whole
// component (the rule before PositiveCorrection) lowers the Dice against the object the click was in.
#include "itkImage.h"
#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkMaskCorrectionSupport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <vector>

namespace
{
using ImageType = itk::Image<float, 3>;
using MaskType = itk::Image<uint8_t, 3>;
using IndexType = itk::Index<3>;
using Predicate = std::function<bool(const IndexType &)>;

itk::Vector<double, 3>
Spacing(double x, double y, double z)
{
  itk::Vector<double, 3> spacing;
  spacing[0] = x;
  spacing[1] = y;
  spacing[2] = z;
  return spacing;
}

template<typename TImage>
typename TImage::Pointer
Make(const itk::Size<3> & size, const itk::Vector<double, 3> & spacing)
{
  auto image = TImage::New();
  image->SetRegions(size);
  image->SetSpacing(spacing);
  image->Allocate(true);
  return image;
}

template<typename TImage>
void
Paint(TImage * image, const Predicate & inside, typename TImage::PixelType value)
{
  for (itk::ImageRegionIteratorWithIndex<TImage> it(image, image->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
  {
    if (inside(it.GetIndex()))
    {
      it.Set(value);
    }
  }
}

// The component a pipeline would return at the click: every voxel of `inside`, as buffer offsets.
itk::MaskCorrectionSupport::OffsetListType
Component(const MaskType * mask, const Predicate & inside)
{
  itk::MaskCorrectionSupport::OffsetListType offsets;
  for (itk::ImageRegionConstIteratorWithIndex<MaskType> it(mask, mask->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
  {
    if (inside(it.GetIndex()))
    {
      offsets.push_back(static_cast<itk::SizeValueType>(mask->ComputeOffset(it.GetIndex())));
    }
  }
  return offsets;
}

// Dice of `mask` plus `added` against `reference`.
double
DiceAfter(const MaskType * mask, const itk::MaskCorrectionSupport::OffsetListType & added, const Predicate & reference)
{
  std::vector<uint8_t> voxels(mask->GetBufferPointer(),
                              mask->GetBufferPointer() + mask->GetBufferedRegion().GetNumberOfPixels());
  for (const auto offset : added)
  {
    voxels[offset] = 1;
  }
  double both = 0.0, inMask = 0.0, inReference = 0.0;
  for (itk::ImageRegionConstIteratorWithIndex<MaskType> it(mask, mask->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
  {
    const bool m = voxels[static_cast<size_t>(mask->ComputeOffset(it.GetIndex()))] != 0;
    const bool r = reference(it.GetIndex());
    both += m && r;
    inMask += m;
    inReference += r;
  }
  return 2.0 * both / (inMask + inReference);
}

// Everything of the whole-component rule: the component's voxels that are background in the mask.
itk::MaskCorrectionSupport::OffsetListType
WholeComponent(const MaskType * mask, const itk::MaskCorrectionSupport::OffsetListType & component)
{
  itk::MaskCorrectionSupport::OffsetListType added;
  for (const auto offset : component)
  {
    if (mask->GetBufferPointer()[offset] == 0)
    {
      added.push_back(offset);
    }
  }
  return added;
}
} // namespace

// The object (60 HU) half in the mask; the pipeline's component at a click in its missed half also holds a large
// structure of another intensity (300 HU, bone-like) that touches it. The correction adds the object's missed part
// near the click and none of the other structure; the whole component would lower the Dice (0.667 -> 0.4).
TEST(MaskCorrectionRules, PositiveCorrectionStopsAtAnIntensityEdge)
{
  const itk::Size<3> size{ { 40, 40, 40 } };
  auto               image = Make<ImageType>(size, Spacing(1.0, 1.0, 1.0));
  image->FillBuffer(-100.0f);
  const Predicate object = [](const IndexType & i)
  { return i[0] >= 5 && i[0] < 25 && i[1] >= 10 && i[1] < 30 && i[2] >= 10 && i[2] < 30; };
  const Predicate other = [](const IndexType & i) { return i[0] >= 25; };
  Paint<ImageType>(image, object, 60.0f);
  Paint<ImageType>(image, other, 300.0f);
  auto mask = Make<MaskType>(size, Spacing(1.0, 1.0, 1.0));
  Paint<MaskType>(
    mask, [&](const IndexType & i) { return object(i) && i[0] < 15; }, 1);
  const auto      component = Component(mask, [&](const IndexType & i) { return object(i) || other(i); });
  const IndexType click{ { 20, 20, 20 } };

  const double before = DiceAfter(mask, {}, object);
  const auto   added = itk::MaskCorrectionSupport::PositiveCorrection(
      image.GetPointer(), mask.GetPointer(), component, click, itk::MaskCorrectionSupport::LikeIntensityK,
      itk::MaskCorrectionSupport::LikeIntensityMinimumHalfWidth);
  size_t ofOther = 0;
  for (const auto offset : added)
  {
    ofOther += other(mask->ComputeIndex(static_cast<itk::OffsetValueType>(offset)));
    EXPECT_EQ(mask->GetBufferPointer()[offset], 0) << "only background voxels are added";
  }
  EXPECT_EQ(ofOther, 0u) << "nothing across the intensity edge";
  EXPECT_GT(added.size(), 1000u) << "the object's missed part near the click joins";
  const double after = DiceAfter(mask, added, object);
  const double whole = DiceAfter(mask, WholeComponent(mask, component), object);
  std::cout << "Dice " << before << " -> " << after << " (whole component: " << whole << ")" << std::endl;
  EXPECT_LT(whole, before) << "the case must be one where the whole component lowers the Dice";
  EXPECT_GT(after, before + 0.1);
}

// A same-intensity spill far beyond the click: the object (a box, anisotropic voxels 1 x 1 x 2 mm) has a missed part
// 6 mm from the mask, and the component runs on through tissue of the same intensity. Only voxels within twice the
// click's distance to the mask (physical mm) join.
TEST(MaskCorrectionRules, PositiveCorrectionIsBoundedByTheClicksDistanceToTheMask)
{
  const itk::Size<3>           size{ { 80, 40, 20 } };
  const itk::Vector<double, 3> spacing = Spacing(1.0, 1.0, 2.0);
  auto                         image = Make<ImageType>(size, spacing);
  image->FillBuffer(40.0f);
  const Predicate object = [](const IndexType & i)
  { return i[0] >= 5 && i[0] < 25 && i[1] >= 10 && i[1] < 30 && i[2] >= 5 && i[2] < 15; };
  auto mask = Make<MaskType>(size, spacing);
  Paint<MaskType>(
    mask, [&](const IndexType & i) { return object(i) && i[0] < 14; }, 1);
  // The component: the object and a slab of the same tissue beyond it.
  const auto      component = Component(mask, [&](const IndexType & i) { return object(i) || i[0] >= 25; });
  const IndexType click{ { 19, 20, 10 } }; // 6 mm from the mask's last column (x = 13)

  EXPECT_DOUBLE_EQ(itk::MaskCorrectionSupport::DistanceToMask(mask.GetPointer(), click, 100.0), 6.0);
  EXPECT_TRUE(std::isinf(itk::MaskCorrectionSupport::DistanceToMask(mask.GetPointer(), click, 5.0)))
    << "nothing within the limit";
  EXPECT_DOUBLE_EQ(itk::MaskCorrectionSupport::DistanceToMask(mask.GetPointer(), { { 10, 20, 10 } }, 100.0), 0.0);
  // Along z the steps are 2 mm: a voxel 3 slices above the mask is 6 mm away.
  EXPECT_DOUBLE_EQ(itk::MaskCorrectionSupport::DistanceToMask(mask.GetPointer(), { { 10, 20, 17 } }, 100.0), 6.0);

  const double before = DiceAfter(mask, {}, object);
  const auto   added = itk::MaskCorrectionSupport::PositiveCorrection(
      image.GetPointer(), mask.GetPointer(), component, click, itk::MaskCorrectionSupport::LikeIntensityK,
      itk::MaskCorrectionSupport::LikeIntensityMinimumHalfWidth);
  size_t beyond = 0;
  for (const auto offset : added)
  {
    const auto index = mask->ComputeIndex(static_cast<itk::OffsetValueType>(offset));
    double     squared = 0.0;
    for (unsigned a = 0; a < 3; ++a)
    {
      const double d = (index[a] - click[a]) * spacing[a];
      squared += d * d;
    }
    beyond += squared > 12.0 * 12.0 + 1e-9;
  }
  EXPECT_EQ(beyond, 0u) << "nothing beyond 2 x 6 mm of the click";
  const double after = DiceAfter(mask, added, object);
  const double whole = DiceAfter(mask, WholeComponent(mask, component), object);
  std::cout << "Dice " << before << " -> " << after << " (whole component: " << whole << ")" << std::endl;
  EXPECT_LT(whole, before) << "the case must be one where the whole component lowers the Dice";
  EXPECT_GT(after, before + 0.05);
}

// On an empty mask (a first click) the whole component is the answer; an empty component adds nothing.
TEST(MaskCorrectionRules, PositiveCorrectionOnAnEmptyMaskKeepsTheComponent)
{
  const itk::Size<3> size{ { 30, 30, 30 } };
  auto               image = Make<ImageType>(size, Spacing(1.0, 1.0, 1.0));
  const Predicate    inside = [](const IndexType & i) { return i[0] >= 3 && i[0] < 27 && i[1] >= 3 && i[1] < 10; };
  Paint<ImageType>(image, inside, 50.0f);
  Paint<ImageType>(
    image, [](const IndexType & i) { return i[0] >= 20; }, 500.0f);
  auto       mask = Make<MaskType>(size, Spacing(1.0, 1.0, 1.0));
  const auto component = Component(mask, inside);
  const auto added = itk::MaskCorrectionSupport::PositiveCorrection(
    image.GetPointer(), mask.GetPointer(), component, { { 5, 5, 5 } }, itk::MaskCorrectionSupport::LikeIntensityK,
    itk::MaskCorrectionSupport::LikeIntensityMinimumHalfWidth);
  EXPECT_EQ(added, component);
  EXPECT_TRUE(itk::MaskCorrectionSupport::PositiveCorrection(image.GetPointer(), mask.GetPointer(), {}, { { 5, 5, 5 } },
                                                             itk::MaskCorrectionSupport::LikeIntensityK,
                                                             itk::MaskCorrectionSupport::LikeIntensityMinimumHalfWidth)
                .empty());
}

// A thin structure (a 4 x 4 voxel tube of 20 HU in 400 HU, as the spinal cord in its canal) that the mask holds up to
// z = 19: a correction click in its missed stretch 7 mm past the mask, where the pipeline adds nothing, takes the
// like-intensity stretch within 2 x 7 mm (CorrectionLikeIntensityRadius) instead of a 5 mm ball of it. A click farther
// than 3 x 5 / 2 mm from the mask, on an edge between tissues (a band wider than 150 HU), or on an empty mask keeps 5
// mm.
TEST(MaskCorrectionRules, CorrectionLikeIntensityRadiusGrowsWithTheClicksDistanceToTheMask)
{
  const itk::Size<3>           size{ { 20, 20, 80 } };
  const itk::Vector<double, 3> spacing = Spacing(1.0, 1.0, 1.0);
  auto                         image = Make<ImageType>(size, spacing);
  image->FillBuffer(400.0f);
  const Predicate tube = [](const IndexType & i) { return i[0] >= 8 && i[0] < 12 && i[1] >= 8 && i[1] < 12; };
  Paint<ImageType>(image, tube, 20.0f);
  auto             mask = Make<MaskType>(size, spacing);
  constexpr double radius = itk::MaskCorrectionSupport::LikeIntensityDefaultRadius;
  auto             radiusAt = [&](const IndexType & click)
  {
    return itk::MaskCorrectionSupport::CorrectionLikeIntensityRadius(image.GetPointer(), mask.GetPointer(), click,
                                                                     radius);
  };
  const IndexType click{ { 9, 9, 26 } };
  EXPECT_DOUBLE_EQ(radiusAt(click), radius) << "an empty mask: no distance to it";
  Paint<MaskType>(
    mask, [&](const IndexType & i) { return tube(i) && i[2] < 20; }, 1);

  EXPECT_DOUBLE_EQ(radiusAt(click), 14.0) << "7 mm from the mask";
  EXPECT_DOUBLE_EQ(radiusAt({ { 9, 9, 21 } }), radius) << "2 mm from the mask: 2 x 2 mm is less than the radius";
  EXPECT_DOUBLE_EQ(radiusAt({ { 9, 9, 28 } }), radius) << "9 mm from the mask: beyond 7.5 mm, a new object";
  EXPECT_DOUBLE_EQ(radiusAt({ { 8, 8, 26 } }), radius) << "on the tube's edge: the band spans 20 and 400 HU";

  const double before = DiceAfter(mask, {}, tube);
  const auto   small = itk::MaskCorrectionSupport::LikeIntensityRegion(
      image.GetPointer(), mask.GetPointer(), click, radius, itk::MaskCorrectionSupport::LikeIntensityK,
      itk::MaskCorrectionSupport::LikeIntensityMinimumHalfWidth);
  const auto added = itk::MaskCorrectionSupport::LikeIntensityRegion(
    image.GetPointer(), mask.GetPointer(), click, radiusAt(click), itk::MaskCorrectionSupport::LikeIntensityK,
    itk::MaskCorrectionSupport::LikeIntensityMinimumHalfWidth);
  size_t outside = 0, low = 80, high = 0;
  for (const auto offset : added)
  {
    const auto index = mask->ComputeIndex(static_cast<itk::OffsetValueType>(offset));
    outside += !tube(index);
    low = std::min<size_t>(low, static_cast<size_t>(index[2]));
    high = std::max<size_t>(high, static_cast<size_t>(index[2]));
  }
  EXPECT_EQ(outside, 0u) << "nothing of the other tissue";
  EXPECT_EQ(low, 20u) << "the stretch from the mask's end";
  EXPECT_EQ(high, 40u) << "to 14 mm past the click along the tube";
  const double after = DiceAfter(mask, added, tube), afterSmall = DiceAfter(mask, small, tube);
  std::cout << "Dice " << before << " -> " << after << " (5 mm: " << afterSmall << ")" << std::endl;
  EXPECT_GT(after, afterSmall + 0.05);
}

// A negative click inside a first click's like-intensity answer removes every voxel of it at least as far from the
// answer's seed as the negative click (physical distance: the z spacing is 3 mm here), keeps the nearer ones, and
// nothing of the mask outside the answer; nothing when a positive click's voxel lies in what would go, or when the
// negative click is the seed itself.
TEST(MaskCorrectionRules, LikeIntensityRadialCutRemovesTheAnswerFromTheNegativeClicksDistanceOn)
{
  const auto      spacing = Spacing(1.0, 1.0, 3.0);
  auto            mask = Make<MaskType>({ { 41, 41, 15 } }, spacing);
  const IndexType seed{ { 20, 20, 7 } };
  auto            distance = [&](const IndexType & a, const IndexType & b)
  {
    double squared = 0.0;
    for (unsigned int d = 0; d < 3; ++d)
    {
      const double step = (a[d] - b[d]) * spacing[d];
      squared += step * step;
    }
    return std::sqrt(squared);
  };
  // The answer: a ball of 15 mm around the seed; beside it, another object of the mask (x >= 38) the cut leaves alone.
  const Predicate inAnswer = [&](const IndexType & at) { return distance(at, seed) <= 15.0 && at[0] < 38; };
  const Predicate other = [](const IndexType & at) { return at[0] >= 38; };
  Paint(mask.GetPointer(), inAnswer, 1);
  Paint(mask.GetPointer(), other, 1);
  const auto      answer = Component(mask.GetPointer(), inAnswer);
  const IndexType negative{ { 20, 20, 10 } }; // 9 mm from the seed along z (3 slices)
  const auto      removed =
    itk::MaskCorrectionSupport::LikeIntensityRadialCut(mask.GetPointer(), answer, seed, negative, { seed });
  std::vector<bool> gone(mask->GetBufferedRegion().GetNumberOfPixels(), false);
  for (const auto offset : removed)
  {
    gone[offset] = true;
  }
  size_t wrong = 0, kept = 0;
  for (itk::ImageRegionConstIteratorWithIndex<MaskType> it(mask, mask->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
  {
    const bool shouldGo = inAnswer(it.GetIndex()) && distance(it.GetIndex(), seed) >= 9.0 - 1e-9;
    wrong += shouldGo != gone[mask->ComputeOffset(it.GetIndex())] ? 1 : 0;
    kept += inAnswer(it.GetIndex()) && !shouldGo ? 1 : 0;
  }
  EXPECT_EQ(wrong, 0u);
  EXPECT_GT(kept, 100u);
  EXPECT_GT(removed.size(), kept) << "most of a 15 mm ball lies beyond 9 mm";
  // A positive click's voxel 12 mm out along x: the user said it is object, so nothing goes.
  const IndexType positive{ { 32, 20, 7 } };
  EXPECT_TRUE(
    itk::MaskCorrectionSupport::LikeIntensityRadialCut(mask.GetPointer(), answer, seed, negative, { seed, positive })
      .empty());
  // A positive click outside the answer (on the other object) does not stop the cut.
  EXPECT_EQ(itk::MaskCorrectionSupport::LikeIntensityRadialCut(mask.GetPointer(), answer, seed, negative,
                                                               { seed, IndexType{ { 39, 20, 7 } } })
              .size(),
            removed.size());
  EXPECT_TRUE(itk::MaskCorrectionSupport::LikeIntensityRadialCut(mask.GetPointer(), answer, seed, seed, {}).empty());
}
