#include "itkSegmentationDatasetReader.h"

#include "itkMacro.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
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

// A TotalSegmentator case folder: ct.nii.gz next to segmentations/.
bool
IsTotalSegmentatorCase(const fs::path & folder)
{
  std::error_code error;
  return fs::is_regular_file(folder / "ct.nii.gz", error) || fs::is_directory(folder / "segmentations", error);
}

void
AddTotalSegmentatorCase(SegmentationDatasetReader::Listing & listing, const fs::path & folder)
{
  std::error_code   error;
  const std::string id = folder.filename().string();
  const fs::path    image = folder / "ct.nii.gz";
  const fs::path    masks = folder / "segmentations";
  if (!fs::is_regular_file(image, error))
  {
    listing.problems.push_back({ id, "image \"" + image.string() + "\" does not exist" });
    return;
  }
  if (!fs::is_directory(masks, error))
  {
    listing.problems.push_back({ id, "no segmentations folder \"" + masks.string() + "\"" });
    return;
  }
  SegmentationDatasetReader::Case entry;
  entry.id = id;
  entry.image = image.lexically_normal().string();
  for (const auto & file : fs::directory_iterator(masks, error))
  {
    const std::string name = file.path().filename().string();
    const std::string structure = StripImageExtension(name);
    if (file.is_regular_file() && structure != name && !structure.empty())
    {
      entry.structures.push_back({ structure, file.path().lexically_normal().string() });
    }
  }
  if (entry.structures.empty())
  {
    listing.problems.push_back(
      { id, "segmentations folder \"" + masks.string() + "\" holds no mask (<structure>.nii.gz)" });
    return;
  }
  std::sort(entry.structures.begin(), entry.structures.end(),
            [](const auto & a, const auto & b) { return a.name < b.name; });
  listing.cases.push_back(entry);
}

SegmentationDatasetReader::Listing
ReadTotalSegmentator(const fs::path & root)
{
  SegmentationDatasetReader::Listing listing;
  listing.layout = SegmentationDatasetReader::Layout::TotalSegmentator;
  if (IsTotalSegmentatorCase(root))
  {
    AddTotalSegmentatorCase(listing, root); // the root is one case
    return listing;
  }
  for (const auto & entry : fs::directory_iterator(root))
  {
    if (entry.is_directory() && IsTotalSegmentatorCase(entry.path()))
    {
      AddTotalSegmentatorCase(listing, entry.path());
    }
  }
  return listing;
}

