// ClickSampler: clicks inside the mask, reproducible per seed, interior weighting, empty mask, object API.
#include "DivAttentionTestImages.h"
#include "FilterTestUtilities.h"
#include "itkClickSampler.h"
#include "itkTestingMacros.h"

#include <gtest/gtest.h>

#include <cmath>

namespace
{
using MaskImageType = itk::Image<unsigned char, 3>;
using SamplerType = itk::ClickSampler<MaskImageType>;
using StrategyEnum = SamplerType::StrategyEnum;

struct Object
{
  MaskImageType::Pointer    mask;
  MaskImageType::PointType  centre;
  itk::Matrix<double, 3, 3> axes;
  itk::Vector<double, 3>    semiAxes;

  // Normalised ellipsoid radius of a point: 0 at the centre, 1 on the surface.
  double
  Radius(const MaskImageType::PointType & p) const
  {
    double sum = 0.0;
    for (unsigned int k = 0; k < 3; ++k)
    {
      double along = 0.0;
      for (unsigned int r = 0; r < 3; ++r)
      {
        along += axes[r][k] * (p[r] - centre[r]);
      }
      sum += (along / semiAxes[k]) * (along / semiAxes[k]);
    }
    return std::sqrt(sum);
  }
};

Object
MakeObject()
{
  Object o;
  o.mask = DivAttentionTest::MakeObliqueImage<MaskImageType>({ { 60, 50, 20 } });
  o.centre = DivAttentionTest::PhysicalCentre(o.mask.GetPointer());
  o.axes = DivAttentionTest::Rotation(0.3, 0.5, 0.2);
  o.semiAxes[0] = 16.0;
  o.semiAxes[1] = 11.0;
  o.semiAxes[2] = 8.0;
  DivAttentionTest::FillEllipsoid(o.mask.GetPointer(), o.centre, o.axes, o.semiAxes);
  return o;
}

int
ExerciseObject()
{
  auto sampler = SamplerType::New();
  ITK_EXERCISE_BASIC_OBJECT_METHODS(sampler, ClickSampler, Object);
  sampler->SetSeed(42);
  ITK_TEST_SET_GET_VALUE(42u, sampler->GetSeed());
  sampler->SetMaskThreshold(0.25);
  ITK_TEST_SET_GET_VALUE(0.25, sampler->GetMaskThreshold());
  sampler->SetStrategy(StrategyEnum::Interior);
  ITK_TEST_SET_GET_VALUE(StrategyEnum::Interior, sampler->GetStrategy());
  auto mask = MaskImageType::New();
  sampler->SetMask(mask);
  ITK_TEST_SET_GET_VALUE(mask.GetPointer(), sampler->GetMask());
  return EXIT_SUCCESS;
}
} // namespace

TEST(ClickSampler, BasicObjectMethods)
{
  EXPECT_EQ(ExerciseObject(), EXIT_SUCCESS);
}

TEST(ClickSampler, ClicksFallInsideTheMaskAndRepeatPerSeed)
{
  const auto object = MakeObject();
  for (const auto strategy : { StrategyEnum::Uniform, StrategyEnum::Interior })
  {
    auto sampler = SamplerType::New();
    sampler->SetMask(object.mask);
    sampler->SetStrategy(strategy);
    sampler->SetSeed(2024);
    auto again = SamplerType::New();
    again->SetMask(object.mask);
    again->SetStrategy(strategy);
    again->SetSeed(2024);
    auto other = SamplerType::New();
    other->SetMask(object.mask);
    other->SetStrategy(strategy);
    other->SetSeed(7);
    std::size_t differences = 0;
    for (int n = 0; n < 300; ++n)
    {
      const auto click = sampler->Sample();
      // Inside the mask: the voxel that contains the click is an object voxel.
      MaskImageType::IndexType index;
      ASSERT_TRUE(object.mask->TransformPhysicalPointToIndex(click, index)) << click;
      ASSERT_EQ(object.mask->GetPixel(index), 1) << click;
      ASSERT_EQ(again->Sample(), click); // same seed -> same sequence
      differences += (other->Sample() != click) ? 1 : 0;
    }
    EXPECT_GT(differences, 250u); // another seed gives other clicks (a few may coincide by chance)
    // Setting the seed again restarts the sequence.
    const auto first = [&]
    {
      auto fresh = SamplerType::New();
      fresh->SetMask(object.mask);
      fresh->SetStrategy(strategy);
      fresh->SetSeed(99);
      return fresh->Sample();
    }();
    sampler->SetSeed(99);
    EXPECT_EQ(sampler->Sample(), first);
  }
}

TEST(ClickSampler, InteriorStrategyFavoursTheInside)
{
  // Uniform points in a solid ellipsoid have mean normalised radius 3/4; weighting by the distance to the boundary
  // moves clicks inwards. With 600 clicks the mean's standard error is ~0.01, so the 0.08 margin cannot flake.
  const auto object = MakeObject();
  const auto meanRadius = [&](StrategyEnum strategy)
  {
    auto sampler = SamplerType::New();
    sampler->SetMask(object.mask);
    sampler->SetStrategy(strategy);
    sampler->SetSeed(5);
    double sum = 0.0;
    for (int n = 0; n < 600; ++n)
    {
      sum += object.Radius(sampler->Sample());
    }
    return sum / 600.0;
  };
  const double uniform = meanRadius(StrategyEnum::Uniform);
  const double interior = meanRadius(StrategyEnum::Interior);
  EXPECT_NEAR(uniform, 0.75, 0.05);
  EXPECT_LT(interior, uniform - 0.08);
}

TEST(ClickSampler, EmptyOrMissingMaskThrows)
{
  auto sampler = SamplerType::New();
  try
  {
    sampler->Sample();
    ADD_FAILURE() << "no mask must throw";
  }
  catch (const itk::ExceptionObject & error)
  {
    EXPECT_NE(std::string(error.GetDescription()).find("\"Mask\": no mask was set"), std::string::npos);
  }
  auto mask = DivAttentionTest::MakeObliqueImage<MaskImageType>({ { 10, 10, 5 } });
  mask->FillBuffer(0);
  sampler->SetMask(mask);
  try
  {
    sampler->Sample();
    ADD_FAILURE() << "an empty mask must throw";
  }
  catch (const itk::ExceptionObject & error)
  {
    EXPECT_NE(std::string(error.GetDescription()).find("\"Mask\": the mask is empty"), std::string::npos)
      << error.GetDescription();
  }
}
