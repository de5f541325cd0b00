#include "divaTrainer.h"

#include "divaAtomicFile.h"
#include "divaDistributedContext.h"
#include "divaESPNet3D.h"
#include "divaMUnet.h"
#include "divaSegmentationLoss.h"
#include "divaSegmentationMetrics.h"
#include "divaUNETR.h"

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <unistd.h>

namespace diva
{
namespace
{
std::atomic<bool> stopRequested{ false };

nlohmann::json
ToJson(const EpochRecord & r)
{
  return { { "epoch", r.epoch },
           { "training_loss", r.trainingLoss },
           { "validation_loss", r.validationLoss },
           { "dice", r.dice },
           { "recall", r.recall },
           { "precision", r.precision },
           { "learning_rate", r.learningRate },
           { "seconds", r.seconds } };
}

EpochRecord
RecordFromJson(const nlohmann::json & j)
{
  EpochRecord r;
  r.epoch = j.at("epoch").get<int64_t>();
  r.trainingLoss = j.at("training_loss").get<double>();
  r.validationLoss = j.at("validation_loss").get<double>();
  r.dice = j.at("dice").get<double>();
  r.recall = j.at("recall").get<double>();
  r.precision = j.at("precision").get<double>();
  r.learningRate = j.at("learning_rate").get<double>();
  r.seconds = j.at("seconds").get<double>();
  return r;
}

void
SetLearningRate(torch::optim::Optimizer & optimizer, double rate)
{
  for (auto & group : optimizer.param_groups())
  {
    static_cast<torch::optim::AdamOptions &>(group.options()).lr(rate);
  }
}

std::string
Clock(double seconds)
{
  const auto         total = static_cast<int64_t>(seconds + 0.5);
  std::ostringstream text;
  text << total / 3600 << ':' << std::setw(2) << std::setfill('0') << (total / 60) % 60 << ':' << std::setw(2)
       << std::setfill('0') << total % 60;
  return text.str();
}
} // namespace

BatchPrefetcher::BatchPrefetcher(size_t count, std::function<Batch(size_t)> produce, size_t depth, size_t workers)
    : m_Count(count), m_Produce(std::move(produce)), m_Depth(depth)
{
  if (m_Depth == 0)
  {
    return;
  }
  for (size_t w = 0; w < std::max<size_t>(1, workers); ++w)
  {
    m_Threads.emplace_back([this]() { Work(); });
  }
}

void
BatchPrefetcher::Work()
{
  for (;;)
  {
    size_t index = 0;
    {
      // Claim the next batch once it is within `depth` of the consumer.
      std::unique_lock<std::mutex> lock(m_Mutex);
      m_Changed.wait(lock,
                     [this]() { return m_Stop || m_Error || m_Claimed >= m_Count || m_Claimed < m_Taken + m_Depth; });
      if (m_Stop || m_Error || m_Claimed >= m_Count)
      {
        return;
      }
      index = m_Claimed++;
    }
    try
    {
      Batch                       batch = m_Produce(index);
      std::lock_guard<std::mutex> lock(m_Mutex);
      m_Ready.emplace(index, std::move(batch));
    }
    catch (...)
    {
      std::lock_guard<std::mutex> lock(m_Mutex);
      if (!m_Error)
      {
        m_Error = std::current_exception();
      }
    }
    m_Changed.notify_all();
  }
}

BatchPrefetcher::~BatchPrefetcher()
{
  {
    std::lock_guard<std::mutex> lock(m_Mutex);
    m_Stop = true;
  }
  m_Changed.notify_all();
  for (auto & thread : m_Threads)
  {
    thread.join();
  }
}

Batch
BatchPrefetcher::Next()
{
  if (m_Taken >= m_Count)
  {
    throw std::out_of_range("BatchPrefetcher: no batch left");
  }
  if (m_Depth == 0)
  {
    return m_Produce(m_Taken++);
  }
  std::unique_lock<std::mutex> lock(m_Mutex);
  m_Changed.wait(lock, [this]() { return m_Ready.count(m_Taken) != 0 || m_Error; });
  const auto found = m_Ready.find(m_Taken);
  if (found == m_Ready.end())
  {
    std::rethrow_exception(m_Error);
  }
  Batch batch = std::move(found->second);
  m_Ready.erase(found);
  ++m_Taken;
  m_Changed.notify_all();
  return batch;
}

std::shared_ptr<SegmentationNetworkImpl>
CreateTrainingNetwork(const TrainingOptions & options, int64_t inputChannels)
{
  const auto model = options.ResolvedModel();
  // Each host's own switch (its default fusion kernel), with what the options set.
  auto configure = [&](DivAttentionSwitch divAttention)
  {
    divAttention.enabled(options.divAttention)
      .refined_norm_scale(ParseRefinedNormScale(options.divAttentionRefinedNormScale));
    if (options.divAttentionFusionKernel != 0)
    {
      divAttention.fusion_kernel_size(options.divAttentionFusionKernel);
    }
    return divAttention;
  };
  Settings settings;
  if (model == "munet")
  {
    const auto preset = MUnetOptions::Preset(options.preset);
    settings = MUnetOptions(preset)
                 .in_channels(inputChannels)
                 .deep_supervision(true)
                 .div_attention(configure(preset.div_attention()))
                 .ToSettings();
  }
  else if (model == "unetr")
  {
    if (options.patchSize[0] != options.patchSize[1] || options.patchSize[0] != options.patchSize[2])
    {
      throw std::invalid_argument("UNETR needs a cubic patch");
    }
    const auto preset = UNETROptions::Preset(options.preset);
    settings = UNETROptions(preset)
                 .in_channels(inputChannels)
                 .image_size(options.patchSize[0])
                 .div_attention(configure(preset.div_attention()))
                 .ToSettings();
  }
  else
  {
    const auto preset = ESPNet3DOptions::Preset(options.preset);
    settings =
      ESPNet3DOptions(preset).in_channels(inputChannels).div_attention(configure(preset.div_attention())).ToSettings();
  }
  auto network = CreateNetwork(settings);
  for (const auto side : options.patchSize)
  {
    if (side % network->GetSizeDivisor() != 0)
    {
      throw std::invalid_argument("patch size " + std::to_string(side) + " is not a multiple of " +
                                  std::to_string(network->GetSizeDivisor()) + ", which " + model + " needs");
    }
  }
  return network;
}

namespace
{
std::string
ShapeText(const torch::Tensor & tensor)
{
  std::ostringstream text;
  text << tensor.sizes();
  return text.str();
}
} // namespace

void
InitializeFromModel(SegmentationNetworkImpl & network,
                    const LoadedModel &       source,
                    const TrainingOptions &   options,
                    const std::string &       sourceName)
{
  const std::string prefix = "--init-model \"" + sourceName + "\": ";
  const std::string expectedRole = options.stage == 1 ? "coarse" : "refine";
  if (source.description.role != "unknown" && source.description.role != expectedRole)
  {
    throw std::invalid_argument(prefix + "a " + source.description.role + " model cannot start a stage-" +
                                std::to_string(options.stage) + " run (it needs a " + expectedRole + " model)");
  }
  const auto & p = source.description.preprocessing;
  if (p.patchSize != options.patchSize || p.targetSpacing != options.targetSpacing)
  {
    std::ostringstream text;
    text << prefix << "the model was trained on " << p.patchSize[0] << 'x' << p.patchSize[1] << 'x' << p.patchSize[2]
         << " patches at " << p.targetSpacing[0] << ',' << p.targetSpacing[1] << ',' << p.targetSpacing[2]
         << " mm; give the same --patch and --spacing";
    throw std::invalid_argument(text.str());
  }
  torch::NoGradGuard noGrad;
  auto               copyAll = [&](const torch::OrderedDict<std::string, torch::Tensor> & from,
                     torch::OrderedDict<std::string, torch::Tensor> & to, const char * kind)
  {
    if (from.size() != to.size())
    {
      throw std::invalid_argument(prefix + "the file has " + std::to_string(from.size()) + " " + kind +
                                  "s, the network " + std::to_string(to.size()) +
                                  " (give the model's --model, --preset, div-attention and fusion options)");
    }
    for (auto & item : to)
    {
      const torch::Tensor * stored = from.find(item.key());
      if (stored == nullptr)
      {
        throw std::invalid_argument(prefix + "no " + kind + " \"" + item.key() +
                                    "\" in the file (give the model's --model, --preset, div-attention and fusion "
                                    "options)");
      }
      if (!stored->sizes().equals(item.value().sizes()))
      {
        throw std::invalid_argument(prefix + kind + " \"" + item.key() + "\" is " + ShapeText(*stored) +
                                    " in the file but " + ShapeText(item.value()) + " in the network");
      }
      item.value().copy_(stored->to(item.value().device(), item.value().scalar_type()));
    }
  };
  auto          fromParameters = source.network->named_parameters();
  auto          toParameters = network.named_parameters();
  const int64_t fileChannels = source.network->GetInputChannels();
  const int64_t networkChannels = network.GetInputChannels();
  if (fileChannels != networkChannels && options.stage == 1 && options.negativeClickChannel && fileChannels == 2 &&
      networkChannels == 3)
  {
    // A 2-channel coarse model starts a network with the negative click channel: the weights reading the input take
    // the file's weights in channels 0-1 and zeros in channel 2, so the network's output is the file's to start with.
    size_t widened = 0;
    for (auto & item : fromParameters)
    {
      const torch::Tensor * target = toParameters.find(item.key());
      if (target == nullptr || item.value().dim() < 2 || target->dim() != item.value().dim() ||
          item.value().size(1) != fileChannels || target->size(1) != networkChannels)
      {
        continue;
      }
      auto shape = item.value().sizes().vec();
      shape[1] = networkChannels;
      if (!target->sizes().equals(shape))
      {
        continue;
      }
      auto padded = torch::zeros(shape, item.value().options());
      padded.narrow(1, 0, fileChannels).copy_(item.value());
      item.value() = padded;
      ++widened;
    }
    if (widened == 0)
    {
      throw std::invalid_argument(prefix + "no weight of the file reads its " + std::to_string(fileChannels) +
                                  " input channels: cannot add the negative click channel");
    }
  }
  copyAll(fromParameters, toParameters, "parameter");
  auto fromBuffers = source.network->named_buffers();
  auto toBuffers = network.named_buffers();
  copyAll(fromBuffers, toBuffers, "buffer");
}

void
SetModelRole(ModelDescription & description, int stage)
{
  description.role = stage == 1 ? "coarse" : "refine";
}

void
Trainer::RequestStop()
{
  stopRequested.store(true);
}

void
Trainer::ClearStopRequest()
{
  stopRequested.store(false);
}

std::vector<size_t>
Trainer::EpochOrder(size_t count, uint64_t seed, int64_t epoch)
{
  std::vector<size_t> order(count);
  for (size_t i = 0; i < count; ++i)
  {
    order[i] = i;
  }
  std::mt19937_64 generator(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) + 1);
  for (size_t i = count; i > 1; --i)
  {
    // Integer draw (modulo bias is negligible for dataset sizes); fixed on every platform, unlike std:: distributions.
    std::swap(order[i - 1], order[generator() % i]);
  }
  return order;
}

