// DivAttentionTrain: trains stage 1 (coarse mUnet on CT + click map) or stage 2 (refinement network on the PCA crop)
// from a dataset, with the paper's defaults, checkpoints and resume (Documentation/Training.md).
#include "divaApplicationSupport.h"
#include "divaDistributedContext.h"
#include "divaTrainer.h"
#include "itkDivAttentionRuntime.h"
#include "itkTrainingSampleSource.h"

#include <nlohmann/json.hpp>
#include <tclap/CmdLine.h>
#include <torch/torch.h>

#include <csignal>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace
{
void
OnSignal(int)
{
  diva::Trainer::RequestStop();
}

void
Plot(const std::string & csv, const std::string & png)
{
  // gnuplot draws the curves (a real plotting tool, not hand-written PNG).
  if (std::system("command -v gnuplot > /dev/null 2>&1") != 0)
  {
    throw std::runtime_error("--plot needs gnuplot (apt-get install gnuplot-nox)");
  }
  const std::string script = png + ".gnuplot";
  std::ofstream     out(script);
  out << "set terminal pngcairo size 1000,400\nset output '" << png << "'\nset datafile separator ','\n"
      << "set multiplot layout 1,2\nset xlabel 'epoch'\nset title 'loss'\n"
      << "plot '" << csv << "' using 1:2 skip 1 with lines title 'training', '' using 1:3 skip 1 with lines title "
      << "'validation'\nset title 'validation'\nset yrange [0:1]\n"
      << "plot '" << csv << "' using 1:4 skip 1 with lines title 'Dice', '' using 1:5 skip 1 with lines title "
      << "'recall', '' using 1:6 skip 1 with lines title 'precision'\nunset multiplot\n";
  out.close();
  if (std::system(("gnuplot '" + script + "'").c_str()) != 0)
  {
    throw std::runtime_error("gnuplot failed on " + script);
  }
}
} // namespace

