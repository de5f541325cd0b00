// What the pipeline bench programs (PipelineBench, DeterminismBench) and the session benchmarks (CorrectionBenchmarks)
// run on: a CT phantom of a given grid (seed 4242), the click of one of its objects, the default pair of the bundled
// models, and untrained `paper` models of the same description.
#ifndef divaBenchPhantom_h
#define divaBenchPhantom_h

#include "divaMUnet.h"
#include "divaModelFile.h"
#include "divaUNETR.h"
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

/** An untrained `paper` model with a bundled model's description (role, channels, preprocessing): the paper preset's
 * mUnet (coarse) or UNETR with div-attention (refine), in eval mode. Its masks are meaningless; its cost is the paper
 * network's. */
inline std::shared_ptr<diva::LoadedModel>
PaperModel(const diva::LoadedModel & like, bool coarse)
{
  auto model = std::make_shared<diva::LoadedModel>();
  model->description = like.description;
  model->description.preset = "paper";
  if (coarse)
  {
    auto options = diva::MUnetOptions::Preset("paper").in_channels(2).deep_supervision(true);
    model->network = std::make_shared<diva::MUnetImpl>(options);
  }
  else
  {
    auto options = diva::UNETROptions::Preset("paper");
    options.div_attention().enabled(true);
    model->network = std::make_shared<diva::UNETRImpl>(options);
  }
  model->network->eval();
  return model;
}
} // namespace diva::bench

#endif
