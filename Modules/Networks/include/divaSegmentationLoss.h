#ifndef divaSegmentationLoss_h
#define divaSegmentationLoss_h

#include "divaSegmentationNetwork.h"

#include <torch/arg.h>

#include <string>
#include <vector>

namespace diva
{
/** \brief Which Dice of eq. 7. \ingroup DivAttention
 *
 * `Standard`: 1 - (2 sum(p*y) + s) / (sum(p) + sum(y) + s), 0 for a perfect prediction (the default).
 * `AsPrinted`: 1 - (2 sum(p*y) + s) / (sum(p) + sum(y) + sum(p*y) + s), eq. 7 as printed: 1/3 for a perfect one. */
enum class DiceForm
{
  Standard,
  AsPrinted
};

std::string
ToString(DiceForm form);
DiceForm
ParseDiceForm(const std::string & text);

/** \brief Options of the loss of eqs. 6-8 (defaults documented in Documentation/Method.md). \ingroup DivAttention */
struct SegmentationLossOptions
{
  TORCH_ARG(double, alpha) = 1.0; ///< weight of wBCE (eq. 8)
  TORCH_ARG(double, beta) = 1.0;  ///< weight of Dice (eq. 8)
  /// weight of the positive term of wBCE (eq. 6); < 1 penalises false positives more, as the paper asks
  TORCH_ARG(double, gamma) = 0.5;
  TORCH_ARG(DiceForm, dice_form) = DiceForm::Standard;
  TORCH_ARG(double, smooth) = 1e-5; ///< s in DiceForm: makes an empty target with an empty prediction cost 0
  /// nnU-Net's rule of giving the lowest-resolution output weight 0 (off: the paper supervises every output given)
  TORCH_ARG(bool, zero_lowest_weight) = false;
};

/** Foreground probability p and log p, log(1 - p) from logits [N, C, ...]: C = 1 is a sigmoid, C = 2 a softmax
 * (channel 1 the foreground). Other C throw std::invalid_argument. Returned shape [N, 1, ...]. */
torch::Tensor
ForegroundProbability(const torch::Tensor & logits);

/** eq. 6, averaged over every voxel of the batch; target in {0, 1}, [N, 1, ...] or [N, ...]. */
torch::Tensor
WeightedBinaryCrossEntropy(const torch::Tensor & logits, const torch::Tensor & target, double gamma);

/** eq. 7, per sample then averaged over the batch. */
torch::Tensor
SoftDiceLoss(const torch::Tensor & logits, const torch::Tensor & target, DiceForm form, double smooth);

/** eq. 8 on one output. */
torch::Tensor
SegmentationLoss(const torch::Tensor & logits, const torch::Tensor & target, const SegmentationLossOptions & options);

/** Weights of `outputs` outputs (index 0 = final, then coarser): 1/2^i, the last 0 if zeroLowest, normalised to sum 1.
 */
std::vector<double>
DeepSupervisionWeights(std::size_t outputs, bool zeroLowest);

/** eq. 8 on the final and every intermediate output, weighted by DeepSupervisionWeights; the target is resized to
 * each output by nearest neighbour. */
torch::Tensor
DeepSupervisedLoss(const SegmentationOutput &      output,
                   const torch::Tensor &           target,
                   const SegmentationLossOptions & options);

} // namespace diva

#endif
