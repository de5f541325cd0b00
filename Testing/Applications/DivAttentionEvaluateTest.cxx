// DivAttentionEvaluate's bad inputs as a user meets them: every one is a one-line message naming the option or file and
// the problem, a non-zero exit, and no CSV or Markdown output left behind. And the whole-pipeline mode on a tiny
// phantom dataset with the bundled models: one CSV row per (case, instance, click, model), metrics that agree with the
// masks it wrote, the same clicks for every model and run, and a Table-1 Markdown table.
#include "DivAttentionTestFiles.h"
#include "divaCliTestSupport.h"
#include "divaMUnet.h"
#include "divaModelFile.h"
#include "itkConfidenceConnectedImageFilter.h"
#include "itkImageFileReader.h"
#include "itkPhantomDataset.h"
#include "itkSegmentationInputCheck.h"
#include "itkWriteImageAtomically.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
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
    fs::create_directories(root / "masks");
  }

  // A phantom at 8 mm (48 x 38 x 33 voxels) with its spleen (label 2) as the organ: made once, by the tests that
  // run the whole pipeline.
  static const fs::path &
  Phantoms()
  {
    static const fs::path path = []()
    {
      itk::PhantomDataset::Options options;
      options.outputDirectory = (root / "phantoms").string();
      options.cases = 1;
      options.seed = 11;
      options.inPlaneSpacing = 8.0;
      options.sliceThickness = { { 8.0, 8.0 } };
      options.organLesions = 0;
      options.nodules = 0;
      itk::PhantomDataset::Write(options);
      return fs::path(options.outputDirectory);
    }();
    return path;
  }

  // The bundled models of the source tree (this file is Testing/Applications/ in it), or $DIVATTENTION_MODEL_DIR's.
  static std::string
  Bundled(const std::string & file)
  {
    const char *   directory = std::getenv("DIVATTENTION_MODEL_DIR");
    const fs::path models = directory != nullptr
                              ? fs::path(directory)
                              : fs::path(__FILE__).parent_path().parent_path().parent_path() / "Models";
    return (models / file).string();
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

// ---- Whole-pipeline mode ----

namespace
{
std::vector<std::vector<std::string>>
ReadCsv(const fs::path & path)
{
  std::vector<std::vector<std::string>> rows;
  std::ifstream                         in(path);
  std::string                           line;
  while (std::getline(in, line))
  {
    std::vector<std::string> fields;
    std::stringstream        stream(line);
    std::string              field;
    while (std::getline(stream, field, ','))
    {
      fields.push_back(field);
    }
    if (!line.empty() && line.back() == ',')
    {
      fields.emplace_back(); // a trailing empty field
    }
    rows.push_back(fields);
  }
  return rows;
}

using itk::ReadImage;
} // namespace

TEST_F(DivAttentionEvaluateCli, WholePipelineRowsAgreeWithTheMasksAndClicksAreShared)
{
  const fs::path dataset = Phantoms();
  const fs::path csv = root / "pipeline.csv", table = root / "pipeline.md", masks = root / "masks";
  // ESPNet `small` is the cheapest stage 2; one window of stage 1 (--coarse-max-extent 96) keeps the run short.
  const std::string common = "--dataset " + dataset.string() + " --subset all --label 2 --clicks 1 --seed 5 " +
                             "--threads 2 --coarse-max-extent 96 --coarse-model " + Bundled("coarse-munet-small.pt");
  const auto run =
    diva::clitest::Run(DIVATTENTION_EVALUATE_EXE, common + " -m ESPNet=" + Bundled("refine-espnet-small.pt") +
                                                    " -m ESPNet+div=" + Bundled("refine-espnet-small-divattention.pt") +
                                                    " --dataset-name Phantom --csv " + csv.string() + " --markdown " +
                                                    table.string() + " --masks " + masks.string());
  ASSERT_EQ(run.exitCode, 0) << run.output;
  EXPECT_NE(run.output.find("whole pipeline, 1 cases, 1 instances, 1 click(s) each, 3 column(s)"), std::string::npos)
    << run.output;

  const auto rows = ReadCsv(csv);
  ASSERT_EQ(rows.size(), 4u) << diva::testing::ReadFileBytes(
    csv); // header + (1 case x 1 instance x 1 click) x 3 columns
  const std::vector<std::string> header{ "model",     "case",      "instance", "click",   "dice",
                                         "recall",    "precision", "hd95_mm",  "tp",      "fp",
                                         "fn",        "click_x",   "click_y",  "click_z", "fallback_crop",
                                         "structure", "group",     "answer" };
  EXPECT_EQ(rows[0], header);
  // What each mask is: the pipeline's columns say (the networks' mask or a like-intensity answer), stage 1's does not.
  EXPECT_EQ(rows[1].back(), "");
  for (size_t r = 2; r < rows.size(); ++r)
  {
    const auto & answer = rows[r].back();
    EXPECT_TRUE(answer == "networks" || answer == "like-intensity" || answer == "other-tissue" || answer == "nothing")
      << answer;
  }
  EXPECT_EQ(rows[1][0], "Stage 1 only"); // the stage-1 column first, then the models in the order given
  EXPECT_EQ(rows[2][0], "ESPNet");
  EXPECT_EQ(rows[3][0], "ESPNet+div");

  auto       label = ReadImage<itk::Image<uint8_t, 3>>(dataset / "labelsTr" / (rows[1][1] + ".nii.gz"));
  const auto labelPixels = label->GetBufferedRegion().GetNumberOfPixels();
  for (size_t r = 1; r < rows.size(); ++r)
  {
    const auto & row = rows[r];
    ASSERT_EQ(row.size(), header.size());
    // Every model saw the same click, and that click lies in the reference object.
    for (size_t c = 11; c <= 13; ++c)
    {
      EXPECT_EQ(row[c], rows[1][c]);
    }
    itk::Image<uint8_t, 3>::PointType click;
    for (unsigned d = 0; d < 3; ++d)
    {
      click[d] = std::stod(row[11 + d]);
    }
    itk::Index<3> index;
    ASSERT_TRUE(label->TransformPhysicalPointToIndex(click, index));
    EXPECT_EQ(label->GetPixel(index), 2);

    // The ratios are those of the counts, and the counts are those of the mask the run wrote.
    const double tp = std::stod(row[8]), fp = std::stod(row[9]), fn = std::stod(row[10]);
    EXPECT_NEAR(std::stod(row[4]), tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 1.0, 1e-7);
    EXPECT_NEAR(std::stod(row[5]), tp + fn > 0 ? tp / (tp + fn) : 1.0, 1e-7);
    EXPECT_NEAR(std::stod(row[6]), tp + fp > 0 ? tp / (tp + fp) : 1.0, 1e-7);
    std::string safe = row[0]; // the application's file-name form of the model name
    std::replace(safe.begin(), safe.end(), ' ', '_');
    const fs::path maskFile = masks / (row[1] + "_i" + row[2] + "_c0_" + safe + ".nii.gz");
    ASSERT_TRUE(fs::exists(maskFile)) << maskFile;
    auto mask = ReadImage<itk::Image<uint8_t, 3>>(maskFile);
    ASSERT_EQ(mask->GetBufferedRegion().GetNumberOfPixels(), labelPixels);
    double both = 0, maskOnly = 0, labelOnly = 0;
    for (size_t i = 0; i < labelPixels; ++i)
    {
      const bool inMask = mask->GetBufferPointer()[i] != 0, inLabel = label->GetBufferPointer()[i] == 2;
      both += inMask && inLabel;
      maskOnly += inMask && !inLabel;
      labelOnly += !inMask && inLabel;
    }
    EXPECT_EQ(both, tp) << row[0];
    EXPECT_EQ(maskOnly, fp) << row[0];
    EXPECT_EQ(labelOnly, fn) << row[0];
    EXPECT_TRUE(row[7] == "nan" || std::stod(row[7]) >= 0.0) << row[7]; // NaN: a mask is empty
  }
  EXPECT_EQ(rows[1][14], ""); // the fallback crop is a stage-2 matter
  EXPECT_TRUE(rows[2][14] == "0" || rows[2][14] == "1");

  const std::string markdown = diva::testing::ReadFileBytes(table);
  EXPECT_NE(markdown.find("| Model | Phantom Dice | Recall | Precision | HD95 (mm) | Samples |"), std::string::npos)
    << markdown;
  for (const char * model : { "| Stage 1 only | ", "| ESPNet | ", "| ESPNet+div | " })
  {
    EXPECT_NE(markdown.find(model), std::string::npos) << markdown;
  }

  // The same seed gives the same CSV row for a model whatever else runs beside it: same click, same mask.
  const fs::path again = root / "pipeline-again.csv";
  const auto     second = diva::clitest::Run(
        DIVATTENTION_EVALUATE_EXE, common + " --no-stage1 -m ESPNet+div=" + Bundled("refine-espnet-small-divattention.pt") +
                                     " --csv " + again.string());
  ASSERT_EQ(second.exitCode, 0) << second.output;
  const auto rowsAgain = ReadCsv(again);
  ASSERT_EQ(rowsAgain.size(), 2u);
  EXPECT_EQ(rowsAgain[1], rows[3]);
}

// --stage1-mask: the stage-1 column scores what the pipeline takes from stage 1 for the click (default "clicked": the
// coarse component at the click) or every coarse object ("whole"); the clicked mask lies within the whole one and,
// where the pipeline found the object, holds a voxel within the click tolerance (5.2 mm for the bundled 3 mm stage 1);
// any other value is refused naming the option.
TEST_F(DivAttentionEvaluateCli, Stage1MaskScoresTheClickedComponentOrTheWholeCoarseMask)
{
  const fs::path    dataset = Phantoms();
  const std::string common = "--dataset " + dataset.string() + " --subset all --label 2 --clicks 1 --seed 5 " +
                             "--threads 2 --coarse-max-extent 96 --coarse-model " + Bundled("coarse-munet-small.pt") +
                             " -m ESPNet=" + Bundled("refine-espnet-small.pt");
  std::map<std::string, itk::Image<uint8_t, 3>::Pointer> stage1;
  std::vector<std::vector<std::string>>                  rows;
  for (const std::string mode : { "", "clicked", "whole" })
  {
    const fs::path masks = root / ("stage1-masks-" + (mode.empty() ? std::string("default") : mode));
    const fs::path csv = masks.string() + ".csv";
    fs::create_directories(masks);
    const auto run =
      diva::clitest::Run(DIVATTENTION_EVALUATE_EXE, common + (mode.empty() ? "" : " --stage1-mask " + mode) +
                                                      " --masks " + masks.string() + " --csv " + csv.string());
    ASSERT_EQ(run.exitCode, 0) << run.output;
    rows = ReadCsv(csv);
    ASSERT_EQ(rows.size(), 3u) << diva::testing::ReadFileBytes(csv);
    ASSERT_EQ(rows[2][0], "ESPNet");
    ASSERT_NE(rows[2][8], "0") << "the pipeline found the spleen: its stage 1 has a clicked component";
    stage1[mode] =
      ReadImage<itk::Image<uint8_t, 3>>(masks / (rows[1][1] + "_i" + rows[1][2] + "_c0_Stage_1_only.nii.gz"));
  }
  const auto   count = stage1["whole"]->GetBufferedRegion().GetNumberOfPixels();
  const auto * clicked = stage1["clicked"]->GetBufferPointer();
  const auto * whole = stage1["whole"]->GetBufferPointer();
  const auto * byDefault = stage1[""]->GetBufferPointer();
  std::size_t  clickedVoxels = 0;
  for (std::size_t i = 0; i < count; ++i)
  {
    ASSERT_TRUE(clicked[i] == 0 || whole[i] != 0) << "voxel " << i << ": the clicked component outside the coarse mask";
    ASSERT_EQ(byDefault[i], clicked[i]) << "voxel " << i << ": the default is not 'clicked'";
    clickedVoxels += clicked[i] != 0;
  }
  EXPECT_GT(clickedVoxels, 0u);
  itk::Image<uint8_t, 3>::PointType click;
  for (unsigned d = 0; d < 3; ++d)
  {
    click[d] = std::stod(rows[1][11 + d]);
  }
  EXPECT_TRUE(itk::SegmentationInputCheck::ContainsClickWithin(stage1["clicked"].GetPointer(), click, 5.2));

  const auto bad = diva::clitest::Run(DIVATTENTION_EVALUATE_EXE, common + " --stage1-mask largest");
  EXPECT_NE(bad.exitCode, 0);
  EXPECT_NE(bad.output.find("--stage1-mask must be 'clicked' or 'whole', not 'largest'"), std::string::npos)
    << bad.output;
}

// --refinement-band reaches the whole pipeline's filter: the band off (-1, the refinement's mask as it is) scores
// another mask than the default band on the same click; a value that is not a number is refused naming it.
TEST_F(DivAttentionEvaluateCli, RefinementBandReachesTheWholePipeline)
{
  const fs::path    dataset = Phantoms();
  const std::string common = "--dataset " + dataset.string() + " --subset all --label 2 --clicks 1 --seed 5 " +
                             "--threads 2 --coarse-max-extent 96 --no-stage1 --coarse-model " +
                             Bundled("coarse-munet-small.pt") +
                             " -m UNETR+div=" + Bundled("refine-unetr-small-divattention.pt");
  std::vector<std::vector<std::vector<std::string>>> tables;
  for (const std::string band : { "0.5", "-1" })
  {
    const fs::path csv = root / ("band" + band + ".csv");
    const auto     run =
      diva::clitest::Run(DIVATTENTION_EVALUATE_EXE, common + " --refinement-band " + band + " --csv " + csv.string());
    ASSERT_EQ(run.exitCode, 0) << run.output;
    tables.push_back(ReadCsv(csv));
    ASSERT_EQ(tables.back().size(), 2u) << diva::testing::ReadFileBytes(csv);
  }
  // Same click (columns 11-13), other mask: true and false positives (columns 8-9) differ.
  for (size_t c = 11; c <= 13; ++c)
  {
    EXPECT_EQ(tables[0][1][c], tables[1][1][c]);
  }
  EXPECT_TRUE(tables[0][1][8] != tables[1][1][8] || tables[0][1][9] != tables[1][1][9])
    << "--refinement-band -1 scored the default's mask (tp " << tables[0][1][8] << ", fp " << tables[0][1][9] << ")";
  const auto bad = diva::clitest::Run(DIVATTENTION_EVALUATE_EXE, common + " --refinement-band abc");
  EXPECT_EQ(bad.exitCode, 2) << bad.output;
  EXPECT_NE(bad.output.find("refinement-band"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("'abc'"), std::string::npos) << bad.output;
}

TEST_F(DivAttentionEvaluateCli, WholePipelineBadInputs)
{
  const std::string coarse = Bundled("coarse-munet-small.pt"), refine = Bundled("refine-espnet-small.pt");
  // A one-file model needs a stage-1 model to run after.
  ExpectFailure("", { "--model b gives one model file", "--coarse-model" },
                " --model a=" + coarse + "," + refine + " --model b=" + refine, 2);
  ExpectFailure("--coarse-model " + coarse + " --stage 2", { "--stage is for one-stage mode" }, " --model a=" + refine,
                2);
  ExpectFailure("--coarse-model " + (root / "none.pt").string(), { "--coarse-model", "none.pt", "does not exist" },
                " --model a=" + refine);
  ExpectFailure("--coarse-model " + coarse, { "--model a", "none.pt", "does not exist" },
                " --model a=" + (root / "none.pt").string());
  ExpectFailure("--coarse-model " + coarse + " --threshold 1.5", { "--threshold", "1.5" }, " --model a=" + refine);
  ExpectFailure("--coarse-model " + coarse + " --masks " + (root / "no-such-dir").string(),
                { "--masks", "no-such-dir", "does not exist" }, " --model a=" + refine);
  ExpectFailure("--masks " + (root / "masks").string(), { "--masks", "whole pipeline" }, "", 2);
  // Stage-1 and stage-2 models swapped: named before any case is read.
  ExpectFailure("--coarse-model " + refine, { "--coarse-model", "swapped" }, " --model a=" + coarse);
  ExpectFailure("--coarse-model " + coarse, { "--model a", "swapped" }, " --model a=" + coarse);
}

// The real-data gate on a phantom given in the TotalSegmentator layout: per structure, stage 1 alone, the whole
// pipeline and ITK region growing from the same click, each row what its method gives, and the means per group.
TEST_F(DivAttentionEvaluateCli, RealDataGateScoresThreeMethodsPerStructureAndGroupsThem)
{
  const fs::path phantoms = Phantoms();
  const fs::path dataset = root / "totalseg", csv = root / "gate.csv", table = root / "gate.md";
  fs::remove_all(dataset);
  fs::create_directories(dataset / "p0" / "segmentations");
  fs::copy_file(phantoms / "imagesTr" / "phantom_000.nii.gz", dataset / "p0" / "ct.nii.gz");
  using MaskType = itk::Image<uint8_t, 3>;
  const auto labels = ReadImage<MaskType>(phantoms / "labelsTr" / "phantom_000.nii.gz");
  // The group comes from the name alone: the spleen (label 2) saved as "spleen" is an organ, the left kidney (label 4)
  // saved as "aorta" lands among the vessels; an empty mask ("gallbladder") is left out and counted.
  for (const auto & [name, value] :
       std::vector<std::pair<std::string, int>>{ { "spleen", 2 }, { "aorta", 4 }, { "gallbladder", 99 } })
  {
    auto mask = MaskType::New();
    mask->CopyInformation(labels);
    mask->SetRegions(labels->GetLargestPossibleRegion());
    mask->Allocate();
    for (size_t i = 0; i < mask->GetBufferedRegion().GetNumberOfPixels(); ++i)
    {
      mask->GetBufferPointer()[i] = labels->GetBufferPointer()[i] == value ? 1 : 0;
    }
    itk::WriteImageAtomically(mask.GetPointer(), (dataset / "p0" / "segmentations" / (name + ".nii.gz")).string());
  }
  const auto run = diva::clitest::Run(
    DIVATTENTION_EVALUATE_EXE, "--dataset " + dataset.string() +
                                 " --subset all --clicks 1 --click-strategy interior --seed 5 --threads 2 " +
                                 "--coarse-max-extent 96 --coarse-model " + Bundled("coarse-munet-small.pt") +
                                 " -m Pipeline=" + Bundled("refine-espnet-small.pt") +
                                 " --region-growing --groups --csv " + csv.string() + " --markdown " + table.string());
  ASSERT_EQ(run.exitCode, 0) << run.output;
  EXPECT_NE(run.output.find("1 named structure(s) left out"), std::string::npos) << run.output;

  const auto rows = ReadCsv(csv);
  ASSERT_EQ(rows.size(), 7u) << diva::testing::ReadFileBytes(
    csv); // header + 2 structures x (stage 1, pipeline, region growing)
  const auto ct = ReadImage<itk::Image<float, 3>>(dataset / "p0" / "ct.nii.gz");
  for (size_t first = 1; first < rows.size(); first += 3)
  {
    const std::string structure = rows[first][15];
    ASSERT_TRUE(structure == "aorta" || structure == "spleen") << structure;
    const int                value = structure == "spleen" ? 2 : 4;
    std::vector<std::string> methods;
    std::set<std::string>    outcomes; // tp/fp/fn of each method
    for (size_t r = first; r < first + 3; ++r)
    {
      methods.push_back(rows[r][0]);
      EXPECT_EQ(rows[r][15], structure);
      EXPECT_EQ(rows[r][16], structure == "spleen" ? "organs" : "vessels");
      for (size_t c = 11; c <= 13; ++c)
      {
        EXPECT_EQ(rows[r][c], rows[first][c]); // one click for the three methods
      }
      outcomes.insert(rows[r][8] + "/" + rows[r][9] + "/" + rows[r][10]);
    }
    EXPECT_EQ(methods, (std::vector<std::string>{ "Stage 1 only", "Pipeline", "Region growing" }));
    EXPECT_EQ(outcomes.size(), 3u) << structure << ": the three methods gave the same mask";

    // The region-growing row is ITK's ConfidenceConnectedImageFilter from that click (multiplier 2, 3 iterations),
    // scored against the structure's mask.
    itk::Image<float, 3>::PointType click;
    for (unsigned d = 0; d < 3; ++d)
    {
      click[d] = std::stod(rows[first][11 + d]);
    }
    itk::Index<3> seed;
    ASSERT_TRUE(ct->TransformPhysicalPointToIndex(click, seed));
    EXPECT_EQ(labels->GetPixel(seed), value) << structure << ": the click is not inside the structure";
    auto grow = itk::ConfidenceConnectedImageFilter<itk::Image<float, 3>, MaskType>::New();
    grow->SetInput(ct);
    grow->AddSeed(seed);
    grow->SetMultiplier(2.0);
    grow->SetNumberOfIterations(3);
    grow->SetInitialNeighborhoodRadius(1);
    grow->SetReplaceValue(1);
    grow->Update();
    double tp = 0, fp = 0, fn = 0;
    for (size_t i = 0; i < labels->GetBufferedRegion().GetNumberOfPixels(); ++i)
    {
      const bool grown = grow->GetOutput()->GetBufferPointer()[i] != 0, inside = labels->GetBufferPointer()[i] == value;
      tp += grown && inside;
      fp += grown && !inside;
      fn += !grown && inside;
    }
    EXPECT_EQ(std::stod(rows[first + 2][8]), tp) << structure;
    EXPECT_EQ(std::stod(rows[first + 2][9]), fp) << structure;
    EXPECT_EQ(std::stod(rows[first + 2][10]), fn) << structure;
  }

  // The gate's table: per group, one row per method, the means of that group's rows.
  const std::string markdown = diva::testing::ReadFileBytes(table);
  EXPECT_NE(markdown.find("| Group | Method | Dice | Recall | Precision | HD95 (mm) | Targets | Samples |"),
            std::string::npos)
    << markdown;
  for (const std::string group : { "organs", "vessels" })
  {
    for (const std::string method : { "Stage 1 only", "Pipeline", "Region growing" })
    {
      EXPECT_NE(markdown.find("| " + group + " | " + method + " | "), std::string::npos) << group << method << markdown;
    }
  }
  for (size_t r = 1; r < rows.size(); ++r)
  {
    std::ostringstream cell;
    cell << std::fixed << std::setprecision(3) << "| " << rows[r][16] << " | " << rows[r][0] << " | "
         << std::stod(rows[r][4]) << " | ";
    EXPECT_NE(markdown.find(cell.str()), std::string::npos) << cell.str() << markdown; // one target per group here
  }

  // A label map with --label-names: each named label its own structure, named and grouped.
  WriteText(root / "names.txt", "# id name\n2 spleen\n4 kidney_left\n");
  const fs::path named = root / "named.csv";
  const auto     second = diva::clitest::Run(
        DIVATTENTION_EVALUATE_EXE, "--dataset " + phantoms.string() + " --subset all --clicks 1 --seed 5 --threads 2 " +
                                     "--coarse-max-extent 96 --coarse-model " + Bundled("coarse-munet-small.pt") +
                                     " -m Pipeline=" + Bundled("refine-espnet-small.pt") + " --no-stage1 --label-names " +
                                     (root / "names.txt").string() + " --label 2 --csv " + named.string());
  ASSERT_EQ(second.exitCode, 0) << second.output;
  const auto namedRows = ReadCsv(named);
  ASSERT_EQ(namedRows.size(), 2u) << diva::testing::ReadFileBytes(
    named); // --label 2 picks the spleen among the named labels
  EXPECT_EQ(namedRows[1][2], "2");
  EXPECT_EQ(namedRows[1][15], "spleen");
  EXPECT_EQ(namedRows[1][16], "organs");
}

TEST_F(DivAttentionEvaluateCli, RealDataGateBadInputs)
{
  const std::string coarse = Bundled("coarse-munet-small.pt"), refine = Bundled("refine-espnet-small.pt");
  WriteText(root / "names-bad.txt", "2 spleen extra\n");
  ExpectFailure("--coarse-model " + coarse + " --label-names " + (root / "names-bad.txt").string(),
                { "--label-names", "names-bad.txt", "line 1" }, " --model a=" + refine);
  ExpectFailure("--coarse-model " + coarse + " --label-names " + (root / "none.txt").string(),
                { "--label-names", "none.txt", "cannot read" }, " --model a=" + refine);
  ExpectFailure("--region-growing", { "--region-growing", "whole pipeline" }, "", 2);
  // A structure mask on another grid than its CT: the case is skipped with the reason, and nothing is left to score.
  const fs::path dataset = root / "totalseg-bad";
  fs::remove_all(dataset);
  fs::create_directories(dataset);
  diva::clitest::WriteCase(dataset, "p0");
  fs::create_directories(dataset / "p0" / "segmentations");
  fs::rename(dataset / "p0_ct.nii.gz", dataset / "p0" / "ct.nii.gz");
  auto finer = itk::Image<uint8_t, 3>::New();
  finer->SetRegions(itk::Image<uint8_t, 3>::SizeType{ { 5, 5, 5 } });
  finer->Allocate();
  finer->FillBuffer(1);
  itk::WriteImageAtomically(finer.GetPointer(), (dataset / "p0" / "segmentations" / "spleen.nii.gz").string());
  const auto run = diva::clitest::Run(DIVATTENTION_EVALUATE_EXE, "--dataset " + dataset.string() +
                                                                   " --subset all --clicks 1 --coarse-model " + coarse +
                                                                   " -m a=" + refine + " --csv " + Output().string());
  EXPECT_NE(run.exitCode, 0);
  EXPECT_NE(run.output.find("structure \"spleen\""), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("another grid"), std::string::npos) << run.output;
  EXPECT_FALSE(fs::exists(Output()));
}

// --correction-clicks: the phantom's liver (label 1) at 8 mm, its first click and two simulated corrections applied
// through the segmentation session. Checked: N + 1 rows per instance, numbered 1..N+1, Dice in [0, 1]; the corrections
// are applied (a correction changes the mask: Dice moves from the first click's; a positive click only adds voxels,
// so recall cannot fall, a negative one only removes them, so recall cannot rise); and the table's DSC-AUC and final
// Dice are the CSV's (trapezoid over clicks 1..3 divided by 2; printed to 3 decimals, so compared to 6e-4).
TEST_F(DivAttentionEvaluateCli, CorrectionClicksAreSimulatedAppliedAndSummarised)
{
  const fs::path dataset = Phantoms();
  const fs::path csv = root / "corrections.csv", perClick = root / "corrections-corrections.csv",
                 table = root / "corrections.md", png = root / "corrections.png";
  const bool        plot = std::system("command -v gnuplot > /dev/null 2>&1") == 0;
  const std::string common = "--dataset " + dataset.string() + " --subset all --label 1 --structure liver --clicks 1 " +
                             "--seed 5 --threads 2 --coarse-max-extent 96 --coarse-model " +
                             Bundled("coarse-munet-small.pt") + " -m ESPNet=" + Bundled("refine-espnet-small.pt");
  const auto run = diva::clitest::Run(DIVATTENTION_EVALUATE_EXE,
                                      common + " --correction-clicks 2 --csv " + csv.string() + " --markdown " +
                                        table.string() + (plot ? " --curve-png " + png.string() : std::string()));
  ASSERT_EQ(run.exitCode, 0) << run.output;
  EXPECT_NE(run.output.find("1 instances, 1 click(s) each, 2 column(s), 2 correction click(s)"), std::string::npos)
    << run.output;

  const auto rows = ReadCsv(perClick);
  ASSERT_EQ(rows.size(), 4u) << diva::testing::ReadFileBytes(
    perClick); // header + 1 instance x 3 clicks (the stage-1 column has none)
  const std::vector<std::string> header{ "model", "case",   "instance",  "structure", "group",   "first_click",
                                         "click", "kind",   "click_x",   "click_y",   "click_z", "region_mm3",
                                         "dice",  "recall", "precision", "hd95_mm" };
  ASSERT_EQ(rows[0], header);
  std::vector<double> dice;
  for (size_t r = 1; r < rows.size(); ++r)
  {
    const auto & row = rows[r];
    ASSERT_EQ(row.size(), header.size()) << diva::testing::ReadFileBytes(perClick);
    EXPECT_EQ(row[0], "ESPNet");
    EXPECT_EQ(row[3], "liver");
    EXPECT_EQ(row[4], "organs");
    EXPECT_EQ(row[6], std::to_string(r)) << "clicks are numbered 1..N+1";
    EXPECT_EQ(row[7], r == 1 ? "first" : row[7]);
    if (r > 1)
    {
      EXPECT_TRUE(row[7] == "positive" || row[7] == "negative" || row[7] == "none") << row[7];
    }
    dice.push_back(std::stod(row[12]));
    EXPECT_GE(dice.back(), 0.0);
    EXPECT_LE(dice.back(), 1.0);
    if (r > 1 && (row[7] == "positive" || row[7] == "negative"))
    {
      EXPECT_FALSE(row[11].empty()) << "a correction click names the volume of the region it corrects";
      const double recall = std::stod(row[13]), before = std::stod(rows[r - 1][13]);
      if (row[7] == "positive")
      {
        EXPECT_GE(recall, before) << "a positive click only adds voxels";
      }
      else
      {
        EXPECT_LE(recall, before) << "a negative click only removes voxels";
      }
    }
  }
  // The first mask of this liver has errors, and the corrections change it.
  EXPECT_LT(dice[0], 0.99) << diva::testing::ReadFileBytes(perClick);
  EXPECT_TRUE(dice[1] != dice[0] || dice[2] != dice[0]) << "no correction changed the mask:\n"
                                                        << diva::testing::ReadFileBytes(perClick);

  const std::string markdown = diva::testing::ReadFileBytes(table);
  EXPECT_NE(markdown.find("| Model | group (instances) | Dice 1 | Dice 2 | Dice 3 | DSC-AUC | final Dice | lowered |"),
            std::string::npos)
    << markdown;
  const auto at = markdown.find("| ESPNet | organs (1) |");
  ASSERT_NE(at, std::string::npos) << markdown;
  std::stringstream   line(markdown.substr(at + std::string("| ESPNet | organs (1) |").size()));
  std::vector<double> values;
  std::string         cell;
  while (values.size() < 5 && std::getline(line, cell, '|'))
  {
    values.push_back(std::stod(cell));
  }
  ASSERT_EQ(values.size(), 5u) << markdown;
  for (size_t c = 0; c < 3; ++c)
  {
    EXPECT_NEAR(values[c], dice[c], 6e-4) << "Dice after click " << c + 1;
  }
  EXPECT_NEAR(values[3], (0.5 * (dice[0] + dice[1]) + 0.5 * (dice[1] + dice[2])) / 2.0, 6e-4) << "DSC-AUC";
  EXPECT_NEAR(values[4], dice[2], 6e-4) << "final Dice";
  if (plot)
  {
    std::ifstream in(png, std::ios::binary);
    char          signature[8] = {};
    in.read(signature, 8);
    EXPECT_EQ(std::string(signature + 1, 3), "PNG") << png;
  }
}

TEST_F(DivAttentionEvaluateCli, CorrectionClickBadInputs)
{
  const std::string coarse = Bundled("coarse-munet-small.pt"), refine = Bundled("refine-espnet-small.pt");
  ExpectFailure("--correction-clicks 2", { "--correction-clicks", "whole pipeline" }, "", 2);
  ExpectFailure("--coarse-model " + coarse + " --curve-png " + (root / "curve.png").string(),
                { "--curve-png", "--correction-clicks" }, " --model a=" + refine, 2);
  ExpectFailure("--coarse-model " + coarse + " --correction-clicks 1 --corrections-csv " +
                  (root / "no-such-dir" / "c.csv").string(),
                { "--corrections-csv", "no-such-dir", "does not exist" }, " --model a=" + refine);
}
