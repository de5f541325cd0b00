// Training library tests on tiny phantom datasets. Networks use their `small` presets at the smallest patches they
// accept (mUnet small: 32^3, as 5 stages halve 4 times and instance norm needs > 1 voxel at the bottom; ESPNet small:
// 16^3), 1-3 steps per epoch, so each training test takes seconds on 2 cores.
#include "DivAttentionTinyTraining.h"
#include "divaSegmentationLoss.h"
#include "divaTrainer.h"
#include "itkDivAttentionRuntime.h"
#include "itkImageFileReader.h"
#include "itkImageFileWriter.h"
#include "itkImageTensorBridge.h"
#include "itkPCACropResampleFilter.h"
#include "itkTrainingSampleSource.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

namespace
{
namespace fs = std::filesystem;

using diva::testing::TinyTrainingOptions;

const diva::testing::ScratchFolder trainingScratch("training");

std::unique_ptr<diva::testing::TinyTrainingRun>
MakeRun(const diva::TrainingOptions & options)
{
  auto run = std::make_unique<diva::testing::TinyTrainingRun>();
  run->data = itk::PrepareTrainingData(options);
  torch::manual_seed(options.seed);
  run->network = diva::CreateTrainingNetwork(options, options.stage == 1 ? 2 : 1);
  diva::testing::AttachTrainer(*run, options, diva::testing::TinySampleProvider(run->data),
                               options.stage == 1 ? std::vector<std::string>{ "CT (HU)", "click map" }
                                                  : std::vector<std::string>{ "CT (HU)" });
  return run;
}

class DeterministicTraining : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    itk::DivAttentionRuntime::Initialize();
    itk::DivAttentionRuntime::SetThreadBudget(1);
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
  }
};
} // namespace

TEST(TrainingOptions, JsonRoundTripKeepsEveryFieldAndRejectsUnknownKeys)
{
  diva::TrainingOptions options;
  options.stage = 2;
  options.milestones = { 3, 7 };
  options.patchSize = { { 32, 48, 64 } };
  options.augment = false;
  nlohmann::json        json = options;
  diva::TrainingOptions back;
  diva::UpdateFromJson(back, json, "test");
  EXPECT_EQ(nlohmann::json(back), json);
  EXPECT_THROW(diva::UpdateFromJson(back, nlohmann::json{ { "learning_rat", 1.0 } }, "test"), std::invalid_argument);
  EXPECT_THROW(diva::UpdateFromJson(back, nlohmann::json{ { "epochs", "many" } }, "test"), std::invalid_argument);
}

// Found by the TrainingOptions fuzz target (Documentation/Reliability.md): a real for an integer field was converted
// with undefined behaviour (1.5e300 to int64) and out-of-range integers wrapped silently (70000 to uint16).
TEST(TrainingOptions, ConfigRefusesValuesItsFieldsCannotHoldExactly)
{
  for (const char * text :
       { R"({"epochs": 1.5e300})", R"({"epochs": 1.5})", R"({"target_labels": [70000]})", R"({"target_labels": [-1]})",
         R"({"seed": -1})", R"({"stage": 4294967297})", R"({"minimum_extent": -2})", R"({"learning_rate": true})",
         R"({"patch_size": [64, 64]})", R"({"target_spacing": [1, 1, 1, 1]})", R"({"milestones": [1, 2.5]})" })
  {
    diva::TrainingOptions options;
    const auto            before = nlohmann::json(options);
    EXPECT_THROW(diva::UpdateFromJson(options, nlohmann::json::parse(text), "test"), std::invalid_argument) << text;
    EXPECT_EQ(nlohmann::json(options), before) << text; // nothing half-read
  }
  diva::TrainingOptions options;
  diva::UpdateFromJson(options,
                       nlohmann::json::parse(R"({"epochs": 7, "target_labels": [65535, 0], "seed": 18446744073709551615,
                                                 "clip_minimum": -200, "learning_rate": 1, "patch_size": [8, 16, 32]})"),
                       "test");
  EXPECT_EQ(options.epochs, 7);
  EXPECT_EQ(options.targetLabels, (std::vector<uint16_t>{ 65535, 0 }));
  EXPECT_EQ(options.seed, UINT64_MAX);
  EXPECT_EQ(options.clipMinimum, -200.0);
  EXPECT_EQ(options.learningRate, 1.0);
  EXPECT_EQ(options.patchSize, (std::array<int64_t, 3>{ { 8, 16, 32 } }));
}

