// Training for corrections (Documentation/Training.md, "Negative clicks and simulated corrections"): the negative
// click map as stage 1's third input channel, recorded in the model file and filled as the coarse filter fills it;
// fine-tuning a 2-channel model into it; simulated correction clicks at the centre of the largest error region; and a
// run with corrections that resumes exactly. Tiny sizes (mUnet small, 32^3 windows at 6 mm) keep each test to seconds.
#include "DivAttentionTinyTraining.h"
#include "divaModelFile.h"
#include "divaSegmentationLoss.h"
#include "divaTrainer.h"
#include "itkClickDistanceTransformFilter.h"
#include "itkCoarseSegmentationFilter.h"
#include "itkCorrectionClickSimulator.h"
#include "itkDivAttentionRuntime.h"
#include "itkImageFileReader.h"
#include "itkSegmentationDatasetReader.h"
#include "itkTrainingSampleSource.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace
{
const diva::testing::ScratchFolder correctionScratch("corrections");

// Stage 1 on the tiny phantoms with the negative click map as a third input channel.
diva::TrainingOptions
CorrectionOptions(const std::string & output)
{
  auto options = diva::testing::TinyTrainingOptions(1, output);
  options.negativeClickChannel = true;
  return options;
}

// As DivAttentionTrain builds its run (itk::MakeSampleProvider), counting the samples whose input the corrections
// changed.
struct CorrectionRun : diva::testing::TinyTrainingRun
{
  std::shared_ptr<size_t> correctedSamples = std::make_shared<size_t>(0);
};

std::unique_ptr<CorrectionRun>
MakeCorrectionRun(const diva::TrainingOptions & options)
{
  auto run = std::make_unique<CorrectionRun>();
  run->data = itk::PrepareTrainingData(options);
  torch::manual_seed(options.seed);
  run->network = diva::CreateTrainingNetwork(options, options.InputChannels());
  auto provider = itk::MakeSampleProvider(*run->data.training, *run->data.validation);
  if (provider.correction)
  {
    auto inner = provider.correction;
    auto counter = run->correctedSamples;
    provider.correction = [inner, counter](size_t index, int64_t epoch, const torch::Tensor & input,
                                           const torch::Tensor &                   target,
                                           const diva::SampleProvider::Segmenter & segment)
    {
      auto corrected = inner(index, epoch, input, target, segment);
      *counter += torch::equal(corrected, input) ? 0 : 1;
      return corrected;
    };
  }
  diva::testing::AttachTrainer(*run, options, provider, options.InputChannelNames());
  return run;
}

// The voxel (flat index) where a click map channel changed most towards a new click: where it now holds its smallest
// value among the voxels that changed (for a distance encoding, the new click's voxel).
int64_t
NewClickVoxel(const torch::Tensor & before, const torch::Tensor & after)
{
  const auto changed = (after - before).abs() > 1e-4;
  if (changed.sum().item<int64_t>() == 0)
  {
    return -1;
  }
  const auto masked = torch::where(changed, after, torch::full_like(after, 1e30));
  return masked.flatten().argmin().item<int64_t>();
}
} // namespace

