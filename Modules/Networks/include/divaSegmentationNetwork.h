#ifndef divaSegmentationNetwork_h
#define divaSegmentationNetwork_h

#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

namespace diva
{
/** \brief Text settings of a network (architecture, preset, every option) as stored in the model file.
 * \ingroup DivAttention */
using Settings = std::map<std::string, std::string>;

/** \brief What a segmentation network returns.
 *
 * `logits` is the final prediction at the input's size. `intermediateLogits` are the deep-supervision predictions,
 * highest resolution first (empty when the host has none or they were not asked for). `attentionMaps` are the
 * div-attention maps (eq. 4), highest resolution first, kept in the autograd graph (never detached).
 * \ingroup DivAttention
 */
struct SegmentationOutput
{
  torch::Tensor              logits;
  std::vector<torch::Tensor> intermediateLogits;
  std::vector<torch::Tensor> attentionMaps;
};

/** \brief What Segment() returns besides the final logits.
 * \ingroup DivAttention
 */
struct SegmentationRequest
{
  /** false: `attentionMaps` comes back empty, and for inference on a CPU the div-attention modules skip writing their
   * maps (one [N, C, D, H, W] tensor per module fewer; DivAttentionBlockImpl::forward). */
  bool attentionMaps = true;
};

/** \brief Interface every network of the method shares, so the loss, the model file and the applications need not
 * know which architecture they hold.
 * \ingroup DivAttention
 */
class SegmentationNetworkImpl : public torch::nn::Module
{
public:
  using torch::nn::Module::Module;
  ~SegmentationNetworkImpl() override = default;

  /** image: [N, C, D, H, W] with C the configured input channels. */
  virtual SegmentationOutput
  Segment(const torch::Tensor & image, const SegmentationRequest & request) = 0;

  /** Everything: Segment(image, SegmentationRequest{}). */
  SegmentationOutput
  Segment(const torch::Tensor & image)
  {
    return Segment(image, SegmentationRequest{});
  }

  /** Architecture name ("UNETR", "mUnet", "ESPNet3D") and all options, enough to rebuild this network. */
  virtual Settings
  GetSettings() const = 0;

  virtual int64_t
  GetInputChannels() const = 0;

  virtual int64_t
  GetOutputChannels() const = 0;

  /** The spatial sizes the network accepts are multiples of this (per axis). */
  virtual int64_t
  GetSizeDivisor() const = 0;
};

/** Number of scalar parameters (trainable or not) of a module and its children. */
int64_t
CountParameters(const torch::nn::Module & module);

/** Throws std::invalid_argument unless image is [N, channels, D, H, W] with every side a positive multiple of
 * divisor (`network` names the caller in the message). */
void
CheckImageShape(const torch::Tensor & image, int64_t channels, int64_t divisor, const std::string & network);

/** Reads one setting; throws std::invalid_argument naming the key when it is missing or not of the type. */
std::string
SettingText(const Settings & settings, const std::string & key);
int64_t
SettingInteger(const Settings & settings, const std::string & key);
double
SettingReal(const Settings & settings, const std::string & key);
bool
SettingFlag(const Settings & settings, const std::string & key);

/** Text forms used when writing settings (round-trip exact for reals: 17 significant digits). */
std::string
ToSettingText(double value);
inline std::string
ToSettingText(bool value)
{
  return value ? "true" : "false";
}
inline std::string
ToSettingText(int64_t value)
{
  return std::to_string(value);
}

} // namespace diva

#endif
