// ClickDistanceTransformFilter: analytic physical distances on an oblique anisotropic grid, the encodings, the
// negative output, geometry-only use of the reference, streaming and threading, errors, and the basic object API.
#include "DivAttentionTestImages.h"
#include "FilterTestUtilities.h"
#include "itkCastImageFilter.h"
#include "itkClickDistanceTransformFilter.h"
#include "itkTestingMacros.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace
{
using ReferenceImageType = itk::Image<short, 3>;
using OutputImageType = itk::Image<float, 3>;
using FilterType = itk::ClickDistanceTransformFilter<ReferenceImageType, OutputImageType>;
using PointType = FilterType::PointType;
using EncodingEnum = FilterType::EncodingEnum;

ReferenceImageType::Pointer
MakeReference()
{
  return DivAttentionTest::MakeObliqueImage<ReferenceImageType>({ { 37, 41, 23 } });
}

// Clicks on the oblique grid: one exactly at a voxel centre, one between voxels, one outside the image.
std::vector<PointType>
MakeClicks(const ReferenceImageType * reference)
{
  PointType atVoxel, between;
  reference->TransformIndexToPhysicalPoint({ { 10, 20, 7 } }, atVoxel);
  itk::ContinuousIndex<double, 3> c;
  c[0] = 25.3;
  c[1] = 8.7;
  c[2] = 15.5;
  reference->TransformContinuousIndexToPhysicalPoint(c, between);
  PointType outside = atVoxel;
  outside[0] += 300.0;
  outside[2] -= 200.0;
  return { atVoxel, between, outside };
}

double
NearestDistance(const PointType & p, const std::vector<PointType> & clicks)
{
  double best = std::numeric_limits<double>::infinity();
  for (const auto & click : clicks)
  {
    best = std::min(best, p.EuclideanDistanceTo(click));
  }
  return best;
}

// Compares every voxel with the analytic value of the encoding. Tolerance 1e-3 mm (or 1e-5 of an encoded [0, 1]
// value): the output is float32, whose rounding at distances below 600 mm is under 4e-5 mm; the margin is still
// three orders of magnitude below a voxel.
void
ExpectEncoding(const OutputImageType *               output,
               const std::vector<PointType> &        clicks,
               const std::function<double(double)> & encode,
               double                                tolerance)
{
  itk::ImageRegionConstIteratorWithIndex<OutputImageType> it(output, output->GetBufferedRegion());
  std::size_t                                             checked = 0;
  for (; !it.IsAtEnd(); ++it)
  {
    PointType p;
    output->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    const double expected = encode(NearestDistance(p, clicks));
    ASSERT_NEAR(it.Get(), expected, tolerance) << "at " << it.GetIndex();
    ++checked;
  }
  EXPECT_EQ(checked, output->GetLargestPossibleRegion().GetNumberOfPixels());
}

int
ExerciseObject()
{
  auto filter = FilterType::New();
  ITK_EXERCISE_BASIC_OBJECT_METHODS(filter, ClickDistanceTransformFilter, ImageToImageFilter);
  filter->SetEncoding(EncodingEnum::Gaussian);
  ITK_TEST_SET_GET_VALUE(EncodingEnum::Gaussian, filter->GetEncoding());
  filter->SetClipRadius(12.5);
  ITK_TEST_SET_GET_VALUE(12.5, filter->GetClipRadius());
  filter->SetGaussianSigma(3.25);
  ITK_TEST_SET_GET_VALUE(3.25, filter->GetGaussianSigma());
  PointType click;
  click.Fill(1.5);
  filter->AddClick(click);
  filter->AddNegativeClick(click);
  ITK_TEST_SET_GET_VALUE(std::size_t{ 1 }, filter->GetClicks().size());
  ITK_TEST_SET_GET_VALUE(std::size_t{ 1 }, filter->GetNegativeClicks().size());
  filter->SetClicks({});
  ITK_TEST_SET_GET_VALUE(std::size_t{ 0 }, filter->GetClicks().size());
  filter->Print(std::cout);
  return EXIT_SUCCESS;
}
} // namespace

TEST(ClickDistanceTransformFilter, BasicObjectMethods)
{
  EXPECT_EQ(ExerciseObject(), EXIT_SUCCESS);
}

