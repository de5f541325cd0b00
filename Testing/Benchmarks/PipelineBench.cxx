// DivAttentionPipelineBench: click -> mask on a large phantom CT held in memory, with the time of each step of
// ClickGuidedSegmentationFilter and the peak resident memory (Documentation/Performance.md, "Pipeline").
//   DivAttentionPipelineBench [--size X,Y,Z] [--spacing X,Y,Z] [--preset small|paper] [--threads N]
//                             [--repeat N] [--object spleen] [--device cpu|cuda|auto] [--probability 0|1]
//                             [--write-inputs DIR] [--write-dicom-series DIR] [--release-cache 0|1] [--models DIR]
//                             [--warm-up N]
// --write-inputs writes what the same run needs as a command line (DIR/ct.nii, uncompressed; DIR/click.txt, LPS;
// for `paper`, DIR/coarse-paper.pt and DIR/refine-paper.pt), so DivAttentionSegment can be timed on the same CT.
// --write-dicom-series DIR writes the CT as a DICOM series (DIR/IM1000.dcm, ... one file per slice) and DIR/click.txt,
// for DivAttentionSegment's DICOM input and DICOM SEG output (cold-start-bench.sh's `dicom` mode).
// `small` uses the bundled models (or coarse-munet-small.pt and refine-unetr-small-divattention.pt from --models DIR,
// e.g. an earlier set, to compare model sets on one binary); `paper` builds untrained paper-preset models (mUnet and
// UNETR + div-attention) with the bundled models' preprocessing: their masks are meaningless, their cost is the paper
// networks' cost (with the coarse region fixed to one window, since an untrained network would grow it at random:
// DivAttentionSegment's
// --coarse-max-extent 1).
// --warm-up N runs SegmentationModelSupport::WarmUp N times on each model before the first click and prints each
// time (the first warm-up pays the lazy set-up of its shapes, the second shows a plain forward): run 1 then shows what
// of the first click's extra time the warm-up leaves (Documentation/Performance.md, "Cold start").
#include "DivAttentionDicomSeries.h"
#include "divaBenchPhantom.h"
#include "divaDevice.h"
#include "divaHostAllocator.h"
#include "divaModelFile.h"
#include "itkCTPhantomGenerator.h"
#include "itkClickGuidedSegmentationFilter.h"
#include "itkDivAttentionRuntime.h"
#include "itkImageFileWriter.h"
#include "itkSegmentationModelSupport.h"

#if defined(__GLIBC__)
#  include <malloc.h>
#endif
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

