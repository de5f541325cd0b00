// Writing images atomically through ITK's writers: the result reads back with its geometry, failures leave nothing.
#include "DivAttentionTestImages.h"
#include "itkImageFileReader.h"
#include "itkWriteImageAtomically.h"

#include <gtest/gtest.h>

#include <filesystem>

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