Trainer::Trainer(const TrainingOptions &                  options,
                 std::shared_ptr<SegmentationNetworkImpl> network,
                 SampleProvider                           data,
                 ModelDescription                         description)
    : m_Options(options), m_Network(std::move(network)), m_Data(std::move(data)), m_Description(std::move(description))
{
  m_Options.Validate();
  if (m_Data.trainingCount == 0 || m_Data.validationCount == 0)
  {
    throw std::invalid_argument("training needs at least one training and one validation instance (have " +
                                std::to_string(m_Data.trainingCount) + " and " +
                                std::to_string(m_Data.validationCount) + ")");
  }
  m_Device = m_Options.device == "auto"
               ? (torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU))
               : torch::Device(m_Options.device);
  m_Network->to(m_Device);
  m_Optimizer =
    std::make_unique<torch::optim::Adam>(m_Network->parameters(), torch::optim::AdamOptions(m_Options.learningRate));
  SetModelRole(m_Description, m_Options.stage);
}

void
Trainer::SaveCheckpoint(const std::string & path) const
{
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model;
  m_Network->save(model);
  archive.write("model", model);
  torch::serialize::OutputArchive optimizer;
  m_Optimizer->save(optimizer);
  archive.write("optimizer", optimizer);
  {
    at::Generator               generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write("torch_cpu_generator", generator.get_state());
  }
  nlohmann::json state;
  state["format"] = "DivAttention training checkpoint 1";
  state["next_epoch"] = m_NextEpoch;
  state["best_epoch"] = m_State.bestEpoch;
  state["best_dice"] = m_State.bestDice;
  state["epochs_without_improvement"] = m_State.epochsWithoutImprovement;
  state["seed"] = m_Options.seed;
  state["options"] = m_Options;
  state["history"] = nlohmann::json::array();
  for (const auto & record : m_State.history)
  {
    state["history"].push_back(ToJson(record));
  }
  archive.write("state", c10::IValue(state.dump()));
  WriteFileAtomically(path, [&](const std::string & temporary) { archive.save_to(temporary); });
}

