#include "itkVolumeFileCheck.h"

#include "itkMacro.h"
#include "itk_zlib.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace itk
{
namespace
{
[[noreturn]] void
Fail(const std::string & what, const std::string & path, const std::string & problem)
{
  itkGenericExceptionMacro(<< "DivAttention: input \"" << what << "\": file \"" << path << "\" " << problem);
}

// A problem of the data file `dataPath` of the header `path` (the same file, or the other file of a pair).
[[noreturn]] void
FailData(const std::string & what, const std::string & path, const std::string & dataPath, const std::string & problem)
{
  if (dataPath == path)
  {
    Fail(what, path, problem);
  }
  Fail(what, path, "keeps its voxels in \"" + dataPath + "\", which " + problem);
}

bool
EndsWith(const std::string & text, const std::string & suffix)
{
  if (text.size() < suffix.size())
  {
    return false;
  }
  std::string tail = text.substr(text.size() - suffix.size());
  std::transform(tail.begin(), tail.end(), tail.begin(), [](unsigned char c) { return static_cast<char>(tolower(c)); });
  return tail == suffix;
}

bool
IsGzip(const std::string & path)
{
  std::ifstream                file(path, std::ios::binary);
  std::array<unsigned char, 2> magic{};
  file.read(reinterpret_cast<char *>(magic.data()), 2);
  return file.gcount() == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

// A file read front to back through zlib, which also reads files that are not compressed.
class Reader
{
public:
  Reader(const std::string & path, const std::string & what) : m_Path(path), m_What(what), m_Gzip(IsGzip(path))
  {
    m_File = gzopen(path.c_str(), "rb");
    if (m_File == nullptr)
    {
      Fail(what, path, "cannot be opened");
    }
    gzbuffer(m_File, 1 << 17);
  }
  ~Reader()
  {
    if (m_File != nullptr)
    {
      gzclose_r(m_File);
    }
  }
  Reader(const Reader &) = delete;
  Reader &
  operator=(const Reader &) = delete;

  // Up to `count` bytes; fewer only at the end of the content. A cut or corrupt gzip stream throws.
  size_t
  Read(void * buffer, size_t count)
  {
    size_t done = 0;
    while (done < count)
    {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(count - done, 1u << 30));
      const int      got = gzread(m_File, static_cast<char *>(buffer) + done, chunk);
      if (got < 0)
      {
        this->ThrowStreamError();
      }
      if (got == 0)
      {
        break;
      }
      done += static_cast<size_t>(got);
    }
    if (done < count)
    {
      this->CheckStreamEnd();
    }
    return done;
  }

  // Reads and discards the rest, then checks that the stream ended as a complete gzip stream.
  uint64_t
  Drain()
  {
    std::vector<char> buffer(1 << 20);
    uint64_t          total = 0;
    for (;;)
    {
      const size_t got = this->Read(buffer.data(), buffer.size());
      total += got;
      if (got < buffer.size())
      {
        return total;
      }
    }
  }

private:
  void
  CheckStreamEnd()
  {
    int errnum = Z_OK;
    gzerror(m_File, &errnum);
    if (errnum != Z_OK)
    {
      this->ThrowStreamError();
    }
  }

  [[noreturn]] void
  ThrowStreamError()
  {
    int                errnum = Z_OK;
    const char *       text = gzerror(m_File, &errnum);
    std::ostringstream problem;
    if (errnum == Z_BUF_ERROR)
    {
      problem << "is truncated: its gzip stream ends early (" << (text != nullptr ? text : "") << ")";
    }
    else
    {
      problem << "is corrupt: " << (m_Gzip ? "its gzip stream cannot be decompressed" : "it cannot be read") << " ("
              << (text != nullptr ? text : "") << ")";
    }
    Fail(m_What, m_Path, problem.str());
  }

  std::string m_Path;
  std::string m_What;
  bool        m_Gzip;
  gzFile      m_File = nullptr;
};

template<typename T>
T
Load(const unsigned char * bytes, bool swap)
{
  std::array<unsigned char, sizeof(T)> copy{};
  std::memcpy(copy.data(), bytes, sizeof(T));
  if (swap)
  {
    std::reverse(copy.begin(), copy.end());
  }
  T value;
  std::memcpy(&value, copy.data(), sizeof(T));
  return value;
}

struct NiftiHeader
{
  bool                   swap = false;
  int                    version = 1; // 1: NIfTI-1 or Analyze 7.5 (348 bytes), 2: NIfTI-2 (540 bytes)
  bool                   singleFile = false;
  std::array<int64_t, 8> dims{};
  int                    datatype = 0;
  int                    bitpix = 0;
  uint64_t               voxOffset = 0;
};

// The header of a NIfTI-1/2 or Analyze file; false when the bytes are not one.
bool
ParseNifti(const std::vector<unsigned char> & bytes, NiftiHeader & header)
{
  if (bytes.size() < 348)
  {
    return false;
  }
  const int32_t raw = Load<int32_t>(bytes.data(), false);
  const int32_t swapped = Load<int32_t>(bytes.data(), true);
  if (raw == 348 || swapped == 348)
  {
    header.swap = raw != 348;
    header.version = 1;
    for (unsigned k = 0; k < 8; ++k)
    {
      header.dims[k] = Load<int16_t>(bytes.data() + 40 + 2 * k, header.swap);
    }
    header.datatype = Load<int16_t>(bytes.data() + 70, header.swap);
    header.bitpix = Load<int16_t>(bytes.data() + 72, header.swap);
    const float offset = Load<float>(bytes.data() + 108, header.swap);
    header.voxOffset = offset > 0.0f ? static_cast<uint64_t>(offset) : 0;
    header.singleFile = std::memcmp(bytes.data() + 344, "n+1", 4) == 0;
    return true;
  }
  if (bytes.size() >= 540 && (raw == 540 || swapped == 540))
  {
    header.swap = raw != 540;
    header.version = 2;
    header.datatype = Load<int16_t>(bytes.data() + 12, header.swap);
    header.bitpix = Load<int16_t>(bytes.data() + 14, header.swap);
    for (unsigned k = 0; k < 8; ++k)
    {
      header.dims[k] = Load<int64_t>(bytes.data() + 16 + 8 * k, header.swap);
    }
    const int64_t offset = Load<int64_t>(bytes.data() + 168, header.swap);
    header.voxOffset = offset > 0 ? static_cast<uint64_t>(offset) : 0;
    header.singleFile = std::memcmp(bytes.data() + 4, "n+2", 4) == 0;
    return true;
  }
  return false;
}

bool
IsNiftiName(const std::string & path)
{
  for (const char * suffix : { ".nii", ".nii.gz", ".hdr", ".hdr.gz", ".img", ".img.gz" })
  {
    if (EndsWith(path, suffix))
    {
      return true;
    }
  }
  return false;
}

// The other file of a .hdr/.img pair (the first of the candidates that exists).
std::string
PairedFile(const std::string & path, const std::string & from, const std::string & to)
{
  const bool        gz = EndsWith(path, ".gz");
  const std::string stem = path.substr(0, path.size() - from.size() - (gz ? 3 : 0));
  for (const std::string & candidate : { stem + to + (gz ? ".gz" : ""), stem + to + (gz ? "" : ".gz") })
  {
    if (std::ifstream(candidate).good())
    {
      return candidate;
    }
  }
  return stem + to + (gz ? ".gz" : "");
}

std::string
IndexText(uint64_t element, const std::array<int64_t, 8> & dims)
{
  std::ostringstream text;
  text << "[";
  const unsigned count = static_cast<unsigned>(std::clamp<int64_t>(dims[0], 1, 7));
  for (unsigned d = 1; d <= count; ++d)
  {
    const uint64_t extent = static_cast<uint64_t>(std::max<int64_t>(dims[d], 1));
    text << (d > 1 ? ", " : "") << (element % extent);
    element /= extent;
  }
  text << "]";
  return text.str();
}

void
CheckNifti(const std::string & path, const std::string & what)
{
  std::string headerPath = path, dataPath = path;
  if (EndsWith(path, ".img") || EndsWith(path, ".img.gz"))
  {
    headerPath = PairedFile(path, ".img", ".hdr");
  }
  std::vector<unsigned char> bytes(540);
  {
    Reader header(headerPath, what);
    bytes.resize(header.Read(bytes.data(), bytes.size()));
  }
  NiftiHeader header;
  if (!ParseNifti(bytes, header))
  {
    if (bytes.size() < 348)
    {
      Fail(what, headerPath,
           "is truncated: it ends inside its NIfTI header (" + std::to_string(bytes.size()) + " bytes of 348)");
    }
    if (IsGzip(path))
    {
      Reader(path, what).Drain();
    }
    return; // not a NIfTI header: the reader's own checks apply
  }
  if (!header.singleFile && (EndsWith(path, ".hdr") || EndsWith(path, ".hdr.gz")))
  {
    dataPath = PairedFile(path, ".hdr", ".img");
  }
  const int64_t dimensions = header.dims[0];
  if (dimensions < 1 || dimensions > 7 || header.bitpix <= 0 || header.bitpix % 8 != 0)
  {
    Fail(what, headerPath,
         "is corrupt: its NIfTI header gives " + std::to_string(dimensions) + " dimensions and " +
           std::to_string(header.bitpix) + " bits per voxel");
  }
  uint64_t voxels = 1;
  for (int64_t d = 1; d <= dimensions; ++d)
  {
    if (header.dims[static_cast<size_t>(d)] < 1)
    {
      Fail(what, headerPath,
           "is corrupt: its NIfTI header gives dimension " + std::to_string(d) + " a size of " +
             std::to_string(header.dims[static_cast<size_t>(d)]));
    }
    voxels *= static_cast<uint64_t>(header.dims[static_cast<size_t>(d)]);
  }
  const uint64_t voxelBytes = static_cast<uint64_t>(header.bitpix / 8);
  const uint64_t expected = voxels * voxelBytes;
  const uint64_t offset = header.voxOffset;

  Reader            data(dataPath, what);
  std::vector<char> buffer(1 << 20);
  uint64_t          skipped = 0;
  while (skipped < offset)
  {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(offset - skipped, buffer.size()));
    const size_t got = data.Read(buffer.data(), want);
    skipped += got;
    if (got < want)
    {
      FailData(what, path, dataPath,
               "is truncated: it ends at byte " + std::to_string(skipped) +
                 ", before its voxels (which start at byte " + std::to_string(offset) + ")");
    }
  }
  // float32 (16) and float64 (64): NaN and infinities, which the NIfTI library would turn into 0 without a word.
  const bool     floats = (header.datatype == 16 && voxelBytes == 4) || (header.datatype == 64 && voxelBytes == 8);
  uint64_t       read = 0, nonFinite = 0, firstNonFinite = 0;
  const uint64_t chunkBytes = (buffer.size() / voxelBytes) * voxelBytes;
  while (read < expected)
  {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(expected - read, chunkBytes));
    const size_t got = data.Read(buffer.data(), want);
    if (floats)
    {
      const auto * bytesRead = reinterpret_cast<const unsigned char *>(buffer.data());
      for (size_t i = 0; i + voxelBytes <= got; i += voxelBytes)
      {
        const bool bad = voxelBytes == 4 ? (Load<uint32_t>(bytesRead + i, header.swap) & 0x7f800000u) == 0x7f800000u
                                         : (Load<uint64_t>(bytesRead + i, header.swap) & 0x7ff0000000000000ull) ==
                                             0x7ff0000000000000ull;
        if (bad)
        {
          firstNonFinite = nonFinite == 0 ? (read + i) / voxelBytes : firstNonFinite;
          ++nonFinite;
        }
      }
    }
    read += got;
    if (got < want)
    {
      std::ostringstream problem;
      problem << "is truncated: its header announces " << voxels << " voxels (" << expected << " bytes";
      if (offset > 0)
      {
        problem << " from byte " << offset;
      }
      problem << ") but the file holds only " << read / voxelBytes << " of them (" << read << " bytes)";
      FailData(what, path, dataPath, problem.str());
    }
  }
  data.Drain(); // a gzip stream must still end whole (its CRC-32 and length)
  if (nonFinite > 0)
  {
    std::ostringstream problem;
    problem << "has " << nonFinite << " voxels that are not finite (NaN or infinite), the first at index "
            << IndexText(firstNonFinite, header.dims);
    FailData(what, path, dataPath, problem.str());
  }
}
// MetaImage (.mha, .mhd): ITK 5.2's reader prints "data not read completely" for a short data block and goes on.
size_t
MetaElementSize(const std::string & type)
{
  static const std::vector<std::pair<std::string, size_t>> sizes{
    { "MET_CHAR", 1 },      { "MET_UCHAR", 1 },      { "MET_SHORT", 2 }, { "MET_USHORT", 2 },
    { "MET_INT", 4 },       { "MET_UINT", 4 },       { "MET_LONG", 4 },  { "MET_ULONG", 4 },
    { "MET_LONG_LONG", 8 }, { "MET_ULONG_LONG", 8 }, { "MET_FLOAT", 4 }, { "MET_DOUBLE", 8 }
  };
  for (const auto & [name, size] : sizes)
  {
    if (type == name)
    {
      return size;
    }
  }
  return 0;
}