// The div-attention module's fusion kernel and refined-norm units (Method.md): today's defaults or what is asked
// reach the network built for training; other values are refused. A checkpoint whose options lack the keys (written
// before they existed) resumes with 3 and "absolute", what its weights were trained with; a config file without them
// gets today's defaults.
TEST(TrainingOptions, DivAttentionOptionsReachTheNetworkAndOldCheckpointsKeepTheirs)
{
  diva::TrainingOptions options;
  options.stage = 2;
  options.model = "unetr";
  options.preset = "small";
  EXPECT_EQ(options.divAttentionFusionKernel, 0); // each network's own default
  EXPECT_EQ(diva::CreateTrainingNetwork(options, 1)->GetSettings().at("div_attention.fusion_kernel_size"), "1");
  options.model = "espnet";
  EXPECT_EQ(diva::CreateTrainingNetwork(options, 1)->GetSettings().at("div_attention.fusion_kernel_size"), "3");
  options.divAttentionFusionKernel = 1;
  EXPECT_EQ(diva::CreateTrainingNetwork(options, 1)->GetSettings().at("div_attention.fusion_kernel_size"), "1");
  options.model = "unetr";
  options.divAttentionFusionKernel = 3;
  EXPECT_EQ(diva::CreateTrainingNetwork(options, 1)->GetSettings().at("div_attention.fusion_kernel_size"), "3");
  options.divAttentionFusionKernel = 2;
  EXPECT_THROW(options.Validate(), std::invalid_argument);

  options.divAttentionFusionKernel = 1;
  nlohmann::json stored = options;
  EXPECT_EQ(diva::CheckpointTrainingOptions(stored, "test").divAttentionFusionKernel, 1);
  EXPECT_EQ(diva::CheckpointTrainingOptions(stored, "test").divAttentionRefinedNormScale, "uniform-attention");
  stored.erase("div_attention_fusion_kernel");
  stored.erase("div_attention_refined_norm_scale");
  EXPECT_EQ(diva::CheckpointTrainingOptions(stored, "test").divAttentionFusionKernel, 3);
  EXPECT_EQ(diva::CheckpointTrainingOptions(stored, "test").divAttentionRefinedNormScale, "absolute");
  diva::TrainingOptions fromConfig;
  diva::UpdateFromJson(fromConfig, stored, "test");
  EXPECT_EQ(fromConfig.divAttentionFusionKernel, 0);
  EXPECT_EQ(fromConfig.divAttentionRefinedNormScale, "uniform-attention");

  options.divAttentionRefinedNormScale = "absolute";
  EXPECT_EQ(diva::CreateTrainingNetwork(options, 1)->GetSettings().at("div_attention.refined_norm_scale"), "absolute");
  options.divAttentionRefinedNormScale = "relative";
  EXPECT_THROW(options.Validate(), std::invalid_argument);
}

TEST(TrainingOptions, DefaultsAreThePapers)
{
  const diva::TrainingOptions options;
  EXPECT_EQ(options.learningRate, 1e-4);
  EXPECT_EQ(options.epochs, 120);
  EXPECT_EQ(options.batchSize, 4);
  EXPECT_EQ(options.milestones, (std::vector<int64_t>{ 15, 30, 60, 90 }));
  EXPECT_EQ(options.patchSize, (std::array<int64_t, 3>{ { 96, 96, 96 } }));
  EXPECT_EQ(options.minimumExtent, 2u);
  EXPECT_EQ(options.minimumVoxels, 5u);
  // Multi-step schedule: x0.1 after 15, 30, 60, 90 epochs (epochs counted from 0). Relative tolerance 1e-12: the
  // rate is a product of up to four factors 0.1, exact to a few ulps.
  const std::vector<std::pair<int64_t, double>> expected{ { 0, 1e-4 },  { 14, 1e-4 }, { 15, 1e-5 }, { 29, 1e-5 },
                                                          { 30, 1e-6 }, { 60, 1e-7 }, { 90, 1e-8 }, { 119, 1e-8 } };
  for (const auto & [epoch, rate] : expected)
  {
    EXPECT_NEAR(diva::ScheduledLearningRate(1e-4, options.milestones, 0.1, epoch), rate, rate * 1e-12) << epoch;
  }
}

