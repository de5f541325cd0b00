// DivAttentionTrain's bad inputs as a user meets them: every one is a one-line message naming the input and the
// problem, a non-zero exit, and no output directory (no split.json, checkpoint or model-best.pt) left behind.
#include "divaCliTestSupport.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using diva::clitest::WriteCase;
using diva::clitest::WriteText;

namespace
{
class DivAttentionTrainCli : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite()
  {
    root = diva::clitest::MakeScratch("train");
    for (const char * id : { "c0", "c1", "c2" })
    {
      WriteCase(root, id);
    }
    WriteCase(root, "grid", 1, 12); // label with 12 slices on a 16-slice CT
    WriteCase(root, "binary", 2);   // label value 2 only
    WriteText(root / "good.csv", "image,label,id\nc0_ct.nii.gz,c0_label.nii.gz,c0\nc1_ct.nii.gz,c1_label.nii.gz,c1\n"
                                 "c2_ct.nii.gz,c2_label.nii.gz,c2\n");
    WriteText(root / "grid.csv", "c0_ct.nii.gz,c0_label.nii.gz,c0\nc1_ct.nii.gz,c1_label.nii.gz,c1\n"
                                 "grid_ct.nii.gz,grid_label.nii.gz,grid\n");
    WriteText(root / "missing.csv", "c0_ct.nii.gz,c0_label.nii.gz,c0\nc1_ct.nii.gz,c1_label.nii.gz,c1\n"
                                    "gone_ct.nii.gz,gone_label.nii.gz,gone\n");
    WriteText(root / "binary.csv", "c0_ct.nii.gz,c0_label.nii.gz,c0\nc1_ct.nii.gz,c1_label.nii.gz,c1\n"
                                   "binary_ct.nii.gz,binary_label.nii.gz,binary\n");
    WriteText(root / "malformed.csv", "c0_ct.nii.gz,c0_label.nii.gz,c0\nonly-one-field\n");
    WriteText(root / "syntax.json", "{ \"epochs\": ");
    WriteText(root / "unknown.json", "{ \"epochs\": 2, \"bogus_key\": 1 }");
    WriteText(root / "type.json", "{ \"epochs\": \"ten\" }");
    WriteText(root / "split-bad.json", "{ \"train\": 5 }");
    WriteText(root / "a-file", "not a directory");
    fs::create_directories(root / "empty-run");
  }

  // A good command line but for what the test adds: tiny patches, one thread.
  static std::string
  Good(const std::string & dataset = "good.csv", const fs::path & output = Output(), bool patch = true)
  {
    return "--dataset " + (root / dataset).string() + " --output-dir " + output.string() +
           (patch ? " --patch 16,16,16" : "") + " --spacing 2,2,2 --no-progress --threads 1";
  }

  static fs::path
  Output()
  {
    return root / ("out-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
  }

  static void
  ExpectFailure(const std::string & arguments, const std::vector<std::string> & fragments, int exitCode = 1)
  {
    diva::clitest::ExpectFailure(DIVATTENTION_TRAIN_EXE, "DivAttentionTrain", arguments, fragments, { Output() },
                                 exitCode);
  }

  static inline fs::path root;
};
} // namespace

TEST_F(DivAttentionTrainCli, MissingDataset)
{
  ExpectFailure("--dataset " + (root / "nowhere").string() + " --output-dir " + Output().string(),
                { "nowhere", "does not exist" });
}

TEST_F(DivAttentionTrainCli, MissingOutputDirectory)
{
  ExpectFailure("--dataset " + (root / "good.csv").string(), { "--output-dir", "required" }, 2);
}

TEST_F(DivAttentionTrainCli, UnknownLayout)
{
  ExpectFailure(Good() + " --layout spreadsheet", { "layout", "spreadsheet" });
}

TEST_F(DivAttentionTrainCli, LabelsNotNumbers)
{
  ExpectFailure(Good() + " --labels 1,x", { "--labels", "\"1,x\"" });
}

TEST_F(DivAttentionTrainCli, StageThree)
{
  ExpectFailure(Good() + " --stage 3", { "stage must be 1 or 2", "3" });
}

TEST_F(DivAttentionTrainCli, UnknownModel)
{
  ExpectFailure(Good() + " --model foo", { "model must be", "'foo'" });
}

TEST_F(DivAttentionTrainCli, UnknownPreset)
{
  ExpectFailure(Good() + " --preset huge", { "preset must be paper or small", "'huge'" });
}

TEST_F(DivAttentionTrainCli, UnknownInstances)
{
  ExpectFailure(Good() + " --instances tumours", { "instances must be", "'tumours'" });
}

