// DivAttentionSegment --box: a box around the demo phantom's spleen (physical LPS corners, or voxel-index corners with
// --click-space index) gives its mask inside the box; a box outside the image, a flat box, NaN or a malformed box is a
// one-line error naming --box, a non-zero exit, and no output.
#include "divaCliTestSupport.h"
#include "itkImageFileReader.h"
#include "itkImageRegionConstIteratorWithIndex.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace
{
using FloatImage = itk::Image<float, 3>;
using MaskImage = itk::Image<uint8_t, 3>;
using LabelImage = itk::Image<uint16_t, 3>;

using itk::ReadImage;

class DivAttentionSegmentBox : public diva::clitest::BundledDemoTest
{
protected:
  void
  SetUp() override
  {
    SetUpDemo({ "phantom-labels.nii.gz", "label.txt" }, "segment-box");
    if (IsSkipped())
    {
      return;
    }
    std::ifstream(demo / "label.txt") >> label;
    labels = ReadImage<LabelImage>(demo / "phantom-labels.nii.gz");
    // The label's bounding box, in voxel indices.
    low.Fill(std::numeric_limits<itk::IndexValueType>::max());
    high.Fill(std::numeric_limits<itk::IndexValueType>::min());
    for (itk::ImageRegionConstIteratorWithIndex<LabelImage> it(labels, labels->GetBufferedRegion()); !it.IsAtEnd();
         ++it)
    {
      if (it.Get() == label)
      {
        for (unsigned int d = 0; d < 3; ++d)
        {
          low[d] = std::min(low[d], it.GetIndex()[d]);
          high[d] = std::max(high[d], it.GetIndex()[d]);
        }
      }
    }
  }
  /** The physical (LPS) corners of the label's bounding box's first and last voxels, as --box text. */
  std::string
  PhysicalBox() const
  {
    itk::Point<double, 3> a, b;
    labels->TransformIndexToPhysicalPoint(low, a);
    labels->TransformIndexToPhysicalPoint(high, b);
    std::ostringstream text;
    text << std::setprecision(17) << a[0] << "," << a[1] << "," << a[2] << "," << b[0] << "," << b[1] << "," << b[2];
    return text.str();
  }

  unsigned            label = 0;
  LabelImage::Pointer labels;
  itk::Index<3>       low, high;
};
} // namespace

TEST_F(DivAttentionSegmentBox, BoxAroundTheSpleenGivesItsMaskInsideTheBox)
{
  const fs::path mask = root / "box-mask.nii.gz", indexMask = root / "box-index-mask.nii.gz";
  const auto     result = Segment("--box " + PhysicalBox() + " --output " + mask.string());
  ASSERT_EQ(result.exitCode, 0) << result.output;
  const auto written = ReadImage<MaskImage>(mask);
  ASSERT_EQ(written->GetLargestPossibleRegion(), labels->GetLargestPossibleRegion());
  size_t both = 0, maskOnly = 0, labelOnly = 0, outside = 0;
  for (itk::ImageRegionConstIteratorWithIndex<MaskImage> it(written, written->GetBufferedRegion()); !it.IsAtEnd(); ++it)
  {
    const bool inMask = it.Get() != 0;
    const bool inLabel = labels->GetPixel(it.GetIndex()) == label;
    both += inMask && inLabel;
    maskOnly += inMask && !inLabel;
    labelOnly += !inMask && inLabel;
    bool inBox = true;
    for (unsigned int d = 0; d < 3; ++d)
    {
      inBox = inBox && it.GetIndex()[d] >= low[d] && it.GetIndex()[d] <= high[d];
    }
    outside += inMask && !inBox;
  }
  const double dice = 2.0 * both / std::max<double>(1.0, 2.0 * both + maskOnly + labelOnly);
  std::cout << "spleen from its bounding box: Dice " << dice << std::endl;
  EXPECT_EQ(outside, 0u) << "mask voxels outside the box";
  // Floor 0.75: the refinement alone on the box's crop reaches 0.82-0.87 on phantom spleens and kidneys
  // (ClickGuidedBox tests), the box itself filled 0.59-0.62 and a neighbouring organ or an empty mask below 0.2.
  EXPECT_GT(dice, 0.75) << result.output;

  // The same box as voxel indices (--click-space index): the same mask.
  std::ostringstream text;
  text << low[0] << "," << low[1] << "," << low[2] << "," << high[0] << "," << high[1] << "," << high[2];
  const auto byIndex = Segment("--click-space index --box " + text.str() + " --output " + indexMask.string());
  ASSERT_EQ(byIndex.exitCode, 0) << byIndex.output;
  const auto second = ReadImage<MaskImage>(indexMask);
  EXPECT_TRUE(std::equal(written->GetBufferPointer(),
                         written->GetBufferPointer() + written->GetBufferedRegion().GetNumberOfPixels(),
                         second->GetBufferPointer()))
    << "index corners and their physical points give different masks";
}

TEST_F(DivAttentionSegmentBox, BadBoxesAreClearErrorsAndWriteNothing)
{
  const fs::path mask = root / "bad-mask.nii.gz";
  const auto     expectFailure =
    [&](const std::string & arguments, const std::vector<std::string> & fragments, int exitCode = 1)
  {
    diva::clitest::ExpectFailure(DIVATTENTION_SEGMENT_EXE, "DivAttentionSegment",
                                 "--input " + (demo / "phantom-ct.nii.gz").string() + " --output " + mask.string() +
                                   " --threads 2 " + arguments,
                                 fragments, { mask }, exitCode);
  };
  std::ostringstream inside, outside, flat;
  inside << low[0] << "," << low[1] << "," << low[2] << ",";
  const auto size = labels->GetLargestPossibleRegion().GetSize();
  outside << inside.str() << size[0] + 10 << "," << high[1] << "," << high[2];
  flat << inside.str() << high[0] << "," << high[1] << "," << low[2];
  expectFailure("--click-space index --box " + outside.str(), { "--box", "lies outside the image" });
  expectFailure("--click-space index --box " + flat.str(), { "--box", "degenerate box", "image axis k" });
  expectFailure("--box 1,2,nan,4,5,6", { "--box", "not a finite number" });
  expectFailure("--box 1,2,3,4,5", { "--box", "is not six numbers" });
  // Neither a click nor a box: a usage error naming --click.
  expectFailure("", { "click" }, 2);
}

// The Slicer CLI description offers the box as a double vector (Slicer passes it as "x0,y0,z0,x1,y1,z1", which --box
// reads).
TEST(DivAttentionSegmentBoxXml, TheSlicerDescriptionHasTheBox)
{
  const auto result = diva::clitest::Run(DIVATTENTION_SEGMENT_EXE, "--xml");
  ASSERT_EQ(result.exitCode, 0) << result.output;
  const auto box = result.output.find("<longflag>box</longflag>");
  ASSERT_NE(box, std::string::npos) << result.output;
  const auto vector = result.output.rfind("<double-vector>", box);
  ASSERT_NE(vector, std::string::npos);
  EXPECT_EQ(result.output.find("</double-vector>", vector), result.output.find("</double-vector>", box))
    << "the box flag is not inside a <double-vector> element";
}
