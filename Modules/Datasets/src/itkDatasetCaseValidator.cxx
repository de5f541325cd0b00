#include "itkDatasetCaseValidator.h"

#include "itkImageFileReader.h"
#include "itkImageIOBase.h"
#include "itkImageIOFactory.h"
#include "itkImageRegionConstIterator.h"
#include "itkVolumeFileCheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace itk
{
namespace
{
struct Header
{
  unsigned                         dimensions = 0;
  std::vector<size_t>              size;
  std::vector<double>              spacing, origin;
  std::vector<std::vector<double>> direction;
};

bool
ReadHeader(const std::string & path, const std::string & role, Header & header, std::vector<std::string> & problems)
{
  ImageIOBase::Pointer io = ImageIOFactory::CreateImageIO(path.c_str(), ImageIOFactory::IOFileModeEnum::ReadMode);
  if (io.IsNull())
  {
    problems.push_back(role + " \"" + path + "\" is not a readable image");
    return false;
  }
  try
  {
    io->SetFileName(path);
    io->ReadImageInformation();
  }
  catch (const ExceptionObject & error)
  {
    problems.push_back(role + " \"" + path + "\" cannot be read: " + error.GetDescription());
    return false;
  }
  header.dimensions = io->GetNumberOfDimensions();
  for (unsigned d = 0; d < header.dimensions; ++d)
  {
    header.size.push_back(io->GetDimensions(d));
    header.spacing.push_back(io->GetSpacing(d));
    header.origin.push_back(io->GetOrigin(d));
    header.direction.push_back(io->GetDirection(d));
  }
  // A trailing axis of size 1 (2D+1 NIfTI) is still a volume; anything else must be 3D.
  while (header.dimensions > 3 && header.size.back() == 1)
  {
    --header.dimensions;
    header.size.pop_back();
  }
  if (header.dimensions != 3)
  {
    problems.push_back(role + " \"" + path + "\" is " + std::to_string(header.dimensions) + "D; a 3D image is needed");
    return false;
  }
  return true;
}
bool
SameGrid(const Header & image, const Header & label)
{
  bool sameGrid = image.size == label.size;
  for (unsigned d = 0; d < 3 && sameGrid; ++d)
  {
    const double tolerance = 1e-3 * std::abs(image.spacing[d]);
    sameGrid = std::abs(image.spacing[d] - label.spacing[d]) <= tolerance &&
               std::abs(image.origin[d] - label.origin[d]) <= tolerance;
    for (unsigned e = 0; e < 3 && sameGrid; ++e)
    {
      sameGrid = std::abs(image.direction[d][e] - label.direction[d][e]) <= 1e-4;
    }
  }
  return sameGrid;
}

// A file cut short or corrupt, or NaN voxels in NIfTI, which ITK 5.2's readers would read as zeros (VolumeFileCheck).
bool
CheckComplete(const std::string & path, const std::string & what, std::vector<std::string> & problems)
{
  try
  {
    VolumeFileCheck::Check(path, what);
  }
  catch (const ExceptionObject & error)
  {
    std::string description = error.GetDescription();
    for (const std::string prefix : { "ITK ERROR: ", "DivAttention: " })
    {
      if (description.rfind(prefix, 0) == 0)
      {
        description.erase(0, prefix.size());
      }
    }
    problems.push_back(description);
    return false;
  }
  return true;
}

std::string
DescribeGrids(const Header & image, const Header & other)
{
  std::ostringstream message;
  message << "size " << image.size[0] << "x" << image.size[1] << "x" << image.size[2] << " vs " << other.size[0] << "x"
          << other.size[1] << "x" << other.size[2] << ", spacing " << image.spacing[0] << "x" << image.spacing[1] << "x"
          << image.spacing[2] << " vs " << other.spacing[0] << "x" << other.spacing[1] << "x" << other.spacing[2]
          << " mm, or origin or direction differ";
  return message.str();
}
} // namespace

std::vector<std::string>
DatasetCaseValidator::Check(const SegmentationDatasetReader::Case & entry, const Options & options)
{
  std::vector<std::string> problems;
  Header                   image, label;
  const bool               imageOk =
    ReadHeader(entry.image, "image", image, problems) && CheckComplete(entry.image, "image", problems);
  if (!entry.structures.empty())
  {
    // One mask file per structure: each must be a readable 3D image on the image's grid. An empty mask is not a
    // problem (a structure outside the field of view); the user of a structure skips it.
    for (const auto & structure : entry.structures)
    {
      Header            mask;
      const std::string what = "mask of structure \"" + structure.name + "\"";
      const bool        maskOk =
        ReadHeader(structure.mask, what, mask, problems) && CheckComplete(structure.mask, what, problems);
      if (imageOk && maskOk && !SameGrid(image, mask))
      {
        problems.push_back("mask of structure \"" + structure.name + "\" (\"" + structure.mask +
                           "\") lies on another grid than the image (" + DescribeGrids(image, mask) + ")");
      }
    }
    return problems;
  }
  const bool labelOk =
    ReadHeader(entry.label, "label", label, problems) && CheckComplete(entry.label, "label", problems);
  if (!imageOk || !labelOk)
  {
    return problems;
  }
  if (!SameGrid(image, label))
  {
    problems.push_back("image and label lie on different grids (" + DescribeGrids(image, label) + ")");
    return problems;
  }
  using LabelImageType = Image<uint16_t, 3>;
  auto reader = ImageFileReader<LabelImageType>::New();
  reader->SetFileName(entry.label);
  try
  {
    reader->Update();
  }
  catch (const ExceptionObject & error)
  {
    problems.push_back("label \"" + entry.label + "\" cannot be read: " + error.GetDescription());
    return problems;
  }
  size_t   targetVoxels = 0;
  uint16_t nonBinary = 0;
  for (ImageRegionConstIterator<LabelImageType> it(reader->GetOutput(),
                                                   reader->GetOutput()->GetLargestPossibleRegion());
       !it.IsAtEnd(); ++it)
  {
    const uint16_t value = it.Get();
    if (std::find(options.targetLabels.begin(), options.targetLabels.end(), value) != options.targetLabels.end())
    {
      ++targetVoxels;
    }
    if (value > 1 && nonBinary == 0)
    {
      nonBinary = value;
    }
  }
  if (targetVoxels == 0)
  {
    std::ostringstream message;
    message << "label has no voxel of the target label(s)";
    for (const auto target : options.targetLabels)
    {
      message << " " << target;
    }
    problems.push_back(message.str());
  }
  if (options.expectBinary && nonBinary != 0)
  {
    problems.push_back("label is not binary (holds the value " + std::to_string(nonBinary) + ")");
  }
  return problems;
}
} // namespace itk
