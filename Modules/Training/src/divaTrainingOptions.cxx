#include "divaTrainingOptions.h"
#include "divaDivAttentionBlock.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace diva
{
namespace
{
// One table drives both directions, so a field cannot be written without being readable (and vice versa).
#define DIVA_TRAINING_FIELDS(X)                                                                                        \
  X("stage", stage)                                                                                                    \
  X("model", model)                                                                                                    \
  X("preset", preset)                                                                                                  \
  X("div_attention", divAttention)                                                                                     \
  X("div_attention_fusion_kernel", divAttentionFusionKernel)                                                           \
  X("div_attention_refined_norm_scale", divAttentionRefinedNormScale)                                                  \
  X("dataset", dataset)                                                                                                \
  X("layout", layout)                                                                                                  \
  X("target_labels", targetLabels)                                                                                     \
  X("instances", instances)                                                                                            \
  X("minimum_extent", minimumExtent)                                                                                   \
  X("minimum_voxels", minimumVoxels)                                                                                   \
  X("expect_binary", expectBinary)                                                                                     \
  X("strict", strict)                                                                                                  \
  X("split_file", splitFile)                                                                                           \
  X("split_scheme", splitScheme)                                                                                       \
  X("output_dir", outputDirectory)                                                                                     \
  X("stage1_model", stage1Model)                                                                                       \
  X("initial_model", initialModel)                                                                                     \
  X("maximum_cases", maximumCases)                                                                                     \
  X("patch_size", patchSize)                                                                                           \
  X("target_spacing", targetSpacing)                                                                                   \
  X("clip_minimum", clipMinimum)                                                                                       \
  X("clip_maximum", clipMaximum)                                                                                       \
  X("click_strategy", clickStrategy)                                                                                   \
  X("click_encoding", clickEncoding)                                                                                   \
  X("window_offset", windowOffset)                                                                                     \
  X("stage1_windows_inside_image", stage1WindowsInsideImage)                                                           \
  X("negative_click_channel", negativeClickChannel)                                                                    \
  X("correction_rounds", correctionRounds)                                                                             \
  X("correction_probability", correctionProbability)                                                                   \
  X("crop_margin", cropMargin)                                                                                         \
  X("crop_minimum_side", cropMinimumSide)                                                                              \
  X("crop_center_jitter", cropCenterJitter)                                                                            \
  X("crop_size_jitter", cropSizeJitter)                                                                                \
  X("augment", augment)                                                                                                \
  X("rotation_degrees", rotationDegrees)                                                                               \
  X("scale_range", scaleRange)                                                                                         \
  X("intensity_shift", intensityShift)                                                                                 \
  X("intensity_scale", intensityScale)                                                                                 \
  X("noise_std", noiseStandardDeviation)                                                                               \
  X("field_of_view_cut", fieldOfViewCutProbability)                                                                    \
  X("learning_rate", learningRate)                                                                                     \
  X("milestones", milestones)                                                                                          \
  X("learning_rate_gamma", learningRateGamma)                                                                          \
  X("epochs", epochs)                                                                                                  \
  X("batch_size", batchSize)                                                                                           \
  X("steps_per_epoch", stepsPerEpoch)                                                                                  \
  X("patience", patience)                                                                                              \
  X("minimum_improvement", minimumImprovement)                                                                         \
  X("loss_alpha", lossAlpha)                                                                                           \
  X("loss_beta", lossBeta)                                                                                             \
  X("loss_gamma", lossGamma)                                                                                           \
  X("dice_form", diceForm)                                                                                             \
  X("seed", seed)                                                                                                      \
  X("threads", threads)                                                                                                \
  X("deterministic", deterministic)                                                                                    \
  X("device", device)                                                                                                  \
  X("prefetch_batches", prefetchBatches)                                                                               \
  X("loader_threads", loaderThreads)                                                                                   \
  X("progress", progress)                                                                                              \
  X("export_float16", exportFloat16)

// Reads one field. nlohmann's get_to converts any JSON number to any arithmetic type with a plain cast: a real or an
// out-of-range integer for an integer field is undefined behaviour (1.5e300 to int64) or silently another value (1.5
// to 1, 70000 to uint16 4464, -1 to unsigned 4294967295), and a boolean reads as a number. These accept only what
// the field can hold exactly: an integer in the field's range, a finite number (JSON cannot write an infinite one
// back, so the run's checkpoint could not be read), and arrays element by element (std::array of exactly its length).
template<typename T>
void
Read(const nlohmann::json & value, T & field)
{
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::string>)
  {
    value.get_to(field); // refuses every other JSON type
  }
  else if constexpr (std::is_integral_v<T>)
  {
    const auto max = static_cast<uint64_t>(std::numeric_limits<T>::max());
    bool       fits = false;
    if (value.is_number_unsigned())
    {
      fits = value.get<uint64_t>() <= max;
    }
    else if (value.is_number_integer())
    {
      const auto number = value.get<int64_t>();
      fits = number >= 0 ? static_cast<uint64_t>(number) <= max
                         : std::is_signed_v<T> && number >= static_cast<int64_t>(std::numeric_limits<T>::min());
    }
    if (!fits)
    {
      throw std::invalid_argument("expected an integer from " + std::to_string(std::numeric_limits<T>::min()) + " to " +
                                  std::to_string(std::numeric_limits<T>::max()) + ", got " + value.dump());
    }
    field = value.is_number_unsigned() ? static_cast<T>(value.get<uint64_t>()) : static_cast<T>(value.get<int64_t>());
  }
  else
  {
    static_assert(std::is_floating_point_v<T>, "a field of a type Read does not know");
    if (!value.is_number() || !std::isfinite(value.get<double>()))
    {
      throw std::invalid_argument("expected a finite number, got " + value.dump());
    }
    field = value.get<T>();
  }
}

template<typename T>
void
Read(const nlohmann::json & value, std::vector<T> & field)
{
  if (!value.is_array())
  {
    throw std::invalid_argument("expected an array, got " + value.dump());
  }
  std::vector<T> items(value.size());
  for (std::size_t i = 0; i < items.size(); ++i)
  {
    Read(value[i], items[i]);
  }
  field = std::move(items);
}

template<typename T, std::size_t N>
void
Read(const nlohmann::json & value, std::array<T, N> & field)
{
  if (!value.is_array() || value.size() != N)
  {
    throw std::invalid_argument("expected an array of " + std::to_string(N) + ", got " + value.dump());
  }
  std::array<T, N> items{};
  for (std::size_t i = 0; i < N; ++i)
  {
    Read(value[i], items[i]);
  }
  field = items;
}
} // namespace

