// DivAttentionSegment on volumes and clicks that used to give a mask and exit 0 (issue 26, Documentation/Reliability.md
// rows 16-22): a volume file cut short or with NaN voxels, a single slice, 50 mm voxels, a click on air outside the
// body (and, not refused, in a lung), and a mask that would not contain the click ("nothing found", exit 3). Each
// case runs the built executable and checks the exit status, the one-line message and that no output was written.
#include "divaCliTestSupport.h"
#include "divaTinyModelFiles.h"
#include "itkImageFileReader.h"
#include "itkImageFileWriter.h"
#include "itkImageRegionConstIteratorWithIndex.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

namespace fs = std::filesystem;
namespace clitest = diva::clitest;

namespace
{
using ImageType = itk::Image<float, 3>;

class DivAttentionSegmentInputCli : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite()
  {
    root = clitest::MakeScratch("segment-input");
    fs::create_directories(root / "out");
    diva::testing::WriteTinyModelFiles(root); // untrained: these cases fail or pass before the networks matter
  }

  static std::string
  TinyModels()
  {
    return " --coarse-model " + (root / "coarse.pt").string() + " --refine-model " + (root / "refine.pt").string();
  }

  static std::string
  BundledModels()
  {
    const fs::path models(DIVATTENTION_SOURCE_DIR "/Models");
    return " --coarse-model " + (models / "coarse-munet-small.pt").string() + " --refine-model " +
           (models / "refine-unetr-small-divattention.pt").string();
  }

  // Runs with --output out/mask.nii.gz; expects exit `status`, `fragments` in the "DivAttentionSegment: error: "
  // line, and no mask.
  static void
  ExpectRefused(const std::string & arguments, const std::vector<std::string> & fragments)
  {
    const fs::path output = root / "out" / "mask.nii.gz";
    fs::remove(output);
    clitest::ExpectFailure(DIVATTENTION_SEGMENT_EXE, "DivAttentionSegment", arguments + " --output " + output.string(),
                           fragments, { output });
  }

  static ImageType::Pointer
  Volume(ImageType::SizeType size, double spacing, float value)
  {
    auto image = ImageType::New();
    image->SetRegions(size);
    ImageType::SpacingType voxel;
    voxel.Fill(spacing);
    image->SetSpacing(voxel);
    image->Allocate();
    image->FillBuffer(value);
    return image;
  }

  static void
  Write(const ImageType * image, const fs::path & path)
  {
    auto writer = itk::ImageFileWriter<ImageType>::New();
    writer->SetInput(image);
    writer->SetFileName(path.string());
    writer->SetUseCompression(path.extension() == ".gz");
    writer->Update();
  }

  // Model files (the tiny models' architecture) whose output is `logit` for the object everywhere, whatever the
  // input: <directory>/<name>-coarse.pt and <name>-refine.pt.
  static void
  WriteConstantModels(const fs::path & directory, const std::string & name, double logit)
  {
    fs::create_directories(directory / name);
    diva::testing::WriteTinyModelFiles(directory / name);
    for (const std::string role : { "coarse", "refine" })
    {
      auto loaded = diva::LoadModel((directory / name / (role + ".pt")).string(), torch::kCPU);
      {
        torch::NoGradGuard noGrad;
        for (auto & item : loaded.network->named_parameters())
        {
          if (item.key().find("seg_layers") != std::string::npos || item.key().find("head") != std::string::npos)
          {
            item.value().zero_();
            if (item.key().find("bias") != std::string::npos)
            {
              item.value()[0] = -logit;
              item.value()[1] = logit;
            }
          }
        }
      }
      diva::SaveModel((directory / (name + "-" + role + ".pt")).string(), *loaded.network, loaded.description);
    }
  }

  static inline fs::path root;
};
} // namespace

