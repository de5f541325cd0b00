// DivAttentionEvaluate: runs trained models over a split (or the whole dataset) with clicks simulated from the
// reference masks (fixed seed) and reports Dice, recall, precision and HD95 per sample and per model, as CSV and as a
// table laid out like the paper's Table 1. Two modes:
// - whole pipeline (--coarse-model, or NAME=coarse.pt,refine.pt models): ClickGuidedSegmentationFilter on the full CT
//   for each simulated click, the full-resolution mask scored against the instance's reference mask;
// - one stage (otherwise): each model on its own stage's input (stage 1's window, stage 2's PCA crop).
// --correction-clicks N (whole pipeline): after each instance's first click, N correction clicks simulated from the
// reference (itk::NextCorrectionClick: the centre of the largest error region, positive in a miss, negative in a false
// positive) and applied through itk::ClickGuidedSegmentationSession; Dice and HD95 after every click, DSC-AUC and
// final Dice per structure group (--corrections-csv, --curve-png).
// The real-data gate (Documentation/Results.md, "Real CT"; Utilities/real-data-gate.sh) is the whole pipeline with
// --region-growing (ITK ConfidenceConnected from the same click beside stage 1 alone and the pipeline) and --groups
// (the means per structure group, diva::StructureGroup); structures are named by the TotalSegmentator layout's mask
// files, by --label-names for a label map, or by --structure for a dataset's --label objects.
#include "divaApplicationSupport.h"
#include "divaAtomicFile.h"
#include "divaDevice.h"
#include "divaEvaluation.h"
#include "divaModelFile.h"
#include "divaSegmentationLoss.h"
#include "divaSegmentationMetrics.h"
#include "itkBinaryThresholdImageFilter.h"
#include "itkClickGuidedSegmentationFilter.h"
#include "itkClickGuidedSegmentationSession.h"
#include "itkClickSampler.h"
#include "itkClickedComponentImageFilter.h"
#include "itkConfidenceConnectedImageFilter.h"
#include "itkCorrectionClickSimulator.h"
#include "itkDatasetCaseValidator.h"
#include "itkDatasetSplit.h"
#include "itkDivAttentionRuntime.h"
#include "itkImageFileReader.h"
#include "itkLabelInstanceExtractor.h"
#include "itkResampleImageFilter.h"
#include "itkSegmentationInputCheck.h"
#include "itkTrainingSampleSource.h"
#include "itkWriteImageAtomically.h"

#include <tclap/CmdLine.h>
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

#include <unistd.h>

namespace
{
namespace fs = std::filesystem;
using CTImageType = itk::Image<float, 3>;
using MaskImageType = itk::Image<uint8_t, 3>;
using LabelImageType = itk::LabelInstanceExtractor::LabelImageType;
using SegmentationFilterType = itk::ClickGuidedSegmentationFilter<CTImageType, MaskImageType>;
using ModelPointer = std::shared_ptr<diva::LoadedModel>;

void
WriteText(const std::string & path, const std::string & text)
{
  diva::WriteFileAtomically(path,
                            [&](const std::string & temporary)
                            {
                              std::ofstream out(temporary);
                              out << text;
                              if (!out.flush())
                              {
                                throw std::runtime_error("cannot write " + temporary);
                              }
                            });
}

// A --model value: NAME=file (one model), or NAME=coarse.pt,refine.pt (a whole-pipeline pair).
struct ModelSpec
{
  std::string name;
  std::string coarseFile; ///< empty: --coarse-model (whole pipeline) or none (one stage)
  std::string file;       ///< the model of the column (stage 2 in the whole pipeline)
};

ModelSpec
ParseModelSpec(const std::string & text)
{
  const auto equals = text.find('=');
  if (equals == std::string::npos || equals == 0 || equals + 1 == text.size())
  {
    throw TCLAP::CmdLineParseException("--model expects NAME=file or NAME=coarse.pt,refine.pt, got \"" + text + "\"");
  }
  ModelSpec         spec;
  const std::string files = text.substr(equals + 1);
  spec.name = text.substr(0, equals);
  const auto comma = files.find(',');
  if (comma == std::string::npos)
  {
    spec.file = files;
  }
  else
  {
    spec.coarseFile = files.substr(0, comma);
    spec.file = files.substr(comma + 1);
    if (spec.coarseFile.empty() || spec.file.empty() || spec.file.find(',') != std::string::npos)
    {
      throw TCLAP::CmdLineParseException("--model expects NAME=file or NAME=coarse.pt,refine.pt, got \"" + text + "\"");
    }
  }
  return spec;
}

void
CheckFileExists(const std::string & option, const std::string & path)
{
  if (!fs::is_regular_file(path))
  {
    throw std::runtime_error(option + ": model file \"" + path + "\" does not exist");
  }
}

// Stable across runs and platforms (std::hash is not): the clicks of a case depend on its id, not on its position.
uint64_t
HashText(const std::string & text)
{
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (const unsigned char c : text)
  {
    hash = (hash ^ c) * 0x100000001b3ULL;
  }
  return hash;
}

// A file-name-safe form of a model name ("UNETR+div attention" -> "UNETR+div_attention").
std::string
SafeName(std::string text)
{
  for (char & c : text)
  {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '+' && c != '.')
    {
      c = '_';
    }
  }
  return text;
}

// A view of an image's buffer as a (z, y, x) tensor; the image must outlive it.
torch::Tensor
AsTensor(const MaskImageType * image)
{
  const auto size = image->GetBufferedRegion().GetSize();
  return torch::from_blob(
    const_cast<uint8_t *>(image->GetBufferPointer()),
    { static_cast<int64_t>(size[2]), static_cast<int64_t>(size[1]), static_cast<int64_t>(size[0]) }, torch::kUInt8);
}

// First and one-past-last index along each of the three tensor axes where `mask` has a non-zero voxel.
std::array<std::pair<int64_t, int64_t>, 3>
BoundingBox(const torch::Tensor & mask)
{
  std::array<std::pair<int64_t, int64_t>, 3> box;
  for (int64_t axis = 0; axis < 3; ++axis)
  {
    torch::Tensor any = mask;
    for (int64_t other = 2; other >= 0; --other)
    {
      if (other != axis)
      {
        any = any.any(other);
      }
    }
    const auto where = any.nonzero().flatten();
    box[axis] = { where.min().item<int64_t>(), where.max().item<int64_t>() + 1 };
  }
  return box;
}

// Scores a full-resolution mask against the reference. HD95 runs on the union's bounding box plus one voxel (clipped
// to the grid): the surface voxels and their distances are the same as on the whole grid, at a fraction of the cost
// of two distance maps over a whole CT.
diva::EvaluatedSample
Score(const MaskImageType * mask, const MaskImageType * reference)
{
  const torch::Tensor   prediction = AsTensor(mask);
  const torch::Tensor   truth = AsTensor(reference);
  const auto            metrics = diva::ComputeBinaryMetrics(prediction, truth);
  diva::EvaluatedSample sample;
  sample.dice = metrics.dice;
  sample.recall = metrics.recall;
  sample.precision = metrics.precision;
  sample.truePositives = metrics.truePositives;
  sample.falsePositives = metrics.falsePositives;
  sample.falseNegatives = metrics.falseNegatives;
  sample.hd95 = std::numeric_limits<double>::quiet_NaN();
  const auto & spacing = mask->GetSpacing();
  if (metrics.truePositives + metrics.falsePositives > 0 && metrics.truePositives + metrics.falseNegatives > 0)
  {
    const auto    box = BoundingBox(prediction.ne(0).logical_or(truth.ne(0)));
    torch::Tensor a = prediction, b = truth;
    for (int64_t axis = 0; axis < 3; ++axis)
    {
      const int64_t first = std::max<int64_t>(0, box[axis].first - 1);
      const int64_t last = std::min<int64_t>(prediction.size(axis), box[axis].second + 1);
      a = a.slice(axis, first, last);
      b = b.slice(axis, first, last);
    }
    sample.hd95 = diva::HausdorffDistance95(a, b, { { spacing[0], spacing[1], spacing[2] } });
  }
  return sample;
}

