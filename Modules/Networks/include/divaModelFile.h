#ifndef divaModelFile_h
#define divaModelFile_h

#include "divaSegmentationNetwork.h"

#include <torch/types.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace diva
{
/** \brief How an image becomes the network's input (stored so that inference needs only the model file).
 * \ingroup DivAttention */
struct Preprocessing
{
  double                 clipMinimum = -1000.0; ///< intensities are clipped to [clipMinimum, clipMaximum] first
  double                 clipMaximum = 1000.0;
  std::string            normalization = "zscore"; ///< "zscore" ((x - mean) / std), "range" (to [0, 1]) or "none"
  double                 mean = 0.0;
  double                 standardDeviation = 1.0;
  std::array<double, 3>  targetSpacing{ { 1.0, 1.0, 1.0 } };      ///< mm, x y z
  std::array<int64_t, 3> patchSize{ { 96, 96, 96 } };             ///< voxels, x y z
  std::string            clickEncoding = "euclidean-distance-mm"; ///< how a click becomes the extra input channel
  /** Stage 2: the crop PCACropResampleFilter cut for training (side = cropMargin x the mask's longest axis, at least
   * cropMinimumSide mm), which the pipeline cuts the same way. Optional in the header ("crop_margin",
   * "crop_minimum_side"); a file without them was trained with these values. */
  double cropMargin = 1.5;
  double cropMinimumSide = 48.0; ///< mm
  /** Stage 1: where its training windows lay at the CT's border, which is where CoarseSegmentationFilter places them at
   * inference unless told otherwise: "inside-image" (clamped inside the CT, the click off-centre) or
   * "centred-on-click" (reaching up to half a window beyond the CT, read as air). Written for coarse models
   * ("window_placement"); a file without it was trained inside the image. */
  std::string windowPlacement = "inside-image";
};

/** \brief Where a model came from. \ingroup DivAttention */
struct Provenance
{
  std::string version;         ///< DivAttention version that trained it
  std::string trainingCommand; ///< the exact command line
  std::string data;            ///< data set and split
  std::string date;            ///< ISO 8601
};

/** \brief Everything in a model file besides the architecture and the weights. \ingroup DivAttention */
struct ModelDescription
{
  std::string preset = "custom"; ///< "paper", "small" or "custom"
  /** Pipeline stage the model was trained for: "coarse" (stage 1, CT + click map), "refine" (stage 2, the crop) or
   * "unknown" (files written before roles existed load as "unknown"). The segmentation filters refuse a model of the
   * other stage, so swapped models are caught before they run. */
  std::string              role = "unknown";
  std::vector<std::string> inputChannels; ///< meaning of each input channel, e.g. {"CT (HU)", "click map"}
  Preprocessing            preprocessing;
  Provenance               provenance;
};

/** \brief A network rebuilt from a model file, with its description. \ingroup DivAttention */
struct LoadedModel
{
  std::shared_ptr<SegmentationNetworkImpl> network;
  ModelDescription                         description;
};

/** Builds an untrained network from its settings ("architecture" = "UNETR", "mUnet" or "ESPNet3D").
 * std::invalid_argument for an unknown architecture or a bad setting. */
std::shared_ptr<SegmentationNetworkImpl>
CreateNetwork(const Settings & architecture);

/** \brief How SaveModel stores the weights. \ingroup DivAttention */
struct ModelSaveOptions
{
  /** Store floating-point parameters and buffers as float16 (IEEE binary16, round to nearest even): half the file,
   * at a relative precision of 2^-11 per weight (Documentation/Method.md, "The model file"). A tensor with a finite
   * value beyond float16's range (|x| > 65504) stays float32. Integer buffers are always stored exactly. LoadModel
   * converts everything back to float32. */
  bool float16 = false;
};

/** The model file's bytes for network (settings + every parameter and buffer, taken to the CPU) and description, in
 * DivAttention's own binary format (Documentation/Method.md, "The model file"). std::invalid_argument if
 * description.inputChannels does not match the network's input, a preprocessing real is not finite, or a tensor has
 * a type the format cannot store. */
std::string
SaveModelToBytes(SegmentationNetworkImpl & network,
                 const ModelDescription &  description,
                 const ModelSaveOptions &  options = ModelSaveOptions());

/** Writes SaveModelToBytes(network, description, options) to path atomically (a reader or a crash mid-write sees the
 * old file or the complete new one). std::runtime_error if the file cannot be written; std::invalid_argument as for
 * SaveModelToBytes. */
void
SaveModel(const std::string &       path,
          SegmentationNetworkImpl & network,
          const ModelDescription &  description,
          const ModelSaveOptions &  options = ModelSaveOptions());

/** Reads a file SaveModel wrote and rebuilds the network on device (in eval mode, float32 weights). std::runtime_error
 * naming the file and the problem for a missing, empty, truncated, corrupt, foreign, newer-version or inconsistent
 * file (missing, unexpected or misshapen weights). */
LoadedModel
LoadModel(const std::string & path, const torch::Device & device = torch::kCPU);

/** LoadModel on bytes already in memory (what LoadModel does after reading the file; also the fuzzing entry point).
 * Every length, offset and shape is checked against bytes.size() before anything is allocated for it. sourceName
 * names the origin in messages ("model file '<sourceName>': ..."). */
LoadedModel
LoadModelFromBytes(const std::string &   bytes,
                   const std::string &   sourceName,
                   const torch::Device & device = torch::kCPU);

/** Copies named tensors into network's parameters and buffers by name (converting the element type, e.g. float16 to
 * float32). Every parameter and buffer must be given with its shape and an element type of the same kind (floating
 * point, integer or bool); names for which ignore(name) is true are skipped; any other extra name is an error. `source`
 * names the origin in messages. Returns the number of tensors copied. std::runtime_error otherwise. */
std::size_t
LoadNamedTensors(torch::nn::Module &                                        network,
                 const std::vector<std::pair<std::string, torch::Tensor>> & tensors,
                 bool (*ignore)(const std::string &),
                 const std::string & source);

} // namespace diva

#endif
