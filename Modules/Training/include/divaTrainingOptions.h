#ifndef divaTrainingOptions_h
#define divaTrainingOptions_h

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace diva
{
/** \brief Every setting of a training run, with the paper's defaults (Documentation/Training.md lists each default and
 * where it comes from). The same structure is read from a JSON config file, overridden by the command line, and stored
 * in every checkpoint so that a resumed run uses exactly the configuration it started with.
 * \ingroup DivAttention */
struct TrainingOptions
{
  // What is trained.
  int         stage = 1;           ///< 1: coarse (CT + click map in a ROI around the click); 2: refine (PCA crop)
  std::string model = "";          ///< "munet", "unetr" or "espnet"; empty: mUnet for stage 1, UNETR for stage 2
  std::string preset = "paper";    ///< network preset: "paper" or "small"
  bool        divAttention = true; ///< plug the div-attention module in (false: the ablation's baseline)
  int64_t     divAttentionFusionKernel = 0; ///< module's fusion conv: 1 (1x1x1), 3 (3^3), 0 the host's default
  std::string divAttentionRefinedNormScale = "uniform-attention"; ///< or "absolute" (before 2026-11-27); Method.md

  // Data.
  std::string            dataset;                     ///< dataset root or CSV file
  std::string            layout = "auto";             ///< "auto", "msd", "kits", "nnunet", "csv"
  std::vector<uint16_t>  targetLabels{ 1 };           ///< label ids forming the object (KiTS kidney 1, tumour 2)
  std::string            instances = "organ";         ///< "organ", "lesion" or "label-components"
  unsigned int           minimumExtent = 2;           ///< paper: discard instances < 2 voxels along an axis
  uint64_t               minimumVoxels = 5;           ///< paper: discard instances < 5 voxels
  bool                   expectBinary = false;        ///< report labels with values other than 0/1 as a problem
  bool                   strict = false;              ///< dataset problems are fatal instead of skipped
  std::string            splitFile;                   ///< reuse this split; empty: make one, save to output/split.json
  std::string            splitScheme = "public";      ///< "public" (80/20) or "private" (30 % test, then 80/20)
  std::string            outputDirectory;             ///< checkpoints, logs, exported models
  std::string            stage1Model;                 ///< stage 2: crop from this stage-1 model's predictions
  std::string            initialModel;                ///< fine-tune from this model file (--init-model)
  unsigned int           maximumCases = 0;            ///< 0: all (handy for smoke runs)
  std::array<int64_t, 3> patchSize{ { 96, 96, 96 } }; ///< x y z voxels (paper: 96^3)
  std::array<double, 3>  targetSpacing{ { 1.0, 1.0, 1.0 } }; ///< stage 1 ROI spacing, mm
  double                 clipMinimum = -1000.0;              ///< HU
  double                 clipMaximum = 1000.0;               ///< HU
  std::string            clickStrategy = "uniform";          ///< ClickSampler: "uniform" or "interior"
  /** The click channel (ClickDistanceTransformFilter): "euclidean-distance-mm", "clipped-scaled" or "gaussian";
   * recorded in the model file, which the pipeline reads. */
  std::string clickEncoding = "euclidean-distance-mm";
  /** Stage 1 training windows: the window's centre is moved from the click by up to this fraction of half the window
   * along each axis (uniform), then moved inside the CT as CoarseSegmentationFilter clamps its windows, so the click
   * sits off-centre as in the growth windows at inference. 0: centred on the click, unclamped (runs before the
   * option existed). */
  double windowOffset = 0.5;
  /** Stage 1 training windows kept inside the CT, as CoarseSegmentationFilter::WindowsInsideImage (default on, as at
   * inference). Off (DivAttentionTrain --stage1-windows-centred, for models run with DivAttentionSegment
   * --coarse-windows-centred): a window may reach half a window beyond the CT (read as air), so its centre stays
   * inside the CT and a window not moved off-centre is centred on the click. */
  bool stage1WindowsInsideImage = true;
  /** Stage 1: a third input channel, the negative click map (encoded as the click map; a map of no click holds
   * itk::ClickMapValueWithoutClicks). Recorded in the model file's input channels, which the coarse filter reads. */
  bool negativeClickChannel = false;
  /** Stage 1, simulated corrections: rounds per corrected sample (0: off). Each round runs the network being trained
   * (eval mode, no gradient) on the sample and adds a click at the centre of the largest error region
   * (itk::NextCorrectionClick: positive in a miss, negative in a false positive). */
  int64_t correctionRounds = 0;
  double  correctionProbability = 0.5; ///< share of the training samples that get the correction rounds
  double  cropMargin = 1.5;            ///< PCACropResampleFilter's margin factor
  double  cropMinimumSide = 48.0;      ///< mm
  double  cropCenterJitter = 0.1;      ///< stage 2 from masks: centre +- this x side
  double  cropSizeJitter = 0.1;        ///< stage 2 from masks: side x (1 +- this)

  // Augmentation (training samples only; Documentation/Training.md).
  bool   augment = true;
  double rotationDegrees = 10.0;        ///< uniform in +-this about each axis
  double scaleRange = 0.1;              ///< isotropic zoom, uniform in 1 +- this
  double intensityShift = 0.1;          ///< added to the normalised CT, uniform in +-this
  double intensityScale = 0.1;          ///< normalised CT times uniform 1 +- this
  double noiseStandardDeviation = 0.05; ///< Gaussian noise on the normalised CT
  /** Probability that a sample's CT ends beside the object along one axis (the field of view cut off; 0: never). */
  double fieldOfViewCutProbability = 0.0;

  // Optimisation (paper, section 3).
  double               learningRate = 1e-4;
  std::vector<int64_t> milestones{ 15, 30, 60, 90 }; ///< learning rate x gamma after these epochs
  double               learningRateGamma = 0.1;
  int64_t              epochs = 120;
  int64_t              batchSize = 4;
  int64_t              stepsPerEpoch = 0; ///< 0: every training instance once per epoch
  int64_t              patience = 20;     ///< epochs without validation Dice improvement before stopping; 0 never
  double               minimumImprovement = 0.0;
  double               lossAlpha = 1.0;
  double               lossBeta = 1.0;
  double               lossGamma = 0.5;
  std::string          diceForm = "standard";

  // Run time.
  uint64_t    seed = 0;
  int         threads = 0; ///< 0: DivAttentionRuntime's default budget
  bool        deterministic = false;
  std::string device = "auto";
  int64_t     prefetchBatches = 2; ///< batches the loader threads prepare ahead; 0: no thread
  int64_t     loaderThreads = 0;   ///< threads making training batches; 0: 1 on CPU, cores/4 (>= 2) on a GPU
  bool        progress = true;
  bool        exportFloat16 = false; ///< model-best.pt stores its weights as float16 (half the file; Method.md)

  /** The architecture actually trained ("munet", "unetr", "espnet"). */
  std::string
  ResolvedModel() const;
  /** The network's input channels: stage 1 CT and click map (and the negative click map with
   * negativeClickChannel), stage 2 CT. */
  int64_t
  InputChannels() const;
  /** Their names, as the model file records them ("CT (HU)", "click map", "negative click map"). */
  std::vector<std::string>
  InputChannelNames() const;
  /** Throws std::invalid_argument naming the first bad setting. */
  void
  Validate() const;
};

/** JSON form (every field, names as in Documentation/Training.md). */
void
to_json(nlohmann::json & json, const TrainingOptions & options);
/** Reads the fields present (others keep their current value); unknown keys throw std::invalid_argument naming them. */
void
UpdateFromJson(TrainingOptions & options, const nlohmann::json & json, const std::string & sourceName);
/** The options a checkpoint stored (its complete to_json form). A field the checkpoint's writer did not know yet takes
 * the value that writer used, not today's default: `div_attention_fusion_kernel` 3, `div_attention_refined_norm_scale`
 * "absolute". */
TrainingOptions
CheckpointTrainingOptions(const nlohmann::json & stored, const std::string & sourceName);
/** Reads a config file written by hand or by to_json. std::runtime_error naming the file on any problem. */
TrainingOptions
LoadTrainingOptions(const std::string & path, const TrainingOptions & defaults = TrainingOptions());

/** The learning rate at `epoch` (0-based) under a multi-step schedule. */
double
ScheduledLearningRate(double initial, const std::vector<int64_t> & milestones, double gamma, int64_t epoch);
} // namespace diva

#endif
