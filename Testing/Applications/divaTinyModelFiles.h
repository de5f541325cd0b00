// Model files for the application tests that need a coarse and a refine model only for their outputs to be written:
// small untrained mUnets (what they segment does not matter) with the preprocessing of an 8 mm, 32^3 grid.
#ifndef divaTinyModelFiles_h
#define divaTinyModelFiles_h

#include "divaMUnet.h"
#include "divaModelFile.h"

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace diva::testing
{
/** Writes <directory>/coarse.pt (2 inputs: CT, click map) and <directory>/refine.pt (1 input: CT), seeded. */
inline void
WriteTinyModelFiles(const std::filesystem::path & directory)
{
  const auto describe = [](const std::string & role, std::vector<std::string> channels)
  {
    ModelDescription description;
    description.preset = "small";
    description.role = role;
    description.inputChannels = std::move(channels);
    description.preprocessing.targetSpacing = { { 8.0, 8.0, 8.0 } };
    description.preprocessing.patchSize = { { 32, 32, 32 } };
    description.preprocessing.normalization = "range";
    description.preprocessing.clipMinimum = -200.0;
    description.preprocessing.clipMaximum = 300.0;
    return description;
  };
  torch::manual_seed(1);
  MUnet coarse(MUnetOptions::Preset("small").in_channels(2).num_stages(3));
  SaveModel((directory / "coarse.pt").string(), *coarse, describe("coarse", { "CT (HU)", "click map" }));
  MUnet refine(MUnetOptions::Preset("small").in_channels(1).num_stages(3));
  SaveModel((directory / "refine.pt").string(), *refine, describe("refine", { "CT (HU)" }));
}
} // namespace diva::testing

#endif
