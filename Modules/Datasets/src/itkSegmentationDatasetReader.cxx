#include "itkSegmentationDatasetReader.h"

#include "itkMacro.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace itk
{
namespace
{
namespace fs = std::filesystem;

std::string
ReadText(const fs::path & path)
{
  std::ifstream in(path, std::ios::binary);
  if (!in)
  {
    itkGenericExceptionMacro(<< "DivAttention: dataset: cannot read \"" << path.string() << "\"");
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string
Resolve(const std::string & root, const std::string & entry)
{
  fs::path path(entry);
  if (path.is_relative())
  {
    path = fs::path(root) / path;
  }
  return path.lexically_normal().string();
}

// "x.nii.gz" -> "x", "x.nrrd" -> "x".
std::string
StripImageExtension(std::string name)
{
  for (const char * extension : { ".nii.gz", ".nii", ".nrrd", ".mha", ".mhd" })
  {
    const std::string e(extension);
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0)
    {
      return name.substr(0, name.size() - e.size());
    }
  }
  return name;
}

void
AddIfPresent(SegmentationDatasetReader::Listing & listing, const SegmentationDatasetReader::Case & entry)
{
  std::error_code error;
  if (!fs::is_regular_file(entry.image, error))
  {
    listing.problems.push_back({ entry.id, "image \"" + entry.image + "\" does not exist" });
  }
  else if (!fs::is_regular_file(entry.label, error))
  {
    listing.problems.push_back({ entry.id, "label \"" + entry.label + "\" does not exist" });
  }
  else
  {
    listing.cases.push_back(entry);
  }
}

SegmentationDatasetReader::Listing
ReadKiTS(const fs::path & root)
{
  SegmentationDatasetReader::Listing listing;
  listing.layout = SegmentationDatasetReader::Layout::KiTS;
  const fs::path base = fs::is_directory(root / "data") ? root / "data" : root;
  for (const auto & entry : fs::directory_iterator(base))
  {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("case_", 0) != 0)
    {
      continue;
    }
    AddIfPresent(listing,
                 { name, (entry.path() / "imaging.nii.gz").string(), (entry.path() / "segmentation.nii.gz").string() });
  }
  return listing;
}

SegmentationDatasetReader::Listing
ReadNNUNet(const fs::path & root)
{
  SegmentationDatasetReader::Listing listing;
  listing.layout = SegmentationDatasetReader::Layout::NNUNetRaw;
  if (!fs::is_directory(root / "imagesTr"))
  {
    itkGenericExceptionMacro(<< "DivAttention: dataset \"" << root.string() << "\": no imagesTr/ folder");
  }
  for (const auto & entry : fs::directory_iterator(root / "imagesTr"))
  {
    const std::string stem = StripImageExtension(entry.path().filename().string());
    if (stem.size() < 6 || stem.compare(stem.size() - 5, 5, "_0000") != 0)
    {
      continue; // other channels (_0001 ...) belong to the same case
    }
    const std::string id = stem.substr(0, stem.size() - 5);
    const std::string extension = entry.path().filename().string().substr(stem.size());
    AddIfPresent(listing, { id, entry.path().string(), (root / "labelsTr" / (id + extension)).string() });
  }
  return listing;
}
} // namespace

SegmentationDatasetReader::Layout
SegmentationDatasetReader::ParseLayout(const std::string & text)
{
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "auto")
    return Layout::Auto;
  if (lower == "msd")
    return Layout::MSD;
  if (lower == "kits")
    return Layout::KiTS;
  if (lower == "nnunet")
    return Layout::NNUNetRaw;
  if (lower == "csv")
    return Layout::CSV;
  itkGenericExceptionMacro(<< "DivAttention: dataset layout \"" << text
                           << "\" is not one of auto, msd, kits, nnunet, csv");
}

std::string
SegmentationDatasetReader::LayoutName(Layout layout)
{
  switch (layout)
  {
    case Layout::Auto:
      return "auto";
    case Layout::MSD:
      return "msd";
    case Layout::KiTS:
      return "kits";
    case Layout::NNUNetRaw:
      return "nnunet";
    case Layout::CSV:
      return "csv";
  }
  return "unknown";
}