TEST(TrainingSampleSource, Stage1SampleIsCentredOnAClickInsideTheObject)
{
  auto options = TinyTrainingOptions(1, "");
  options.windowOffset = 0.0; // centred windows (OnePathTest: off-centre as at inference, the default)
  auto       data = itk::PrepareTrainingData(options);
  const auto sample = data.training->MakeTrainingSample(0, 0);
  ASSERT_EQ(sample.input.sizes(), (std::vector<int64_t>{ 2, 32, 32, 32 }));
  ASSERT_EQ(sample.target.sizes(), (std::vector<int64_t>{ 1, 32, 32, 32 }));
  // The click is the cube's centre, so the click map's smallest value lies among the 8 central voxels, where the
  // distance is half a voxel diagonal at most (zoom <= 1.1: 0.5 * sqrt(3) * 6.6 mm < 6 mm).
  const auto clickMap = sample.input[1];
  EXPECT_LT(clickMap.min().item<double>(), 6.0);
  EXPECT_LT(clickMap.slice(0, 15, 17).slice(1, 15, 17).slice(2, 15, 17).min().item<double>(), 6.0);
  // The click is inside the object, so the target has foreground next to the centre.
  EXPECT_GT(sample.target.slice(1, 14, 18).slice(2, 14, 18).slice(3, 14, 18).sum().item<double>(), 0.0);
}

TEST(TrainingSampleSource, SamplesAreAPureFunctionOfSeedEpochAndInstance)
{
  auto       options = TinyTrainingOptions(1, "");
  auto       data = itk::PrepareTrainingData(options);
  const auto a = data.training->MakeTrainingSample(1, 3);
  const auto b = data.training->MakeTrainingSample(1, 3);
  const auto c = data.training->MakeTrainingSample(1, 4);
  EXPECT_TRUE(torch::equal(a.input, b.input));
  EXPECT_TRUE(torch::equal(a.target, b.target));
  EXPECT_FALSE(torch::equal(a.input, c.input)); // a new click and augmentation every epoch
}

TEST(TrainingSampleSource, FieldOfViewCutHidesOnlyWhatLiesBeyondTheObject)
{
  // Every other augmentation at zero, so that the two sources differ by the cut alone.
  auto options = TinyTrainingOptions(1, "");
  options.rotationDegrees = 0.0;
  options.scaleRange = 0.0;
  options.intensityShift = 0.0;
  options.intensityScale = 0.0;
  options.noiseStandardDeviation = 0.0;
  auto plain = itk::PrepareTrainingData(options);
  options.fieldOfViewCutProbability = 1.0;
  auto cut = itk::PrepareTrainingData(options);

  // What -1024 HU (outside the CT) becomes after clipping and normalisation.
  const auto & pre = plain.training->GetPreprocessing();
  double       air = std::max(-1024.0, pre.clipMinimum);
  air = pre.normalization == "zscore"  ? (air - pre.mean) / pre.standardDeviation
        : pre.normalization == "range" ? (air - pre.clipMinimum) / (pre.clipMaximum - pre.clipMinimum)
                                       : air;
  int samplesCut = 0;
  for (int64_t epoch = 0; epoch < 6; ++epoch)
  {
    for (size_t index = 0; index < plain.training->NumberOfInstances(); ++index)
    {
      const auto a = plain.training->MakeTrainingSample(index, epoch);
      const auto b = cut.training->MakeTrainingSample(index, epoch);
      ASSERT_TRUE(torch::equal(a.target, b.target)) << "the cut never changes the object's reference";
      ASSERT_TRUE(torch::equal(a.input[1], b.input[1])) << "nor the click map";
      const auto changed = a.input[0].ne(b.input[0]);
      const auto count = changed.sum().item<int64_t>();
      if (count == 0)
      {
        continue; // no room beside the object on the side drawn
      }
      ++samplesCut;
      // Changed voxels read as outside the CT, and none of them is object (the object is never cut).
      EXPECT_NEAR(b.input[0].masked_select(changed).max().item<double>(), air, 1e-5);
      EXPECT_NEAR(b.input[0].masked_select(changed).min().item<double>(), air, 1e-5);
      EXPECT_EQ(a.target[0].gt(0.5).logical_and(changed).sum().item<int64_t>(), 0);
    }
  }
  EXPECT_GT(samplesCut, 0) << "with probability 1 most samples have room for a cut";
  // Validation samples are never augmented.
  EXPECT_TRUE(
    torch::equal(plain.validation->MakeValidationSample(0).input, cut.validation->MakeValidationSample(0).input));

  options.fieldOfViewCutProbability = 1.5;
  EXPECT_THROW(options.Validate(), std::exception);
}

