#ifndef itkClickPoints_h
#define itkClickPoints_h

#include "itkImageBase.h"
#include "itkPoint.h"

#include <array>
#include <string>
#include <vector>

namespace itk
{
/** \class ClickPoints
 * \brief Turns the user's clicks, as typed on a command line or stored in a file, into physical points (LPS).
 *
 * A click is three numbers "x,y,z" (commas and/or spaces between them). Its space says what they are:
 * - `lps` (default): a physical point in ITK's patient coordinates, millimetres;
 * - `ras`: a physical point as 3D Slicer and ITK-SNAP show it; x and y are negated to give LPS;
 * - `index`: a (possibly fractional) voxel index of the image the click is for, turned into a physical point with
 *   that image's origin, spacing and direction.
 * Every error is an itk::ExceptionObject that quotes the offending text.
 * \ingroup DivAttention
 */
class ClickPoints
{
public:
  using PointType = Point<double, 3>;

  enum class Space
  {
    LPS,
    RAS,
    Index
  };

  /** "lps", "ras" or "index" (case-insensitive). */
  static Space
  ParseSpace(const std::string & text);

  /** Three finite numbers separated by commas and/or spaces, nothing else. */
  static std::array<double, 3>
  ParseTriple(const std::string & text);

  /** The physical point (LPS) that `coordinates` in `space` stand for; `image` is needed for Space::Index. */
  static PointType
  ToPhysicalPoint(const std::array<double, 3> & coordinates, Space space, const ImageBase<3> * image);

  /** Parses and converts several click texts. */
  static std::vector<PointType>
  Parse(const std::vector<std::string> & texts, Space space, const ImageBase<3> * image);

  /** Whether `point` lies inside the image's largest possible region (voxel centres +/- half a voxel). */
  static bool
  IsInside(const PointType & point, const ImageBase<3> * image);
};
} // namespace itk

#endif
