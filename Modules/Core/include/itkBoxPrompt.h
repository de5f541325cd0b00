#ifndef itkBoxPrompt_h
#define itkBoxPrompt_h

#include "itkClickPoints.h"
#include "itkImageBase.h"
#include "itkImageRegion.h"
#include "itkMacro.h"
#include "itkPoint.h"
#include "itkVector.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>
#include <utility>

namespace itk
{
/** \class BoxPrompt
 * \brief A box prompt (two opposite corners, physical LPS points) on an image: its checks, its voxels, its size.
 *
 * The box is axis-aligned in the image's index space: its corners are physical points, mapped to continuous indices
 * of the image (origin, spacing and direction honoured), and the box is everything between them along each image
 * axis. On an oblique CT the box is therefore oblique in physical space, along the CT's own axes; a box oriented any
 * other way is not supported.
 * - Check(): both corners finite and inside the image (voxel centres +/- half a voxel, as a click), and the box at
 * least MinimumSideInVoxels long along every image axis (corners in one slice are a rectangle, not a box).
 * - IndexRegion(): the voxels of the box: along each axis, from the voxel holding the lower corner to the voxel
 *   holding the upper one (indices rounded to the nearest voxel), clipped to the image.
 * - Sides(): the box's side lengths (mm) along the image axes, |corner2 - corner1| in continuous index times the
 *   spacing; Centre(): the midpoint of the corners.
 * - Parse(): six numbers "x0,y0,z0,x1,y1,z1" (commas and/or spaces between them), the two corners in a click space
 *   (itk::ClickPoints: lps, ras or index of the image), as physical LPS points.
 * Errors are itk::ExceptionObject naming `what` (e.g. "Box" or "--box").
 * \ingroup DivAttention
 */
class BoxPrompt
{
public:
  using PointType = Point<double, 3>;
  using RegionType = ImageRegion<3>;
  using SidesType = Vector<double, 3>;

  /** Shortest side of a valid box, in voxels of the image along each of its axes. */
  static constexpr double MinimumSideInVoxels = 0.5;

  /** The two corners that `text` (six finite numbers) gives in `space`; `image` is needed for
   * ClickPoints::Space::Index.
   */
  static std::pair<PointType, PointType>
  Parse(const std::string & text, ClickPoints::Space space, const ImageBase<3> * image, const std::string & what)
  {
    std::array<double, 6> values{};
    size_t                count = 0;
    const char *          cursor = text.c_str();
    const char * const    end = cursor + text.size();
    while (cursor < end)
    {
      if (std::isspace(static_cast<unsigned char>(*cursor)) || *cursor == ',')
      {
        ++cursor;
        continue;
      }
      char * parsedEnd = nullptr;
      errno = 0;
      const double value = std::strtod(cursor, &parsedEnd);
      if (parsedEnd == cursor ||
          (parsedEnd < end && !std::isspace(static_cast<unsigned char>(*parsedEnd)) && *parsedEnd != ','))
      {
        itkGenericExceptionMacro(<< "DivAttention: input \"" << what << "\": \"" << text
                                 << "\" is not six numbers x0,y0,z0,x1,y1,z1 (two opposite corners)");
      }
      if (!std::isfinite(value) || errno == ERANGE)
      {
        itkGenericExceptionMacro(<< "DivAttention: input \"" << what << "\": \"" << text
                                 << "\" has a coordinate that is not a finite number");
      }
      if (count == values.size())
      {
        ++count;
        break;
      }
      values[count++] = value;
      cursor = parsedEnd;
    }
    if (count != values.size() || text.find('\0') != std::string::npos)
    {
      itkGenericExceptionMacro(<< "DivAttention: input \"" << what << "\": \"" << text
                               << "\" is not six numbers x0,y0,z0,x1,y1,z1 (two opposite corners)");
    }
    return { ClickPoints::ToPhysicalPoint({ { values[0], values[1], values[2] } }, space, image),
             ClickPoints::ToPhysicalPoint({ { values[3], values[4], values[5] } }, space, image) };
  }