TEST(TrainingSampleSource, Stage2ValidationSampleIsThePCACropFiltersOutput)
{
  auto         options = TinyTrainingOptions(2, "");
  auto         data = itk::PrepareTrainingData(options);
  const auto & instance = data.validation->Instances().front();
  const auto   sample = data.validation->MakeValidationSample(0);

  // The same crop through PCACropResampleFilter itself (as inference does), normalised the same way.
  auto       reader = itk::ImageFileReader<itk::Image<int16_t, 3>>::New();
  const auto listing = itk::SegmentationDatasetReader::Read(options.dataset);
  for (const auto & entry : listing.cases)
  {
    if (entry.id == data.validation->CaseId(instance.caseIndex))
    {
      reader->SetFileName(entry.image);
    }
  }
  using CropType = itk::PCACropResampleFilter<itk::Image<int16_t, 3>, itk::Image<uint8_t, 3>, itk::Image<float, 3>>;
  auto crop = CropType::New();
  crop->SetInput(reader->GetOutput());
  crop->SetMaskImage(instance.mask);
  crop->SetOutputSize({ { 16, 16, 16 } });
  crop->Update();
  const auto & p = data.validation->GetPreprocessing();
  const auto   expected =
    (itk::ImageToTensor(crop->GetOutput()).clamp(p.clipMinimum, p.clipMaximum) - p.mean) / p.standardDeviation;
  // Same grid and the same linear interpolation; 1e-5 covers float rounding of the normalisation only.
  EXPECT_TRUE(torch::allclose(sample.input, expected.squeeze(0), 1e-5, 1e-5));
}