// Stage 1 alone at full resolution: the coarse probability (its own grid) resampled linearly onto the CT's grid and
// thresholded as the pipeline thresholds its coarse mask. With a click (--stage1-mask clicked), only what the pipeline
// would take from stage 1 for that click: the coarse component(s) within `tolerance` mm of it (ClickedComponent-
// ImageFilter, as the pipeline crops around), and nothing when none is that near or the resampled mask misses the
// click by more (the pipeline then answers "nothing found"), so the column scores stage 1 by the pipeline's rule.
MaskImageType::Pointer
CoarseMaskOnGrid(const SegmentationFilterType::FloatImageType * probability,
                 const CTImageType *                            ct,
                 double                                         threshold,
                 const itk::Point<double, 3> *                  click = nullptr,
                 double                                         tolerance = 0.0)
{
  using FloatImageType = SegmentationFilterType::FloatImageType;
  FloatImageType::ConstPointer scored = probability;
  if (click != nullptr)
  {
    auto component = itk::ClickedComponentImageFilter<FloatImageType, FloatImageType>::New();
    component->SetInput(probability);
    component->SetClicks({ *click });
    component->SetThreshold(threshold);
    component->SetSearchRadius(tolerance);
    component->EmptyWhenNothingClickedOn();
    component->Update();
    FloatImageType::Pointer kept = component->GetOutput();
    kept->DisconnectPipeline();
    const auto   count = kept->GetBufferedRegion().GetNumberOfPixels();
    const auto * p = probability->GetBufferPointer();
    auto *       k = kept->GetBufferPointer();
    for (std::size_t i = 0; i < count; ++i)
    {
      k[i] = k[i] != 0.0f ? p[i] : 0.0f; // the clicked component's own probability, for the same resampling
    }
    scored = kept;
  }
  auto resample = itk::ResampleImageFilter<FloatImageType, FloatImageType>::New();
  resample->SetInput(scored);
  resample->SetOutputParametersFromImage(ct);
  resample->SetDefaultPixelValue(0.0f);
  auto binary = itk::BinaryThresholdImageFilter<FloatImageType, MaskImageType>::New();
  binary->SetInput(resample->GetOutput());
  binary->SetLowerThreshold(static_cast<float>(threshold));
  binary->SetUpperThreshold(itk::NumericTraits<float>::max());
  binary->SetInsideValue(1);
  binary->SetOutsideValue(0);
  binary->Update();
  MaskImageType::Pointer mask = binary->GetOutput();
  if (click != nullptr && !itk::SegmentationInputCheck::ContainsClickWithin(mask.GetPointer(), *click, tolerance))
  {
    mask->FillBuffer(0);
  }
  return mask;
}

struct PipelineSettings
{
  std::vector<ModelSpec> specs;
  std::string            coarseFile;
  std::string            stage1Name; ///< empty: no stage-1-only column
  bool stage1Clicked = true; ///< --stage1-mask clicked (the pipeline's click rule) or whole (every coarse object)
  itk::LabelInstanceExtractor::Options                extraction;
  itk::ClickSamplerEnums::Strategy                    strategy = itk::ClickSamplerEnums::Strategy::Uniform;
  unsigned                                            clicks = 1;
  uint64_t                                            seed = 0;
  double                                              threshold = 0.5;
  double                                              coarseMaximumExtent = 400.0;
  itk::CoarseSegmentationFilterEnums::WindowPlacement coarseWindowPlacement =
    itk::CoarseSegmentationFilterEnums::WindowPlacement::AsTrained;
  double        refinementBand = 0.5;                 ///< coarse voxels; negative: no band
  bool          likeIntensityWhenNothingFound = true; ///< --nothing-found like-intensity (the default) or empty
  double        minimumClickTissueFraction = 0.3;     ///< --click-tissue-fraction
  std::string   masksDirectory;
  torch::Device device{ torch::kCPU };
  std::vector<itk::SegmentationDatasetReader::Case> cases;
  std::string                                       regionGrowingName; ///< empty: no region-growing column
  std::string                                       structureName = "label";
  std::vector<std::pair<uint16_t, std::string>>     labelNames; ///< --label-names: every named label a structure
  unsigned                                          correctionClicks = 0; ///< --correction-clicks
};

// One mask of a correction sequence: the score after the sequence's `step`-th click (1: the first click; 2..N+1: the
// corrections). score.click is the number of the first click (0..--clicks-1), score.clickPoint the click of this step.
struct CorrectionStep
{
  diva::EvaluatedSample score;
  unsigned              step = 1;
  std::string           kind; ///< first, positive, negative, none (the masks agree: no click), failed (refused)
  double                regionVolume = std::numeric_limits<double>::quiet_NaN(); ///< mm^3 of the corrected region
};

