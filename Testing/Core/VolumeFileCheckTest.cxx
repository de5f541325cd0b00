// A volume file cut short or corrupt is an error naming the file, in every format the applications read; never zeros
// or a partial read. ITK 5.2's NIfTI reader reads a .nii.gz cut to a fraction of its length without complaint and
// turns NaN voxels into 0, so itk::VolumeFileCheck reads the bytes itself; the MetaImage and NRRD readers report a
// short data block themselves, which the format matrix below checks as well.
#include "itkImageFileReader.h"
#include "itkImageFileWriter.h"
#include "itkVolumeFileCheck.h"
#include "itkWriteImageAtomically.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <vector>

namespace fs = std::filesystem;

namespace
{
using ImageType = itk::Image<float, 3>;

fs::path
Scratch(const std::string & name)
{
  const fs::path directory = fs::temp_directory_path() / ("divattention-volume-check-" + name);
  fs::remove_all(directory);
  fs::create_directories(directory);
  return directory;
}

// 40x36x32 voxels of noise-like values (so that compression leaves a file of some length), 1.5 mm.
ImageType::Pointer
MakeVolume()
{
  auto image = ImageType::New();
  image->SetRegions(ImageType::SizeType{ { 40, 36, 32 } });
  ImageType::SpacingType spacing;
  spacing.Fill(1.5);
  image->SetSpacing(spacing);
  image->Allocate();
  float * data = image->GetBufferPointer();
  for (size_t i = 0; i < image->GetBufferedRegion().GetNumberOfPixels(); ++i)
  {
    data[i] = static_cast<float>((i * 2654435761u) % 2001) - 1000.0f;
  }
  return image;
}

// Compressed when the name starts with 'c'; a plain writer, since a .hdr/.img or .mhd/.raw pair is two files.
void
Write(const ImageType * image, const fs::path & path)
{
  auto writer = itk::ImageFileWriter<ImageType>::New();
  writer->SetInput(image);
  writer->SetFileName(path.string());
  writer->SetUseCompression(path.filename().string()[0] == 'c');
  writer->Update();
}

void
Truncate(const fs::path & path, double fraction)
{
  const auto size = fs::file_size(path);
  fs::resize_file(path, static_cast<uintmax_t>(static_cast<double>(size) * fraction));
}

// The check or ITK's reader (as the applications run them: read, then check) must refuse the file, naming it.
void
ExpectRefused(const fs::path & path, const std::string & fragment)
{
  std::string message;
  try
  {
    auto reader = itk::ImageFileReader<ImageType>::New();
    reader->SetFileName(path.string());
    reader->Update();
    itk::VolumeFileCheck::Check(path.string(), "--input");
  }
  catch (const itk::ExceptionObject & error)
  {
    message = error.GetDescription();
  }
  ASSERT_FALSE(message.empty()) << path << " was read without an error";
  EXPECT_NE(message.find(path.filename().string()), std::string::npos) << message;
  EXPECT_NE(message.find(fragment), std::string::npos) << "expected \"" << fragment << "\" in: " << message;
}

std::string
CheckMessage(const fs::path & path)
{
  try
  {
    itk::VolumeFileCheck::Check(path.string(), "--input");
  }
  catch (const itk::ExceptionObject & error)
  {
    return error.GetDescription();
  }
  return {};
}
} // namespace

TEST(VolumeFileCheck, CompleteFilesOfEveryFormatPass)
{
  const fs::path directory = Scratch("complete");
  const auto     image = MakeVolume();
  for (const std::string name : { "v.nii.gz", "v.nii", "v.hdr", "v.mha", "v.nrrd", "v.mhd", "c.mha", "c.nrrd" })
  {
    Write(image, directory / name);
    EXPECT_EQ(CheckMessage(directory / name), "") << name;
  }
}