namespace
{
nlohmann::json
ReadCheckpointState(torch::serialize::InputArchive & archive, const std::string & checkpointPath)
{
  try
  {
    archive.load_from(checkpointPath);
    c10::IValue stateText;
    archive.read("state", stateText);
    return nlohmann::json::parse(stateText.toStringRef());
  }
  catch (const c10::Error & error)
  {
    throw std::runtime_error("checkpoint \"" + checkpointPath + "\": cannot be read (" +
                             error.what_without_backtrace() + ")");
  }
  catch (const nlohmann::json::exception & error)
  {
    throw std::runtime_error("checkpoint \"" + checkpointPath + "\": bad state (" + error.what() + ")");
  }
}
} // namespace

TrainingOptions
Trainer::CheckpointOptions(const std::string & checkpointPath)
{
  torch::serialize::InputArchive archive;
  return CheckpointTrainingOptions(ReadCheckpointState(archive, checkpointPath).at("options"), checkpointPath);
}

void
Trainer::Resume(const std::string & checkpointPath)
{
  torch::serialize::InputArchive archive;
  const auto                     state = ReadCheckpointState(archive, checkpointPath);
  torch::serialize::InputArchive model;
  archive.read("model", model);
  m_Network->load(model);
  m_Network->to(m_Device);
  torch::serialize::InputArchive optimizer;
  archive.read("optimizer", optimizer);
  m_Optimizer->load(optimizer);
  torch::Tensor generatorState;
  archive.read("torch_cpu_generator", generatorState);
  {
    at::Generator               generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(generatorState);
  }
  m_NextEpoch = state.at("next_epoch").get<int64_t>();
  m_State.bestEpoch = state.at("best_epoch").get<int64_t>();
  m_State.bestDice = state.at("best_dice").get<double>();
  m_State.epochsWithoutImprovement = state.at("epochs_without_improvement").get<int64_t>();
  m_State.history.clear();
  for (const auto & record : state.at("history"))
  {
    m_State.history.push_back(RecordFromJson(record));
  }
  if (!m_Options.outputDirectory.empty())
  {
    RemoveStaleTemporaries(m_Options.outputDirectory); // left by a run killed in the middle of a write
  }
}