// The third channel: in every sample, filled with the map of no click (ClickMapValueWithoutClicks, 1000 for the raw
// distance encoding); recorded in the exported model file by name; and the coarse filter, given no negative click map
// for such a model, fills it with the same value: its output equals the output with an explicit map of that value.
TEST(NegativeClickChannel, SamplesCarryItTheModelFileRecordsItAndTheCoarseFilterFillsItAsTraining)
{
  itk::DivAttentionRuntime::Initialize();
  auto options = CorrectionOptions(correctionScratch.Folder("channel").string());
  options.epochs = 1;
  options.stepsPerEpoch = 1;
  EXPECT_EQ(options.InputChannels(), 3);
  auto       run = MakeCorrectionRun(options);
  const auto sample = run->data.training->MakeTrainingSample(0, 0);
  ASSERT_EQ(sample.input.size(0), 3);
  const float none =
    itk::ClickMapValueWithoutClicks(itk::ClickDistanceTransformFilterEnums::Encoding::EuclideanDistance);
  EXPECT_EQ(none, 1000.0f);
  EXPECT_TRUE(torch::all(sample.input[2] == none).item<bool>());
  EXPECT_LT(sample.input[1].min().item<float>(), 6.0f); // the positive click lies in the window (6 mm voxels)
  EXPECT_EQ(run->data.validation->MakeValidationSample(0).input.size(0), 3);

  run->trainer->Fit();
  const auto model =
    std::make_shared<diva::LoadedModel>(diva::LoadModel(options.outputDirectory + "/model-best.pt", torch::kCPU));
  EXPECT_EQ(model->network->GetInputChannels(), 3);
  EXPECT_EQ(model->description.inputChannels,
            (std::vector<std::string>{ "CT (HU)", "click map", "negative click map" }));
  EXPECT_EQ(model->description.preprocessing.clickEncoding, "euclidean-distance-mm");

  // The coarse filter on a phantom CT, one window, with and without an explicit map of no negative click.
  const auto cases = itk::SegmentationDatasetReader::Read(diva::testing::TinyPhantomDataset()).cases;
  using CTType = itk::Image<int16_t, 3>;
  auto reader = itk::ImageFileReader<CTType>::New();
  reader->SetFileName(cases.at(0).image);
  reader->Update();
  const CTType *        ct = reader->GetOutput();
  const auto            size = ct->GetLargestPossibleRegion().GetSize();
  itk::Point<double, 3> click;
  ct->TransformIndexToPhysicalPoint(
    { { static_cast<itk::IndexValueType>(size[0] / 2), static_cast<itk::IndexValueType>(size[1] / 2),
        static_cast<itk::IndexValueType>(size[2] / 2) } },
    click);
  auto clickMap = itk::ClickDistanceTransformFilter<CTType>::New();
  clickMap->SetReferenceImage(ct);
  clickMap->SetClicks({ click });
  clickMap->Update();
  auto noNegative = itk::Image<float, 3>::New();
  noNegative->CopyInformation(ct);
  noNegative->SetRegions(ct->GetLargestPossibleRegion());
  noNegative->Allocate();
  noNegative->FillBuffer(none);
  auto run1 = [&](bool explicitMap)
  {
    auto coarse = itk::CoarseSegmentationFilter<CTType>::New();
    coarse->SetInput(ct);
    coarse->SetClickMap(clickMap->GetOutput());
    if (explicitMap)
    {
      coarse->SetNegativeClickMap(noNegative);
    }
    coarse->SetModel(model);
    coarse->SetClick(click);
    coarse->GrowRegionOff();
    coarse->Update();
    return itk::ImageToTensor(coarse->GetOutput()).clone();
  };
  const auto filled = run1(false);
  const auto given = run1(true);
  // Tolerance 0: both feed the network the same floats.
  EXPECT_TRUE(torch::equal(filled, given));
  // ... and the value matters to this network (it is no accident that the two agree).
  noNegative->FillBuffer(0.0f);
  EXPECT_FALSE(torch::equal(filled, run1(true)));
}

// --init-model from a 2-channel coarse model: the network with the negative click channel starts as that model,
// whatever the negative click map holds; without --negative-click-channel the channel counts must agree.
TEST(NegativeClickChannel, InitializingFromATwoChannelModelReproducesItsOutput)
{
  itk::DivAttentionRuntime::Initialize();
  auto twoChannels = CorrectionOptions(correctionScratch.Folder("init").string());
  twoChannels.negativeClickChannel = false;
  torch::manual_seed(1);
  auto                   source = diva::CreateTrainingNetwork(twoChannels, 2);
  diva::ModelDescription description;
  description.inputChannels = twoChannels.InputChannelNames();
  description.preprocessing.patchSize = twoChannels.patchSize;
  description.preprocessing.targetSpacing = twoChannels.targetSpacing;
  diva::SetModelRole(description, 1);
  const auto loaded = diva::LoadModelFromBytes(diva::SaveModelToBytes(*source, description), "two-channel.pt");

  auto threeChannels = twoChannels;
  threeChannels.negativeClickChannel = true;
  torch::manual_seed(2);
  auto target = diva::CreateTrainingNetwork(threeChannels, 3);
  diva::InitializeFromModel(*target, loaded, threeChannels, "two-channel.pt");

  torch::NoGradGuard noGrad;
  source->eval();
  target->eval();
  const auto input = torch::randn({ 1, 2, 32, 32, 32 });
  const auto expected = source->Segment(input).logits;
  const auto scale = expected.abs().max().item<double>();
  ASSERT_GT(scale, 0.0);
  for (const float negative : { 1000.0f, 0.0f, -3.0f })
  {
    const auto withNegative = torch::cat({ input, torch::full({ 1, 1, 32, 32, 32 }, negative) }, 1);
    const auto actual = target->Segment(withNegative).logits;
    // Float tolerance: the 3-channel convolution adds exact zeros (0 x value) but may sum in another order; 1e-5 of
    // the logits' scale is far above that rounding (measured ~1e-7) and far below any real difference.
    EXPECT_LE((actual - expected).abs().max().item<double>(), 1e-5 * scale) << "negative map " << negative;
  }
  // A random negative map too.
  const auto random = torch::cat({ input, 100.0 * torch::rand({ 1, 1, 32, 32, 32 }) }, 1);
  EXPECT_LE((target->Segment(random).logits - expected).abs().max().item<double>(), 1e-5 * scale);

  // Without the option a 3-channel network cannot be built from the options, and a 2-channel file does not start one.
  auto refused = diva::CreateTrainingNetwork(threeChannels, 3);
  EXPECT_THROW(diva::InitializeFromModel(*refused, loaded, twoChannels, "two-channel.pt"), std::invalid_argument);
}

