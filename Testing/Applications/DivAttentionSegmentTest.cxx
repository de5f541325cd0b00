// DivAttentionSegment as a user runs it: every bad input is a one-line message naming the input and the problem, a
// non-zero exit, and no output file; a good run writes its outputs on the input's grid.
#include "divaTinyModelFiles.h"
#include "itkCTPhantomGenerator.h"
#include "itkImageFileReader.h"
#include "itkWriteImageAtomically.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace
{
struct Result
{
  int         exitCode = -1;
  std::string output; // stdout and stderr together
};

Result
RunSegment(const std::string & arguments)
{
  const std::string command = std::string(DIVATTENTION_SEGMENT_EXE) + " " + arguments + " 2>&1";
  Result            result;
  FILE *            pipe = popen(command.c_str(), "r");
  if (pipe == nullptr)
  {
    return result;
  }
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), static_cast<int>(buffer.size()), pipe) != nullptr)
  {
    result.output += buffer.data();
  }
  const int status = pclose(pipe);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Everything a run needs, made once: a phantom CT, its liver click, and two small untrained models with roles.
class DivAttentionSegmentCli : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite()
  {
    // One directory per process: CTest runs the cases of this suite in parallel processes.
    root = fs::temp_directory_path() / ("divattention-segment-cli-" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "out");
    auto generator = itk::CTPhantomGenerator::New();
    generator->SetSize(itk::CTPhantomGenerator::SizeType{ { 48, 40, 28 } });
    itk::CTPhantomGenerator::SpacingType spacing;
    spacing[0] = 8.0;
    spacing[1] = 8.0;
    spacing[2] = 9.0;
    generator->SetSpacing(spacing);
    generator->SetNumberOfOrganLesions(0);
    generator->SetNumberOfNodules(0);
    generator->Update();
    itk::WriteImageAtomically(generator->GetCT(), (root / "ct.nii.gz").string());
    const auto & liver = generator->GetObjects().front();
    click =
      std::to_string(liver.click[0]) + "," + std::to_string(liver.click[1]) + "," + std::to_string(liver.click[2]);
    // Air: a corner voxel's centre, outside the body.
    itk::CTPhantomGenerator::CTImageType::PointType corner;
    generator->GetCT()->TransformIndexToPhysicalPoint({ { 0, 0, 0 } }, corner);
    air = std::to_string(corner[0]) + "," + std::to_string(corner[1]) + "," + std::to_string(corner[2]);

    diva::testing::WriteTinyModelFiles(root); // untrained: only that outputs get written matters
    std::ofstream(root / "garbage.pt") << "this is not a model file";
  }

  static std::string
  Models()
  {
    return " --coarse-model " + (root / "coarse.pt").string() + " --refine-model " + (root / "refine.pt").string();
  }

  // Runs with the given arguments, expects failure with `fragment` in one line of output and no output file.
  static void
  ExpectFailure(const std::string & arguments, const std::string & fragment)
  {
    const fs::path output = root / "out" / "mask.nii.gz";
    fs::remove(output);
    const Result result = RunSegment(arguments + " --output " + output.string());
    EXPECT_NE(result.exitCode, 0) << result.output;
    EXPECT_NE(result.output.find(fragment), std::string::npos)
      << "expected \"" << fragment << "\" in: " << result.output;
    EXPECT_NE(result.output.find("DivAttentionSegment: error: "), std::string::npos) << result.output;
    EXPECT_FALSE(fs::exists(output)) << "an output was left behind";
  }

  static inline fs::path    root;
  static inline std::string click;
  static inline std::string air;
};
} // namespace

TEST_F(DivAttentionSegmentCli, MissingInput)
{
  ExpectFailure("--input " + (root / "nope.nii.gz").string() + " --click 0,0,0" + Models(), "does not exist");
}

TEST_F(DivAttentionSegmentCli, UnreadableInput)
{
  ExpectFailure("--input " + (root / "garbage.pt").string() + " --click 0,0,0" + Models(), "garbage.pt");
}

TEST_F(DivAttentionSegmentCli, TwoDimensionalAndFourDimensionalInputs)
{
  auto slice = itk::Image<float, 2>::New();
  slice->SetRegions(itk::Image<float, 2>::SizeType{ { 8, 8 } });
  slice->Allocate();
  slice->FillBuffer(40.0f);
  itk::WriteImageAtomically(slice.GetPointer(), (root / "slice.nii.gz").string());
  ExpectFailure("--input " + (root / "slice.nii.gz").string() + " --click 1,1,0" + Models(), "2D");
  auto series = itk::Image<float, 4>::New();
  series->SetRegions(itk::Image<float, 4>::SizeType{ { 6, 6, 6, 3 } });
  series->Allocate();
  series->FillBuffer(40.0f);
  itk::WriteImageAtomically(series.GetPointer(), (root / "series.nii.gz").string());
  ExpectFailure("--input " + (root / "series.nii.gz").string() + " --click 1,1,1" + Models(), "4D");
}

TEST_F(DivAttentionSegmentCli, ClickOutsideTheImageAndOnAir)
{
  ExpectFailure("--input " + (root / "ct.nii.gz").string() + " --click 5000,0,0" + Models(), "outside the image");
  ExpectFailure("--input " + (root / "ct.nii.gz").string() + " --click " + air + Models(), "lies on air");
  ExpectFailure("--input " + (root / "ct.nii.gz").string() + " --click 1,2" + Models(), "\"1,2\"");
}

