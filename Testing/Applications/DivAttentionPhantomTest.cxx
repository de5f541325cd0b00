// DivAttentionPhantom's bad inputs as a user meets them: every one is a one-line message naming the option or file and
// the problem, a non-zero exit, and no output directory (no imagesTr/, labelsTr/ or dataset.json) left behind.
#include "divaCliTestSupport.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace fs = std::filesystem;

namespace
{
class DivAttentionPhantomCli : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite()
  {
    root = diva::clitest::MakeScratch("phantom");
    diva::clitest::WriteText(root / "a-file", "not a directory");
    diva::clitest::WriteText(root / "labels.nii.gz", "not an image");
  }

  static fs::path
  Output()
  {
    return root / ("out-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  }

  // Fails early whatever the test adds: one small case were it to succeed.
  static void
  ExpectFailure(const std::string & options, const std::vector<std::string> & fragments, int exitCode = 1)
  {
    diva::clitest::ExpectFailure(DIVATTENTION_PHANTOM_EXE, "DivAttentionPhantom",
                                 "--output-dir " + Output().string() + " " + options, fragments, { Output() },
                                 exitCode);
  }

  static inline fs::path root;
};
} // namespace

TEST_F(DivAttentionPhantomCli, MissingOutputDirectory)
{
  diva::clitest::ExpectFailure(DIVATTENTION_PHANTOM_EXE, "DivAttentionPhantom", "--cases 2", { "output-dir" }, {}, 2);
}

TEST_F(DivAttentionPhantomCli, ZeroCases)
{
  ExpectFailure("--cases 0", { "--cases", "\"0\"" });
}

TEST_F(DivAttentionPhantomCli, NegativeCases)
{
  ExpectFailure("--cases -3", { "--cases", "\"-3\"" });
}

TEST_F(DivAttentionPhantomCli, CasesNotANumber)
{
  ExpectFailure("--cases many", { "cases", "many" }, 2);
}

TEST_F(DivAttentionPhantomCli, FieldOfViewTwoNumbers)
{
  ExpectFailure("--fov 1,2", { "--fov", "\"1,2\"" });
}

TEST_F(DivAttentionPhantomCli, FieldOfViewZero)
{
  ExpectFailure("--fov 0,100,100", { "field of view must be positive", "0 mm" });
}

TEST_F(DivAttentionPhantomCli, SliceThicknessReversed)
{
  ExpectFailure("--slice-thickness 5,2", { "slice thickness range 5,2", "ordered" });
}

TEST_F(DivAttentionPhantomCli, InPlaneSpacingZero)
{
  ExpectFailure("--in-plane-spacing 0", { "in-plane spacing must be positive", "0 mm" });
}

TEST_F(DivAttentionPhantomCli, LesionDiameterReversed)
{
  ExpectFailure("--lesion-diameter 60,5", { "lesion diameter range" });
}

TEST_F(DivAttentionPhantomCli, DeformationTooLarge)
{
  ExpectFailure("--deformation 0.5", { "shape deformation in [0, 0.3]" });
}

TEST_F(DivAttentionPhantomCli, NegativeNoise)
{
  ExpectFailure("--noise -1", { "noise, texture and blur must be >= 0" });
}

TEST_F(DivAttentionPhantomCli, LabelMapMissing)
{
  ExpectFailure("--label-map " + (root / "no-labels.nii.gz").string(), { "no-labels.nii.gz", "does not exist" });
}

TEST_F(DivAttentionPhantomCli, LabelMapNotAnImage)
{
  ExpectFailure("--label-map " + (root / "labels.nii.gz").string(), { "labels.nii.gz", "cannot be read" });
}

TEST_F(DivAttentionPhantomCli, OutputDirectoryUnderAFile)
{
  const fs::path output = root / "a-file" / "dataset";
  diva::clitest::ExpectFailure(DIVATTENTION_PHANTOM_EXE, "DivAttentionPhantom",
                               "--output-dir " + output.string() + " --cases 1", { "cannot create", output.string() },
                               {});
  EXPECT_EQ(fs::file_size(root / "a-file"), 15u);
}