TEST(TrainingSampleSource, DatasetProblemsAreSkippedWithTheirReasonOrFatalWhenStrict)
{
  const fs::path root = trainingScratch.Folder("problems");
  const auto     listing = itk::SegmentationDatasetReader::Read(diva::testing::TinyPhantomDataset());
  using LabelImage = itk::Image<uint16_t, 3>;
  auto read = [](const std::string & path)
  {
    auto reader = itk::ImageFileReader<LabelImage>::New();
    reader->SetFileName(path);
    reader->Update();
    return LabelImage::Pointer(reader->GetOutput());
  };
  auto write = [](const LabelImage * image, const fs::path & path)
  {
    auto writer = itk::ImageFileWriter<LabelImage>::New();
    writer->SetInput(image);
    writer->SetFileName(path.string());
    writer->Update();
  };
  const auto & good = listing.cases[0];
  // Binary spleen mask (0/1) as the good label; the phantom's own label map (values 0..6) as the non-binary one.
  auto binaryMask = read(good.label);
  for (auto * p = binaryMask->GetBufferPointer();
       p != binaryMask->GetBufferPointer() + binaryMask->GetPixelContainer()->Size(); ++p)
  {
    *p = *p == 2 ? 1 : 0;
  }
  write(binaryMask, root / "binary.nii.gz");
  auto shifted = read((root / "binary.nii.gz").string());
  auto origin = shifted->GetOrigin();
  origin[0] += 10.0; // almost two voxels: another grid
  shifted->SetOrigin(origin);
  write(shifted, root / "shifted.nii.gz");
  auto empty = read(good.label);
  empty->FillBuffer(0);
  write(empty, root / "empty.nii.gz");
  std::ofstream csv(root / "cases.csv");
  csv << "image,label,id\n"
      << good.image << ',' << (root / "binary.nii.gz").string() << ",good\n"
      << good.image << ',' << (root / "missing.nii.gz").string() << ",missing\n"
      << good.image << ',' << (root / "shifted.nii.gz").string() << ",mismatch\n"
      << good.image << ',' << (root / "empty.nii.gz").string() << ",empty\n"
      << good.image << ',' << good.label << ",nonbinary\n";
  csv.close();
  auto options = TinyTrainingOptions(1, "");
  options.dataset = (root / "cases.csv").string();
  options.expectBinary = true;
  options.targetLabels = { 1 }; // the binary masks hold 1; the phantom label map holds 1 (liver) too
  const auto                                      all = itk::SegmentationDatasetReader::Read(options.dataset);
  std::vector<itk::TrainingSampleSource::Problem> listingProblems;
  for (const auto & problem : all.problems)
  {
    listingProblems.push_back({ problem.id, problem.reason });
  }
  // Default: every bad case is skipped and reported with its reason; the good one is kept.
  options.expectBinary = false;
  itk::TrainingSampleSource lenient(options, all.cases, listingProblems);
  EXPECT_EQ(lenient.NumberOfCases(), 2u); // "good" and "nonbinary" (binary not expected: label 1 is read from it)
  std::map<std::string, std::string> reasons;
  for (const auto & problem : lenient.Problems())
  {
    reasons[problem.caseId] = problem.reason;
  }
  ASSERT_EQ(reasons.size(), 3u);
  EXPECT_NE(reasons.at("missing").find("missing"), std::string::npos) << reasons.at("missing");
  EXPECT_FALSE(reasons.at("mismatch").empty());
  EXPECT_FALSE(reasons.at("empty").empty());
  // Expecting binary labels adds the non-binary case to the problems.
  options.expectBinary = true;
  itk::TrainingSampleSource binary(options, all.cases, listingProblems);
  EXPECT_EQ(binary.NumberOfCases(), 1u);
  EXPECT_EQ(binary.Problems().size(), 4u);
  // Strict: the first problem is fatal and named.
  options.strict = true;
  EXPECT_THROW(itk::TrainingSampleSource(options, all.cases, listingProblems), itk::ExceptionObject);
}