TEST_F(DivAttentionSegmentCli, CoarseExtentMustBePositive)
{
  for (const std::string value : { "0", "-5" })
  {
    ExpectFailure("--input " + (root / "ct.nii.gz").string() + " --click " + click + Models() +
                    " --coarse-max-extent " + value,
                  "--coarse-max-extent");
  }
}

TEST_F(DivAttentionSegmentCli, MissingCorruptWrongKindAndSwappedModels)
{
  const std::string input = "--input " + (root / "ct.nii.gz").string() + " --click " + click;
  ExpectFailure(input + " --coarse-model " + (root / "none.pt").string() + " --refine-model " +
                  (root / "refine.pt").string(),
                "none.pt");
  ExpectFailure(input + " --coarse-model " + (root / "garbage.pt").string() + " --refine-model " +
                  (root / "refine.pt").string(),
                "garbage.pt");
  ExpectFailure(input + " --coarse-model " + (root / "ct.nii.gz").string() + " --refine-model " +
                  (root / "refine.pt").string(),
                "ct.nii.gz");
  ExpectFailure(input + " --coarse-model " + (root / "refine.pt").string() + " --refine-model " +
                  (root / "coarse.pt").string(),
                "swapped");
}

TEST_F(DivAttentionSegmentCli, CudaWithoutCudaAndUnwritableOutputAndNaNVoxels)
{
  const std::string input = "--input " + (root / "ct.nii.gz").string() + " --click " + click + Models();
  if (!torch::cuda::is_available())
  {
    ExpectFailure(input + " --device cuda", "no CUDA device");
  }
  const Result result = RunSegment(input + " --output " + (root / "no-such-dir" / "mask.nii.gz").string());
  EXPECT_NE(result.exitCode, 0);
  EXPECT_NE(result.output.find("does not exist"), std::string::npos) << result.output;

  auto image = itk::Image<float, 3>::New();
  image->SetRegions(itk::Image<float, 3>::SizeType{ { 10, 10, 10 } });
  image->Allocate();
  image->FillBuffer(40.0f);
  image->SetPixel({ { 3, 4, 5 } }, std::numeric_limits<float>::quiet_NaN());
  itk::WriteImageAtomically(image.GetPointer(), (root / "nan.mha").string());
  ExpectFailure("--input " + (root / "nan.mha").string() + " --click 1,1,1" + Models(), "not finite");
}

TEST_F(DivAttentionSegmentCli, GoodRunWritesOutputsOnTheInputGrid)
{
  const fs::path mask = root / "out" / "good-mask.nii.gz", probability = root / "out" / "probability.nii.gz",
                 preview = root / "out" / "preview.png";
  const Result result = RunSegment("--input " + (root / "ct.nii.gz").string() + " --click " + click + Models() +
                                   " --output " + mask.string() + " --probability " + probability.string() +
                                   " --preview " + preview.string() + " --threads 2 --coarse-max-extent 150 --verbose");
  ASSERT_EQ(result.exitCode, 0) << result.output;
  EXPECT_NE(result.output.find("wrote"), std::string::npos) << result.output;
  // --verbose reports each step's time.
  for (const std::string step : { "click map", "coarse segmentation", "crop", "refinement", "paste back" })
  {
    EXPECT_NE(result.output.find("steps: "), std::string::npos) << result.output;
    EXPECT_NE(result.output.find(step + " "), std::string::npos) << step << "\n" << result.output;
  }
  auto ct = itk::ImageFileReader<itk::Image<float, 3>>::New();
  ct->SetFileName((root / "ct.nii.gz").string());
  ct->Update();
  auto written = itk::ImageFileReader<itk::Image<uint8_t, 3>>::New();
  written->SetFileName(mask.string());
  written->Update();
  EXPECT_EQ(written->GetOutput()->GetLargestPossibleRegion(), ct->GetOutput()->GetLargestPossibleRegion());
  for (unsigned d = 0; d < 3; ++d)
  {
    EXPECT_NEAR(written->GetOutput()->GetOrigin()[d], ct->GetOutput()->GetOrigin()[d], 1e-4);
    EXPECT_NEAR(written->GetOutput()->GetSpacing()[d], ct->GetOutput()->GetSpacing()[d], 1e-5);
  }
  EXPECT_TRUE(fs::exists(probability));
  EXPECT_TRUE(fs::exists(preview));
  // No temporary is left beside the outputs.
  for (const auto & entry : fs::directory_iterator(root / "out"))
  {
    EXPECT_EQ(entry.path().filename().string().find(".partial-"), std::string::npos) << entry.path();
  }
}

TEST_F(DivAttentionSegmentCli, SlicerXmlAndVersion)
{
  Result result = RunSegment("--xml");
  EXPECT_EQ(result.exitCode, 0);
  EXPECT_NE(result.output.find("<executable>"), std::string::npos);
  EXPECT_NE(result.output.find("<longflag>click</longflag>"), std::string::npos);
  result = RunSegment("--version");
  EXPECT_EQ(result.exitCode, 0);
  EXPECT_NE(result.output.find("DivAttention"), std::string::npos);
}
