#include "divaModelFile.h"

#include "divaAtomicFile.h"
#include "divaESPNet3D.h"
#include "divaMUnet.h"
#include "divaUNETR.h"
#include "divaWeightInitialization.h"

#include <nlohmann/json.hpp>
#if defined(DIVATTENTION_HAVE_LIBDEFLATE)
#  include <libdeflate.h>
#endif
#include <torch/nn/module.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string_view>

#if defined(__unix__) || defined(__APPLE__)
#  include <fcntl.h>
#  include <sys/mman.h>
#  include <sys/stat.h>
#  include <unistd.h>
#  define DIVA_MODEL_FILE_MMAP 1
#endif

// The model file (Documentation/Method.md, "The model file"): magic, version, a JSON header with a tensor table, the
// raw tensor bytes, then a CRC-32 and the magic again. Integers in the frame are written byte by byte (little-endian
// on any host); tensor bytes are copied from memory as they are, so the host must be little-endian.
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "DivAttention model files hold little-endian tensor data; a big-endian host needs a byte swap in "
              "divaModelFile.cxx");
#elif !defined(_MSC_VER) // every MSVC target is little-endian
#  error "divaModelFile.cxx: cannot tell this compiler's byte order (model files hold little-endian tensor data)"
#endif

namespace diva
{
namespace
{
constexpr const char * FormatName = "divattention-model";
constexpr uint32_t     FormatVersion = 1;
constexpr char         Magic[8] = { 'D', 'I', 'V', 'A', 'M', 'D', 'L', '\0' };
constexpr std::size_t  MagicSize = sizeof(Magic);
constexpr std::size_t  PreambleSize = MagicSize + 4 + 8; // magic, version (uint32), header length (uint64)
constexpr std::size_t  TrailerSize = 4 + MagicSize;      // CRC-32 (uint32), magic
constexpr std::size_t  DataAlignment = 64;
constexpr uint64_t     MaxHeaderSize = uint64_t{ 16 } << 20;
constexpr int          MaxHeaderDepth = 16;
constexpr std::size_t  MaxRank = 8;

// ---------------------------------------------------------------------------------------------------------------
// Bytes

#if !defined(DIVATTENTION_HAVE_LIBDEFLATE)
/** CRC-32 as zlib and Python's zlib.crc32 compute it (reflected polynomial 0xEDB88320), 8 bytes per step. */
class Crc32Tables
{
public:
  Crc32Tables()
  {
    for (uint32_t i = 0; i < 256; ++i)
    {
      uint32_t crc = i;
      for (int bit = 0; bit < 8; ++bit)
      {
        crc = (crc >> 1) ^ ((crc & 1u) ? 0xEDB88320u : 0u);
      }
      m_Table[0][i] = crc;
    }
    for (std::size_t k = 1; k < 8; ++k)
    {
      for (std::size_t i = 0; i < 256; ++i)
      {
        m_Table[k][i] = (m_Table[k - 1][i] >> 8) ^ m_Table[0][m_Table[k - 1][i] & 0xFFu];
      }
    }
  }

  uint32_t
  Compute(const char * data, std::size_t size) const
  {
    const auto * p = reinterpret_cast<const unsigned char *>(data);
    uint32_t     crc = 0xFFFFFFFFu;
    for (; size >= 8; size -= 8, p += 8)
    {
      const uint32_t low =
        crc ^ (uint32_t{ p[0] } | uint32_t{ p[1] } << 8 | uint32_t{ p[2] } << 16 | uint32_t{ p[3] } << 24);
      const uint32_t high = uint32_t{ p[4] } | uint32_t{ p[5] } << 8 | uint32_t{ p[6] } << 16 | uint32_t{ p[7] } << 24;
      crc = m_Table[7][low & 0xFFu] ^ m_Table[6][(low >> 8) & 0xFFu] ^ m_Table[5][(low >> 16) & 0xFFu] ^
            m_Table[4][low >> 24] ^ m_Table[3][high & 0xFFu] ^ m_Table[2][(high >> 8) & 0xFFu] ^
            m_Table[1][(high >> 16) & 0xFFu] ^ m_Table[0][high >> 24];
    }
    for (; size > 0; --size, ++p)
    {
      crc = (crc >> 8) ^ m_Table[0][(crc ^ *p) & 0xFFu];
    }
    return crc ^ 0xFFFFFFFFu;
  }

private:
  std::array<std::array<uint32_t, 256>, 8> m_Table{};
};
#endif

uint32_t
Crc32(const char * data, std::size_t size)
{
#if defined(DIVATTENTION_HAVE_LIBDEFLATE)
  return libdeflate_crc32(0, data, size); // the same CRC (zlib's), carry-less multiplication where the CPU has it
#else
  static const Crc32Tables tables;
  return tables.Compute(data, size);
#endif
}

void
AppendLittleEndian(std::string & out, uint64_t value, int bytes)
{
  for (int i = 0; i < bytes; ++i)
  {
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
  }
}

uint64_t
ReadLittleEndian(std::string_view bytes, std::size_t at, int count)
{
  uint64_t value = 0;
  for (int i = count - 1; i >= 0; --i)
  {
    value = (value << 8) | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(i)]);
  }
  return value;
}