// TotalSegmentator layout (<case>/ct.nii.gz + <case>/segmentations/<structure>.nii.gz): every structure is a target
// whatever the target labels say, its non-zero voxels its mask (255 counts as 1); an empty mask adds nothing.
TEST(TrainingSampleSource, TrainsOnEveryStructureOfTheTotalSegmentatorLayout)
{
  const fs::path root = trainingScratch.Folder("totalseg-layout");
  const auto     listing = itk::SegmentationDatasetReader::Read(diva::testing::TinyPhantomDataset());
  using LabelImage = itk::Image<uint8_t, 3>;
  const auto &   source = listing.cases[0];
  auto           labels = itk::ReadImage<LabelImage>(source.label);
  const fs::path caseFolder = root / "s0001";
  fs::create_directories(caseFolder / "segmentations");
  fs::copy_file(source.image, caseFolder / "ct.nii.gz", fs::copy_options::overwrite_existing);
  std::map<std::string, size_t> expected; // structure -> voxels
  auto                          writeStructure = [&](const std::string & name, int label, uint8_t value)
  {
    auto mask = LabelImage::New();
    mask->CopyInformation(labels);
    mask->SetRegions(labels->GetLargestPossibleRegion());
    mask->Allocate();
    size_t count = 0;
    for (size_t i = 0; i < labels->GetPixelContainer()->Size(); ++i)
    {
      const bool inside = labels->GetBufferPointer()[i] == label;
      mask->GetBufferPointer()[i] = inside ? value : 0;
      count += inside ? 1 : 0;
    }
    itk::WriteImage(mask, (caseFolder / "segmentations" / (name + ".nii.gz")).string());
    expected[name] = count;
  };
  writeStructure("spleen", 2, 1);
  writeStructure("liver", 1, 255);
  writeStructure("nothing", 250, 1); // empty: a structure outside the field of view
  ASSERT_GT(expected["spleen"], 100u);
  ASSERT_GT(expected["liver"], 100u);

  const auto totalseg = itk::SegmentationDatasetReader::Read(root.string());
  ASSERT_EQ(totalseg.cases.size(), 1u);
  ASSERT_EQ(totalseg.cases[0].structures.size(), 3u);
  auto options = TinyTrainingOptions(1, "");
  options.dataset = root.string();
  options.targetLabels = { 7 }; // held by no mask: structures are targets whatever the label list says
  options.instances = "organ";
  itk::TrainingSampleSource samples(options, totalseg.cases, {});
  EXPECT_EQ(samples.NumberOfCases(), 1u);
  ASSERT_EQ(samples.NumberOfInstances(), 2u); // liver and spleen (sorted by name), nothing from the empty mask
  EXPECT_EQ(samples.Instances()[0].voxels, expected["liver"]);
  EXPECT_EQ(samples.Instances()[1].voxels, expected["spleen"]);
  // A training sample of each structure holds its object.
  for (size_t index = 0; index < 2; ++index)
  {
    const auto sample = samples.MakeValidationSample(index);
    EXPECT_GT(sample.target.sum().item<float>(), 10.0f) << "structure " << index;
  }
}

TEST(Training, Stage1TwoEpochsLowerTheTrainingLoss)
{
  auto options = TinyTrainingOptions(1, trainingScratch.Folder("stage1-loss").string());
  options.epochs = 2;
  options.augment = false; // the same clicks' neighbourhoods each epoch: the loss must follow the optimiser
  auto       run = MakeRun(options);
  const auto summary = run->trainer->Fit();
  ASSERT_EQ(summary.history.size(), 2u);
  EXPECT_LT(summary.history[1].trainingLoss, summary.history[0].trainingLoss);
}

TEST(Training, Stage2TwoEpochsLowerTheTrainingLoss)
{
  auto options = TinyTrainingOptions(2, trainingScratch.Folder("stage2-loss").string());
  options.epochs = 2;
  options.augment = false;
  auto       run = MakeRun(options);
  const auto summary = run->trainer->Fit();
  ASSERT_EQ(summary.history.size(), 2u);
  EXPECT_LT(summary.history[1].trainingLoss, summary.history[0].trainingLoss);
}

TEST_F(DeterministicTraining, ResumeGivesTheSameNextEpochAsAnUninterruptedRun)
{
  auto uninterrupted = TinyTrainingOptions(1, trainingScratch.Folder("uninterrupted").string());
  uninterrupted.epochs = 3;
  uninterrupted.deterministic = true;
  auto       whole = MakeRun(uninterrupted);
  const auto expected = whole->trainer->Fit();
  ASSERT_EQ(expected.history.size(), 3u);

  auto interrupted = uninterrupted;
  interrupted.outputDirectory = trainingScratch.Folder("interrupted").string();
  interrupted.epochs = 2;
  MakeRun(interrupted)->trainer->Fit();

  // A fresh process would start with other weights and another generator state: resume must restore both.
  torch::manual_seed(12345);
  auto resumedOptions = diva::Trainer::CheckpointOptions(interrupted.outputDirectory + "/latest.pt");
  resumedOptions.epochs = 3;
  auto resumed = MakeRun(resumedOptions);
  resumed->trainer->Resume(interrupted.outputDirectory + "/latest.pt");
  const auto actual = resumed->trainer->Fit();
  ASSERT_EQ(actual.history.size(), 3u);
  // Tolerance 0: on the CPU with one thread the same operations run in the same order on the same data.
  EXPECT_EQ(actual.history[2].trainingLoss, expected.history[2].trainingLoss);
  EXPECT_EQ(actual.history[2].dice, expected.history[2].dice);
  const auto a = whole->network->named_parameters();
  const auto b = resumed->network->named_parameters();
  for (const auto & item : a)
  {
    EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
  }
}

