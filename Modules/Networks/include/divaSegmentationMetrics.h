#ifndef divaSegmentationMetrics_h
#define divaSegmentationMetrics_h

#include <torch/types.h>

namespace diva
{
/** \brief Dice, recall and precision of a binary prediction against a binary reference (the paper's Table 1).
 *
 * Any non-zero voxel is foreground. A ratio whose denominator is 0 is 1 (nothing could be wrong): both masks empty
 * give Dice 1, recall 1, precision 1; an empty reference with a non-empty prediction gives Dice 0, recall 1,
 * precision 0; an empty prediction with a non-empty reference gives Dice 0, recall 0, precision 1.
 * \ingroup DivAttention */
struct BinaryMetrics
{
  double  dice = 1.0;
  double  recall = 1.0;
  double  precision = 1.0;
  int64_t truePositives = 0;
  int64_t falsePositives = 0;
  int64_t falseNegatives = 0;
};

/** Throws std::invalid_argument when the shapes differ or a mask is undefined. */
BinaryMetrics
ComputeBinaryMetrics(const torch::Tensor & prediction, const torch::Tensor & reference);

} // namespace diva

#endif