TEST_F(DivAttentionTrainCli, UnknownSplitScheme)
{
  ExpectFailure(Good() + " --split-scheme random", { "split scheme", "'random'" });
}

TEST_F(DivAttentionTrainCli, BatchSizeZero)
{
  ExpectFailure(Good() + " --batch-size 0", { "batch size must be >= 1" });
}

TEST_F(DivAttentionTrainCli, NegativeLearningRate)
{
  ExpectFailure(Good() + " --lr -1", { "learning rate must be >= 0" });
}

TEST_F(DivAttentionTrainCli, PatchNotThreeNumbers)
{
  ExpectFailure(Good("good.csv", Output(), false) + " --patch 96,96",
                { "--patch", "\"96,96\"", "3 comma-separated numbers" });
}

TEST_F(DivAttentionTrainCli, EpochsNotANumber)
{
  ExpectFailure(Good() + " --epochs many", { "epochs", "many" }, 2);
}

TEST_F(DivAttentionTrainCli, ConfigMissing)
{
  ExpectFailure("--config " + (root / "none.json").string(), { "none.json", "cannot be read" });
}

TEST_F(DivAttentionTrainCli, ConfigSyntaxError)
{
  ExpectFailure("--config " + (root / "syntax.json").string() + " " + Good(), { "syntax.json", "parse" });
}

TEST_F(DivAttentionTrainCli, ConfigUnknownKey)
{
  ExpectFailure("--config " + (root / "unknown.json").string() + " " + Good(),
                { "unknown.json", "unknown key \"bogus_key\"" });
}

TEST_F(DivAttentionTrainCli, ConfigWrongType)
{
  ExpectFailure("--config " + (root / "type.json").string() + " " + Good(), { "type.json", "key \"epochs\"" });
}

TEST_F(DivAttentionTrainCli, ResumeWithoutCheckpoint)
{
  ExpectFailure("--resume " + (root / "empty-run").string(), { "latest.pt", "cannot be read" });
  EXPECT_TRUE(fs::is_empty(root / "empty-run")) << "the resumed directory was written to";
}

TEST_F(DivAttentionTrainCli, SplitFileMalformed)
{
  ExpectFailure(Good() + " --split " + (root / "split-bad.json").string(), { "split-bad.json", "\"train\" list" });
}

TEST_F(DivAttentionTrainCli, SplitFileMissing)
{
  ExpectFailure(Good() + " --split " + (root / "no-split.json").string(), { "no-split.json", "cannot be read" });
}

TEST_F(DivAttentionTrainCli, CsvLineMalformed)
{
  ExpectFailure(Good("malformed.csv"), { "malformed.csv", "line 2", "expected image,label" });
}

TEST_F(DivAttentionTrainCli, StrictGridMismatch)
{
  ExpectFailure(Good("grid.csv") + " --strict", { "\"grid\"", "different grids", "--strict" });
}

TEST_F(DivAttentionTrainCli, StrictMissingFile)
{
  ExpectFailure(Good("missing.csv") + " --strict", { "\"gone\"", "gone_ct.nii.gz", "does not exist", "--strict" });
}

TEST_F(DivAttentionTrainCli, StrictNonBinaryLabel)
{
  ExpectFailure(Good("binary.csv") + " --strict --expect-binary --labels 1,2",
                { "\"binary\"", "not binary", "--strict" });
}

TEST_F(DivAttentionTrainCli, StrictNoTargetVoxel)
{
  ExpectFailure(Good() + " --strict --labels 7", { "\"c0\"", "no voxel of the target label(s) 7", "--strict" });
}

TEST_F(DivAttentionTrainCli, StageOneModelMissing)
{
  ExpectFailure(Good() + " --preset small --stage 2 --model espnet --stage1-model " + (root / "no-model.pt").string(),
                { "no-model.pt" });
}

TEST_F(DivAttentionTrainCli, OutputDirectoryUnderAFile)
{
  const fs::path output = root / "a-file" / "run";
  diva::clitest::ExpectFailure(DIVATTENTION_TRAIN_EXE, "DivAttentionTrain",
                               Good("good.csv", output) + " --preset small --epochs 1 --steps-per-epoch 1",
                               { "--output-dir", output.string() }, {});
  EXPECT_EQ(fs::file_size(root / "a-file"), 15u);
}

TEST_F(DivAttentionTrainCli, UnknownDevice)
{
  ExpectFailure(Good() + " --device gpu", { "device \"gpu\"" });
}