void
Trainer::WriteLog() const
{
  WriteFileAtomically(m_Options.outputDirectory + "/training_log.csv",
                      [&](const std::string & temporary)
                      {
                        std::ofstream out(temporary);
                        out << "epoch,training_loss,validation_loss,dice,recall,precision,learning_rate,seconds\n";
                        out << std::setprecision(9);
                        for (const auto & r : m_State.history)
                        {
                          out << r.epoch << ',' << r.trainingLoss << ',' << r.validationLoss << ',' << r.dice << ','
                              << r.recall << ',' << r.precision << ',' << r.learningRate << ',' << r.seconds << '\n';
                        }
                        if (!out.flush())
                        {
                          throw std::runtime_error("cannot write " + temporary);
                        }
                      });
}

Batch
Trainer::MakeTrainingBatch(const std::vector<size_t> & order, size_t batchIndex, int64_t epoch) const
{
  std::vector<torch::Tensor> inputs;
  std::vector<torch::Tensor> targets;
  std::vector<size_t>        instances;
  // Distributed: rank r of W takes samples r, r + W, ... of the global batch, so the ranks together see the batch that
  // one process would.
  const int64_t ranks = m_Distributed ? m_Distributed->WorldSize() : 1;
  for (int64_t i = m_Distributed ? m_Distributed->Rank() : 0; i < m_Options.batchSize; i += ranks)
  {
    // Steps beyond one pass wrap around the epoch's order.
    const size_t position =
      (batchIndex * static_cast<size_t>(m_Options.batchSize) + static_cast<size_t>(i)) % order.size();
    auto sample = m_Data.training(order[position], epoch);
    inputs.push_back(sample.first);
    targets.push_back(sample.second);
    instances.push_back(order[position]);
  }
  return { torch::stack(inputs), torch::stack(targets), instances };
}