int
main(int argc, char ** argv)
{
  return diva::application::Run(
    "DivAttentionTrain",
    [&]()
    {
      namespace app = diva::application;
      TCLAP::CmdLine cmd("Trains stage 1 (coarse, CT + click map) or stage 2 (refinement on the PCA crop) of the "
                         "div-attention pipeline. Defaults are the paper's; Documentation/Training.md lists them.",
                         ' ', app::VersionText());
      cmd.setExceptionHandling(false);
      const diva::TrainingOptions  d;
      TCLAP::ValueArg<std::string> config("", "config", "JSON config file (command-line options override it)", false,
                                          "", "file", cmd);
      TCLAP::ValueArg<int>         stage("", "stage", "1 (coarse) or 2 (refine)", false, d.stage, "1|2", cmd);
      TCLAP::ValueArg<std::string> model("", "model",
                                         "munet, unetr or espnet (default: munet for stage 1, unetr "
                                         "for stage 2)",
                                         false, "", "name", cmd);
      TCLAP::ValueArg<std::string> preset("", "preset", "Network preset: paper or small", false, d.preset, "name", cmd);
      TCLAP::SwitchArg noDiv("", "no-div-attention", "Train the baseline without the div-attention module", cmd);
      TCLAP::ValueArg<int64_t>     fusionKernel("", "fusion-kernel",
                                                "Div-attention fusion convolution: 1 (1x1x1), 3 (3^3) or 0: the network's "
                                                    "default (1 for unetr and munet, 3 for espnet)",
                                                false, d.divAttentionFusionKernel, "0|1|3", cmd);
      TCLAP::ValueArg<std::string> refinedScale(
        "", "refined-norm-scale",
        "Units of M_ref in the div-attention module's norm: uniform-attention (the default) or absolute (the models "
        "before 2026-11-27 evening; the side branch then reaches the fusion as ~1e-7 of the paths)",
        false, d.divAttentionRefinedNormScale, "name", cmd);
      TCLAP::ValueArg<std::string> dataset("", "dataset", "Dataset root (MSD, KiTS, nnU-Net raw) or CSV file", false,
                                           "", "path", cmd);
      TCLAP::ValueArg<std::string> layout("", "layout", "auto, msd, kits, nnunet or csv", false, d.layout, "name", cmd);
      TCLAP::ValueArg<std::string> labels("", "labels", "Target label ids, e.g. 1 or 1,2", false, "1", "ids", cmd);
      TCLAP::ValueArg<std::string> instances(
        "", "instances",
        "organ (one object per case), lesion (components) or label-components (each label apart, then components)",
        false, d.instances, "kind", cmd);
      TCLAP::ValueArg<unsigned>    minExtent("", "min-extent", "Discard instances thinner than this (voxels)", false,
                                             d.minimumExtent, "voxels", cmd);
      TCLAP::ValueArg<uint64_t>    minVoxels("", "min-voxels", "Discard instances smaller than this (voxels)", false,
                                             d.minimumVoxels, "voxels", cmd);
      TCLAP::SwitchArg             expectBinary("", "expect-binary", "Report labels with values other than 0/1", cmd);
      TCLAP::SwitchArg             strict("", "strict", "Dataset problems are fatal instead of skipped", cmd);
      TCLAP::ValueArg<std::string> split("", "split", "Reuse this split JSON", false, "", "file", cmd);
      TCLAP::ValueArg<std::string> scheme("", "split-scheme", "public (80/20) or private (30 % test, then 80/20)",
                                          false, d.splitScheme, "name", cmd);
      TCLAP::ValueArg<std::string> output("o", "output-dir", "Checkpoints, logs and the exported model", false, "",
                                          "dir", cmd);
      TCLAP::ValueArg<std::string> stage1("", "stage1-model", "Stage 2: crop from this stage-1 model's predictions",
                                          false, "", "file", cmd);
      TCLAP::ValueArg<std::string> initModel("", "init-model",
                                             "Fine-tune: start from this model file's weights and intensity "
                                             "normalisation (same network options)",
                                             false, "", "file", cmd);
      TCLAP::ValueArg<unsigned>    maxCases("", "max-cases", "Use only the first N cases (0: all)", false, 0, "N", cmd);
      TCLAP::ValueArg<std::string> patch("", "patch", "Patch size x,y,z in voxels", false, "96,96,96", "x,y,z", cmd);
      TCLAP::ValueArg<std::string> spacing("", "spacing", "Stage 1 ROI spacing x,y,z in mm", false, "1,1,1", "x,y,z",
                                           cmd);
      TCLAP::ValueArg<std::string> clickEncoding("", "click-encoding",
                                                 "Stage 1's click channel: euclidean-distance-mm (raw mm), "
                                                 "clipped-scaled or gaussian (recorded in the model file)",
                                                 false, d.clickEncoding, "name", cmd);
      TCLAP::ValueArg<double>      windowOffset("", "window-offset",
                                                "Stage 1: training windows off-centre by up to this fraction of half "
                                                     "a window per axis, then clamped into the CT, as at inference (0: "
                                                     "centred; default 0.5)",
                                                false, d.windowOffset, "fraction", cmd);
      TCLAP::SwitchArg             stage1WindowsCentred(
                    "", "stage1-windows-centred",
                    "Stage 1: training windows may reach half a window beyond the CT (read as air), as DivAttentionSegment "
                                "--coarse-windows-centred places them (default: inside the CT, as inference does by default)",
                    cmd);
      TCLAP::SwitchArg         negativeChannel("", "negative-click-channel",
                                               "Stage 1: the negative click map as a third input channel (encoded "
                                                       "as the click map; recorded in the model file)",
                                               cmd);
      TCLAP::ValueArg<int64_t> correctionRounds(
        "", "correction-rounds",
        "Stage 1: simulated corrections, rounds per corrected sample: the network being trained predicts the "
        "sample and a click goes to the centre of the largest error region (0: off)",
        false, d.correctionRounds, "K", cmd);
      TCLAP::ValueArg<double>      correctionProbability("", "correction-probability",
                                                         "Share of the training samples that get the correction rounds "
                                                              "(default 0.5)",
                                                         false, d.correctionProbability, "p", cmd);
      TCLAP::ValueArg<double>      cropMargin("", "crop-margin",
                                              "Stage 2: crop side / the mask's longest axis (recorded in the model "
                                                   "file; the pipeline crops the same way)",
                                              false, d.cropMargin, "factor", cmd);
      TCLAP::ValueArg<double>      cropMinimumSide("", "crop-min-side",
                                                   "Stage 2: smallest crop side, mm (recorded in the model file)", false,
                                                   d.cropMinimumSide, "mm", cmd);
      TCLAP::SwitchArg             noAugment("", "no-augment", "Switch augmentation off", cmd);
      TCLAP::ValueArg<double>      fovCut("", "fov-cut",
                                          "Probability that a training sample's CT ends beside the object along one axis "
                                               "(a field of view that cuts the body; default 0)",
                                          false, 0.0, "probability", cmd);
      TCLAP::ValueArg<double>      lr("", "lr", "Adam learning rate", false, d.learningRate, "rate", cmd);
      TCLAP::ValueArg<std::string> milestones("", "milestones",
                                              "Epochs after which the rate is multiplied by "
                                              "--lr-gamma",
                                              false, "15,30,60,90", "list", cmd);
      TCLAP::ValueArg<double>      lrGamma("", "lr-gamma", "Learning rate factor at each milestone", false,
                                           d.learningRateGamma, "factor", cmd);
      TCLAP::ValueArg<int64_t>     epochs("", "epochs", "Epochs", false, d.epochs, "N", cmd);
      TCLAP::ValueArg<int64_t>     batch("", "batch-size", "Batch size", false, d.batchSize, "N", cmd);
      TCLAP::ValueArg<int64_t>     steps("", "steps-per-epoch", "Steps per epoch (0: one pass)", false, d.stepsPerEpoch,
                                         "N", cmd);
      TCLAP::ValueArg<int64_t>     patience("", "patience", "Early stopping patience in epochs (0: never)", false,
                                            d.patience, "N", cmd);
      TCLAP::ValueArg<uint64_t>    seed("", "seed", "Seed of everything random", false, d.seed, "integer", cmd);
      TCLAP::ValueArg<int>         threads("", "threads", "Thread budget (0: default)", false, d.threads, "N", cmd);
      TCLAP::SwitchArg             deterministic("", "deterministic", "Deterministic algorithms, 1 thread", cmd);
      TCLAP::ValueArg<std::string> device("", "device", "auto, cpu, cuda or cuda:N", false, d.device, "device", cmd);
      TCLAP::ValueArg<int64_t>     prefetch("", "prefetch", "Batches prepared ahead by the loader thread", false,
                                            d.prefetchBatches, "N", cmd);
      TCLAP::ValueArg<int64_t>     loaderThreads("", "loader-threads",
                                                 "Threads making training batches (0: 1 on CPU, cores/4 on a GPU)", false,
                                                 d.loaderThreads, "N", cmd);
      TCLAP::SwitchArg             noProgress("", "no-progress", "No progress bar", cmd);
      TCLAP::SwitchArg             exportFloat16("", "export-float16",
                                                 "The exported model file stores its weights as float16 (half the size)", cmd);
      TCLAP::ValueArg<std::string> resume("", "resume", "Continue the run in this output directory", false, "", "dir",
                                          cmd);
      TCLAP::ValueArg<std::string> plot("", "plot", "Draw loss and Dice curves into this PNG (gnuplot)", false, "",
                                        "file", cmd);
      // Distributed training (Documentation/Training.md): not part of the configuration, so WORLD_SIZE, RANK,
      // MASTER_ADDR and MASTER_PORT give the defaults, as for any c10d program.
      const diva::DistributedOptions dd = diva::DistributedOptions::FromEnvironment();
      TCLAP::ValueArg<int> worldSize("", "world-size", "Ranks training together (default $WORLD_SIZE or 1)", false,
                                     dd.worldSize, "N", cmd);
      TCLAP::ValueArg<int> rank("", "rank", "This process's rank, 0 to world size - 1 (default $RANK or 0)", false,
                                dd.rank, "r", cmd);
      TCLAP::ValueArg<std::string> masterAddress("", "master-addr",
                                                 "Host of rank 0, which serves the rendezvous (default $MASTER_ADDR "
                                                 "or 127.0.0.1)",
                                                 false, dd.masterAddress, "host", cmd);
      TCLAP::ValueArg<int>         masterPort("", "master-port",
                                              "Rendezvous port on rank 0 (default $MASTER_PORT or "
                                                      "29500)",
                                              false, dd.masterPort, "port", cmd);
      TCLAP::ValueArg<double>      distTimeout("", "dist-timeout",
                                               "Seconds to wait for the other ranks, at the start and in every step", false,
                                               dd.timeoutSeconds, "s", cmd);
      cmd.parse(argc, argv);

      diva::TrainingOptions options;
      if (resume.isSet())
      {
        options = diva::Trainer::CheckpointOptions(resume.getValue() + "/latest.pt");
      }
      else if (config.isSet())
      {
        options = diva::LoadTrainingOptions(config.getValue());
      }
      // Only options given on the command line override the config (or, on resume, the run's own configuration).
      if (epochs.isSet())
        options.epochs = epochs.getValue();
      if (threads.isSet())
        options.threads = threads.getValue();
      if (device.isSet())
        options.device = device.getValue();
      if (noProgress.isSet())
        options.progress = false;
      if (prefetch.isSet())
        options.prefetchBatches = prefetch.getValue();
      if (loaderThreads.isSet())
        options.loaderThreads = loaderThreads.getValue();
      if (exportFloat16.isSet())
        options.exportFloat16 = true;
      if (!resume.isSet())
      {
        if (stage.isSet())
          options.stage = stage.getValue();
        if (model.isSet())
          options.model = model.getValue();
        if (preset.isSet())
          options.preset = preset.getValue();
        if (noDiv.isSet())
          options.divAttention = false;
        if (fusionKernel.isSet())
          options.divAttentionFusionKernel = fusionKernel.getValue();
        if (refinedScale.isSet())
          options.divAttentionRefinedNormScale = refinedScale.getValue();
        if (dataset.isSet())
          options.dataset = dataset.getValue();
        if (layout.isSet())
          options.layout = layout.getValue();
        if (labels.isSet())
          options.targetLabels = diva::application::ParseList<uint16_t>("--labels", labels.getValue());
        if (instances.isSet())
          options.instances = instances.getValue();
        if (minExtent.isSet())
          options.minimumExtent = minExtent.getValue();
        if (minVoxels.isSet())
          options.minimumVoxels = minVoxels.getValue();
        if (expectBinary.isSet())
          options.expectBinary = true;
        if (strict.isSet())
          options.strict = true;
        if (split.isSet())
          options.splitFile = split.getValue();
        if (scheme.isSet())
          options.splitScheme = scheme.getValue();
        if (output.isSet())
          options.outputDirectory = output.getValue();
        if (stage1.isSet())
          options.stage1Model = stage1.getValue();
        if (initModel.isSet())
          options.initialModel = initModel.getValue();
        if (maxCases.isSet())
          options.maximumCases = maxCases.getValue();
        if (patch.isSet())
        {
          const auto p = app::ParseTriple("--patch", patch.getValue());
          options.patchSize = { static_cast<int64_t>(p[0]), static_cast<int64_t>(p[1]), static_cast<int64_t>(p[2]) };
        }
        if (spacing.isSet())
          options.targetSpacing = app::ParseTriple("--spacing", spacing.getValue());
        if (clickEncoding.isSet())
          options.clickEncoding = clickEncoding.getValue();
        if (windowOffset.isSet())
          options.windowOffset = windowOffset.getValue();
        if (stage1WindowsCentred.isSet())
          options.stage1WindowsInsideImage = false;
        if (negativeChannel.isSet())
          options.negativeClickChannel = true;
        if (correctionRounds.isSet())
          options.correctionRounds = correctionRounds.getValue();
        if (correctionProbability.isSet())
          options.correctionProbability = correctionProbability.getValue();
        if (cropMargin.isSet())
          options.cropMargin = cropMargin.getValue();
        if (cropMinimumSide.isSet())
          options.cropMinimumSide = cropMinimumSide.getValue();
        if (noAugment.isSet())
          options.augment = false;
        if (fovCut.isSet())
          options.fieldOfViewCutProbability = fovCut.getValue();
        if (lr.isSet())
          options.learningRate = lr.getValue();
        if (milestones.isSet())
          options.milestones = diva::application::ParseList<int64_t>("--milestones", milestones.getValue());
        if (lrGamma.isSet())
          options.learningRateGamma = lrGamma.getValue();
        if (batch.isSet())
          options.batchSize = batch.getValue();
        if (steps.isSet())
          options.stepsPerEpoch = steps.getValue();
        if (patience.isSet())
          options.patience = patience.getValue();
        if (seed.isSet())
          options.seed = seed.getValue();
        if (deterministic.isSet())
          options.deterministic = true;
      }
      else
      {
        options.outputDirectory = resume.getValue();
      }
      if (options.dataset.empty() || options.outputDirectory.empty())
      {
        throw TCLAP::CmdLineParseException("--dataset and --output-dir are required (or --resume, or a config)");
      }
      options.Validate();
      diva::DistributedOptions distributed = dd;
      distributed.worldSize = worldSize.getValue();
      distributed.rank = rank.getValue();
      distributed.masterAddress = masterAddress.getValue();
      distributed.masterPort = masterPort.getValue();
      distributed.timeoutSeconds = distTimeout.getValue();
      distributed.Validate();
      if (distributed.Enabled() && !diva::DistributedContext::IsAvailable())
      {
        throw std::runtime_error("--world-size " + std::to_string(distributed.worldSize) +
                                 ": distributed training is not available in this build (LibTorch's c10d Gloo "
                                 "headers were not found when it was configured: install libgloo-dev and configure "
                                 "again)");
      }
      if (distributed.Enabled() && options.batchSize % distributed.worldSize != 0)
      {
        throw std::invalid_argument("--batch-size " + std::to_string(options.batchSize) +
                                    " is not a multiple of --world-size " + std::to_string(distributed.worldSize) +
                                    " (the batch size is the global batch; each rank takes batch / world size)");
      }

      if (options.deterministic)
      {
        options.threads = 1;
        at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
      }
      if (options.threads > 0)
      {
        itk::DivAttentionRuntime::SetThreadBudget(options.threads);
      }
      torch::manual_seed(options.seed);
      const torch::Device computeDevice = itk::DivAttentionRuntime::ResolveDevice(options.device);

      // The ranks meet before anything is read or written: a rank that waits in vain leaves no output behind.
      std::shared_ptr<diva::DistributedContext> group;
      if (distributed.Enabled())
      {
        group = std::make_shared<diva::DistributedContext>(distributed, computeDevice);
        std::cerr << "rank " << group->Rank() << " of " << group->WorldSize() << " joined (" << group->BackendName()
                  << ", rendezvous " << distributed.masterAddress << ':' << distributed.masterPort << ")" << std::endl;
      }
      const bool isMain = !group || group->IsMain();

      // Everything that can fail on the inputs (dataset, split, stage-1 model, network) is checked before the output
      // directory is touched, so that a bad input leaves no output behind.
      diva::TrainingOptions preparation = options;
      preparation.outputDirectory.clear();
      auto       data = itk::PrepareTrainingData(preparation);
      const auto problems = data.AllProblems();
      if (isMain)
      {
        std::cout << "dataset: " << itk::SegmentationDatasetReader::LayoutName(data.listing.layout) << ", "
                  << data.training->NumberOfCases() << " training cases (" << data.training->NumberOfInstances()
                  << " instances), " << data.validation->NumberOfCases() << " validation cases ("
                  << data.validation->NumberOfInstances() << " instances), " << problems.size()
                  << " cases skipped with problems, "
                  << data.training->NumberOfDiscardedInstances() + data.validation->NumberOfDiscardedInstances()
                  << " instances discarded by the size rule" << std::endl;
      }
      if (options.stage == 2 && !options.stage1Model.empty())
      {
        // Crops placed through the pipeline's own filters (click map, coarse stage with its growth windows, clicked
        // component), as at inference; the reference mask only where stage 1 finds nothing under the click.
        const auto   coarse = std::make_shared<diva::LoadedModel>(diva::LoadModel(options.stage1Model, computeDevice));
        const size_t trainingFallbacks = data.training->UseStage1Predictions(coarse);
        const size_t validationFallbacks = data.validation->UseStage1Predictions(coarse);
        if (isMain)
        {
          std::cout << "stage-1 crops: stage 1 found nothing under the click for " << trainingFallbacks << " of "
                    << data.training->NumberOfInstances() << " training and " << validationFallbacks << " of "
                    << data.validation->NumberOfInstances()
                    << " validation instances; their crops come from the reference masks" << std::endl;
        }
      }

      auto network = diva::CreateTrainingNetwork(options, options.InputChannels());
      if (isMain)
      {
        std::string names;
        for (const auto & name : options.InputChannelNames())
        {
          names += (names.empty() ? "" : ", ") + name;
        }
        std::cout << "input channels: " << names;
        if (options.stage == 1 && options.correctionRounds > 0)
        {
          std::cout << "; simulated corrections: " << options.correctionRounds << " rounds on a share "
                    << options.correctionProbability << " of the training samples";
        }
        std::cout << std::endl;
      }
      if (!options.initialModel.empty())
      {
        // Fine-tuning: the model's weights (a resumed run then replaces them by its checkpoint's) and its intensity
        // normalisation, which those weights expect, instead of statistics of this dataset (also on resume).
        const auto initial = diva::LoadModel(options.initialModel, torch::kCPU);
        diva::InitializeFromModel(*network, initial, options, options.initialModel);
        // The window placement stays this run's (--stage1-windows-centred), not the file's.
        auto preprocessing = initial.description.preprocessing;
        preprocessing.windowPlacement = data.training->GetPreprocessing().windowPlacement;
        data.training->SetPreprocessing(preprocessing);
        data.validation->SetPreprocessing(preprocessing);
        if (isMain)
        {
          std::cout << "initialised from " << options.initialModel << " (normalisation mean "
                    << initial.description.preprocessing.mean << ", standard deviation "
                    << initial.description.preprocessing.standardDeviation << ")" << std::endl;
        }
      }
      if (isMain) // only rank 0 writes
      {
        try
        {
          std::filesystem::create_directories(options.outputDirectory);
        }
        catch (const std::filesystem::filesystem_error & error)
        {
          throw std::runtime_error("--output-dir \"" + options.outputDirectory + "\": cannot be created (" +
                                   error.code().message() + ")");
        }
        data.split.Save(options.outputDirectory + "/split.json");
      }
      diva::ModelDescription description;
      description.preset = options.preset;
      description.inputChannels = options.InputChannelNames();
      description.preprocessing = data.training->GetPreprocessing();
      description.provenance.version = app::VersionText();
      std::string command;
      for (int i = 0; i < argc; ++i)
      {
        command += (i ? " " : "") + std::string(argv[i]);
      }
      description.provenance.trainingCommand = command;
      description.provenance.data = options.dataset + " (split " + options.outputDirectory + "/split.json)";
      const std::time_t now = std::time(nullptr);
      char              date[32];
      std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
      description.provenance.date = date;

      // Training and validation samples, and the simulated corrections when the options ask for them.
      const diva::SampleProvider provider = itk::MakeSampleProvider(*data.training, *data.validation);
      diva::Trainer              trainer(options, network, provider, description);
      if (resume.isSet())
      {
        trainer.Resume(options.outputDirectory + "/latest.pt");
      }
      trainer.UseDistributed(group);
      std::signal(SIGINT, OnSignal);
      std::signal(SIGTERM, OnSignal);
      const auto summary = trainer.Fit();
      if (!isMain)
      {
        return summary.interrupted ? 130 : 0;
      }
      if (plot.isSet())
      {
        Plot(options.outputDirectory + "/training_log.csv", plot.getValue());
      }
      std::cout << "best validation Dice " << summary.bestDice << " at epoch " << summary.bestEpoch
                << (summary.stoppedEarly ? " (stopped early)" : "") << "; model: " << options.outputDirectory
                << "/model-best.pt; " << problems.size() << " cases skipped" << std::endl;
      for (const auto & problem : problems)
      {
        std::cout << "  skipped " << problem.caseId << ": " << problem.reason << std::endl;
      }
      return summary.interrupted ? 130 : 0;
    });
}
