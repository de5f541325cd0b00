// Writing images atomically through ITK's writers: the result reads back with its geometry, failures leave nothing.
#include "DivAttentionTestImages.h"
#include "itkGzipFile.h"
#include "itkImageFileReader.h"
#include "itkVolumeFileCheck.h"
#include "itkWriteImageAtomically.h"
#include "itk_zlib.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

namespace fs = std::filesystem;

TEST(WriteImageAtomically, CompressedNiftiReadsBackWithGeometry)
{
  using ImageType = itk::Image<float, 3>;
  const fs::path directory = fs::temp_directory_path() / "divattention-write-image";
  fs::remove_all(directory);
  fs::create_directories(directory);
  auto image = DivAttentionTest::MakeObliqueImage<ImageType>({ { 6, 5, 4 } });
  DivAttentionTest::FillWithIndexCode(image.GetPointer());
  const std::string path = (directory / "out.nii.gz").string();
  itk::WriteImageAtomically(image.GetPointer(), path);

  auto reader = itk::ImageFileReader<ImageType>::New();
  reader->SetFileName(path);
  reader->Update();
  auto back = reader->GetOutput();
  EXPECT_EQ(back->GetPixel({ { 5, 4, 3 } }), 5.0f + 400.0f + 30000.0f);
  // NIfTI stores geometry in float32: compare to float precision.
  for (unsigned d = 0; d < 3; ++d)
  {
    EXPECT_NEAR(back->GetOrigin()[d], image->GetOrigin()[d], 1e-4);
    EXPECT_NEAR(back->GetSpacing()[d], image->GetSpacing()[d], 1e-5);
    for (unsigned e = 0; e < 3; ++e)
    {
      EXPECT_NEAR(back->GetDirection()[d][e], image->GetDirection()[d][e], 1e-5);
    }
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(directory), fs::directory_iterator()), 1);
}

TEST(WriteImageAtomically, UnknownFormatIsAnItkErrorNamingThePathAndLeavesNothing)
{
  using ImageType = itk::Image<float, 3>;
  const fs::path directory = fs::temp_directory_path() / "divattention-write-image-bad";
  fs::remove_all(directory);
  fs::create_directories(directory);
  auto              image = DivAttentionTest::MakeObliqueImage<ImageType>({ { 3, 3, 3 } });
  const std::string path = (directory / "out.unknown-format").string();
  try
  {
    itk::WriteImageAtomically(image.GetPointer(), path);
    FAIL() << "wrote an unknown format";
  }
  catch (const itk::ExceptionObject & error)
  {
    EXPECT_NE(std::string(error.GetDescription()).find(path), std::string::npos) << error.GetDescription();
  }
  EXPECT_TRUE(fs::is_empty(directory));
}

// Two-file formats: the header and its data file land under their final names (the header naming the data file as
// ITK wrote it), no temporary file or folder is left beside them, and the image reads back.
TEST(WriteImageAtomically, TwoFileFormatsLandWithTheirDataFileAndNoTemporary)
{
  using ImageType = itk::Image<float, 3>;
  const fs::path directory = fs::temp_directory_path() / "divattention-write-two-files";
  fs::remove_all(directory);
  fs::create_directories(directory);
  auto image = DivAttentionTest::MakeObliqueImage<ImageType>({ { 6, 5, 4 } });
  DivAttentionTest::FillWithIndexCode(image.GetPointer());
  for (const char * name : { "mask.mhd", "mask.hdr", "mask.nhdr" })
  {
    const auto path = directory / name;
    itk::WriteImageAtomically(image.GetPointer(), path.string());
    itk::WriteImageAtomically(image.GetPointer(), path.string()); // replacing an existing pair works too
    auto reader = itk::ImageFileReader<ImageType>::New();
    reader->SetFileName(path.string());
    ASSERT_NO_THROW(reader->Update()) << name;
    EXPECT_EQ(reader->GetOutput()->GetPixel({ { 5, 4, 3 } }), 5.0f + 400.0f + 30000.0f) << name;
  }
  for (const auto & entry : fs::directory_iterator(directory))
  {
    const auto file = entry.path().filename().string();
    EXPECT_EQ(file.rfind("mask.", 0), 0u) << file << " left beside the outputs";
    EXPECT_FALSE(entry.is_directory()) << file;
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(directory), fs::directory_iterator()), 6); // three pairs
  EXPECT_THROW(itk::WriteImageAtomically(image.GetPointer(), (directory / "absent" / "mask.mhd").string()),
               itk::ExceptionObject);
  fs::remove_all(directory);
}