void
Trainer::ApplyCorrections(Batch & batch, int64_t epoch)
{
  if (!m_Data.correction)
  {
    return;
  }
  const SampleProvider::Segmenter segment = [this](const torch::Tensor & input)
  {
    torch::NoGradGuard noGrad;
    m_Network->eval();
    const auto output = m_Network->Segment(input.unsqueeze(0).to(m_Device), SegmentationRequest{ false });
    m_Network->train();
    return (ForegroundProbability(output.logits) >= 0.5).squeeze(0).squeeze(0).cpu();
  };
  for (size_t i = 0; i < batch.instances.size(); ++i)
  {
    torch::Tensor sample = batch.input[static_cast<int64_t>(i)]; // a view: written through below
    const auto    corrected =
      m_Data.correction(batch.instances[i], epoch, sample, batch.target[static_cast<int64_t>(i)], segment);
    if (!corrected.is_same(sample))
    {
      sample.copy_(corrected);
    }
  }
}

size_t
Trainer::LoaderThreads() const
{
  if (m_Options.loaderThreads > 0)
  {
    return static_cast<size_t>(m_Options.loaderThreads);
  }
  return m_Device.is_cuda() ? std::max<size_t>(2, std::thread::hardware_concurrency() / 4) : 1;
}

EpochRecord
Trainer::Validate()
{
  torch::NoGradGuard noGrad;
  m_Network->eval();
  const auto lossOptions = SegmentationLossOptions()
                             .alpha(m_Options.lossAlpha)
                             .beta(m_Options.lossBeta)
                             .gamma(m_Options.lossGamma)
                             .dice_form(ParseDiceForm(m_Options.diceForm));
  EpochRecord record;
  double      lossSum = 0.0;
  size_t      first = 0;
  size_t      stride = 1;
  if (m_Distributed)
  {
    // Every rank validates rank 0's model (batch-norm statistics move with each rank's own batches) on instances
    // r, r + W, ...; the sums are reduced below.
    m_Distributed->Broadcast(m_Network->buffers());
    first = static_cast<size_t>(m_Distributed->Rank());
    stride = static_cast<size_t>(m_Distributed->WorldSize());
  }
  for (size_t index = first; index < m_Data.validationCount; index += stride)
  {
    const auto          sample = m_Data.validation(index);
    const torch::Tensor input = sample.first.unsqueeze(0).to(m_Device);
    const torch::Tensor target = sample.second.unsqueeze(0).to(m_Device);
    const auto          output = m_Network->Segment(input);
    lossSum += SegmentationLoss(output.logits, target, lossOptions).item<double>();
    const auto metrics = ComputeBinaryMetrics(ForegroundProbability(output.logits) >= 0.5, target);
    record.dice += metrics.dice;
    record.recall += metrics.recall;
    record.precision += metrics.precision;
  }
  if (m_Distributed)
  {
    const auto sums = m_Distributed->Sum({ lossSum, record.dice, record.recall, record.precision });
    lossSum = sums[0];
    record.dice = sums[1];
    record.recall = sums[2];
    record.precision = sums[3];
  }
  const auto count = static_cast<double>(m_Data.validationCount);
  record.validationLoss = lossSum / count;
  record.dice /= count;
  record.recall /= count;
  record.precision /= count;
  return record;
}

