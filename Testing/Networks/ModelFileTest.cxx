// The model file (save -> load bit-identical, clear errors) and the import of MONAI UNETR state dicts by name.
#include "divaMUnet.h"
#include "divaModelFile.h"
#include "divaMonaiImport.h"
#include "divaUNETR.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

namespace
{
namespace fs = std::filesystem;

class ModelFile : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    m_Directory = fs::temp_directory_path() /
                  ("diva-model-file-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(m_Directory);
  }
  void
  TearDown() override
  {
    fs::remove_all(m_Directory);
  }
  std::string
  PathOf(const std::string & name) const
  {
    return (m_Directory / name).string();
  }
  fs::path m_Directory;
};

diva::ModelDescription
ExampleDescription()
{
  diva::ModelDescription d;
  d.preset = "small";
  d.inputChannels = { "CT (HU)", "click map" };
  d.preprocessing.clipMinimum = -200.0;
  d.preprocessing.clipMaximum = 300.5;
  d.preprocessing.targetSpacing = { { 0.8, 0.8, 1.5 } };
  d.preprocessing.patchSize = { { 32, 32, 32 } };
  d.provenance.version = "0.1.0";
  d.provenance.trainingCommand = "DivAttentionTrain --preset small";
  d.provenance.data = "phantom";
  d.provenance.date = "2024-01-01T00:00:00Z";
  return d;
}

void
ExpectBitIdenticalAfterReload(diva::SegmentationNetworkImpl & network, const std::string & path)
{
  torch::manual_seed(12);
  const auto image = torch::randn({ 1, network.GetInputChannels(), 32, 32, 32 });
  network.eval();
  torch::Tensor before;
  {
    torch::NoGradGuard noGrad;
    before = network.Segment(image).logits;
  }
  diva::SaveModel(path, network, ExampleDescription());
  const auto loaded = diva::LoadModel(path);
  EXPECT_EQ(loaded.network->GetSettings(), network.GetSettings());
  torch::NoGradGuard noGrad;
  EXPECT_TRUE(torch::equal(loaded.network->Segment(image).logits, before));
}

TEST_F(ModelFile, UNETRSaveLoadIsBitIdentical)
{
  auto options = diva::UNETROptions::Preset("small").image_size(32).in_channels(2);
  options.div_attention().enabled(true);
  diva::UNETR network(options);
  ExpectBitIdenticalAfterReload(*network, PathOf("unetr.pt"));
}

TEST_F(ModelFile, MUnetSaveLoadIsBitIdentical)
{
  auto options = diva::MUnetOptions::Preset("small");
  options.div_attention().enabled(true);
  diva::MUnet network(options);
  ExpectBitIdenticalAfterReload(*network, PathOf("munet.pt"));
}

TEST_F(ModelFile, DescriptionRoundTrips)
{
  diva::MUnet network(diva::MUnetOptions::Preset("small"));
  diva::SaveModel(PathOf("m.pt"), *network, ExampleDescription());
  const auto d = diva::LoadModel(PathOf("m.pt")).description;
  const auto e = ExampleDescription();
  EXPECT_EQ(d.preset, e.preset);
  EXPECT_EQ(d.inputChannels, e.inputChannels);
  EXPECT_EQ(d.preprocessing.clipMaximum, e.preprocessing.clipMaximum);
  EXPECT_EQ(d.preprocessing.targetSpacing, e.preprocessing.targetSpacing);
  EXPECT_EQ(d.preprocessing.patchSize, e.preprocessing.patchSize);
  EXPECT_EQ(d.preprocessing.clickEncoding, e.preprocessing.clickEncoding);
  EXPECT_EQ(d.provenance.trainingCommand, e.provenance.trainingCommand);
  EXPECT_EQ(d.provenance.date, e.provenance.date);
}

