// Instances (organs whole, lesions by connected component, the paper's discard rule) and deterministic splits.
#include "itkDatasetSplit.h"
#include "itkLabelInstanceExtractor.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using Extractor = itk::LabelInstanceExtractor;

namespace
{
Extractor::LabelImageType::Pointer
BlobImage()
{
  auto image = Extractor::LabelImageType::New();
  image->SetRegions(Extractor::LabelImageType::SizeType{ { 20, 20, 20 } });
  image->Allocate();
  image->FillBuffer(0);
  auto box = [&](int x0, int y0, int z0, int nx, int ny, int nz, uint16_t value)
  {
    for (int z = z0; z < z0 + nz; ++z)
      for (int y = y0; y < y0 + ny; ++y)
        for (int x = x0; x < x0 + nx; ++x)
          image->SetPixel({ { x, y, z } }, value);
  };
  box(1, 1, 1, 3, 3, 3, 2);    // 27 voxels: a lesion that stays
  box(10, 10, 10, 5, 5, 1, 2); // one voxel thick: fewer than 2 along z, discarded
  box(1, 15, 15, 2, 2, 1, 2);  // 4 voxels: discarded
  box(12, 1, 1, 4, 4, 4, 1);   // organ label 1, part one
  box(12, 1, 10, 2, 2, 2, 1);  // organ label 1, part two (disconnected)
  return image;
}
} // namespace

TEST(LabelInstanceExtractor, LesionsAreComponentsAndSmallOnesAreDiscarded)
{
  Extractor::Options options;
  options.targetLabels = { 2 };
  options.mode = Extractor::Mode::Lesion;
  const auto result = Extractor::Extract(BlobImage(), options);
  ASSERT_EQ(result.kept.size(), 1u);
  EXPECT_EQ(result.discarded, 2u);
  EXPECT_EQ(result.kept[0].voxels, 27u);
  EXPECT_EQ(result.kept[0].boundingBox.GetIndex()[0], 1);
  EXPECT_EQ(result.kept[0].boundingBox.GetSize()[2], 3u);
  EXPECT_EQ(result.instances->GetPixel({ { 2, 2, 2 } }), 1);
  EXPECT_EQ(result.instances->GetPixel({ { 11, 11, 10 } }), 0); // the discarded plate is gone from the map

  options.minimumExtent = 1; // the paper's numbers are options: with 1, the plate (25 voxels) stays
  EXPECT_EQ(Extractor::Extract(BlobImage(), options).kept.size(), 2u);
}

TEST(LabelInstanceExtractor, AnOrganIsOneObjectEvenWhenCut)
{
  Extractor::Options options;
  options.targetLabels = { 1 };
  options.mode = Extractor::Mode::Organ;
  const auto result = Extractor::Extract(BlobImage(), options);
  ASSERT_EQ(result.kept.size(), 1u);
  EXPECT_EQ(result.kept[0].voxels, 64u + 8u);
  options.targetLabels.clear();
  EXPECT_THROW(Extractor::Extract(BlobImage(), options), itk::ExceptionObject);
}

