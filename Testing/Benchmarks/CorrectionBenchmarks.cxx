// One correction click in a live itk::ClickGuidedSegmentationSession (Documentation/Performance.md, "Corrections"):
// the largest volume of the pipeline benchmarks (a 512 x 512 x 300 phantom of 0.75 x 0.75 x 1 mm, seed 4242), the
// bundled `small` models, the spleen clicked once before timing. Each iteration gives one click and takes it back
// (Undo, timed with it: a few milliseconds).
//   BM_SessionNegativeClick       a negative click on the spleen's mask voxel farthest from the click (the geodesic
//                                 carve over the whole organ; no network)
//   BM_SessionNegativeClickInside a negative click inside the spleen, half way from its click to that farthest voxel
//                                 (counter depth_mm: how deep it lies; the bounded carve checks each candidate's depth)
//   BM_SessionPositiveClick       a positive click on the left kidney, outside the mask: the whole pipeline at it
//                                 (the cache is cleared between iterations, untimed); counters: each pipeline step's
//                                 wall ms (GetLastPipelineStepSeconds) and the session's own (session_ms: the click's
//                                 wall time less the steps, i.e. the component, the correction rule, Undo)
//   BM_SessionPositiveClickCached the same click again after Undo: the cached run's component joins the mask

#include "divaModelFile.h"
#include "itkCTPhantomGenerator.h"
#include "itkClickGuidedSegmentationSession.h"
#include "itkDivAttentionRuntime.h"
#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkMaskCorrectionSupport.h"

#include <benchmark/benchmark.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#ifndef DIVATTENTION_BUNDLED_MODEL_DIR
#  define DIVATTENTION_BUNDLED_MODEL_DIR "Models"
#endif

namespace
{
using CTImageType = itk::CTPhantomGenerator::CTImageType;
using SessionType = itk::ClickGuidedSegmentationSession<CTImageType>;

struct LiveSession
{
  itk::CTPhantomGenerator::Pointer phantom;
  SessionType::Pointer             session;
  SessionType::PointType           spleen, kidney, farthest, inside;
  double                           insideDepth = 0.0;
};

// Made once: the phantom, the models and a session holding the spleen's mask.
LiveSession &
Live()
{
  static LiveSession live = []()
  {
    LiveSession made;
    made.phantom = itk::CTPhantomGenerator::New();
    made.phantom->SetSeed(4242);
    made.phantom->SetSize({ { 512, 512, 300 } });
    itk::CTPhantomGenerator::SpacingType spacing;
    spacing[0] = 0.75;
    spacing[1] = 0.75;
    spacing[2] = 1.0;
    made.phantom->SetSpacing(spacing);
    made.phantom->Update();
    for (const auto & object : made.phantom->GetObjects())
    {
      made.spleen = object.name == "spleen" ? object.click : made.spleen;
      made.kidney = object.name == "kidney_left" ? object.click : made.kidney;
    }
    const std::filesystem::path models = DIVATTENTION_BUNDLED_MODEL_DIR;
    made.session = SessionType::New();
    made.session->SetCoarseModel(
      std::make_shared<diva::LoadedModel>(diva::LoadModel((models / "coarse-munet-small.pt").string())));
    made.session->SetRefineModel(
      std::make_shared<diva::LoadedModel>(diva::LoadModel((models / "refine-unetr-small-divattention.pt").string())));
    made.session->SetDevice("cpu");
    made.session->SetImage(made.phantom->GetCT());
    made.session->AddPositiveClick(made.spleen);
    const auto * mask = made.session->GetMask();
    double       farthest = -1.0;
    for (itk::ImageRegionConstIteratorWithIndex<SessionType::OutputImageType> it(mask, mask->GetBufferedRegion());
         !it.IsAtEnd(); ++it)
    {
      if (it.Get() != 0)
      {
        SessionType::PointType point;
        mask->TransformIndexToPhysicalPoint(it.GetIndex(), point);
        if (point.EuclideanDistanceTo(made.spleen) > farthest)
        {
          farthest = point.EuclideanDistanceTo(made.spleen);
          made.farthest = point;
        }
      }
    }
    if (farthest < 0.0)
    {
      throw std::runtime_error("the spleen's click found nothing");
    }
    // Half way from the click to the farthest voxel, on the mask.
    for (unsigned int a = 0; a < 3; ++a)
    {
      made.inside[a] = 0.5 * (made.spleen[a] + made.farthest[a]);
    }
    SessionType::OutputImageType::IndexType index;
    if (!mask->TransformPhysicalPointToIndex(made.inside, index) || mask->GetPixel(index) == 0)
    {
      throw std::runtime_error("the point half way to the spleen's farthest voxel is not on its mask");
    }
    made.insideDepth = itk::MaskCorrectionSupport::DepthInMask(mask, index);
    return made;
  }();
  return live;
}

void
BM_SessionNegativeClick(benchmark::State & state)
{
  itk::DivAttentionRuntime::SetThreadBudget(static_cast<int>(state.range(0)));
  auto & live = Live();
  for (auto _ : state)
  {
    live.session->AddNegativeClick(live.farthest);
    live.session->Undo();
  }
  state.counters["pipeline_runs"] = live.session->GetNumberOfPipelineRuns();
}

void
BM_SessionNegativeClickInside(benchmark::State & state)
{
  itk::DivAttentionRuntime::SetThreadBudget(static_cast<int>(state.range(0)));
  auto & live = Live();
  for (auto _ : state)
  {
    live.session->AddNegativeClick(live.inside);
    live.session->Undo();
  }
  state.counters["depth_mm"] = live.insideDepth;
}

void
BM_SessionPositiveClick(benchmark::State & state)
{
  itk::DivAttentionRuntime::SetThreadBudget(static_cast<int>(state.range(0)));
  auto &                        live = Live();
  bool                          odd = false;
  std::map<std::string, double> stepMs;
  double                        sessionMs = 0.0;
  for (auto _ : state)
  {
    state.PauseTiming();
    // A threshold change clears the cached runs: this click runs the pipeline.
    live.session->SetThreshold(odd ? 0.5 : 0.5 + 1e-9);
    odd = !odd;
    state.ResumeTiming();
    const auto start = std::chrono::steady_clock::now();
    live.session->AddPositiveClick(live.kidney);
    live.session->Undo();
    double own = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    for (const auto & [step, seconds] : live.session->GetLastPipelineStepSeconds())
    {
      stepMs[step] += 1000.0 * seconds;
      own -= 1000.0 * seconds;
    }
    sessionMs += own;
  }
  for (const auto & [step, ms] : stepMs)
  {
    state.counters[step + "_ms"] = benchmark::Counter(ms, benchmark::Counter::kAvgIterations);
  }
  state.counters["session_ms"] = benchmark::Counter(sessionMs, benchmark::Counter::kAvgIterations);
  live.session->SetThreshold(0.5);
}

void
BM_SessionPositiveClickCached(benchmark::State & state)
{
  itk::DivAttentionRuntime::SetThreadBudget(static_cast<int>(state.range(0)));
  auto & live = Live();
  live.session->AddPositiveClick(live.kidney);
  live.session->Undo();
  for (auto _ : state)
  {
    live.session->AddPositiveClick(live.kidney);
    live.session->Undo();
  }
}
} // namespace

BENCHMARK(BM_SessionNegativeClick)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SessionNegativeClickInside)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SessionPositiveClick)
  ->Arg(2)
  ->ArgName("threads")
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime()
  ->Iterations(3);
BENCHMARK(BM_SessionPositiveClickCached)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
