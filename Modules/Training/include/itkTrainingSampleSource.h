#ifndef itkTrainingSampleSource_h
#define itkTrainingSampleSource_h

#include "divaTrainer.h"
#include "divaTrainingOptions.h"
#include "itkDatasetSplit.h"
#include "itkImage.h"
#include "itkPoint.h"
#include "itkSegmentationDatasetReader.h"

#include <torch/types.h>

#include <array>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace diva
{
struct LoadedModel;
struct Preprocessing;
class SegmentationNetworkImpl;
} // namespace diva

namespace itk
{
struct CorrectionClick;

/** \brief A cube-shaped sampling grid: centre, side lengths and axes in physical (LPS) space, voxels per side.
 * \ingroup DivAttention */
struct SamplingCube
{
  Point<double, 3>  center;
  Vector<double, 3> side;                   ///< mm, along each of the cube's axes
  Matrix<double, 3> axes;                   ///< columns are the cube's axes (the output's direction)
  Size<3>           size{ { 96, 96, 96 } }; ///< voxels
};

/** The image grid a cube stands for: spacing side/size, voxel centres at -side/2 + (i + 1/2) spacing along each axis,
 * the convention of PCACropResampleFilter's output, so a cube taken from that filter gives exactly its grid. */
Image<float, 3>::Pointer
MakeCubeGrid(const SamplingCube & cube);

/** Stage 1's region (what CoarseSegmentationFilter sees): `patchSize` voxels at `spacing`, centred on the click, in
 * the CT's own orientation. */
SamplingCube
ClickRegionCube(const Point<double, 3> &       click,
                const std::array<int64_t, 3> & patchSize,
                const std::array<double, 3> &  spacing,
                const Matrix<double, 3> &      ctDirection);

/** Stage 1's window as CoarseSegmentationFilter places it: ClickRegionCube's cube, its centre moved from the click by
 * `offset` (a fraction of half the window along each of its axes; each component in [-1, 1]), then clamped as the
 * filter clamps its windows to the grid it builds over the CT: with `insideImage` (the filter's WindowsInsideImage)
 * moved inside the CT along each CT axis where the CT is wider than the window (centred on the CT where it is
 * narrower); without, the grid reaches half a window beyond the CT, so only the centre is kept inside the CT (from
 * its first voxel's outer edge to its last's). With `offset` all 0 and a window inside the CT it is ClickRegionCube's
 * cube. The cube's axes must be the CT's (as ClickRegionCube gives them). */
SamplingCube
PlaceStage1Window(SamplingCube cube, const Vector<double, 3> & offset, const Image<int16_t, 3> * ct, bool insideImage);

/** CT (any scalar image) resampled onto `grid` (linear, -1024 HU outside), clipped and normalised as the model file's
 * Preprocessing says: the input channel every stage and inference share. Returned as (1, 1, z, y, x) float. */
/** A field of view that ends beside the object: points of the CT's grid whose continuous index along `axis` lies past
 * `index` (above it when `high`, else below) read as outside the CT (-1024 HU, as the pipeline's filters read points
 * outside an image). Training draws it (TrainingOptions::fieldOfViewCutProbability) so that a network learns CTs whose
 * field of view cuts the body close to the object. */
struct FieldOfViewCut
{
  unsigned int axis = 0;
  bool         high = true;
  double       index = 0.0;
};

/** The CT resampled onto `grid` (linear, -1024 HU outside the CT and past `cut` when given), clipped and normalised as
 * `preprocessing` says; (1, 1, z, y, x) float. */
torch::Tensor
PreprocessCT(const Image<int16_t, 3> *   ct,
             const Image<float, 3> *     grid,
             const diva::Preprocessing & preprocessing,
             const FieldOfViewCut *      cut = nullptr);

/** A binary mask resampled onto `grid` by nearest neighbour (0 outside), as (1, 1, z, y, x) float in {0, 1}. */
torch::Tensor
ResampleMask(const Image<uint8_t, 3> * mask, const Image<float, 3> * grid);

/** The click channel on `grid` (ClickDistanceTransformFilter, encoded as the model file's `click_encoding` names it:
 * "euclidean-distance-mm", "clipped-scaled" or "gaussian"), (1, 1, z, y, x) float. */
torch::Tensor
ClickMap(const Image<float, 3> *  grid,
         const Point<double, 3> & click,
         const std::string &      encoding = "euclidean-distance-mm");
/** The map of several clicks (the nearest click counts, as ClickDistanceTransformFilter encodes them); with no click,
 * ClickMapValueWithoutClicks of the encoding everywhere (a negative click map without negative clicks). */
torch::Tensor
ClickMap(const Image<float, 3> * grid, const std::vector<Point<double, 3>> & clicks, const std::string & encoding);

/** \class TrainingSampleSource
 * \brief Turns a dataset into the samples of either stage, through the method's own filters.
 *
 * Loading: SegmentationDatasetReader lists the cases, DatasetCaseValidator checks each, LabelInstanceExtractor splits
 * the labels into instances (organ or lesions, the paper's discard rule). Problems are collected per case with their
 * reason (`Problems()`); with `strict` the first one is an itk::ExceptionObject. CTs stay in memory as int16 HU, each
 * instance as a binary mask cropped to its bounding box (plus a one-voxel margin).
 *
 * A sample is a pure function of (seed, epoch, instance): its generator is seeded from the three, so samples can be
 * made on any thread, in any order, and a resumed run sees the same ones.
 * - Stage 1: a click drawn by ClickSampler inside the instance, the window around it placed by PlaceStage1Window
 *   (off-centre by up to TrainingOptions::windowOffset in training samples, clamped into the CT as at inference;
 *   rotated and zoomed when augmenting), CT by PreprocessCT, click map by ClickMap; input [CT, click map], and with
 *   TrainingOptions::negativeClickChannel [CT, click map, negative click map] (no negative click: the map of none).
 *   Simulated corrections (TrainingOptions::correctionRounds) change a training sample's click maps afterwards
 *   (SimulateCorrections), with the network being trained, on the training thread.
 * - Stage 2: the cube PCACropResampleFilter finds for the crop mask (the instance's mask, or the stage-1 pipeline's
 *   clicked component when UseStage1Predictions was called), with the options' crop margin and minimum side, centre
 *   and size jitter and the same rotation/zoom when augmenting; input [CT].
 * With fieldOfViewCutProbability, a training sample's CT may end beside the object along one axis of the CT's grid
 * (FieldOfViewCut; the object itself is never cut).
 * Intensity augmentation (shift, scale, noise) acts on the normalised CT afterwards. Validation samples use a fixed
 * click per instance and no augmentation or jitter.
 * \ingroup DivAttention */
class TrainingSampleSource
{
public:
  using CTImageType = Image<int16_t, 3>;
  using MaskImageType = Image<uint8_t, 3>;