std::size_t
AlignUp(std::size_t value)
{
  return (value + DataAlignment - 1) / DataAlignment * DataAlignment;
}

std::string
Hex(uint32_t value)
{
  char text[16];
  std::snprintf(text, sizeof(text), "0x%08x", static_cast<unsigned>(value));
  return text;
}

// ---------------------------------------------------------------------------------------------------------------
// Element types on disk

struct StoredType
{
  const char *    name;
  c10::ScalarType type;
  std::size_t     size;
};

constexpr StoredType StoredTypes[] = {
  { "float32", c10::ScalarType::Float, 4 }, { "float16", c10::ScalarType::Half, 2 },
  { "int64", c10::ScalarType::Long, 8 },    { "int32", c10::ScalarType::Int, 4 },
  { "int16", c10::ScalarType::Short, 2 },   { "int8", c10::ScalarType::Char, 1 },
  { "uint8", c10::ScalarType::Byte, 1 },
};

const StoredType *
StoredTypeNamed(const std::string & name)
{
  for (const auto & stored : StoredTypes)
  {
    if (name == stored.name)
    {
      return &stored;
    }
  }
  return nullptr;
}

const StoredType *
StoredTypeOf(c10::ScalarType type)
{
  for (const auto & stored : StoredTypes)
  {
    if (type == stored.type)
    {
      return &stored;
    }
  }
  return nullptr;
}

std::string
StoredTypeList()
{
  std::string list;
  for (const auto & stored : StoredTypes)
  {
    list += (list.empty() ? "" : ", ") + std::string(stored.name);
  }
  return list;
}

// ---------------------------------------------------------------------------------------------------------------
// Tensors of a network

std::vector<std::pair<std::string, torch::Tensor>>
NamedTensors(const torch::nn::Module & network)
{
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto & item : network.named_parameters())
  {
    tensors.emplace_back(item.key(), item.value());
  }
  for (const auto & item : network.named_buffers())
  {
    tensors.emplace_back(item.key(), item.value());
  }
  return tensors;
}

/** Whether every finite value of a floating tensor survives float16 without becoming infinite. */
bool
FitsFloat16(const torch::Tensor & tensor)
{
  if (tensor.numel() == 0)
  {
    return true;
  }
  return tensor.abs().nan_to_num(0.0, 0.0, 0.0).max().item<double>() <= 65504.0;
}

const char *
KindOf(c10::ScalarType type)
{
  if (c10::isFloatingType(type))
  {
    return "floating-point";
  }
  if (type == c10::ScalarType::Bool)
  {
    return "bool";
  }
  return c10::isIntegralType(type, /*includeBool=*/false) ? "integer" : "other";
}

// ---------------------------------------------------------------------------------------------------------------
// The header

using Json = nlohmann::json;

nlohmann::ordered_json
DescriptionToJson(const ModelDescription & d)
{
  const auto &           p = d.preprocessing;
  nlohmann::ordered_json preprocessing;
  preprocessing["clip_minimum"] = p.clipMinimum;
  preprocessing["clip_maximum"] = p.clipMaximum;
  preprocessing["normalization"] = p.normalization;
  preprocessing["mean"] = p.mean;
  preprocessing["standard_deviation"] = p.standardDeviation;
  preprocessing["target_spacing"] = p.targetSpacing;
  preprocessing["patch_size"] = p.patchSize;
  preprocessing["click_encoding"] = p.clickEncoding;
  preprocessing["crop_margin"] = p.cropMargin;
  preprocessing["crop_minimum_side"] = p.cropMinimumSide;
  if (d.role == "coarse")
  {
    preprocessing["window_placement"] = p.windowPlacement;
  }
  nlohmann::ordered_json provenance;
  provenance["version"] = d.provenance.version;
  provenance["training_command"] = d.provenance.trainingCommand;
  provenance["data"] = d.provenance.data;
  provenance["date"] = d.provenance.date;
  nlohmann::ordered_json description;
  description["preset"] = d.preset;
  description["role"] = d.role;
  description["input_channels"] = d.inputChannels;
  description["preprocessing"] = preprocessing;
  description["provenance"] = provenance;
  return description;
}

