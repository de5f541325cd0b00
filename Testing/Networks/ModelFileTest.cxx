// The model file (Documentation/Method.md, "The model file"): save -> load bit-identical, float16 storage within its
// stated precision, the documented byte layout, and clear errors (never a crash or a huge allocation) for missing,
// truncated, corrupt, foreign, newer and inconsistent files; and the import of MONAI UNETR state dicts by name.
#include "divaESPNet3D.h"
#include "divaMUnet.h"
#include "divaModelFile.h"
#include "divaMonaiImport.h"
#include "divaUNETR.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

namespace
{
namespace fs = std::filesystem;
using Json = nlohmann::ordered_json; // keeps the header's key order, so that files can be rebuilt byte for byte

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
  d.role = "coarse";
  d.inputChannels = { "CT (HU)", "click map" };
  d.preprocessing.clipMinimum = -200.0;
  d.preprocessing.clipMaximum = 300.5;
  d.preprocessing.normalization = "range";
  d.preprocessing.mean = 0.1 + 0.2; // not a short decimal: must round-trip exactly
  d.preprocessing.standardDeviation = 1.0 / 3.0;
  d.preprocessing.targetSpacing = { { 0.8, 0.8, 1.5 } };
  d.preprocessing.patchSize = { { 32, 48, 64 } };
  d.preprocessing.clickEncoding = "clipped-scaled";
  d.provenance.version = "0.1.0";
  d.provenance.trainingCommand = "DivAttentionTrain --preset small --note \"quoted\" \xc3\xa9";
  d.provenance.data = "phantom";
  d.provenance.date = "2024-01-01T00:00:00Z";
  return d;
}

// ---- An independent reading of the layout documented in Method.md, to check it and to edit files in tests. ----

constexpr char        Magic[8] = { 'D', 'I', 'V', 'A', 'M', 'D', 'L', '\0' };
constexpr std::size_t Preamble = 20; // magic, uint32 version, uint64 header length
constexpr std::size_t Trailer = 12;  // uint32 CRC-32, magic

uint32_t
BitwiseCrc32(const std::string & bytes, std::size_t size)
{
  uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i)
  {
    crc ^= static_cast<unsigned char>(bytes[i]);
    for (int bit = 0; bit < 8; ++bit)
    {
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
  }
  return ~crc;
}

uint64_t
ReadLE(const std::string & bytes, std::size_t at, int count)
{
  uint64_t value = 0;
  for (int i = count - 1; i >= 0; --i)
  {
    value = (value << 8) | static_cast<unsigned char>(bytes.at(at + std::size_t(i)));
  }
  return value;
}

void
WriteLE(std::string & bytes, std::size_t at, uint64_t value, int count)
{
  for (int i = 0; i < count; ++i)
  {
    bytes.at(at + std::size_t(i)) = static_cast<char>((value >> (8 * i)) & 0xFFu);
  }
}

/** Recomputes the CRC-32 of an edited file, so that the loader gets past the checksum to what was edited. */
std::string
Resealed(std::string bytes)
{
  WriteLE(bytes, bytes.size() - Trailer, BitwiseCrc32(bytes, bytes.size() - Trailer), 4);
  return bytes;
}

struct Layout
{
  uint32_t    version = 0;
  Json        header;
  std::size_t dataStart = 0;
  std::string data;
};

Layout
Parse(const std::string & bytes)
{
  Layout layout;
  EXPECT_EQ(bytes.compare(0, 8, Magic, 8), 0);
  layout.version = static_cast<uint32_t>(ReadLE(bytes, 8, 4));
  const auto headerLength = static_cast<std::size_t>(ReadLE(bytes, 12, 8));
  layout.header = Json::parse(bytes.substr(Preamble, headerLength));
  layout.dataStart = (Preamble + headerLength + 63) / 64 * 64;
  layout.data = bytes.substr(layout.dataStart, bytes.size() - Trailer - layout.dataStart);
  return layout;
}

/** A file with this header text and data section, built by the documented rules. */
std::string
ComposeText(const std::string & text, const std::string & data, uint32_t version = 1)
{
  std::string bytes(Magic, 8);
  bytes.resize(Preamble);
  WriteLE(bytes, 8, version, 4);
  WriteLE(bytes, 12, text.size(), 8);
  bytes += text;
  bytes.resize((bytes.size() + 63) / 64 * 64, '\0');
  bytes += data;
  bytes.resize(bytes.size() + 4);
  bytes.append(Magic, 8);
  return Resealed(bytes);
}