TEST(ClickDistanceTransformFilter, EuclideanDistanceMatchesAnalyticOnObliqueAnisotropicGrid)
{
  const auto reference = MakeReference();
  const auto clicks = MakeClicks(reference);
  auto       filter = FilterType::New();
  filter->SetReferenceImage(reference);
  filter->SetClicks(clicks);
  filter->Update();
  const OutputImageType * output = filter->GetOutput();
  EXPECT_EQ(output->GetLargestPossibleRegion(), reference->GetLargestPossibleRegion());
  EXPECT_EQ(output->GetOrigin(), reference->GetOrigin());
  EXPECT_EQ(output->GetSpacing(), reference->GetSpacing());
  EXPECT_EQ(output->GetDirection(), reference->GetDirection());
  ExpectEncoding(
    output, clicks, [](double d) { return d; }, 1e-3);
  EXPECT_NEAR(output->GetPixel({ { 10, 20, 7 } }), 0.0f, 1e-3); // the click at a voxel centre
  // Without negative clicks the second output buffers nothing.
  EXPECT_EQ(filter->GetNegativeOutput()->GetBufferedRegion().GetNumberOfPixels(), 0u);
}

TEST(ClickDistanceTransformFilter, EncodingsBehaveAsDocumented)
{
  const auto reference = MakeReference();
  const auto clicks = MakeClicks(reference);
  auto       filter = FilterType::New();
  filter->SetReferenceImage(reference);
  filter->SetClicks(clicks);

  filter->SetEncoding(EncodingEnum::ClippedScaled);
  filter->SetClipRadius(15.0);
  filter->Update();
  ExpectEncoding(
    filter->GetOutput(), clicks, [](double d) { return std::min(d, 15.0) / 15.0; }, 1e-5);
  EXPECT_NEAR(filter->GetOutput()->GetPixel({ { 10, 20, 7 } }), 0.0f, 1e-5);
  EXPECT_EQ(filter->GetOutput()->GetPixel({ { 36, 0, 22 } }), 1.0f); // far from every click: clipped to exactly 1

  filter->SetEncoding(EncodingEnum::Gaussian);
  filter->SetGaussianSigma(4.0);
  filter->Update();
  ExpectEncoding(
    filter->GetOutput(), clicks, [](double d) { return std::exp(-d * d / 32.0); }, 1e-5);
  EXPECT_NEAR(filter->GetOutput()->GetPixel({ { 10, 20, 7 } }), 1.0f, 1e-5);
}

TEST(ClickDistanceTransformFilter, NegativeClicksGiveTheSecondOutput)
{
  const auto reference = MakeReference();
  const auto clicks = MakeClicks(reference);
  auto       filter = FilterType::New();
  filter->SetReferenceImage(reference);
  filter->AddClick(clicks[0]);
  filter->AddNegativeClick(clicks[1]);
  filter->AddNegativeClick(clicks[2]);
  filter->Update();
  ExpectEncoding(
    filter->GetOutput(), { clicks[0] }, [](double d) { return d; }, 1e-3);
  ExpectEncoding(
    filter->GetNegativeOutput(), { clicks[1], clicks[2] }, [](double d) { return d; }, 1e-3);
}

TEST(ClickDistanceTransformFilter, RequestsNoPixelOfTheReference)
{
  // The reference comes out of a filter: if its pixels were requested, the cast would fill a buffer.
  const auto reference = MakeReference();
  auto       cast = itk::CastImageFilter<ReferenceImageType, ReferenceImageType>::New();
  cast->SetInput(reference);
  auto filter = FilterType::New();
  filter->SetReferenceImage(cast->GetOutput());
  filter->SetClicks(MakeClicks(reference));
  filter->Update();
  EXPECT_EQ(cast->GetOutput()->GetBufferedRegion().GetNumberOfPixels(), 0u);
  EXPECT_EQ(filter->GetOutput()->GetBufferedRegion(), reference->GetLargestPossibleRegion());
}

