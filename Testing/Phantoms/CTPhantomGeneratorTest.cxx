// The CT phantom: deterministic by seed and thread count, clicks inside their objects on an oblique anisotropic
// grid, realistic attenuation, and a neighbour at the target's HU that thresholding cannot separate.
#include "itkCTPhantomGenerator.h"
#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkMultiThreaderBase.h"
#include "itkTestingMacros.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

namespace
{
using Generator = itk::CTPhantomGenerator;

Generator::Pointer
MakeGenerator(uint64_t seed)
{
  auto generator = Generator::New();
  generator->SetSeed(seed);
  Generator::SizeType size{ { 80, 64, 40 } };
  generator->SetSize(size);
  Generator::SpacingType spacing;
  spacing[0] = 4.5;
  spacing[1] = 4.5;
  spacing[2] = 7.0;
  generator->SetSpacing(spacing);
  // Oblique: 15 degrees about z, 10 about x.
  const double             a = 15.0 * M_PI / 180.0, b = 10.0 * M_PI / 180.0;
  Generator::DirectionType rz, rx;
  rz.SetIdentity();
  rx.SetIdentity();
  rz[0][0] = std::cos(a);
  rz[0][1] = -std::sin(a);
  rz[1][0] = std::sin(a);
  rz[1][1] = std::cos(a);
  rx[1][1] = std::cos(b);
  rx[1][2] = -std::sin(b);
  rx[2][1] = std::sin(b);
  rx[2][2] = std::cos(b);
  generator->SetDirection(rx * rz);
  return generator;
}

template<typename TImage>
bool
SameBuffers(const TImage * a, const TImage * b)
{
  const size_t n = a->GetLargestPossibleRegion().GetNumberOfPixels();
  return n == b->GetLargestPossibleRegion().GetNumberOfPixels() &&
         std::memcmp(a->GetBufferPointer(), b->GetBufferPointer(), n * sizeof(typename TImage::PixelType)) == 0;
}
} // namespace

TEST(CTPhantomGenerator, SameSeedSameVolumeWhateverTheThreadCount)
{
  const auto threads = itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads();
  itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(1);
  auto first = MakeGenerator(11);
  first->Update();
  itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(2);
  auto second = MakeGenerator(11);
  second->Update();
  itk::MultiThreaderBase::SetGlobalDefaultNumberOfThreads(threads);
  EXPECT_TRUE(SameBuffers(first->GetCT(), second->GetCT()));
  EXPECT_TRUE(SameBuffers(first->GetLabels(), second->GetLabels()));
  ASSERT_EQ(first->GetObjects().size(), second->GetObjects().size());

  auto other = MakeGenerator(12);
  other->Update();
  EXPECT_FALSE(SameBuffers(first->GetCT(), other->GetCT()));
  EXPECT_FALSE(SameBuffers(first->GetLabels(), other->GetLabels()));
}

TEST(CTPhantomGenerator, EveryClickLiesInsideItsObjectOnAnObliqueGrid)
{
  for (uint64_t seed : { 1, 2, 3 })
  {
    auto generator = MakeGenerator(seed);
    generator->Update();
    const auto & objects = generator->GetObjects();
    size_t       organs = 0;
    for (const auto & object : objects)
    {
      Generator::LabelImageType::IndexType index;
      ASSERT_TRUE(generator->GetLabels()->TransformPhysicalPointToIndex(object.click, index)) << object.name;
      EXPECT_EQ(generator->GetLabels()->GetPixel(index), object.label) << object.name << " seed " << seed;
      if (object.isLesion)
      {
        EXPECT_EQ(generator->GetLesionInstances()->GetPixel(index), object.instance) << object.name;
      }
      organs += object.isLesion ? 0 : 1;
      EXPECT_GT(object.voxels, 0u);
    }
    EXPECT_EQ(organs, 5u) << "liver, spleen, two kidneys and the stomach lie on this grid";
  }
}