namespace
{
using CTImageType = itk::CTPhantomGenerator::CTImageType;
using MaskImageType = itk::Image<uint8_t, 3>;
using FilterType = itk::ClickGuidedSegmentationFilter<CTImageType, MaskImageType>;

double
PeakResidentMiB()
{
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

// Linux: the peak resident size since the last ResetPeakResident() (VmHWM), so that the phantom generator's own peak
// (~1.1 GiB for 512x512x300) does not hide the pipeline's; -1 where /proc does not say.
double
PeakResidentSinceResetMiB()
{
  std::ifstream status("/proc/self/status");
  std::string   line;
  while (std::getline(status, line))
  {
    if (line.rfind("VmHWM:", 0) == 0)
    {
      return std::stod(line.substr(6)) / 1024.0;
    }
  }
  return -1.0;
}

void
ResetPeakResident()
{
#if defined(__GLIBC__)
  malloc_trim(0); // what the phantom generator freed goes back to the system first
#endif
  std::ofstream("/proc/self/clear_refs") << "5";
}

std::array<double, 3>
Triple(const std::string & text)
{
  std::array<double, 3> v{};
  char                  comma = 0;
  std::istringstream    in(text);
  in >> v[0] >> comma >> v[1] >> comma >> v[2];
  if (!in)
  {
    throw std::invalid_argument("expected x,y,z, got \"" + text + "\"");
  }
  return v;
}

} // namespace

int
main(int argc, char ** argv)
{
  std::string size = "512,512,300", spacing = "0.75,0.75,1.0", preset = "small", object = "spleen", device = "cpu",
              writeInputs, writeDicomSeries, modelDirectory = DIVATTENTION_BUNDLED_MODEL_DIR;
  int  threads = 0, repeat = 3, warmUps = 0;
  bool probability = false;  // as DivAttentionSegment without --probability: the label is pasted directly
  bool releaseCache = false; // the filter's default (ReleaseCacheBetweenStages)
  for (int i = 1; i + 1 < argc; i += 2)
  {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--size")
      size = value;
    else if (key == "--spacing")
      spacing = value;
    else if (key == "--preset")
      preset = value;
    else if (key == "--threads")
      threads = std::stoi(value);
    else if (key == "--repeat")
      repeat = std::stoi(value);
    else if (key == "--models")
      modelDirectory = value;
    else if (key == "--object")
      object = value;
    else if (key == "--device")
      device = value;
    else if (key == "--probability")
      probability = value == "1";
    else if (key == "--release-cache")
      releaseCache = value == "1";
    else if (key == "--warm-up")
      warmUps = std::stoi(value);
    else if (key == "--write-inputs")
      writeInputs = value;
    else if (key == "--write-dicom-series")
      writeDicomSeries = value;
    else
    {
      std::cerr << "unknown option " << key << std::endl;
      return 2;
    }
  }
  try
  {
    itk::DivAttentionRuntime::Initialize();
    if (threads > 0)
    {
      itk::DivAttentionRuntime::SetThreadBudget(threads);
    }
    const auto s = Triple(size);
    auto       phantom = diva::bench::MakeBenchPhantom(s, Triple(spacing));
    const auto click = diva::bench::ObjectClick(*phantom, object);
    auto [coarse, refine] = diva::bench::LoadDefaultModels(modelDirectory);
    if (preset == "paper")
    {
      coarse = diva::bench::PaperModel(*coarse, true);
      refine = diva::bench::PaperModel(*refine, false);
    }
    else if (preset != "small")
    {
      throw std::invalid_argument("--preset must be small or paper");
    }
    std::printf("DivAttentionPipelineBench: CT %s at %s mm (%.0f MiB as int16), preset %s, %d threads, object %s, "
                "device %s\n",
                size.c_str(), spacing.c_str(), s[0] * s[1] * s[2] * 2.0 / 1048576.0, preset.c_str(),
                itk::DivAttentionRuntime::GetThreadBudget(), object.c_str(),
                diva::DescribeDevice(diva::ResolveDevice(device)).c_str());
    if (!writeInputs.empty())
    {
      const std::filesystem::path directory = writeInputs;
      std::filesystem::create_directories(directory);
      auto writer = itk::ImageFileWriter<CTImageType>::New();
      writer->SetInput(phantom->GetCT());
      writer->SetFileName((directory / "ct.nii").string());
      writer->UseCompressionOff();
      writer->Update();
      std::ofstream(directory / "click.txt")
        << std::setprecision(9) << click[0] << ',' << click[1] << ',' << click[2] << '\n';
      if (preset == "paper")
      {
        diva::SaveModel((directory / "coarse-paper.pt").string(), *coarse->network, coarse->description);
        diva::SaveModel((directory / "refine-paper.pt").string(), *refine->network, refine->description);
      }
      std::printf("wrote %s (ct.nii, click.txt%s)\n", directory.c_str(),
                  preset == "paper" ? ", coarse-paper.pt, refine-paper.pt" : "");
    }
    if (!writeDicomSeries.empty())
    {
      diva::testing::WriteDicomSeries(phantom->GetCT(), writeDicomSeries, "DIVATTENTION-BENCH");
      std::ofstream(std::filesystem::path(writeDicomSeries) / "click.txt")
        << std::setprecision(9) << click[0] << ',' << click[1] << ',' << click[2] << '\n';
      std::printf("wrote %s (a DICOM series of %zu slices, click.txt)\n", writeDicomSeries.c_str(),
                  static_cast<size_t>(phantom->GetCT()->GetLargestPossibleRegion().GetSize()[2]));
    }
    // From here on only the CT is kept: the phantom's other images go, and the peak starts again from what is left.
    CTImageType::Pointer ct = phantom->GetCT();
    phantom = nullptr;
    ResetPeakResident();
    std::printf("resident before the first click: %.0f MiB (the CT, the models, the libraries)\n",
                PeakResidentSinceResetMiB());
    for (int k = 0; k < warmUps; ++k)
    {
      // As DivAttentionSegment does in a thread beside the read: one forward of each at the run's shapes.
      const auto start = std::chrono::steady_clock::now();
      const auto seconds = [&]() { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start); };
      itk::SegmentationModelSupport::WarmUp(*coarse, "coarse model", false);
      const double coarseSeconds = seconds().count();
      itk::SegmentationModelSupport::WarmUp(*refine, "refine model", true);
      std::printf("warm-up %d: coarse %.3f s, refine %.3f s, peak RSS %.0f MiB\n", k + 1, coarseSeconds,
                  seconds().count() - coarseSeconds, PeakResidentSinceResetMiB());
    }
    for (int run = 0; run < repeat; ++run)
    {
      auto filter = FilterType::New();
      filter->SetInput(ct);
      filter->SetCoarseModel(coarse);
      filter->SetRefineModel(refine);
      filter->SetClicks({ click });
      filter->SetDevice(device); // the outputs are ITK images on the host: each run ends synchronised
      filter->SetComputeProbabilityImage(probability);
      filter->SetReleaseCacheBetweenStages(releaseCache);
      if (preset == "paper")
      {
        filter->SetCoarseMaximumExtent(1.0); // one window (never less): see the header comment
      }
      diva::ResetHostAllocatorPeaks();
      const auto start = std::chrono::steady_clock::now();
      filter->Update();
      const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("run %d: total %.3f s |", run + 1, total);
      for (const auto & [step, seconds] : filter->GetStepSeconds())
      {
        std::printf(" %s %.3f s (%.0f%%) |", step.c_str(), seconds, 100.0 * seconds / total);
      }
      const auto allocator = diva::GetHostAllocatorStatistics();
      std::printf(" peak RSS %.0f MiB since the CT was ready (process: %.0f MiB); tensor memory at most %.0f MiB live, "
                  "%.0f MiB mapped\n",
                  PeakResidentSinceResetMiB(), PeakResidentMiB(), allocator.peakLiveBytes / 1048576.0,
                  allocator.peakMappedBytes / 1048576.0);
    }
    return 0;
  }
  catch (const std::exception & error)
  {
    std::cerr << "DivAttentionPipelineBench: " << error.what() << std::endl;
    return 1;
  }
}
