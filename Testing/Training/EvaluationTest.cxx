// Evaluation metrics on crafted cases whose values are computed by hand.
#include "divaEvaluation.h"
#include "divaSegmentationMetrics.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

TEST(Evaluation, OverlapMetricsMatchHandComputedValues)
{
  // Two 4^3 cubes offset by one voxel along each axis: overlap 3^3 = 27 of 64 voxels each.
  auto prediction = torch::zeros({ 10, 10, 10 }, torch::kUInt8);
  auto reference = torch::zeros({ 10, 10, 10 }, torch::kUInt8);
  prediction.slice(0, 2, 6).slice(1, 2, 6).slice(2, 2, 6).fill_(1);
  reference.slice(0, 3, 7).slice(1, 3, 7).slice(2, 3, 7).fill_(1);
  const auto metrics = diva::ComputeBinaryMetrics(prediction, reference);
  // Exact ratios of small integers: compared to 1e-12.
  EXPECT_NEAR(metrics.dice, 2.0 * 27.0 / 128.0, 1e-12);
  EXPECT_NEAR(metrics.recall, 27.0 / 64.0, 1e-12);
  EXPECT_NEAR(metrics.precision, 27.0 / 64.0, 1e-12);
}

TEST(Evaluation, HD95MatchesHandComputedValues)
{
  // One voxel each, 3 voxels apart along z with a 2 mm z spacing: every surface distance is 6 mm.
  auto a = torch::zeros({ 8, 8, 8 }, torch::kUInt8);
  auto b = torch::zeros({ 8, 8, 8 }, torch::kUInt8);
  a[2][2][2] = 1;
  b[5][2][2] = 1;
  // Maurer's distance map is exact for the Euclidean distance: 1e-5 covers its float output.
  EXPECT_NEAR(diva::HausdorffDistance95(a, b, { { 1.0, 1.0, 2.0 } }), 6.0, 1e-5);
  // Identical masks: 0.
  auto cube = torch::zeros({ 8, 8, 8 }, torch::kUInt8);
  cube.slice(0, 2, 6).slice(1, 2, 6).slice(2, 2, 6).fill_(1);
  EXPECT_NEAR(diva::HausdorffDistance95(cube, cube, { { 1.0, 1.0, 1.0 } }), 0.0, 1e-6);
  // The cube plus one isolated voxel at x = 7, 2 voxels beyond the cube's face at x = 5: the directed distances from
  // the larger mask are 0 for the 56 cube surface voxels and 2 for the extra voxel; the 95th percentile of these 57
  // values (linear interpolation: position 0.95 * 56 = 53.2, between two zeros) is 0, and every distance back from
  // the cube is 0. HD95 = 0, whereas the plain Hausdorff distance would be 2 mm: the percentile ignores the outlier.
  auto withOutlier = cube.clone();
  withOutlier[3][3][7] = 1;
  EXPECT_NEAR(diva::HausdorffDistance95(withOutlier, cube, { { 1.0, 1.0, 1.0 } }), 0.0, 1e-6);
  // Either mask empty: undefined.
  EXPECT_TRUE(std::isnan(diva::HausdorffDistance95(torch::zeros({ 8, 8, 8 }), cube, { { 1.0, 1.0, 1.0 } })));
}

TEST(Evaluation, SummaryAndTable1Layout)
{
  std::vector<diva::EvaluatedSample> samples(3);
  samples[0] = { "UNETR", "a", 1, 0, 0.5, 0.6, 0.7, 2.0 };
  samples[1] = { "UNETR", "b", 1, 0, 1.0, 1.0, 0.9, std::nan("") };
  samples[2] = { "UNETR+div-attention", "a", 1, 0, 0.9, 0.8, 1.0, 1.0 };
  const auto summaries = diva::Summarize(samples);
  ASSERT_EQ(summaries.size(), 2u);
  EXPECT_EQ(summaries[0].model, "UNETR");
  EXPECT_NEAR(summaries[0].dice, 0.75, 1e-12);
  EXPECT_NEAR(summaries[0].recall, 0.8, 1e-12);
  EXPECT_NEAR(summaries[0].precision, 0.8, 1e-12);
  EXPECT_NEAR(summaries[0].hd95, 2.0, 1e-12); // NaN samples are left out of the HD95 mean
  const auto markdown = diva::FormatTable1(summaries, "MSD-Spleen", true);
  EXPECT_NE(markdown.find("| Model | MSD-Spleen Dice | Recall | Precision |"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("| UNETR | 0.7500 | 0.8000 | 0.8000 |"), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("| UNETR+div-attention | 0.9000 | 0.8000 | 1.0000 |"), std::string::npos) << markdown;
}

TEST(Evaluation, SamplesCsvLeavesUnrecordedFieldsEmptyAndPerCaseDiceAverages)
{
  std::vector<diva::EvaluatedSample> samples(3);
  samples[0] = { "Stage 1", "a", 1, 0, 0.5, 0.6, 0.7, 2.0 };
  samples[0].truePositives = 3;
  samples[0].falsePositives = 2;
  samples[0].falseNegatives = 4;
  samples[0].clickPoint = { { 1.5, -2.0, 3.25 } };
  samples[1] = { "UNETR", "a", 1, 0, 1.0, 1.0, 1.0, 0.0 };
  samples[1].fallbackCrop = 1;
  samples[1].answer = "other-tissue";
  samples[2] = { "UNETR", "a", 2, 0, 0.0, 0.0, 1.0, std::nan("") };
  const std::string csv = diva::FormatSamplesCSV(samples);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "model,case,instance,click,dice,recall,precision,hd95_mm,tp,fp,fn,click_x,click_y,click_z,fallback_crop,"
            "structure,group,answer");
  EXPECT_NE(csv.find("\nStage 1,a,1,0,0.5,0.6,0.7,2,3,2,4,1.5,-2,3.25,,,,\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\nUNETR,a,1,0,1,1,1,0,,,,,,,1,,,other-tissue\n"), std::string::npos) << csv;
  // Mean Dice per case and model: UNETR's two instances of case a average to 0.5.
  const std::string table = diva::FormatPerCaseDice(samples, true);
  EXPECT_NE(table.find("| Case (mean Dice) | Stage 1 | UNETR |"), std::string::npos) << table;
  EXPECT_NE(table.find("| a | 0.5000 | 0.5000 |"), std::string::npos) << table;
}