TEST(CTPhantomGenerator, AttenuationIsCTLikeAndTheSpleensNeighbourShareItsHU)
{
  auto generator = MakeGenerator(5);
  generator->SetNumberOfOrganLesions(0);
  generator->SetNumberOfNodules(0);
  generator->Update();
  std::map<int, double>                                             sum;
  std::map<int, double>                                             count;
  itk::ImageRegionConstIteratorWithIndex<Generator::LabelImageType> it(
    generator->GetLabels(), generator->GetLabels()->GetLargestPossibleRegion());
  bool touching = false;
  for (; !it.IsAtEnd(); ++it)
  {
    const int label = it.Get();
    sum[label] += generator->GetCT()->GetPixel(it.GetIndex());
    count[label] += 1;
    if (label == Generator::LabelSpleen)
    {
      for (unsigned d = 0; d < 3 && !touching; ++d)
      {
        auto next = it.GetIndex();
        ++next[d];
        touching = generator->GetLabels()->GetLargestPossibleRegion().IsInside(next) &&
                   generator->GetLabels()->GetPixel(next) == Generator::LabelStomach;
      }
    }
  }
  // Means within 25 HU of the nominal values (the per-seed jitter is 6 HU; blur mixes in neighbours at the borders).
  EXPECT_NEAR(sum[Generator::LabelLiver] / count[Generator::LabelLiver], 62.0, 25.0);
  EXPECT_NEAR(sum[Generator::LabelSpleen] / count[Generator::LabelSpleen], 50.0, 25.0);
  EXPECT_NEAR(sum[Generator::LabelKidneyLeft] / count[Generator::LabelKidneyLeft], 36.0, 25.0);
  // The stomach touches the spleen at nearly its HU: no threshold separates them.
  EXPECT_TRUE(touching);
  EXPECT_LT(std::abs(sum[Generator::LabelSpleen] / count[Generator::LabelSpleen] -
                     sum[Generator::LabelStomach] / count[Generator::LabelStomach]),
            20.0);
  // Liver volume of an adult: 1 to 2.6 litres.
  const double voxelMl = 4.5 * 4.5 * 7.0 / 1000.0;
  EXPECT_GT(count[Generator::LabelLiver] * voxelMl, 1000.0);
  EXPECT_LT(count[Generator::LabelLiver] * voxelMl, 2600.0);
}

TEST(CTPhantomGenerator, LesionSizesStayWithinTheRequestedRange)
{
  auto generator = MakeGenerator(8);
  generator->SetNumberOfOrganLesions(4);
  generator->SetMinimumLesionDiameter(15.0);
  generator->SetMaximumLesionDiameter(40.0);
  generator->Update();
  const double voxelMm3 = 4.5 * 4.5 * 7.0;
  size_t       lesions = 0;
  for (const auto & object : generator->GetObjects())
  {
    if (!object.isLesion)
    {
      continue;
    }
    ++lesions;
    EXPECT_GE(object.diameter, 15.0 - 1e-9);
    EXPECT_LE(object.diameter, 40.0 + 1e-9);
    // Volume below a sphere of the largest diameter grown by the border irregularity (+40 %) and a voxel layer.
    const double radius = 0.5 * 40.0 * 1.4 + 4.5;
    EXPECT_LT(static_cast<double>(object.voxels) * voxelMm3, 4.0 / 3.0 * M_PI * radius * radius * radius);
  }
  EXPECT_GE(lesions, 1u);
}

TEST(CTPhantomGenerator, RefusesEmptySizeAndBadSpacingAndPrintsItself)
{
  auto generator = Generator::New();
  // ITK's exercise macro returns EXIT_FAILURE from the enclosing function: give it one of its own.
  auto exercise = [&generator]() -> int
  {
    ITK_EXERCISE_BASIC_OBJECT_METHODS(generator, CTPhantomGenerator, Object);
    return EXIT_SUCCESS;
  };
  EXPECT_EQ(exercise(), EXIT_SUCCESS);
  Generator::SizeType empty{ { 10, 0, 10 } };
  generator->SetSize(empty);
  EXPECT_THROW(generator->Update(), itk::ExceptionObject);
  generator->SetSize(Generator::SizeType{ { 8, 8, 8 } });
  Generator::SpacingType spacing;
  spacing.Fill(1.0);
  spacing[2] = 0.0;
  generator->SetSpacing(spacing);
  EXPECT_THROW(generator->Update(), itk::ExceptionObject);
}