TEST(Training, EarlyStoppingTriggersWhenValidationStalls)
{
  // Stage 1's mUnet: instance norm keeps no running statistics, so with a zero learning rate nothing changes and the
  // validation Dice stays where epoch 1 put it (ESPNet's batch norm would still move its running means).
  auto options = TinyTrainingOptions(1, trainingScratch.Folder("early").string());
  options.epochs = 6;
  options.learningRate = 0.0;
  options.patience = 2;
  options.stepsPerEpoch = 1;
  auto       run = MakeRun(options);
  const auto summary = run->trainer->Fit();
  EXPECT_TRUE(summary.stoppedEarly);
  EXPECT_EQ(summary.history.size(), 3u); // best at 1, no improvement at 2 and 3
  EXPECT_EQ(summary.bestEpoch, 1);
}

// Faults (issue 8): a run killed after the epoch that spent its patience was committed (latest.pt written) but before
// final.pt must stop again when resumed, not train on. Zero learning rate as above: the Dice never improves.
TEST(Training, ResumeAfterEarlyStoppingDoesNotTrainOn)
{
  auto options = TinyTrainingOptions(1, trainingScratch.Folder("early-resume").string());
  options.epochs = 6;
  options.learningRate = 0.0;
  options.patience = 2;
  options.stepsPerEpoch = 1;
  ASSERT_TRUE(MakeRun(options)->trainer->Fit().stoppedEarly);
  auto resumed = MakeRun(options);
  resumed->trainer->Resume(options.outputDirectory + "/latest.pt");
  const auto summary = resumed->trainer->Fit();
  EXPECT_TRUE(summary.stoppedEarly);
  EXPECT_EQ(summary.history.size(), 3u); // still the three epochs of the first run
}

TEST(Training, CheckpointsAndTheExportedModelAreWritten)
{
  const auto output = trainingScratch.Folder("files");
  auto       options = TinyTrainingOptions(2, output.string());
  options.epochs = 1;
  options.stepsPerEpoch = 1;
  MakeRun(options)->trainer->Fit();
  for (const char * name : { "latest.pt", "best.pt", "final.pt", "model-best.pt", "training_log.csv", "split.json" })
  {
    EXPECT_TRUE(fs::exists(output / name)) << name;
  }
  for (const auto & entry : fs::directory_iterator(output))
  {
    EXPECT_EQ(entry.path().filename().string().find(".partial-"), std::string::npos) << entry.path();
  }
  const auto loaded = diva::LoadModel((output / "model-best.pt").string());
  EXPECT_EQ(loaded.network->GetInputChannels(), 1);
  EXPECT_EQ(loaded.description.role, "refine");
  EXPECT_EQ(loaded.description.preprocessing.patchSize, options.patchSize);
  std::ifstream log(output / "training_log.csv");
  std::string   header;
  std::getline(log, header);
  EXPECT_EQ(header, "epoch,training_loss,validation_loss,dice,recall,precision,learning_rate,seconds");
}

