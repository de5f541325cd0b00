// The review picture: three orthogonal panels through the click, the outline where the mask is, the click marked,
// an attention column when a map is given.
#include "itkCTPhantomGenerator.h"
#include "itkCastImageFilter.h"
#include "itkImageFileReader.h"
#include "itkSegmentationPreview.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace
{
using Preview = itk::SegmentationPreview;

struct Scene
{
  Preview::CTImageType::Pointer   ct;
  Preview::MaskImageType::Pointer mask;
  Preview::PointType              click;
};

Scene
MakeScene()
{
  auto generator = itk::CTPhantomGenerator::New();
  generator->SetSize(itk::CTPhantomGenerator::SizeType{ { 64, 52, 36 } });
  itk::CTPhantomGenerator::SpacingType spacing;
  spacing[0] = 6.0;
  spacing[1] = 6.0;
  spacing[2] = 7.5;
  generator->SetSpacing(spacing);
  generator->SetNumberOfOrganLesions(0);
  generator->SetNumberOfNodules(0);
  generator->Update();
  Scene scene;
  auto  cast = itk::CastImageFilter<itk::CTPhantomGenerator::CTImageType, Preview::CTImageType>::New();
  cast->SetInput(generator->GetCT());
  cast->Update();
  scene.ct = cast->GetOutput();
  scene.mask = Preview::MaskImageType::New();
  scene.mask->CopyInformation(generator->GetLabels());
  scene.mask->SetRegions(generator->GetLabels()->GetLargestPossibleRegion());
  scene.mask->Allocate();
  const auto * labels = generator->GetLabels()->GetBufferPointer();
  for (size_t i = 0; i < scene.mask->GetLargestPossibleRegion().GetNumberOfPixels(); ++i)
  {
    scene.mask->GetBufferPointer()[i] = labels[i] == itk::CTPhantomGenerator::LabelLiver ? 1 : 0;
  }
  scene.click = generator->GetObjects().front().click; // the liver
  return scene;
}

size_t
CountColour(const Preview::PreviewImageType * image,
            unsigned                          r,
            unsigned                          g,
            unsigned                          b,
            unsigned                          columnFrom,
            unsigned                          columnTo)
{
  size_t     count = 0;
  const auto size = image->GetLargestPossibleRegion().GetSize();
  for (unsigned y = 0; y < size[1]; ++y)
  {
    for (unsigned x = columnFrom; x < std::min<unsigned>(columnTo, size[0]); ++x)
    {
      const auto p = image->GetPixel({ { x, y } });
      count += (p[0] == r && p[1] == g && p[2] == b) ? 1 : 0;
    }
  }
  return count;
}
} // namespace

TEST(SegmentationPreview, ThreePanelsWithOutlineAndClick)
{
  const Scene scene = MakeScene();
  const auto  preview = Preview::Render(scene.ct, scene.mask, nullptr, scene.click, {});
  const auto  size = preview->GetLargestPossibleRegion().GetSize();
  // Square pixels of the smallest spacing (6 mm): the axial panel is the x extent wide, and the three panels stack.
  EXPECT_EQ(size[0], 64u);
  EXPECT_GT(size[1], 52u + 2u * 36u);                            // y extent + two z extents of 7.5 mm shown at 6 mm
  EXPECT_GT(CountColour(preview, 255, 30, 30, 0, size[0]), 50u); // the liver's outline
  EXPECT_GT(CountColour(preview, 255, 230, 0, 0, size[0]), 10u); // the click's crosses
}

TEST(SegmentationPreview, AttentionColumnAndPngFile)
{
  const Scene scene = MakeScene();
  auto        attention = Preview::CTImageType::New();
  attention->CopyInformation(scene.ct);
  attention->SetRegions(scene.ct->GetLargestPossibleRegion());
  attention->Allocate();
  attention->FillBuffer(0.25f);
  const auto preview = Preview::Render(scene.ct, scene.mask, attention, scene.click, {});
  EXPECT_EQ(preview->GetLargestPossibleRegion().GetSize()[0], 128u);
  // A constant map shows at full brightness (scaled to its maximum) in the second column.
  EXPECT_GT(CountColour(preview, 255, 255, 255, 64, 128), 1000u);

  const std::string path = (std::filesystem::temp_directory_path() / "divattention-preview.png").string();
  Preview::Write(path, scene.ct, scene.mask, attention, scene.click, {});
  auto reader = itk::ImageFileReader<Preview::PreviewImageType>::New();
  reader->SetFileName(path);
  reader->Update();
  EXPECT_EQ(reader->GetOutput()->GetLargestPossibleRegion().GetSize(), preview->GetLargestPossibleRegion().GetSize());
  EXPECT_THROW(Preview::Render(nullptr, scene.mask, nullptr, scene.click, {}), itk::ExceptionObject);
}
