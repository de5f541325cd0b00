// One path for training and inference (Documentation/Training.md, "Samples"): stage-1 windows placed as
// CoarseSegmentationFilter places them, stage-2 crops placed by the stage-1 pipeline's own filters (with the
// reference as a counted fallback), and the click encoding and crop recorded in the model file.
#include "DivAttentionTinyTraining.h"
#include "divaMUnet.h"
#include "divaModelFile.h"
#include "divaTrainingOptions.h"
#include "itkImageTensorBridge.h"
#include "itkTrainingSampleSource.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>

namespace
{
// The tiny phantoms, nothing written: only samples are made.
diva::TrainingOptions
OnePathOptions(int stage)
{
  return diva::testing::TinyTrainingOptions(stage, "");
}

/** A stage-1 model whose every head says "foreground" (+10) or "background" (-10) everywhere: 32^3 windows at
 * 12 mm (so that a few windows cover a phantom). */
std::shared_ptr<diva::LoadedModel>
ConstantCoarseModel(double logit)
{
  auto model = std::make_shared<diva::LoadedModel>();
  model->network = std::make_shared<diva::MUnetImpl>(diva::MUnetOptions::Preset("small").in_channels(2));
  torch::NoGradGuard noGrad;
  for (auto & item : model->network->named_parameters())
  {
    if (item.key().find("seg_layers") != std::string::npos || item.key().find("head") != std::string::npos)
    {
      item.value().zero_();
      if (item.key().find("bias") != std::string::npos)
      {
        item.value()[0] = -logit;
        item.value()[1] = logit;
      }
    }
  }
  model->network->eval();
  model->description.role = "coarse";
  model->description.inputChannels = { "CT (HU)", "click map" };
  model->description.preprocessing.normalization = "range";
  model->description.preprocessing.targetSpacing = { { 12.0, 12.0, 12.0 } };
  model->description.preprocessing.patchSize = { { 32, 32, 32 } };
  model->description.preprocessing.clickEncoding = "clipped-scaled";
  return model;
}

size_t
OnePathVoxels(const itk::Image<uint8_t, 3> * mask)
{
  size_t     count = 0;
  const auto n = mask->GetBufferedRegion().GetNumberOfPixels();
  for (size_t i = 0; i < n; ++i)
  {
    count += mask->GetBufferPointer()[i] != 0 ? 1 : 0;
  }
  return count;
}
} // namespace