// ---- LabelMapCTPainter ------------------------------------------------------------------------------------------

#include "DivAttentionTestImages.h"
#include "itkImageFileReader.h"
#include "itkLabelMapCTPainter.h"

#include <cstdlib>
#include <filesystem>

namespace
{
using Painter = itk::LabelMapCTPainter;

// Mean CT value over voxels of `label` whose 6 neighbours carry the same label (away from blurred borders).
double
InteriorMean(const Painter::LabelImageType * labels, const Painter::CTImageType * ct, uint16_t label)
{
  double     sum = 0.0, count = 0.0;
  const auto region = labels->GetLargestPossibleRegion();
  for (itk::ImageRegionConstIteratorWithIndex<Painter::LabelImageType> it(labels, region); !it.IsAtEnd(); ++it)
  {
    if (it.Get() != label)
    {
      continue;
    }
    bool interior = true;
    for (unsigned d = 0; d < 3 && interior; ++d)
    {
      for (int step : { -1, 1 })
      {
        auto next = it.GetIndex();
        next[d] += step;
        interior = interior && region.IsInside(next) && labels->GetPixel(next) == label;
      }
    }
    if (interior)
    {
      sum += ct->GetPixel(it.GetIndex());
      count += 1.0;
    }
  }
  return count > 0 ? sum / count : std::nan("");
}
} // namespace

TEST(LabelMapCTPainter, PaintsEachLabelWithItsTableHUOnTheLabelGrid)
{
  auto labels = DivAttentionTest::MakeObliqueImage<Painter::LabelImageType>({ { 48, 40, 16 } });
  labels->FillBuffer(0);
  for (itk::ImageRegionIteratorWithIndex<Painter::LabelImageType> it(labels, labels->GetLargestPossibleRegion());
       !it.IsAtEnd(); ++it)
  {
    const auto i = it.GetIndex();
    if (i[0] >= 10 && i[0] < 22 && i[1] >= 12 && i[1] < 28 && i[2] >= 4 && i[2] < 12)
    {
      it.Set(6); // liver
    }
    if (i[0] >= 26 && i[0] < 36 && i[1] >= 12 && i[1] < 28 && i[2] >= 4 && i[2] < 12)
    {
      it.Set(1); // spleen
    }
  }
  auto painter = Painter::New();
  painter->SetLabels(labels);
  painter->SetSeed(3);
  painter->SetBodyMargin(2.0); // a thin body, so that the grid's corner lies in the air around it
  painter->Update();
  const auto * ct = painter->GetCT();
  EXPECT_EQ(ct->GetOrigin(), labels->GetOrigin());
  EXPECT_EQ(ct->GetSpacing(), labels->GetSpacing());
  EXPECT_EQ(ct->GetDirection(), labels->GetDirection());
  // Interior means within 12 HU of the table: texture (8 HU) and noise (12 HU) average out over many voxels, blur
  // reaches at most a voxel or so into the interior.
  EXPECT_NEAR(InteriorMean(labels, ct, 6), 60.0, 12.0);
  EXPECT_NEAR(InteriorMean(labels, ct, 1), 50.0, 12.0);
  // The grid reaches beyond the modelled body: some voxels are air, and none of them is labelled.
  size_t air = 0, labelledAir = 0;
  for (itk::ImageRegionConstIteratorWithIndex<Painter::CTImageType> it(ct, ct->GetLargestPossibleRegion());
       !it.IsAtEnd(); ++it)
  {
    if (it.Get() < -900)
    {
      ++air;
      labelledAir += labels->GetPixel(it.GetIndex()) != 0 ? 1 : 0;
    }
  }
  EXPECT_GT(air, 0u);
  EXPECT_EQ(labelledAir, 0u);
}