TEST(ClickDistanceTransformFilter, StreamingAndThreadingGiveIdenticalImages)
{
  const auto reference = MakeReference();
  auto       filter = FilterType::New();
  filter->SetReferenceImage(reference);
  const auto clicks = MakeClicks(reference);
  filter->AddClick(clicks[0]);
  filter->AddClick(clicks[2]);
  filter->AddNegativeClick(clicks[1]);
  filter->SetEncoding(EncodingEnum::Gaussian);

  const auto whole = DivAttentionTest::Stream<OutputImageType>(filter->GetOutput(), 1);
  const auto pieces = DivAttentionTest::Stream<OutputImageType>(filter->GetOutput(), 7);
  EXPECT_TRUE(DivAttentionTest::ImagesIdentical<OutputImageType>(whole, pieces));
  const auto negativeWhole = DivAttentionTest::Stream<OutputImageType>(filter->GetNegativeOutput(), 1);
  const auto negativePieces = DivAttentionTest::Stream<OutputImageType>(filter->GetNegativeOutput(), 7);
  EXPECT_TRUE(DivAttentionTest::ImagesIdentical<OutputImageType>(negativeWhole, negativePieces));

  filter->SetNumberOfWorkUnits(1);
  filter->UpdateLargestPossibleRegion();
  OutputImageType::Pointer one = filter->GetOutput();
  one->DisconnectPipeline();
  filter->SetNumberOfWorkUnits(2);
  filter->UpdateLargestPossibleRegion();
  EXPECT_TRUE(DivAttentionTest::ImagesIdentical<OutputImageType>(one, filter->GetOutput()));
  EXPECT_TRUE(DivAttentionTest::ImagesIdentical<OutputImageType>(whole, filter->GetOutput()));
}

TEST(ClickDistanceTransformFilter, SubRegionRequestComputesOnlyThatRegion)
{
  const auto reference = MakeReference();
  const auto clicks = MakeClicks(reference);
  auto       full = FilterType::New();
  full->SetReferenceImage(reference);
  full->SetClicks(clicks);
  full->Update();

  auto filter = FilterType::New();
  filter->SetReferenceImage(reference);
  filter->SetClicks(clicks);
  const OutputImageType::RegionType sub({ { 5, 9, 3 } }, { { 11, 6, 4 } });
  filter->GetOutput()->SetRequestedRegion(sub);
  filter->Update();
  ASSERT_EQ(filter->GetOutput()->GetBufferedRegion(), sub);
  itk::ImageRegionConstIteratorWithIndex<OutputImageType> it(filter->GetOutput(), sub);
  for (; !it.IsAtEnd(); ++it)
  {
    ASSERT_EQ(it.Get(), full->GetOutput()->GetPixel(it.GetIndex())) << it.GetIndex();
  }
}

TEST(ClickDistanceTransformFilter, BadInputsGiveTheDocumentedErrors)
{
  const auto reference = MakeReference();
  const auto expectError = [&](const std::function<void(FilterType *)> & configure, const char * fragment)
  {
    auto filter = FilterType::New();
    filter->SetReferenceImage(reference);
    configure(filter);
    try
    {
      filter->Update();
      ADD_FAILURE() << "no exception; expected one mentioning " << fragment;
    }
    catch (const itk::ExceptionObject & error)
    {
      EXPECT_NE(std::string(error.GetDescription()).find(fragment), std::string::npos) << error.GetDescription();
    }
  };
  PointType good;
  good.Fill(0.0);
  PointType notFinite = good;
  notFinite[1] = std::numeric_limits<double>::quiet_NaN();
  PointType infinite = good;
  infinite[2] = std::numeric_limits<double>::infinity();

  expectError([](FilterType *) {}, "at least one click");
  expectError([&](FilterType * f) { f->AddClick(notFinite); }, "\"Clicks\": click 0 is not finite");
  expectError(
    [&](FilterType * f)
    {
      f->AddClick(good);
      f->AddNegativeClick(good);
      f->AddNegativeClick(infinite);
    },
    "\"NegativeClicks\": click 1 is not finite");
  expectError(
    [&](FilterType * f)
    {
      f->AddClick(good);
      f->SetEncoding(EncodingEnum::ClippedScaled);
      f->SetClipRadius(0.0);
    },
    "ClipRadius");
  expectError(
    [&](FilterType * f)
    {
      f->AddClick(good);
      f->SetEncoding(EncodingEnum::Gaussian);
      f->SetGaussianSigma(-1.0);
    },
    "GaussianSigma");
}
