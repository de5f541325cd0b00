#include "itkNiftiVolumeReader.h"

#include "itkImageFileReader.h"
#include "itkMultiThreaderBase.h"
#include "itkReadOnlyFileMapping.h"

#ifndef DIVATTENTION_HAVE_LIBDEFLATE
#  define DIVATTENTION_HAVE_LIBDEFLATE 0
#endif
#if DIVATTENTION_HAVE_LIBDEFLATE
#  include <libdeflate.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

namespace itk
{
namespace
{
bool
EndsWith(const std::string & text, const std::string & suffix)
{
  return text.size() > suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

template<typename T>
T
Load(const unsigned char * bytes)
{
  T value;
  std::memcpy(&value, bytes, sizeof(T));
  return value;
}

// What the reader needs of a NIfTI-1 header in the machine's byte order; false for anything it does not read.
struct Header
{
  int64_t dims[3] = { 0, 0, 0 };
  int     datatype = 0;
  size_t  voxelBytes = 0;
  size_t  offset = 0;
  bool    rescale = false;
  double  slope = 1.0;
  double  intercept = 0.0;
};

bool
ParseHeader(const unsigned char * bytes, size_t size, Header & header)
{
  if (size < 352 || Load<int32_t>(bytes) != 348 || std::memcmp(bytes + 344, "n+1\0", 4) != 0)
  {
    return false; // not NIfTI-1 single-file in this byte order (NIfTI-2, a pair, swapped bytes: ITK's reader)
  }
  if (Load<int16_t>(bytes + 40) != 3)
  {
    return false;
  }
  for (int d = 0; d < 3; ++d)
  {
    header.dims[d] = Load<int16_t>(bytes + 42 + 2 * d);
    if (header.dims[d] < 1)
    {
      return false;
    }
  }
  header.datatype = Load<int16_t>(bytes + 70);
  switch (header.datatype)
  {
    case 2:   // uint8
    case 256: // int8
      header.voxelBytes = 1;
      break;
    case 4:   // int16
    case 512: // uint16
      header.voxelBytes = 2;
      break;
    case 8:  // int32
    case 16: // float32
      header.voxelBytes = 4;
      break;
    default:
      return false;
  }
  if (Load<int16_t>(bytes + 72) != static_cast<int16_t>(8 * header.voxelBytes))
  {
    return false;
  }
  const float offset = Load<float>(bytes + 108);
  if (!(offset >= 352.0f) || offset != std::floor(offset) || offset > 1.0e9f)
  {
    return false;
  }
  header.offset = static_cast<size_t>(offset);
  const float slope = Load<float>(bytes + 112), intercept = Load<float>(bytes + 116);
  if (!std::isfinite(slope) || !std::isfinite(intercept))
  {
    return false;
  }
  // ITK 5.2's rule (NiftiImageIO::MustRescale): a slope that is not 0, and a slope not 1 or an intercept not 0.
  header.slope = slope;
  header.intercept = intercept;
  header.rescale = slope != 0.0f && (slope != 1.0f || intercept != 0.0f);
  return true;
}

template<typename T>
bool
Convert(const unsigned char * voxels, size_t count, const Header & header, float * output)
{
  const T * input = reinterpret_cast<const T *>(voxels); // the data start is aligned for every type read here
  bool      finite = true;
  MultiThreaderBase::New()->ParallelizeArray(
    SizeValueType{ 0 }, static_cast<SizeValueType>((count + 65535) / 65536),
    [&](SizeValueType chunk)
    {
      const size_t first = static_cast<size_t>(chunk) * 65536, last = std::min(count, first + 65536);
      if (header.rescale)
      {
        for (size_t i = first; i < last; ++i)
        {
          output[i] = static_cast<float>(static_cast<double>(input[i]) * header.slope + header.intercept);
        }
      }
      else
      {
        for (size_t i = first; i < last; ++i)
        {
          output[i] = static_cast<float>(input[i]);
        }
      }
      if (std::is_floating_point<T>::value)
      {
        for (size_t i = first; i < last; ++i)
        {
          if (!std::isfinite(output[i]))
          {
            finite = false; // benign race: only ever set to false
            break;
          }
        }
      }
    },
    nullptr);
  return finite;
}

bool
ConvertAny(const unsigned char * voxels, size_t count, const Header & header, float * output)
{
  if (reinterpret_cast<uintptr_t>(voxels) % header.voxelBytes != 0)
  {
    return false;
  }
  switch (header.datatype)
  {
    case 2:
      return Convert<uint8_t>(voxels, count, header, output);
    case 256:
      return Convert<int8_t>(voxels, count, header, output);
    case 4:
      return Convert<int16_t>(voxels, count, header, output);
    case 512:
      return Convert<uint16_t>(voxels, count, header, output);
    case 8:
      return Convert<int32_t>(voxels, count, header, output);
    case 16:
      return Convert<float>(voxels, count, header, output);
    default:
      return false;
  }
}
} // namespace

NiftiVolumeReader::ImageType::Pointer
NiftiVolumeReader::ReadAsFloat(const std::string & path)
{
  const bool compressed = EndsWith(path, ".nii.gz");
  if (!compressed && !EndsWith(path, ".nii"))
  {
    return nullptr;
  }
#if !DIVATTENTION_HAVE_LIBDEFLATE
  if (compressed)
  {
    return nullptr;
  }
#endif
  if (Load<uint16_t>(reinterpret_cast<const unsigned char *>("\x01\x00")) != 1)
  {
    return nullptr; // a big-endian machine: ITK's reader
  }
  const ReadOnlyFileMapping file(path);
  if (file.Size() == 0)
  {
    return nullptr;
  }
  // The bytes of the NIfTI file: the mapping itself, or the whole .nii.gz decompressed.
  const unsigned char *                            bytes = file.Data();
  size_t                                           size = file.Size();
  std::unique_ptr<unsigned char, void (*)(void *)> decompressed(nullptr, std::free);
#if DIVATTENTION_HAVE_LIBDEFLATE
  if (compressed)
  {
    if (size < 18 || bytes[0] != 0x1f || bytes[1] != 0x8b)
    {
      return nullptr;
    }
    // The gzip trailer's ISIZE: the length modulo 2^32 (a file over 4 GiB does not decompress into it: ITK's reader).
    const uint32_t isize = Load<uint32_t>(bytes + size - 4);
    std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor *)> decompressor(
      libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
    if (!decompressor || isize < 352)
    {
      return nullptr;
    }
    decompressed.reset(static_cast<unsigned char *>(std::malloc(isize)));
    if (!decompressed)
    {
      return nullptr;
    }
    size_t     inputUsed = 0, outputMade = 0;
    const auto result = libdeflate_gzip_decompress_ex(decompressor.get(), bytes, size, decompressed.get(), isize,
                                                      &inputUsed, &outputMade);
    if (result != LIBDEFLATE_SUCCESS || inputUsed != size || outputMade != isize)
    {
      return nullptr; // corrupt, cut short, several members, or over 4 GiB: ITK's reader and VolumeFileCheck
    }
    bytes = decompressed.get();
    size = outputMade;
  }
#endif
  Header header;
  if (!ParseHeader(bytes, size, header))
  {
    return nullptr;
  }
  const size_t count =
    static_cast<size_t>(header.dims[0]) * static_cast<size_t>(header.dims[1]) * static_cast<size_t>(header.dims[2]);
  if (header.offset + count * header.voxelBytes > size)
  {
    return nullptr; // cut short: VolumeFileCheck names it
  }
  // ITK's geometry: its reader reads the header only.
  auto reader = ImageFileReader<ImageType>::New();
  reader->SetFileName(path);
  reader->UpdateOutputInformation();
  const ImageType * information = reader->GetOutput();
  const auto        region = information->GetLargestPossibleRegion();
  for (unsigned d = 0; d < 3; ++d)
  {
    if (region.GetSize()[d] != static_cast<SizeValueType>(header.dims[d]))
    {
      return nullptr;
    }
  }
  auto image = ImageType::New();
  image->CopyInformation(information);
  image->SetRegions(region);
  image->Allocate();
  if (!ConvertAny(bytes + header.offset, count, header, image->GetBufferPointer()))
  {
    return nullptr; // a NaN or an infinity: ITK's reader and VolumeFileCheck name it
  }
  return image;
}
} // namespace itk