std::string
Trim(const std::string & text)
{
  const auto first = text.find_first_not_of(" \t\r\n");
  const auto last = text.find_last_not_of(" \t\r\n");
  return first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
}

// Bytes a zlib stream inflates to, reading `file` from its current position; false when the stream does not end.
bool
InflatedSize(std::ifstream & file, uint64_t & inflated)
{
  z_stream stream{};
  if (inflateInit(&stream) != Z_OK)
  {
    return false;
  }
  std::vector<unsigned char> in(1 << 16), out(1 << 18);
  int                        status = Z_OK;
  inflated = 0;
  while (status != Z_STREAM_END)
  {
    file.read(reinterpret_cast<char *>(in.data()), static_cast<std::streamsize>(in.size()));
    const auto got = file.gcount();
    if (got <= 0)
    {
      break;
    }
    stream.next_in = in.data();
    stream.avail_in = static_cast<uInt>(got);
    while (stream.avail_in > 0 && status != Z_STREAM_END)
    {
      stream.next_out = out.data();
      stream.avail_out = static_cast<uInt>(out.size());
      status = inflate(&stream, Z_NO_FLUSH);
      if (status != Z_OK && status != Z_STREAM_END)
      {
        inflateEnd(&stream);
        return false;
      }
      inflated += out.size() - stream.avail_out;
    }
  }
  inflateEnd(&stream);
  return status == Z_STREAM_END;
}

