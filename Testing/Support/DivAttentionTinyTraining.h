// What the training test suites share (Testing/Training: TrainingTest, CorrectionTrainingTest, OnePathTest,
// DistributedTrainingTest): a scratch folder of the process, the tiny phantom dataset they train on, the tiny training
// options, and the run (data, network, trainer) built from them. Each suite changes only what its tests need.
#ifndef DivAttentionTinyTraining_h
#define DivAttentionTinyTraining_h

#include "divaTrainer.h"
#include "itkPhantomDataset.h"
#include "itkTrainingSampleSource.h"

#include <torch/torch.h>

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <vector>

namespace diva::testing
{
/** A scratch folder of this process, <temp>/divattention-<suite>-<pid> (CTest runs the cases of a suite in parallel
 * processes), removed with everything in it when the object is destroyed (for a static object: at exit). */
class ScratchFolder
{
public:
  explicit ScratchFolder(const std::string & suite)
      : m_Root(std::filesystem::temp_directory_path() / ("divattention-" + suite + "-" + std::to_string(::getpid())))
  {
  }

  ~ScratchFolder()
  {
    std::error_code ignored;
    std::filesystem::remove_all(m_Root, ignored);
  }

  ScratchFolder(const ScratchFolder &) = delete;
  ScratchFolder &
  operator=(const ScratchFolder &) = delete;

  const std::filesystem::path &
  Root() const
  {
    return m_Root;
  }

  /** <root>/<name>, emptied (whatever an earlier test left there is removed) and created. */
  std::filesystem::path
  Folder(const std::string & name) const
  {
    const auto path = m_Root / name;
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    return path;
  }

private:
  std::filesystem::path m_Root;
};

/** Writes a phantom dataset (itk::PhantomDataset, seed 3) of `cases` cases into `directory`, voxels of
 * `inPlaneSpacing` x `inPlaneSpacing` x `sliceThickness` mm; the spleen (label 2) is the object, as MSD-Spleen. Returns
 * the directory. */
inline std::string
WritePhantomDataset(const std::filesystem::path & directory,
                    unsigned int                  cases,
                    double                        inPlaneSpacing,
                    double                        sliceThickness)
{
  itk::PhantomDataset::Options options;
  options.outputDirectory = directory.string();
  options.cases = cases;
  options.seed = 3;
  options.inPlaneSpacing = inPlaneSpacing;
  options.sliceThickness = { { sliceThickness, sliceThickness } };
  itk::PhantomDataset::Write(options);
  return options.outputDirectory;
}

/** Writes the tiny phantom dataset into `directory`: five cases at 6 mm (about 63 x 50 x 43 voxels), of which a public
 * split makes 4 training cases and 1 validation case. Returns the directory. */
inline std::string
MakeTinyPhantomDataset(const std::filesystem::path & directory)
{
  return WritePhantomDataset(directory, 5, 6.0, 6.0);
}

/** The tiny phantom dataset of this process: written once, at the first call, into a scratch folder of its own. The
 * tests read it and never write into it. */
inline const std::string &
TinyPhantomDataset()
{
  static const ScratchFolder scratch("tiny-phantoms");
  static const std::string   path = MakeTinyPhantomDataset(scratch.Folder("phantoms"));
  return path;
}

/** Options of a run of seconds on the tiny phantom dataset, writing into `output` ("": nothing written): the spleen;
 * the `small` presets at the smallest patches they accept (stage 1: mUnet at 32^3, as 5 stages halve 4 times and
 * instance norm needs more than one voxel at the bottom; stage 2: ESPNet at 16^3); 6 mm; batches of 2, 2 steps per
 * epoch, learning rate 1e-3, no progress bar, one batch prefetched. */
inline diva::TrainingOptions
TinyTrainingOptions(int stage, const std::string & output)
{
  diva::TrainingOptions options;
  options.stage = stage;
  options.dataset = TinyPhantomDataset();
  options.targetLabels = { 2 };
  options.outputDirectory = output;
  options.preset = "small";
  options.model = stage == 1 ? "munet" : "espnet";
  options.patchSize = stage == 1 ? std::array<int64_t, 3>{ { 32, 32, 32 } } : std::array<int64_t, 3>{ { 16, 16, 16 } };
  options.targetSpacing = { { 6.0, 6.0, 6.0 } };
  options.batchSize = 2;
  options.stepsPerEpoch = 2;
  options.learningRate = 1e-3;
  options.progress = false;
  options.prefetchBatches = 1;
  return options;
}

/** A training run: its data, network and trainer. */
struct TinyTrainingRun
{
  itk::TrainingData                              data;
  std::shared_ptr<diva::SegmentationNetworkImpl> network;
  std::unique_ptr<diva::Trainer>                 trainer;
};

/** The plain sample provider: the training and validation samples of `data` as DivAttentionTrain's provider
 * (itk::MakeSampleProvider) gives them, without simulated corrections, input and target converted to `type`. */
inline diva::SampleProvider
TinySampleProvider(const itk::TrainingData & data, torch::Dtype type = torch::kFloat32)
{
  auto provider = itk::MakeSampleProvider(*data.training, *data.validation);
  provider.correction = nullptr;
  if (type != torch::kFloat32) // the samples are float32
  {
    const auto convert = [type](std::pair<torch::Tensor, torch::Tensor> sample)
    { return std::make_pair(sample.first.to(type), sample.second.to(type)); };
    provider.training = [training = provider.training, convert](size_t index, int64_t epoch)
    { return convert(training(index, epoch)); };
    provider.validation = [validation = provider.validation, convert](size_t index)
    { return convert(validation(index)); };
  }
  return provider;
}

/** Sets run.trainer: a trainer of run.network fed by `provider`, whose exported model file describes the `options`
 * preset, the input channels `inputChannels` and the preprocessing of run.data's training samples. */
inline void
AttachTrainer(TinyTrainingRun &                run,
              const diva::TrainingOptions &    options,
              diva::SampleProvider             provider,
              const std::vector<std::string> & inputChannels)
{
  diva::ModelDescription description;
  description.preset = options.preset;
  description.inputChannels = inputChannels;
  description.preprocessing = run.data.training->GetPreprocessing();
  run.trainer = std::make_unique<diva::Trainer>(options, run.network, std::move(provider), description);
}
} // namespace diva::testing

#endif