TrainingSummary
Trainer::Fit()
{
  const auto lossOptions = SegmentationLossOptions()
                             .alpha(m_Options.lossAlpha)
                             .beta(m_Options.lossBeta)
                             .gamma(m_Options.lossGamma)
                             .dice_form(ParseDiceForm(m_Options.diceForm));
  const int64_t stepsPerEpoch =
    m_Options.stepsPerEpoch > 0
      ? m_Options.stepsPerEpoch
      : static_cast<int64_t>((m_Data.trainingCount + static_cast<size_t>(m_Options.batchSize) - 1) /
                             static_cast<size_t>(m_Options.batchSize));
  const bool showBar = m_Options.progress && isatty(STDERR_FILENO) && IsMainRank();
  SynchronizeRanks();
  m_State.interrupted = false;
  const auto runStart = std::chrono::steady_clock::now();
  int64_t    epochsThisRun = 0;
  // A run killed after its early-stopping epoch was committed but before final.pt must not train on when resumed.
  const bool patienceSpent = m_Options.patience > 0 && m_State.epochsWithoutImprovement >= m_Options.patience;
  m_State.stoppedEarly = patienceSpent;
  while (m_NextEpoch < m_Options.epochs && !patienceSpent)
  {
    const int64_t epoch = m_NextEpoch;
    const auto    epochStart = std::chrono::steady_clock::now();
    const double  rate =
      ScheduledLearningRate(m_Options.learningRate, m_Options.milestones, m_Options.learningRateGamma, epoch);
    SetLearningRate(*m_Optimizer, rate);
    m_Network->train();
    const auto      order = EpochOrder(m_Data.trainingCount, m_Options.seed, epoch);
    BatchPrefetcher batches(
      static_cast<size_t>(stepsPerEpoch),
      [this, &order, epoch](size_t index) { return MakeTrainingBatch(order, index, epoch); },
      static_cast<size_t>(m_Options.prefetchBatches), LoaderThreads());
    double lossSum = 0.0;
    for (int64_t step = 0; step < stepsPerEpoch; ++step)
    {
      Batch batch = batches.Next();
      ApplyCorrections(batch, epoch);
      m_Optimizer->zero_grad();
      const auto    output = m_Network->Segment(batch.input.to(m_Device));
      torch::Tensor loss = DeepSupervisedLoss(output, batch.target.to(m_Device), lossOptions);
      loss.backward();
      double stepLoss = loss.item<double>();
      bool   stop = stopRequested.load();
      if (m_Distributed)
      {
        // One all-reduce per step: the mean gradient, the loss for the log, and whether any rank was asked to stop
        // (so that all stop after the same step).
        const auto sums = m_Distributed->AverageGradients(m_Network->parameters(), { stepLoss, stop ? 1.0 : 0.0 });
        stepLoss = sums[0] / m_Distributed->WorldSize();
        stop = sums[1] > 0.0;
      }
      m_Optimizer->step();
      lossSum += stepLoss;
      if (showBar)
      {
        const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - runStart).count();
        const double done = static_cast<double>(epochsThisRun * stepsPerEpoch + step + 1);
        const double total = static_cast<double>((m_Options.epochs - epoch + epochsThisRun) * stepsPerEpoch);
        const int filled = static_cast<int>(20.0 * static_cast<double>(step + 1) / static_cast<double>(stepsPerEpoch));
        std::cerr << "\repoch " << epoch + 1 << '/' << m_Options.epochs << " [" << std::string(filled, '#')
                  << std::string(20 - filled, '.') << "] " << step + 1 << '/' << stepsPerEpoch << " loss " << std::fixed
                  << std::setprecision(4) << lossSum / static_cast<double>(step + 1) << " left "
                  << Clock(elapsed / done * (total - done)) << "   " << std::flush;
      }
      if (stop)
      {
        m_State.interrupted = true;
        std::cerr << "\n"
                  << (IsMainRank() ? "" : "rank " + std::to_string(m_Distributed->Rank()) + ": ")
                  << "stop requested: epoch " << epoch + 1 << " dropped; " << m_Options.outputDirectory
                  << "/latest.pt holds epoch " << epoch << std::endl;
        return m_State;
      }
    }
    EpochRecord record = Validate();
    record.epoch = epoch + 1;
    record.trainingLoss = lossSum / static_cast<double>(stepsPerEpoch);
    record.learningRate = rate;
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epochStart).count();
    m_State.history.push_back(record);
    ++epochsThisRun;
    bool improved = record.dice > m_State.bestDice + m_Options.minimumImprovement;
    if (m_Distributed)
    {
      // The ranks hold the same reduced metrics; rank 0's decision is made everyone's all the same, so that early
      // stopping can never leave one rank training alone.
      auto decision = torch::full({ 1 }, improved ? 1 : 0, torch::kInt64);
      m_Distributed->Broadcast({ decision });
      improved = decision.item<int64_t>() != 0;
    }
    if (improved)
    {
      m_State.bestDice = record.dice;
      m_State.bestEpoch = record.epoch;
      m_State.epochsWithoutImprovement = 0;
    }
    else
    {
      ++m_State.epochsWithoutImprovement;
    }
    m_NextEpoch = epoch + 1; // the checkpoint says where to continue
    if (showBar)
    {
      std::cerr << '\n';
    }
    if (IsMainRank())
    {
      std::cout << "epoch " << record.epoch << '/' << m_Options.epochs << ": loss " << record.trainingLoss
                << ", validation loss " << record.validationLoss << ", Dice " << record.dice << ", recall "
                << record.recall << ", precision " << record.precision << ", lr " << rate << ", " << record.seconds
                << " s" << (improved ? " (best)" : "") << std::endl;
    }
    if (!m_Options.outputDirectory.empty() && IsMainRank())
    {
      // latest.pt last: it commits the epoch. A kill before it makes a resumed run redo the epoch (which rewrites the
      // other files the same way); a kill after it finds best.pt, model-best.pt and the log already up to date.
      if (improved)
      {
        SaveCheckpoint(m_Options.outputDirectory + "/best.pt");
        m_Network->eval();
        ModelSaveOptions saveOptions;
        saveOptions.float16 = m_Options.exportFloat16;
        SaveModel(m_Options.outputDirectory + "/model-best.pt", *m_Network, m_Description, saveOptions);
      }
      WriteLog();
      SaveCheckpoint(m_Options.outputDirectory + "/latest.pt");
    }
    if (m_Options.patience > 0 && m_State.epochsWithoutImprovement >= m_Options.patience)
    {
      m_State.stoppedEarly = true;
      if (IsMainRank())
      {
        std::cout << "early stopping: no validation Dice improvement for " << m_Options.patience << " epochs (best "
                  << m_State.bestDice << " at epoch " << m_State.bestEpoch << ")" << std::endl;
      }
      break;
    }
  }
  if (!m_Options.outputDirectory.empty() && IsMainRank())
  {
    SaveCheckpoint(m_Options.outputDirectory + "/final.pt");
  }
  return m_State;
}