std::string
TrainingOptions::ResolvedModel() const
{
  if (!model.empty())
  {
    return model;
  }
  return stage == 1 ? "munet" : "unetr";
}

int64_t
TrainingOptions::InputChannels() const
{
  return static_cast<int64_t>(InputChannelNames().size());
}

std::vector<std::string>
TrainingOptions::InputChannelNames() const
{
  if (stage != 1)
  {
    return { "CT (HU)" };
  }
  if (negativeClickChannel)
  {
    return { "CT (HU)", "click map", "negative click map" };
  }
  return { "CT (HU)", "click map" };
}

void
TrainingOptions::Validate() const
{
  auto fail = [](const std::string & what) { throw std::invalid_argument(what); };
  if (stage != 1 && stage != 2)
  {
    fail("stage must be 1 or 2, not " + std::to_string(stage));
  }
  const std::string resolved = ResolvedModel();
  if (resolved != "munet" && resolved != "unetr" && resolved != "espnet")
  {
    fail("model must be munet, unetr or espnet, not '" + resolved + "'");
  }
  if (preset != "paper" && preset != "small")
  {
    fail("preset must be paper or small, not '" + preset + "'");
  }
  if (divAttentionFusionKernel != 0 && divAttentionFusionKernel != 1 && divAttentionFusionKernel != 3)
  {
    fail("div-attention fusion kernel must be 0 (the network's default), 1 or 3, not " +
         std::to_string(divAttentionFusionKernel));
  }
  try
  {
    ParseRefinedNormScale(divAttentionRefinedNormScale); // the network's own parser: one list of the names
  }
  catch (const std::invalid_argument & error)
  {
    fail(std::string("div-attention ") + error.what());
  }
  if (instances != "organ" && instances != "lesion" && instances != "label-components")
  {
    fail("instances must be organ, lesion or label-components, not '" + instances + "'");
  }
  if (targetLabels.empty())
  {
    fail("target labels: at least one label id is needed");
  }
  for (const auto side : patchSize)
  {
    if (side <= 0)
    {
      fail("patch size: every side must be positive");
    }
  }
  for (const auto spacing : targetSpacing)
  {
    if (!(spacing > 0.0) || !std::isfinite(spacing))
    {
      fail("target spacing: every value must be positive");
    }
  }
  if (!(clipMaximum > clipMinimum))
  {
    fail("clip range: maximum must exceed minimum");
  }
  if (!(learningRate >= 0.0) || !(learningRateGamma > 0.0))
  {
    fail("learning rate must be >= 0 and its gamma > 0");
  }
  if (epochs < 1 || batchSize < 1 || stepsPerEpoch < 0 || patience < 0 || prefetchBatches < 0 || loaderThreads < 0)
  {
    fail("epochs and batch size must be >= 1; steps per epoch, patience, prefetch and loader threads >= 0");
  }
  if (rotationDegrees < 0.0 || scaleRange < 0.0 || scaleRange >= 1.0 || intensityShift < 0.0 || intensityScale < 0.0 ||
      intensityScale >= 1.0 || noiseStandardDeviation < 0.0 || cropCenterJitter < 0.0 || cropSizeJitter < 0.0 ||
      cropSizeJitter >= 1.0 || !(fieldOfViewCutProbability >= 0.0 && fieldOfViewCutProbability <= 1.0))
  {
    fail("augmentation and jitter ranges must be >= 0 (scale ranges < 1; the field-of-view cut a probability)");
  }
  if (clickStrategy != "uniform" && clickStrategy != "interior")
  {
    fail("click strategy must be uniform or interior, not '" + clickStrategy + "'");
  }
  if (clickEncoding != "euclidean-distance-mm" && clickEncoding != "clipped-scaled" && clickEncoding != "gaussian")
  {
    fail("click encoding must be euclidean-distance-mm, clipped-scaled or gaussian, not '" + clickEncoding + "'");
  }
  if (!(windowOffset >= 0.0 && windowOffset <= 1.0))
  {
    fail("window offset must lie in [0, 1] (a fraction of half the window)");
  }
  if (stage != 1 && (negativeClickChannel || correctionRounds > 0))
  {
    fail("the negative click channel and correction rounds are stage 1's (stage 2 takes no click map)");
  }
  if (correctionRounds < 0 || correctionRounds > 20)
  {
    fail("correction rounds must lie in 0..20, not " + std::to_string(correctionRounds));
  }
  if (!(correctionProbability >= 0.0 && correctionProbability <= 1.0))
  {
    fail("correction probability must lie in [0, 1]");
  }
  if (splitScheme != "public" && splitScheme != "private")
  {
    fail("split scheme must be public or private, not '" + splitScheme + "'");
  }
  if (diceForm != "standard" && diceForm != "as-printed")
  {
    fail("dice form must be standard or as-printed, not '" + diceForm + "'");
  }
}

