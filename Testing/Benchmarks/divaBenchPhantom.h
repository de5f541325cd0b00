// What the pipeline bench programs (PipelineBench, DeterminismBench) run on: a CT phantom of a given grid (seed
// 4242), the click of one of its objects, and the default pair of the bundled models.
#ifndef divaBenchPhantom_h
#define divaBenchPhantom_h

#include "divaModelFile.h"
#include "itkCTPhantomGenerator.h"

#include <array>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace diva::bench
{
/** The benchmarks' CT phantom (itk::CTPhantomGenerator, seed 4242): `size` voxels (x, y, z) of `spacing` mm,
 * generated. */
inline itk::CTPhantomGenerator::Pointer
MakeBenchPhantom(const std::array<double, 3> & size, const std::array<double, 3> & spacing)
{
  auto phantom = itk::CTPhantomGenerator::New();
  phantom->SetSeed(4242);
  phantom->SetSize({ { static_cast<itk::SizeValueType>(size[0]), static_cast<itk::SizeValueType>(size[1]),
                       static_cast<itk::SizeValueType>(size[2]) } });
  phantom->SetSpacing(itk::CTPhantomGenerator::SpacingType(spacing.data()));
  phantom->Update();
  return phantom;
}

/** The click (physical, LPS) of the phantom's object `name`, e.g. "spleen"; throws std::invalid_argument naming it
 * where the phantom has no such object. */
inline itk::CTPhantomGenerator::PointType
ObjectClick(const itk::CTPhantomGenerator & phantom, const std::string & name)
{
  const itk::CTPhantomGenerator::PhantomObject * found = nullptr;
  for (const auto & object : phantom.GetObjects())
  {
    found = object.name == name ? &object : found;
  }
  if (found == nullptr)
  {
    throw std::invalid_argument("no phantom object \"" + name + "\"");
  }
  return found->click;
}

/** The default pair of the bundled models, read from `directory`. */
struct DefaultModels
{
  std::shared_ptr<diva::LoadedModel> coarse; ///< coarse-munet-small.pt
  std::shared_ptr<diva::LoadedModel> refine; ///< refine-unetr-small-divattention.pt
};

inline DefaultModels
LoadDefaultModels(const std::filesystem::path & directory)
{
  DefaultModels models;
  models.coarse = std::make_shared<diva::LoadedModel>(diva::LoadModel((directory / "coarse-munet-small.pt").string()));
  models.refine =
    std::make_shared<diva::LoadedModel>(diva::LoadModel((directory / "refine-unetr-small-divattention.pt").string()));
  return models;
}
} // namespace diva::bench

#endif