// Clutter: the unlabelled tissue inside the muscle wall becomes soft-tissue blobs in about ClutterFraction of its
// volume instead of fat. Counted in the body's core (unlabelled voxels away from the organ and the wall).
TEST(LabelMapCTPainter, PaintsClutterInTheGivenFractionOfTheUnlabelledBody)
{
  auto labels = DivAttentionTest::MakeObliqueImage<Painter::LabelImageType>({ { 96, 80, 24 } });
  labels->FillBuffer(0);
  for (itk::ImageRegionIteratorWithIndex<Painter::LabelImageType> it(labels, labels->GetLargestPossibleRegion());
       !it.IsAtEnd(); ++it)
  {
    const auto i = it.GetIndex();
    // Two small labels at opposite corners span the body's ellipse over the whole grid.
    if ((i[0] < 4 && i[1] < 4) || (i[0] >= 92 && i[1] >= 76))
    {
      it.Set(1);
    }
  }
  const auto softFraction = [&](double clutter)
  {
    auto painter = Painter::New();
    painter->SetLabels(labels);
    painter->SetSeed(5);
    painter->SetBodyMargin(10.0); // fat 3.5 mm, muscle 2.5 mm: the core holds most of the grid
    painter->SetClutterFraction(clutter);
    painter->SetClutterHU(40.0);
    painter->SetClutterScale(4.0); // blobs of about 4 mm: many of them in the 67 x 72 x 60 mm core
    painter->Update();
    const auto * ct = painter->GetCT();
    size_t       soft = 0, counted = 0;
    for (itk::ImageRegionConstIteratorWithIndex<Painter::CTImageType> it(ct, ct->GetLargestPossibleRegion());
         !it.IsAtEnd(); ++it)
    {
      const auto i = it.GetIndex();
      if (i[0] >= 24 && i[0] < 72 && i[1] >= 20 && i[1] < 60 && labels->GetPixel(i) == 0)
      {
        ++counted;
        soft +=
          it.Get() > -15 ? 1 : 0; // fat is -70 HU, clutter 40 HU: the midpoint, far from both (texture 8, noise 12)
      }
    }
    return static_cast<double>(soft) / static_cast<double>(counted);
  };
  EXPECT_LT(softFraction(0.0), 0.01);
  // About 0.4 of the core: spatially correlated blobs make the fraction of a finite core vary, hence +-0.15.
  EXPECT_NEAR(softFraction(0.4), 0.4, 0.15);
  EXPECT_GT(softFraction(0.8), 0.6);
  auto painter = Painter::New();
  painter->SetLabels(labels);
  painter->SetClutterScale(0.0);
  EXPECT_THROW(painter->Update(), itk::ExceptionObject);
}

TEST(LabelMapCTPainter, RefusesMissingOrEmptyLabelMap)
{
  auto painter = Painter::New();
  EXPECT_THROW(painter->Update(), itk::ExceptionObject);
  auto labels = DivAttentionTest::MakeObliqueImage<Painter::LabelImageType>({ { 8, 8, 8 } });
  labels->FillBuffer(0);
  painter->SetLabels(labels);
  EXPECT_THROW(painter->Update(), itk::ExceptionObject);
}