TEST_F(ModelFile, RoleRoundTripsAndOldFilesLoadAsUnknown)
{
  diva::MUnet network(diva::MUnetOptions::Preset("small"));
  auto        description = ExampleDescription();
  EXPECT_EQ(description.role, "unknown");
  description.role = "refine";
  diva::SaveModel(PathOf("refine.pt"), *network, description);
  EXPECT_EQ(diva::LoadModel(PathOf("refine.pt")).description.role, "refine");

  // A file written before roles existed: the same dict without the "role" entry.
  std::ifstream     in(PathOf("refine.pt"), std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto              file = torch::jit::pickle_load(bytes).toGenericDict();
  auto              old = file.at("description").toGenericDict();
  ASSERT_TRUE(old.contains("role"));
  static_cast<void>(old.erase("role"));
  file.insert_or_assign("description", old);
  const auto oldBytes = torch::jit::pickle_save(file);
  std::ofstream(PathOf("old.pt"), std::ios::binary).write(oldBytes.data(), std::streamsize(oldBytes.size()));
  EXPECT_EQ(diva::LoadModel(PathOf("old.pt")).description.role, "unknown");
}

void
ExpectLoadError(const std::string & path, const std::string & fragment)
{
  try
  {
    diva::LoadModel(path);
    ADD_FAILURE() << "no error for " << path;
  }
  catch (const std::runtime_error & error)
  {
    const std::string message = error.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

TEST_F(ModelFile, MissingTruncatedAndForeignFilesGiveClearErrors)
{
  ExpectLoadError(PathOf("absent.pt"), "cannot be opened");

  diva::MUnet network(diva::MUnetOptions::Preset("small"));
  diva::SaveModel(PathOf("whole.pt"), *network, ExampleDescription());
  std::ifstream     in(PathOf("whole.pt"), std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(PathOf("truncated.pt"), std::ios::binary).write(bytes.data(), std::streamsize(bytes.size() / 2));
  ExpectLoadError(PathOf("truncated.pt"), "truncated");

  std::ofstream(PathOf("text.pt")) << "not a model\n";
  ExpectLoadError(PathOf("text.pt"), "not a readable model file");

  c10::Dict<std::string, torch::Tensor> justWeights;
  justWeights.insert("w", torch::ones({ 2 }));
  const auto other = torch::jit::pickle_save(justWeights);
  std::ofstream(PathOf("foreign.pt"), std::ios::binary).write(other.data(), std::streamsize(other.size()));
  ExpectLoadError(PathOf("foreign.pt"), "not a DivAttention model file");
}

TEST_F(ModelFile, MismatchedWeightsGiveClearErrors)
{
  diva::MUnet                                        network(diva::MUnetOptions::Preset("small"));
  diva::MUnet                                        bigger(diva::MUnetOptions::Preset("small").base_features(24));
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto & item : bigger->named_parameters())
  {
    tensors.emplace_back(item.key(), item.value());
  }
  EXPECT_THROW(diva::LoadNamedTensors(*network, tensors, nullptr, "test"), std::runtime_error);
  tensors.clear();
  for (const auto & item : network->named_parameters())
  {
    tensors.emplace_back(item.key(), item.value());
  }
  tensors.pop_back();
  try
  {
    diva::LoadNamedTensors(*network, tensors, nullptr, "test");
    ADD_FAILURE() << "a missing weight was accepted";
  }
  catch (const std::runtime_error & error)
  {
    EXPECT_NE(std::string(error.what()).find("missing"), std::string::npos) << error.what();
  }
}

// A state dict with MONAI's names as torch.save writes it (pickled dict in a zip), with MONAI >= 1.3's unused
// cross-attention keys and DataParallel's prefix: the import must reproduce the source network bit for bit.
TEST_F(ModelFile, ImportsMonaiStateDictByName)
{
  torch::manual_seed(13);
  const auto                            options = diva::UNETROptions::Preset("small").image_size(32);
  diva::UNETR                           source(options);
  c10::Dict<std::string, torch::Tensor> stateDict;
  for (const auto & item : source->named_parameters())
  {
    stateDict.insert("module." + item.key(), item.value().detach());
  }
  stateDict.insert("module.vit.blocks.0.cross_attn.qkv.weight", torch::randn({ 576, 192 }));
  stateDict.insert("module.vit.blocks.0.norm_cross_attn.weight", torch::randn({ 192 }));
  c10::impl::GenericDict checkpoint(c10::StringType::get(), c10::AnyType::get());
  checkpoint.insert("state_dict", stateDict);
  checkpoint.insert("epoch", int64_t{ 42 });
  const auto bytes = torch::jit::pickle_save(checkpoint);
  std::ofstream(PathOf("monai.pt"), std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));

  torch::manual_seed(14);
  diva::UNETR target(options);
  EXPECT_EQ(diva::ImportMonaiUnetr(*target, PathOf("monai.pt")), source->named_parameters().size());
  const auto         image = torch::randn({ 1, 1, 32, 32, 32 });
  torch::NoGradGuard noGrad;
  EXPECT_TRUE(torch::equal(target->forward(image), source->forward(image)));

  diva::UNETR wider(diva::UNETROptions::Preset("small").image_size(32).hidden_size(256));
  EXPECT_THROW(diva::ImportMonaiUnetr(*wider, PathOf("monai.pt")), std::runtime_error);
  EXPECT_THROW(diva::ImportMonaiUnetr(*target, PathOf("absent.pt")), std::runtime_error);
}

TEST(MonaiImport, UnusedKeys)
{
  EXPECT_TRUE(diva::IsUnusedMonaiKey("vit.blocks.3.cross_attn.out_proj.weight"));
  EXPECT_TRUE(diva::IsUnusedMonaiKey("vit.blocks.3.norm_cross_attn.bias"));
  EXPECT_FALSE(diva::IsUnusedMonaiKey("vit.blocks.3.attn.qkv.weight"));
}

} // namespace
