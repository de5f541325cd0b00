// The ITK <-> LibTorch bridge: axis convention, zero copy, geometry, and every refusal.
#include "DivAttentionTestImages.h"
#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkImageTensorBridge.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

namespace
{
using FloatImage = itk::Image<float, 3>;
using ShortImage = itk::Image<short, 3>;
using UShortImage = itk::Image<unsigned short, 3>;

FloatImage::SizeType
AsymmetricSize()
{
  return { { 7, 5, 3 } }; // x, y, z all different, so a swapped axis cannot go unnoticed
}

template<typename TImage>
void
ExpectThrowsWithMessage(const std::function<void()> & action, const std::string & fragment)
{
  try
  {
    action();
    FAIL() << "expected an itk::ExceptionObject mentioning \"" << fragment << "\"";
  }
  catch (const itk::ExceptionObject & error)
  {
    EXPECT_NE(std::string(error.GetDescription()).find(fragment), std::string::npos) << error.GetDescription();
  }
}
} // namespace

TEST(ImageTensorBridge, ShapeIsNCDHWWithXFastest)
{
  auto image = DivAttentionTest::MakeObliqueImage<FloatImage>(AsymmetricSize());
  DivAttentionTest::FillWithIndexCode(image.GetPointer());
  const torch::Tensor tensor = itk::ImageToTensor(image.GetPointer());
  ASSERT_EQ(tensor.sizes(), (std::vector<int64_t>{ 1, 1, 3, 5, 7 }));
  EXPECT_EQ(tensor.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(tensor.is_contiguous());
  for (int64_t k = 0; k < 3; ++k)
    for (int64_t j = 0; j < 5; ++j)
      for (int64_t i = 0; i < 7; ++i)
      {
        EXPECT_EQ(tensor[0][0][k][j][i].item<float>(), static_cast<float>(i + 100 * j + 10000 * k));
      }
}

TEST(ImageTensorBridge, ImageToTensorSharesMemoryBothWays)
{
  auto image = DivAttentionTest::MakeObliqueImage<FloatImage>(AsymmetricSize());
  image->FillBuffer(1.0f);
  torch::Tensor tensor = itk::ImageToTensor(image.GetPointer());
  EXPECT_EQ(tensor.data_ptr(), static_cast<void *>(image->GetBufferPointer()));
  // Write through the tensor, read through the image.
  tensor[0][0][2][4][6] = 42.0f;
  EXPECT_EQ(image->GetPixel({ { 6, 4, 2 } }), 42.0f);
  // And the other way.
  image->SetPixel({ { 1, 2, 0 } }, -7.0f);
  EXPECT_EQ(tensor[0][0][0][2][1].item<float>(), -7.0f);
}

TEST(ImageTensorBridge, TensorKeepsImageMemoryAlive)
{
  torch::Tensor tensor;
  {
    auto image = DivAttentionTest::MakeObliqueImage<ShortImage>(AsymmetricSize());
    DivAttentionTest::FillWithIndexCode(image.GetPointer());
    tensor = itk::ImageToTensor(image.GetPointer());
  } // the last SmartPointer to the image is gone; the pixel container must survive through the tensor
  EXPECT_EQ(tensor[0][0][2][3][4].item<int16_t>(), static_cast<int16_t>(4 + 300 + 20000));
}

TEST(ImageTensorBridge, TensorToImageSharesMemoryAndKeepsTensorAlive)
{
  auto          reference = DivAttentionTest::MakeObliqueImage<FloatImage>(AsymmetricSize());
  torch::Tensor tensor = torch::arange(7 * 5 * 3, torch::kFloat32).reshape({ 1, 1, 3, 5, 7 });
  void *        storage = tensor.data_ptr();
  auto          image = itk::TensorToImage<FloatImage>(tensor, reference.GetPointer());
  EXPECT_EQ(static_cast<void *>(image->GetBufferPointer()), storage);
  tensor.reset(); // the image alone now owns a reference to the storage
  EXPECT_EQ(image->GetPixel({ { 6, 4, 2 } }), static_cast<float>(6 + 7 * 4 + 35 * 2));
}

TEST(ImageTensorBridge, RoundTripIsBitIdentical)
{
  std::mt19937                          random(7);
  std::uniform_real_distribution<float> uniform(-1000.0f, 3000.0f);
  auto                                  image = DivAttentionTest::MakeObliqueImage<FloatImage>({ { 16, 11, 9 } });
  for (float * p = image->GetBufferPointer(); p != image->GetBufferPointer() + 16 * 11 * 9; ++p)
  {
    *p = uniform(random);
  }
  // Through a real copy (clone), so the comparison is not of a buffer with itself.
  const torch::Tensor copy = itk::ImageToTensor(image.GetPointer()).clone();
  auto                back = itk::TensorToImage<FloatImage>(copy, image.GetPointer());
  ASSERT_NE(back->GetBufferPointer(), image->GetBufferPointer());
  EXPECT_EQ(std::memcmp(back->GetBufferPointer(), image->GetBufferPointer(), 16 * 11 * 9 * sizeof(float)), 0);
  EXPECT_EQ(back->GetOrigin(), image->GetOrigin());
  EXPECT_EQ(back->GetSpacing(), image->GetSpacing());
  EXPECT_EQ(back->GetDirection(), image->GetDirection());
}

TEST(ImageTensorBridge, ObliqueAnisotropicGeometrySameValuesAtSamePhysicalPoints)
{
  // An asymmetric phantom: a bright voxel block off-centre plus the index code, on an oblique anisotropic grid.
  auto image = DivAttentionTest::MakeObliqueImage<FloatImage>({ { 12, 9, 6 } });
  DivAttentionTest::FillWithIndexCode(image.GetPointer());
  image->SetPixel({ { 9, 1, 4 } }, 1.0e6f);
  // A tensor operation that must not move anything: x2 then /2.
  const torch::Tensor processed = itk::ImageToTensor(image.GetPointer()).mul(2.0).div(2.0).contiguous();
  auto                back = itk::TensorToImage<FloatImage>(processed, image.GetPointer());
  itk::ImageRegionConstIteratorWithIndex<FloatImage> it(image, image->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it)
  {
    FloatImage::PointType point;
    image->TransformIndexToPhysicalPoint(it.GetIndex(), point);
    FloatImage::IndexType index;
    ASSERT_TRUE(back->TransformPhysicalPointToIndex(point, index));
    EXPECT_EQ(back->GetPixel(index), it.Get()) << "at physical point " << point;
  }
}

TEST(ImageTensorBridge, ImageToTensorAsConvertsPixelTypesTorchLacks)
{
  auto image = UShortImage::New();
  image->SetRegions(UShortImage::SizeType{ { 4, 3, 2 } });
  image->Allocate();
  image->FillBuffer(60000); // above int16's range: a silent reinterpretation would show
  const torch::Tensor tensor = itk::ImageToTensorAs(image.GetPointer(), torch::kFloat32);
  EXPECT_EQ(tensor.sizes(), (std::vector<int64_t>{ 1, 1, 2, 3, 4 }));
  EXPECT_EQ(tensor.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::all(tensor == 60000.0f).item<bool>());
}

TEST(ImageTensorBridge, ImagesToChannelsStacksOnOneGridAndRefusesAnother)
{
  auto ct = DivAttentionTest::MakeObliqueImage<FloatImage>(AsymmetricSize());
  auto click = DivAttentionTest::MakeObliqueImage<FloatImage>(AsymmetricSize());
  ct->FillBuffer(-500.0f);
  click->FillBuffer(3.0f);
  const torch::Tensor stacked = itk::ImagesToChannels<FloatImage>({ ct.GetPointer(), click.GetPointer() });
  EXPECT_EQ(stacked.sizes(), (std::vector<int64_t>{ 1, 2, 3, 5, 7 }));
  EXPECT_TRUE(torch::all(stacked.select(1, 0) == -500.0f).item<bool>());
  EXPECT_TRUE(torch::all(stacked.select(1, 1) == 3.0f).item<bool>());

  auto shifted = DivAttentionTest::MakeObliqueImage<FloatImage>(AsymmetricSize());
  auto origin = shifted->GetOrigin();
  origin[1] += 5.0;
  shifted->SetOrigin(origin);
  ExpectThrowsWithMessage<FloatImage>(
    [&] {
      itk::ImagesToChannels<FloatImage>({ ct.GetPointer(), shifted.GetPointer() });
    },
    "image 1");

  const torch::Tensor batch = itk::StackBatch({ stacked, stacked });
  EXPECT_EQ(batch.sizes(), (std::vector<int64_t>{ 2, 2, 3, 5, 7 }));
}

TEST(ImageTensorBridge, RefusesPartlyBufferedImage)
{
  auto                   image = FloatImage::New();
  FloatImage::RegionType largest({ { 0, 0, 0 } }, { { 8, 8, 8 } });
  FloatImage::RegionType part({ { 0, 0, 2 } }, { { 8, 8, 3 } });
  image->SetLargestPossibleRegion(largest);
  image->SetBufferedRegion(part);
  image->SetRequestedRegion(part);
  image->Allocate();
  ExpectThrowsWithMessage<FloatImage>([&] { itk::ImageToTensor(image.GetPointer()); }, "largest possible region");
  ExpectThrowsWithMessage<FloatImage>([&] { itk::ImageToTensor<FloatImage>(nullptr); }, "null");
}

TEST(ImageTensorBridge, RefusesBadTensors)
{
  auto       reference = DivAttentionTest::MakeObliqueImage<FloatImage>(AsymmetricSize());
  const auto good = torch::zeros({ 1, 1, 3, 5, 7 });
  EXPECT_NO_THROW(itk::TensorToImage<FloatImage>(good, reference.GetPointer()));
  EXPECT_NO_THROW(itk::TensorToImage<FloatImage>(good.view({ 3, 5, 7 }), reference.GetPointer()));

  ExpectThrowsWithMessage<FloatImage>(
    [&] {
      itk::TensorToImage<FloatImage>(torch::zeros({ 1, 1, 7, 5, 3 }).transpose(2, 4), reference.GetPointer());
    },
    "not contiguous");
  ExpectThrowsWithMessage<FloatImage>(
    [&] {
      itk::TensorToImage<FloatImage>(torch::zeros({ 1, 1, 3, 5, 7 }, torch::kFloat64), reference.GetPointer());
    },
    "dtype");
  ExpectThrowsWithMessage<FloatImage>(
    [&] {
      itk::TensorToImage<FloatImage>(torch::zeros({ 5, 7 }), reference.GetPointer());
    },
    "rank 2");
  ExpectThrowsWithMessage<FloatImage>(
    [&] {
      itk::TensorToImage<FloatImage>(torch::zeros({ 1, 1, 1, 3, 5, 7 }), reference.GetPointer());
    },
    "rank 6");
  ExpectThrowsWithMessage<FloatImage>(
    [&] {
      itk::TensorToImage<FloatImage>(torch::zeros({ 2, 1, 3, 5, 7 }), reference.GetPointer());
    },
    "more than one image");
  ExpectThrowsWithMessage<FloatImage>(
    [&] {
      itk::TensorToImage<FloatImage>(torch::zeros({ 1, 1, 7, 5, 3 }), reference.GetPointer());
    },
    "does not match the reference");
  ExpectThrowsWithMessage<FloatImage>([&] { itk::TensorToImage<FloatImage>(torch::Tensor(), reference.GetPointer()); },
                                      "undefined");
  ExpectThrowsWithMessage<FloatImage>([&] { itk::TensorToImage<FloatImage>(good, nullptr); },
                                      "reference image is null");
}

TEST(ImageTensorBridge, StackingRefusesMismatchedTensors)
{
  const auto a = torch::zeros({ 1, 1, 3, 5, 7 });
  ExpectThrowsWithMessage<FloatImage>(
    [&] {
      itk::StackChannels({ a, torch::zeros({ 1, 1, 3, 5, 6 }) });
    },
    "incompatible");
  ExpectThrowsWithMessage<FloatImage>(
    [&] {
      itk::StackChannels({ a, torch::zeros({ 1, 1, 3, 5, 7 }, torch::kFloat64) });
    },
    "tensor 1");
  ExpectThrowsWithMessage<FloatImage>([&] { itk::StackChannels({ a, torch::zeros({ 3, 5, 7 }) }); }, "rank 3");
  ExpectThrowsWithMessage<FloatImage>([&] { itk::StackBatch({}); }, "nothing to stack");
}