void
Trainer::UseDistributed(std::shared_ptr<DistributedContext> group)
{
  if (group && m_Options.batchSize % group->WorldSize() != 0)
  {
    throw std::invalid_argument("batch size " + std::to_string(m_Options.batchSize) + " is not a multiple of the " +
                                "world size " + std::to_string(group->WorldSize()) +
                                " (the batch size is the global batch; each rank takes batch / world size)");
  }
  m_Distributed = std::move(group);
}

bool
Trainer::IsMainRank() const
{
  return !m_Distributed || m_Distributed->IsMain();
}

void
Trainer::SynchronizeRanks()
{
  if (!m_Distributed)
  {
    return;
  }
  // A fresh run may have drawn other initial weights on each rank; a resumed one read them from its own copy of the
  // checkpoint. Rank 0's win either way. (Optimizer state is not sent: resumed ranks read the same latest.pt.)
  std::vector<torch::Tensor> state = m_Network->parameters();
  for (const auto & buffer : m_Network->buffers())
  {
    state.push_back(buffer);
  }
  m_Distributed->Broadcast(state);
  auto epoch = torch::full({ 1 }, m_NextEpoch, torch::kInt64);
  m_Distributed->Broadcast({ epoch });
  const auto mainEpoch = epoch.item<int64_t>();
  if (m_Distributed->Sum({ mainEpoch != m_NextEpoch ? 1.0 : 0.0 })[0] > 0.0)
  {
    throw std::runtime_error("rank " + std::to_string(m_Distributed->Rank()) + " is at epoch " +
                             std::to_string(m_NextEpoch) + ", rank 0 at epoch " + std::to_string(mainEpoch) +
                             " (or another rank differs): every rank must resume from the same latest.pt");
  }
}
} // namespace diva