TEST(LabelMapCTPainter, PaintsTheRealAmosLabelMap)
{
  const char *                data = std::getenv("DIVATTENTION_TEST_DATA");
  const std::filesystem::path path =
    std::filesystem::path(data ? data : "") / "real" / "amos-labels" / "amos_0013_labels.nii.gz";
  if (data == nullptr || !std::filesystem::exists(path))
  {
    GTEST_SKIP() << "real data not present (" << path << "); a fresh clone has none";
  }
  auto reader = itk::ImageFileReader<Painter::LabelImageType>::New();
  reader->SetFileName(path.string());
  reader->Update();
  auto painter = Painter::New();
  painter->SetLabels(reader->GetOutput());
  painter->Update();
  EXPECT_NEAR(InteriorMean(reader->GetOutput(), painter->GetCT(), 6), 60.0, 12.0); // liver
  EXPECT_NEAR(InteriorMean(reader->GetOutput(), painter->GetCT(), 1), 50.0, 12.0); // spleen
}

// ---- PhantomDataset ---------------------------------------------------------------------------------------------

#include "itkPhantomDataset.h"

#include "itkImageFileWriter.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

TEST(PhantomDataset, WritesAnMsdLayoutWhoseClicksLieInTheirObjects)
{
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / "divattention-phantom-dataset";
  fs::remove_all(root);
  itk::PhantomDataset::Options options;
  options.outputDirectory = root.string();
  options.cases = 2;
  options.seed = 9;
  options.fieldOfView = { { 380.0, 300.0, 260.0 } };
  options.inPlaneSpacing = 5.0;
  options.sliceThickness = { { 6.0, 9.0 } };
  options.maximumObliqueDegrees = 12.0;
  const auto summaries = itk::PhantomDataset::Write(options);
  ASSERT_EQ(summaries.size(), 2u);

  std::ifstream  in(root / "dataset.json");
  nlohmann::json dataset = nlohmann::json::parse(in);
  EXPECT_EQ(dataset["numTraining"], 2);
  EXPECT_EQ(dataset["modality"]["0"], "CT");
  EXPECT_EQ(dataset["labels"]["1"], "liver");
  ASSERT_EQ(dataset["training"].size(), 2u);
  for (size_t c = 0; c < 2; ++c)
  {
    const std::string image = dataset["training"][c]["image"];
    const std::string label = dataset["training"][c]["label"];
    auto              labels = itk::ImageFileReader<itk::Image<uint8_t, 3>>::New();
    labels->SetFileName((root / label).string());
    labels->Update();
    auto ct = itk::ImageFileReader<itk::Image<int16_t, 3>>::New();
    ct->SetFileName((root / image).string());
    ct->Update();
    EXPECT_EQ(ct->GetOutput()->GetLargestPossibleRegion(), labels->GetOutput()->GetLargestPossibleRegion());
    // Each object's click, read back from dataset.json, lands on its label in the written label image.
    for (const auto & object : dataset["divattention"]["cases"][c]["objects"])
    {
      itk::Point<double, 3> click;
      for (unsigned d = 0; d < 3; ++d)
      {
        click[d] = object["click_lps"][d];
      }
      itk::Image<uint8_t, 3>::IndexType index;
      ASSERT_TRUE(labels->GetOutput()->TransformPhysicalPointToIndex(click, index)) << object.dump();
      EXPECT_EQ(labels->GetOutput()->GetPixel(index), object["label"].get<int>()) << object.dump();
    }
  }
  // Deterministic: a second run writes the same label images.
  const fs::path again = root.string() + "-again";
  fs::remove_all(again);
  options.outputDirectory = again.string();
  itk::PhantomDataset::Write(options);
  auto first = itk::ImageFileReader<itk::Image<uint8_t, 3>>::New();
  first->SetFileName((root / summaries[1].label).string());
  first->Update();
  auto second = itk::ImageFileReader<itk::Image<uint8_t, 3>>::New();
  second->SetFileName((again / summaries[1].label).string());
  second->Update();
  EXPECT_TRUE(SameBuffers(first->GetOutput(), second->GetOutput()));
}

