// DivAttentionEvaluate's bad inputs as a user meets them: every one is a one-line message naming the option or file and
// the problem, a non-zero exit, and no CSV or Markdown output left behind.
#include "divaCliTestSupport.h"
#include "divaMUnet.h"
#include "divaModelFile.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using diva::clitest::WriteText;

namespace
{
class DivAttentionEvaluateCli : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite()
  {
    root = diva::clitest::MakeScratch("evaluate");
    for (const char * id : { "c0", "c1", "c2" })
    {
      diva::clitest::WriteCase(root, id);
    }
    WriteText(root / "good.csv", "c0_ct.nii.gz,c0_label.nii.gz,c0\nc1_ct.nii.gz,c1_label.nii.gz,c1\n"
                                 "c2_ct.nii.gz,c2_label.nii.gz,c2\n");
    WriteText(root / "split-bad.json", "[ \"c0\" ]");
    WriteText(root / "garbage.pt", "this is not a model file");
    diva::ModelDescription description;
    description.preset = "small";
    description.role = "coarse";
    description.inputChannels = { "CT (HU)", "click map" };
    description.preprocessing.targetSpacing = { { 2.0, 2.0, 2.0 } };
    description.preprocessing.patchSize = { { 16, 16, 16 } };
    torch::manual_seed(1);
    diva::MUnet coarse(diva::MUnetOptions::Preset("small").in_channels(2).num_stages(3));
    diva::SaveModel((root / "coarse.pt").string(), *coarse, description);
  }

  static fs::path
  Output()
  {
    return root / ("out-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + ".csv");
  }

  // A good command line but for what the test adds, writing the per-sample CSV that must not appear.
  static void
  ExpectFailure(const std::string &              options,
                const std::vector<std::string> & fragments,
                const std::string &              models = "",
                int                              exitCode = 1)
  {
    const std::string model = models.empty() ? " --model a=" + (root / "coarse.pt").string() : models;
    diva::clitest::ExpectFailure(DIVATTENTION_EVALUATE_EXE, "DivAttentionEvaluate",
                                 "--dataset " + (root / "good.csv").string() + model + " --csv " + Output().string() +
                                   " --clicks 1 " + options,
                                 fragments, { Output() }, exitCode);
  }

  static inline fs::path root;
};
} // namespace

TEST_F(DivAttentionEvaluateCli, ModelWithoutName)
{
  ExpectFailure("", { "--model expects NAME=file", "coarse.pt" }, " --model " + (root / "coarse.pt").string(), 2);
}

TEST_F(DivAttentionEvaluateCli, ModelFileMissing)
{
  ExpectFailure("", { "--model a", "none.pt", "does not exist" }, " --model a=" + (root / "none.pt").string());
}

TEST_F(DivAttentionEvaluateCli, ModelFileCorrupt)
{
  ExpectFailure("", { "garbage.pt", "not a DivAttention model file" }, " --model a=" + (root / "garbage.pt").string());
}

TEST_F(DivAttentionEvaluateCli, ModelFileIsAnImage)
{
  ExpectFailure("", { "c0_ct.nii.gz" }, " --model a=" + (root / "c0_ct.nii.gz").string());
}

TEST_F(DivAttentionEvaluateCli, UnknownSubset)
{
  ExpectFailure("--subset holdout", { "--subset", "\"holdout\"" }, "", 2);
}

TEST_F(DivAttentionEvaluateCli, LabelNotANumber)
{
  ExpectFailure("--label a", { "--label", "\"a\"" });
}

TEST_F(DivAttentionEvaluateCli, DatasetMissing)
{
  diva::clitest::ExpectFailure(DIVATTENTION_EVALUATE_EXE, "DivAttentionEvaluate",
                               "--dataset " + (root / "nowhere").string() +
                                 " --model a=" + (root / "coarse.pt").string() + " --csv " + Output().string(),
                               { "nowhere", "does not exist" }, { Output() });
}

TEST_F(DivAttentionEvaluateCli, DatasetOptionMissing)
{
  diva::clitest::ExpectFailure(DIVATTENTION_EVALUATE_EXE, "DivAttentionEvaluate",
                               "--model a=" + (root / "coarse.pt").string(), { "dataset" }, {}, 2);
}

TEST_F(DivAttentionEvaluateCli, SplitFileMalformed)
{
  ExpectFailure("--split " + (root / "split-bad.json").string(), { "split-bad.json", "not a JSON object" });
}

TEST_F(DivAttentionEvaluateCli, CsvInMissingDirectory)
{
  const fs::path csv = root / "no-such-dir" / "samples.csv";
  diva::clitest::ExpectFailure(DIVATTENTION_EVALUATE_EXE, "DivAttentionEvaluate",
                               "--dataset " + (root / "good.csv").string() +
                                 " --model a=" + (root / "coarse.pt").string() + " --csv " + csv.string(),
                               { "--csv", "no-such-dir", "does not exist" }, { csv, csv.parent_path() });
}

TEST_F(DivAttentionEvaluateCli, UnknownDevice)
{
  ExpectFailure("--device gpu", { "device \"gpu\"" });
}

TEST_F(DivAttentionEvaluateCli, UnknownInstances)
{
  ExpectFailure("--instances tumours", { "instances must be", "'tumours'" });
}
