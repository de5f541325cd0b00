// DivAttentionDeterminismBench: how far inference results move between thread counts (and between the CPU and CUDA
// when LibTorch sees a GPU), for each bundled network and for the whole click -> probability pipeline
// (Documentation/Reliability.md, "Determinism", records the figures).
//   DivAttentionDeterminismBench [--threads A,B] [--models DIR] [--size X,Y,Z] [--spacing X,Y,Z] [--skip-pipeline]
// For every model file of the bundled set: a phantom patch (a bright ellipsoid on noise, plus a click map for
// 2-input models) at the model's patch size goes through the network twice at A threads, twice at B threads (each
// pair must be bit-identical: same operations, same order) and, when CUDA exists, once on the GPU; printed: the largest
// absolute difference of the foreground probability and of the logits, the number of differing voxels and of voxels
// whose mask (probability >= 0.5) flips. The pipeline row does the same with ClickGuidedSegmentationFilter on a CT
// phantom (probability on the CT grid).
#include "divaBenchPhantom.h"
#include "divaModelFile.h"
#include "divaSegmentationLoss.h"
#include "itkCTPhantomGenerator.h"
#include "itkClickGuidedSegmentationFilter.h"
#include "itkDivAttentionRuntime.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace
{
namespace fs = std::filesystem;

std::vector<double>
Numbers(const std::string & text, size_t count)
{
  std::vector<double> values;
  std::istringstream  in(text);
  for (std::string item; std::getline(in, item, ',');)
  {
    values.push_back(std::stod(item));
  }
  if (values.size() != count)
  {
    throw std::invalid_argument("expected " + std::to_string(count) + " comma-separated numbers, got \"" + text + "\"");
  }
  return values;
}

// The phantom patch of the network tests: an ellipsoid (1) on Gaussian noise (sd 0.3); channel 2: distance to its
// centre (what a click map looks like). Fixed seed.
torch::Tensor
PhantomPatch(int64_t side, int64_t channels)
{
  torch::manual_seed(7);
  const auto axis = torch::linspace(-1.0, 1.0, side);
  const auto grids = torch::meshgrid({ axis, axis, axis }, "ij");
  const auto z = grids[0] - 0.1, y = grids[1] + 0.15, x = grids[2];
  const auto inside = (z * z / 0.25 + y * y / 0.16 + x * x / 0.3).le(1.0).to(torch::kFloat32);
  auto       image = (inside + 0.3 * torch::randn({ side, side, side })).view({ 1, 1, side, side, side });
  if (channels == 2)
  {
    image = torch::cat({ image, (z * z + y * y + x * x).sqrt().view({ 1, 1, side, side, side }) }, 1);
  }
  return image;
}

struct Difference
{
  double  maxProbability = 0.0;
  double  maxLogit = 0.0;
  int64_t differing = 0;
  int64_t flipped = 0;
  int64_t total = 0;
};

Difference
Compare(const torch::Tensor & logitsA, const torch::Tensor & logitsB)
{
  const auto a = logitsA.to(torch::kCPU), b = logitsB.to(torch::kCPU);
  const auto pa = diva::ForegroundProbability(a), pb = diva::ForegroundProbability(b);
  Difference d;
  d.maxProbability = (pa - pb).abs().max().item<double>();
  d.maxLogit = (a - b).abs().max().item<double>();
  d.differing = pa.ne(pb).sum().item<int64_t>();
  d.flipped = pa.ge(0.5).ne(pb.ge(0.5)).sum().item<int64_t>();
  d.total = pa.numel();
  return d;
}

void
Print(const std::string & what, const std::string & comparison, const Difference & d)
{
  std::printf("| %s | %s | %.3g | %.3g | %lld / %lld | %lld |\n", what.c_str(), comparison.c_str(), d.maxProbability,
              d.maxLogit, static_cast<long long>(d.differing), static_cast<long long>(d.total),
              static_cast<long long>(d.flipped));
  std::fflush(stdout);
}

torch::Tensor
Forward(diva::SegmentationNetworkImpl & network, const torch::Tensor & input, int threads)
{
  itk::DivAttentionRuntime::SetThreadBudget(threads);
  torch::InferenceMode guard;
  return network.Segment(input).logits.clone();
}

using CTImageType = itk::CTPhantomGenerator::CTImageType;
using FilterType = itk::ClickGuidedSegmentationFilter<CTImageType>;

// The probability map of one pipeline run on the CT grid, flattened (the pipeline exposes no logits: its rows repeat
// the probability difference in the logit column).
torch::Tensor
PipelineProbability(const CTImageType *                        ct,
                    const itk::Point<double, 3> &              click,
                    const std::shared_ptr<diva::LoadedModel> & coarse,
                    const std::shared_ptr<diva::LoadedModel> & refine,
                    int                                        threads)
{
  itk::DivAttentionRuntime::SetThreadBudget(threads);
  auto filter = FilterType::New();
  filter->SetInput(ct);
  filter->SetCoarseModel(coarse);
  filter->SetRefineModel(refine);
  filter->SetClicks({ click });
  filter->SetDevice("cpu");
  filter->Update();
  const auto * probability = filter->GetProbabilityImage();
  const auto   count = static_cast<int64_t>(probability->GetLargestPossibleRegion().GetNumberOfPixels());
  return torch::from_blob(const_cast<float *>(probability->GetBufferPointer()), { count }, torch::kFloat32).clone();
}

Difference
CompareProbabilities(const torch::Tensor & a, const torch::Tensor & b)
{
  Difference d;
  d.maxProbability = (a - b).abs().max().item<double>();
  d.maxLogit = d.maxProbability;
  d.differing = a.ne(b).sum().item<int64_t>();
  d.flipped = a.ge(0.5).ne(b.ge(0.5)).sum().item<int64_t>();
  d.total = a.numel();
  return d;
}
} // namespace

