// Writes the model-file seeds of the fuzz corpus (Testing/Fuzzing/corpus/ModelFile): the smallest networks the loader
// can rebuild, saved by SaveModelToBytes, a few KB each. Usage: DivAttentionFuzzMakeModelSeeds OUTPUT_DIRECTORY
#include "divaMUnet.h"
#include "divaModelFile.h"

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace
{
void
Write(const std::filesystem::path & path, const std::string & bytes)
{
  std::ofstream stream(path, std::ios::binary | std::ios::trunc);
  stream.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!stream)
  {
    throw std::runtime_error("cannot write " + path.string());
  }
  std::printf("%s: %zu bytes\n", path.c_str(), bytes.size());
}
} // namespace

int
main(int argc, char ** argv)
{
  if (argc != 2)
  {
    std::fprintf(stderr, "usage: %s OUTPUT_DIRECTORY\n", argv[0]);
    return 2;
  }
  const std::filesystem::path directory(argv[1]);
  std::filesystem::create_directories(directory);
  torch::manual_seed(0);

  diva::ModelDescription description;
  description.preset = "custom";
  description.role = "coarse";
  description.inputChannels = { "CT (HU)", "click map" };
  description.preprocessing.patchSize = { { 8, 8, 8 } };
  description.provenance.version = "fuzz-seed";
  description.provenance.date = "2026-01-01";

  // mUnet, two stages of one and two features, without the div-attention module: the smallest network there is.
  diva::MUnetImpl plain(
    diva::MUnetOptions().in_channels(2).out_channels(1).num_stages(2).base_features(1).max_features(2));
  Write(directory / "munet-tiny.dmdl", diva::SaveModelToBytes(plain, description));
  diva::ModelSaveOptions half;
  half.float16 = true;
  Write(directory / "munet-tiny-float16.dmdl", diva::SaveModelToBytes(plain, description, half));

  // Three stages with the div-attention module (between the two decoder stages: its own tensors and settings) and
  // deep supervision.
  diva::MUnetImpl attention(diva::MUnetOptions()
                              .in_channels(2)
                              .out_channels(1)
                              .num_stages(3)
                              .base_features(1)
                              .max_features(2)
                              .deep_supervision(true)
                              .div_attention(diva::DivAttentionSwitch().enabled(true)));
  description.role = "refine";
  const auto withAttention = diva::SaveModelToBytes(attention, description);
  Write(directory / "munet-tiny-div-attention.dmdl", withAttention);

  // Broken files: cut short, and from a newer format version (the version is the uint32 after the 8-byte magic).
  Write(directory / "truncated.dmdl", withAttention.substr(0, 300));
  auto newer = withAttention;
  newer[8] = 2;
  Write(directory / "newer-version.dmdl", newer);
  return 0;
}