// Simulated corrections on a training sample (augmented: the sample's rotated, zoomed window must be found again):
// a network that finds nothing gets its next click positive, inside the object; one that marks everything gets it
// negative, outside the object; the click lands in the right channel at the click's voxel; samples without rounds
// are left alone and their network is not run.
TEST(SimulatedCorrections, TheNextClickGoesToTheCentreOfTheLargestErrorInItsChannel)
{
  itk::DivAttentionRuntime::Initialize();
  auto options = CorrectionOptions("");
  options.correctionRounds = 1;
  options.correctionProbability = 1.0;
  const auto   data = itk::PrepareTrainingData(options);
  const auto & source = *data.training;
  ASSERT_TRUE(source.CorrectionRoundsEnabled());
  const auto sample = source.MakeTrainingSample(1, 4);
  ASSERT_EQ(source.CorrectionRounds(1, 4), 1);
  const auto target = sample.target[0];
  ASSERT_GT(target.sum().item<double>(), 0.0);
  ASSERT_GT((1 - target).sum().item<double>(), 0.0);

  int        runs = 0;
  const auto nothing = [&runs](const torch::Tensor & input)
  {
    ++runs;
    EXPECT_EQ(input.size(0), 3);
    return torch::zeros({ input.size(1), input.size(2), input.size(3) });
  };
  std::vector<itk::CorrectionClick> clicks;
  const auto positive = source.SimulateCorrections(1, 4, sample.input, sample.target, nothing, &clicks);
  EXPECT_EQ(runs, 1);
  ASSERT_EQ(clicks.size(), 1u);
  EXPECT_TRUE(clicks[0].positive);
  EXPECT_TRUE(torch::equal(positive[0], sample.input[0]));                     // the CT channel stays
  EXPECT_TRUE(torch::equal(positive[2], sample.input[2]));                     // no negative click yet
  EXPECT_TRUE(torch::all(positive[1] <= sample.input[1] + 1e-4).item<bool>()); // one more click: nearer or equal
  const auto voxel = NewClickVoxel(sample.input[1], positive[1]);
  ASSERT_GE(voxel, 0);
  EXPECT_LT(positive[1].flatten()[voxel].item<float>(), 1e-3f); // the click sits on a voxel centre of the grid
  EXPECT_EQ(target.flatten()[voxel].item<float>(), 1.0f);       // inside the object

  runs = 0;
  clicks.clear();
  const auto everything = [&runs](const torch::Tensor & input)
  {
    ++runs;
    return torch::ones({ input.size(1), input.size(2), input.size(3) });
  };
  const auto negative = source.SimulateCorrections(1, 4, sample.input, sample.target, everything, &clicks);
  EXPECT_EQ(runs, 1);
  ASSERT_EQ(clicks.size(), 1u);
  EXPECT_FALSE(clicks[0].positive);
  EXPECT_TRUE(torch::equal(negative[1], sample.input[1])); // the positive map stays
  const auto negativeVoxel = NewClickVoxel(sample.input[2], negative[2]);
  ASSERT_GE(negativeVoxel, 0);
  EXPECT_LT(negative[2].flatten()[negativeVoxel].item<float>(), 1e-3f);
  EXPECT_EQ(target.flatten()[negativeVoxel].item<float>(), 0.0f); // outside the object

  // Two rounds with a network that finds the object once it has two clicks: one positive click, then no error.
  options.correctionRounds = 3;
  const auto three = itk::PrepareTrainingData(options);
  runs = 0;
  clicks.clear();
  const auto learns = [&runs, &target](const torch::Tensor &)
  { return ++runs == 1 ? torch::zeros_like(target) : target.clone(); };
  three.training->SimulateCorrections(1, 4, sample.input, sample.target, learns, &clicks);
  EXPECT_EQ(runs, 2); // the rounds stop when nothing is left to correct
  EXPECT_EQ(clicks.size(), 1u);

  // Probability 0: no rounds, the network is not run, the input is returned as it is.
  options.correctionProbability = 0.0;
  const auto none = itk::PrepareTrainingData(options);
  runs = 0;
  EXPECT_TRUE(none.training->SimulateCorrections(1, 4, sample.input, sample.target, nothing).is_same(sample.input));
  EXPECT_EQ(runs, 0);

  // Without the negative channel a false positive ends the rounds (the network could not be told).
  options.correctionProbability = 1.0;
  options.negativeClickChannel = false;
  const auto twoChannels = itk::PrepareTrainingData(options);
  const auto twoSample = twoChannels.training->MakeTrainingSample(1, 4);
  clicks.clear();
  const auto unchanged =
    twoChannels.training->SimulateCorrections(1, 4, twoSample.input, twoSample.target, everything, &clicks);
  EXPECT_TRUE(clicks.empty());
  EXPECT_TRUE(torch::equal(unchanged, twoSample.input));
}