  /** Throws itk::ExceptionObject naming `what` unless the box is valid on `image` (see the class description). */
  static void
  Check(const ImageBase<3> * image, const PointType & corner1, const PointType & corner2, const std::string & what)
  {
    for (const PointType * corner : { &corner1, &corner2 })
    {
      for (unsigned int d = 0; d < 3; ++d)
      {
        if (!std::isfinite((*corner)[d]))
        {
          itkGenericExceptionMacro(<< "DivAttention: input \"" << what << "\": corner " << *corner
                                   << " is not a finite point");
        }
      }
    }
    const auto & region = image->GetLargestPossibleRegion();
    const char * axes[3] = { "i", "j", "k" };
    for (const PointType * corner : { &corner1, &corner2 })
    {
      const auto index = image->TransformPhysicalPointToContinuousIndex<double>(*corner);
      for (unsigned int d = 0; d < 3; ++d)
      {
        const double first = static_cast<double>(region.GetIndex(d)) - 0.5;
        const double last =
          static_cast<double>(region.GetIndex(d) + static_cast<IndexValueType>(region.GetSize(d))) - 0.5;
        if (!(index[d] >= first && index[d] <= last))
        {
          itkGenericExceptionMacro(<< "DivAttention: input \"" << what << "\": corner " << *corner
                                   << " lies outside the image (continuous index " << index << "; along " << axes[d]
                                   << " the image spans " << first << " to " << last << ")");
        }
      }
    }
    const auto first = image->TransformPhysicalPointToContinuousIndex<double>(corner1);
    const auto second = image->TransformPhysicalPointToContinuousIndex<double>(corner2);
    for (unsigned int d = 0; d < 3; ++d)
    {
      const double side = std::abs(second[d] - first[d]);
      if (!(side >= MinimumSideInVoxels))
      {
        itkGenericExceptionMacro(<< "DivAttention: input \"" << what << "\": the box from " << corner1 << " to "
                                 << corner2 << " is " << side << " voxel(s) long along image axis " << axes[d]
                                 << " (a degenerate box): its corners must be at least " << MinimumSideInVoxels
                                 << " voxel apart along every image axis");
      }
    }
  }

  /** The voxels of the box on `image` (see the class description); empty if the box misses the image. */
  static RegionType
  IndexRegion(const ImageBase<3> * image, const PointType & corner1, const PointType & corner2)
  {
    const auto   first = image->TransformPhysicalPointToContinuousIndex<double>(corner1);
    const auto   second = image->TransformPhysicalPointToContinuousIndex<double>(corner2);
    const auto & largest = image->GetLargestPossibleRegion();
    RegionType   region;
    for (unsigned int d = 0; d < 3; ++d)
    {
      const double lowest = static_cast<double>(largest.GetIndex(d));
      const double highest = lowest + static_cast<double>(largest.GetSize(d)) - 1.0;
      const double low = std::max(lowest, std::floor(std::min(first[d], second[d]) + 0.5));
      const double high = std::min(highest, std::floor(std::max(first[d], second[d]) + 0.5));
      region.SetIndex(d, static_cast<IndexValueType>(low));
      region.SetSize(d, high >= low ? static_cast<SizeValueType>(high - low + 1.0) : 0);
    }
    return region;
  }

  /** Side lengths (mm) of the box along the image's axes. */
  static SidesType
  Sides(const ImageBase<3> * image, const PointType & corner1, const PointType & corner2)
  {
    const auto first = image->TransformPhysicalPointToContinuousIndex<double>(corner1);
    const auto second = image->TransformPhysicalPointToContinuousIndex<double>(corner2);
    SidesType  sides;
    for (unsigned int d = 0; d < 3; ++d)
    {
      sides[d] = std::abs(second[d] - first[d]) * image->GetSpacing()[d];
    }
    return sides;
  }

  /** The midpoint of the corners. */
  static PointType
  Centre(const PointType & corner1, const PointType & corner2)
  {
    PointType centre;
    centre.SetToMidPoint(corner1, corner2);
    return centre;
  }
};
} // namespace itk

#endif
