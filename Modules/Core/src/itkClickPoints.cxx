#include "itkClickPoints.h"

#include "itkContinuousIndex.h"
#include "itkMacro.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace itk
{
ClickPoints::Space
ClickPoints::ParseSpace(const std::string & text)
{
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "lps")
  {
    return Space::LPS;
  }
  if (lower == "ras")
  {
    return Space::RAS;
  }
  if (lower == "index")
  {
    return Space::Index;
  }
  itkGenericExceptionMacro(<< "DivAttention: click space \"" << text << "\" is not one of lps, ras, index");
}

std::array<double, 3>
ClickPoints::ParseTriple(const std::string & text)
{
  std::array<double, 3> values{};
  const char *          cursor = text.c_str();
  const char * const    end = cursor + text.size();
  if (text.find('\0') != std::string::npos)
  {
    itkGenericExceptionMacro(<< "DivAttention: click text contains a NUL character");
  }
  auto skipSeparators = [&](bool allowComma)
  {
    bool comma = false;
    while (cursor < end && (std::isspace(static_cast<unsigned char>(*cursor)) || (allowComma && *cursor == ',')))
    {
      if (*cursor == ',')
      {
        if (comma)
        {
          return false; // ",," : an empty coordinate
        }
        comma = true;
      }
      ++cursor;
    }
    return true;
  };
  for (size_t i = 0; i < 3; ++i)
  {
    if (!skipSeparators(i > 0) || cursor >= end)
    {
      itkGenericExceptionMacro(<< "DivAttention: click \"" << text << "\" is not three numbers x,y,z");
    }
    char * parsedEnd = nullptr;
    errno = 0;
    const double value = std::strtod(cursor, &parsedEnd);
    if (parsedEnd == cursor)
    {
      itkGenericExceptionMacro(<< "DivAttention: click \"" << text << "\" is not three numbers x,y,z");
    }
    if (!std::isfinite(value) || errno == ERANGE)
    {
      itkGenericExceptionMacro(<< "DivAttention: click \"" << text << "\" has a coordinate that is not finite");
    }
    values[i] = value;
    cursor = parsedEnd;
  }
  skipSeparators(false);
  if (cursor != end)
  {
    itkGenericExceptionMacro(<< "DivAttention: click \"" << text << "\" has text after its three numbers");
  }
  return values;
}

ClickPoints::PointType
ClickPoints::ToPhysicalPoint(const std::array<double, 3> & coordinates, Space space, const ImageBase<3> * image)
{
  PointType point;
  switch (space)
  {
    case Space::LPS:
      point[0] = coordinates[0];
      point[1] = coordinates[1];
      point[2] = coordinates[2];
      return point;
    case Space::RAS:
      point[0] = -coordinates[0];
      point[1] = -coordinates[1];
      point[2] = coordinates[2];
      return point;
    case Space::Index:
    {
      if (image == nullptr)
      {
        itkGenericExceptionMacro(<< "DivAttention: a click given as a voxel index needs the image it refers to");
      }
      ContinuousIndex<double, 3> index;
      for (unsigned d = 0; d < 3; ++d)
      {
        index[d] = coordinates[d];
      }
      image->TransformContinuousIndexToPhysicalPoint(index, point);
      return point;
    }
  }
  itkGenericExceptionMacro(<< "DivAttention: unknown click space");
}

std::vector<ClickPoints::PointType>
ClickPoints::Parse(const std::vector<std::string> & texts, Space space, const ImageBase<3> * image)
{
  std::vector<PointType> points;
  points.reserve(texts.size());
  for (const auto & text : texts)
  {
    points.push_back(ToPhysicalPoint(ParseTriple(text), space, image));
  }
  return points;
}

bool
ClickPoints::IsInside(const PointType & point, const ImageBase<3> * image)
{
  if (image == nullptr)
  {
    return false;
  }
  ContinuousIndex<double, 3> index;
  image->TransformPhysicalPointToContinuousIndex(point, index);
  const auto & region = image->GetLargestPossibleRegion();
  for (unsigned d = 0; d < 3; ++d)
  {
    const double first = static_cast<double>(region.GetIndex()[d]) - 0.5;
    const double last =
      static_cast<double>(region.GetIndex()[d] + static_cast<IndexValueType>(region.GetSize()[d])) - 0.5;
    if (!(index[d] >= first && index[d] <= last))
    {
      return false;
    }
  }
  return true;
}

} // namespace itk
