// Dataset layouts: MSD, KiTS, nnU-Net raw and CSV, each made here; missing files are per-case problems, malformed
// descriptions are errors naming the file and the place.
#include "itkImage.h"
#include "itkPhantomDataset.h"
#include "itkSegmentationDatasetReader.h"
#include "itkWriteImageAtomically.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace fs = std::filesystem;
using Reader = itk::SegmentationDatasetReader;

namespace
{
fs::path
Scratch(const std::string & name)
{
  const fs::path path = fs::temp_directory_path() / ("divattention-datasets-" + name);
  fs::remove_all(path);
  fs::create_directories(path);
  return path;
}

void
WriteTinyImage(const fs::path & path)
{
  fs::create_directories(path.parent_path());
  using ImageType = itk::Image<int16_t, 3>;
  auto image = ImageType::New();
  image->SetRegions(ImageType::SizeType{ { 4, 4, 4 } });
  image->Allocate();
  image->FillBuffer(1);
  itk::WriteImageAtomically(image.GetPointer(), path.string());
}

std::string
ExpectError(const std::function<void()> & action)
{
  try
  {
    action();
  }
  catch (const itk::ExceptionObject & error)
  {
    return error.GetDescription();
  }
  ADD_FAILURE() << "no itk::ExceptionObject";
  return {};
}
} // namespace

TEST(SegmentationDatasetReader, ReadsPhantomMSDDataset)
{
  const fs::path               root = Scratch("msd");
  itk::PhantomDataset::Options options;
  options.outputDirectory = root.string();
  options.cases = 2;
  options.inPlaneSpacing = 8.0;
  options.sliceThickness = { { 10.0, 10.0 } };
  itk::PhantomDataset::Write(options);
  const auto listing = Reader::Read(root.string());
  EXPECT_EQ(listing.layout, Reader::Layout::MSD);
  ASSERT_EQ(listing.cases.size(), 2u);
  EXPECT_EQ(listing.cases[0].id, "phantom_000");
  EXPECT_TRUE(fs::exists(listing.cases[1].label));
  EXPECT_TRUE(listing.problems.empty());
}

TEST(SegmentationDatasetReader, ReadsKiTSAndReportsACaseWithoutSegmentation)
{
  const fs::path root = Scratch("kits");
  WriteTinyImage(root / "case_00000" / "imaging.nii.gz");
  WriteTinyImage(root / "case_00000" / "segmentation.nii.gz");
  WriteTinyImage(root / "case_00001" / "imaging.nii.gz");
  const auto listing = Reader::Read(root.string());
  EXPECT_EQ(listing.layout, Reader::Layout::KiTS);
  ASSERT_EQ(listing.cases.size(), 1u);
  EXPECT_EQ(listing.cases[0].id, "case_00000");
  ASSERT_EQ(listing.problems.size(), 1u);
  EXPECT_EQ(listing.problems[0].id, "case_00001");
  EXPECT_NE(listing.problems[0].reason.find("segmentation.nii.gz"), std::string::npos);
}

TEST(SegmentationDatasetReader, ReadsNNUNetRawKeepingOneCasePerChannelSet)
{
  const fs::path root = Scratch("nnunet");
  WriteTinyImage(root / "imagesTr" / "liver_001_0000.nii.gz");
  WriteTinyImage(root / "imagesTr" / "liver_001_0001.nii.gz");
  WriteTinyImage(root / "labelsTr" / "liver_001.nii.gz");
  const auto listing = Reader::Read(root.string());
  EXPECT_EQ(listing.layout, Reader::Layout::NNUNetRaw);
  ASSERT_EQ(listing.cases.size(), 1u);
  EXPECT_EQ(listing.cases[0].id, "liver_001");
  EXPECT_NE(listing.cases[0].image.find("_0000"), std::string::npos);
}