// --label-hu: each painted case draws every label's mean HU in the range (not the painter's table: spleen 50, kidney
// 35), records the draws in dataset.json, and two cases draw differently.
TEST(PhantomDataset, RandomLabelHUPaintsEachLabelWithItsOwnDrawInTheRange)
{
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("divattention-phantom-label-hu-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  auto labels = Painter::LabelImageType::New();
  labels->SetRegions(Painter::LabelImageType::RegionType(Painter::LabelImageType::SizeType{ { 48, 40, 16 } }));
  labels->Allocate();
  labels->FillBuffer(0);
  for (itk::ImageRegionIteratorWithIndex<Painter::LabelImageType> it(labels, labels->GetLargestPossibleRegion());
       !it.IsAtEnd(); ++it)
  {
    const auto i = it.GetIndex();
    if (i[1] >= 10 && i[1] < 30 && i[2] >= 3 && i[2] < 13)
    {
      it.Set(i[0] >= 8 && i[0] < 22 ? 1 : i[0] >= 26 && i[0] < 40 ? 2 : 0);
    }
  }
  auto writer = itk::ImageFileWriter<Painter::LabelImageType>::New();
  writer->SetInput(labels);
  writer->SetFileName((root / "labels.nii.gz").string());
  writer->Update();

  itk::PhantomDataset::Options options;
  options.outputDirectory = (root / "out").string();
  options.cases = 2;
  options.seed = 4;
  options.labelMap = (root / "labels.nii.gz").string();
  options.noise = 0.0;
  options.texture = 0.0;
  options.inPlaneBlur = 0.0;
  options.sliceBlurFraction = 0.0;
  options.randomLabelHU = true;
  options.labelHURange = { { 150.0, 400.0 } };
  itk::PhantomDataset::Write(options);
  std::ifstream  in(root / "out" / "dataset.json");
  nlohmann::json dataset = nlohmann::json::parse(in);
  double         first[2] = { 0.0, 0.0 };
  for (size_t c = 0; c < 2; ++c)
  {
    auto ct = itk::ImageFileReader<Painter::CTImageType>::New();
    ct->SetFileName((root / "out" / dataset["training"][c]["image"].get<std::string>()).string());
    ct->Update();
    const auto & drawn = dataset["divattention"]["cases"][c]["label_hu"];
    for (uint16_t label : { 1, 2 })
    {
      const double hu = drawn[std::to_string(label)].get<double>();
      EXPECT_GE(hu, 150.0);
      EXPECT_LE(hu, 400.0);
      // No noise, texture or blur: the interior is the drawn HU up to the int16 rounding (0.5 HU).
      EXPECT_NEAR(InteriorMean(labels, ct->GetOutput(), label), hu, 0.5) << "case " << c << " label " << label;
      if (c == 0)
      {
        first[label - 1] = hu;
      }
      else
      {
        EXPECT_NE(hu, first[label - 1]);
      }
    }
  }
  EXPECT_EQ(dataset["divattention"]["label_hu_range"], nlohmann::json({ 150.0, 400.0 }));
  options.labelHURange = { { 400.0, 150.0 } };
  EXPECT_THROW(itk::PhantomDataset::Validate(options), itk::ExceptionObject);
  fs::remove_all(root);
}

TEST(PhantomDataset, RefusesBadOptionsNamingThem)
{
  itk::PhantomDataset::Options options;
  EXPECT_THROW(itk::PhantomDataset::Validate(options), itk::ExceptionObject); // no output directory
  options.outputDirectory = "/tmp/unused";
  options.cases = 0;
  EXPECT_THROW(itk::PhantomDataset::Validate(options), itk::ExceptionObject);
  options.cases = 1;
  options.sliceThickness = { { 5.0, 2.0 } };
  EXPECT_THROW(itk::PhantomDataset::Validate(options), itk::ExceptionObject);
  options.sliceThickness = { { 2.0, 5.0 } };
  options.labelMap = "/no/such/labels.nii.gz";
  try
  {
    itk::PhantomDataset::Validate(options);
    FAIL() << "accepted a missing label map";
  }
  catch (const itk::ExceptionObject & error)
  {
    EXPECT_NE(std::string(error.GetDescription()).find("/no/such/labels.nii.gz"), std::string::npos);
  }
}