namespace
{
std::vector<char>
FileBytes(const fs::path & path)
{
  std::ifstream file(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

// The decompressed content of a gzip file (all of its members), through zlib as ITK's NIfTI reader reads it.
std::vector<char>
Gunzip(const fs::path & path)
{
  std::vector<char> content;
  gzFile            file = gzopen(path.c_str(), "rb");
  if (file == nullptr)
  {
    return content;
  }
  std::vector<char> buffer(1 << 16);
  for (int got; (got = gzread(file, buffer.data(), static_cast<unsigned>(buffer.size()))) > 0;)
  {
    content.insert(content.end(), buffer.begin(), buffer.begin() + got);
  }
  gzclose(file);
  return content;
}

// A mask as the applications write it: mostly zeros, a block of ones, a few other labels, on an oblique grid.
itk::Image<uint8_t, 3>::Pointer
MakeMask()
{
  using MaskType = itk::Image<uint8_t, 3>;
  auto mask = DivAttentionTest::MakeObliqueImage<MaskType>({ { 61, 47, 23 } });
  mask->FillBuffer(0);
  for (itk::IndexValueType k = 5; k < 17; ++k)
  {
    for (itk::IndexValueType j = 10; j < 31; ++j)
    {
      for (itk::IndexValueType i = 7; i < 40; ++i)
      {
        mask->SetPixel({ { i, j, k } }, 1);
      }
    }
  }
  mask->SetPixel({ { 60, 46, 22 } }, 255);
  mask->SetPixel({ { 0, 0, 0 } }, 7);
  return mask;
}
} // namespace

// A .nii.gz holds exactly the bytes of ITK's own uncompressed NIfTI (ITK's header and geometry), as one standard gzip
// member (its trailer gives the whole size), reads back voxel for voxel with ITK, and leaves no temporary.
TEST(WriteImageAtomically, CompressedNiftiHoldsItksOwnNiftiBytesAndReadsBackIdentically)
{
  using MaskType = itk::Image<uint8_t, 3>;
  const fs::path directory = fs::temp_directory_path() / "divattention-write-gzip";
  const fs::path reference = fs::temp_directory_path() / "divattention-write-gzip-reference";
  fs::remove_all(directory);
  fs::remove_all(reference);
  fs::create_directories(directory);
  fs::create_directories(reference);
  const auto mask = MakeMask();
  const auto path = directory / "mask.nii.gz";
  itk::WriteImageAtomically(mask.GetPointer(), path.string());
  {
    auto writer = itk::ImageFileWriter<MaskType>::New();
    writer->SetInput(mask);
    writer->SetFileName((reference / "mask.nii").string());
    writer->Update();
  }
  const auto compressed = FileBytes(path);
  ASSERT_GT(compressed.size(), 18u);
  EXPECT_EQ(static_cast<unsigned char>(compressed[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(compressed[1]), 0x8b);
  const auto nifti = FileBytes(reference / "mask.nii");
  ASSERT_EQ(nifti.size(), 352u + mask->GetBufferedRegion().GetNumberOfPixels());
  EXPECT_TRUE(Gunzip(path) == nifti) << "the decompressed .nii.gz differs from ITK's .nii of the same image";
  // One member: its ISIZE (the last 4 bytes, little-endian) is the whole uncompressed size.
  const auto * tail = reinterpret_cast<const unsigned char *>(compressed.data() + compressed.size() - 4);
  EXPECT_EQ(tail[0] | (tail[1] << 8) | (tail[2] << 16) | (static_cast<uint32_t>(tail[3]) << 24), nifti.size());
  // Far smaller than the voxels.
  EXPECT_LT(compressed.size(), nifti.size() / 10);

  auto reader = itk::ImageFileReader<MaskType>::New();
  reader->SetFileName(path.string());
  reader->Update();
  const MaskType * back = reader->GetOutput();
  ASSERT_EQ(back->GetLargestPossibleRegion(), mask->GetLargestPossibleRegion());
  EXPECT_TRUE(std::equal(mask->GetBufferPointer(),
                         mask->GetBufferPointer() + mask->GetBufferedRegion().GetNumberOfPixels(),
                         back->GetBufferPointer()));
  // NIfTI stores geometry in float32: compare to float precision.
  for (unsigned d = 0; d < 3; ++d)
  {
    EXPECT_NEAR(back->GetOrigin()[d], mask->GetOrigin()[d], 1e-4);
    EXPECT_NEAR(back->GetSpacing()[d], mask->GetSpacing()[d], 1e-5);
    for (unsigned e = 0; e < 3; ++e)
    {
      EXPECT_NEAR(back->GetDirection()[d][e], mask->GetDirection()[d][e], 1e-5);
    }
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(directory), fs::directory_iterator()), 1) << "a temporary is left";
  EXPECT_NO_THROW(itk::VolumeFileCheck::Check(path.string(), "mask"));

  // Cut short (its 8-byte trailer lost) or with a changed byte, the file is refused by the input check.
  const auto cut = directory / "cut.nii.gz";
  fs::copy_file(path, cut);
  fs::resize_file(cut, compressed.size() - 8);
  EXPECT_THROW(itk::VolumeFileCheck::Check(cut.string(), "mask"), itk::ExceptionObject);
  const auto corrupt = directory / "corrupt.nii.gz";
  fs::copy_file(path, corrupt);
  {
    std::fstream file(corrupt, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(compressed.size() - 6)); // inside the CRC-32
    file.put(static_cast<char>(compressed[compressed.size() - 6] ^ 0x5a));
  }
  EXPECT_THROW(itk::VolumeFileCheck::Check(corrupt.string(), "mask"), itk::ExceptionObject);
  fs::remove_all(directory);
  fs::remove_all(reference);
}

// The compressor's output cannot be written: the error names the output, and nothing is left, neither the
// compressed temporary nor the uncompressed NIfTI beside it. The fault: a folder where the compressed temporary goes
// (its name is the next one diva::TemporaryPathFor gives).
TEST(WriteImageAtomically, CompressorOutputFailureIsReportedAndLeavesNoFile)
{
  if (!itk::GzipFile::IsAvailable())
  {
    GTEST_SKIP() << "built without libdeflate: ITK compresses .nii.gz itself";
  }
  const fs::path directory = fs::temp_directory_path() / "divattention-write-gzip-fault";
  fs::remove_all(directory);
  fs::create_directories(directory);
  const auto  mask = MakeMask();
  const auto  path = directory / "mask.nii.gz";
  std::string probe = diva::TemporaryPathFor(path.string()); // ".mask.partial-<pid>-<n>.nii.gz"
  const auto  dash = probe.rfind('-');
  const auto  counter = std::stoul(probe.substr(dash + 1));
  const auto  next = probe.substr(0, dash + 1) + std::to_string(counter + 1) + ".nii.gz";
  fs::create_directory(next);
  try
  {
    itk::WriteImageAtomically(mask.GetPointer(), path.string());
    FAIL() << "wrote over a folder";
  }
  catch (const itk::ExceptionObject & error)
  {
    const std::string message = error.GetDescription();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("cannot be created"), std::string::npos) << message;
  }
  for (const auto & entry : fs::directory_iterator(directory))
  {
    ADD_FAILURE() << entry.path().filename() << " left behind";
  }
  fs::remove_all(directory);
}

// GzipFile::Compress on a full device or past the file-size limit: an error naming the file and the reason, and the
// partial output removed (a device is never removed).
TEST(GzipFile, ShortWritesAreReportedAndThePartialOutputRemoved)
{
  if (!itk::GzipFile::IsAvailable())
  {
    GTEST_SKIP() << "built without libdeflate";
  }
  const fs::path directory = fs::temp_directory_path() / "divattention-gzip-short";
  fs::remove_all(directory);
  fs::create_directories(directory);
  const auto source = directory / "noise.bin";
  {
    std::mt19937      random(25);
    std::vector<char> noise(1 << 20);
    for (auto & byte : noise)
    {
      byte = static_cast<char>(random());
    }
    std::ofstream(source, std::ios::binary).write(noise.data(), static_cast<std::streamsize>(noise.size()));
  }
  const auto message = [&](const std::string & destination)
  {
    try
    {
      itk::GzipFile::Compress(source.string(), destination);
    }
    catch (const itk::ExceptionObject & error)
    {
      return std::string(error.GetDescription());
    }
    return std::string();
  };
  if (fs::exists("/dev/full"))
  {
    const auto full = message("/dev/full");
    EXPECT_NE(full.find("\"/dev/full\""), std::string::npos) << full;
    EXPECT_NE(full.find(std::strerror(ENOSPC)), std::string::npos) << full;
    EXPECT_TRUE(fs::exists("/dev/full"));
  }
  // Incompressible noise at a 256 kB file-size limit (SIGXFSZ ignored: write() then fails with EFBIG).
  const auto limited = directory / "noise.bin.gz";
  rlimit     saved{};
  const auto previous = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = 256 << 10;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const auto tooLarge = message(limited.string());
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, previous);
  EXPECT_NE(tooLarge.find(limited.string()), std::string::npos) << tooLarge;
  EXPECT_NE(tooLarge.find("written only in part"), std::string::npos) << tooLarge;
  EXPECT_FALSE(fs::exists(limited)) << "the partial output is left";
  // A missing source and a level out of range are named too.
  try
  {
    itk::GzipFile::Compress((directory / "absent.bin").string(), (directory / "x.gz").string());
    ADD_FAILURE() << "compressed a missing file";
  }
  catch (const itk::ExceptionObject & error)
  {
    EXPECT_NE(std::string(error.GetDescription()).find("absent.bin"), std::string::npos) << error.GetDescription();
  }
  EXPECT_THROW(itk::GzipFile::Compress(source.string(), (directory / "x.gz").string(), 0), itk::ExceptionObject);
  EXPECT_FALSE(fs::exists(directory / "x.gz"));
  fs::remove_all(directory);
}