  struct Problem
  {
    std::string caseId;
    std::string reason;
  };
  struct Instance
  {
    size_t                 caseIndex = 0;
    uint16_t               id = 0;
    size_t                 voxels = 0;
    MaskImageType::Pointer mask;     ///< the reference, cropped to its bounding box
    MaskImageType::Pointer cropMask; ///< stage 2: where the crop comes from (the mask, or a stage-1 prediction)
  };
  struct Sample
  {
    torch::Tensor                 input;                        ///< (C, z, y, x)
    torch::Tensor                 target;                       ///< (1, z, y, x) in {0, 1}
    std::array<double, 3>         spacing{ { 1.0, 1.0, 1.0 } }; ///< of the sample's grid, mm (x y z)
    std::vector<Point<double, 3>> clicks;                       ///< stage 1: the (positive) click(s) in the click map
  };
  /** Runs a network on one sample input (C, z, y, x) and returns its foreground mask (z, y, x), non-zero inside. */
  using Segmenter = std::function<torch::Tensor(const torch::Tensor &)>;

  /** Loads the cases named by `caseIds` (all listed cases when empty). */
  TrainingSampleSource(const diva::TrainingOptions &                        options,
                       const std::vector<SegmentationDatasetReader::Case> & cases,
                       std::vector<Problem>                                 listingProblems = {});

  /** Mean and standard deviation of the clipped CT inside the instances (nnU-Net's CT normalisation statistics). */
  std::pair<double, double>
  ForegroundStatistics() const;

  /** The preprocessing samples use (and the model file records). */
  void
  SetPreprocessing(const diva::Preprocessing & preprocessing);
  const diva::Preprocessing &
  GetPreprocessing() const;

  /** Stage 2 from predictions (the paper crops "according to prediction"): once per instance, a fixed click drawn
   * inside it goes through the pipeline's own filters on the whole CT, as at inference: ClickDistanceTransformFilter
   * (the coarse model's click encoding), CoarseSegmentationFilter (first window, growth windows, border clamping)
   * and ClickedComponentImageFilter; the crops are cut from that component from then on. Where stage 1 finds nothing
   * under the click (an empty mask, or no component the click touches) the instance keeps its reference mask:
   * returns how many did (also NumberOfStage1Fallbacks()). `device` as the filters take it ("auto", "cpu", ...). */
  size_t
  UseStage1Predictions(const std::shared_ptr<diva::LoadedModel> & coarseModel, const std::string & device = "auto");
  /** Instances whose crops come from the reference mask because stage 1 found nothing (after UseStage1Predictions). */
  size_t
  NumberOfStage1Fallbacks() const
  {
    return m_Stage1Fallbacks;
  }