TEST(SegmentationDatasetReader, ReadsCsvWithHeaderRelativePathsAndIds)
{
  const fs::path root = Scratch("csv");
  WriteTinyImage(root / "ct" / "a.nii.gz");
  WriteTinyImage(root / "masks" / "a.nii.gz");
  std::ofstream(root / "list.csv") << "image,label\nct/a.nii.gz, masks/a.nii.gz ,patient-7\n";
  const auto listing = Reader::Read((root / "list.csv").string());
  EXPECT_EQ(listing.layout, Reader::Layout::CSV);
  ASSERT_EQ(listing.cases.size(), 1u);
  EXPECT_EQ(listing.cases[0].id, "patient-7");
  EXPECT_TRUE(fs::exists(listing.cases[0].image));
}

TEST(SegmentationDatasetReader, MalformedDescriptionsAreErrorsNamingThePlace)
{
  EXPECT_NE(ExpectError([] { Reader::ParseCSV("image,label\na.nii.gz\n", "/tmp", "list.csv"); }).find("line 2"),
            std::string::npos);
  EXPECT_NE(
    ExpectError([] { Reader::ParseCSV("a.nii,b.nii,x\nc.nii,d.nii,x\n", "/tmp", "list.csv"); }).find("appears twice"),
    std::string::npos);
  EXPECT_NE(ExpectError([] { Reader::ParseMSDJson("{ not json", "/tmp", "dataset.json"); }).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(ExpectError([] { Reader::ParseMSDJson("{\"training\": [{\"image\": 3}]}", "/tmp", "dataset.json"); })
              .find("training entry 0"),
            std::string::npos);
  EXPECT_NE(ExpectError([] { Reader::Read("/no/such/dataset"); }).find("does not exist"), std::string::npos);
  EXPECT_NE(ExpectError([] { Reader::ParseLayout("decathlon"); }).find("\"decathlon\""), std::string::npos);
}

TEST(SegmentationDatasetReader, CsvIdsComeFromTheFoldersWhenFileNamesRepeat)
{
  const fs::path root = Scratch("csv-ids");
  for (const char * folder : { "STS_001", "STS_002", "a/x", "b/x" })
  {
    WriteTinyImage(root / folder / "ct.nii.gz");
    WriteTinyImage(root / folder / "lesion.nii.gz");
  }
  WriteTinyImage(root / "other.nii.gz");
  std::ofstream(root / "list.csv") << "STS_001/ct.nii.gz,STS_001/lesion.nii.gz\n"
                                   << "STS_002/ct.nii.gz,STS_002/lesion.nii.gz\n"
                                   << "a/x/ct.nii.gz,a/x/lesion.nii.gz\n"
                                   << "b/x/ct.nii.gz,b/x/lesion.nii.gz\n"
                                   << "other.nii.gz,other.nii.gz\n";
  const auto listing = Reader::Read((root / "list.csv").string());
  ASSERT_EQ(listing.cases.size(), 5u);
  std::vector<std::string> ids;
  for (const auto & entry : listing.cases)
  {
    ids.push_back(entry.id);
  }
  // Sorted by id; the file name where it is unique, the folders above where it repeats.
  EXPECT_EQ(ids, (std::vector<std::string>{ "STS_001", "STS_002", "a/x", "b/x", "other" }));
  EXPECT_NE(listing.cases[1].image.find("STS_002"), std::string::npos);

  // A header names the columns in any order, an id column included.
  const auto named = Reader::ParseCSV("case,label,image\np1,STS_001/lesion.nii.gz,STS_001/ct.nii.gz\n"
                                      "p2,STS_002/lesion.nii.gz,STS_002/ct.nii.gz\n",
                                      root.string(), "named.csv");
  ASSERT_EQ(named.cases.size(), 2u);
  EXPECT_EQ(named.cases[0].id, "p1");
  EXPECT_NE(named.cases[0].image.find("ct.nii.gz"), std::string::npos);
  EXPECT_NE(named.cases[0].label.find("lesion.nii.gz"), std::string::npos);

  // The same image twice cannot be told apart: an error naming the line.
  const auto twice =
    ExpectError([&] { Reader::ParseCSV("x/ct.nii,x/m.nii\nx/ct.nii,x/n.nii\n", "/tmp", "twice.csv"); });
  EXPECT_NE(twice.find("line 2"), std::string::npos) << twice;
  EXPECT_NE(twice.find("appears twice"), std::string::npos) << twice;
  EXPECT_NE(ExpectError([] { Reader::ParseCSV("image,label,id,extra\na,b,c,d\n", "/tmp", "wide.csv"); }).find("line 1"),
            std::string::npos);
}

TEST(SegmentationDatasetReader, ReadsTotalSegmentatorLayoutOneMaskPerStructure)
{
  const fs::path root = Scratch("totalseg");
  WriteTinyImage(root / "s0001" / "ct.nii.gz");
  WriteTinyImage(root / "s0001" / "segmentations" / "spleen.nii.gz");
  WriteTinyImage(root / "s0001" / "segmentations" / "aorta.nii.gz");
  WriteTinyImage(root / "s0002" / "ct.nii.gz");
  fs::create_directories(root / "s0002" / "segmentations");          // empty: a per-case problem
  WriteTinyImage(root / "s0003" / "segmentations" / "liver.nii.gz"); // no ct.nii.gz
  std::ofstream(root / "meta.csv") << "image_id\n";

  const auto listing = Reader::Read(root.string());
  EXPECT_EQ(listing.layout, Reader::Layout::TotalSegmentator);
  ASSERT_EQ(listing.cases.size(), 1u);
  const auto & entry = listing.cases[0];
  EXPECT_EQ(entry.id, "s0001");
  EXPECT_TRUE(entry.label.empty());
  ASSERT_EQ(entry.structures.size(), 2u);
  EXPECT_EQ(entry.structures[0].name, "aorta");
  EXPECT_EQ(entry.structures[1].name, "spleen");
  EXPECT_TRUE(fs::exists(entry.structures[1].mask));
  ASSERT_EQ(listing.problems.size(), 2u);
  std::map<std::string, std::string> reasons;
  for (const auto & problem : listing.problems)
  {
    reasons[problem.id] = problem.reason;
  }
  EXPECT_NE(reasons["s0002"].find("holds no mask"), std::string::npos) << reasons["s0002"];
  EXPECT_NE(reasons["s0003"].find("ct.nii.gz\" does not exist"), std::string::npos) << reasons["s0003"];

  // One case folder as the root; the layout by name.
  const auto one = Reader::Read((root / "s0001").string(), Reader::ParseLayout("totalseg"));
  ASSERT_EQ(one.cases.size(), 1u);
  EXPECT_EQ(one.cases[0].structures.size(), 2u);
  // A dataset where no case has a mask: an error naming it.
  const fs::path empty = Scratch("totalseg-empty");
  fs::create_directories(empty / "s0001" / "segmentations");
  const auto onlyProblems = Reader::Read(empty.string());
  EXPECT_TRUE(onlyProblems.cases.empty());
  ASSERT_EQ(onlyProblems.problems.size(), 1u);
}

// ---- DatasetCaseValidator ---------------------------------------------------------------------------------------

#include "itkDatasetCaseValidator.h"

namespace
{
template<typename TPixel>
void
WriteVolume(const fs::path & path, unsigned nx, double spacingX, TPixel value)
{
  using ImageType = itk::Image<TPixel, 3>;
  auto image = ImageType::New();
  image->SetRegions(typename ImageType::SizeType{ { nx, 4, 4 } });
  typename ImageType::SpacingType spacing;
  spacing.Fill(1.0);
  spacing[0] = spacingX;
  image->SetSpacing(spacing);
  image->Allocate();
  image->FillBuffer(value);
  itk::WriteImageAtomically(image.GetPointer(), path.string());
}
} // namespace

TEST(DatasetCaseValidator, FindsEachDocumentedProblem)
{
  const fs::path                     root = Scratch("validate");
  itk::DatasetCaseValidator::Options options;
  const auto                         check = [&](const std::string & image, const std::string & label) {
    return itk::DatasetCaseValidator::Check({ "c", (root / image).string(), (root / label).string() }, options);
  };
  WriteVolume<int16_t>(root / "ct.nii.gz", 4, 1.0, 0);
  WriteVolume<uint8_t>(root / "good.nii.gz", 4, 1.0, 1);
  WriteVolume<uint8_t>(root / "empty.nii.gz", 4, 1.0, 0);
  WriteVolume<uint8_t>(root / "multi.nii.gz", 4, 1.0, 2);
  WriteVolume<uint8_t>(root / "bigger.nii.gz", 5, 1.0, 1);
  WriteVolume<uint8_t>(root / "finer.nii.gz", 4, 0.5, 1);
  std::ofstream(root / "garbage.nii.gz") << "not an image";

  EXPECT_TRUE(check("ct.nii.gz", "good.nii.gz").empty());
  auto problems = check("ct.nii.gz", "empty.nii.gz");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("no voxel of the target"), std::string::npos);
  EXPECT_NE(check("ct.nii.gz", "bigger.nii.gz").at(0).find("different grids"), std::string::npos);
  EXPECT_NE(check("ct.nii.gz", "finer.nii.gz").at(0).find("different grids"), std::string::npos);
  EXPECT_FALSE(check("ct.nii.gz", "garbage.nii.gz").empty());
  EXPECT_FALSE(check("missing.nii.gz", "good.nii.gz").empty());
  // A CT cut short (ITK's NIfTI reader would read it without an error): a problem naming the file.
  WriteVolume<int16_t>(root / "cut.nii", 16, 1.0, 0);
  WriteVolume<uint8_t>(root / "good16.nii.gz", 16, 1.0, 1);
  EXPECT_TRUE(check("cut.nii", "good16.nii.gz").empty());
  fs::resize_file(root / "cut.nii", fs::file_size(root / "cut.nii") - 100);
  problems = check("cut.nii", "good16.nii.gz");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("input \"image\": file \"" + (root / "cut.nii").string() + "\" is truncated"),
            std::string::npos)
    << problems[0];

  options.targetLabels = { 2 };
  EXPECT_TRUE(check("ct.nii.gz", "multi.nii.gz").empty());
  options.expectBinary = true;
  problems = check("ct.nii.gz", "multi.nii.gz");
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("not binary"), std::string::npos);
}

