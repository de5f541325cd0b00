// Training throughput at 96^3 (Documentation/Performance.md, "Training"), through the data path DivAttentionTrain uses:
// PrepareTrainingData (phantom dataset, split, normalisation) -> TrainingSampleSource::MakeTrainingSample (clicks,
// crops, augmentation) -> BatchPrefetcher (loader threads, as in Trainer::Fit) -> CreateTrainingNetwork -> the
// deep-supervised loss of eqs. 6-8 -> Adam. Validation and checkpoints are left out: they are per epoch, not per step.
//
// - BM_TrainingThroughput/<model>/<preset>/<variant>: training samples/s, batch 2, 2 threads, one loader thread (the
//   trainer's CPU default) that shares the 2 cores with the step, as it does in a real run. mUnet trains stage 1
//   (CT + click map), UNETR and ESPNet3D stage 2 (the PCA crop).
// - BM_DataPipeline/stage:S/loaders:L: the data pipeline alone, samples/s that L loader threads make (batches of 2).
//   Each iteration starts a fresh prefetcher and takes 8 batches from it, so no batch made before the clock started
//   is counted.
#include "DivAttentionTinyTraining.h"
#include "divaSegmentationLoss.h"
#include "divaTrainer.h"
#include "itkDivAttentionRuntime.h"
#include "itkTrainingSampleSource.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace
{
constexpr int64_t BatchSize = 2;
constexpr int     Threads = 2;

// Four phantoms at 2 x 2 x 3 mm (about 190 x 150 x 87 voxels), written once per process into a scratch folder removed
// at exit; the spleen (label 2) is the object, as MSD-Spleen.
const std::string &
PhantomDataset()
{
  static const diva::testing::ScratchFolder scratch("training-bench");
  static const std::string path = diva::testing::WritePhantomDataset(scratch.Folder("phantoms"), 4, 2.0, 3.0);
  return path;
}

// DivAttentionTrain's defaults (96^3, augmentation on, stage 1 at 1 mm) but for the batch and the thread budget.
diva::TrainingOptions
BenchmarkOptions(int stage)
{
  diva::TrainingOptions options;
  options.stage = stage;
  options.dataset = PhantomDataset();
  options.targetLabels = { 2 };
  options.batchSize = BatchSize;
  options.threads = Threads;
  options.device = "cpu";
  options.progress = false;
  return options;
}

// The loaded training data of each stage, shared by every benchmark of the process.
const itk::TrainingSampleSource &
Samples(int stage)
{
  static std::mutex                                        mutex;
  static std::map<int, std::unique_ptr<itk::TrainingData>> loaded;
  std::lock_guard<std::mutex>                              lock(mutex);
  auto &                                                   data = loaded[stage];
  if (!data)
  {
    data = std::make_unique<itk::TrainingData>(itk::PrepareTrainingData(BenchmarkOptions(stage)));
  }
  return *data->training;
}

// Batch `index` as Trainer::MakeTrainingBatch makes it: consecutive instances of the epoch's shuffled order.
diva::Batch
MakeBatch(const itk::TrainingSampleSource & source, const std::vector<size_t> & order, size_t index)
{
  std::vector<torch::Tensor> inputs, targets;
  std::vector<size_t>        instances;
  for (int64_t i = 0; i < BatchSize; ++i)
  {
    const size_t position = index * static_cast<size_t>(BatchSize) + static_cast<size_t>(i);
    const auto   sample =
      source.MakeTrainingSample(order[position % order.size()], static_cast<int64_t>(position / order.size()));
    inputs.push_back(sample.input);
    targets.push_back(sample.target);
    instances.push_back(order[position % order.size()]);
  }
  return { torch::stack(inputs), torch::stack(targets), instances };
}

void
TrainingThroughput(benchmark::State & state, std::string model, std::string preset, bool divAttention)
{
  itk::DivAttentionRuntime::SetThreadBudget(Threads);
  const int  stage = model == "munet" ? 1 : 2;
  const auto order = diva::Trainer::EpochOrder(Samples(stage).NumberOfInstances(), 0, 0);
  auto       options = BenchmarkOptions(stage);
  options.model = model;
  options.preset = preset;
  options.divAttention = divAttention;
  torch::manual_seed(0);
  auto network = diva::CreateTrainingNetwork(options, stage == 1 ? 2 : 1);
  network->train();
  torch::optim::Adam optimizer(network->parameters(), torch::optim::AdamOptions(options.learningRate));
  const auto         lossOptions = diva::SegmentationLossOptions()
                             .alpha(options.lossAlpha)
                             .beta(options.lossBeta)
                             .gamma(options.lossGamma)
                             .dice_form(diva::ParseDiceForm(options.diceForm));
  const itk::TrainingSampleSource & source = Samples(stage);
  // As many batches as any run can take; the prefetcher only ever makes `depth` of them ahead.
  diva::BatchPrefetcher batches(
    size_t{ 1 } << 30, [&source, &order](size_t index) { return MakeBatch(source, order, index); },
    static_cast<size_t>(options.prefetchBatches), 1);
  auto step = [&]()
  {
    const diva::Batch batch = batches.Next();
    optimizer.zero_grad();
    torch::Tensor loss = diva::DeepSupervisedLoss(network->Segment(batch.input), batch.target, lossOptions);
    loss.backward();
    optimizer.step();
    benchmark::DoNotOptimize(loss.item<double>());
  };
  step(); // warm-up: first touch of buffers, oneDNN primitives, Adam's state
  for (auto _ : state)
  {
    step();
  }
  state.counters["samples/s"] =
    benchmark::Counter(static_cast<double>(BatchSize * state.iterations()), benchmark::Counter::kIsRate);
}

void
DataPipeline(benchmark::State & state)
{
  itk::DivAttentionRuntime::SetThreadBudget(Threads);
  const int                         stage = static_cast<int>(state.range(0));
  const auto                        loaders = static_cast<size_t>(state.range(1));
  const itk::TrainingSampleSource & source = Samples(stage);
  const auto                        order = diva::Trainer::EpochOrder(source.NumberOfInstances(), 0, 0);
  constexpr size_t                  batchesPerIteration = 8;
  MakeBatch(source, order, 0); // warm-up
  size_t first = 0;
  for (auto _ : state)
  {
    // Depth = every batch of the iteration: the loaders never wait for the consumer.
    diva::BatchPrefetcher batches(
      batchesPerIteration, [&source, &order, first](size_t index) { return MakeBatch(source, order, first + index); },
      batchesPerIteration, loaders);
    for (size_t i = 0; i < batchesPerIteration; ++i)
    {
      benchmark::DoNotOptimize(batches.Next().input.data_ptr());
    }
    first += batchesPerIteration;
  }
  state.counters["samples/s"] =
    benchmark::Counter(static_cast<double>(BatchSize * static_cast<int64_t>(batchesPerIteration) * state.iterations()),
                       benchmark::Counter::kIsRate);
}

void
RegisterAll()
{
  const std::pair<const char *, const char *> models[] = { { "mUnet", "munet" },
                                                           { "UNETR", "unetr" },
                                                           { "ESPNet3D", "espnet" } };
  for (const auto & [title, model] : models)
  {
    for (const std::string preset : { "small", "paper" })
    {
      for (const bool divAttention : { false, true })
      {
        const std::string name = "BM_TrainingThroughput/" + std::string(title) + "/" + preset +
                                 (divAttention ? "/div-attention" : "/baseline");
        benchmark::RegisterBenchmark(name.c_str(), TrainingThroughput, std::string(model), preset, divAttention)
          ->Unit(benchmark::kSecond)
          ->MinTime(10.0)
          ->UseRealTime();
      }
    }
  }
  benchmark::RegisterBenchmark("BM_DataPipeline", DataPipeline)
    ->ArgNames({ "stage", "loaders" })
    ->ArgsProduct({ { 1, 2 }, { 1, 2 } })
    ->Unit(benchmark::kMillisecond)
    ->MinTime(5.0)
    ->UseRealTime();
}

const bool g_Registered = (RegisterAll(), true);
} // namespace