// The correction protocol of the interactive literature on one instance: the first click, then up to
// settings.correctionClicks clicks each at the centre of the largest error region of the current mask (positive in a
// miss, negative in a false positive), each applied through a ClickGuidedSegmentationSession (a positive click
// outside the mask adds the pipeline's component at it; a negative click removes the false positive under it). When
// the mask equals the reference there is no click: the remaining steps repeat the last mask (kind "none"). Always
// settings.correctionClicks + 1 steps.
std::vector<CorrectionStep>
SimulateCorrections(const CTImageType *           ct,
                    const MaskImageType *         reference,
                    const ModelPointer &          coarse,
                    const ModelPointer &          refine,
                    const itk::Point<double, 3> & first,
                    const PipelineSettings &      settings)
{
  using SessionType = itk::ClickGuidedSegmentationSession<CTImageType, MaskImageType>;
  auto session = SessionType::New();
  session->SetImage(ct);
  session->SetCoarseModel(coarse);
  session->SetRefineModel(refine);
  session->SetDevice(diva::DescribeDevice(settings.device));
  session->SetThreshold(settings.threshold);
  std::vector<CorrectionStep> steps;
  auto                        record = [&](const std::string & kind, const itk::Point<double, 3> * point, double volume)
  {
    CorrectionStep step;
    if (point != nullptr)
    {
      step.score = Score(session->GetMask(), reference);
      for (unsigned d = 0; d < 3; ++d)
      {
        step.score.clickPoint[d] = (*point)[d];
      }
    }
    else // no click: the previous mask again
    {
      step.score = steps.back().score;
      step.score.clickPoint.fill(std::numeric_limits<double>::quiet_NaN());
    }
    step.step = static_cast<unsigned>(steps.size()) + 1;
    step.kind = kind;
    step.regionVolume = volume;
    steps.push_back(step);
  };
  session->AddPositiveClick(first);
  record("first", &first, std::numeric_limits<double>::quiet_NaN());
  for (unsigned c = 0; c < settings.correctionClicks; ++c)
  {
    const auto click = itk::NextCorrectionClick(session->GetMask(), reference);
    if (!click)
    {
      record("none", nullptr, std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    try
    {
      if (click->positive)
      {
        session->AddPositiveClick(click->point);
      }
      else
      {
        session->AddNegativeClick(click->point);
      }
      record(click->positive ? "positive" : "negative", &click->point, click->regionVolume);
    }
    catch (const itk::ExceptionObject & error)
    {
      // The session refused the click (its mask and history are unchanged): the step keeps the previous mask.
      std::cerr << "warning: correction click " << c + 1 << " (" << (click->positive ? "positive" : "negative")
                << " at " << click->point << ") refused: " << error.GetDescription() << std::endl;
      record("failed", nullptr, click->regionVolume);
    }
  }
  return steps;
}

// Per model and structure group over the correction sequences (blocks of N + 1 consecutive steps).
struct CorrectionSummary
{
  std::string         model;
  std::string         group;
  size_t              sequences = 0;
  std::vector<double> dice;                 ///< mean Dice after click 1..N+1
  std::vector<double> hd95;                 ///< mean HD95 after click 1..N+1 (over the masks where it is defined)
  std::vector<size_t> hd95Count;            ///< how many masks that mean is over
  double              auc = 0.0;            ///< mean normalised DSC-AUC
  size_t              lowered = 0;          ///< clicks after which an instance's Dice fell
  size_t              loweredSequences = 0; ///< instances with at least one such click
};

// DSC-AUC of one sequence: the trapezoidal area under Dice against the click number 1..N+1, divided by N (the
// x-range), so it lies in [0, 1] and equals the Dice when the curve is flat.
double
NormalisedAuc(const std::vector<double> & dice)
{
  double area = 0.0;
  for (size_t i = 1; i < dice.size(); ++i)
  {
    area += 0.5 * (dice[i - 1] + dice[i]);
  }
  return area / static_cast<double>(dice.size() - 1);
}

std::vector<CorrectionSummary>
SummarizeCorrections(const std::vector<CorrectionStep> & steps, unsigned correctionClicks)
{
  const size_t             length = correctionClicks + 1;
  std::vector<std::string> models;
  std::vector<std::string> groups{ "organs", "lesions", "vessels", "muscle", "bone", "other" };
  for (const auto & step : steps)
  {
    if (std::find(models.begin(), models.end(), step.score.model) == models.end())
    {
      models.push_back(step.score.model);
    }
    if (std::find(groups.begin(), groups.end(), step.score.group) == groups.end())
    {
      groups.push_back(step.score.group);
    }
  }
  std::vector<CorrectionSummary> summaries;
  for (const auto & model : models)
  {
    for (const auto & group : groups)
    {
      CorrectionSummary summary;
      summary.model = model;
      summary.group = group;
      summary.dice.assign(length, 0.0);
      summary.hd95.assign(length, 0.0);
      summary.hd95Count.assign(length, 0);
      for (size_t first = 0; first + length <= steps.size(); first += length)
      {
        if (steps[first].score.model != model || steps[first].score.group != group)
        {
          continue;
        }
        ++summary.sequences;
        std::vector<double> dice(length);
        size_t              lowered = 0;
        for (size_t i = 0; i < length; ++i)
        {
          const auto & score = steps[first + i].score;
          dice[i] = score.dice;
          summary.dice[i] += score.dice;
          if (std::isfinite(score.hd95))
          {
            summary.hd95[i] += score.hd95;
            ++summary.hd95Count[i];
          }
          lowered += i > 0 && dice[i] < dice[i - 1] ? 1 : 0;
        }
        summary.auc += NormalisedAuc(dice);
        summary.lowered += lowered;
        summary.loweredSequences += lowered > 0 ? 1 : 0;
      }
      if (summary.sequences == 0)
      {
        continue;
      }
      for (size_t i = 0; i < length; ++i)
      {
        summary.dice[i] /= static_cast<double>(summary.sequences);
        summary.hd95[i] = summary.hd95Count[i] > 0 ? summary.hd95[i] / static_cast<double>(summary.hd95Count[i])
                                                   : std::numeric_limits<double>::quiet_NaN();
      }
      summary.auc /= static_cast<double>(summary.sequences);
      summaries.push_back(summary);
    }
  }
  return summaries;
}

std::string
FormatCorrectionTables(const std::vector<CorrectionSummary> & summaries, unsigned correctionClicks)
{
  std::ostringstream out;
  out << std::fixed;
  out << "Corrections: Dice after each click (1: the first click; 2.." << correctionClicks + 1
      << ": simulated corrections at the centre of the largest error region). DSC-AUC: trapezoidal area under Dice "
         "against clicks 1.."
      << correctionClicks + 1 << ", divided by " << correctionClicks
      << ". Lowered: clicks after which an instance's Dice fell (instances with one or more).\n\n"
      << "| Model | group (instances) |";
  for (unsigned c = 1; c <= correctionClicks + 1; ++c)
  {
    out << " Dice " << c << " |";
  }
  out << " DSC-AUC | final Dice | lowered |\n|---|---|";
  for (unsigned c = 0; c < correctionClicks + 4; ++c)
  {
    out << "---:|";
  }
  out << '\n';
  for (const auto & s : summaries)
  {
    out << "| " << s.model << " | " << s.group << " (" << s.sequences << ") |" << std::setprecision(3);
    for (const double dice : s.dice)
    {
      out << ' ' << dice << " |";
    }
    out << ' ' << s.auc << " | " << s.dice.back() << " | " << s.lowered << " (" << s.loweredSequences << ") |\n";
  }
  out << "\nHD95 (mm) after each click (means over the non-empty masks):\n\n| Model | group (instances) |";
  for (unsigned c = 1; c <= correctionClicks + 1; ++c)
  {
    out << " HD95 " << c << " |";
  }
  out << "\n|---|---|";
  for (unsigned c = 0; c <= correctionClicks; ++c)
  {
    out << "---:|";
  }
  out << '\n' << std::setprecision(1);
  for (const auto & s : summaries)
  {
    out << "| " << s.model << " | " << s.group << " (" << s.sequences << ") |";
    for (const double hd95 : s.hd95)
    {
      if (std::isfinite(hd95))
      {
        out << ' ' << hd95 << " |";
      }
      else
      {
        out << " - |";
      }
    }
    out << '\n';
  }
  return out.str();
}

// One row per instance per click: the sequence's identity, the click (kind, point, corrected region) and the scores.
std::string
FormatCorrectionsCSV(const std::vector<CorrectionStep> & steps)
{
  std::ostringstream out;
  out << "model,case,instance,structure,group,first_click,click,kind,click_x,click_y,click_z,region_mm3,dice,recall,"
         "precision,hd95_mm\n"
      << std::setprecision(9);
  auto number = [&out](double value)
  {
    out << ',';
    if (std::isfinite(value))
    {
      out << value;
    }
  };
  for (const auto & step : steps)
  {
    const auto & s = step.score;
    out << s.model << ',' << s.caseId << ',' << s.instance << ',' << s.structure << ',' << s.group << ',' << s.click
        << ',' << step.step << ',' << step.kind;
    for (const double coordinate : s.clickPoint)
    {
      number(coordinate);
    }
    number(step.regionVolume);
    out << ',' << s.dice << ',' << s.recall << ',' << s.precision;
    number(s.hd95);
    out << '\n';
  }
  return out.str();
}

// --curve-png: mean Dice against clicks, one line per model and group, drawn by gnuplot into a temporary file renamed
// into place.
void
PlotCorrections(const std::vector<CorrectionSummary> & summaries, const std::string & png)
{
  const fs::path folder = fs::temp_directory_path() / ("diva-curve-" + std::to_string(::getpid()));
  fs::create_directories(folder);
  const std::string data = (folder / "curve.dat").string();
  const std::string script = (folder / "curve.gnuplot").string();
  {
    std::ofstream out(data);
    out << std::setprecision(9);
    for (const auto & s : summaries)
    {
      for (size_t i = 0; i < s.dice.size(); ++i)
      {
        out << i + 1 << ' ' << s.dice[i] << '\n';
      }
      out << "\n\n";
    }
  }
  auto quoted = [](std::string text)
  {
    for (size_t at = text.find('\''); at != std::string::npos; at = text.find('\'', at + 2))
    {
      text.insert(at, 1, '\'');
    }
    return "'" + text + "'";
  };
  diva::WriteFileAtomically(png,
                            [&](const std::string & temporary)
                            {
                              std::ofstream out(script);
                              out << "set terminal pngcairo size 900,560\nset output " << quoted(temporary)
                                  << "\nset xlabel 'clicks (1: the first; then simulated corrections)'\n"
                                  << "set ylabel 'mean Dice'\nset yrange [0:1]\nset xtics 1\nset grid\n"
                                  << "set key outside right\nplot ";
                              for (size_t i = 0; i < summaries.size(); ++i)
                              {
                                const auto & s = summaries[i];
                                out << (i == 0 ? "" : ", ") << quoted(data) << " index " << i
                                    << " using 1:2 with linespoints title "
                                    << quoted(s.model + ": " + s.group + " (" + std::to_string(s.sequences) + ")");
                              }
                              out << '\n';
                              out.close();
                              if (std::system(("gnuplot " + quoted(script)).c_str()) != 0)
                              {
                                throw std::runtime_error("--curve-png: gnuplot failed on " + script);
                              }
                            });
  fs::remove_all(folder);
}

// The classical baseline of the real-data gate: ITK's ConfidenceConnectedImageFilter from the click's voxel
// (multiplier 2, 3 iterations, the statistics first taken over the click's 3x3x3 neighbourhood), as issue 23 ran it.
MaskImageType::Pointer
RegionGrowing(const CTImageType * ct, const itk::Point<double, 3> & click)
{
  auto          grow = itk::ConfidenceConnectedImageFilter<CTImageType, MaskImageType>::New();
  itk::Index<3> seed;
  if (!ct->TransformPhysicalPointToIndex(click, seed))
  {
    throw std::runtime_error("region growing: the click lies outside the CT");
  }
  grow->SetInput(ct);
  grow->AddSeed(seed);
  grow->SetMultiplier(2.0);
  grow->SetNumberOfIterations(3);
  grow->SetInitialNeighborhoodRadius(1);
  grow->SetReplaceValue(1);
  grow->Update();
  return grow->GetOutput();
}

// A --label-names file: "id name" lines (whitespace between; '#' starts a comment), as TotalSegmentator's class map.
std::vector<std::pair<uint16_t, std::string>>
ReadLabelNames(const std::string & path)
{
  std::ifstream in(path);
  if (!in)
  {
    throw std::runtime_error("--label-names \"" + path + "\": cannot read the file");
  }
  std::vector<std::pair<uint16_t, std::string>> names;
  std::string                                   line;
  for (size_t number = 1; std::getline(in, line); ++number)
  {
    line = line.substr(0, line.find('#'));
    std::istringstream fields(line);
    long               id = 0;
    std::string        name, extra;
    if (!(fields >> id))
    {
      if (line.find_first_not_of(" \t\r") == std::string::npos)
      {
        continue;
      }
      throw std::runtime_error("--label-names \"" + path + "\" line " + std::to_string(number) +
                               ": expected \"<label id> <name>\", got \"" + line + "\"");
    }
    if (!(fields >> name) || (fields >> extra) || id < 1 || id > 65535)
    {
      throw std::runtime_error("--label-names \"" + path + "\" line " + std::to_string(number) +
                               ": expected \"<label id 1..65535> <name>\", got \"" + line + "\"");
    }
    names.emplace_back(static_cast<uint16_t>(id), name);
  }
  if (names.empty())
  {
    throw std::runtime_error("--label-names \"" + path + "\": names no label");
  }
  return names;
}

// Whole-pipeline evaluation: every instance of every case, `clicks` clicks drawn once from its reference mask, the same
// clicks for every column.
std::vector<diva::EvaluatedSample>
EvaluatePipeline(const PipelineSettings & settings, std::vector<CorrectionStep> & corrections)
{
  // Each model file is loaded once, however many columns use it; roles are checked before any case is read.
  std::map<std::string, ModelPointer> loaded;
  auto load = [&](const std::string & file, const std::string & option, const std::string & role)
  {
    auto found = loaded.find(file);
    if (found == loaded.end())
    {
      found = loaded.emplace(file, itk::SegmentationModelSupport::Load(file, settings.device, option)).first;
    }
    itk::SegmentationModelSupport::CheckRole(*found->second, role, option);
    return found->second;
  };
  struct Column
  {
    std::string  name;
    ModelPointer coarse;
    ModelPointer refine;
    bool         sharedCoarse = false;
  };
  std::vector<Column> columns;
  const ModelPointer  sharedCoarse =
    settings.coarseFile.empty() ? nullptr : load(settings.coarseFile, "--coarse-model", "coarse");
  for (const auto & spec : settings.specs)
  {
    const std::string option = "--model " + spec.name;
    Column            column;
    column.name = spec.name;
    column.sharedCoarse = spec.coarseFile.empty();
    column.coarse = column.sharedCoarse ? sharedCoarse : load(spec.coarseFile, option, "coarse");
    column.refine = load(spec.file, option, "refine");
    columns.push_back(column);
  }
  const bool stage1Column = !settings.stage1Name.empty() && sharedCoarse != nullptr;

  itk::DatasetCaseValidator::Options checks;
  checks.targetLabels = settings.extraction.targetLabels;
  if (!settings.labelNames.empty())
  {
    checks.targetLabels.clear();
    for (const auto & [id, name] : settings.labelNames)
    {
      checks.targetLabels.push_back(id);
    }
  }
  std::vector<diva::EvaluatedSample> samples;
  size_t                             skipped = 0, instances = 0, emptyStructures = 0;
  for (const auto & entry : settings.cases)
  {
    const auto reasons = itk::DatasetCaseValidator::Check(entry, checks);
    if (!reasons.empty())
    {
      std::string joined;
      for (const auto & reason : reasons)
      {
        joined += (joined.empty() ? "" : "; ") + reason;
      }
      std::cerr << "warning: case \"" << entry.id << "\" skipped: " << joined << std::endl;
      ++skipped;
      continue;
    }
    auto ctReader = itk::ImageFileReader<CTImageType>::New();
    ctReader->SetFileName(entry.image);
    ctReader->Update();
    const CTImageType::Pointer ct = ctReader->GetOutput();

    // The targets of the case: each a named structure with its instances. A label map gives one target (the
    // --label objects, named by --structure) or, with --label-names, one per named label; a TotalSegmentator case one
    // per structure mask. A structure is one object (organ rule) wherever it has a name.
    struct Target
    {
      std::string                         structure;
      itk::LabelInstanceExtractor::Result extracted;
      int64_t  instanceId = -1; ///< the CSV's instance of a named structure; -1: the extractor's
      uint64_t seedKey = 0;
    };
    std::vector<Target> targets;
    auto                organ = settings.extraction;
    organ.mode = itk::LabelInstanceExtractor::Mode::Organ;
    if (!entry.structures.empty())
    {
      for (size_t s = 0; s < entry.structures.size(); ++s)
      {
        auto maskReader = itk::ImageFileReader<LabelImageType>::New();
        maskReader->SetFileName(entry.structures[s].mask);
        maskReader->Update();
        const LabelImageType::Pointer mask = maskReader->GetOutput();
        uint16_t *                    values = mask->GetBufferPointer();
        for (size_t i = 0, n = mask->GetBufferedRegion().GetNumberOfPixels(); i < n; ++i)
        {
          values[i] = values[i] != 0 ? 1 : 0;
        }
        organ.targetLabels = { 1 };
        Target target{ entry.structures[s].name, itk::LabelInstanceExtractor::Extract(mask, organ),
                       static_cast<int64_t>(s + 1), HashText(entry.id + "/" + entry.structures[s].name) };
        targets.push_back(std::move(target));
      }
    }
    else
    {
      auto labelReader = itk::ImageFileReader<LabelImageType>::New();
      labelReader->SetFileName(entry.label);
      labelReader->Update();
      if (settings.labelNames.empty())
      {
        targets.push_back({ settings.structureName,
                            itk::LabelInstanceExtractor::Extract(labelReader->GetOutput(), settings.extraction), -1,
                            HashText(entry.id) });
      }
      for (const auto & [id, name] : settings.labelNames)
      {
        organ.targetLabels = { id };
        targets.push_back({ name, itk::LabelInstanceExtractor::Extract(labelReader->GetOutput(), organ), id,
                            HashText(entry.id + "/" + name) });
      }
    }
    targets.erase(std::remove_if(targets.begin(), targets.end(),
                                 [&](const Target & target)
                                 {
                                   const bool none = target.extracted.kept.empty();
                                   emptyStructures += none && target.instanceId >= 0 ? 1 : 0;
                                   return none;
                                 }),
                  targets.end());
    if (targets.empty())
    {
      std::cerr << "warning: case \"" << entry.id
                << "\" skipped: no instance left after discarding those below the size rule" << std::endl;
      ++skipped;
      continue;
    }
    for (const auto & target : targets)
    {
      const bool named = target.instanceId >= 0;
      for (const auto & instance : target.extracted.kept)
      {
        ++instances;
        const int64_t instanceId = named ? target.instanceId : instance.id;
        // The reference of this instance on the CT's grid: the organ's label(s), or the lesion component the clicks
        // fall in (the extractor's instance image already separates the components).
        auto reference = MaskImageType::New();
        reference->CopyInformation(ct);
        reference->SetRegions(ct->GetLargestPossibleRegion());
        reference->Allocate();
        const size_t     count = reference->GetBufferedRegion().GetNumberOfPixels();
        const uint16_t * ids = target.extracted.instances->GetBufferPointer();
        uint8_t *        out = reference->GetBufferPointer();
        for (size_t i = 0; i < count; ++i)
        {
          out[i] = ids[i] == instance.id ? 1 : 0;
        }
        // All clicks of an instance come from one generator seeded by (seed, case id [/ structure], instance): the
        // first k clicks are the same whatever --clicks says, and no other case, structure or model changes them.
        auto sampler = itk::ClickSampler<MaskImageType>::New();
        sampler->SetMask(reference);
        sampler->SetStrategy(settings.strategy);
        sampler->SetSeed(itk::TrainingSampleSource::SampleSeed(settings.seed, target.seedKey, instance.id, 3));
        std::vector<itk::Point<double, 3>> clicks;
        for (unsigned k = 0; k < settings.clicks; ++k)
        {
          clicks.push_back(sampler->Sample());
        }
        const std::string maskPrefix = named ? SafeName(entry.id) + "_" + SafeName(target.structure)
                                             : SafeName(entry.id) + "_i" + std::to_string(instance.id);
        for (unsigned k = 0; k < settings.clicks; ++k)
        {
          std::vector<diva::EvaluatedSample> row;
          auto record = [&](const std::string & name, const MaskImageType * mask, int fallback,
                            const std::string & answer = std::string())
          {
            diva::EvaluatedSample sample = Score(mask, reference);
            sample.model = name;
            sample.caseId = entry.id;
            sample.instance = instanceId;
            sample.click = k;
            sample.structure = target.structure;
            sample.group = diva::StructureGroup(target.structure);
            for (unsigned d = 0; d < 3; ++d)
            {
              sample.clickPoint[d] = clicks[k][d];
            }
            sample.fallbackCrop = fallback;
            sample.answer = answer;
            if (!settings.masksDirectory.empty())
            {
              itk::WriteImageAtomically(mask,
                                        (fs::path(settings.masksDirectory) /
                                         (maskPrefix + "_c" + std::to_string(k) + "_" + SafeName(name) + ".nii.gz"))
                                          .string());
            }
            return sample;
          };
          bool stage1Done = !stage1Column;
          for (const auto & column : columns)
          {
            auto filter = SegmentationFilterType::New();
            filter->SetInput(ct);
            filter->SetCoarseModel(column.coarse);
            filter->SetRefineModel(column.refine);
            filter->SetClicks({ clicks[k] });
            filter->SetDevice(diva::DescribeDevice(settings.device));
            filter->SetThreshold(settings.threshold);
            filter->SetCoarseMaximumExtent(settings.coarseMaximumExtent);
            filter->SetCoarseWindowPlacement(settings.coarseWindowPlacement);
            filter->SetRefinementBand(settings.refinementBand);
            filter->SetLikeIntensityWhenNothingFound(settings.likeIntensityWhenNothingFound);
            filter->SetMinimumClickTissueFraction(settings.minimumClickTissueFraction);
            filter->Update();
            const std::string answer = !filter->GetNothingFoundAtClick()        ? "networks"
                                       : filter->GetMaskNotOfClickedTissue()    ? "other-tissue"
                                       : filter->GetUsedLikeIntensityFallback() ? "like-intensity"
                                                                                : "nothing";
            row.push_back(record(column.name, filter->GetOutput(), filter->GetUsedFallbackCrop() ? 1 : 0, answer));
            // Stage 1 is the same in every column that uses --coarse-model: its mask is taken from the first such run.
            if (!stage1Done && column.sharedCoarse)
            {
              const auto coarseMask = settings.stage1Clicked
                                        ? CoarseMaskOnGrid(filter->GetCoarseProbability(), ct, settings.threshold,
                                                           &clicks[k], filter->GetUsedClickTolerance())
                                        : CoarseMaskOnGrid(filter->GetCoarseProbability(), ct, settings.threshold);
              row.insert(row.begin(), record(settings.stage1Name, coarseMask, -1));
              stage1Done = true;
            }
          }
          if (!settings.regionGrowingName.empty())
          {
            row.push_back(record(settings.regionGrowingName, RegionGrowing(ct, clicks[k]), -1));
          }
          samples.insert(samples.end(), row.begin(), row.end());
          if (settings.correctionClicks > 0)
          {
            for (const auto & column : columns)
            {
              for (auto & step : SimulateCorrections(ct, reference, column.coarse, column.refine, clicks[k], settings))
              {
                step.score.model = column.name;
                step.score.caseId = entry.id;
                step.score.instance = instanceId;
                step.score.click = k;
                step.score.structure = target.structure;
                step.score.group = diva::StructureGroup(target.structure);
                corrections.push_back(step);
              }
            }
          }
        }
      }
    }
  }
  if (emptyStructures > 0)
  {
    std::cout << "DivAttentionEvaluate: " << emptyStructures
              << " named structure(s) left out: empty, or below the size rule, in their case" << std::endl;
  }
  std::cout << "DivAttentionEvaluate: whole pipeline, " << settings.cases.size() - skipped << " cases, " << instances
            << " instances, " << settings.clicks << " click(s) each, " << columns.size() + (stage1Column ? 1 : 0)
            << " column(s)"
            << (settings.correctionClicks > 0
                  ? ", " + std::to_string(settings.correctionClicks) + " correction click(s)"
                  : "")
            << (skipped > 0 ? ", " + std::to_string(skipped) + " case(s) skipped" : "") << std::endl;
  return samples;
}
} // namespace

int
main(int argc, char ** argv)
{
  return diva::application::Run(
    "DivAttentionEvaluate",
    [&]()
    {
      TCLAP::CmdLine cmd("Evaluates models with clicks simulated from the reference masks: the whole pipeline on the "
                         "full CT (--coarse-model, or NAME=coarse.pt,refine.pt models) or one stage on its own input; "
                         "Dice, recall, precision, HD95 per sample and a Table-1-style summary.",
                         ' ', diva::application::VersionText());
      cmd.setExceptionHandling(false);
      TCLAP::MultiArg<std::string> models("m", "model",
                                          "NAME=model-file, or NAME=coarse.pt,refine.pt for the whole pipeline "
                                          "(repeat to put models side by side)",
                                          true, "name=file", cmd);
      TCLAP::ValueArg<std::string> coarseModel("", "coarse-model",
                                               "Stage-1 model of the whole pipeline: every NAME=refine.pt model runs "
                                               "after it, on the full CT",
                                               false, "", "file", cmd);
      TCLAP::ValueArg<std::string> stage1Name("", "stage1-name",
                                              "Whole pipeline: title of the column of --coarse-model's mask alone",
                                              false, "Stage 1 only", "text", cmd);
      TCLAP::SwitchArg             noStage1("", "no-stage1", "Whole pipeline: leave out the stage-1-only column", cmd);
      TCLAP::ValueArg<std::string> stage1Mask(
        "", "stage1-mask",
        "Whole pipeline: what the stage-1-only column scores: 'clicked' (default; the coarse component within the "
        "click tolerance, nothing when none is, as the pipeline reads stage 1) or 'whole' (every coarse object)",
        false, "clicked", "clicked|whole", cmd);
      TCLAP::ValueArg<std::string> dataset("", "dataset", "Dataset root or CSV file", true, "", "path", cmd);
      TCLAP::ValueArg<std::string> layout("", "layout", "auto, msd, kits, nnunet, csv or totalseg", false, "auto",
                                          "name", cmd);
      TCLAP::ValueArg<std::string> split("", "split", "Split JSON (e.g. the training run's split.json)", false, "",
                                         "file", cmd);
      TCLAP::ValueArg<std::string> subset("", "subset", "test, validation, train or all", false, "validation", "name",
                                          cmd);
      TCLAP::ValueArg<std::string> label("", "label", "Target label id(s), e.g. 1 or 1,2,3", false, "1", "ids", cmd);
      TCLAP::ValueArg<std::string> device("", "device", "auto, cpu, cuda or cuda:N", false, "auto", "device", cmd);
      TCLAP::ValueArg<int> threads("", "threads", "CPU threads (default: all this process may use)", false, 0, "count",
                                   cmd);
      TCLAP::ValueArg<std::string> instances("", "instances", "organ, lesion or label-components", false, "organ",
                                             "kind", cmd);
      TCLAP::ValueArg<int> stage("", "stage", "One-stage mode: 1 or 2 (0: from the model's input channels)", false, 0,
                                 "N", cmd);
      TCLAP::ValueArg<unsigned>    clicks("", "clicks", "Simulated clicks per instance", false, 3, "N", cmd);
      TCLAP::ValueArg<uint64_t>    seed("", "seed", "Seed of the simulated clicks", false, 0, "integer", cmd);
      TCLAP::ValueArg<std::string> clickStrategy(
        "", "click-strategy", "Where clicks fall in the object: uniform or interior", false, "uniform", "name", cmd);
      TCLAP::ValueArg<double> threshold("", "threshold", "Whole pipeline: probability threshold of the masks", false,
                                        0.5, "probability", cmd);
      TCLAP::ValueArg<double> coarseExtent("", "coarse-max-extent",
                                           "Whole pipeline: largest region (mm) the coarse stage may grow to", false,
                                           400.0, "mm", cmd);
      TCLAP::ValueArg<std::string> coarseWindowPlacement(
        "", "coarse-window-placement",
        "Whole pipeline: where the coarse windows lie at the CT's border: as-trained (default, as the coarse model "
        "file says), inside-image, or centred-on-click (up to half a window beyond the CT, read as air)",
        false, "as-trained", "as-trained|inside-image|centred-on-click", cmd);
      TCLAP::ValueArg<double> refinementBand(
        "", "refinement-band",
        "Whole pipeline: half-width, in coarse-model voxels, of the band around the coarse mask's border within which "
        "the refinement decides (the first click's mask); negative: no band (the paper's literal pipeline)",
        false, 0.5, "voxels", cmd);
      TCLAP::ValueArg<std::string> nothingFound(
        "", "nothing-found",
        "Whole pipeline: where the networks find nothing at the click, score the click's like-intensity region "
        "('like-intensity', default, as DivAttentionSegment writes it) or an empty mask ('empty')",
        false, "like-intensity", "like-intensity|empty", cmd);
      TCLAP::ValueArg<double> clickTissueFraction(
        "", "click-tissue-fraction",
        "Whole pipeline: the share of the networks' mask that must be of the clicked tissue for it to count as found "
        "at the click (default 0.3, as DivAttentionSegment; 0: no check)",
        false, 0.3, "0..1", cmd);
      TCLAP::ValueArg<std::string> masks("", "masks",
                                         "Whole pipeline: also write every mask to this directory "
                                         "(<case>_i<instance>_c<click>_<model>.nii.gz)",
                                         false, "", "directory", cmd);
      TCLAP::ValueArg<std::string> name("", "dataset-name", "Column group title of the table", false, "Dataset", "text",
                                        cmd);
      TCLAP::SwitchArg perCase("", "per-case", "Also print (and put in --markdown) mean Dice per case", cmd);
      TCLAP::SwitchArg regionGrowing("", "region-growing",
                                     "Whole pipeline: also a column of ITK region growing from the same click "
                                     "(ConfidenceConnectedImageFilter, multiplier 2, 3 iterations)",
                                     cmd);
      TCLAP::SwitchArg groups("", "groups",
                              "Also print (and put in --markdown) the means per structure group (organs, lesions, "
                              "vessels, muscle, bone, other): the real-data gate's table",
                              cmd);
      TCLAP::ValueArg<std::string> structure("", "structure",
                                             "Whole pipeline: name of the --label objects of a label-map dataset "
                                             "(e.g. lesion, spleen), which sets their group",
                                             false, "label", "name", cmd);
      TCLAP::ValueArg<std::string> labelNames("", "label-names",
                                              "Whole pipeline: \"id name\" lines; every named label of a label-map "
                                              "dataset becomes a structure of its own (one object each)",
                                              false, "", "file", cmd);
      TCLAP::ValueArg<unsigned>    correctionClicks(
           "", "correction-clicks",
           "Whole pipeline: after each first click, N correction clicks simulated "
              "from the reference (centre of the largest error region; positive in a "
              "miss, negative in a false positive) through a segmentation session; "
              "Dice and HD95 after each click, DSC-AUC, per structure group",
           false, 0, "N", cmd);
      TCLAP::ValueArg<std::string> correctionsCsv("", "corrections-csv",
                                                  "With --correction-clicks: one row per instance per click (default: "
                                                  "beside --csv, <name>-corrections.csv)",
                                                  false, "", "file", cmd);
      TCLAP::ValueArg<std::string> curvePng("", "curve-png",
                                            "With --correction-clicks: draw mean Dice against clicks per model and "
                                            "group into this PNG (gnuplot)",
                                            false, "", "file", cmd);
      TCLAP::ValueArg<std::string> csv("", "csv", "Per-sample CSV output", false, "", "file", cmd);
      TCLAP::ValueArg<std::string> markdown("", "markdown", "Markdown table output", false, "", "file", cmd);
      cmd.parse(argc, argv);

      // The options are checked before the dataset is read and the models run, so that a bad one fails at once.
      const std::string subsetName = subset.getValue();
      if (subsetName != "test" && subsetName != "validation" && subsetName != "train" && subsetName != "all")
      {
        throw TCLAP::CmdLineParseException("--subset must be test, validation, train or all, not \"" + subsetName +
                                           "\"");
      }
      const auto labels = diva::application::ParseList<uint16_t>("--label", label.getValue());
      if (labels.empty())
      {
        throw std::invalid_argument("option --label: give at least one label id");
      }
      if (clicks.getValue() == 0)
      {
        throw std::invalid_argument("option --clicks: give at least 1 click per instance");
      }
      if (clickStrategy.getValue() != "uniform" && clickStrategy.getValue() != "interior")
      {
        throw TCLAP::CmdLineParseException("--click-strategy must be uniform or interior, not \"" +
                                           clickStrategy.getValue() + "\"");
      }
      if (threads.getValue() < 0)
      {
        throw std::invalid_argument("option --threads: " + std::to_string(threads.getValue()) + " is not >= 0");
      }
      if (threads.getValue() > 0)
      {
        itk::DivAttentionRuntime::SetThreadBudget(threads.getValue());
      }
      std::vector<ModelSpec> specs;
      bool                   pipeline = coarseModel.isSet();
      for (const auto & text : models.getValue())
      {
        specs.push_back(ParseModelSpec(text));
        pipeline = pipeline || !specs.back().coarseFile.empty();
      }
      if (pipeline)
      {
        if (stage.isSet())
        {
          throw TCLAP::CmdLineParseException("--stage is for one-stage mode; the whole pipeline (--coarse-model or "
                                             "NAME=coarse.pt,refine.pt) runs both stages");
        }
        if (!(threshold.getValue() > 0.0 && threshold.getValue() < 1.0))
        {
          throw std::invalid_argument("option --threshold: " + std::to_string(threshold.getValue()) +
                                      " is not in (0, 1)");
        }
        if (!(coarseExtent.getValue() > 0.0))
        {
          throw std::invalid_argument("option --coarse-max-extent: " + std::to_string(coarseExtent.getValue()) +
                                      " is not > 0");
        }
        if (!std::isfinite(refinementBand.getValue()))
        {
          throw std::invalid_argument("option --refinement-band: " + std::to_string(refinementBand.getValue()) +
                                      " is not a finite number of coarse voxels (negative: no band)");
        }
        if (coarseModel.isSet())
        {
          CheckFileExists("--coarse-model", coarseModel.getValue());
        }
        bool usesShared = false;
        for (const auto & spec : specs)
        {
          if (spec.coarseFile.empty() && !coarseModel.isSet())
          {
            throw TCLAP::CmdLineParseException("--model " + spec.name +
                                               " gives one model file: give --coarse-model "
                                               "too, or NAME=coarse.pt,refine.pt");
          }
          usesShared = usesShared || spec.coarseFile.empty();
        }
        if (coarseModel.isSet() && !usesShared)
        {
          throw TCLAP::CmdLineParseException("--coarse-model is given but every --model names its own stage-1 model; "
                                             "give at least one NAME=refine.pt");
        }
        if (masks.isSet() && !fs::is_directory(masks.getValue()))
        {
          throw std::runtime_error("--masks \"" + masks.getValue() + "\": directory does not exist");
        }
      }
      else
      {
        if (coarseWindowPlacement.isSet())
        {
          throw TCLAP::CmdLineParseException("--coarse-window-placement is for the whole pipeline (--coarse-model)");
        }
        for (const auto * option : { &threshold, &coarseExtent, &refinementBand })
        {
          if (option->isSet())
          {
            throw TCLAP::CmdLineParseException("--" + option->getName() +
                                               " is for the whole pipeline (--coarse-model); one-stage mode "
                                               "thresholds at 0.5");
          }
        }
        if (masks.isSet() || stage1Name.isSet() || noStage1.isSet() || stage1Mask.isSet() || regionGrowing.isSet() ||
            structure.isSet() || labelNames.isSet() || correctionClicks.isSet() || nothingFound.isSet() ||
            clickTissueFraction.isSet())
        {
          throw TCLAP::CmdLineParseException("--masks, --stage1-name, --no-stage1, --stage1-mask, --region-growing, "
                                             "--structure, --label-names, --correction-clicks, --nothing-found and "
                                             "--click-tissue-fraction are for the whole pipeline (--coarse-model)");
        }
      }
      for (const auto & spec : specs)
      {
        if (!spec.coarseFile.empty())
        {
          CheckFileExists("--model " + spec.name, spec.coarseFile);
        }
        CheckFileExists("--model " + spec.name, spec.file);
      }
      if (correctionClicks.getValue() == 0 && (correctionsCsv.isSet() || curvePng.isSet()))
      {
        throw TCLAP::CmdLineParseException("--corrections-csv and --curve-png need --correction-clicks N (N >= 1)");
      }
      if (curvePng.isSet() && std::system("command -v gnuplot > /dev/null 2>&1") != 0)
      {
        throw std::runtime_error("--curve-png needs gnuplot (apt-get install gnuplot-nox)");
      }
      for (const auto * output : { &csv, &markdown, &correctionsCsv, &curvePng })
      {
        const auto directory = fs::path(output->getValue()).parent_path();
        if (output->isSet() && !directory.empty() && !fs::is_directory(directory))
        {
          throw std::runtime_error("--" + output->getName() + " \"" + output->getValue() + "\": directory \"" +
                                   directory.string() + "\" does not exist");
        }
      }

      std::vector<std::pair<uint16_t, std::string>> names;
      if (labelNames.isSet())
      {
        names = ReadLabelNames(labelNames.getValue());
        if (label.isSet()) // --label picks among the named labels
        {
          names.erase(std::remove_if(names.begin(), names.end(),
                                     [&labels](const auto & entry)
                                     { return std::find(labels.begin(), labels.end(), entry.first) == labels.end(); }),
                      names.end());
        }
        if (names.empty())
        {
          throw std::invalid_argument("option --label: none of its labels is named in --label-names");
        }
      }

      auto listing = itk::SegmentationDatasetReader::Read(
        dataset.getValue(), itk::SegmentationDatasetReader::ParseLayout(layout.getValue()));
      if (!pipeline && listing.layout == itk::SegmentationDatasetReader::Layout::TotalSegmentator)
      {
        throw std::invalid_argument("--dataset \"" + dataset.getValue() +
                                    "\": one-stage mode reads label maps; a TotalSegmentator layout (one mask per "
                                    "structure) is evaluated by the whole pipeline (--coarse-model)");
      }
      std::vector<itk::SegmentationDatasetReader::Case> cases = listing.cases;
      if (split.isSet() && subsetName != "all")
      {
        const auto                       s = itk::DatasetSplit::Load(split.getValue());
        const std::vector<std::string> * ids = subsetName == "test"         ? &s.test
                                               : subsetName == "validation" ? &s.validation
                                                                            : &s.train;
        cases.erase(std::remove_if(cases.begin(), cases.end(),
                                   [ids](const auto & entry)
                                   { return std::find(ids->begin(), ids->end(), entry.id) == ids->end(); }),
                    cases.end());
      }
      const torch::Device                computeDevice = diva::ResolveDevice(device.getValue());
      std::vector<diva::EvaluatedSample> samples;
      std::vector<CorrectionStep>        corrections;
      if (pipeline)
      {
        for (const auto & problem : listing.problems)
        {
          std::cerr << "warning: case \"" << problem.id << "\" skipped: " << problem.reason << std::endl;
        }
        PipelineSettings settings;
        settings.specs = specs;
        settings.coarseFile = coarseModel.getValue();
        settings.stage1Name = noStage1.getValue() ? std::string() : stage1Name.getValue();
        if (stage1Mask.getValue() != "clicked" && stage1Mask.getValue() != "whole")
        {
          throw TCLAP::CmdLineParseException("--stage1-mask must be 'clicked' or 'whole', not '" +
                                             stage1Mask.getValue() + "'");
        }
        settings.stage1Clicked = stage1Mask.getValue() == "clicked";
        if (nothingFound.getValue() != "like-intensity" && nothingFound.getValue() != "empty")
        {
          throw TCLAP::CmdLineParseException("--nothing-found must be 'like-intensity' or 'empty', not '" +
                                             nothingFound.getValue() + "'");
        }
        settings.likeIntensityWhenNothingFound = nothingFound.getValue() == "like-intensity";
        if (!(clickTissueFraction.getValue() >= 0.0 && clickTissueFraction.getValue() <= 1.0))
        {
          throw TCLAP::CmdLineParseException("--click-tissue-fraction must be between 0 and 1");
        }
        settings.minimumClickTissueFraction = clickTissueFraction.getValue();
        settings.extraction.targetLabels = labels;
        settings.extraction.mode = itk::LabelInstanceExtractor::ModeFromName(instances.getValue());
        settings.strategy = clickStrategy.getValue() == "interior" ? itk::ClickSamplerEnums::Strategy::Interior
                                                                   : itk::ClickSamplerEnums::Strategy::Uniform;
        settings.clicks = clicks.getValue();
        settings.seed = seed.getValue();
        settings.threshold = threshold.getValue();
        settings.coarseMaximumExtent = coarseExtent.getValue();
        settings.coarseWindowPlacement =
          itk::CoarseWindowPlacementFromName(coarseWindowPlacement.getValue(), "option --coarse-window-placement");
        settings.refinementBand = refinementBand.getValue();
        settings.masksDirectory = masks.getValue();
        settings.device = computeDevice;
        settings.cases = cases;
        settings.regionGrowingName = regionGrowing.getValue() ? "Region growing" : "";
        settings.structureName = structure.getValue();
        settings.labelNames = names;
        settings.correctionClicks = correctionClicks.getValue();
        samples = EvaluatePipeline(settings, corrections);
      }
      else
      {
        for (const auto & spec : specs)
        {
          auto                  loaded = diva::LoadModel(spec.file, computeDevice);
          diva::TrainingOptions options;
          options.stage = stage.getValue() != 0 ? stage.getValue() : (loaded.network->GetInputChannels() == 2 ? 1 : 2);
          options.targetLabels = labels;
          options.instances = instances.getValue();
          options.patchSize = loaded.description.preprocessing.patchSize;
          options.targetSpacing = loaded.description.preprocessing.targetSpacing;
          options.clickStrategy = clickStrategy.getValue();
          options.augment = false;
          options.seed = seed.getValue();
          itk::TrainingSampleSource source(options, cases);
          source.SetPreprocessing(loaded.description.preprocessing);
          torch::NoGradGuard noGrad;
          loaded.network->eval();
          for (size_t index = 0; index < source.NumberOfInstances(); ++index)
          {
            for (unsigned click = 0; click < clicks.getValue(); ++click)
            {
              const auto            sample = source.MakeValidationSample(index, click);
              const auto            output = loaded.network->Segment(sample.input.unsqueeze(0).to(computeDevice));
              const torch::Tensor   prediction = (diva::ForegroundProbability(output.logits).squeeze() >= 0.5).cpu();
              const torch::Tensor   reference = sample.target.squeeze();
              const auto            metrics = diva::ComputeBinaryMetrics(prediction, reference);
              diva::EvaluatedSample result;
              result.model = spec.name;
              result.caseId = source.CaseId(source.Instances()[index].caseIndex);
              result.instance = source.Instances()[index].id;
              result.click = click;
              result.dice = metrics.dice;
              result.recall = metrics.recall;
              result.precision = metrics.precision;
              result.truePositives = metrics.truePositives;
              result.falsePositives = metrics.falsePositives;
              result.falseNegatives = metrics.falseNegatives;
              result.hd95 = diva::HausdorffDistance95(prediction, reference, sample.spacing);
              samples.push_back(result);
            }
          }
        }
      }
      if (samples.empty())
      {
        throw std::runtime_error("no case of --dataset \"" + dataset.getValue() + "\" could be evaluated");
      }
      const auto  summaries = diva::Summarize(samples);
      std::string table = diva::FormatTable1(summaries, name.getValue(), false);
      std::string markdownTable = diva::FormatTable1(summaries, name.getValue(), true);
      if (perCase.getValue())
      {
        table += "\n" + diva::FormatPerCaseDice(samples, false);
        markdownTable += "\n" + diva::FormatPerCaseDice(samples, true);
      }
      if (groups.getValue())
      {
        const auto byGroup = diva::SummarizeByGroup(samples);
        table += "\n" + diva::FormatGroupTable(byGroup, false);
        markdownTable += "\n" + diva::FormatGroupTable(byGroup, true);
      }
      std::vector<CorrectionSummary> correctionSummaries;
      if (correctionClicks.getValue() > 0)
      {
        correctionSummaries = SummarizeCorrections(corrections, correctionClicks.getValue());
        const std::string tables = FormatCorrectionTables(correctionSummaries, correctionClicks.getValue());
        table += "\n" + tables;
        markdownTable += "\n" + tables;
      }
      std::cout << table;
      if (csv.isSet())
      {
        WriteText(csv.getValue(), diva::FormatSamplesCSV(samples));
      }
      if (correctionClicks.getValue() > 0 && (correctionsCsv.isSet() || csv.isSet()))
      {
        std::string path = correctionsCsv.getValue();
        if (path.empty())
        {
          const fs::path beside(csv.getValue());
          path = (beside.parent_path() / (beside.stem().string() + "-corrections.csv")).string();
        }
        WriteText(path, FormatCorrectionsCSV(corrections));
      }
      if (curvePng.isSet())
      {
        PlotCorrections(correctionSummaries, curvePng.getValue());
      }
      if (markdown.isSet())
      {
        WriteText(markdown.getValue(), markdownTable);
      }
      return 0;
    });
}
