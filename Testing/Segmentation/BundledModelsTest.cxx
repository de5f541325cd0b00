// The bundled models (Models/README.md) load and segment a phantom they were never trained on.
#include "divaModelFile.h"
#include "itkCTPhantomGenerator.h"
#include "itkClickGuidedSegmentationFilter.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkLinearInterpolateImageFunction.h"

#include "DivAttentionTestDevice.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
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
/** Stage 1 alone, as DivAttentionEvaluate's first column: the coarse probability, linear on the CT's grid, >= 0.5. */
MaskImageType::Pointer
CoarseOnly(const itk::Image<float, 3> * coarse, const CTImageType * ct)
{
  auto mask = MaskImageType::New();
  mask->CopyInformation(ct);
  mask->SetRegions(ct->GetLargestPossibleRegion());
  mask->Allocate();
  auto interpolator = itk::LinearInterpolateImageFunction<itk::Image<float, 3>, double>::New();
  interpolator->SetInputImage(coarse);
  for (itk::ImageRegionIteratorWithIndex<MaskImageType> it(mask, mask->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
  {
    itk::Point<double, 3> point;
    ct->TransformIndexToPhysicalPoint(it.GetIndex(), point);
    const auto index = coarse->TransformPhysicalPointToContinuousIndex<double>(point);
    it.Set(interpolator->IsInsideBuffer(index) && interpolator->EvaluateAtContinuousIndex(index) >= 0.5 ? 1 : 0);
  }
  return mask;
}

/** Trivial baseline on the pipeline's own crop: its voxels whose HU lies within two standard deviations of the
 * object's own mean HU (an intensity threshold told the answer's statistics, inside the box the pipeline chose). */
MaskImageType::Pointer
ThresholdInCrop(const CTImageType *                             ct,
                const itk::CTPhantomGenerator::LabelImageType * labels,
                uint8_t                                         label,
                const itk::Image<float, 3> *                    crop)
{
  double     sum = 0.0, squares = 0.0, count = 0.0;
  const auto n = ct->GetBufferedRegion().GetNumberOfPixels();
  for (size_t i = 0; i < n; ++i)
  {
    if (labels->GetBufferPointer()[i] == label)
    {
      const double value = ct->GetBufferPointer()[i];
      sum += value;
      squares += value * value;
      count += 1.0;
    }
  }
  const double mean = sum / count;
  const double deviation = std::sqrt(std::max(0.0, squares / count - mean * mean));
  auto         mask = MaskImageType::New();
  mask->CopyInformation(ct);
  mask->SetRegions(ct->GetLargestPossibleRegion());
  mask->Allocate();
  const auto size = crop->GetLargestPossibleRegion().GetSize();
  for (itk::ImageRegionIteratorWithIndex<MaskImageType> it(mask, mask->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
  {
    itk::Point<double, 3> point;
    ct->TransformIndexToPhysicalPoint(it.GetIndex(), point);
    const auto index = crop->TransformPhysicalPointToContinuousIndex<double>(point);
    bool       inside = true;
    for (unsigned int a = 0; a < 3; ++a)
    {
      inside = inside && index[a] >= -0.5 && index[a] <= size[a] - 0.5;
    }
    it.Set(inside && std::abs(ct->GetPixel(it.GetIndex()) - mean) <= 2.0 * deviation ? 1 : 0);
  }
  return mask;
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

// Every bundled UNETR file says in its header which transformer blocks its skips read (Method.md: the skip taps),
// and loads with those taps: the files trained before the taps followed MONAI's rule say "early", and must not run
// with MONAI's taps.
TEST(BundledModels, UnetrFilesRecordTheSkipTapsTheyWereTrainedWith)
{
  std::size_t unetrFiles = 0;
  for (const auto & entry : std::filesystem::directory_iterator(ModelDirectory))
  {
    if (entry.path().extension() != ".pt")
    {
      continue;
    }
    std::ifstream stream(entry.path(), std::ios::binary);
    std::string   frame(20, '\0');
    ASSERT_TRUE(stream.read(frame.data(), 20)) << entry.path();
    uint64_t headerLength = 0;
    std::memcpy(&headerLength, frame.data() + 12, sizeof(headerLength)); // little-endian (Method.md's layout)
    ASSERT_LT(headerLength, 1u << 24) << entry.path();
    std::string header(headerLength, '\0');
    ASSERT_TRUE(stream.read(header.data(), static_cast<std::streamsize>(headerLength))) << entry.path();
    if (header.find("\"architecture\":\"UNETR\"") == std::string::npos)
    {
      continue;
    }
    ++unetrFiles;
    const bool early = header.find("\"skip_taps\":\"early\"") != std::string::npos;
    const bool monai = header.find("\"skip_taps\":\"monai\"") != std::string::npos;
    ASSERT_TRUE(early != monai) << entry.path() << ": no skip_taps recorded";
    const auto loaded = diva::LoadModel(entry.path().string());
    EXPECT_EQ(loaded.network->GetSettings().at("skip_taps"), early ? "early" : "monai") << entry.path();
  }
  EXPECT_GE(unetrFiles, 2u); // the default refinement and its plain twin
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
    const auto stage1 =
      Compare(CoarseOnly(filter->GetCoarseProbability(), phantom->GetCT()), phantom->GetLabels(), object->label);
    const auto baseline =
      Compare(ThresholdInCrop(phantom->GetCT(), phantom->GetLabels(), object->label, filter->GetCrop()),
              phantom->GetLabels(), object->label);
    std::cout << organ << ": Dice " << overlap.dice << ", recall " << overlap.recall << ", precision "
              << overlap.precision << "; stage 1 alone " << stage1.dice << "; threshold-in-crop baseline "
              << baseline.dice << std::endl;
    // What the bundled refinement adds. Over the baseline: an intensity threshold told the object's own HU (mean +-
    // 2 SD) inside the pipeline's crop must stay at least 0.2 below, or the Dice threshold below means nothing.
    // Over stage 1: nothing on phantom organs (held out, Documentation/Results.md: stage 1 alone 0.888, the pipeline
    // 0.873, per object -0.04 to +0.04; phantom organs are smooth, so stage 1's 3 mm mask already follows them). The
    // refinement decides only within half a coarse voxel of stage 1's border (RefinementBand), and must not lower
    // stage 1 by more than 0.06 there (the measured spread plus margin); without the band it did by 0.12-0.30 per
    // organ.
    EXPECT_GE(overlap.dice, baseline.dice + 0.2) << organ;
    EXPECT_GE(overlap.dice, stage1.dice - 0.06) << organ << ": the refinement lowers stage 1's mask";
    // Stage 1's mask is the object (a broken coarse model or click map scores near 0).
    EXPECT_GT(stage1.dice, 0.7) << organ;
    // The pipeline's own floor: an empty mask, a mask of a neighbouring organ or a box around the click all score
    // below 0.2; a broken model file or pipeline scores near 0.
    EXPECT_GT(overlap.dice, 0.7) << organ;
    EXPECT_GT(overlap.recall, 0.6) << organ; // the object under the click is found
    const auto index = filter->GetOutput()->TransformPhysicalPointToIndex(object->click);
    EXPECT_EQ(filter->GetOutput()->GetPixel(index), 1) << organ << ": the clicked voxel is in the mask";
  }
}
