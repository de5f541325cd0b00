// One correction click in a live itk::ClickGuidedSegmentationSession (Documentation/Performance.md, "Corrections"):
// the largest volume of the pipeline benchmarks (a 512 x 512 x 300 phantom of 0.75 x 0.75 x 1 mm, seed 4242), the
// bundled `small` models, the spleen clicked once before timing. Each iteration gives one click and takes it back
// (Undo, timed with it: a few milliseconds). The label of a positive click's benchmark is the click's outcome
// (ClickGuidedSegmentationSession::GetLastClickOutcome: "stage 1", "pipeline", "like-intensity").
//   BM_SessionNegativeClick       a negative click on the spleen's mask voxel farthest from the click (the geodesic
//                                 carve over the whole organ; no network)
//   BM_SessionNegativeClickInside a negative click inside the spleen, half way from its click to that farthest voxel
//                                 (counter depth_mm: how deep it lies; the bounded carve checks each candidate's depth)
//   BM_SessionPositiveCorrection  a positive correction beside the mask: a second session holds the spleen's mask cut
//                                 2 mm past its click along +x, and the click lies 12 mm past the click, in the miss:
//                                 stage 1 alone in one window at it (the cache is cleared between iterations,
//                                 untimed); counters: each step's wall ms (GetLastPipelineStepSeconds) and the
//                                 session's own (session_ms: the click's wall time less the steps, i.e. the
//                                 correction rule and Undo)
//   BM_SessionPositiveCorrectionCached the same correction again after Undo: the cached window through the rule
//   BM_SessionPositiveClick       a positive click on the left kidney, outside the mask and far from it (a new object):
//                                 its stage-1 window, then the whole pipeline at it; counters as above
//   BM_SessionPositiveClickCached the same click again after Undo: the cached run's component joins the mask
// The `paper` preset (no paper-size model is bundled; the time does not depend on the weights): the same clicks with
// untrained paper-preset models of the bundled models' description (diva::bench::PaperModel, as
// DivAttentionPipelineBench --preset paper), on sessions that start from the `small` session's masks (SetPreviousMask:
// the spleen's mask, with its click given again inside it as the carve's anchor; the cut mask), since an untrained
// network's own masks are meaningless. Each click is given once, untimed, before timing (the networks' first-run
// set-up).
//   BM_SessionPaperNegativeClick, BM_SessionPaperNegativeClickInside, BM_SessionPaperPositiveCorrection,
//   BM_SessionPaperPositiveClick   as above (what the untrained stage 1 answers decides the positive clicks' path:
//                                  see the label)

#include "divaBenchPhantom.h"
#include "divaModelFile.h"
#include "itkCTPhantomGenerator.h"
#include "itkClickGuidedSegmentationSession.h"
#include "itkDivAttentionRuntime.h"
#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkMaskCorrectionSupport.h"

#include <benchmark/benchmark.h>

#include <algorithm>
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
  itk::CTPhantomGenerator::Pointer      phantom;
  SessionType::Pointer                  session;
  SessionType::Pointer                  correction; // the spleen's mask cut past its click
  SessionType::OutputImageType::Pointer cut;        // that mask
  SessionType::PointType                spleen, kidney, farthest, inside, miss;
  double                                insideDepth = 0.0;
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
    // The correction: the spleen's mask up to 2 mm past its click along +x, a click 12 mm past it (in the spleen).
    auto cut = SessionType::OutputImageType::New();
    cut->CopyInformation(mask);
    cut->SetRegions(mask->GetLargestPossibleRegion());
    cut->Allocate();
    for (itk::ImageRegionConstIteratorWithIndex<SessionType::OutputImageType> it(mask, mask->GetBufferedRegion());
         !it.IsAtEnd(); ++it)
    {
      SessionType::PointType point;
      mask->TransformIndexToPhysicalPoint(it.GetIndex(), point);
      cut->SetPixel(it.GetIndex(), it.Get() != 0 && point[0] <= made.spleen[0] + 2.0 ? 1 : 0);
    }
    made.miss = made.spleen;
    made.miss[0] += 12.0;
    if (!mask->TransformPhysicalPointToIndex(made.miss, index) || mask->GetPixel(index) == 0)
    {
      throw std::runtime_error("the point 12 mm past the spleen's click is not on its mask");
    }
    made.correction = SessionType::New();
    made.correction->SetCoarseModel(
      std::make_shared<diva::LoadedModel>(diva::LoadModel((models / "coarse-munet-small.pt").string())));
    made.correction->SetRefineModel(
      std::make_shared<diva::LoadedModel>(diva::LoadModel((models / "refine-unetr-small-divattention.pt").string())));
    made.correction->SetDevice("cpu");
    made.correction->SetImage(made.phantom->GetCT());
    made.correction->SetPreviousMask(cut);
    made.cut = cut;
    return made;
  }();
  return live;
}

