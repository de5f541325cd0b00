// NiftiVolumeReader: the voxels and geometry ITK's reader gives, for every voxel type it takes, and nullptr (the
// caller's ITK reader and VolumeFileCheck) for every file it does not take, cut short or corrupt ones included.
#include "DivAttentionTestImages.h"
#include "itkImageFileReader.h"
#include "itkImageFileWriter.h"
#include "itkNiftiImageIO.h"
#include "itkNiftiVolumeReader.h"
#include "itk_zlib.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <vector>

namespace fs = std::filesystem;

namespace
{
using ReaderFloatImage = itk::Image<float, 3>;

fs::path
ReaderScratch(const std::string & name)
{
  const fs::path directory = fs::temp_directory_path() / ("divattention-nifti-reader-" + name);
  fs::remove_all(directory);
  fs::create_directories(directory);
  return directory;
}

template<typename TPixel>
void
ReaderWriteVolume(const fs::path & path, double slope = 1.0, double intercept = 0.0)
{
  using ImageType = itk::Image<TPixel, 3>;
  auto image = DivAttentionTest::MakeObliqueImage<ImageType>({ { 37, 21, 13 } });
  itk::ImageRegionIteratorWithIndex<ImageType> it(image, image->GetBufferedRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    const auto index = it.GetIndex();
    // Negative values where the type has them, the type's extremes at two corners.
    const double value = std::is_signed<TPixel>::value ? index[0] * 7.0 - index[1] * 13.0 + index[2] * 3.0
                                                       : index[0] * 7.0 + index[1] * 2.0 + index[2];
    it.Set(static_cast<TPixel>(value));
  }
  image->SetPixel({ { 0, 0, 0 } }, std::numeric_limits<TPixel>::lowest());
  image->SetPixel({ { 36, 20, 12 } }, std::numeric_limits<TPixel>::max());
  auto io = itk::NiftiImageIO::New();
  io->SetRescaleSlope(slope);
  io->SetRescaleIntercept(intercept);
  auto writer = itk::ImageFileWriter<ImageType>::New();
  writer->SetImageIO(io);
  writer->SetInput(image);
  writer->SetFileName(path.string());
  writer->SetUseCompression(path.extension() == ".gz");
  writer->Update();
}

ReaderFloatImage::Pointer
ReaderReadWithItk(const fs::path & path)
{
  auto reader = itk::ImageFileReader<ReaderFloatImage>::New();
  reader->SetFileName(path.string());
  reader->Update();
  return reader->GetOutput();
}

// Bit for bit: every voxel, the region, origin, spacing and direction.
void
ReaderExpectSameAsItk(const fs::path & path)
{
  SCOPED_TRACE(path.filename().string());
  const auto fast = itk::NiftiVolumeReader::ReadAsFloat(path.string());
  ASSERT_TRUE(fast) << "not read";
  const auto itk = ReaderReadWithItk(path);
  ASSERT_EQ(fast->GetLargestPossibleRegion(), itk->GetLargestPossibleRegion());
  ASSERT_EQ(fast->GetBufferedRegion(), itk->GetLargestPossibleRegion());
  EXPECT_EQ(fast->GetOrigin(), itk->GetOrigin());
  EXPECT_EQ(fast->GetSpacing(), itk->GetSpacing());
  EXPECT_EQ(fast->GetDirection(), itk->GetDirection());
  const size_t count = itk->GetBufferedRegion().GetNumberOfPixels();
  EXPECT_EQ(std::memcmp(fast->GetBufferPointer(), itk->GetBufferPointer(), count * sizeof(float)), 0)
    << "the voxels differ from ITK's reader";
}

std::vector<char>
ReaderBytes(const fs::path & path)
{
  std::ifstream file(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

void
ReaderPut(const fs::path & path, const std::vector<char> & bytes)
{
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// `bytes` gzip-compressed by zlib as one member.
std::vector<char>
ReaderGzipMember(const char * bytes, size_t size)
{
  z_stream stream{};
  deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::vector<char> out(deflateBound(&stream, static_cast<uLong>(size)) + 64);
  stream.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(bytes));
  stream.avail_in = static_cast<uInt>(size);
  stream.next_out = reinterpret_cast<Bytef *>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  deflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}
} // namespace

TEST(NiftiVolumeReader, EveryVoxelTypeReadsAsItksReaderReadsIt)
{
  const fs::path directory = ReaderScratch("types");
  for (const std::string extension : { ".nii", ".nii.gz" })
  {
    ReaderWriteVolume<uint8_t>(directory / ("u8" + extension));
    ReaderWriteVolume<int8_t>(directory / ("s8" + extension));
    ReaderWriteVolume<int16_t>(directory / ("s16" + extension));
    ReaderWriteVolume<uint16_t>(directory / ("u16" + extension));
    ReaderWriteVolume<int32_t>(directory / ("s32" + extension));
    ReaderWriteVolume<float>(directory / ("f32" + extension));
    for (const std::string name : { "u8", "s8", "s16", "u16", "s32", "f32" })
    {
      ReaderExpectSameAsItk(directory / (name + extension));
    }
  }
  fs::remove_all(directory);
}

// scl_slope and scl_inter: applied as ITK applies them (the voxel times the slope plus the intercept, in double).
TEST(NiftiVolumeReader, ScaledVoxelsReadAsItksReaderScalesThem)
{
  const fs::path directory = ReaderScratch("scaled");
  ReaderWriteVolume<int16_t>(directory / "scaled.nii", 0.5, -1024.25);
  ReaderWriteVolume<uint16_t>(directory / "offset.nii.gz", 1.0, -1024.0);
  ReaderWriteVolume<float>(directory / "float.nii", 0.5, 3.0);
  for (const std::string name : { "scaled.nii", "offset.nii.gz", "float.nii" })
  {
    ReaderExpectSameAsItk(directory / name);
  }
  // The scaling is there: voxel (1, 0, 0) holds 7, read as 7 * 0.5 - 1024.25. A scaling that overflows float (the
  // largest float voxel times 2.5) is left to ITK's reader and the application's finite check.
  ReaderWriteVolume<float>(directory / "overflow.nii", 2.5, 0.0);
  EXPECT_TRUE(itk::NiftiVolumeReader::ReadAsFloat((directory / "overflow.nii").string()).IsNull());
  const auto scaled = itk::NiftiVolumeReader::ReadAsFloat((directory / "scaled.nii").string());
  ASSERT_TRUE(scaled);
  EXPECT_EQ(scaled->GetPixel({ { 1, 0, 0 } }), static_cast<float>(7 * 0.5 - 1024.25));
  fs::remove_all(directory);
}

// What it does not read is left to the caller (nullptr), so that ITK's reader and VolumeFileCheck name the problem.
TEST(NiftiVolumeReader, LeavesEveryFileItDoesNotTakeToItk)
{
  const fs::path directory = ReaderScratch("others");
  ReaderWriteVolume<int16_t>(directory / "whole.nii");
  ReaderWriteVolume<int16_t>(directory / "whole.nii.gz");
  ASSERT_TRUE(itk::NiftiVolumeReader::ReadAsFloat((directory / "whole.nii").string()));
  ASSERT_TRUE(itk::NiftiVolumeReader::ReadAsFloat((directory / "whole.nii.gz").string()));
  const auto none = [&](const std::string & name)
  { return itk::NiftiVolumeReader::ReadAsFloat((directory / name).string()).IsNull(); };

  // Cut short by one byte, uncompressed and compressed; a .nii.gz with a changed CRC-32.
  auto nifti = ReaderBytes(directory / "whole.nii");
  ReaderPut(directory / "cut.nii", std::vector<char>(nifti.begin(), nifti.end() - 1));
  EXPECT_TRUE(none("cut.nii"));
  auto gz = ReaderBytes(directory / "whole.nii.gz");
  ReaderPut(directory / "cut.nii.gz", std::vector<char>(gz.begin(), gz.end() - 9));
  EXPECT_TRUE(none("cut.nii.gz"));
  auto corrupt = gz;
  corrupt[corrupt.size() - 6] = static_cast<char>(corrupt[corrupt.size() - 6] ^ 0x21);
  ReaderPut(directory / "corrupt.nii.gz", corrupt);
  EXPECT_TRUE(none("corrupt.nii.gz"));
  // Two gzip members (header, then voxels): a valid gzip file, left to zlib.
  auto first = ReaderGzipMember(nifti.data(), 352), second = ReaderGzipMember(nifti.data() + 352, nifti.size() - 352);
  first.insert(first.end(), second.begin(), second.end());
  ReaderPut(directory / "members.nii.gz", first);
  EXPECT_TRUE(none("members.nii.gz"));
  EXPECT_EQ(ReaderReadWithItk(directory / "members.nii.gz")->GetPixel({ { 1, 0, 0 } }), 7.0f);

  // A NaN or an infinity among float voxels (ITK's NIfTI reader would read them as 0; VolumeFileCheck names them).
  {
    ReaderWriteVolume<float>(directory / "nan.nii");
    auto        bytes = ReaderBytes(directory / "nan.nii");
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(bytes.data() + 352 + 4 * 500, &nan, 4);
    ReaderPut(directory / "nan.nii", bytes);
    EXPECT_TRUE(none("nan.nii"));
  }
  // Types, dimensions and formats it does not take.
  {
    using DoubleImage = itk::Image<double, 3>;
    auto image = DivAttentionTest::MakeObliqueImage<DoubleImage>({ { 5, 4, 3 } });
    image->FillBuffer(1.5);
    auto writer = itk::ImageFileWriter<DoubleImage>::New();
    writer->SetInput(image);
    writer->SetFileName((directory / "double.nii").string());
    writer->Update();
    EXPECT_TRUE(none("double.nii"));
    ReaderExpectSameAsItk(directory / "whole.nii"); // the same file type, as int16, is read
  }
  {
    using Image4 = itk::Image<int16_t, 4>;
    auto image = Image4::New();
    image->SetRegions(Image4::SizeType{ { 4, 4, 3, 2 } });
    image->Allocate(true);
    auto writer = itk::ImageFileWriter<Image4>::New();
    writer->SetInput(image);
    writer->SetFileName((directory / "four.nii").string());
    writer->Update();
    EXPECT_TRUE(none("four.nii"));
  }
  ReaderWriteVolume<int16_t>(directory / "pair.hdr");
  EXPECT_TRUE(none("pair.hdr"));
  EXPECT_TRUE(none("pair.img"));
  {
    auto image = DivAttentionTest::MakeObliqueImage<itk::Image<int16_t, 3>>({ { 5, 4, 3 } });
    image->FillBuffer(-20);
    auto writer = itk::ImageFileWriter<itk::Image<int16_t, 3>>::New();
    writer->SetInput(image);
    writer->SetFileName((directory / "meta.mha").string());
    writer->Update();
  }
  EXPECT_TRUE(none("meta.mha"));
  EXPECT_TRUE(none("absent.nii"));
  fs::remove_all(directory);
}