TEST(LabelInstanceExtractor, LabelComponentsKeepsTouchingLabelsApart)
{
  // Two boxes of different labels that touch: the union would be one component, label by label they are two.
  auto image = Extractor::LabelImageType::New();
  image->SetRegions(Extractor::LabelImageType::SizeType{ { 12, 12, 12 } });
  image->Allocate(true);
  for (int z = 2; z < 6; ++z)
    for (int y = 2; y < 6; ++y)
      for (int x = 2; x < 10; ++x)
        image->SetPixel({ { x, y, z } }, x < 6 ? 3 : 5);
  image->SetPixel({ { 8, 9, 9 } }, 3); // a single voxel of label 3 far away: its own component, discarded as small

  Extractor::Options options;
  options.targetLabels = { 3, 5 };
  options.mode = Extractor::Mode::Lesion;
  EXPECT_EQ(Extractor::Extract(image, options).kept.size(), 1u); // union: one object

  options.mode = Extractor::Mode::LabelComponents;
  const auto result = Extractor::Extract(image, options);
  ASSERT_EQ(result.kept.size(), 2u);
  EXPECT_EQ(result.discarded, 1u);
  EXPECT_EQ(result.kept[0].voxels, 64u);
  EXPECT_EQ(result.kept[1].voxels, 64u);
  const auto left = result.instances->GetPixel({ { 3, 3, 3 } });
  const auto right = result.instances->GetPixel({ { 8, 3, 3 } });
  EXPECT_NE(left, 0);
  EXPECT_NE(right, 0);
  EXPECT_NE(left, right);

  EXPECT_EQ(Extractor::ModeFromName("label-components"), Extractor::Mode::LabelComponents);
  EXPECT_THROW(Extractor::ModeFromName("organs"), itk::ExceptionObject);
}

TEST(DatasetSplit, PaperProportionsDeterministicBySeedAndRoundTripsThroughJson)
{
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i)
  {
    ids.push_back("case" + std::to_string(i));
  }
  const auto pub = itk::DatasetSplit::Make(ids, itk::DatasetSplit::Scheme::Public, 5);
  EXPECT_EQ(pub.train.size(), 8u);
  EXPECT_EQ(pub.validation.size(), 2u);
  EXPECT_TRUE(pub.test.empty());
  const auto priv = itk::DatasetSplit::Make(ids, itk::DatasetSplit::Scheme::Private, 5);
  EXPECT_EQ(priv.test.size(), 3u);
  EXPECT_EQ(priv.validation.size(), 1u); // 20 % of the remaining 7, rounded
  EXPECT_EQ(priv.train.size(), 6u);

  std::vector<std::string> reversed(ids.rbegin(), ids.rend());
  EXPECT_EQ(itk::DatasetSplit::Make(reversed, itk::DatasetSplit::Scheme::Public, 5).validation, pub.validation);
  bool differs = false;
  for (uint64_t seed = 6; seed < 12 && !differs; ++seed)
  {
    differs = itk::DatasetSplit::Make(ids, itk::DatasetSplit::Scheme::Public, seed).validation != pub.validation;
  }
  EXPECT_TRUE(differs);

  const std::string path = (std::filesystem::temp_directory_path() / "divattention-split.json").string();
  priv.Save(path);
  const auto loaded = itk::DatasetSplit::Load(path);
  EXPECT_EQ(loaded.train, priv.train);
  EXPECT_EQ(loaded.validation, priv.validation);
  EXPECT_EQ(loaded.test, priv.test);
  EXPECT_EQ(loaded.seed, 5u);
}

TEST(DatasetSplit, RefusesDuplicatesAndMalformedFiles)
{
  EXPECT_THROW(itk::DatasetSplit::Make({ "a", "b", "a" }, itk::DatasetSplit::Scheme::Public, 1), itk::ExceptionObject);
  EXPECT_THROW(itk::DatasetSplit::Make({}, itk::DatasetSplit::Scheme::Public, 1), itk::ExceptionObject);
  EXPECT_THROW(itk::DatasetSplit::Parse("[1,2]", "s.json"), itk::ExceptionObject);
  EXPECT_THROW(itk::DatasetSplit::Parse("{\"train\":[\"a\"],\"validation\":[\"a\"],\"test\":[]}", "s.json"),
               itk::ExceptionObject);
  EXPECT_THROW(itk::DatasetSplit::Parse("{\"train\":[],\"validation\":[],\"test\":[]}", "s.json"),
               itk::ExceptionObject);
  EXPECT_THROW(itk::DatasetSplit::Load("/no/such/split.json"), itk::ExceptionObject);
  // A single case still trains.
  const auto one = itk::DatasetSplit::Make({ "only" }, itk::DatasetSplit::Scheme::Public, 1);
  EXPECT_EQ(one.train.size(), 1u);
}
