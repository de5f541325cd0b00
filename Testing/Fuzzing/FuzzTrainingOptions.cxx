// Fuzz target: the training configuration reader, as diva::LoadTrainingOptions reads a config file: JSON text
// (nlohmann::json::exception when it is not JSON), then diva::UpdateFromJson (std::invalid_argument for an unknown key
// or a value of the wrong type) and TrainingOptions::Validate (std::invalid_argument for a bad setting). Those are the
// documented errors; anything else is a finding. A configuration that is accepted must also survive the trip every
// checkpoint makes (to_json, then UpdateFromJson on the defaults) unchanged, or a resumed run would fail or differ.
#include "divaTrainingOptions.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t * data, size_t size)
{
  const std::string     text(reinterpret_cast<const char *>(data), size);
  diva::TrainingOptions options;
  try
  {
    diva::UpdateFromJson(options, nlohmann::json::parse(text), "fuzz/config.json");
    options.Validate();
  }
  catch (const nlohmann::json::exception &)
  {
    return 0;
  }
  catch (const std::invalid_argument &)
  {
    return 0;
  }
  nlohmann::json stored;
  to_json(stored, options);
  diva::TrainingOptions resumed;
  try
  {
    diva::UpdateFromJson(resumed, nlohmann::json::parse(stored.dump()), "fuzz/checkpoint");
    resumed.Validate();
  }
  catch (const std::exception &)
  {
    __builtin_trap(); // an accepted configuration that its own checkpoint cannot restore
  }
  nlohmann::json restored;
  to_json(restored, resumed);
  if (restored != stored)
  {
    __builtin_trap(); // the checkpoint's configuration differs from the one the run started with
  }
  return 0;
}
