#ifndef divaTrainer_h
#define divaTrainer_h

#include "divaModelFile.h"
#include "divaSegmentationNetwork.h"
#include "divaTrainingOptions.h"

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace diva
{
class DistributedContext;

/** \brief One batch: input (N, C, z, y, x) and target (N, 1, z, y, x). \ingroup DivAttention */
struct Batch
{
  torch::Tensor       input;
  torch::Tensor       target;
  std::vector<size_t> instances; ///< the training instance of each sample (for simulated corrections)
};

/** \brief Makes batches 0 .. count-1 on `workers` background threads, up to `depth` ahead of the consumer, so that
 * data loading overlaps the training step (and, with several workers, keeps up with a GPU). Batches come out in
 * order whatever the number of workers (each batch must be a pure function of its index); the first exception of a
 * producer is rethrown by Next(). With depth 0 batches are made on the caller's thread. \ingroup DivAttention */
class BatchPrefetcher
{
public:
  BatchPrefetcher(size_t count, std::function<Batch(size_t)> produce, size_t depth, size_t workers = 1);
  ~BatchPrefetcher();
  BatchPrefetcher(const BatchPrefetcher &) = delete;
  BatchPrefetcher &
  operator=(const BatchPrefetcher &) = delete;
  Batch
  Next();

private:
  void
  Work();

  size_t                       m_Count;
  size_t                       m_Taken = 0;   ///< batches handed out
  size_t                       m_Claimed = 0; ///< batches a worker has started
  std::function<Batch(size_t)> m_Produce;
  size_t                       m_Depth;
  std::map<size_t, Batch>      m_Ready;
  std::exception_ptr           m_Error;
  bool                         m_Stop = false;
  std::mutex                   m_Mutex;
  std::condition_variable      m_Changed;
  std::vector<std::thread>     m_Threads;
};

/** \brief Where the trainer's samples come from (TrainingSampleSource in the applications, anything in tests).
 * \ingroup DivAttention */
struct SampleProvider
{
  size_t                                                                  trainingCount = 0;
  size_t                                                                  validationCount = 0;
  std::function<std::pair<torch::Tensor, torch::Tensor>(size_t, int64_t)> training;   ///< (instance, epoch)
  std::function<std::pair<torch::Tensor, torch::Tensor>(size_t)>          validation; ///< (instance)
  /** Runs the network being trained on one input (C, z, y, x) and returns its foreground mask (z, y, x). */
  using Segmenter = std::function<torch::Tensor(const torch::Tensor &)>;
  /** Simulated corrections (optional; TrainingSampleSource::SimulateCorrections): (instance, epoch, input, target,
   * segment) -> the input to train on. Called on the training thread for every training sample just before its step,
   * with the weights of that step (`segment` runs in eval mode without gradients), so the corrections follow the
   * network as it learns and stay a function of the seed and the weights (resume is exact). */
  std::function<torch::Tensor(size_t, int64_t, const torch::Tensor &, const torch::Tensor &, const Segmenter &)>
    correction;
};

/** \brief One line of the training log. \ingroup DivAttention */
struct EpochRecord
{
  int64_t epoch = 0; ///< 1-based
  double  trainingLoss = 0.0;
  double  validationLoss = 0.0;
  double  dice = 0.0;
  double  recall = 0.0;
  double  precision = 0.0;
  double  learningRate = 0.0;
  double  seconds = 0.0;
};

/** \brief What a call to Fit() did. \ingroup DivAttention */
struct TrainingSummary
{
  std::vector<EpochRecord> history;
  int64_t                  bestEpoch = 0;
  double                   bestDice = -1.0;
  int64_t                  epochsWithoutImprovement = 0;
  bool                     stoppedEarly = false;
  bool                     interrupted = false;
};

/** The network the options ask for (architecture, preset, div-attention), with `inputChannels` inputs and, for UNETR,
 * an image size equal to the patch. std::invalid_argument for a patch the network cannot take. */
std::shared_ptr<SegmentationNetworkImpl>
CreateTrainingNetwork(const TrainingOptions & options, int64_t inputChannels);

/** Fine-tuning (`--init-model`): copies every parameter and buffer of `source` (a model file, LoadModel) into
 * `network`, which the training options built. The two must be the same architecture: std::invalid_argument naming
 * `sourceName` and the first parameter or buffer that is missing or has another shape, and when the file's role is
 * not the stage's ("coarse" for stage 1, "refine" for stage 2) or its patch or spacing are not the options'.
 * One difference is allowed: a stage-1 file of two input channels (CT, click map) starts a network with the negative
 * click channel as well; each weight that reads the input channels (the first layer's) is copied into the first two
 * input channels and the third one's weights are zeros, so the network starts computing exactly the file's output,
 * whatever the negative click map holds. */
void
InitializeFromModel(SegmentationNetworkImpl & network,
                    const LoadedModel &       source,
                    const TrainingOptions &   options,
                    const std::string &       sourceName);

/** Sets description.role: "coarse" for stage 1, "refine" for stage 2 (the segmentation filters check it). */
void
SetModelRole(ModelDescription & description, int stage);

/** \brief The training loop of both stages: Adam, a multi-step learning rate, the loss of eqs. 6-8 with deep
 * supervision, validation Dice / recall / precision each epoch, early stopping, and checkpoints.
 *
 * Output directory: `latest.pt` (every epoch), `best.pt` (best validation Dice so far), `final.pt` (end of training),
 * each holding weights, optimizer state, epoch, LibTorch's CPU generator state, best score, patience counter, metric
 * history and the full configuration, written atomically; `model-best.pt`, a model file (SaveModel) of the best
 * weights for DivAttentionSegment; `training_log.csv`. Resume() restores latest.pt's state, so that the next epoch is
 * the one the uninterrupted run would have made (bit-identical on the CPU in deterministic mode).
 * \ingroup DivAttention */
class Trainer
{
public:
  Trainer(const TrainingOptions &                  options,
          std::shared_ptr<SegmentationNetworkImpl> network,
          SampleProvider                           data,
          ModelDescription                         description);

  /** Restores everything from a checkpoint file (normally <dir>/latest.pt). */
  void
  Resume(const std::string & checkpointPath);

  /** The configuration a checkpoint was written with (a resumed run starts from it). */
  static TrainingOptions
  CheckpointOptions(const std::string & checkpointPath);

  /** Trains as one rank of a data-parallel group (Documentation/Training.md, "Distributed training"): the batch size
   * stays the global batch, of which rank r takes samples r, r + W, ...; gradients are averaged over the ranks; every
   * rank starts from rank 0's weights; validation is shared out and its sums reduced; only rank 0 prints and writes.
   * std::invalid_argument when the batch size is not a multiple of the world size. Call before Fit(). */
  void
  UseDistributed(std::shared_ptr<DistributedContext> group);

  /** Trains until options.epochs, early stopping or a stop request; returns the whole history. */
  TrainingSummary
  Fit();

  /** Asks a running Fit() to stop after the current step (signal-safe: only sets a flag). The partial epoch is
   * dropped; latest.pt stays the end of the last complete epoch. */
  static void
  RequestStop();
  static void
  ClearStopRequest();

  /** The order of the training instances in `epoch`: a Fisher-Yates shuffle fixed by (seed, epoch). */
  static std::vector<size_t>
  EpochOrder(size_t count, uint64_t seed, int64_t epoch);

  SegmentationNetworkImpl &
  Network()
  {
    return *m_Network;
  }

private:
  void
  SaveCheckpoint(const std::string & path) const;
  void
  WriteLog() const;
  EpochRecord
  Validate();
  Batch
  MakeTrainingBatch(const std::vector<size_t> & order, size_t batchIndex, int64_t epoch) const;
  /** SampleProvider::correction on every sample of the batch, with the current weights. */
  void
  ApplyCorrections(Batch & batch, int64_t epoch);
  /** Loader threads: TrainingOptions::loaderThreads, or for 0 one on the CPU (the step itself needs the cores) and a
   * quarter of the cores (at least 2) when the step runs on a GPU. */
  size_t
  LoaderThreads() const;
  /** Rank 0, or no group: the rank that prints and writes. */
  bool
  IsMainRank() const;
  /** Distributed: every rank takes rank 0's weights and must be at rank 0's epoch. */
  void
  SynchronizeRanks();

  TrainingOptions                          m_Options;
  std::shared_ptr<SegmentationNetworkImpl> m_Network;
  SampleProvider                           m_Data;
  ModelDescription                         m_Description;
  std::unique_ptr<torch::optim::Optimizer> m_Optimizer;
  torch::Device                            m_Device{ torch::kCPU };
  TrainingSummary                          m_State;
  int64_t                                  m_NextEpoch = 0; ///< 0-based
  std::shared_ptr<DistributedContext>      m_Distributed;   ///< null: a single process
};
} // namespace diva

#endif