TEST_F(DivAttentionSegmentInputCli, TruncatedVolumeIsAnErrorNamingTheFileInEveryFormat)
{
  // The case: the bundled demo CT (2.9 MB) cut to its first 100 kB.
  const fs::path demo = root / "demo-cut.nii.gz";
  fs::copy_file(DIVATTENTION_SOURCE_DIR "/Models/demo/phantom-ct.nii.gz", demo, fs::copy_options::overwrite_existing);
  fs::resize_file(demo, 100000);
  ExpectRefused("--input " + demo.string() + " --click 90.3,51.0,53.4" + TinyModels(),
                { "demo-cut.nii.gz", "is truncated" });

  // Every format, cut to 40 % of its voxel data: NIfTI (gzip and plain), MetaImage (one file and header + raw), NRRD.
  auto image = Volume({ { 40, 36, 32 } }, 2.0, 0.0f);
  for (size_t i = 0; i < image->GetBufferedRegion().GetNumberOfPixels(); ++i)
  {
    image->GetBufferPointer()[i] = static_cast<float>((i * 2654435761u) % 2001) - 1000.0f;
  }
  for (const std::string name : { "cut.nii.gz", "cut.nii", "cut.mha", "cut.mhd", "cut.nrrd" })
  {
    const fs::path path = root / name;
    Write(image, path);
    const fs::path data = name == "cut.mhd" ? root / "cut.raw" : path;
    ASSERT_TRUE(fs::exists(data)) << data;
    fs::resize_file(data, fs::file_size(data) * 2 / 5);
    ExpectRefused("--input " + path.string() + " --click 20,18,16 --click-space index" + TinyModels(), { "cut." });
  }
}

TEST_F(DivAttentionSegmentInputCli, NaNVolumeInNiftiIsAnErrorNotZeros)
{
  // ITK 5.2's NIfTI reader turns NaN voxels into 0 without a word: a volume of NaN used to become a volume of 0 HU.
  const fs::path path = root / "nan.nii.gz";
  Write(Volume({ { 32, 32, 32 } }, 2.0, std::numeric_limits<float>::quiet_NaN()), path);
  ExpectRefused("--input " + path.string() + " --click 16,16,16 --click-space index" + TinyModels(),
                { "nan.nii.gz", "32768 voxels that are not finite" });
  auto one = Volume({ { 32, 32, 32 } }, 2.0, 40.0f);
  one->SetPixel({ { 5, 6, 7 } }, std::numeric_limits<float>::infinity());
  Write(one, root / "inf.nii");
  ExpectRefused("--input " + (root / "inf.nii").string() + " --click 16,16,16 --click-space index" + TinyModels(),
                { "inf.nii", "1 voxels that are not finite", "[5, 6, 7]" });
}

TEST_F(DivAttentionSegmentInputCli, SingleSliceAndFiftyMillimetreVoxelsAreErrors)
{
  Write(Volume({ { 128, 128, 1 } }, 2.0, 40.0f), root / "slice.nii.gz");
  ExpectRefused("--input " + (root / "slice.nii.gz").string() + " --click 64,64,0 --click-space index" + TinyModels(),
                { "slice.nii.gz", "a single slice" });
  Write(Volume({ { 8, 8, 8 } }, 50.0, 40.0f), root / "coarse.nii.gz");
  ExpectRefused("--input " + (root / "coarse.nii.gz").string() + " --click 4,4,4 --click-space index" + TinyModels(),
                { "coarse.nii.gz", "voxels of 50 mm", "too coarse" });
}

TEST_F(DivAttentionSegmentInputCli, AirIsRefusedOutsideTheBodyButNotInALungLesion)
{
  // A body (40 HU) in air, a lung (-850 HU) in it, a ground-glass lesion (-600 HU) in the lung.
  auto ct = Volume({ { 80, 64, 40 } }, 2.0, -1000.0f);
  for (int z = 0; z < 40; ++z)
  {
    for (int y = 0; y < 64; ++y)
    {
      for (int x = 0; x < 80; ++x)
      {
        const double body = std::pow((x - 40) / 34.0, 2) + std::pow((y - 32) / 26.0, 2);
        const double lung = std::pow((x - 28) / 12.0, 2) + std::pow((y - 32) / 14.0, 2);
        const double lesion = std::pow(x - 26, 2) + std::pow(y - 30, 2) + std::pow(z - 20, 2);
        if (body < 1.0)
        {
          ct->SetPixel({ { x, y, z } }, lung < 1.0 && z > 4 && z < 35 ? (lesion < 16.0 ? -600.0f : -850.0f) : 40.0f);
        }
      }
    }
  }
  Write(ct, root / "chest.nii.gz");
  const std::string input = "--input " + (root / "chest.nii.gz").string() + " --click-space index" + TinyModels();
  ExpectRefused(input + " --click 2,32,20", { "click \"2,32,20\" (index)", "lies on air outside the body" });
  // The lesion and the lung around it are targets: no refusal (the untrained models may find nothing: exit 0 or 3).
  for (const std::string click : { "26,30,20", "22,36,10" })
  {
    const fs::path output = root / "out" / ("lung-" + click + ".nii.gz");
    const auto     result =
      clitest::Run(DIVATTENTION_SEGMENT_EXE, input + " --click " + click + " --output " + output.string());
    EXPECT_TRUE(result.exitCode == 0 || result.exitCode == 3) << result.output;
    EXPECT_EQ(result.output.find("lies on air"), std::string::npos) << result.output;
  }
}