std::string
Compose(const Json & header, const std::string & data)
{
  return ComposeText(header.dump(), data);
}

std::string
ReadBytes(const std::string & path)
{
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void
WriteBytes(const std::string & path, const std::string & bytes)
{
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string
SmallMUnetFile()
{
  torch::manual_seed(21);
  diva::MUnet network(diva::MUnetOptions::Preset("small"));
  return diva::SaveModelToBytes(*network, ExampleDescription());
}

/** LoadModelFromBytes must fail with a std::runtime_error naming the source and containing fragment. */
void
ExpectBytesError(const std::string & bytes, const std::string & fragment, const std::string & what = "")
{
  const std::string source = "edited-" + std::to_string(bytes.size()) + ".pt";
  try
  {
    diva::LoadModelFromBytes(bytes, source);
    ADD_FAILURE() << "no error for " << what;
  }
  catch (const std::runtime_error & error)
  {
    const std::string message = error.what();
    EXPECT_NE(message.find("model file '" + source + "'"), std::string::npos) << what << ": " << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << what << ": " << message;
  }
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

// ---- Round trips ----

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
  EXPECT_FALSE(loaded.network->is_training());
  const auto loadedParameters = loaded.network->named_parameters();
  for (const auto & item : network.named_parameters())
  {
    const auto * other = loadedParameters.find(item.key());
    ASSERT_NE(other, nullptr) << item.key();
    EXPECT_EQ(other->scalar_type(), torch::kFloat32) << item.key();
    EXPECT_TRUE(torch::equal(*other, item.value())) << item.key();
  }
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

// ESPNet3D has batch norms: running statistics (float buffers) and num_batches_tracked (an int64 buffer), here set to
// a value that neither float32 nor float64 can hold, so it must be stored as an integer.
TEST_F(ModelFile, ESPNet3DSaveLoadIsBitIdenticalWithItsIntegerBuffers)
{
  torch::manual_seed(16);
  diva::ESPNet3D network(diva::ESPNet3DOptions::Preset("small").in_channels(2));
  network->train();
  {
    torch::NoGradGuard noGrad;
    network->Segment(torch::randn({ 2, 2, 32, 32, 32 })); // moves the running statistics away from 0 and 1
  }
  const int64_t odd = (int64_t{ 1 } << 53) + 1;
  int           counters = 0;
  for (auto & item : network->named_buffers())
  {
    if (item.key().find("num_batches_tracked") != std::string::npos)
    {
      item.value().fill_(odd + counters++);
    }
  }
  ASSERT_GT(counters, 0);
  ExpectBitIdenticalAfterReload(*network, PathOf("espnet.pt"));
  const auto loaded = diva::LoadModel(PathOf("espnet.pt"));
  const auto loadedBuffers = loaded.network->named_buffers();
  for (const auto & item : network->named_buffers())
  {
    const auto * other = loadedBuffers.find(item.key());
    ASSERT_NE(other, nullptr) << item.key();
    EXPECT_EQ(other->scalar_type(), item.value().scalar_type()) << item.key();
    EXPECT_TRUE(torch::equal(*other, item.value())) << item.key();
  }
}

TEST_F(ModelFile, DescriptionRoundTrips)
{
  diva::MUnet network(diva::MUnetOptions::Preset("small"));
  diva::SaveModel(PathOf("m.pt"), *network, ExampleDescription());
  const auto d = diva::LoadModel(PathOf("m.pt")).description;
  const auto e = ExampleDescription();
  EXPECT_EQ(d.preset, e.preset);
  EXPECT_EQ(d.role, e.role);
  EXPECT_EQ(d.inputChannels, e.inputChannels);
  EXPECT_EQ(d.preprocessing.clipMinimum, e.preprocessing.clipMinimum);
  EXPECT_EQ(d.preprocessing.clipMaximum, e.preprocessing.clipMaximum);
  EXPECT_EQ(d.preprocessing.normalization, e.preprocessing.normalization);
  EXPECT_EQ(d.preprocessing.mean, e.preprocessing.mean); // exact: JSON numbers are written to round-trip
  EXPECT_EQ(d.preprocessing.standardDeviation, e.preprocessing.standardDeviation);
  EXPECT_EQ(d.preprocessing.targetSpacing, e.preprocessing.targetSpacing);
  EXPECT_EQ(d.preprocessing.patchSize, e.preprocessing.patchSize);
  EXPECT_EQ(d.preprocessing.clickEncoding, e.preprocessing.clickEncoding);
  EXPECT_EQ(d.provenance.version, e.provenance.version);
  EXPECT_EQ(d.provenance.trainingCommand, e.provenance.trainingCommand);
  EXPECT_EQ(d.provenance.data, e.provenance.data);
  EXPECT_EQ(d.provenance.date, e.provenance.date);

  auto infinite = ExampleDescription();
  infinite.preprocessing.clipMaximum = std::numeric_limits<double>::infinity();
  EXPECT_THROW(diva::SaveModelToBytes(*network, infinite), std::invalid_argument);
  auto threeChannels = ExampleDescription();
  threeChannels.inputChannels.push_back("extra");
  EXPECT_THROW(diva::SaveModelToBytes(*network, threeChannels), std::invalid_argument);
}

TEST_F(ModelFile, RoleRoundTripsAndADescriptionWithoutRoleLoadsAsUnknown)
{
  diva::MUnet network(diva::MUnetOptions::Preset("small"));
  auto        description = ExampleDescription();
  description.role = "refine";
  diva::SaveModel(PathOf("refine.pt"), *network, description);
  EXPECT_EQ(diva::LoadModel(PathOf("refine.pt")).description.role, "refine");

  auto layout = Parse(ReadBytes(PathOf("refine.pt")));
  ASSERT_EQ(layout.header["description"].erase("role"), 1U);
  EXPECT_EQ(diva::LoadModelFromBytes(Compose(layout.header, layout.data), "old.pt").description.role, "unknown");
}

TEST_F(ModelFile, CropRecordRoundTripsAndAFileWithoutItLoadsTheEarlierValues)
{
  // Stage 2's crop (margin factor, minimum side) is recorded at training and read by the pipeline; files written
  // before the record existed were all trained with 1.5 and 48 mm.
  diva::MUnet network(diva::MUnetOptions::Preset("small"));
  auto        description = ExampleDescription();
  description.preprocessing.cropMargin = 2.25;
  description.preprocessing.cropMinimumSide = 30.5;
  diva::SaveModel(PathOf("crop.pt"), *network, description);
  const auto loaded = diva::LoadModel(PathOf("crop.pt")).description.preprocessing;
  EXPECT_EQ(loaded.cropMargin, 2.25);
  EXPECT_EQ(loaded.cropMinimumSide, 30.5);

  auto layout = Parse(ReadBytes(PathOf("crop.pt")));
  ASSERT_EQ(layout.header["description"]["preprocessing"].erase("crop_margin"), 1U);
  ASSERT_EQ(layout.header["description"]["preprocessing"].erase("crop_minimum_side"), 1U);
  const auto old = diva::LoadModelFromBytes(Compose(layout.header, layout.data), "old.pt").description.preprocessing;
  EXPECT_EQ(old.cropMargin, 1.5);
  EXPECT_EQ(old.cropMinimumSide, 48.0);

  layout.header["description"]["preprocessing"]["crop_margin"] = "wide";
  ExpectBytesError(Compose(layout.header, layout.data), "crop_margin' is not a number", "crop margin as text");
}

TEST_F(ModelFile, WindowPlacementIsRecordedForStage1AndAFileWithoutItWasTrainedInsideTheImage)
{
  // Where stage 1's training windows lay at the CT's border is read by CoarseSegmentationFilter at inference.
  diva::MUnet network(diva::MUnetOptions::Preset("small"));
  auto        description = ExampleDescription(); // role "coarse"
  description.preprocessing.windowPlacement = "centred-on-click";
  diva::SaveModel(PathOf("centred.pt"), *network, description);
  EXPECT_EQ(diva::LoadModel(PathOf("centred.pt")).description.preprocessing.windowPlacement, "centred-on-click");
  auto layout = Parse(ReadBytes(PathOf("centred.pt")));
  EXPECT_EQ(layout.header["description"]["preprocessing"]["window_placement"], "centred-on-click");

  // Files written before the record: inside the image, as every stage 1 was trained then.
  ASSERT_EQ(layout.header["description"]["preprocessing"].erase("window_placement"), 1U);
  EXPECT_EQ(
    diva::LoadModelFromBytes(Compose(layout.header, layout.data), "old.pt").description.preprocessing.windowPlacement,
    "inside-image");
  layout.header["description"]["preprocessing"]["window_placement"] = "centered";
  ExpectBytesError(Compose(layout.header, layout.data), "window_placement' is \"centered\"", "unknown placement");

  // Stage 2 has no stage-1 window: its files do not carry the key.
  description.role = "refine";
  description.preprocessing.windowPlacement = "inside-image";
  diva::SaveModel(PathOf("refine-placement.pt"), *network, description);
  EXPECT_FALSE(Parse(ReadBytes(PathOf("refine-placement.pt")))
                 .header["description"]["preprocessing"]
                 .contains("window_placement"));

  description.preprocessing.windowPlacement = "middle";
  EXPECT_THROW(diva::SaveModel(PathOf("bad-placement.pt"), *network, description), std::invalid_argument);
}

// ---- The layout on disk is the documented one ----

TEST_F(ModelFile, LayoutIsTheDocumentedOne)
{
  torch::manual_seed(22);
  diva::MUnet network(diva::MUnetOptions::Preset("small"));
  const auto  bytes = diva::SaveModelToBytes(*network, ExampleDescription());
  ASSERT_GT(bytes.size(), Preamble + Trailer);
  EXPECT_EQ(std::string(bytes.data(), 8), std::string("DIVAMDL\0", 8));
  EXPECT_EQ(ReadLE(bytes, 8, 4), 1U);
  EXPECT_EQ(bytes.compare(bytes.size() - 8, 8, Magic, 8), 0);
  EXPECT_EQ(ReadLE(bytes, bytes.size() - Trailer, 4), BitwiseCrc32(bytes, bytes.size() - Trailer));
  EXPECT_EQ(BitwiseCrc32("123456789", 9), 0xCBF43926u); // the CRC-32 check value (zlib.crc32)

  const auto layout = Parse(bytes);
  EXPECT_EQ(layout.dataStart % 64, 0U);
  for (std::size_t i = Preamble + ReadLE(bytes, 12, 8); i < layout.dataStart; ++i)
  {
    EXPECT_EQ(bytes[i], '\0') << "padding byte " << i;
  }
  const auto & header = layout.header;
  EXPECT_EQ(header.at("format"), "divattention-model");
  EXPECT_EQ(header.at("format_version"), 1);
  EXPECT_EQ(header.at("byte_order"), "little-endian");
  EXPECT_EQ(header.at("architecture").get<diva::Settings>(), network->GetSettings());
  EXPECT_EQ(header.at("description").at("input_channels"), Json({ "CT (HU)", "click map" }));
  EXPECT_EQ(header.at("description").at("preprocessing").at("patch_size"), Json({ 32, 48, 64 }));

  // The table lists every parameter and buffer once, float32, aligned, and its bytes are the tensor's own.
  const auto parameters = network->named_parameters();
  const auto buffers = network->named_buffers();
  ASSERT_EQ(header.at("tensors").size(), parameters.size() + buffers.size());
  std::size_t end = 0;
  for (const auto & entry : header.at("tensors"))
  {
    const auto   name = entry.at("name").get<std::string>();
    const auto * tensor = parameters.contains(name) ? parameters.find(name) : buffers.find(name);
    ASSERT_NE(tensor, nullptr) << name;
    EXPECT_EQ(entry.at("dtype"), "float32") << name;
    EXPECT_EQ(entry.at("shape").get<std::vector<int64_t>>(), tensor->sizes().vec()) << name;
    const auto offset = entry.at("offset").get<std::size_t>();
    const auto length = entry.at("length").get<std::size_t>();
    EXPECT_EQ(offset % 64, 0U) << name;
    EXPECT_GE(offset, end) << name << " overlaps the previous tensor";
    ASSERT_EQ(length, std::size_t(tensor->numel()) * 4) << name;
    ASSERT_LE(offset + length, layout.data.size()) << name;
    EXPECT_EQ(std::memcmp(layout.data.data() + offset, tensor->contiguous().data_ptr(), length), 0) << name;
    end = offset + length;
  }
  EXPECT_EQ(end, layout.data.size());

  // Composing the same header and data by the documented rules gives the same file, byte for byte.
  EXPECT_EQ(Compose(layout.header, layout.data), bytes);
}

// ---- float16 storage ----

// float16 keeps 11 significant bits: each stored weight w becomes the nearest float16 (round to nearest even), so
// |w16 - w| <= 2^-11 |w| for |w| >= 2^-14 (float16's smallest normal number) and <= 2^-25 below it. Here the loaded
// weights are checked to be exactly float32(float16(w)), and the network's logits on a random input to stay within
// 1% of their own range of the float32 model's: the relative weight errors (<= 4.9e-4) add up over the network's
// layers, to about 0.1% measured for this UNETR (the margin covers other seeds and BLAS paths).
TEST_F(ModelFile, Float16StorageHalvesTheFileWithinItsPrecision)
{
  torch::manual_seed(23);
  auto options = diva::UNETROptions::Preset("small").image_size(32).in_channels(2);
  options.div_attention().enabled(true);
  diva::UNETR network(options);
  network->eval();
  diva::ModelSaveOptions half;
  half.float16 = true;
  diva::SaveModel(PathOf("f32.pt"), *network, ExampleDescription());
  diva::SaveModel(PathOf("f16.pt"), *network, ExampleDescription(), half);
  const auto f32Size = double(fs::file_size(PathOf("f32.pt")));
  const auto f16Size = double(fs::file_size(PathOf("f16.pt")));
  RecordProperty("f32_bytes", std::to_string(int64_t(f32Size)));
  RecordProperty("f16_bytes", std::to_string(int64_t(f16Size)));
  EXPECT_LT(f16Size, 0.52 * f32Size);
  EXPECT_GT(f16Size, 0.48 * f32Size);
  const auto f16Layout = Parse(ReadBytes(PathOf("f16.pt")));
  EXPECT_FALSE(f16Layout.header.at("tensors").empty());
  for (const auto & entry : f16Layout.header.at("tensors"))
  {
    EXPECT_EQ(entry.at("dtype"), "float16") << entry.at("name");
  }

  const auto loaded = diva::LoadModel(PathOf("f16.pt"));
  const auto loadedParameters = loaded.network->named_parameters();
  for (const auto & item : network->named_parameters())
  {
    const auto & w = item.value();
    const auto & w16 = loadedParameters[item.key()];
    ASSERT_EQ(w16.scalar_type(), torch::kFloat32) << item.key();
    EXPECT_TRUE(torch::equal(w16, w.to(torch::kFloat16).to(torch::kFloat32))) << item.key();
    const auto bound = w.abs() * std::ldexp(1.0, -11) + std::ldexp(1.0, -25);
    EXPECT_TRUE((w16 - w).abs().le(bound).all().item<bool>()) << item.key();
  }
  torch::manual_seed(24);
  const auto         image = torch::randn({ 1, 2, 32, 32, 32 });
  torch::NoGradGuard noGrad;
  const auto         reference = network->Segment(image).logits;
  const auto         approximate = loaded.network->Segment(image).logits;
  const double       range = (reference.max() - reference.min()).item<double>();
  const double       error = (approximate - reference).abs().max().item<double>();
  RecordProperty("f16_max_logit_error_over_range", std::to_string(error / range));
  EXPECT_GT(range, 0.0);
  EXPECT_LE(error, 0.01 * range);
  EXPECT_GT(error, 0.0); // float16 did change the weights: this is not the float32 path
}

TEST_F(ModelFile, Float16KeepsIntegerBuffersExactAndOutOfRangeTensorsInFloat32)
{
  torch::manual_seed(25);
  diva::ESPNet3D network(diva::ESPNet3DOptions::Preset("small").in_channels(2));
  const int64_t  odd = (int64_t{ 1 } << 53) + 1;
  std::string    bigName;
  {
    torch::NoGradGuard noGrad;
    for (auto & item : network->named_buffers())
    {
      if (item.key().find("num_batches_tracked") != std::string::npos)
      {
        item.value().fill_(odd);
      }
    }
    const auto parameters = network->named_parameters();
    bigName = parameters.begin()->key();
    parameters.begin()->value().view(-1)[0] = 1.0e6; // beyond float16's 65504: this tensor must stay float32
  }
  diva::ModelSaveOptions half;
  half.float16 = true;
  const auto bytes = diva::SaveModelToBytes(*network, ExampleDescription(), half);
  int        float16 = 0;
  const auto layout = Parse(bytes);
  for (const auto & entry : layout.header.at("tensors"))
  {
    const auto name = entry.at("name").get<std::string>();
    if (name == bigName)
    {
      EXPECT_EQ(entry.at("dtype"), "float32");
    }
    else if (name.find("num_batches_tracked") != std::string::npos)
    {
      EXPECT_EQ(entry.at("dtype"), "int64") << name;
    }
    else
    {
      EXPECT_EQ(entry.at("dtype"), "float16") << name;
      ++float16;
    }
  }
  EXPECT_GT(float16, 10);
  const auto loaded = diva::LoadModelFromBytes(bytes, "half.pt");
  EXPECT_TRUE(
    torch::equal(*loaded.network->named_parameters().find(bigName), *network->named_parameters().find(bigName)));
  for (const auto & item : loaded.network->named_buffers())
  {
    if (item.key().find("num_batches_tracked") != std::string::npos)
    {
      EXPECT_EQ(item.value().scalar_type(), torch::kInt64);
      EXPECT_EQ(item.value().item<int64_t>(), odd) << item.key();
    }
  }
}

// ---- Damaged, foreign and inconsistent files ----

TEST_F(ModelFile, MissingEmptyAndForeignFilesGiveClearErrors)
{
  ExpectLoadError(PathOf("absent.pt"), "cannot be opened");
  ExpectLoadError(m_Directory.string(), "is a directory");
  WriteBytes(PathOf("empty.pt"), "");
  ExpectLoadError(PathOf("empty.pt"), "empty");
  std::ofstream(PathOf("text.pt")) << "not a model\n";
  ExpectLoadError(PathOf("text.pt"), "not a DivAttention model file");
  // What torch.save writes (a zip) and what torch.jit.pickle_save writes are not model files any more.
  WriteBytes(PathOf("zip.pt"), std::string("PK\x03\x04", 4) + std::string(100, 'x'));
  ExpectLoadError(PathOf("zip.pt"), "not a DivAttention model file");
  WriteBytes(PathOf("pickle.pt"), std::string("\x80\x02}q\x00.", 6));
  ExpectLoadError(PathOf("pickle.pt"), "not a DivAttention model file");

  auto bytes = SmallMUnetFile();
  bytes[6] = 'X'; // a near miss of the magic
  ExpectBytesError(bytes, "not a DivAttention model file", "wrong magic");
}

TEST_F(ModelFile, TruncatedFilesAreDetectedAtEveryKindOfCut)
{
  const auto bytes = SmallMUnetFile();
  const auto headerEnd = Preamble + ReadLE(bytes, 12, 8);
  const auto dataStart = Parse(bytes).dataStart;
  for (const std::size_t cut :
       { std::size_t{ 0 }, std::size_t{ 1 }, std::size_t{ 7 }, std::size_t{ 8 }, std::size_t{ 12 }, std::size_t{ 19 },
         std::size_t{ 20 }, std::size_t{ 31 }, Preamble + 10, headerEnd - 1, headerEnd, dataStart, dataStart + 1,
         bytes.size() / 2, bytes.size() - 13, bytes.size() - 12, bytes.size() - 8, bytes.size() - 1 })
  {
    ExpectBytesError(bytes.substr(0, cut), "truncated",
                     "cut at " + std::to_string(cut) + " of " + std::to_string(bytes.size()));
  }
  WriteBytes(PathOf("truncated.pt"), bytes.substr(0, bytes.size() / 2));
  ExpectLoadError(PathOf("truncated.pt"), "corrupt or truncated");
  ExpectBytesError(bytes + std::string(1, '\0'), "corrupt", "one byte appended");
  ExpectBytesError(bytes + bytes, "checksum mismatch", "the file twice");
}

TEST_F(ModelFile, AFlippedBitAnywhereIsAChecksumError)
{
  const auto bytes = SmallMUnetFile();
  const auto dataStart = Parse(bytes).dataStart;
  for (const std::size_t at : { std::size_t{ 14 }, Preamble + 3, dataStart, dataStart + 1000, bytes.size() / 2,
                                bytes.size() - 13, bytes.size() - 12 })
  {
    auto damaged = bytes;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x10);
    ExpectBytesError(damaged, "checksum mismatch", "bit flipped at " + std::to_string(at));
  }
  // The same flip with the checksum recomputed loads: the checksum is what caught it.
  auto damaged = bytes;
  damaged[bytes.size() / 2] = static_cast<char>(damaged[bytes.size() / 2] ^ 0x10);
  EXPECT_NO_THROW(diva::LoadModelFromBytes(Resealed(damaged), "resealed.pt"));
}

TEST_F(ModelFile, NewerAndInvalidVersionsAreRefusedClearly)
{
  auto bytes = SmallMUnetFile();
  WriteLE(bytes, 8, 2, 4); // checked before the checksum: a newer format may end differently
  ExpectBytesError(bytes, "format version 2 is newer than this program reads (1)");
  WriteLE(bytes, 8, 0, 4);
  ExpectBytesError(bytes, "format version 0");
  // The header's copy of the version must agree with the frame's.
  auto layout = Parse(SmallMUnetFile());
  layout.header["format_version"] = 7;
  ExpectBytesError(Compose(layout.header, layout.data), "format_version");
}

TEST_F(ModelFile, BadHeadersAreRejectedWithoutAllocating)
{
  const auto bytes = SmallMUnetFile();
  const auto original = Parse(bytes);

  // Frame: a header length beyond the file, or absurdly large (checksums recomputed: the loader must not trust it).
  for (const uint64_t length : { uint64_t(bytes.size()), uint64_t{ 1 } << 40, ~uint64_t{ 0 } })
  {
    auto edited = bytes;
    WriteLE(edited, 12, length, 8);
    ExpectBytesError(Resealed(edited), "header length", "header length " + std::to_string(length));
  }
  {
    // Non-zero padding between the header and the data (a header text whose end is not 64-byte aligned).
    auto text = original.header.dump();
    if ((Preamble + text.size()) % 64 == 0)
    {
      text += ' ';
    }
    auto edited = ComposeText(text, original.data);
    edited[Preamble + text.size()] = 'x';
    ExpectBytesError(Resealed(edited), "padding");
  }

  // Header text: not JSON, cut short, not UTF-8, not an object, nested without end.
  ExpectBytesError(ComposeText("not json", original.data), "not valid JSON");
  ExpectBytesError(ComposeText(original.header.dump().substr(0, 100), original.data), "not valid JSON");
  ExpectBytesError(ComposeText("{\"format\": \"\xff\"}", original.data), "not valid JSON");
  ExpectBytesError(ComposeText("", original.data), "not valid JSON");
  ExpectBytesError(Compose(Json::parse("[1, 2]"), original.data), "not a JSON object");
  ExpectBytesError(ComposeText(std::string(100000, '['), original.data), "nested deeper");
  ExpectBytesError(ComposeText("{\"format\": \"divattention-model\"}", original.data), "'format_version' is missing");

  auto expectEdit = [&](const std::string & what, const std::string & fragment, auto && edit)
  {
    auto layout = original;
    edit(layout.header);
    ExpectBytesError(Compose(layout.header, layout.data), fragment, what);
  };
  expectEdit("foreign format", "not a DivAttention model file", [](Json & h) { h["format"] = "other"; });
  expectEdit("no tensors", "'tensors' is missing", [](Json & h) { h.erase("tensors"); });
  expectEdit("byte order", "byte_order", [](Json & h) { h["byte_order"] = "big-endian"; });
  expectEdit("unknown dtype", "unknown dtype 'complex64'", [](Json & h) { h["tensors"][0]["dtype"] = "complex64"; });
  expectEdit("negative extent", "not a non-negative integer", [](Json & h) { h["tensors"][0]["shape"][0] = -8; });
  expectEdit("fractional extent", "not a non-negative integer", [](Json & h) { h["tensors"][0]["shape"][0] = 1.5; });
  expectEdit("text extent", "not a non-negative integer", [](Json & h) { h["tensors"][0]["shape"][0] = "8"; });
  expectEdit("rank 9", "dimensions", [](Json & h) { h["tensors"][0]["shape"] = Json(std::vector<int>(9, 1)); });
  // Huge shapes: more elements than the file has bytes for (the overflowing product and one that fits in 64 bits),
  // a consistent length that points past the data, and an empty tensor with an absurd other extent. A loader that
  // trusted them would try to allocate terabytes (and fail differently, or not at all).
  expectEdit("2^40 x 2^40", "more elements than",
             [](Json & h) {
               h["tensors"][0]["shape"] = { 1ULL << 40, 1ULL << 40 };
             });
  expectEdit("2^36 x 16", "more elements than",
             [](Json & h)
             {
               h["tensors"][0]["shape"] = { 1ULL << 36, 16 };
               h["tensors"][0]["length"] = (1ULL << 40) * 4;
             });
  expectEdit("0 x 2^62", "more elements than", [](Json & h) { h["tensors"][0]["shape"] = { 0, 1ULL << 62 }; });
  expectEdit("length beyond data", "beyond the end",
             [&](Json & h)
             {
               const auto length = h["tensors"][0]["length"].get<uint64_t>();
               h["tensors"][0]["offset"] = original.data.size() - length + 64;
             });
  expectEdit("offset 2^64-1", "beyond the end", [](Json & h) { h["tensors"][0]["offset"] = ~uint64_t{ 0 }; });
  expectEdit("length not the shape's", "the table says",
             [](Json & h) { h["tensors"][0]["length"] = h["tensors"][0]["length"].get<uint64_t>() + 4; });
  expectEdit("description", "'description.preprocessing.mean' is not a number",
             [](Json & h) { h["description"]["preprocessing"]["mean"] = "zero"; });
  expectEdit("patch size", "patch_size", [](Json & h) { h["description"]["preprocessing"]["patch_size"] = { 1, 2 }; });
  expectEdit("architecture value", "'architecture.in_channels' is not text",
             [](Json & h) { h["architecture"]["in_channels"] = 2; });
  expectEdit("channels", "input channels", [](Json & h) { h["description"]["input_channels"].push_back("third"); });
}

TEST_F(ModelFile, WrongArchitectureOrWeightsGiveClearErrors)
{
  const auto original = Parse(SmallMUnetFile());
  auto       expectEdit = [&](const std::string & what, const std::string & fragment, auto && edit)
  {
    auto layout = original;
    edit(layout.header);
    ExpectBytesError(Compose(layout.header, layout.data), fragment, what);
  };
  expectEdit("unknown architecture", "unknown architecture 'ResNet'",
             [](Json & h) { h["architecture"]["architecture"] = "ResNet"; });
  expectEdit("missing setting", "'base_features' is missing",
             [](Json & h) { h["architecture"].erase("base_features"); });
  expectEdit("another width", "has shape", [](Json & h) { h["architecture"]["base_features"] = "24"; });
  expectEdit("missing tensor", "1 missing", [](Json & h) { h["tensors"].erase(h["tensors"].size() - 1); });
  expectEdit("extra tensor", "1 unexpected",
             [](Json & h)
             {
               auto extra = h["tensors"][0];
               extra["name"] = "extra.weight";
               h["tensors"].push_back(extra);
             });
  expectEdit("duplicate tensor", "listed twice", [](Json & h) { h["tensors"].push_back(h["tensors"][0]); });
  expectEdit("transposed shape", "has shape",
             [](Json & h)
             {
               for (auto & entry : h["tensors"])
               {
                 auto & shape = entry["shape"];
                 if (shape.size() >= 2 && shape.front() != shape.back())
                 {
                   std::reverse(shape.begin(), shape.end()); // the same element count, another shape
                   return;
                 }
               }
               ADD_FAILURE() << "no tensor to transpose";
             });
  expectEdit("integers for floats", "is stored as", [](Json & h) { h["tensors"][0]["dtype"] = "int32"; });
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

TEST_F(ModelFile, SaveIsAtomicAndReportsUnwritablePaths)
{
  diva::MUnet network(diva::MUnetOptions::Preset("small"));
  EXPECT_THROW(diva::SaveModel(PathOf("no-such-directory/m.pt"), *network, ExampleDescription()), std::runtime_error);
  WriteBytes(PathOf("m.pt"), "old");
  diva::SaveModel(PathOf("m.pt"), *network, ExampleDescription());
  EXPECT_EQ(ReadBytes(PathOf("m.pt")), diva::SaveModelToBytes(*network, ExampleDescription()));
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto & entry : fs::directory_iterator(m_Directory))
  {
    ++entries;
  }
  EXPECT_EQ(entries, 1U); // no temporary left behind
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