TEST(Evaluation, StructureGroupsFollowTheDocumentedTable)
{
  const std::vector<std::pair<std::string, std::string>> expected{ { "spleen", "organs" },
                                                                   { "Liver", "organs" },
                                                                   { "kidney_left", "organs" },
                                                                   { "urinary_bladder", "organs" },
                                                                   { "kidney_cyst_left", "lesions" },
                                                                   { "liver_tumor", "lesions" },
                                                                   { "lesion", "lesions" },
                                                                   { "GTV_Mass", "lesions" },
                                                                   { "aorta", "vessels" },
                                                                   { "portal_vein_and_splenic_vein", "vessels" },
                                                                   { "inferior_vena_cava", "vessels" },
                                                                   { "iliac_artery_left", "vessels" },
                                                                   { "vertebrae_L1", "bone" },
                                                                   { "rib_left_3", "bone" },
                                                                   { "hip_right", "bone" },
                                                                   { "sacrum", "bone" },
                                                                   { "gluteus_maximus_left", "muscle" },
                                                                   { "iliopsoas_right", "muscle" },
                                                                   { "spinal_cord", "other" },
                                                                   { "label", "other" } };
  for (const auto & [name, group] : expected)
  {
    EXPECT_EQ(diva::StructureGroup(name), group) << name;
  }
}

TEST(Evaluation, GroupSummariesAverageWithinEachGroupAndMethod)
{
  // Two organs and one vessel, each scored by two methods; the groups come out in the documented order (organs
  // before vessels) whatever order the samples come in.
  std::vector<diva::EvaluatedSample> samples;
  const auto add = [&samples](const std::string & model, const std::string & structure, double dice, double hd95)
  {
    diva::EvaluatedSample sample{ model, "case", 1, 0, dice, dice, 1.0, hd95 };
    sample.structure = structure;
    sample.group = diva::StructureGroup(structure);
    samples.push_back(sample);
  };
  add("Pipeline", "aorta", 0.2, 9.0);
  add("Region growing", "aorta", 0.6, 3.0);
  add("Pipeline", "spleen", 0.9, 2.0);
  add("Region growing", "spleen", 0.3, 20.0);
  add("Pipeline", "liver", 0.7, std::nan(""));
  add("Region growing", "liver", 0.1, 40.0);
  const auto groups = diva::SummarizeByGroup(samples);
  ASSERT_EQ(groups.size(), 4u);
  EXPECT_EQ(groups[0].group, "organs");
  EXPECT_EQ(groups[0].summary.model, "Pipeline");
  EXPECT_NEAR(groups[0].summary.dice, 0.8, 1e-12);
  EXPECT_NEAR(groups[0].summary.hd95, 2.0, 1e-12); // NaN left out
  EXPECT_EQ(groups[0].summary.samples, 2);
  EXPECT_EQ(groups[0].structures, 2);
  EXPECT_EQ(groups[1].summary.model, "Region growing");
  EXPECT_NEAR(groups[1].summary.dice, 0.2, 1e-12);
  EXPECT_NEAR(groups[1].summary.hd95, 30.0, 1e-12);
  EXPECT_EQ(groups[2].group, "vessels");
  EXPECT_NEAR(groups[2].summary.dice, 0.2, 1e-12);
  EXPECT_NEAR(groups[3].summary.dice, 0.6, 1e-12);
  const std::string markdown = diva::FormatGroupTable(groups, true);
  EXPECT_NE(markdown.find("| Group | Method | Dice | Recall | Precision | HD95 (mm) | Targets | Samples |"),
            std::string::npos)
    << markdown;
  EXPECT_NE(markdown.find("| organs | Pipeline | 0.800 | 0.800 | 1.000 | 2.0 | 2 | 2 |"), std::string::npos)
    << markdown;
  EXPECT_NE(markdown.find("| vessels | Region growing | 0.600 |"), std::string::npos) << markdown;
}