// A run with corrections on half the samples (2 rounds) trains, the corrections change samples it trains on, and a
// resumed run continues exactly as the uninterrupted one (tolerance 0, one thread): the corrections depend only on
// the seed and the weights, which the checkpoint holds.
TEST(SimulatedCorrections, TrainingWithCorrectionsRunsAndResumesExactly)
{
  itk::DivAttentionRuntime::Initialize();
  itk::DivAttentionRuntime::SetThreadBudget(1);
  at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
  auto uninterrupted = CorrectionOptions(correctionScratch.Folder("whole").string());
  uninterrupted.correctionRounds = 2;
  uninterrupted.correctionProbability = 0.5;
  uninterrupted.epochs = 2;
  uninterrupted.deterministic = true;
  auto       whole = MakeCorrectionRun(uninterrupted);
  const auto expected = whole->trainer->Fit();
  ASSERT_EQ(expected.history.size(), 2u);
  EXPECT_GT(*whole->correctedSamples, 0u);
  EXPECT_TRUE(std::isfinite(expected.history[1].trainingLoss));

  auto interrupted = uninterrupted;
  interrupted.outputDirectory = correctionScratch.Folder("interrupted").string();
  interrupted.epochs = 1;
  MakeCorrectionRun(interrupted)->trainer->Fit();

  torch::manual_seed(12345); // a fresh process: other weights and generator state until Resume restores them
  auto resumedOptions = diva::Trainer::CheckpointOptions(interrupted.outputDirectory + "/latest.pt");
  EXPECT_TRUE(resumedOptions.negativeClickChannel);
  EXPECT_EQ(resumedOptions.correctionRounds, 2);
  resumedOptions.epochs = 2;
  auto resumed = MakeCorrectionRun(resumedOptions);
  resumed->trainer->Resume(interrupted.outputDirectory + "/latest.pt");
  const auto actual = resumed->trainer->Fit();
  ASSERT_EQ(actual.history.size(), 2u);
  EXPECT_GT(*resumed->correctedSamples, 0u);
  EXPECT_EQ(actual.history[1].trainingLoss, expected.history[1].trainingLoss);
  EXPECT_EQ(actual.history[1].dice, expected.history[1].dice);
  const auto a = whole->network->named_parameters();
  const auto b = resumed->network->named_parameters();
  for (const auto & item : a)
  {
    EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
  }
}