/** Typed access to the parsed header; every problem is a std::runtime_error naming the key's path. (Pointers, not
 * references, are returned: GCC 13's -Wdangling-reference cannot tell that they point into `object`.) */
const Json *
Member(const Json & object, const std::string & key, const std::string & path)
{
  const auto found = object.find(key);
  if (found == object.end())
  {
    throw std::runtime_error("header: '" + path + key + "' is missing");
  }
  return &*found;
}

std::string
Text(const Json & object, const std::string & key, const std::string & path)
{
  const auto & value = *Member(object, key, path);
  if (!value.is_string())
  {
    throw std::runtime_error("header: '" + path + key + "' is not text");
  }
  return value.get<std::string>();
}

double
Real(const Json & object, const std::string & key, const std::string & path)
{
  const auto & value = *Member(object, key, path);
  if (!value.is_number())
  {
    throw std::runtime_error("header: '" + path + key + "' is not a number");
  }
  return value.get<double>();
}

/** A non-negative integer of the header (JSON parses those as unsigned). */
uint64_t
Count(const Json & value, const std::string & what)
{
  if (!value.is_number_unsigned())
  {
    throw std::runtime_error("header: " + what + " is not a non-negative integer");
  }
  return value.get<uint64_t>();
}

const Json *
Object(const Json & object, const std::string & key, const std::string & path)
{
  const auto & value = *Member(object, key, path);
  if (!value.is_object())
  {
    throw std::runtime_error("header: '" + path + key + "' is not an object");
  }
  return &value;
}

const Json *
Array(const Json & object, const std::string & key, const std::string & path, std::size_t size = 0)
{
  const auto & value = *Member(object, key, path);
  if (!value.is_array() || (size != 0 && value.size() != size))
  {
    throw std::runtime_error("header: '" + path + key + "' is not an array" +
                             (size != 0 ? " of " + std::to_string(size) : std::string()));
  }
  return &value;
}

ModelDescription
DescriptionFromJson(const Json & d)
{
  if (!d.is_object())
  {
    throw std::runtime_error("header: 'description' is not an object");
  }
  ModelDescription description;
  description.preset = Text(d, "preset", "description.");
  // Optional: a description without a role loads as "unknown".
  description.role = d.contains("role") ? Text(d, "role", "description.") : std::string("unknown");
  for (const auto & channel : *Array(d, "input_channels", "description."))
  {
    if (!channel.is_string())
    {
      throw std::runtime_error("header: 'description.input_channels' holds an entry that is not text");
    }
    description.inputChannels.push_back(channel.get<std::string>());
  }
  const std::string pp = "description.preprocessing.";
  const auto &      p = *Object(d, "preprocessing", "description.");
  auto &            out = description.preprocessing;
  out.clipMinimum = Real(p, "clip_minimum", pp);
  out.clipMaximum = Real(p, "clip_maximum", pp);
  out.normalization = Text(p, "normalization", pp);
  out.mean = Real(p, "mean", pp);
  out.standardDeviation = Real(p, "standard_deviation", pp);
  const auto & spacing = *Array(p, "target_spacing", pp, 3);
  const auto & patch = *Array(p, "patch_size", pp, 3);
  for (std::size_t axis = 0; axis < 3; ++axis)
  {
    if (!spacing[axis].is_number() || !patch[axis].is_number_integer())
    {
      throw std::runtime_error("header: '" + pp + "target_spacing' or '" + pp +
                               "patch_size' holds an entry of the wrong type");
    }
    out.targetSpacing[axis] = spacing[axis].get<double>();
    out.patchSize[axis] = patch[axis].get<int64_t>();
  }
  out.clickEncoding = Text(p, "click_encoding", pp);
  // Optional: files written before the crop was recorded were all trained with the defaults (1.5, 48 mm).
  if (p.contains("crop_margin"))
  {
    out.cropMargin = Real(p, "crop_margin", pp);
  }
  if (p.contains("crop_minimum_side"))
  {
    out.cropMinimumSide = Real(p, "crop_minimum_side", pp);
  }
  // Optional: coarse files written before it was recorded were all trained with windows inside the image.
  if (p.contains("window_placement"))
  {
    out.windowPlacement = Text(p, "window_placement", pp);
    if (out.windowPlacement != "inside-image" && out.windowPlacement != "centred-on-click")
    {
      throw std::runtime_error("header: '" + pp + "window_placement' is \"" + out.windowPlacement +
                               "\"; expected \"inside-image\" or \"centred-on-click\"");
    }
  }
  const std::string pv = "description.provenance.";
  const auto &      v = *Object(d, "provenance", "description.");
  description.provenance.version = Text(v, "version", pv);
  description.provenance.trainingCommand = Text(v, "training_command", pv);
  description.provenance.data = Text(v, "data", pv);
  description.provenance.date = Text(v, "date", pv);
  return description;
}

