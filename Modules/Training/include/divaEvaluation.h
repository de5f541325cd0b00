#ifndef divaEvaluation_h
#define divaEvaluation_h

#include <torch/types.h>

#include <array>
#include <limits>
#include <string>
#include <vector>

namespace diva
{
/** \brief Metrics of one evaluated sample (one instance, one simulated click). \ingroup DivAttention */
struct EvaluatedSample
{
  std::string model;
  std::string caseId;
  int64_t     instance = 0;
  int64_t     click = 0;
  double      dice = 0.0;
  double      recall = 0.0;
  double      precision = 0.0;
  double      hd95 = 0.0; ///< mm; NaN when either mask is empty
  // Voxel counts behind the ratios (-1: not recorded), so a reader can recompute them or pool them.
  int64_t truePositives = -1;
  int64_t falsePositives = -1;
  int64_t falseNegatives = -1;
  /** The simulated click (physical LPS, mm) when the evaluation knows it (whole-pipeline mode); NaN otherwise. */
  std::array<double, 3> clickPoint{ { std::numeric_limits<double>::quiet_NaN(),
                                      std::numeric_limits<double>::quiet_NaN(),
                                      std::numeric_limits<double>::quiet_NaN() } };
  /** Whole pipeline: 1 when the coarse mask was empty and the refinement cropped around the click, 0 when not;
   * -1 where it does not apply. */
  int fallbackCrop = -1;
  /** The structure the sample targets ("spleen", "lesion"; empty: not named) and its group (StructureGroup). */
  std::string structure{};
  std::string group{};
  /** Whole pipeline: what the mask is: "networks" (their mask, found at the click), "like-intensity" (they found
   * nothing at the click: its like-intensity region), "other-tissue" (their mask was mostly of another tissue than the
   * click's: its like-intensity region, or the empty mask without the fallback), "nothing" (found nothing, no fallback:
   * the empty mask); empty where it does not apply. */
  std::string answer{};
};

/** \brief Means over the samples of one model (HD95 over the samples where it is defined). \ingroup DivAttention */
struct ModelSummary
{
  std::string model;
  int64_t     samples = 0;
  double      dice = 0.0;
  double      recall = 0.0;
  double      precision = 0.0;
  double      hd95 = 0.0;
};

/** 95th percentile Hausdorff distance (mm) between two binary masks (any non-zero voxel is foreground) on a grid of
 * the given spacing (x, y, z), masks shaped (z, y, x) or with leading 1s: surface voxels (foreground with a
 * 6-neighbour in the background or at the border) of each mask, their Euclidean distance to the nearest surface
 * voxel of the other (exact, by ITK's Maurer distance map), and the larger of the two directed 95th percentiles
 * (MONAI's definition; percentile by linear interpolation, as numpy's). NaN when either mask is empty. */
double
HausdorffDistance95(const torch::Tensor &         prediction,
                    const torch::Tensor &         reference,
                    const std::array<double, 3> & spacing);

/** The mean of every metric per model, in the order the models first appear. */
std::vector<ModelSummary>
Summarize(const std::vector<EvaluatedSample> & samples);

/** A table laid out like the paper's Table 1: one row per model, the dataset's Dice / Recall / Precision columns
 * (plus HD95), four decimals. `markdown` gives a Markdown table, else aligned text for a terminal. */
std::string
FormatTable1(const std::vector<ModelSummary> & summaries, const std::string & datasetName, bool markdown);

/** The group of a structure name, for the real-data gate: "organs", "lesions", "vessels", "muscle", "bone" or
 * "other". Case-insensitive, by the first rule (in this order) whose word occurs in the name:
 * - lesions: lesion, tumor, tumour, cyst, nodule, mass, metasta, gtv, sarcoma;
 * - vessels: aorta, artery, arteries, vein, vena, portal, vessel, brachiocephalic_trunk;
 * - bone: vertebra, rib_, sacrum, femur, humerus, scapula, clavicula, hip_, sternum, skull, costal_cartilage, bone;
 * - muscle: gluteus, iliopsoas, autochthon, muscle, psoas;
 * - organs: spleen, kidney, gallbladder, liver, stomach, pancreas, adrenal, lung, esophagus, trachea, thyroid,
 *   bowel, duodenum, colon, bladder, prostate, uterus, heart, atrial_appendage, brain;
 * - other: anything else (spinal cord, face, an unnamed label).
 * TotalSegmentator's names ("kidney_cyst_left" is a lesion, "portal_vein_and_splenic_vein" a vessel,
 * "vertebrae_L1" bone, "gluteus_maximus_left" muscle) and the usual lesion data set names fall where a reader expects.
 */
std::string
StructureGroup(const std::string & structure);

/** \brief Means over the samples of one (group, model) pair. \ingroup DivAttention */
struct GroupSummary
{
  std::string  group;
  ModelSummary summary;
  int64_t      structures = 0; ///< distinct (case, structure, instance) targets behind the samples
};

/** The means per group (in the order organs, lesions, vessels, muscle, bone, other, then any other group name) and,
 * within a group, per model in the order the models first appear; HD95 over the samples where it is defined. */
std::vector<GroupSummary>
SummarizeByGroup(const std::vector<EvaluatedSample> & samples);

/** The real-data gate's table: per group, one row per model with Dice, recall, precision, HD95 and the number of
 * samples and targets; Markdown or aligned text. */
std::string
FormatGroupTable(const std::vector<GroupSummary> & summaries, bool markdown);

/** Per-sample CSV (header: model,case,instance,click,dice,recall,precision,hd95_mm,tp,fp,fn,click_x,click_y,click_z,
 * fallback_crop,structure,group,answer); a value not recorded (NaN, -1, an empty name) is an empty field. */
std::string
FormatSamplesCSV(const std::vector<EvaluatedSample> & samples);

/** Mean Dice per case (rows, in order of appearance) and model (columns), as aligned text or Markdown. */
std::string
FormatPerCaseDice(const std::vector<EvaluatedSample> & samples, bool markdown);
} // namespace diva

#endif