TEST(VolumeFileCheck, TruncatedNiftiIsAnErrorNamingTheFileAndTheVoxelsMissing)
{
  const fs::path directory = Scratch("truncated-nifti");
  const auto     image = MakeVolume();
  for (const std::string name : { "v.nii.gz", "v.nii" })
  {
    const fs::path path = directory / name;
    itk::WriteImageAtomically(image.GetPointer(), path.string());
    Truncate(path, 0.3);
    const std::string message = CheckMessage(path);
    EXPECT_NE(message.find("input \"--input\""), std::string::npos) << message;
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("is truncated"), std::string::npos) << message;
    // Uncompressed: the header's 46,080 voxels and how many the file holds; compressed: the stream's early end.
    EXPECT_NE(message.find(name == "v.nii" ? "46080 voxels" : "gzip stream ends early"), std::string::npos) << message;
  }
  // Cut inside the header: still an error, not a file of another kind.
  const fs::path stub = directory / "stub.nii";
  std::ofstream(stub) << "short";
  EXPECT_NE(CheckMessage(stub).find("ends inside its NIfTI header"), std::string::npos) << CheckMessage(stub);
  // A .hdr/.img pair whose .img is cut short.
  const fs::path header = directory / "pair.hdr";
  Write(image, header);
  ASSERT_TRUE(fs::exists(directory / "pair.img"));
  Truncate(directory / "pair.img", 0.5);
  EXPECT_NE(CheckMessage(header).find("pair.img\", which is truncated"), std::string::npos) << CheckMessage(header);
}

TEST(VolumeFileCheck, TruncatedOrCorruptFilesOfEveryFormatAreRefused)
{
  const fs::path directory = Scratch("formats");
  const auto     image = MakeVolume();
  // As the applications read: ITK's reader, then the check. Every format, compressed and not, cut to 30 %.
  for (const std::string name : { "v.nii.gz", "v.nii", "v.mha", "v.nrrd", "v.mhd", "c.mha", "c.nrrd" })
  {
    const fs::path path = directory / name;
    Write(image, path);
    const fs::path data = name == "v.mhd" ? directory / "v.raw" : path;
    EXPECT_TRUE(fs::exists(data)) << data;
    Truncate(data, 0.3);
    ExpectRefused(path, "");
  }
  // A byte changed in the middle of a .nii.gz: the gzip stream fails to decompress or its CRC-32.
  const fs::path corrupt = directory / "corrupt.nii.gz";
  itk::WriteImageAtomically(image.GetPointer(), corrupt.string());
  {
    std::fstream file(corrupt, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(fs::file_size(corrupt) / 2));
    file.put('\x5a');
    file.seekp(static_cast<std::streamoff>(fs::file_size(corrupt) / 2 + 1));
    file.put('\xa5');
  }
  EXPECT_NE(CheckMessage(corrupt).find("is corrupt"), std::string::npos) << CheckMessage(corrupt);
}

TEST(VolumeFileCheck, NonFiniteFloatVoxelsInNiftiAreNamedNotReadAsZero)
{
  const fs::path directory = Scratch("nan");
  auto           image = MakeVolume();
  image->SetPixel({ { 7, 8, 9 } }, std::numeric_limits<float>::quiet_NaN());
  image->SetPixel({ { 30, 8, 9 } }, std::numeric_limits<float>::infinity());
  const fs::path path = directory / "nan.nii.gz";
  itk::WriteImageAtomically(image.GetPointer(), path.string());
  const std::string message = CheckMessage(path);
  EXPECT_NE(message.find("has 2 voxels that are not finite"), std::string::npos) << message;
  EXPECT_NE(message.find("[7, 8, 9]"), std::string::npos) << message;
  // Doubles too.
  auto doubles = itk::Image<double, 3>::New();
  doubles->SetRegions(itk::Image<double, 3>::SizeType{ { 4, 4, 4 } });
  doubles->Allocate();
  doubles->FillBuffer(1.0);
  doubles->SetPixel({ { 1, 2, 3 } }, -std::numeric_limits<double>::infinity());
  itk::WriteImageAtomically(doubles.GetPointer(), (directory / "inf.nii").string());
  EXPECT_NE(CheckMessage(directory / "inf.nii").find("[1, 2, 3]"), std::string::npos)
    << CheckMessage(directory / "inf.nii");
  // Integer voxels cannot be NaN: a short CT in int16 passes.
  auto shorts = itk::Image<int16_t, 3>::New();
  shorts->SetRegions(itk::Image<int16_t, 3>::SizeType{ { 4, 4, 4 } });
  shorts->Allocate();
  shorts->FillBuffer(-1000);
  itk::WriteImageAtomically(shorts.GetPointer(), (directory / "short.nii.gz").string());
  EXPECT_EQ(CheckMessage(directory / "short.nii.gz"), "");
}