int
main(int argc, char ** argv)
{
  std::string threadsText = "1,2", modelDirectory = DIVATTENTION_BUNDLED_MODEL_DIR, size = "160,128,96",
              spacing = "2.5,2.5,3";
  bool pipeline = true;
  for (int i = 1; i < argc; ++i)
  {
    const std::string key = argv[i];
    if (key == "--skip-pipeline")
    {
      pipeline = false;
      continue;
    }
    if (i + 1 >= argc)
    {
      std::cerr << "option " << key << " needs a value" << std::endl;
      return 2;
    }
    const std::string value = argv[++i];
    if (key == "--threads")
      threadsText = value;
    else if (key == "--models")
      modelDirectory = value;
    else if (key == "--size")
      size = value;
    else if (key == "--spacing")
      spacing = value;
    else
    {
      std::cerr << "unknown option " << key << std::endl;
      return 2;
    }
  }
  try
  {
    itk::DivAttentionRuntime::Initialize();
    const auto threads = Numbers(threadsText, 2);
    const int  a = static_cast<int>(threads[0]), b = static_cast<int>(threads[1]);
    const bool cuda = torch::cuda::is_available();
    std::printf("DivAttentionDeterminismBench: threads %d vs %d, CUDA %s, LibTorch %s\n\n", a, b,
                cuda ? "available" : "not available", TORCH_VERSION);
    std::printf("| network (model file) | comparison | max abs diff probability | max abs diff logit | voxels that "
                "differ | mask voxels flipped |\n|---|---|---|---|---|---|\n");
    for (const char * name : { "coarse-munet-small.pt", "refine-unetr-small-divattention.pt", "refine-unetr-small.pt",
                               "refine-espnet-small-divattention.pt", "refine-espnet-small.pt" })
    {
      const auto path = fs::path(modelDirectory) / name;
      auto       model = diva::LoadModel(path.string());
      model.network->eval();
      const auto & patch = model.description.preprocessing.patchSize;
      const auto   input = PhantomPatch(patch[0], model.network->GetInputChannels());
      const auto   a1 = Forward(*model.network, input, a), a2 = Forward(*model.network, input, a);
      const auto   b1 = Forward(*model.network, input, b), b2 = Forward(*model.network, input, b);
      Print(name, std::to_string(a) + " thread(s), run 1 vs run 2", Compare(a1, a2));
      Print(name, std::to_string(b) + " thread(s), run 1 vs run 2", Compare(b1, b2));
      Print(name, std::to_string(a) + " vs " + std::to_string(b) + " threads", Compare(a1, b1));
      if (cuda)
      {
        model.network->to(torch::kCUDA);
        const auto g = Forward(*model.network, input.to(torch::kCUDA), a);
        Print(name, "CPU (" + std::to_string(a) + " thread(s)) vs CUDA", Compare(a1, g));
        model.network->to(torch::kCPU);
      }
    }
    if (pipeline)
    {
      const auto s = Numbers(size, 3), sp = Numbers(spacing, 3);
      const auto phantom = diva::bench::MakeBenchPhantom({ { s[0], s[1], s[2] } }, { { sp[0], sp[1], sp[2] } });
      const auto click = diva::bench::ObjectClick(*phantom, "spleen");
      const auto [coarse, refine] = diva::bench::LoadDefaultModels(modelDirectory);
      const auto        p1 = PipelineProbability(phantom->GetCT(), click, coarse, refine, a);
      const auto        p2 = PipelineProbability(phantom->GetCT(), click, coarse, refine, a);
      const auto        q1 = PipelineProbability(phantom->GetCT(), click, coarse, refine, b);
      const auto        q2 = PipelineProbability(phantom->GetCT(), click, coarse, refine, b);
      const std::string what = "pipeline (CT " + size + " at " + spacing + " mm, spleen click; default models)";
      Print(what, std::to_string(a) + " thread(s), run 1 vs run 2", CompareProbabilities(p1, p2));
      Print(what, std::to_string(b) + " thread(s), run 1 vs run 2", CompareProbabilities(q1, q2));
      Print(what, std::to_string(a) + " vs " + std::to_string(b) + " threads", CompareProbabilities(p1, q1));
    }
    return 0;
  }
  catch (const std::exception & error)
  {
    std::cerr << "DivAttentionDeterminismBench: " << error.what() << std::endl;
    return 1;
  }
}