TEST(OnePath, Stage1WindowIsPlacedAsTheCoarseFilterPlacesIt)
{
  // A CT of 40 x 30 x 10 voxels of 6 mm (240 x 180 x 60 mm, voxel edges from -3 mm), windows of 16 voxels of 6 mm.
  auto ct = itk::Image<int16_t, 3>::New();
  ct->SetRegions(itk::Size<3>{ { 40, 30, 10 } });
  itk::Image<int16_t, 3>::SpacingType spacing;
  spacing.Fill(6.0);
  ct->SetSpacing(spacing);
  ct->Allocate();
  const auto window = [&](double x, double y, double z)
  {
    itk::Point<double, 3> click;
    click[0] = x;
    click[1] = y;
    click[2] = z;
    return itk::ClickRegionCube(click, { { 16, 16, 16 } }, { { 6.0, 6.0, 6.0 } }, ct->GetDirection());
  };
  itk::Vector<double, 3> none;
  none.Fill(0.0);
  // Inside the CT along x and y: centred on the click. z: the CT (60 mm) is narrower than a window (96 mm), so the
  // window is centred on the CT (27 mm), as the coarse filter's single window along that axis.
  auto placed = itk::PlaceStage1Window(window(120.0, 90.0, 20.0), none, ct, true);
  EXPECT_NEAR(placed.center[0], 120.0, 1e-9);
  EXPECT_NEAR(placed.center[1], 90.0, 1e-9);
  EXPECT_NEAR(placed.center[2], 27.0, 1e-9);
  // Near the CT's first corner: clamped so the window starts at the CT's edge (-3 mm + 48 mm).
  placed = itk::PlaceStage1Window(window(6.0, 0.0, 20.0), none, ct, true);
  EXPECT_NEAR(placed.center[0], 45.0, 1e-9);
  EXPECT_NEAR(placed.center[1], 45.0, 1e-9);
  // Off-centre: the offset is a fraction of half the window (48 mm), along each of the window's axes.
  itk::Vector<double, 3> offset;
  offset[0] = 1.0;
  offset[1] = -0.5;
  offset[2] = 0.0;
  placed = itk::PlaceStage1Window(window(120.0, 90.0, 20.0), offset, ct, true);
  EXPECT_NEAR(placed.center[0], 168.0, 1e-9);
  EXPECT_NEAR(placed.center[1], 66.0, 1e-9);
  EXPECT_EQ(placed.side, window(0, 0, 0).side);

  // Centred on the click, the coarse filter's grid reaches half a window beyond the CT (--stage1-windows-centred):
  // a window not moved off-centre stays centred on the click near the CT's corner and along z, where the CT is narrower
  // than a window; moved off-centre, its centre stays inside the CT (from -3 mm to 237 / 177 / 57 mm).
  placed = itk::PlaceStage1Window(window(6.0, 0.0, 20.0), none, ct, false);
  EXPECT_NEAR(placed.center[0], 6.0, 1e-9);
  EXPECT_NEAR(placed.center[1], 0.0, 1e-9);
  EXPECT_NEAR(placed.center[2], 20.0, 1e-9);
  offset[0] = -1.0;
  offset[1] = 0.5;
  offset[2] = 1.0;
  placed = itk::PlaceStage1Window(window(6.0, 0.0, 20.0), offset, ct, false);
  EXPECT_NEAR(placed.center[0], -3.0, 1e-9); // 6 - 48 mm, stopped at the CT's first edge
  EXPECT_NEAR(placed.center[1], 24.0, 1e-9); // 0 + 24 mm, inside
  EXPECT_NEAR(placed.center[2], 57.0, 1e-9); // 20 + 48 mm, stopped at the CT's last edge
}

TEST(OnePath, Stage1TrainingWindowsSitOffCentreValidationWindowsDoNot)
{
  // Training samples: the click (where the raw-mm click map is smallest) moves about the window from epoch to epoch,
  // but stays inside it; the validation window is the coarse filter's first window, centred on the click (here
  // inside the CT). Window offset 0 keeps the centred windows of earlier runs.
  auto options = OnePathOptions(1);
  options.augment = false; // the rotation and zoom would move the centre voxel too
  auto       data = itk::PrepareTrainingData(options);
  const auto centreDistance = [](const torch::Tensor & clickMap)
  {
    const auto    flat = clickMap.argmin().item<int64_t>();
    const int64_t z = flat / (32 * 32), y = (flat / 32) % 32, x = flat % 32;
    return std::sqrt(std::pow(x - 15.5, 2) + std::pow(y - 15.5, 2) + std::pow(z - 15.5, 2));
  };
  double farthest = 0.0;
  for (int64_t epoch = 0; epoch < 6; ++epoch)
  {
    const auto sample = data.training->MakeTrainingSample(0, epoch);
    EXPECT_LT(sample.input[1].min().item<double>(), 6.0) << "the click lies in the window, epoch " << epoch;
    farthest = std::max(farthest, centreDistance(sample.input[1]));
  }
  EXPECT_GT(farthest, 4.0) << "training windows are not centred on the click";
  EXPECT_LT(centreDistance(data.validation->MakeValidationSample(0).input[1]), 1.0);

  options.windowOffset = 0.0;
  auto centred = itk::PrepareTrainingData(options);
  for (int64_t epoch = 0; epoch < 3; ++epoch)
  {
    EXPECT_LT(centreDistance(centred.training->MakeTrainingSample(0, epoch).input[1]), 1.0) << epoch;
  }
}