SegmentationDatasetReader::Listing
SegmentationDatasetReader::ParseMSDJson(const std::string & jsonText,
                                        const std::string & root,
                                        const std::string & sourceName)
{
  nlohmann::json document;
  try
  {
    document = nlohmann::json::parse(jsonText);
  }
  catch (const nlohmann::json::exception & error)
  {
    itkGenericExceptionMacro(<< "DivAttention: dataset: \"" << sourceName << "\" is not valid JSON: " << error.what());
  }
  if (!document.is_object() || !document.contains("training") || !document["training"].is_array())
  {
    itkGenericExceptionMacro(<< "DivAttention: dataset: \"" << sourceName
                             << "\" has no \"training\" list of {\"image\", \"label\"} entries");
  }
  Listing listing;
  listing.layout = Layout::MSD;
  std::set<std::string> seen;
  size_t                index = 0;
  for (const auto & entry : document["training"])
  {
    if (!entry.is_object() || !entry.contains("image") || !entry.contains("label") || !entry["image"].is_string() ||
        !entry["label"].is_string())
    {
      itkGenericExceptionMacro(<< "DivAttention: dataset: \"" << sourceName << "\": training entry " << index
                               << " is not {\"image\": path, \"label\": path}");
    }
    const std::string image = entry["image"];
    const std::string label = entry["label"];
    std::string       id = StripImageExtension(fs::path(image).filename().string());
    if (id.empty() || !seen.insert(id).second)
    {
      id += "#" + std::to_string(index); // keep ids unique even for odd files
    }
    AddIfPresent(listing, { id, Resolve(root, image), Resolve(root, label) });
    ++index;
  }
  return listing;
}

SegmentationDatasetReader::Listing
SegmentationDatasetReader::ParseCSV(const std::string & csvText,
                                    const std::string & root,
                                    const std::string & sourceName)
{
  Listing listing;
  listing.layout = Layout::CSV;
  std::stringstream     lines(csvText);
  std::string           line;
  size_t                number = 0;
  std::set<std::string> seen;
  while (std::getline(lines, line))
  {
    ++number;
    if (!line.empty() && line.back() == '\r')
    {
      line.pop_back();
    }
    if (line.empty() || line[0] == '#')
    {
      continue;
    }
    std::vector<std::string> fields;
    std::stringstream        parts(line);
    std::string              field;
    while (std::getline(parts, field, ','))
    {
      const auto first = field.find_first_not_of(" \t");
      const auto last = field.find_last_not_of(" \t");
      fields.push_back(first == std::string::npos ? std::string() : field.substr(first, last - first + 1));
    }
    if (number == 1 && fields.size() >= 2 && fields[0] == "image" && fields[1] == "label")
    {
      continue; // header
    }
    if (fields.size() < 2 || fields.size() > 3 || fields[0].empty() || fields[1].empty())
    {
      itkGenericExceptionMacro(<< "DivAttention: dataset: \"" << sourceName << "\" line " << number
                               << ": expected image,label[,id], got \"" << line << "\"");
    }
    std::string id = fields.size() == 3 && !fields[2].empty()
                       ? fields[2]
                       : StripImageExtension(fs::path(fields[0]).filename().string());
    if (!seen.insert(id).second)
    {
      itkGenericExceptionMacro(<< "DivAttention: dataset: \"" << sourceName << "\" line " << number << ": case id \""
                               << id << "\" appears twice");
    }
    AddIfPresent(listing, { id, Resolve(root, fields[0]), Resolve(root, fields[1]) });
  }
  return listing;
}

SegmentationDatasetReader::Listing
SegmentationDatasetReader::Read(const std::string & path, Layout layout)
{
  const fs::path  location(path);
  std::error_code error;
  if (!fs::exists(location, error))
  {
    itkGenericExceptionMacro(<< "DivAttention: dataset \"" << path << "\" does not exist");
  }
  if (layout == Layout::Auto)
  {
    if (fs::is_regular_file(location) && location.extension() == ".csv")
      layout = Layout::CSV;
    else if (fs::is_regular_file(location / "dataset.json"))
      layout = Layout::MSD;
    else if (fs::is_directory(location / "imagesTr"))
      layout = Layout::NNUNetRaw;
    else
      layout = Layout::KiTS;
  }
  Listing listing;
  switch (layout)
  {
    case Layout::CSV:
      listing = ParseCSV(ReadText(location), location.parent_path().string(), path);
      break;
    case Layout::MSD:
    {
      const std::string text = ReadText(location / "dataset.json");
      // nnU-Net v2 writes a dataset.json without a "training" list: then its file naming rule applies.
      const auto document = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (document.is_object() && !document.contains("training") && fs::is_directory(location / "imagesTr"))
      {
        listing = ReadNNUNet(location);
      }
      else
      {
        listing = ParseMSDJson(text, location.string(), (location / "dataset.json").string());
      }
      break;
    }
    case Layout::NNUNetRaw:
      listing = ReadNNUNet(location);
      break;
    case Layout::KiTS:
      listing = ReadKiTS(location);
      break;
    case Layout::Auto:
      break;
  }
  if (listing.cases.empty() && listing.problems.empty())
  {
    itkGenericExceptionMacro(<< "DivAttention: dataset \"" << path << "\" (" << LayoutName(listing.layout)
                             << " layout) lists no cases");
  }
  std::sort(listing.cases.begin(), listing.cases.end(), [](const Case & a, const Case & b) { return a.id < b.id; });
  return listing;
}

} // namespace itk
