#ifndef divaEvaluation_h
#define divaEvaluation_h

#include <torch/types.h>

#include <array>
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

/** Per-sample CSV (header: model,case,instance,click,dice,recall,precision,hd95_mm). */
std::string
FormatSamplesCSV(const std::vector<EvaluatedSample> & samples);
} // namespace diva

#endif
