#ifndef itkSegmentationInputCheck_h
#define itkSegmentationInputCheck_h

#include "itkImage.h"
#include "itkMacro.h"
#include "itkPoint.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace itk
{
/** \class SegmentationInputCheck
 * \brief What a CT and its clicks must satisfy before a click-guided segmentation runs, and whether its result holds
 * the click: bad input is an itk::ExceptionObject naming the input and what is wrong, never a mask.
 *
 * - CheckImage(): at least MinimumVoxelsPerAxis voxels along each axis (a single slice is not a volume), voxels no
 *   coarser than MaximumSpacing mm along any axis (8^3 voxels of 50 mm hold no object the models can delineate), and
 *   not one value in every voxel (a volume all at 3000 HU has no object in it).
 *   Non-finite voxels are refused where the networks read them (CoarseSegmentationFilter) and, for files, by
 *   VolumeFileCheck and the applications.
 * - IsOnAirOutsideTheBody(): "outside the body" is defined within the click's axial slice (the slice across the
 *   image axis closest to the patient's S-I axis): the click's voxel is below AirThreshold (-500 HU) and is connected,
 *   through voxels below that threshold (4-connected), to the slice's border. Lungs, airways, bowel gas and
 *   low-density lesions inside them are enclosed by the body wall in every axial slice (the trachea leaves a chest CT
 *   through its top slice, which is why the connection is not looked for in 3D), so clicks there are valid targets;
 *   only air around the patient reaches the border. Costs one flood fill of at most one slice (0.3 ms for 512^2).
 * - ContainsClick(): whether a mask holds the voxel of a click; ContainsClickWithin(): whether it holds a voxel whose
 *   centre lies within a distance (mm) of the click; NearestVoxelWithin(): that voxel (the one a session seeds the
 *   clicked component from, so that it keeps what the composite filter accepted).
 * \ingroup DivAttention
 */
class SegmentationInputCheck
{
public:
  using PointType = Point<double, 3>;

  /** Air below this (HU). */
  static constexpr double AirThreshold = -500.0;
  /** Fewest voxels along an axis. */
  static constexpr unsigned int MinimumVoxelsPerAxis = 4;
  /** Coarsest voxel side (mm): clinical CT is reconstructed at 5 mm or finer, and old thick-slice scans at 10 mm. */
  static constexpr double MaximumSpacing = 10.0;

  /** Throws itk::ExceptionObject naming `what` when the image has fewer than MinimumVoxelsPerAxis voxels along an
   * axis, voxels coarser than MaximumSpacing, or one value in every voxel (the buffered region is read). `modelSpacing`
   * (mm, the coarse model's voxel side; 0 if unknown) is only quoted in the message. */
  template<typename TImage>
  static void
  CheckImage(const TImage * image, const std::string & what, double modelSpacing = 0.0)
  {
    static_assert(TImage::ImageDimension == 3, "3D images only");
    const auto &       size = image->GetLargestPossibleRegion().GetSize();
    const auto &       spacing = image->GetSpacing();
    const char *       axes[3] = { "x (i)", "y (j)", "z (k)" };
    std::ostringstream grid;
    grid << size[0] << "x" << size[1] << "x" << size[2] << " voxels of " << spacing[0] << " x " << spacing[1] << " x "
         << spacing[2] << " mm";
    for (unsigned int a = 0; a < 3; ++a)
    {
      if (size[a] < MinimumVoxelsPerAxis)
      {
        itkGenericExceptionMacro(<< "DivAttention: input \"" << what << "\": " << grid.str() << ": only " << size[a]
                                 << (size[a] == 1 ? " voxel (a single slice)" : " voxels") << " along " << axes[a]
                                 << "; a 3D volume of at least " << MinimumVoxelsPerAxis
                                 << " voxels along each axis is needed");
      }
    }
    for (unsigned int a = 0; a < 3; ++a)
    {
      if (!(spacing[a] <= MaximumSpacing))
      {
        std::ostringstream model;
        if (modelSpacing > 0.0)
        {
          model << "; the coarse model works on " << modelSpacing << " mm voxels";
        }
        itkGenericExceptionMacro(<< "DivAttention: input \"" << what << "\": " << grid.str() << ": voxels of "
                                 << spacing[a] << " mm along " << axes[a] << " are too coarse to segment (at most "
                                 << MaximumSpacing << " mm" << model.str() << ")");
      }
    }
    // One value everywhere (a volume of 3000 HU, of air, of zeros): no object to segment. Stops at the first voxel
    // that differs (within the first rows of a real CT, after its padding).
    const auto * data = image->GetBufferPointer();
    const size_t count = image->GetBufferedRegion().GetNumberOfPixels();
    size_t       differs = 1;
    while (differs < count && data[differs] == data[0])
    {
      ++differs;
    }
    if (count > 0 && differs == count)
    {
      itkGenericExceptionMacro(<< "DivAttention: input \"" << what << "\": " << grid.str() << ": every voxel holds the "
                               << "same value (" << static_cast<double>(data[0]) << "): there is no object to segment");
    }
  }

  /** Throws itk::ExceptionObject naming the click (its number from 1 and its point) when it lies on air outside the
   * body (IsOnAirOutsideTheBody()). */
  template<typename TImage>
  static void
  CheckClicks(const TImage * image, const std::vector<PointType> & clicks)
  {
    for (size_t k = 0; k < clicks.size(); ++k)
    {
      if (IsOnAirOutsideTheBody(image, clicks[k]))
      {
        itkGenericExceptionMacro(<< "DivAttention: input \"Clicks\": click " << k + 1 << " " << clicks[k]
                                 << " (LPS, mm) lies on air outside the body (below " << AirThreshold
                                 << " HU and open to the border of its axial slice): click inside the organ or lesion");
      }
    }
  }

  /** Whether `point` lies on air outside the body (see the class description); false outside the image. */
  template<typename TImage>
  static bool
  IsOnAirOutsideTheBody(const TImage * image, const PointType & point)
  {
    using IndexType = typename TImage::IndexType;
    IndexType index;
    if (!image->TransformPhysicalPointToIndex(point, index) || !(image->GetPixel(index) < AirThreshold))
    {
      return false;
    }
    // The axial slice: across the index axis whose direction is closest to S-I (LPS z).
    const auto & direction = image->GetDirection();
    unsigned int across = 0;
    for (unsigned int a = 1; a < 3; ++a)
    {
      across = std::abs(direction[2][a]) > std::abs(direction[2][across]) ? a : across;
    }
    const unsigned int   u = across == 0 ? 1 : 0, v = across == 2 ? 1 : 2;
    const auto &         region = image->GetLargestPossibleRegion();
    const auto           width = static_cast<int64_t>(region.GetSize()[u]);
    const auto           height = static_cast<int64_t>(region.GetSize()[v]);
    std::vector<uint8_t> seen(static_cast<size_t>(width * height), 0);
    std::vector<int64_t> stack{ (index[v] - region.GetIndex()[v]) * width + (index[u] - region.GetIndex()[u]) };
    seen[static_cast<size_t>(stack.back())] = 1;
    while (!stack.empty())
    {
      const int64_t at = stack.back();
      stack.pop_back();
      const int64_t i = at % width, j = at / width;
      if (i == 0 || j == 0 || i == width - 1 || j == height - 1)
      {
        return true;
      }
      for (const auto & [di, dj] : { std::pair<int64_t, int64_t>{ 1, 0 }, { -1, 0 }, { 0, 1 }, { 0, -1 } })
      {
        const int64_t next = (j + dj) * width + (i + di);
        if (seen[static_cast<size_t>(next)] != 0)
        {
          continue;
        }
        seen[static_cast<size_t>(next)] = 1;
        IndexType neighbour = index;
        neighbour[u] = region.GetIndex()[u] + i + di;
        neighbour[v] = region.GetIndex()[v] + j + dj;
        if (image->GetPixel(neighbour) < AirThreshold)
        {
          stack.push_back(next);
        }
      }
    }
    return false;
  }

  /** Whether the mask is non-zero at a voxel whose centre lies within `radius` mm (physical distance, the image's
   * spacing and direction) of `point`; a radius below half a voxel asks for the voxel nearest to `point` as
   * ContainsClick(). Only voxels of the buffered region are read. */
  template<typename TMask>
  static bool
  ContainsClickWithin(const TMask * mask, const PointType & point, double radius)
  {
    typename TMask::IndexType nearest;
    return NearestVoxelWithin(mask, point, radius, nearest);
  }

  /** The mask's voxel that ContainsClickWithin() accepts for `point`: the voxel nearest to `point` if it is non-zero,
   * else the non-zero voxel whose centre is nearest to `point` within `radius` mm (ties: the first in index order).
   * Returns false, leaving `nearest` unchanged, when there is none. */
  template<typename TMask>
  static bool
  NearestVoxelWithin(const TMask * mask, const PointType & point, double radius, typename TMask::IndexType & nearest)
  {
    typename TMask::IndexType index;
    if (mask->TransformPhysicalPointToIndex(point, index) && mask->GetBufferedRegion().IsInside(index) &&
        mask->GetPixel(index) != 0)
    {
      nearest = index;
      return true;
    }
    if (!(radius > 0.0))
    {
      return false;
    }
    const auto &              region = mask->GetBufferedRegion();
    const auto                centre = mask->template TransformPhysicalPointToContinuousIndex<double>(point);
    typename TMask::IndexType low, high;
    for (unsigned int a = 0; a < 3; ++a)
    {
      // Along every index axis the ball spans at most radius / spacing voxels, whatever the direction.
      const double reach = radius / mask->GetSpacing()[a];
      low[a] = std::max<IndexValueType>(static_cast<IndexValueType>(std::floor(centre[a] - reach)), region.GetIndex(a));
      high[a] = std::min<IndexValueType>(static_cast<IndexValueType>(std::ceil(centre[a] + reach)),
                                         region.GetIndex(a) + static_cast<IndexValueType>(region.GetSize(a)) - 1);
      if (low[a] > high[a])
      {
        return false;
      }
    }
    double best = radius;
    bool   found = false;
    for (index[2] = low[2]; index[2] <= high[2]; ++index[2])
    {
      for (index[1] = low[1]; index[1] <= high[1]; ++index[1])
      {
        for (index[0] = low[0]; index[0] <= high[0]; ++index[0])
        {
          if (mask->GetPixel(index) == 0)
          {
            continue;
          }
          PointType voxel;
          mask->TransformIndexToPhysicalPoint(index, voxel);
          const double distance = voxel.EuclideanDistanceTo(point);
          if (distance < best || (!found && distance <= best))
          {
            best = distance;
            nearest = index;
            found = true;
          }
        }
      }
    }
    return found;
  }

  /** Whether the mask is non-zero at the voxel nearest to `point` (false outside the mask's grid). */
  template<typename TMask>
  static bool
  ContainsClick(const TMask * mask, const PointType & point)
  {
    typename TMask::IndexType index;
    return mask->TransformPhysicalPointToIndex(point, index) && mask->GetBufferedRegion().IsInside(index) &&
           mask->GetPixel(index) != 0;
  }
};
} // namespace itk

#endif
