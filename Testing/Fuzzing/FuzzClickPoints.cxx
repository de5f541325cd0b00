// Fuzz target: the click parser (itk::ClickPoints), which reads what a user types after --click. Any text either
// parses into three finite numbers or throws itk::ExceptionObject (its documented error type); a parsed click then
// converts to a physical point in each space (LPS, RAS, voxel index of an oblique, anisotropic image) and is tested
// for being inside that image.
#include "itkClickPoints.h"
#include "itkImage.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace
{
using ImageType = itk::Image<int16_t, 3>;

ImageType::Pointer
MakeGeometry()
{
  auto image = ImageType::New(); // geometry only: nothing is allocated
  image->SetRegions(ImageType::RegionType(ImageType::IndexType{ { 2, -3, 0 } }, ImageType::SizeType{ { 40, 30, 20 } }));
  image->SetSpacing(ImageType::SpacingType(std::array<double, 3>{ { 0.7, 0.8, 2.5 } }.data()));
  const double origin[3] = { -120.0, 35.5, 900.25 };
  image->SetOrigin(origin);
  ImageType::DirectionType direction; // a rotation of 30 degrees about z
  direction.SetIdentity();
  direction(0, 0) = std::cos(0.5235987755982988);
  direction(0, 1) = -std::sin(0.5235987755982988);
  direction(1, 0) = std::sin(0.5235987755982988);
  direction(1, 1) = std::cos(0.5235987755982988);
  image->SetDirection(direction);
  return image;
}
} // namespace

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t * data, size_t size)
{
  static const ImageType::Pointer image = MakeGeometry();
  const std::string               text(reinterpret_cast<const char *>(data), size);
  try
  {
    (void)itk::ClickPoints::ParseSpace(text);
  }
  catch (const itk::ExceptionObject &)
  {
  }

  std::array<double, 3> coordinates{};
  try
  {
    coordinates = itk::ClickPoints::ParseTriple(text);
  }
  catch (const itk::ExceptionObject &)
  {
    return 0;
  }
  for (const double value : coordinates)
  {
    if (!std::isfinite(value))
    {
      __builtin_trap(); // ParseTriple promises three finite numbers
    }
  }
  for (const auto space :
       { itk::ClickPoints::Space::LPS, itk::ClickPoints::Space::RAS, itk::ClickPoints::Space::Index })
  {
    const auto point = itk::ClickPoints::ToPhysicalPoint(coordinates, space, image);
    (void)itk::ClickPoints::IsInside(point, image);
  }
  (void)itk::ClickPoints::Parse({ text, text }, itk::ClickPoints::Space::RAS, nullptr);
  try
  {
    (void)itk::ClickPoints::Parse({ text }, itk::ClickPoints::Space::Index, nullptr);
    __builtin_trap(); // an index click without its image must be refused
  }
  catch (const itk::ExceptionObject &)
  {
  }
  return 0;
}