TEST(DatasetCaseValidator, ChecksEveryStructureMaskAgainstTheImageGrid)
{
  const fs::path root = Scratch("validate-structures");
  fs::create_directories(root / "segmentations");
  WriteVolume<int16_t>(root / "ct.nii.gz", 4, 1.0, 0);
  WriteVolume<uint8_t>(root / "segmentations" / "spleen.nii.gz", 4, 1.0, 1);
  WriteVolume<uint8_t>(root / "segmentations" / "empty.nii.gz", 4, 1.0, 0);
  WriteVolume<uint8_t>(root / "segmentations" / "aorta.nii.gz", 4, 0.5, 1);
  itk::SegmentationDatasetReader::Case entry;
  entry.id = "s1";
  entry.image = (root / "ct.nii.gz").string();
  entry.structures = { { "spleen", (root / "segmentations" / "spleen.nii.gz").string() },
                       { "empty", (root / "segmentations" / "empty.nii.gz").string() } };
  EXPECT_TRUE(itk::DatasetCaseValidator::Check(entry, {}).empty()); // an empty mask is not a problem
  entry.structures.push_back({ "aorta", (root / "segmentations" / "aorta.nii.gz").string() });
  const auto problems = itk::DatasetCaseValidator::Check(entry, {});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("structure \"aorta\""), std::string::npos) << problems[0];
  EXPECT_NE(problems[0].find("another grid"), std::string::npos) << problems[0];
}