void
CheckMetaImage(const std::string & path, const std::string & what)
{
  std::ifstream file(path, std::ios::binary);
  std::string   line, dataFile;
  uint64_t      voxels = 0, channels = 1;
  size_t        elementSize = 0;
  bool          compressed = false;
  int64_t       headerSize = 0;
  while (dataFile.empty() && std::getline(file, line))
  {
    const auto equals = line.find('=');
    if (equals == std::string::npos)
    {
      continue;
    }
    const std::string  key = Trim(line.substr(0, equals)), value = Trim(line.substr(equals + 1));
    std::istringstream values(value);
    if (key == "DimSize")
    {
      voxels = 1;
      uint64_t extent = 0;
      while (values >> extent)
      {
        voxels *= extent;
      }
    }
    else if (key == "ElementType")
    {
      elementSize = MetaElementSize(value);
    }
    else if (key == "ElementNumberOfChannels")
    {
      values >> channels;
    }
    else if (key == "CompressedData")
    {
      compressed = value == "True" || value == "true" || value == "TRUE";
    }
    else if (key == "HeaderSize")
    {
      values >> headerSize;
    }
    else if (key == "ElementDataFile")
    {
      dataFile = value;
    }
  }
  if (dataFile.empty() || elementSize == 0 || voxels == 0 || dataFile == "LIST" ||
      dataFile.find_first_of(" %") != std::string::npos)
  {
    return; // a header this check does not know: ITK's reader decides
  }
  const uint64_t  expected = voxels * channels * elementSize;
  std::string     dataPath = path;
  std::ifstream   external;
  std::ifstream * data = &file;
  if (dataFile != "LOCAL" && dataFile != "Local" && dataFile != "local")
  {
    const auto slash = path.find_last_of('/');
    dataPath = dataFile[0] == '/' || slash == std::string::npos ? dataFile : path.substr(0, slash + 1) + dataFile;
    external.open(dataPath, std::ios::binary);
    if (!external)
    {
      Fail(what, path, "names the data file \"" + dataPath + "\", which cannot be opened");
    }
    if (headerSize < 0)
    {
      return; // the data are the file's last bytes: only the reader knows where they start
    }
    external.seekg(headerSize);
    data = &external;
  }
  uint64_t available = 0;
  if (compressed)
  {
    if (!InflatedSize(*data, available))
    {
      FailData(what, path, dataPath,
               "is truncated or corrupt: its compressed voxels (zlib) do not decompress to the end of their stream");
    }
  }
  else
  {
    const auto start = data->tellg();
    data->seekg(0, std::ios::end);
    available = static_cast<uint64_t>(data->tellg() - start);
  }
  if (available < expected)
  {
    std::ostringstream problem;
    problem << "is truncated: its header announces " << voxels << " voxels (" << expected
            << " bytes) but the file holds only " << available / (channels * elementSize) << " of them (" << available
            << " bytes)";
    FailData(what, path, dataPath, problem.str());
  }
}
} // namespace

void
VolumeFileCheck::Check(const std::string & path, const std::string & what)
{
  if (!std::ifstream(path).good())
  {
    Fail(what, path, "cannot be opened");
  }
  if (IsNiftiName(path))
  {
    CheckNifti(path, what);
  }
  else if (EndsWith(path, ".mha") || EndsWith(path, ".mhd"))
  {
    CheckMetaImage(path, what);
  }
  else if (IsGzip(path))
  {
    Reader(path, what).Drain();
  }
}

uint64_t
VolumeFileCheck::DecompressedSize(const std::string & path, const std::string & what)
{
  return Reader(path, what).Drain();
}
} // namespace itk