Json
ParseHeader(const char * first, const char * last)
{
  const Json::parser_callback_t limitDepth = [](int depth, Json::parse_event_t, Json &)
  {
    if (depth > MaxHeaderDepth)
    {
      throw std::runtime_error("header: nested deeper than " + std::to_string(MaxHeaderDepth) + " levels");
    }
    return true;
  };
  try
  {
    return Json::parse(first, last, limitDepth);
  }
  catch (const Json::exception & error)
  {
    throw std::runtime_error(std::string("header: not valid JSON (") + error.what() + ")");
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The file

struct TensorEntry
{
  std::string          name;
  const StoredType *   stored = nullptr;
  std::vector<int64_t> shape;
  std::size_t          offset = 0; // in the data section
  std::size_t          length = 0;
};

struct ParsedFile
{
  Settings                 architecture;
  ModelDescription         description;
  std::vector<TensorEntry> tensors;
  std::size_t              dataStart = 0;
};

TensorEntry
ReadTensorEntry(const Json & entry, std::size_t index, std::size_t dataSize)
{
  const std::string where = "tensors[" + std::to_string(index) + "]";
  if (!entry.is_object())
  {
    throw std::runtime_error("header: " + where + " is not an object");
  }
  TensorEntry tensor;
  tensor.name = Text(entry, "name", where + ".");
  const std::string what = "tensor '" + tensor.name + "'";
  const auto        dtype = Text(entry, "dtype", where + ".");
  tensor.stored = StoredTypeNamed(dtype);
  if (tensor.stored == nullptr)
  {
    throw std::runtime_error(what + ": unknown dtype '" + dtype.substr(0, 40) + "' (this program reads " +
                             StoredTypeList() + ")");
  }
  const auto & shape = *Array(entry, "shape", where + ".");
  if (shape.size() > MaxRank)
  {
    throw std::runtime_error(what + ": " + std::to_string(shape.size()) + " dimensions (at most " +
                             std::to_string(MaxRank) + ")");
  }
  // The element count is capped by the bytes actually present before anything is multiplied out or allocated (the
  // product of the non-zero extents, so that an empty tensor cannot declare an absurd shape either).
  const uint64_t maxElements = dataSize / tensor.stored->size;
  uint64_t       product = 1;
  bool           empty = false;
  for (const auto & extent : shape)
  {
    const auto value = Count(extent, what + ": a shape entry");
    empty = empty || value == 0;
    if (value != 0 && product > maxElements / value)
    {
      throw std::runtime_error(what + ": its shape holds more elements than the " + std::to_string(dataSize) +
                               " data bytes of the file can (corrupt header)");
    }
    product *= value == 0 ? 1 : value;
    tensor.shape.push_back(static_cast<int64_t>(value));
  }
  const uint64_t elements = empty ? 0 : product;
  const auto     offset = Count(*Member(entry, "offset", where + "."), what + ": 'offset'");
  const auto     length = Count(*Member(entry, "length", where + "."), what + ": 'length'");
  if (length != elements * tensor.stored->size)
  {
    throw std::runtime_error(what + ": " + std::to_string(elements) + " elements of " + dtype + " need " +
                             std::to_string(elements * tensor.stored->size) + " bytes, the table says " +
                             std::to_string(length));
  }
  if (offset > dataSize || length > dataSize - offset)
  {
    throw std::runtime_error(what + ": bytes " + std::to_string(offset) + " + " + std::to_string(length) +
                             " lie beyond the end of the " + std::to_string(dataSize) + "-byte data section");
  }
  tensor.offset = static_cast<std::size_t>(offset);
  tensor.length = static_cast<std::size_t>(length);
  return tensor;
}

/** Checks the frame (magic, version, end marker, checksum) and the header; allocates nothing for tensors. Throws
 * std::runtime_error with the problem (without the file's name). */
ParsedFile
ParseFile(std::string_view bytes)
{
  const std::size_t size = bytes.size();
  if (size == 0)
  {
    throw std::runtime_error("the file is empty (truncated to nothing, or not a model file)");
  }
  if (bytes.compare(0, std::min(size, MagicSize), Magic, std::min(size, MagicSize)) != 0)
  {
    throw std::runtime_error("not a DivAttention model file (it does not begin with the DIVAMDL magic)");
  }
  if (size < PreambleSize + TrailerSize)
  {
    throw std::runtime_error("corrupt or truncated: only " + std::to_string(size) + " bytes, less than the " +
                             std::to_string(PreambleSize + TrailerSize) + "-byte frame");
  }
  const auto version = static_cast<uint32_t>(ReadLittleEndian(bytes, MagicSize, 4));
  if (version == 0)
  {
    throw std::runtime_error("corrupt: format version 0");
  }
  if (version > FormatVersion)
  {
    throw std::runtime_error("format version " + std::to_string(version) + " is newer than this program reads (" +
                             std::to_string(FormatVersion) + "): use a newer DivAttention");
  }
  if (bytes.compare(size - MagicSize, MagicSize, Magic, MagicSize) != 0)
  {
    throw std::runtime_error("corrupt or truncated: no end marker (the file was cut short or has bytes appended)");
  }
  const auto stored = static_cast<uint32_t>(ReadLittleEndian(bytes, size - TrailerSize, 4));
  const auto computed = Crc32(bytes.data(), size - TrailerSize);
  if (stored != computed)
  {
    throw std::runtime_error("corrupt or truncated: checksum mismatch (stored CRC-32 " + Hex(stored) + ", computed " +
                             Hex(computed) + ")");
  }

  const uint64_t headerLength = ReadLittleEndian(bytes, MagicSize + 4, 8);
  const uint64_t available = size - PreambleSize - TrailerSize;
  if (headerLength > available || headerLength > MaxHeaderSize)
  {
    throw std::runtime_error("corrupt: header length " + std::to_string(headerLength) + " exceeds the " +
                             std::to_string(std::min<uint64_t>(available, MaxHeaderSize)) + " bytes allowed");
  }
  const std::size_t headerEnd = PreambleSize + static_cast<std::size_t>(headerLength);
  ParsedFile        file;
  file.dataStart = AlignUp(headerEnd);
  if (file.dataStart > size - TrailerSize)
  {
    throw std::runtime_error("corrupt: the header's padding runs past the end of the file");
  }
  for (std::size_t i = headerEnd; i < file.dataStart; ++i)
  {
    if (bytes[i] != '\0')
    {
      throw std::runtime_error("corrupt: non-zero padding after the header");
    }
  }
  const std::size_t dataSize = size - TrailerSize - file.dataStart;

  const auto header = ParseHeader(bytes.data() + PreambleSize, bytes.data() + headerEnd);
  if (!header.is_object())
  {
    throw std::runtime_error("header: not a JSON object");
  }
  if (Text(header, "format", "") != FormatName)
  {
    throw std::runtime_error(std::string("not a DivAttention model file (header format is not '") + FormatName + "')");
  }
  if (Count(*Member(header, "format_version", ""), "'format_version'") != version)
  {
    throw std::runtime_error("corrupt: the header's format_version differs from the file's (" +
                             std::to_string(version) + ")");
  }
  if (Text(header, "byte_order", "") != "little-endian")
  {
    throw std::runtime_error("header: byte_order is not 'little-endian'");
  }
  for (const auto & [key, value] : Object(header, "architecture", "")->items())
  {
    if (!value.is_string())
    {
      throw std::runtime_error("header: 'architecture." + key + "' is not text");
    }
    file.architecture[key] = value.get<std::string>();
  }
  file.description = DescriptionFromJson(*Member(header, "description", ""));
  const auto &          table = *Array(header, "tensors", "");
  std::set<std::string> names;
  for (std::size_t i = 0; i < table.size(); ++i)
  {
    file.tensors.push_back(ReadTensorEntry(table[i], i, dataSize));
    if (!names.insert(file.tensors.back().name).second)
    {
      throw std::runtime_error("tensor '" + file.tensors.back().name + "' is listed twice");
    }
  }
  return file;
}

#if defined(DIVA_MODEL_FILE_MMAP)
// A model file mapped read-only from the page cache: no buffer of the file's size to allocate and zero, no copy by
// read() (for UNETR `paper`'s 372 MB, ~0.4 s of page faults and copying on this machine). MAP_POPULATE maps the
// pages in one call instead of one fault per page.
class MappedFile
{
public:
  explicit MappedFile(const std::string & path)
  {
    std::error_code error;
    if (std::filesystem::is_directory(path, error))
    {
      throw std::runtime_error("model file '" + path + "': is a directory");
    }
    m_Descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (m_Descriptor < 0)
    {
      throw std::runtime_error("model file '" + path + "': cannot be opened for reading");
    }
    struct stat status
    {
    };
    if (::fstat(m_Descriptor, &status) != 0 || !S_ISREG(status.st_mode))
    {
      ::close(m_Descriptor);
      throw std::runtime_error("model file '" + path + "': cannot be read (not a regular file)");
    }
    m_Size = static_cast<std::size_t>(status.st_size);
    if (m_Size > 0)
    {
      void * address = ::mmap(nullptr, m_Size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, m_Descriptor, 0);
      if (address == MAP_FAILED)
      {
        ::close(m_Descriptor);
        throw std::runtime_error("model file '" + path + "': cannot be read");
      }
      m_Data = static_cast<const char *>(address);
    }
  }
  ~MappedFile()
  {
    if (m_Data != nullptr)
    {
      ::munmap(const_cast<char *>(m_Data), m_Size);
    }
    ::close(m_Descriptor);
  }
  MappedFile(const MappedFile &) = delete;
  MappedFile &
  operator=(const MappedFile &) = delete;

  std::string_view
  Bytes() const
  {
    return m_Data != nullptr ? std::string_view(m_Data, m_Size) : std::string_view();
  }

private:
  int          m_Descriptor = -1;
  const char * m_Data = nullptr;
  std::size_t  m_Size = 0;
};
#else
std::string
ReadFile(const std::string & path)
{
  std::error_code error;
  if (std::filesystem::is_directory(path, error))
  {
    throw std::runtime_error("model file '" + path + "': is a directory");
  }
  std::ifstream stream(path, std::ios::binary);
  if (!stream)
  {
    throw std::runtime_error("model file '" + path + "': cannot be opened for reading");
  }
  stream.seekg(0, std::ios::end);
  const auto size = static_cast<std::streamoff>(stream.tellg());
  stream.seekg(0, std::ios::beg);
  if (size < 0 || !stream)
  {
    throw std::runtime_error("model file '" + path + "': cannot be read");
  }
  std::string bytes(static_cast<std::size_t>(size), '\0');
  stream.read(bytes.data(), static_cast<std::streamsize>(size));
  if (stream.gcount() != static_cast<std::streamsize>(size))
  {
    throw std::runtime_error("model file '" + path + "': cannot be read");
  }
  return bytes;
}
#endif
} // namespace

std::shared_ptr<SegmentationNetworkImpl>
CreateNetwork(const Settings & architecture)
{
  const auto name = SettingText(architecture, "architecture");
  if (name == "UNETR")
  {
    return std::make_shared<UNETRImpl>(UNETROptions::FromSettings(architecture));
  }
  if (name == "mUnet")
  {
    return std::make_shared<MUnetImpl>(MUnetOptions::FromSettings(architecture));
  }
  if (name == "ESPNet3D")
  {
    return std::make_shared<ESPNet3DImpl>(ESPNet3DOptions::FromSettings(architecture));
  }
  throw std::invalid_argument("CreateNetwork: unknown architecture '" + name + "' (expected UNETR, mUnet or ESPNet3D)");
}

std::size_t
LoadNamedTensors(torch::nn::Module &                                        network,
                 const std::vector<std::pair<std::string, torch::Tensor>> & tensors,
                 bool (*ignore)(const std::string &),
                 const std::string & source)
{
  std::map<std::string, torch::Tensor> targets;
  for (const auto & [name, tensor] : NamedTensors(network))
  {
    targets.emplace(name, tensor);
  }
  std::vector<std::string> unexpected;
  std::size_t              copied = 0;
  torch::NoGradGuard       noGrad;
  for (const auto & [name, tensor] : tensors)
  {
    if (ignore && ignore(name))
    {
      continue;
    }
    const auto target = targets.find(name);
    if (target == targets.end())
    {
      unexpected.push_back(name);
      continue;
    }
    if (target->second.sizes() != tensor.sizes())
    {
      std::ostringstream message;
      message << source << ": '" << name << "' has shape " << tensor.sizes() << ", the network expects "
              << target->second.sizes();
      throw std::runtime_error(message.str());
    }
    if (std::strcmp(KindOf(target->second.scalar_type()), KindOf(tensor.scalar_type())) != 0)
    {
      std::ostringstream message;
      message << source << ": '" << name << "' is stored as " << tensor.scalar_type() << ", the network expects "
              << KindOf(target->second.scalar_type()) << " values (" << target->second.scalar_type() << ")";
      throw std::runtime_error(message.str());
    }
    target->second.copy_(tensor);
    targets.erase(target);
    ++copied;
  }
  if (!unexpected.empty() || !targets.empty())
  {
    std::ostringstream message;
    message << source << ": the weights do not match the network:";
    if (!targets.empty())
    {
      message << " " << targets.size() << " missing (first '" << targets.begin()->first << "')";
    }
    if (!unexpected.empty())
    {
      message << " " << unexpected.size() << " unexpected (first '" << unexpected.front() << "')";
    }
    throw std::runtime_error(message.str());
  }
  return copied;
}

std::string
SaveModelToBytes(SegmentationNetworkImpl & network,
                 const ModelDescription &  description,
                 const ModelSaveOptions &  options)
{
  if (!description.inputChannels.empty() &&
      static_cast<int64_t>(description.inputChannels.size()) != network.GetInputChannels())
  {
    throw std::invalid_argument("SaveModel: the description names " + std::to_string(description.inputChannels.size()) +
                                " input channels, the network has " + std::to_string(network.GetInputChannels()));
  }
  const auto & p = description.preprocessing;
  for (const double value : { p.clipMinimum, p.clipMaximum, p.mean, p.standardDeviation, p.targetSpacing[0],
                              p.targetSpacing[1], p.targetSpacing[2], p.cropMargin, p.cropMinimumSide })
  {
    if (!std::isfinite(value))
    {
      throw std::invalid_argument("SaveModel: the preprocessing numbers must be finite (JSON has no infinity)");
    }
  }
  if (p.windowPlacement != "inside-image" && p.windowPlacement != "centred-on-click")
  {
    throw std::invalid_argument(
      "SaveModel: the window placement must be \"inside-image\" or \"centred-on-click\", not \"" + p.windowPlacement +
      "\"");
  }

  // The tensors as stored: on the CPU, contiguous, floating ones as float32 (or float16 where asked and in range).
  nlohmann::ordered_json                             table = nlohmann::ordered_json::array();
  std::vector<std::pair<std::size_t, torch::Tensor>> data; // offset in the data section, tensor
  std::size_t                                        dataSize = 0;
  for (const auto & [name, original] : NamedTensors(network))
  {
    auto tensor = original.detach().to(torch::kCPU);
    if (c10::isFloatingType(tensor.scalar_type()))
    {
      tensor = tensor.to(torch::kFloat32);
      if (options.float16 && FitsFloat16(tensor))
      {
        tensor = tensor.to(torch::kFloat16);
      }
    }
    tensor = tensor.contiguous();
    const auto * stored = StoredTypeOf(tensor.scalar_type());
    if (stored == nullptr)
    {
      std::ostringstream message;
      message << "SaveModel: '" << name << "' holds " << tensor.scalar_type() << " values, which a model file cannot "
              << "store (" << StoredTypeList() << ")";
      throw std::invalid_argument(message.str());
    }
    const std::size_t      offset = AlignUp(dataSize);
    const std::size_t      length = static_cast<std::size_t>(tensor.numel()) * stored->size;
    nlohmann::ordered_json entry;
    entry["name"] = name;
    entry["dtype"] = stored->name;
    entry["shape"] = tensor.sizes().vec();
    entry["offset"] = offset;
    entry["length"] = length;
    table.push_back(entry);
    data.emplace_back(offset, tensor);
    dataSize = offset + length;
  }

  nlohmann::ordered_json header;
  header["format"] = FormatName;
  header["format_version"] = FormatVersion;
  header["byte_order"] = "little-endian";
  header["architecture"] = network.GetSettings();
  header["description"] = DescriptionToJson(description);
  header["tensors"] = table;
  // Text that is not valid UTF-8 (e.g. a training command with Latin-1 bytes) is written with U+FFFD in its place.
  const auto headerText = header.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);

  const std::size_t dataStart = AlignUp(PreambleSize + headerText.size());
  std::string       bytes;
  bytes.reserve(dataStart + dataSize + TrailerSize);
  bytes.append(Magic, MagicSize);
  AppendLittleEndian(bytes, FormatVersion, 4);
  AppendLittleEndian(bytes, headerText.size(), 8);
  bytes += headerText;
  bytes.resize(dataStart + dataSize, '\0');
  for (const auto & [offset, tensor] : data)
  {
    if (tensor.numel() > 0)
    {
      std::memcpy(&bytes[dataStart + offset], tensor.data_ptr(), static_cast<std::size_t>(tensor.nbytes()));
    }
  }
  AppendLittleEndian(bytes, Crc32(bytes.data(), bytes.size()), 4);
  bytes.append(Magic, MagicSize);
  return bytes;
}