// By default a click on which the networks find nothing gets its like-intensity region, and stderr says so: here a
// soft-tissue volume of one value but one voxel, so the region fills its ball and grows to every voxel within twice
// --nothing-found-radius of the click's voxel (counted here from the geometry). Bad values of the two options are
// refused.
TEST_F(DivAttentionSegmentInputCli, NothingFoundWritesTheLikeIntensityRegionAndSaysSo)
{
  auto soft = Volume({ { 48, 48, 32 } }, 2.0, 40.0f);
  soft->SetPixel({ { 0, 0, 0 } }, 45.0f);
  Write(soft, root / "soft-default.nii.gz");
  WriteConstantModels(root, "background", -10.0);
  const std::string background = " --coarse-model " + (root / "background-coarse.pt").string() + " --refine-model " +
                                 (root / "background-refine.pt").string();
  for (const double radius : { 10.0, 30.0 })
  {
    const fs::path output = root / "out" / ("like-" + std::to_string(static_cast<int>(radius)) + ".nii.gz");
    const fs::path probability = root / "out" / ("like-p-" + std::to_string(static_cast<int>(radius)) + ".nii.gz");
    std::string    arguments = "--input " + (root / "soft-default.nii.gz").string() +
                            " --click 24,24,16 --click-space index" + background + " --output " + output.string() +
                            " --probability " + probability.string();
    if (radius != 30.0)
    {
      arguments += " --nothing-found-radius " + std::to_string(radius);
    }
    const auto result = clitest::Run(DIVATTENTION_SEGMENT_EXE, arguments);
    ASSERT_EQ(result.exitCode, 0) << result.output;
    EXPECT_NE(result.output.find("DivAttentionSegment: warning: the networks found nothing at the click \"24,24,16\""),
              std::string::npos)
      << result.output;
    // One tissue filling its ball: the region grows to twice the radius (GrowLargeNothingFoundRegion), and says so.
    EXPECT_NE(
      result.output.find("like-intensity region within " + std::to_string(static_cast<int>(2 * radius)) + " mm"),
      std::string::npos)
      << result.output;
    auto mask = itk::ImageFileReader<itk::Image<uint8_t, 3>>::New();
    mask->SetFileName(output.string());
    mask->Update();
    size_t written = 0, expected = 0;
    for (itk::ImageRegionConstIteratorWithIndex<itk::Image<uint8_t, 3>> it(
           mask->GetOutput(), mask->GetOutput()->GetLargestPossibleRegion());
         !it.IsAtEnd(); ++it)
    {
      written += it.Get() != 0 ? 1 : 0;
      double squared = 0.0;
      for (unsigned int a = 0; a < 3; ++a)
      {
        const double d = (it.GetIndex()[a] - (a == 2 ? 16 : 24)) * 2.0;
        squared += d * d;
      }
      expected += squared <= 4.0 * radius * radius ? 1 : 0;
    }
    EXPECT_EQ(written, expected) << radius << " mm";
    EXPECT_GT(written, 100U);
    EXPECT_TRUE(fs::exists(probability));
  }
  // In a batch, the summary's message of such a case says so (the case is done).
  {
    const fs::path batch = root / "like-batch.csv", summary = root / "like-batch.summary.csv";
    std::ofstream(batch) << "image,clicks,negative_clicks,output\n"
                         << (root / "soft-default.nii.gz").string() << ",\"24,24,16\",,out/like-batch.nii.gz\n";
    const auto result = clitest::Run(DIVATTENTION_SEGMENT_EXE,
                                     "--batch " + batch.string() + " --click-space index --threads 1" + background);
    ASSERT_EQ(result.exitCode, 0) << result.output;
    std::ifstream     stream(summary);
    const std::string text((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find(",done,"), std::string::npos) << text;
    EXPECT_NE(text.find("the networks found nothing at the click; the mask is its like-intensity region within 60 mm"),
              std::string::npos)
      << text;
  }
  ExpectRefused("--input " + (root / "soft-default.nii.gz").string() + " --click 24,24,16 --click-space index" +
                  background + " --nothing-found maybe",
                { "--nothing-found", "maybe", "like-intensity or error" });
  ExpectRefused("--input " + (root / "soft-default.nii.gz").string() + " --click 24,24,16 --click-space index" +
                  background + " --nothing-found-radius 0",
                { "--nothing-found-radius", "> 0 mm" });
}

TEST_F(DivAttentionSegmentInputCli, AMaskThatMissesTheClickIsNothingFoundExitThree)
{
  // The case: 64^3 voxels all at 3000 HU gave 49 mL that missed the click, exit 0. A volume of one value
  // holds no object: an error.
  Write(Volume({ { 64, 64, 64 } }, 2.0, 3000.0f), root / "bright.nii.gz");
  ExpectRefused("--input " + (root / "bright.nii.gz").string() + " --click 32,32,32 --click-space index" +
                  BundledModels(),
                { "bright.nii.gz", "every voxel holds the same value (3000)" });
  // Models that say "background" everywhere: the coarse mask is empty, the refinement on the crop around the click
  // finds nothing either. With --nothing-found error: "nothing found at the click", exit status 3, no mask and no
  // probability written (the default writes the click's like-intensity region: the next test).
  auto chest = Volume({ { 48, 48, 32 } }, 2.0, 40.0f);
  chest->SetPixel({ { 0, 0, 0 } }, 45.0f);
  Write(chest, root / "soft.nii.gz");
  WriteConstantModels(root, "background", -10.0);
  const std::string background = " --coarse-model " + (root / "background-coarse.pt").string() + " --refine-model " +
                                 (root / "background-refine.pt").string();
  const fs::path output = root / "out" / "nothing-mask.nii.gz", probability = root / "out" / "nothing-p.nii.gz";
  const auto     result =
    clitest::Run(DIVATTENTION_SEGMENT_EXE,
                 "--input " + (root / "soft.nii.gz").string() + " --click 24,24,16 --click-space index" + background +
                   " --nothing-found error --output " + output.string() + " --probability " + probability.string());
  EXPECT_EQ(result.exitCode, 3) << result.output;
  EXPECT_NE(result.output.find("DivAttentionSegment: nothing found at the click \"24,24,16\" in \""), std::string::npos)
    << result.output;
  EXPECT_NE(result.output.find("(the coarse stage found nothing, nor did the refinement on a crop around the click); "
                               "no mask written"),
            std::string::npos)
    << result.output;
  EXPECT_FALSE(fs::exists(output));
  EXPECT_FALSE(fs::exists(probability));


  // The bundled demo, by contrast, gives a mask that holds its click.
  const fs::path demoMask = root / "out" / "demo-mask.nii.gz";
  const auto     demo =
    clitest::Run(DIVATTENTION_SEGMENT_EXE, "--input " DIVATTENTION_SOURCE_DIR
                                           "/Models/demo/phantom-ct.nii.gz --click 90.327,51.044,53.437" +
                                             BundledModels() + " --output " + demoMask.string());
  ASSERT_EQ(demo.exitCode, 0) << demo.output;
  auto mask = itk::ImageFileReader<itk::Image<uint8_t, 3>>::New();
  mask->SetFileName(demoMask.string());
  mask->Update();
  itk::Point<double, 3> click;
  click[0] = 90.327;
  click[1] = 51.044;
  click[2] = 53.437;
  itk::Image<uint8_t, 3>::IndexType index;
  ASSERT_TRUE(mask->GetOutput()->TransformPhysicalPointToIndex(click, index));
  EXPECT_EQ(mask->GetOutput()->GetPixel(index), 1);
}
