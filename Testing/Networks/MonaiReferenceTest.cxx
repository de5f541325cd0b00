// Our UNETR with MONAI's weights against MONAI's own output: the reference files in ../shared/reference/monai-unetr
// were written by MONAI 1.3.2 and PyTorch (README there). Nothing here comes from our code but the network and the
// importer under test: the input and MONAI's output are read with LibTorch's own unpickler (torch::pickle_load), and
// the nested checkpoint is made by wrapping the pickle Python wrote, byte for byte, in a dict (pickle's documented
// opcodes), as `torch.save({"epoch": e, "state_dict": sd, "optimizer": {}}, path)` would.
#include "divaMonaiImport.h"
#include "divaTorchSaveArchive.h"
#include "divaUNETR.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/serialize.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

namespace
{
std::filesystem::path
ReferenceFolder()
{
  const char * root = std::getenv("DIVATTENTION_TEST_REFERENCE");
  return root == nullptr ? std::filesystem::path() : std::filesystem::path(root) / "monai-unetr";
}

#define SKIP_WITHOUT_REFERENCE(folder)                                                                                 \
  if ((folder).empty() || !std::filesystem::exists((folder) / "state_dict.pt"))                                        \
  {                                                                                                                    \
    GTEST_SKIP() << "MONAI's reference files are absent (DIVATTENTION_TEST_REFERENCE=../shared/reference): skipped";   \
  }

torch::Tensor
LibTorchLoadTensor(const std::filesystem::path & path)
{
  std::ifstream           stream(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  return torch::pickle_load(bytes).toTensor();
}

// The configuration of config.json beside the files (MONAI's UNETR always has 12 layers).
diva::UNETROptions
ReferenceOptions()
{
  return diva::UNETROptions()
    .in_channels(2)
    .out_channels(2)
    .image_size(48)
    .feature_size(12)
    .hidden_size(96)
    .mlp_dim(192)
    .num_heads(6)
    .num_layers(12);
}

// Max |ours - MONAI|. Tolerance 1e-4 on outputs of scale ~3: float32 rounding through 12 transformer blocks and the
// convolutions (our kernels sum in other orders than PyTorch's) stays below ~1e-5; a wrongly mapped weight or a tap
// one block off moves the output by 0.1-0.4 (the early taps: asserted below).
double
DistanceToMonai(diva::UNETRImpl & network, const std::filesystem::path & folder)
{
  network.eval();
  torch::NoGradGuard noGrad;
  const auto         input = LibTorchLoadTensor(folder / "input.pt");
  const auto         expected = LibTorchLoadTensor(folder / "output.pt");
  const auto         output = network.forward(input);
  EXPECT_EQ(output.sizes(), expected.sizes());
  const double distance = (output - expected).abs().max().item<double>();
  std::cout << "max |ours - MONAI| = " << distance << " (MONAI's output spans +-" << expected.abs().max().item<double>()
            << ")\n";
  return distance;
}

std::string
ReadRecord(caffe2::serialize::PyTorchStreamReader & archive, const std::string & name)
{
  auto record = archive.getRecord(name);
  return std::string(static_cast<const char *>(std::get<0>(record).get()), std::get<1>(record));
}

std::string
BinaryUnicode(const std::string & text) // pickle's BINUNICODE: 'X', 4-byte little-endian length, UTF-8 bytes
{
  std::string op = "X";
  for (int i = 0; i < 4; ++i)
  {
    op.push_back(static_cast<char>((text.size() >> (8 * i)) & 0xff));
  }
  return op + text;
}

// {"epoch": 7, "state_dict": <the state dict Python pickled>, "optimizer": {}}, protocol 2, with the storages of
// state_dict.pt copied as they are.
void
WriteNestedCheckpoint(const std::filesystem::path & source, const std::filesystem::path & target)
{
  caffe2::serialize::PyTorchStreamReader reader(source.string());
  const auto                             pickle = ReadRecord(reader, "data.pkl");
  ASSERT_GT(pickle.size(), 3u);
  ASSERT_EQ(pickle.substr(0, 2), std::string("\x80\x02", 2)); // PROTO 2
  ASSERT_EQ(pickle.back(), '.');                              // STOP
  const std::string body = pickle.substr(2, pickle.size() - 3);
  const std::string nested = std::string("\x80\x02}(", 4) + BinaryUnicode("epoch") + "K\x07" +
                             BinaryUnicode("state_dict") + body + BinaryUnicode("optimizer") + "}u.";
  caffe2::serialize::PyTorchStreamWriter writer(target.string());
  writer.writeRecord("data.pkl", nested.data(), nested.size());
  for (const auto & record : reader.getAllRecords())
  {
    if (record.rfind("data/", 0) == 0)
    {
      const auto bytes = ReadRecord(reader, record);
      writer.writeRecord(record, bytes.data(), bytes.size());
    }
  }
  writer.writeEndOfFile();
}
} // namespace

TEST(MonaiReference, StateDictReproducesMonaisOutput)
{
  const auto folder = ReferenceFolder();
  SKIP_WITHOUT_REFERENCE(folder);
  diva::UNETR network(ReferenceOptions());
  EXPECT_EQ(diva::ImportMonaiUnetr(*network, (folder / "state_dict.pt").string()), network->parameters().size());
  EXPECT_LE(DistanceToMonai(*network, folder), 1e-4);
}

TEST(MonaiReference, TorchScriptReproducesMonaisOutput)
{
  const auto folder = ReferenceFolder();
  SKIP_WITHOUT_REFERENCE(folder);
  diva::UNETR network(ReferenceOptions());
  diva::ImportMonaiUnetr(*network, (folder / "scripted.pt").string());
  EXPECT_LE(DistanceToMonai(*network, folder), 1e-4);
}

TEST(MonaiReference, NestedCheckpointReproducesMonaisOutput)
{
  const auto folder = ReferenceFolder();
  SKIP_WITHOUT_REFERENCE(folder);
  const auto nested = std::filesystem::temp_directory_path() / ("diva-nested-" + std::to_string(::getpid()) + ".pt");
  WriteNestedCheckpoint(folder / "state_dict.pt", nested);
  diva::UNETR network(ReferenceOptions());
  diva::ImportMonaiUnetr(*network, nested.string());
  EXPECT_LE(DistanceToMonai(*network, folder), 1e-4);

  // The tree as Python wrote it: the epoch and the optimizer stay beside the state dict.
  const auto root = diva::ReadTorchSaveArchive(nested.string());
  ASSERT_EQ(root->kind, diva::PickledValue::Kind::Dict);
  ASSERT_EQ(root->entries.size(), 3u);
  EXPECT_EQ(root->entries[0].first->text, "epoch");
  EXPECT_EQ(root->entries[0].second->integer, 7);
  EXPECT_EQ(root->entries[1].second->entries.size(), 170u); // README: 170 tensors
  std::filesystem::remove(nested);
}

TEST(MonaiReference, EarlySkipTapsDoNotReproduceMonai)
{
  // The taps one block too early (files written before the fix): the reference tells them apart by far more than
  // the tolerance, so the tests above would fail with them.
  const auto folder = ReferenceFolder();
  SKIP_WITHOUT_REFERENCE(folder);
  diva::UNETR network(ReferenceOptions().skip_taps("early"));
  diva::ImportMonaiUnetr(*network, (folder / "state_dict.pt").string());
  EXPECT_GT(DistanceToMonai(*network, folder), 0.05);
}

TEST(MonaiReference, FilesThatAreNotCheckpointsAreRefusedByName)
{
  const auto folder = ReferenceFolder();
  SKIP_WITHOUT_REFERENCE(folder);
  diva::UNETR network(ReferenceOptions());
  const auto  scratch = std::filesystem::temp_directory_path() / ("diva-bad-" + std::to_string(::getpid()));
  std::filesystem::create_directories(scratch);
  const auto expectRefusal = [&](const std::filesystem::path & path, const std::string & words)
  {
    try
    {
      diva::ImportMonaiUnetr(*network, path.string());
      ADD_FAILURE() << path << " was accepted";
    }
    catch (const std::runtime_error & error)
    {
      const std::string message = error.what();
      EXPECT_NE(message.find(path.string()), std::string::npos) << message;
      EXPECT_NE(message.find(words), std::string::npos) << message;
    }
  };
  // A torch.save of one tensor: a valid file, but no state dict in it.
  expectRefusal(folder / "input.pt", "without a state dict");
  // Not a zip archive at all.
  std::ofstream(scratch / "text.pt") << "not a checkpoint";
  expectRefusal(scratch / "text.pt", "not a zip archive");
  // Python's file cut in half: the zip's directory is gone.
  {
    std::ifstream     stream(folder / "state_dict.pt", std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
    std::ofstream(scratch / "truncated.pt", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  expectRefusal(scratch / "truncated.pt", "cannot read");
  std::filesystem::remove_all(scratch);
}