void
to_json(nlohmann::json & json, const TrainingOptions & o)
{
  json = nlohmann::json::object();
#define DIVA_WRITE(key, field) json[key] = o.field;
  DIVA_TRAINING_FIELDS(DIVA_WRITE)
#undef DIVA_WRITE
}

void
UpdateFromJson(TrainingOptions & o, const nlohmann::json & json, const std::string & sourceName)
{
  if (!json.is_object())
  {
    throw std::invalid_argument(sourceName + ": the configuration must be a JSON object");
  }
  for (auto it = json.begin(); it != json.end(); ++it)
  {
    const std::string & key = it.key();
    bool                known = false;
    try
    {
#define DIVA_READ(name, field)                                                                                         \
  if (key == name)                                                                                                     \
  {                                                                                                                    \
    Read(it.value(), o.field);                                                                                         \
    known = true;                                                                                                      \
  }
      DIVA_TRAINING_FIELDS(DIVA_READ)
#undef DIVA_READ
    }
    catch (const nlohmann::json::exception & error)
    {
      throw std::invalid_argument(sourceName + ": key \"" + key + "\": " + error.what());
    }
    catch (const std::invalid_argument & error)
    {
      throw std::invalid_argument(sourceName + ": key \"" + key + "\": " + error.what());
    }
    if (!known)
    {
      throw std::invalid_argument(sourceName + ": unknown key \"" + key + "\"");
    }
  }
}

TrainingOptions
CheckpointTrainingOptions(const nlohmann::json & stored, const std::string & sourceName)
{
  TrainingOptions options;
  if (stored.is_object() && !stored.contains("div_attention_fusion_kernel"))
  {
    options.divAttentionFusionKernel = 3; // runs started before the option existed built their modules with 3^3
  }
  if (stored.is_object() && !stored.contains("div_attention_refined_norm_scale"))
  {
    options.divAttentionRefinedNormScale = "absolute"; // likewise
  }
  if (stored.is_object() && !stored.contains("window_offset"))
  {
    options.windowOffset = 0.0; // stage-1 windows were centred on the click
  }
  UpdateFromJson(options, stored, sourceName);
  return options;
}

TrainingOptions
LoadTrainingOptions(const std::string & path, const TrainingOptions & defaults)
{
  std::ifstream stream(path);
  if (!stream)
  {
    throw std::runtime_error("config file \"" + path + "\": cannot be read");
  }
  TrainingOptions options = defaults;
  try
  {
    UpdateFromJson(options, nlohmann::json::parse(stream), "config file \"" + path + "\"");
  }
  catch (const nlohmann::json::exception & error)
  {
    throw std::runtime_error("config file \"" + path + "\": " + error.what());
  }
  catch (const std::invalid_argument & error)
  {
    throw std::runtime_error(error.what());
  }
  return options;
}

double
ScheduledLearningRate(double initial, const std::vector<int64_t> & milestones, double gamma, int64_t epoch)
{
  double rate = initial;
  for (const auto milestone : milestones)
  {
    if (epoch >= milestone)
    {
      rate *= gamma;
    }
  }
  return rate;
}
} // namespace diva