  size_t
  NumberOfInstances() const
  {
    return m_Instances.size();
  }
  const std::vector<Instance> &
  Instances() const
  {
    return m_Instances;
  }
  const std::vector<Problem> &
  Problems() const
  {
    return m_Problems;
  }
  size_t
  NumberOfCases() const
  {
    return m_CaseIds.size();
  }
  size_t
  NumberOfDiscardedInstances() const
  {
    return m_Discarded;
  }
  const std::string &
  CaseId(size_t caseIndex) const
  {
    return m_CaseIds[caseIndex];
  }

  /** A training sample (augmented when the options say so) of instance `index` in `epoch`. */
  Sample
  MakeTrainingSample(size_t index, int64_t epoch) const;
  /** The validation sample of instance `index`: the `clickIndex`-th fixed click, no augmentation. */
  Sample
  MakeValidationSample(size_t index, uint64_t clickIndex = 0) const;

  /** Correction rounds for training sample (instance `index`, `epoch`): TrainingOptions::correctionRounds with
   * probability correctionProbability, else 0 (always 0 in stage 2 or with no rounds). Drawn from a generator of its
   * own (SampleSeed purpose 3), so the samples themselves are those of a run without corrections. */
  int64_t
  CorrectionRounds(size_t index, int64_t epoch) const;
  /** Whether any training sample gets correction rounds (stage 1, rounds and probability above 0). */
  bool
  CorrectionRoundsEnabled() const
  {
    return m_Options.stage == 1 && m_Options.correctionRounds > 0 && m_Options.correctionProbability > 0.0;
  }

  /** Simulated corrections (the interactive literature's training protocol: DeepEdit, nnInteractive) on training
   * sample (`index`, `epoch`), whose `input` and `target` MakeTrainingSample made: for CorrectionRounds(index, epoch)
   * rounds, `segment` predicts the current input, itk::NextCorrectionClick places the next click at the centre of the
   * largest error region of that prediction against `target` (positive in a miss, negative in a false positive), and
   * the click maps are made again on the sample's grid with every click so far (the window, CT channel and target
   * stay). Rounds end early when the prediction has no error, and at a false positive without a negative click
   * channel. Returns the input to train on (`input` itself with no round); `clicks`, when given, receives the
   * simulated clicks in order. Deterministic given the seed and the network. */
  torch::Tensor
  SimulateCorrections(size_t                         index,
                      int64_t                        epoch,
                      const torch::Tensor &          input,
                      const torch::Tensor &          target,
                      const Segmenter &              segment,
                      std::vector<CorrectionClick> * clicks = nullptr) const;

  /** Generator of sample (seed, epoch, instance, purpose): splitmix64 of the four. */
  static uint64_t
  SampleSeed(uint64_t seed, uint64_t epoch, uint64_t index, uint64_t purpose);

private:
  Sample
  MakeSample(size_t index, std::mt19937_64 & generator, bool augment, bool training) const;
  /** Stage 1: the click and the window (the generator's first draws of a sample). */
  std::pair<Point<double, 3>, SamplingCube>
  Stage1Window(const Instance & instance, std::mt19937_64 & generator, bool augment, bool training) const;
  SamplingCube
  Stage2Cube(const Instance & instance) const;

  diva::TrainingOptions                m_Options;
  std::shared_ptr<diva::Preprocessing> m_Preprocessing;
  std::vector<std::string>             m_CaseIds;
  std::vector<CTImageType::Pointer>    m_Images;
  std::vector<Instance>                m_Instances;
  std::vector<Problem>                 m_Problems;
  size_t                               m_Discarded = 0;
  size_t                               m_Stage1Fallbacks = 0;
};
/** \brief A dataset read, split and loaded for training: what DivAttentionTrain does before the first epoch.
 * \ingroup DivAttention */
struct TrainingData
{
  SegmentationDatasetReader::Listing    listing;
  DatasetSplit                          split;
  std::unique_ptr<TrainingSampleSource> training;
  std::unique_ptr<TrainingSampleSource> validation;

  /** Every problem met (listing and loading), for the run's summary. */
  std::vector<TrainingSampleSource::Problem>
  AllProblems() const;
};

/** What diva::Trainer draws its samples from: training samples (MakeTrainingSample) of `training`, validation
 * samples (MakeValidationSample, the first fixed click) of `validation`, and, when the options ask for correction
 * rounds, the simulated corrections (SimulateCorrections). The sources must outlive the provider. */
diva::SampleProvider
MakeSampleProvider(const TrainingSampleSource & training, const TrainingSampleSource & validation);

/** Lists options.dataset, makes the split (public / private, by options.seed) or loads options.splitFile, saves it to
 * <output>/split.json when an output directory is set, and loads the training and validation cases. The CT
 * normalisation statistics come from the training instances (Documentation/Training.md). With options.strict any
 * dataset problem is an itk::ExceptionObject naming the case and the reason. */
TrainingData
PrepareTrainingData(const diva::TrainingOptions & options);
} // namespace itk

#endif