TEST(OnePath, ClickEncodingAndCropAreRecordedForTheModelFile)
{
  auto options = OnePathOptions(1);
  options.clickEncoding = "clipped-scaled";
  options.cropMargin = 2.0;
  options.cropMinimumSide = 30.0;
  options.augment = false;
  auto         data = itk::PrepareTrainingData(options);
  const auto & p = data.training->GetPreprocessing();
  EXPECT_EQ(p.clickEncoding, "clipped-scaled");
  EXPECT_EQ(p.cropMargin, 2.0);
  EXPECT_EQ(p.cropMinimumSide, 30.0);
  EXPECT_EQ(p.windowPlacement, "inside-image"); // the default, as CoarseSegmentationFilter places windows by default
  // The click channel is encoded as recorded: clipped-scaled lies in [0, 1] and reaches 1 (20 mm from the click).
  const auto clickMap = data.training->MakeTrainingSample(0, 0).input[1];
  EXPECT_GE(clickMap.min().item<double>(), 0.0);
  EXPECT_EQ(clickMap.max().item<double>(), 1.0);
  // --stage1-windows-centred is recorded, so that inference places the windows as training did.
  options.stage1WindowsInsideImage = false;
  EXPECT_EQ(itk::PrepareTrainingData(options).training->GetPreprocessing().windowPlacement, "centred-on-click");

  options.clickEncoding = "raw";
  EXPECT_THROW(options.Validate(), std::invalid_argument);
  options.clickEncoding = "gaussian";
  options.windowOffset = 1.5;
  EXPECT_THROW(options.Validate(), std::invalid_argument);
  // A checkpoint written before the window offset existed resumes with centred windows; a config keeps the default.
  options.windowOffset = 0.5;
  nlohmann::json stored = options;
  stored.erase("window_offset");
  EXPECT_EQ(diva::CheckpointTrainingOptions(stored, "test").windowOffset, 0.0);
  diva::TrainingOptions fromConfig;
  diva::UpdateFromJson(fromConfig, stored, "test");
  EXPECT_EQ(fromConfig.windowOffset, 0.5);
}

TEST(OnePath, Stage2CropsComeFromTheStage1PipelineWithACountedFallback)
{
  auto       options = OnePathOptions(2);
  auto       data = itk::PrepareTrainingData(options);
  const auto reference = data.validation->MakeValidationSample(0);

  // A stage 1 that finds nothing: every instance falls back to its reference mask, counted; the samples are those
  // of the reference crops.
  EXPECT_EQ(data.validation->UseStage1Predictions(ConstantCoarseModel(-10.0)), data.validation->NumberOfInstances());
  EXPECT_EQ(data.validation->NumberOfStage1Fallbacks(), data.validation->NumberOfInstances());
  for (const auto & instance : data.validation->Instances())
  {
    EXPECT_EQ(instance.cropMask.GetPointer(), instance.mask.GetPointer());
  }
  EXPECT_TRUE(torch::equal(data.validation->MakeValidationSample(0).input, reference.input));

  // A stage 1 that calls everything object: the coarse filter grows its windows over the CT and the crop mask is
  // its clicked component on the coarse grid (12 mm), far larger than the spleen, so the crop changes.
  EXPECT_EQ(data.validation->UseStage1Predictions(ConstantCoarseModel(10.0)), 0u);
  const auto & instance = data.validation->Instances().front();
  EXPECT_NE(instance.cropMask.GetPointer(), instance.mask.GetPointer());
  EXPECT_EQ(instance.cropMask->GetSpacing()[0], 12.0) << "the crop mask is the coarse filter's output grid";
  const double maskVolume = static_cast<double>(OnePathVoxels(instance.mask)) * 6.0 * 6.0 * 6.0;
  const double cropMaskVolume = static_cast<double>(OnePathVoxels(instance.cropMask)) * 12.0 * 12.0 * 12.0;
  EXPECT_GT(cropMaskVolume, 10.0 * maskVolume);
  const auto fromStage1 = data.validation->MakeValidationSample(0);
  EXPECT_FALSE(torch::equal(fromStage1.input, reference.input));
  EXPECT_GT(fromStage1.spacing[0], reference.spacing[0]) << "a larger mask gives a larger crop";
}
