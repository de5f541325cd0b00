#ifndef itkSegmentationModelSupport_h
#define itkSegmentationModelSupport_h

#include "divaModelFile.h"
#include "itkClickDistanceTransformFilter.h"

#include <torch/types.h>

#include <memory>
#include <string>

namespace itk
{
/** \class SegmentationModelSupport
 * \brief What the segmentation filters share about models: loading with ITK errors, role checks, the device a model
 * lives on, the model file's intensity preprocessing and click encoding, and the forward pass.
 *
 * A model is held as std::shared_ptr<diva::LoadedModel>: filters only read it (forward in eval mode under
 * torch::InferenceMode, which changes no parameter or buffer), so pipelines in several threads may share one.
 * \ingroup DivAttention
 */
class SegmentationModelSupport
{
public:
  using ModelPointer = std::shared_ptr<diva::LoadedModel>;

  /** Loads a model file onto `device`; a missing, corrupt or foreign file becomes an itk::ExceptionObject naming
   * `what` (e.g. "coarse model") and the file. */
  static ModelPointer
  Load(const std::string & path, const torch::Device & device, const std::string & what);

  /** Throws itk::ExceptionObject naming `what` unless the model's role is `expected` or "unknown" (files written
   * before roles existed). */
  static void
  CheckRole(const diva::LoadedModel & model, const std::string & expected, const std::string & what);

  /** Throws itk::ExceptionObject naming `what` unless the network takes `provided` input channels. */
  static void
  CheckInputChannels(const diva::LoadedModel & model,
                     int64_t                   provided,
                     const std::string &       providedNames,
                     const std::string &       what);

  /** The device of the network's parameters. */
  static torch::Device
  DeviceOf(const diva::LoadedModel & model);

  /** Clips to [clipMinimum, clipMaximum] and normalises as the model file says ("zscore", "range", "none"). */
  static torch::Tensor
  NormalizeIntensities(const torch::Tensor & ct, const diva::Preprocessing & preprocessing);

  /** The ClickDistanceTransformFilter encoding that a model file's click encoding names ("euclidean-distance-mm",
   * "clipped-scaled", "gaussian"; the prefix decides). itk::ExceptionObject for anything else. */
  static ClickDistanceTransformFilterEnums::Encoding
  ClickEncodingOf(const std::string & text, const std::string & what);

  /** One forward of `input` [1, C, z, y, x] under torch::InferenceMode on the model's device. Returns the foreground
   * probability [1, 1, z, y, x] on the CPU and, when `attention` is given, the attention maps moved to the CPU.
   * LibTorch errors become itk::ExceptionObject naming `what`. */
  static torch::Tensor
  Forward(diva::LoadedModel &          model,
          const torch::Tensor &        input,
          const std::string &          what,
          std::vector<torch::Tensor> * attention = nullptr);

  /** One throw-away forward at the shape the filters will run the model at: [1, C, z, y, x] with C the network's
   * input channels and x y z the model file's patch size (the coarse stage's window, the refinement's patch), zeros
   * in, on the model's device, with the attention maps asked for or not as the run will. What a process pays at its
   * first forward of a shape (oneDNN primitives and JIT kernels, the caching host allocator's blocks mapped and
   * first-touched, LibTorch's and the OpenMP pool's lazy set-up; on CUDA the context, cuDNN/cuBLAS handles and the
   * caching allocator's blocks) is then paid here, e.g. in a thread while the CT is read. Nothing the forward reads
   * is changed (eval mode under torch::InferenceMode), so every later result is bit for bit what it would have been
   * without the warm-up. The calling thread takes LibTorch's thread budget first (at::init_num_threads), so the
   * kernels and primitives prepared are those of the real run. Errors as Forward(). */
  static void
  WarmUp(diva::LoadedModel & model, const std::string & what, bool attentionMaps);
};
} // namespace itk

#endif
