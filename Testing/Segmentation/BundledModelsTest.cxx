// The bundled models (Models/README.md) load and segment a phantom they were never trained on.
#include "divaModelFile.h"
#include "itkCTPhantomGenerator.h"
#include "itkClickGuidedSegmentationFilter.h"

#include "DivAttentionTestDevice.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>

namespace
{
using CTImageType = itk::CTPhantomGenerator::CTImageType;
using MaskImageType = itk::Image<uint8_t, 3>;

const std::filesystem::path ModelDirectory = DIVATTENTION_BUNDLED_MODEL_DIR;

// Seeds of the bundled models' data: 202600-202615 (training), 202700-202707 (held out), 777 (the README's demo).
constexpr uint64_t FreshSeed = 4242;

struct Overlap
{
  double dice = 0.0;
  double recall = 0.0;
  double precision = 0.0;
};

Overlap
Compare(const MaskImageType * mask, const itk::CTPhantomGenerator::LabelImageType * labels, uint8_t label)
{
  size_t     both = 0, maskOnly = 0, labelOnly = 0;
  const auto count = mask->GetBufferedRegion().GetNumberOfPixels();
  for (size_t i = 0; i < count; ++i)
  {
    const bool inMask = mask->GetBufferPointer()[i] != 0;
    const bool inLabel = labels->GetBufferPointer()[i] == label;
    both += inMask && inLabel;
    maskOnly += inMask && !inLabel;
    labelOnly += !inMask && inLabel;
  }
  Overlap o;
  o.dice = 2.0 * both / std::max<double>(1.0, 2.0 * both + maskOnly + labelOnly);
  o.recall = both / std::max<double>(1.0, both + labelOnly);
  o.precision = both / std::max<double>(1.0, both + maskOnly);
  return o;
}
} // namespace

TEST(BundledModels, DescribeThemselves)
{
  const auto coarse = diva::LoadModel((ModelDirectory / "coarse-munet-small.pt").string());
  EXPECT_EQ(coarse.description.role, "coarse");
  EXPECT_EQ(coarse.description.inputChannels.size(), 2u);
  EXPECT_NE(coarse.description.provenance.trainingCommand.find("DivAttentionTrain"), std::string::npos);
  for (const char * name : { "refine-unetr-small-divattention.pt", "refine-unetr-small.pt",
                             "refine-espnet-small-divattention.pt", "refine-espnet-small.pt" })
  {
    const auto refine = diva::LoadModel((ModelDirectory / name).string());
    EXPECT_EQ(refine.description.role, "refine") << name;
    EXPECT_EQ(refine.description.preset, "small") << name;
    EXPECT_EQ(refine.description.inputChannels.size(), 1u) << name;
    const bool divAttention = std::string(name).find("divattention") != std::string::npos;
    EXPECT_EQ(refine.description.provenance.trainingCommand.find("--no-div-attention") == std::string::npos,
              divAttention)
      << name;
  }
}

TEST(BundledModels, SegmentAFreshPhantom)
{
  // A phantom of the training distribution (default realism) on a coarser grid than training (1.5 mm in-plane, 4 mm
  // slices) to keep the test short; seed 4242 was never used for the bundled models' data.
  auto phantom = itk::CTPhantomGenerator::New();
  phantom->SetSeed(FreshSeed);
  phantom->SetSize({ { 240, 196, 56 } });
  itk::CTPhantomGenerator::SpacingType spacing;
  spacing[0] = 1.5;
  spacing[1] = 1.5;
  spacing[2] = 4.0;
  phantom->SetSpacing(spacing);
  phantom->Update();

  auto coarse =
    std::make_shared<diva::LoadedModel>(diva::LoadModel((ModelDirectory / "coarse-munet-small.pt").string()));
  auto refine = std::make_shared<diva::LoadedModel>(
    diva::LoadModel((ModelDirectory / "refine-unetr-small-divattention.pt").string()));
  for (const char * organ : { "spleen", "kidney_left" })
  {
    const itk::CTPhantomGenerator::PhantomObject * object = nullptr;
    for (const auto & candidate : phantom->GetObjects())
    {
      object = candidate.name == organ ? &candidate : object;
    }
    ASSERT_NE(object, nullptr) << organ;
    using FilterType = itk::ClickGuidedSegmentationFilter<CTImageType, MaskImageType>;
    auto filter = FilterType::New();
    filter->SetInput(phantom->GetCT());
    filter->SetCoarseModel(coarse);
    filter->SetRefineModel(refine);
    filter->SetClicks({ object->click });
    filter->SetDevice(diva::testing::TestDeviceName());
    filter->Update();
    const auto overlap = Compare(filter->GetOutput(), phantom->GetLabels(), object->label);
    std::cout << organ << ": Dice " << overlap.dice << ", recall " << overlap.recall << ", precision "
              << overlap.precision << std::endl;
    // Threshold 0.35: these models are under-trained (4 minutes on one GPU; Models/README.md) and over-segment
    // (recall ~0.8-1.0, precision ~0.3-0.5 on fresh phantoms, whole-pipeline Dice 0.45-0.67 measured on seeds 777
    // and 4242 at full resolution). An empty mask, a mask of a neighbouring organ or a box around the click all score
    // below 0.2; a broken model file or pipeline scores near 0.
    EXPECT_GT(overlap.dice, 0.35) << organ;
    EXPECT_GT(overlap.recall, 0.6) << organ; // the object under the click is found
    const auto index = filter->GetOutput()->TransformPhysicalPointToIndex(object->click);
    EXPECT_EQ(filter->GetOutput()->GetPixel(index), 1) << organ << ": the clicked voxel is in the mask";
  }
}