bool
LooksLikeTotalSegmentator(const fs::path & root)
{
  std::error_code error;
  if (fs::is_directory(root / "segmentations", error))
  {
    return true;
  }
  for (const auto & entry : fs::directory_iterator(root, error))
  {
    if (entry.is_directory() && fs::is_directory(entry.path() / "segmentations", error))
    {
      return true;
    }
  }
  return false;
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
  if (lower == "totalseg" || lower == "totalsegmentator")
    return Layout::TotalSegmentator;
  itkGenericExceptionMacro(<< "DivAttention: dataset layout \"" << text
                           << "\" is not one of auto, msd, kits, nnunet, csv, totalseg");
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
    case Layout::TotalSegmentator:
      return "totalseg";
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
  struct Row
  {
    size_t      line = 0;
    std::string image, label, id;
    bool        explicitId = false;
  };
  std::vector<Row>  rows;
  std::stringstream lines(csvText);
  std::string       line;
  size_t            number = 0;
  // Columns: image, label, id by position unless a header line names them (in any order).
  size_t imageColumn = 0, labelColumn = 1, idColumn = 2, columns = 0;
  bool   first = true;
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
      const auto firstCharacter = field.find_first_not_of(" \t");
      const auto last = field.find_last_not_of(" \t");
      fields.push_back(firstCharacter == std::string::npos ? std::string()
                                                           : field.substr(firstCharacter, last - firstCharacter + 1));
    }
    if (first)
    {
      first = false;
      std::vector<std::string> names(fields);
      for (auto & name : names)
      {
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      }
      const auto find = [&names](std::initializer_list<const char *> accepted)
      {
        for (size_t column = 0; column < names.size(); ++column)
        {
          for (const char * name : accepted)
          {
            if (names[column] == name)
            {
              return column;
            }
          }
        }
        return std::string::npos;
      };
      const size_t image = find({ "image" }), label = find({ "label", "mask" });
      if (image != std::string::npos || label != std::string::npos)
      {
        const size_t id = find({ "id", "case", "case_id", "caseid" });
        if (image == std::string::npos || label == std::string::npos || names.size() > 3 ||
            (names.size() == 3 && id == std::string::npos))
        {
          itkGenericExceptionMacro(<< "DivAttention: dataset: \"" << sourceName << "\" line " << number
                                   << ": a header names the columns image, label and optionally id (or case), got \""
                                   << line << "\"");
        }
        imageColumn = image;
        labelColumn = label;
        idColumn = names.size() == 3 ? id : 2; // "image,label" headers: a third field is still the id
        columns = names.size();
        continue; // header
      }
    }
    const bool shapeOk = columns == 3 ? fields.size() == 3 : fields.size() == 2 || fields.size() == 3;
    if (!shapeOk || fields[imageColumn].empty() || fields[labelColumn].empty())
    {
      itkGenericExceptionMacro(<< "DivAttention: dataset: \"" << sourceName << "\" line " << number << ": expected "
                               << (columns == 3 ? std::string("3 columns as the header names them")
                                                : std::string("image,label[,id]"))
                               << ", got \"" << line << "\"");
    }
    Row row;
    row.line = number;
    row.image = fields[imageColumn];
    row.label = fields[labelColumn];
    if (idColumn < fields.size() && !fields[idColumn].empty())
    {
      row.id = fields[idColumn];
      row.explicitId = true;
    }
    rows.push_back(row);
  }

  // Ids given in the file must be unique.
  std::set<std::string> taken;
  for (const auto & row : rows)
  {
    if (row.explicitId && !taken.insert(row.id).second)
    {
      itkGenericExceptionMacro(<< "DivAttention: dataset: \"" << sourceName << "\" line " << row.line << ": case id \""
                               << row.id << "\" appears twice");
    }
  }
  // Ids derived from the image path: the file name without its extension, and where that repeats (STS_001/ct.nii.gz,
  // STS_002/ct.nii.gz) the folders above it, one more level at a time, until the ids differ.
  const auto derived = [](const std::string & image, size_t depth)
  {
    const fs::path path = fs::path(image).lexically_normal();
    if (depth == 0)
    {
      return StripImageExtension(path.filename().string());
    }
    std::vector<std::string> folders;
    for (const auto & part : path.parent_path())
    {
      const std::string text = part.string();
      if (!text.empty() && text != "/" && text != "." && text != "..")
      {
        folders.push_back(text);
      }
    }
    if (folders.empty())
    {
      return std::string();
    }
    std::string id;
    for (size_t k = folders.size() - std::min(depth, folders.size()); k < folders.size(); ++k)
    {
      id += (id.empty() ? "" : "/") + folders[k];
    }
    return depth > folders.size() ? std::string() : id;
  };
  std::vector<size_t> pending;
  for (size_t r = 0; r < rows.size(); ++r)
  {
    if (!rows[r].explicitId)
    {
      pending.push_back(r);
    }
  }
  for (size_t depth = 0; !pending.empty(); ++depth)
  {
    std::map<std::string, std::vector<size_t>> byId;
    for (const size_t r : pending)
    {
      byId[derived(rows[r].image, depth)].push_back(r);
    }
    std::vector<size_t> next;
    for (const auto & [id, members] : byId)
    {
      if (!id.empty() && members.size() == 1 && taken.count(id) == 0)
      {
        rows[members[0]].id = id;
        taken.insert(id);
        continue;
      }
      if (id.empty() && depth > 0 && members.size() == 1 && !derived(rows[members[0]].image, 0).empty() &&
          taken.count(derived(rows[members[0]].image, 0)) == 0)
      {
        rows[members[0]].id = derived(rows[members[0]].image, 0); // no folder: its file name, now unique
        taken.insert(rows[members[0]].id);
        continue;
      }
      if (id.empty() && depth > 0)
      {
        // No folder left to tell these rows apart: the same image listed twice.
        const Row & row = rows[members.back()];
        itkGenericExceptionMacro(<< "DivAttention: dataset: \"" << sourceName << "\" line " << row.line
                                 << ": case id \"" << derived(row.image, 0)
                                 << "\" appears twice and the image paths do not tell the cases apart; give an id "
                                    "column");
      }
      next.insert(next.end(), members.begin(), members.end());
    }
    pending = next;
  }

  Listing listing;
  listing.layout = Layout::CSV;
  for (const auto & row : rows)
  {
    AddIfPresent(listing, { row.id, Resolve(root, row.image), Resolve(root, row.label) });
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
  const bool csvFile = layout == Layout::CSV || (layout == Layout::Auto && location.extension() == ".csv");
  if (!csvFile && !fs::is_directory(location, error))
  {
    itkGenericExceptionMacro(<< "DivAttention: dataset \"" << path
                             << "\" is a file: a dataset is a folder, or a .csv file (or --layout csv)");
  }
  if (layout == Layout::Auto)
  {
    if (fs::is_regular_file(location) && location.extension() == ".csv")
      layout = Layout::CSV;
    else if (fs::is_regular_file(location / "dataset.json"))
      layout = Layout::MSD;
    else if (fs::is_directory(location / "imagesTr"))
      layout = Layout::NNUNetRaw;
    else if (LooksLikeTotalSegmentator(location))
      layout = Layout::TotalSegmentator;
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
    case Layout::TotalSegmentator:
      listing = ReadTotalSegmentator(location);
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
