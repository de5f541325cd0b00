#include "divaEvaluation.h"

#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkSignedMaurerDistanceMapImageFilter.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iomanip>
#include <limits>
#include <map>
#include <set>
#include <sstream>

namespace diva
{
namespace
{
using MaskImageType = itk::Image<uint8_t, 3>;
using DistanceImageType = itk::Image<float, 3>;

MaskImageType::Pointer
ToMaskImage(const torch::Tensor & mask, const std::array<double, 3> & spacing)
{
  const torch::Tensor binary = (mask.squeeze() != 0).to(torch::kUInt8).contiguous();
  if (binary.dim() != 3)
  {
    throw std::invalid_argument("HD95: masks must be 3D (z, y, x)");
  }
  auto                    image = MaskImageType::New();
  MaskImageType::SizeType size;
  size[0] = static_cast<itk::SizeValueType>(binary.size(2));
  size[1] = static_cast<itk::SizeValueType>(binary.size(1));
  size[2] = static_cast<itk::SizeValueType>(binary.size(0));
  image->SetRegions(MaskImageType::RegionType(size));
  image->SetSpacing(spacing.data());
  image->Allocate();
  std::copy_n(binary.data_ptr<uint8_t>(), binary.numel(), image->GetBufferPointer());
  return image;
}

// Surface voxels: foreground with a face neighbour in the background or outside the grid.
std::vector<MaskImageType::IndexType>
Surface(const MaskImageType * mask)
{
  std::vector<MaskImageType::IndexType>                 surface;
  const auto                                            region = mask->GetLargestPossibleRegion();
  itk::ImageRegionConstIteratorWithIndex<MaskImageType> it(mask, region);
  for (; !it.IsAtEnd(); ++it)
  {
    if (it.Get() == 0)
    {
      continue;
    }
    bool onSurface = false;
    for (unsigned int d = 0; d < 3 && !onSurface; ++d)
    {
      for (const int step : { -1, 1 })
      {
        auto neighbour = it.GetIndex();
        neighbour[d] += step;
        if (!region.IsInside(neighbour) || mask->GetPixel(neighbour) == 0)
        {
          onSurface = true;
          break;
        }
      }
    }
    if (onSurface)
    {
      surface.push_back(it.GetIndex());
    }
  }
  return surface;
}

double
Percentile95(std::vector<double> values)
{
  std::sort(values.begin(), values.end());
  const double position = 0.95 * static_cast<double>(values.size() - 1);
  const auto   below = static_cast<size_t>(std::floor(position));
  const auto   above = std::min(below + 1, values.size() - 1);
  return values[below] + (position - static_cast<double>(below)) * (values[above] - values[below]);
}

// Distances from a's surface voxel centres to the nearest of b's surface voxel centres (MONAI's surface-to-surface
// definition): the Euclidean distance transform of b's surface set, read at a's surface voxels.
std::vector<double>
DirectedDistances(const std::vector<MaskImageType::IndexType> & aSurface, const MaskImageType * bSurfaceImage)
{
  // Maurer's map measures, outside an object, the distance to the centres of the object's contour voxels; every
  // voxel of a one-voxel-thick surface set is such a contour voxel.
  auto map = itk::SignedMaurerDistanceMapImageFilter<MaskImageType, DistanceImageType>::New();
  map->SetInput(bSurfaceImage);
  map->SetUseImageSpacing(true);
  map->SetSquaredDistance(false);
  map->SetInsideIsPositive(false);
  map->SetBackgroundValue(0);
  map->Update();
  std::vector<double> distances;
  distances.reserve(aSurface.size());
  for (const auto & index : aSurface)
  {
    distances.push_back(std::max(0.0, static_cast<double>(map->GetOutput()->GetPixel(index))));
  }
  return distances;
}

MaskImageType::Pointer
SurfaceImage(const MaskImageType * like, const std::vector<MaskImageType::IndexType> & surface)
{
  auto image = MaskImageType::New();
  image->CopyInformation(like);
  image->SetRegions(like->GetLargestPossibleRegion());
  image->Allocate();
  image->FillBuffer(0);
  for (const auto & index : surface)
  {
    image->SetPixel(index, 1);
  }
  return image;
}
} // namespace

double
HausdorffDistance95(const torch::Tensor &         prediction,
                    const torch::Tensor &         reference,
                    const std::array<double, 3> & spacing)
{
  const auto predictionImage = ToMaskImage(prediction, spacing);
  const auto referenceImage = ToMaskImage(reference, spacing);
  const auto predictionSurface = Surface(predictionImage);
  const auto referenceSurface = Surface(referenceImage);
  if (predictionSurface.empty() || referenceSurface.empty())
  {
    return std::numeric_limits<double>::quiet_NaN();
  }
  const auto forward = DirectedDistances(predictionSurface, SurfaceImage(referenceImage, referenceSurface));
  const auto backward = DirectedDistances(referenceSurface, SurfaceImage(predictionImage, predictionSurface));
  return std::max(Percentile95(forward), Percentile95(backward));
}

std::vector<ModelSummary>
Summarize(const std::vector<EvaluatedSample> & samples)
{
  std::vector<ModelSummary>     summaries;
  std::map<std::string, size_t> position;
  std::vector<int64_t>          hd95Counts;
  for (const auto & sample : samples)
  {
    auto found = position.find(sample.model);
    if (found == position.end())
    {
      found = position.emplace(sample.model, summaries.size()).first;
      summaries.push_back(ModelSummary{ sample.model, 0, 0.0, 0.0, 0.0, 0.0 });
      hd95Counts.push_back(0);
    }
    auto & summary = summaries[found->second];
    ++summary.samples;
    summary.dice += sample.dice;
    summary.recall += sample.recall;
    summary.precision += sample.precision;
    if (std::isfinite(sample.hd95))
    {
      summary.hd95 += sample.hd95;
      ++hd95Counts[found->second];
    }
  }
  for (size_t i = 0; i < summaries.size(); ++i)
  {
    auto &       s = summaries[i];
    const double n = static_cast<double>(s.samples);
    s.dice /= n;
    s.recall /= n;
    s.precision /= n;
    s.hd95 = hd95Counts[i] > 0 ? s.hd95 / static_cast<double>(hd95Counts[i]) : std::numeric_limits<double>::quiet_NaN();
  }
  return summaries;
}

std::string
FormatTable1(const std::vector<ModelSummary> & summaries, const std::string & datasetName, bool markdown)
{
  std::ostringstream out;
  out << std::fixed << std::setprecision(4);
  size_t width = 5;
  for (const auto & s : summaries)
  {
    width = std::max(width, s.model.size());
  }
  if (markdown)
  {
    out << "| Model | " << datasetName << " Dice | Recall | Precision | HD95 (mm) | Samples |\n";
    out << "|---|---:|---:|---:|---:|---:|\n";
    for (const auto & s : summaries)
    {
      out << "| " << s.model << " | " << s.dice << " | " << s.recall << " | " << s.precision << " | " << s.hd95 << " | "
          << s.samples << " |\n";
    }
    return out.str();
  }
  out << std::left << std::setw(static_cast<int>(width)) << ""
      << "  " << datasetName << '\n';
  out << std::setw(static_cast<int>(width)) << "Model"
      << "  Dice    Recall  Precision  HD95(mm)  Samples\n";
  for (const auto & s : summaries)
  {
    out << std::left << std::setw(static_cast<int>(width)) << s.model << "  " << s.dice << "  " << s.recall << "  "
        << s.precision << "     " << std::setw(8) << s.hd95 << "  " << s.samples << '\n';
  }
  return out.str();
}

std::string
FormatSamplesCSV(const std::vector<EvaluatedSample> & samples)
{
  std::ostringstream out;
  out << "model,case,instance,click,dice,recall,precision,hd95_mm,tp,fp,fn,click_x,click_y,click_z,fallback_crop,"
         "structure,group,answer\n"
      << std::setprecision(9);
  // Unrecorded values stay empty, so a spreadsheet or pandas reads them as missing rather than as numbers.
  auto count = [&out](int64_t value)
  {
    out << ',';
    if (value >= 0)
    {
      out << value;
    }
  };
  for (const auto & s : samples)
  {
    out << s.model << ',' << s.caseId << ',' << s.instance << ',' << s.click << ',' << s.dice << ',' << s.recall << ','
        << s.precision << ',' << s.hd95;
    count(s.truePositives);
    count(s.falsePositives);
    count(s.falseNegatives);
    for (const double coordinate : s.clickPoint)
    {
      out << ',';
      if (std::isfinite(coordinate))
      {
        out << coordinate;
      }
    }
    count(s.fallbackCrop);
    out << ',' << s.structure << ',' << s.group << ',' << s.answer << '\n';
  }
  return out.str();
}

std::string
FormatPerCaseDice(const std::vector<EvaluatedSample> & samples, bool markdown)
{
  std::vector<std::string>                                                  models;
  std::vector<std::string>                                                  cases;
  std::map<std::pair<std::string, std::string>, std::pair<double, int64_t>> sums; // (case, model) -> (sum, count)
  for (const auto & s : samples)
  {
    if (std::find(models.begin(), models.end(), s.model) == models.end())
    {
      models.push_back(s.model);
    }
    if (std::find(cases.begin(), cases.end(), s.caseId) == cases.end())
    {
      cases.push_back(s.caseId);
    }
    auto & sum = sums[{ s.caseId, s.model }];
    sum.first += s.dice;
    ++sum.second;
  }
  std::ostringstream out;
  out << std::fixed << std::setprecision(4);
  auto cell = [&sums](const std::string & caseId, const std::string & model)
  {
    const auto         found = sums.find({ caseId, model });
    std::ostringstream text;
    text << std::fixed << std::setprecision(4);
    if (found != sums.end())
    {
      text << found->second.first / static_cast<double>(found->second.second);
    }
    return text.str();
  };
  if (markdown)
  {
    out << "| Case (mean Dice) |";
    for (const auto & model : models)
    {
      out << ' ' << model << " |";
    }
    out << "\n|---|";
    for (size_t i = 0; i < models.size(); ++i)
    {
      out << "---:|";
    }
    out << '\n';
    for (const auto & caseId : cases)
    {
      out << "| " << caseId << " |";
      for (const auto & model : models)
      {
        out << ' ' << cell(caseId, model) << " |";
      }
      out << '\n';
    }
    return out.str();
  }
  size_t width = 4;
  for (const auto & caseId : cases)
  {
    width = std::max(width, caseId.size());
  }
  out << std::left << std::setw(static_cast<int>(width)) << "Case";
  for (const auto & model : models)
  {
    out << "  " << std::setw(static_cast<int>(std::max<size_t>(6, model.size()))) << model;
  }
  out << '\n';
  for (const auto & caseId : cases)
  {
    out << std::setw(static_cast<int>(width)) << caseId;
    for (const auto & model : models)
    {
      out << "  " << std::setw(static_cast<int>(std::max<size_t>(6, model.size()))) << cell(caseId, model);
    }
    out << '\n';
  }
  return out.str();
}
std::string
StructureGroup(const std::string & structure)
{
  std::string name(structure);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::vector<std::pair<std::string, std::vector<std::string>>> rules{
    { "lesions", { "lesion", "tumor", "tumour", "cyst", "nodule", "mass", "metasta", "gtv", "sarcoma" } },
    { "vessels", { "aorta", "artery", "arteries", "vein", "vena", "portal", "vessel", "brachiocephalic_trunk" } },
    { "bone",
      { "vertebra", "rib_", "sacrum", "femur", "humerus", "scapula", "clavicula", "hip_", "sternum", "skull",
        "costal_cartilage", "bone" } },
    { "muscle", { "gluteus", "iliopsoas", "autochthon", "muscle", "psoas" } },
    { "organs", { "spleen",    "kidney",  "gallbladder",      "liver", "stomach",  "pancreas", "adrenal", "lung",
                  "esophagus", "trachea", "thyroid",          "bowel", "duodenum", "colon",    "bladder", "prostate",
                  "uterus",    "heart",   "atrial_appendage", "brain" } }
  };
  for (const auto & [group, words] : rules)
  {
    for (const auto & word : words)
    {
      if (name.find(word) != std::string::npos)
      {
        return group;
      }
    }
  }
  return "other";
}

std::vector<GroupSummary>
SummarizeByGroup(const std::vector<EvaluatedSample> & samples)
{
  static const std::vector<std::string> order{ "organs", "lesions", "vessels", "muscle", "bone", "other" };
  std::vector<std::string>              groups(order);
  for (const auto & sample : samples)
  {
    if (std::find(groups.begin(), groups.end(), sample.group) == groups.end())
    {
      groups.push_back(sample.group);
    }
  }
  std::vector<GroupSummary> result;
  for (const auto & group : groups)
  {
    std::vector<EvaluatedSample>                 members;
    std::map<std::string, std::set<std::string>> targets; // per model: case / structure / instance
    for (const auto & sample : samples)
    {
      if (sample.group == group)
      {
        members.push_back(sample);
        targets[sample.model].insert(sample.caseId + "\n" + sample.structure + "\n" + std::to_string(sample.instance));
      }
    }
    for (const auto & summary : Summarize(members))
    {
      result.push_back({ group, summary, static_cast<int64_t>(targets[summary.model].size()) });
    }
  }
  return result;
}

std::string
FormatGroupTable(const std::vector<GroupSummary> & summaries, bool markdown)
{
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  size_t width = 5;
  for (const auto & s : summaries)
  {
    width = std::max(width, s.summary.model.size());
  }
  if (markdown)
  {
    out << "| Group | Method | Dice | Recall | Precision | HD95 (mm) | Targets | Samples |\n";
    out << "|---|---|---:|---:|---:|---:|---:|---:|\n";
  }
  else
  {
    out << std::left << std::setw(8) << "Group"
        << "  " << std::setw(static_cast<int>(width)) << "Method"
        << "  Dice   Recall  Precision  HD95(mm)  Targets  Samples\n";
  }
  for (const auto & s : summaries)
  {
    const auto & m = s.summary;
    if (markdown)
    {
      out << "| " << s.group << " | " << m.model << " | " << m.dice << " | " << m.recall << " | " << m.precision
          << " | " << std::setprecision(1) << m.hd95 << std::setprecision(3) << " | " << s.structures << " | "
          << m.samples << " |\n";
    }
    else
    {
      out << std::left << std::setw(8) << s.group << "  " << std::setw(static_cast<int>(width)) << m.model << "  "
          << m.dice << "  " << m.recall << "   " << m.precision << "      " << std::setw(8) << std::setprecision(1)
          << m.hd95 << std::setprecision(3) << "  " << std::setw(7) << s.structures << "  " << m.samples << '\n';
    }
  }
  return out.str();
}
} // namespace diva