void
SaveModel(const std::string &       path,
          SegmentationNetworkImpl & network,
          const ModelDescription &  description,
          const ModelSaveOptions &  options)
{
  const auto bytes = SaveModelToBytes(network, description, options);
  // Atomically: a reader (or a crash mid-write) sees the old model file or the complete new one, never a part.
  try
  {
    WriteFileAtomically(path,
                        [&](const std::string & temporary)
                        {
                          std::ofstream stream(temporary, std::ios::binary | std::ios::trunc);
                          stream.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
                          stream.close();
                          if (!stream)
                          {
                            throw std::runtime_error("cannot write '" + temporary + "'");
                          }
                        });
  }
  catch (const std::exception & error)
  {
    throw std::runtime_error("SaveModel: cannot write the model file '" + path + "': " + error.what());
  }
}

namespace
{
LoadedModel
LoadModelFromView(std::string_view bytes, const std::string & sourceName, const torch::Device & device)
{
  const auto  source = "model file '" + sourceName + "'";
  ParsedFile  file;
  LoadedModel model;
  try
  {
    file = ParseFile(bytes);
    model.description = file.description;
    const SkipWeightInitialization overwrittenBelow; // every weight comes from the file
    model.network = CreateNetwork(file.architecture);
  }
  catch (const std::exception & error)
  {
    throw std::runtime_error(source + ": " + error.what());
  }
  const auto & channels = model.description.inputChannels;
  if (!channels.empty() && static_cast<int64_t>(channels.size()) != model.network->GetInputChannels())
  {
    throw std::runtime_error(source + ": the description names " + std::to_string(channels.size()) +
                             " input channels, the network has " + std::to_string(model.network->GetInputChannels()));
  }

  // Every entry was checked against the bytes present: each allocates at most what the data section holds for it.
  try
  {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    tensors.reserve(file.tensors.size());
    for (const auto & entry : file.tensors)
    {
      // Views of the file's bytes (entries are 64-byte aligned in the file; copy_ below reads them once): no
      // second buffer of the weights' size, which cost ~0.5 s of allocation and copying for UNETR `paper`.
      const auto options = torch::TensorOptions().dtype(entry.stored->type);
      auto       tensor =
        entry.length > 0
                ? torch::from_blob(const_cast<char *>(bytes.data() + file.dataStart + entry.offset), entry.shape, options)
                : torch::empty(entry.shape, options);
      tensors.emplace_back(entry.name, std::move(tensor));
    }
    LoadNamedTensors(*model.network, tensors, nullptr, source);
  }
  catch (const std::runtime_error &)
  {
    throw; // LoadNamedTensors' messages name the source already
  }
  catch (const std::exception & error)
  {
    throw std::runtime_error(source + ": " + error.what());
  }
  model.network->to(device);
  model.network->eval();
  return model;
}

} // namespace

LoadedModel
LoadModelFromBytes(const std::string & bytes, const std::string & sourceName, const torch::Device & device)
{
  return LoadModelFromView(bytes, sourceName, device);
}

LoadedModel
LoadModel(const std::string & path, const torch::Device & device)
{
#if defined(DIVA_MODEL_FILE_MMAP)
  const MappedFile file(path); // mapped until the weights are copied into the network
  return LoadModelFromView(file.Bytes(), path, device);
#else
  return LoadModelFromView(ReadFile(path), path, device);
#endif
}

} // namespace diva