// Fine-tuning (--init-model): every parameter and buffer of the model file reaches the new network; a file of another
// architecture, stage, patch or spacing is refused naming the file.
TEST(Training, InitializeFromModelCopiesEveryWeightAndRefusesAnotherNetwork)
{
  auto                   options = TinyTrainingOptions(1, trainingScratch.Folder("init").string());
  auto                   source = diva::CreateTrainingNetwork(options, 2);
  diva::ModelDescription description;
  description.inputChannels = { "CT (HU)", "click map" };
  description.preprocessing.patchSize = options.patchSize;
  description.preprocessing.targetSpacing = options.targetSpacing;
  diva::SetModelRole(description, 1);
  const auto loaded = diva::LoadModelFromBytes(diva::SaveModelToBytes(*source, description), "source.pt");

  auto   target = diva::CreateTrainingNetwork(options, 2);
  auto   targetParameters = target->named_parameters();
  auto   sourceParameters = source->named_parameters();
  size_t differing = 0;
  for (const auto & item : targetParameters)
  {
    differing += torch::equal(item.value(), *sourceParameters.find(item.key())) ? 0 : 1;
  }
  ASSERT_GT(differing, 0u); // two random initialisations
  diva::InitializeFromModel(*target, loaded, options, "source.pt");
  for (const auto & item : targetParameters)
  {
    EXPECT_TRUE(torch::equal(item.value(), *sourceParameters.find(item.key()))) << item.key();
  }
  auto sourceBuffers = source->named_buffers(); // none in mUnet (instance norms); copied alike where there are
  for (const auto & item : target->named_buffers())
  {
    EXPECT_TRUE(torch::equal(item.value(), *sourceBuffers.find(item.key()))) << item.key();
  }

  auto refused = [&](diva::TrainingOptions other, int64_t channels, const std::string & expected)
  {
    auto network = diva::CreateTrainingNetwork(other, channels);
    try
    {
      diva::InitializeFromModel(*network, loaded, other, "source.pt");
      ADD_FAILURE() << "accepted: " << expected;
    }
    catch (const std::invalid_argument & error)
    {
      const std::string message = error.what();
      EXPECT_NE(message.find("source.pt"), std::string::npos) << message;
      EXPECT_NE(message.find(expected), std::string::npos) << message;
    }
  };
  auto noModule = options;
  noModule.divAttention = !options.divAttention;
  refused(noModule, 2, "network");
  auto oneChannel = options;
  refused(oneChannel, 1, "in the file but");
  auto stage2 = options;
  stage2.stage = 2;
  refused(stage2, 2, "coarse");
  auto patch = options;
  patch.targetSpacing = { { 3.0, 3.0, 3.0 } };
  refused(patch, 2, "--spacing");
}

TEST(BatchPrefetcher, DeliversInOrderAndPassesErrorsOn)
{
  diva::BatchPrefetcher ordered(
    5,
    [](size_t i) {
      return diva::Batch{ torch::full({ 1 }, static_cast<double>(i)), torch::Tensor(), {} };
    },
    2);
  for (size_t i = 0; i < 5; ++i)
  {
    EXPECT_EQ(ordered.Next().input.item<double>(), static_cast<double>(i));
  }
  diva::BatchPrefetcher failing(
    2, [](size_t) -> diva::Batch { throw std::runtime_error("broken case"); }, 1);
  EXPECT_THROW(failing.Next(), std::runtime_error);
}

TEST(BatchPrefetcher, SeveralWorkersDeliverInOrder)
{
  // Workers finish out of order (later batches are quicker); the consumer still sees 0, 1, 2, ... and every batch
  // once, and no worker runs more than `depth` batches ahead of the consumer.
  std::atomic<int>      running{ 0 };
  std::atomic<int>      mostAtOnce{ 0 };
  diva::BatchPrefetcher pool(
    12,
    [&](size_t i)
    {
      const int now = ++running;
      int       seen = mostAtOnce.load();
      while (now > seen && !mostAtOnce.compare_exchange_weak(seen, now))
      {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2 * static_cast<int>(12 - i)));
      --running;
      return diva::Batch{ torch::full({ 1 }, static_cast<double>(i)), torch::Tensor(), {} };
    },
    3, 4);
  for (size_t i = 0; i < 12; ++i)
  {
    EXPECT_EQ(pool.Next().input.item<double>(), static_cast<double>(i));
  }
  EXPECT_THROW(pool.Next(), std::out_of_range);
  EXPECT_GE(mostAtOnce.load(), 2); // the pool did work in parallel
  EXPECT_LE(mostAtOnce.load(), 3); // never more than depth batches in flight

  diva::BatchPrefetcher failing(
    6,
    [](size_t i) -> diva::Batch
    {
      if (i == 2)
        throw std::runtime_error("broken case");
      return {};
    },
    2, 3);
  EXPECT_THROW(
    {
      for (int k = 0; k < 6; ++k)
        failing.Next();
    },
    std::runtime_error);
}