// The same clicks with untrained `paper` models, on sessions that start from the `small` sessions' masks.
LiveSession &
LivePaper()
{
  static LiveSession live = []()
  {
    const LiveSession & small = Live();
    LiveSession         made = small;
    const auto          bundled = diva::bench::LoadDefaultModels(DIVATTENTION_BUNDLED_MODEL_DIR);
    const auto          coarse = diva::bench::PaperModel(*bundled.coarse, true);
    const auto          refine = diva::bench::PaperModel(*bundled.refine, false);
    auto                session = [&](const SessionType::OutputImageType * previous)
    {
      auto fresh = SessionType::New();
      fresh->SetCoarseModel(coarse);
      fresh->SetRefineModel(refine);
      fresh->SetDevice("cpu");
      fresh->SetImage(small.phantom->GetCT());
      fresh->SetPreviousMask(previous);
      return fresh;
    };
    made.session = session(small.session->GetMask());
    made.session->AddPositiveClick(made.spleen); // inside the mask: the carve's anchor, no network
    made.correction = session(made.cut);
    // Each timed click once, untimed: the paper networks' first forward at these shapes sets them up.
    made.correction->AddPositiveClick(made.miss);
    made.correction->Undo();
    made.session->AddPositiveClick(made.kidney);
    made.session->Undo();
    return made;
  }();
  return live;
}

void
NegativeClick(benchmark::State & state, LiveSession & live)
{
  itk::DivAttentionRuntime::SetThreadBudget(static_cast<int>(state.range(0)));
  for (auto _ : state)
  {
    live.session->AddNegativeClick(live.farthest);
    live.session->Undo();
  }
  state.counters["pipeline_runs"] = live.session->GetNumberOfPipelineRuns();
}

void
NegativeClickInside(benchmark::State & state, LiveSession & live)
{
  itk::DivAttentionRuntime::SetThreadBudget(static_cast<int>(state.range(0)));
  for (auto _ : state)
  {
    live.session->AddNegativeClick(live.inside);
    live.session->Undo();
  }
  state.counters["depth_mm"] = live.insideDepth;
}

// One positive click and its Undo, the cached runs cleared before each (untimed); step and session counters.
void
TimeUncachedClick(benchmark::State & state, SessionType * session, const SessionType::PointType & click)
{
  bool                          odd = false;
  std::string                   outcome;
  std::map<std::string, double> stepMs;
  double                        sessionMs = 0.0;
  for (auto _ : state)
  {
    state.PauseTiming();
    // A threshold change clears the cached runs: this click runs the networks.
    session->SetThreshold(odd ? 0.5 : 0.5 + 1e-9);
    odd = !odd;
    state.ResumeTiming();
    const auto start = std::chrono::steady_clock::now();
    session->AddPositiveClick(click);
    outcome = session->GetLastClickOutcome();
    session->Undo();
    double own = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    for (const auto & [step, seconds] : session->GetLastPipelineStepSeconds())
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
  state.SetLabel(outcome);
  session->SetThreshold(0.5);
}

void
PositiveClick(benchmark::State & state, LiveSession & live)
{
  itk::DivAttentionRuntime::SetThreadBudget(static_cast<int>(state.range(0)));
  TimeUncachedClick(state, live.session, live.kidney);
}

void
PositiveCorrection(benchmark::State & state, LiveSession & live)
{
  itk::DivAttentionRuntime::SetThreadBudget(static_cast<int>(state.range(0)));
  TimeUncachedClick(state, live.correction, live.miss);
  const auto count = [&]()
  {
    const auto * mask = live.correction->GetMask();
    return static_cast<double>(std::count_if(mask->GetBufferPointer(),
                                             mask->GetBufferPointer() + mask->GetBufferedRegion().GetNumberOfPixels(),
                                             [](auto value) { return value != 0; }));
  };
  const double before = count();
  live.correction->AddPositiveClick(live.miss);
  state.counters["added_voxels"] = count() - before;
  live.correction->Undo();
}

void
BM_SessionNegativeClick(benchmark::State & state)
{
  NegativeClick(state, Live());
}

void
BM_SessionNegativeClickInside(benchmark::State & state)
{
  NegativeClickInside(state, Live());
}

void
BM_SessionPositiveCorrection(benchmark::State & state)
{
  PositiveCorrection(state, Live());
}

void
BM_SessionPositiveClick(benchmark::State & state)
{
  PositiveClick(state, Live());
}

void
BM_SessionPaperNegativeClick(benchmark::State & state)
{
  NegativeClick(state, LivePaper());
}

void
BM_SessionPaperNegativeClickInside(benchmark::State & state)
{
  NegativeClickInside(state, LivePaper());
}

void
BM_SessionPaperPositiveCorrection(benchmark::State & state)
{
  PositiveCorrection(state, LivePaper());
}

void
BM_SessionPaperPositiveClick(benchmark::State & state)
{
  PositiveClick(state, LivePaper());
}

void
BM_SessionPositiveCorrectionCached(benchmark::State & state)
{
  itk::DivAttentionRuntime::SetThreadBudget(static_cast<int>(state.range(0)));
  auto & live = Live();
  live.correction->AddPositiveClick(live.miss);
  live.correction->Undo();
  for (auto _ : state)
  {
    live.correction->AddPositiveClick(live.miss);
    live.correction->Undo();
  }
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
BENCHMARK(BM_SessionPositiveCorrection)
  ->Arg(2)
  ->ArgName("threads")
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime()
  ->Iterations(5);
BENCHMARK(BM_SessionPositiveCorrectionCached)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SessionPositiveClick)
  ->Arg(2)
  ->ArgName("threads")
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime()
  ->Iterations(3);
BENCHMARK(BM_SessionPositiveClickCached)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SessionPaperNegativeClick)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SessionPaperNegativeClickInside)->Arg(2)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_SessionPaperPositiveCorrection)
  ->Arg(2)
  ->ArgName("threads")
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime()
  ->Iterations(3);
BENCHMARK(BM_SessionPaperPositiveClick)
  ->Arg(2)
  ->ArgName("threads")
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime()
  ->Iterations(3);
