#ifndef itkMaskCorrectionSupport_h
#define itkMaskCorrectionSupport_h

#include "itkContinuousIndex.h"
#include "itkImage.h"
#include "itkMacro.h"
#include "itkMath.h"
#include "itkMonotonePriorityQueue.h"
#include "itkSquaredDepthMap.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <queue>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace itk
{
/** \class MaskCorrectionSupport
 * \brief The geometry of correction clicks on a label image: the component a click holds, the part of a mask a
 * negative click removes, and whether a mask lies on an image's grid.
 *
 * Shared by ClickGuidedSegmentationSession and ClickGuidedSegmentationFilter (Documentation/Pipeline.md,
 * "Corrections"). Voxels are named by their offset in the mask's buffer (the buffered region is the whole image);
 * object voxels are the non-zero ones; neighbours are the 26 voxels around a voxel (faces, edges and corners).
 *
 * - ConnectedVoxels(): the object voxels connected to any seed that is an object voxel (a flood fill that visits
 *   only those voxels, plus one bit per voxel of the image for the visit marks).
 * - GeodesicCarve(): the voxels a negative click removes. Within the connected part of the mask that holds the
 *   negative clicks, each voxel belongs to its geodesically nearest click (the shortest path through object voxels,
 *   each step between neighbouring voxel centres counted at its physical length: Dijkstra over the 26-neighbour
 *   graph, which overestimates a straight distance by at most 8%); the voxels that belong to a negative click are
 *   the candidates. Where the part narrows between the negative click and the object and widens again (shells of
 *   geodesic distance from the negative click: see the code and Documentation/Pipeline.md, "Corrections"), only the
 *   candidates nearer than that narrowing are returned, so a false positive joined to the object goes without the
 *   object's side of the join. A part that no positive click lies in is returned whole. Voxels equally far from
 *   both keep the positive side (the positive clicks are settled first).
 * - LocalGeodesicCarve(): GeodesicCarve() for one negative click, bounded to a ball that scales with the click's
 *   depth in the mask (DepthInMask()) and to voxels no deeper than the click: what sessions and the filter remove.
 * - LikeIntensityRadialCut(): what a negative click also removes of a like-intensity answer within the nothing-found
 *   radius (the networks found nothing): its voxels at least as far from its click as the negative click.
 * - PositiveCorrection(): what a positive click outside a non-empty mask keeps of the pipeline's component at it: the
 *   part connected to the click through like-intensity voxels, within twice the click's distance to the mask
 *   (DistanceToMask()); on an empty mask, all of it.
 * - PositiveCorrectionFromProbability(): the same rule on stage 1's probability of one window around the click (what
 *   sessions and the filter add for a positive click outside a non-empty mask), interpolating only the voxels it walks.
 * - LikeIntensityRegion(): what a positive click adds where the pipeline adds nothing: the connected voxels of like
 *   intensity around it, within a radius; CorrectionLikeIntensityRadius(): that radius for a correction (a click
 *   outside a non-empty mask), which grows with the click's distance to the mask; PositiveFallbackRegion(): the two
 *   together, as sessions and the filter use them.
 * - PositiveAnchor(): the voxel that stands for a positive click in the carve: its own if it is object, else the voxel
 *   it added nearest to it (a component seeded within the click tolerance can leave the click's voxel outside).
 * - CheckSameGrid(): an itk::ExceptionObject naming the input and what differs (size, origin, spacing, direction)
 *   when a mask is not on an image's grid.
 * \ingroup DivAttention
 */
class MaskCorrectionSupport
{
public:
  using OffsetListType = std::vector<SizeValueType>;
  using IndexType = Index<3>;

  /** The like-intensity fallback of a positive click (LikeIntensityRegion()): mean +- max(2.5 SD, 20) of the click's
   * 3 x 3 x 3 neighbourhood, within 5 mm of the click unless a session sets another radius. */
  static constexpr double LikeIntensityK = 2.5;
  static constexpr double LikeIntensityMinimumHalfWidth = 20.0;
  static constexpr double LikeIntensityDefaultRadius = 5.0;
  /** The like-intensity radius (mm) of a first click on which the networks find nothing (an empty mask): the region
   * then stands for the whole answer, not for a missed piece beside a mask, so it reaches as far as a typical organ's
   * half-length (a kidney, the spleen) or a sarcoma's radius. Documentation/Pipeline.md, "When the networks find
   * nothing". */
  static constexpr double LikeIntensityNothingFoundRadius = 30.0;
  /** CorrectionLikeIntensityRadius(): a correction's like-intensity radius is at most this many times the radius (15 mm
   * by default), and grows only where the click's like-intensity band is at most this wide on each side (HU). */
  static constexpr double LikeIntensityCorrectionReach = 3.0;
  static constexpr double LikeIntensityCorrectionMaximumHalfWidth = 150.0;
  /** WholeObjectLikeIntensityRegion(): a whole-object region whose tissue is homogeneous (band half-width at most
   * LargeObjectMaximumHalfWidth HU) and which fills at least LargeObjectFill of its ball's volume belongs to an object
   * larger than the ball, and is grown again within LargeObjectRadiusFactor x the radius. */
  static constexpr double LargeObjectMaximumHalfWidth = 35.0;
  static constexpr double LargeObjectFill = 0.6;
  static constexpr double LargeObjectRadiusFactor = 2.0;

  /** The object voxels 26-connected to the seeds (seeds outside the mask, or on its background, seed nothing), in the
   * order they were reached. */
  template<typename TMask>
  static OffsetListType
  ConnectedVoxels(const TMask * mask, const std::vector<IndexType> & seeds)
  {
    const Grid        grid(mask);
    const auto *      data = mask->GetBufferPointer();
    std::vector<bool> seen(grid.count, false);
    OffsetListType    reached;
    for (const auto & seed : seeds)
    {
      if (!grid.Contains(seed))
      {
        continue;
      }
      const SizeValueType offset = grid.Offset(seed);
      if (data[offset] != 0 && !seen[offset])
      {
        seen[offset] = true;
        reached.push_back(offset);
      }
    }
    for (size_t next = 0; next < reached.size(); ++next)
    {
      grid.ForEachNeighbour(reached[next],
                            [&](SizeValueType neighbour, int)
                            {
                              if (!seen[neighbour] && data[neighbour] != 0)
                              {
                                seen[neighbour] = true;
                                reached.push_back(neighbour);
                              }
                            });
    }
    return reached;
  }

  /** The voxel that stands for a positive click at `click` (voxel `index`) in later carves, once the voxels `added`
   * (offsets) are object: `index` when it is object or added, else the added voxel whose centre is nearest to `click`
   * (the first of equals). False when there is neither. */
  template<typename TMask>
  static bool
  PositiveAnchor(const TMask *                     mask,
                 const typename TMask::PointType & click,
                 const IndexType &                 index,
                 const OffsetListType &            added,
                 IndexType &                       anchor)
  {
    const Grid grid(mask);
    if (grid.Contains(index))
    {
      const SizeValueType offset = grid.Offset(index);
      if (mask->GetBufferPointer()[offset] != 0 || std::find(added.begin(), added.end(), offset) != added.end())
      {
        anchor = index;
        return true;
      }
    }
    double best = std::numeric_limits<double>::infinity();
    for (const auto offset : added)
    {
      const auto                voxel = mask->ComputeIndex(static_cast<OffsetValueType>(offset));
      typename TMask::PointType point;
      mask->TransformIndexToPhysicalPoint(voxel, point);
      const double distance = point.SquaredEuclideanDistanceTo(click);
      if (distance < best)
      {
        best = distance;
        anchor = voxel;
      }
    }
    return !added.empty();
  }

  /** The voxels of the mask that the negative clicks remove (see the class description); empty when no negative click
   * lies on an object voxel. Positive clicks outside the mask or in another part of it do not count. `partSize`, when
   * given, receives the number of voxels of the part that holds the negative clicks. */
  template<typename TMask>
  static OffsetListType
  GeodesicCarve(const TMask *                  mask,
                const std::vector<IndexType> & negatives,
                const std::vector<IndexType> & positives,
                SizeValueType *                partSize = nullptr)
  {
    const OffsetListType part = ConnectedVoxels(mask, negatives);
    if (partSize != nullptr)
    {
      *partSize = part.size();
    }
    if (part.empty())
    {
      return part;
    }
    const Grid grid(mask);
    // The part's bounding box holds the distances: no array the size of the image.
    IndexType low, high;
    low.Fill(std::numeric_limits<IndexValueType>::max());
    high.Fill(std::numeric_limits<IndexValueType>::min());
    grid.Enclose(part, low, high);
    std::array<SizeValueType, 3> box;
    for (unsigned int a = 0; a < 3; ++a)
    {
      box[a] = static_cast<SizeValueType>(high[a] - low[a] + 1);
    }
    auto local = [&](SizeValueType offset)
    {
      const auto index = grid.IndexOf(offset);
      return static_cast<SizeValueType>(index[0] - low[0]) +
             box[0] *
               (static_cast<SizeValueType>(index[1] - low[1]) + box[1] * static_cast<SizeValueType>(index[2] - low[2]));
    };
    constexpr float      Infinity = std::numeric_limits<float>::infinity();
    constexpr uint8_t    Outside = 0, Unsettled = 1, Settled = 2;
    constexpr uint8_t    Positive = 1, Negative = 2;
    const SizeValueType  boxCount = box[0] * box[1] * box[2];
    std::vector<float>   distance(boxCount, Infinity);
    std::vector<uint8_t> state(boxCount, Outside);
    std::vector<uint8_t> owner(boxCount, 0);
    using Entry = std::pair<float, SizeValueType>; // distance, box offset
    // Dijkstra's queue pops (distance, box offset) in increasing order: a radix heap (MonotonePriorityQueue: the same
    // order as a binary heap, so the same result, in about half the time) when the box's offsets fit in 32 bits.
    struct Queue
    {
      bool                                                                radix;
      MonotonePriorityQueue                                               monotone;
      std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
      void
      Push(float distance, SizeValueType at)
      {
        if (radix)
        {
          monotone.Push(MonotonePriorityQueue::Pack(distance, at));
        }
        else
        {
          heap.emplace(distance, at);
        }
      }
      bool
      Empty() const
      {
        return radix ? monotone.Empty() : heap.empty();
      }
      Entry
      Pop()
      {
        if (radix)
        {
          const uint64_t key = monotone.Pop();
          return { MonotonePriorityQueue::Distance(key),
                   static_cast<SizeValueType>(MonotonePriorityQueue::Index(key)) };
        }
        const Entry entry = heap.top();
        heap.pop();
        return entry;
      }
    };
    const auto lengths = grid.StepLengths();
    // The search runs on the box's own grid: neighbours by offset arithmetic, and a neighbour outside the part's
    // bounding box (not in the part, with no slot in the box's arrays) is never visited.
    Grid boxGrid = grid;
    boxGrid.start.Fill(0);
    for (unsigned int a = 0; a < 3; ++a)
    {
      boxGrid.size[a] = box[a];
    }
    boxGrid.count = box[0] * box[1] * box[2];
    // Dijkstra from the seeds through the part; each voxel's owner is the side of its nearest seed.
    auto propagate = [&](const std::vector<IndexType> & positiveSeeds, const std::vector<IndexType> & negativeSeeds)
    {
      std::fill(distance.begin(), distance.end(), Infinity);
      std::fill(owner.begin(), owner.end(), 0);
      for (const auto offset : part)
      {
        state[local(offset)] = Unsettled;
      }
      Queue queue{ boxCount <= (SizeValueType{ 1 } << 32), {}, {} };
      auto  seed = [&](const std::vector<IndexType> & clicks, uint8_t side)
      {
        for (const auto & click : clicks)
        {
          bool inBox = grid.Contains(click);
          for (unsigned int a = 0; a < 3 && inBox; ++a)
          {
            inBox = click[a] >= low[a] && click[a] <= high[a];
          }
          if (!inBox)
          {
            continue;
          }
          const SizeValueType offset = grid.Offset(click);
          const SizeValueType at = local(offset);
          if (state[at] == Outside || owner[at] != 0)
          {
            continue;
          }
          distance[at] = 0.0f;
          owner[at] = side;
          queue.Push(0.0f, at);
        }
      };
      // Positive clicks first: a tie keeps the object.
      seed(positiveSeeds, Positive);
      seed(negativeSeeds, Negative);
      while (!queue.Empty())
      {
        const auto [reached, here] = queue.Pop();
        if (state[here] == Settled || reached > distance[here])
        {
          continue;
        }
        state[here] = Settled;
        boxGrid.ForEachNeighbour(here,
                                 [&, reached = reached, here = here](SizeValueType neighbour, int step)
                                 {
                                   const SizeValueType there = neighbour;
                                   if (state[there] != Unsettled)
                                   {
                                     return;
                                   }
                                   const float candidate = reached + lengths[static_cast<size_t>(step)];
                                   if (candidate < distance[there])
                                   {
                                     distance[there] = candidate;
                                     owner[there] = owner[here];
                                     queue.Push(candidate, neighbour);
                                   }
                                 });
      }
    };
    // The geodesic Voronoi split between the negative and the positive clicks.
    propagate(positives, negatives);
    OffsetListType removed;
    for (const auto offset : part)
    {
      if (owner[local(offset)] != Positive)
      {
        removed.push_back(offset);
      }
    }
    if (removed.size() == part.size())
    {
      return removed; // no positive click in the part: all of it
    }
    // The neck: the split moves to the narrowest place between the negative click and the object. The part's voxels
    // are counted in shells of the geodesic distance from the negative clicks alone (one largest voxel side wide). The
    // first shell within the Voronoi region's reach that holds at most three quarters of the widest shell before it,
    // no more than the shell after it, and under three quarters of a shell after it (a narrowing that widens again:
    // the join of a false positive and the object) is where the cut goes: the voxels nearer than that shell go.
    // Without such a narrowing (a rod, a convex organ), the Voronoi split stands.
    propagate({}, negatives);
    float reach = 0.0f, farthest = 0.0f;
    for (const auto offset : removed)
    {
      reach = std::max(reach, distance[local(offset)]);
    }
    for (const auto offset : part)
    {
      farthest = std::max(farthest, distance[local(offset)]);
    }
    const double        width = *std::max_element(grid.spacing.begin(), grid.spacing.end());
    const auto          shells = static_cast<size_t>(farthest / width) + 1;
    std::vector<size_t> count(shells, 0);
    for (const auto offset : part)
    {
      ++count[std::min(shells - 1, static_cast<size_t>(distance[local(offset)] / width))];
    }
    std::vector<size_t> widestAfter(shells + 1, 0);
    for (size_t k = shells; k-- > 0;)
    {
      widestAfter[k] = std::max(widestAfter[k + 1], count[k]);
    }
    size_t widest = 0;
    for (size_t k = 0; k + 1 < shells && static_cast<double>(k) * width < reach; ++k)
    {
      widest = std::max(widest, count[k]);
      if (k > 0 && 4 * count[k] <= 3 * widest && count[k] <= count[k + 1] && 4 * count[k] < 3 * widestAfter[k + 1])
      {
        const auto cut = static_cast<float>(static_cast<double>(k) * width);
        removed.erase(std::remove_if(removed.begin(), removed.end(),
                                     [&](SizeValueType offset) { return distance[local(offset)] >= cut; }),
                      removed.end());
        break;
      }
    }
    return removed;
  }

  /** How deep `index` lies in the mask (physical mm): the distance from its centre to the nearest voxel centre that
   * is background or outside the image; 0 when `index` is background or outside. */
  template<typename TMask>
  static double
  DepthInMask(const TMask * mask, const IndexType & index, double limit = std::numeric_limits<double>::infinity())
  {
    const Grid   grid(mask);
    const auto * data = mask->GetBufferPointer();
    if (!grid.Contains(index) || data[grid.Offset(index)] == 0)
    {
      return 0.0;
    }
    return NearestVoxelDistance(grid, index, limit,
                                [&](const IndexType & at) { return !grid.Contains(at) || data[grid.Offset(at)] == 0; });
  }

  /** `into` with the offsets of `more` it does not hold yet appended (each offset once). */
  static void
  MergeOffsets(OffsetListType & into, const OffsetListType & more)
  {
    if (more.empty())
    {
      return;
    }
    OffsetListType sorted = into;
    std::sort(sorted.begin(), sorted.end());
    for (const auto offset : more)
    {
      if (!std::binary_search(sorted.begin(), sorted.end(), offset))
      {
        into.push_back(offset);
      }
    }
  }

  /** What a negative click also removes of a like-intensity answer within the nothing-found radius (`region`: the
   * offsets LikeIntensityRegion() gave around `seed` where the networks found nothing, at a first click or at a
   * correction far from the mask: PositiveFallbackRegion()): the voxels of `region` still object in `mask` that lie at
   * least as far from `seed` as `negative` does (physical distance between voxel centres). That region was bounded
   * only by a radius; a negative click inside it says the object stops nearer than the radius, so everything of it
   * that far out goes (a 30 mm region that spilled from a rib into the muscle around it, or from a vessel into tissue
   * of its HU). Nothing when `negative` is `seed`, or when a positive click's voxel (`positives`) lies in what would
   * go: the user said that voxel is object. */
  template<typename TMask>
  static OffsetListType
  LikeIntensityRadialCut(const TMask *                  mask,
                         const OffsetListType &         region,
                         const IndexType &              seed,
                         const IndexType &              negative,
                         const std::vector<IndexType> & positives)
  {
    OffsetListType removed;
    const Grid     grid(mask);
    const double   reach = grid.SquaredDistance(seed, negative);
    if (!(reach > 0.0))
    {
      return removed;
    }
    const auto * data = mask->GetBufferPointer();
    for (const auto offset : region)
    {
      if (data[offset] != 0 && grid.SquaredDistance(grid.IndexOf(offset), seed) >= reach)
      {
        removed.push_back(offset);
      }
    }
    for (const auto & positive : positives)
    {
      if (grid.Contains(positive) && data[grid.Offset(positive)] != 0 &&
          grid.SquaredDistance(positive, seed) >= reach &&
          std::find(region.begin(), region.end(), grid.Offset(positive)) != region.end())
      {
        removed.clear();
        break;
      }
    }
    return removed;
  }

  /** GeodesicCarve() for one negative click, bounded locally: of its voxels only those within
   * max(2 x DepthInMask(negative), one voxel diagonal) mm of the click (physical distance between voxel centres) and
   * no deeper in the mask than the click (plus half the smallest spacing). A click in a thin false-positive rim
   * removes a thin piece of it and not the object behind it, a click deep in a leaked blob the blob. A part with no
   * positive click is still returned whole. */
  template<typename TMask>
  static OffsetListType
  LocalGeodesicCarve(const TMask * mask, const IndexType & negative, const std::vector<IndexType> & positives)
  {
    SizeValueType  partSize = 0;
    OffsetListType removed = GeodesicCarve(mask, { negative }, positives, &partSize);
    if (removed.empty() || removed.size() == partSize)
    {
      return removed;
    }
    const Grid   grid(mask);
    const double diagonal = std::sqrt(grid.spacing[0] * grid.spacing[0] + grid.spacing[1] * grid.spacing[1] +
                                      grid.spacing[2] * grid.spacing[2]);
    const double depth = DepthInMask(mask, negative);
    const double radius = std::max(2.0 * depth, diagonal);
    // No deeper than the click (half the smallest spacing of slack): the object behind a thin rim stays.
    const double deepest = depth + 0.5 * *std::min_element(grid.spacing.begin(), grid.spacing.end());
    // The candidates within the ball, then each one's depth from one distance map of their bounding box widened by
    // that depth (where their nearest background lies when it is no deeper; a search per voxel costs seconds for a
    // click deep in an organ); DepthInMask() decides where the map is within rounding of the bound.
    removed.erase(std::remove_if(removed.begin(), removed.end(),
                                 [&](SizeValueType offset)
                                 { return grid.SquaredDistance(grid.IndexOf(offset), negative) > radius * radius; }),
                  removed.end());
    if (removed.empty())
    {
      return removed;
    }
    IndexType low = grid.IndexOf(removed.front()), high = low;
    for (const auto offset : removed)
    {
      const auto index = grid.IndexOf(offset);
      for (unsigned int a = 0; a < 3; ++a)
      {
        low[a] = std::min(low[a], index[a]);
        high[a] = std::max(high[a], index[a]);
      }
    }
    ImageRegion<3> reach;
    for (unsigned int a = 0; a < 3; ++a)
    {
      const auto margin = static_cast<IndexValueType>(std::ceil(deepest / grid.spacing[a])) + 1;
      reach.SetIndex(a, low[a] - margin);
      reach.SetSize(a, static_cast<SizeValueType>(high[a] - low[a] + 2 * margin + 1));
    }
    const SquaredDepthMap depths(mask, reach);
    const double          bound = deepest * deepest;
    removed.erase(std::remove_if(removed.begin(), removed.end(),
                                 [&](SizeValueType offset)
                                 {
                                   const auto   index = grid.IndexOf(offset);
                                   const double squared = depths.At(index);
                                   if (squared > bound * (1.0 + 1e-5))
                                   {
                                     return true;
                                   }
                                   if (squared < bound * (1.0 - 1e-5))
                                   {
                                     return false;
                                   }
                                   return DepthInMask(mask, index, deepest) > deepest;
                                 }),
                  removed.end());
    return removed;
  }

  /** How much of `mask`'s object (non-zero voxels) is of the clicked tissue: the share of its voxels whose intensity
   * in `image` lies in the click's like-intensity band (LikeIntensityRegion()'s: mean +- max(k x SD,
   * minimumHalfWidth) of the click's 3 x 3 x 3 neighbourhood). 1 for an empty mask or a click outside the grid. The
   * two images share one buffered grid. */
  template<typename TImage, typename TMask>
  static double
  ClickTissueFraction(const TImage *    image,
                      const TMask *     mask,
                      const IndexType & click,
                      double            k = LikeIntensityK,
                      double            minimumHalfWidth = LikeIntensityMinimumHalfWidth)
  {
    const Grid grid(mask);
    if (!grid.Contains(click))
    {
      return 1.0;
    }
    const auto   band = LikeIntensityBand(image, grid, click, k, minimumHalfWidth);
    const auto * values = image->GetBufferPointer();
    const auto * labels = mask->GetBufferPointer();
    std::size_t  object = 0, alike = 0;
    for (SizeValueType i = 0; i < grid.count; ++i)
    {
      if (labels[i] != 0)
      {
        ++object;
        alike += std::abs(static_cast<double>(values[i]) - band.first) <= band.second ? 1 : 0;
      }
    }
    return object == 0 ? 1.0 : static_cast<double>(alike) / static_cast<double>(object);
  }

  /** The like-intensity neighbourhood of a positive click, for a click where the pipeline adds nothing: the voxels
   * 26-connected to `click` through voxels that are background in `mask`, lie within `radius` mm of the click
   * (physical distance between voxel centres) and whose intensity lies in mean +- max(k x SD, minimumHalfWidth) of
   * the click's 3 x 3 x 3 neighbourhood in `image` (the click's voxel always, when it is background). */
  template<typename TImage, typename TMask>
  static OffsetListType
  LikeIntensityRegion(const TImage *    image,
                      const TMask *     mask,
                      const IndexType & click,
                      double            radius,
                      double            k,
                      double            minimumHalfWidth)
  {
    OffsetListType region;
    const Grid     grid(mask);
    if (!grid.Contains(click) || mask->GetBufferPointer()[grid.Offset(click)] != 0)
    {
      return region;
    }
    const auto        band = LikeIntensityBand(image, grid, click, k, minimumHalfWidth);
    const double      mean = band.first, half = band.second;
    const auto *      values = image->GetBufferPointer();
    std::vector<bool> seen(grid.count, false);
    const auto        start = grid.Offset(click);
    seen[start] = true;
    region.push_back(start);
    for (size_t next = 0; next < region.size(); ++next)
    {
      grid.ForEachNeighbour(region[next],
                            [&](SizeValueType neighbour, int)
                            {
                              if (seen[neighbour])
                              {
                                return;
                              }
                              seen[neighbour] = true;
                              if (mask->GetBufferPointer()[neighbour] != 0 ||
                                  std::abs(static_cast<double>(values[neighbour]) - mean) > half)
                              {
                                return;
                              }
                              if (grid.SquaredDistance(grid.IndexOf(neighbour), click) <= radius * radius)
                              {
                                region.push_back(neighbour);
                              }
                            });
    }
    return region;
  }

  /** The radius of LikeIntensityRegion() for a positive correction click (outside a non-empty `mask`) where the
   * pipeline adds nothing: max(`radius`, 2 x DistanceToMask(click)), as PositiveCorrection() bounds the pipeline's
   * answer (the miss a click corrects reaches about as far from it as the click lies from the mask), when the mask
   * lies within reach x radius / 2 of the click and the click's like-intensity band (mean +- max(k x SD,
   * minimumHalfWidth) of its 3 x 3 x 3 neighbourhood) is at most `maximumHalfWidth` wide on each side; else `radius`.
   * So a click in a missed stretch of a thin structure beside the mask (the spinal cord past a wrong first mask)
   * takes that stretch, not a 5 mm ball of it; a click far from the mask (a new object: nothing says how far its miss
   * reaches) or on an edge between tissues (a band that spans them: a rib's click holds marrow, cortex and muscle)
   * keeps the small neighbourhood. Documentation/Pipeline.md, "Corrections". */
  template<typename TImage, typename TMask>
  static double
  CorrectionLikeIntensityRadius(const TImage *    image,
                                const TMask *     mask,
                                const IndexType & click,
                                double            radius,
                                double            k = LikeIntensityK,
                                double            minimumHalfWidth = LikeIntensityMinimumHalfWidth,
                                double            maximumHalfWidth = LikeIntensityCorrectionMaximumHalfWidth,
                                double            reach = LikeIntensityCorrectionReach,
                                bool *            farFromMask = nullptr)
  {
    if (farFromMask != nullptr)
    {
      *farFromMask = false;
    }
    const Grid grid(mask);
    if (!grid.Contains(click) || LikeIntensityBand(image, grid, click, k, minimumHalfWidth).second > maximumHalfWidth)
    {
      return radius;
    }
    const double distance = DistanceToMask(mask, click, 0.5 * reach * radius);
    if (farFromMask != nullptr)
    {
      *farFromMask = !std::isfinite(distance);
    }
    return std::isfinite(distance) ? std::max(radius, 2.0 * distance) : radius;
  }

  /** What a positive click adds where the pipeline adds nothing, in a session and in the composite filter's
   * PreviousMask mode alike: WholeObjectLikeIntensityRegion() within `nothingFoundRadius` (grown for a large
   * homogeneous object unless `growLargeObjects` is off) on an empty mask (a first click: the region is the whole
   * answer) and for a correction far from the mask whose neighbourhood is of one tissue (beyond
   * CorrectionLikeIntensityRadius()'s reach: a new object, answered as a first click is); else within
   * CorrectionLikeIntensityRadius() of `radius`. `maskIsEmpty` is the caller's count, so no scan of the mask is
   * needed. `wholeAnswer`, when given, says whether the region stands for a whole object (the nothing-found radius:
   * later negative clicks also cut it radially, LikeIntensityRadialCut()). */
  template<typename TImage, typename TMask>
  static OffsetListType
  PositiveFallbackRegion(const TImage *    image,
                         const TMask *     mask,
                         const IndexType & click,
                         double            radius,
                         bool              maskIsEmpty,
                         double            nothingFoundRadius = LikeIntensityNothingFoundRadius,
                         bool *            wholeAnswer = nullptr,
                         bool              growLargeObjects = true)
  {
    bool   far = false;
    double reach = nothingFoundRadius;
    if (!maskIsEmpty)
    {
      reach =
        CorrectionLikeIntensityRadius(image, mask, click, radius, LikeIntensityK, LikeIntensityMinimumHalfWidth,
                                      LikeIntensityCorrectionMaximumHalfWidth, LikeIntensityCorrectionReach, &far);
      if (far)
      {
        reach = nothingFoundRadius;
      }
    }
    if (wholeAnswer != nullptr)
    {
      *wholeAnswer = maskIsEmpty || far;
    }
    if (maskIsEmpty || far)
    {
      return WholeObjectLikeIntensityRegion(image, mask, click, reach, growLargeObjects);
    }
    return LikeIntensityRegion(image, mask, click, reach, LikeIntensityK, LikeIntensityMinimumHalfWidth);
  }

  /** The like-intensity region that answers for a whole object (a first click on which the networks find nothing, or a
   * new object far from the mask): LikeIntensityRegion() within `radius` mm; with `growLargeObjects`, where the
   * click's band is narrow (one homogeneous tissue: half-width at most LargeObjectMaximumHalfWidth) and the region
   * fills at least LargeObjectFill of the ball (4/3 pi radius^3), the object reaches beyond the ball (a liver, a
   * spleen, a full bladder) and the region is grown again within LargeObjectRadiusFactor x radius (`usedRadius`, when
   * given, receives the radius the region was grown within).
   * Documentation/Pipeline.md, "When the networks find nothing". */
  template<typename TImage, typename TMask>
  static OffsetListType
  WholeObjectLikeIntensityRegion(const TImage *    image,
                                 const TMask *     mask,
                                 const IndexType & click,
                                 double            radius,
                                 bool              growLargeObjects = true,
                                 double *          usedRadius = nullptr)
  {
    if (usedRadius != nullptr)
    {
      *usedRadius = radius;
    }
    auto       region = LikeIntensityRegion(image, mask, click, radius, LikeIntensityK, LikeIntensityMinimumHalfWidth);
    const Grid grid(mask);
    if (!growLargeObjects || region.empty() || !grid.Contains(click) ||
        LikeIntensityBand(image, grid, click, LikeIntensityK, LikeIntensityMinimumHalfWidth).second >
          LargeObjectMaximumHalfWidth)
    {
      return region;
    }
    const double voxelVolume = grid.spacing[0] * grid.spacing[1] * grid.spacing[2];
    const double ballVolume = 4.0 / 3.0 * Math::pi * radius * radius * radius;
    if (static_cast<double>(region.size()) * voxelVolume < LargeObjectFill * ballVolume)
    {
      return region;
    }
    if (usedRadius != nullptr)
    {
      *usedRadius = LargeObjectRadiusFactor * radius;
    }
    return LikeIntensityRegion(image, mask, click, LargeObjectRadiusFactor * radius, LikeIntensityK,
                               LikeIntensityMinimumHalfWidth);
  }

  /** How far `index` lies from the mask (physical mm): the distance from its centre to the nearest object voxel's
   * centre; 0 when `index` is an object voxel, infinity when no object voxel lies within `limit` mm. */
  template<typename TMask>
  static double
  DistanceToMask(const TMask * mask, const IndexType & index, double limit)
  {
    const Grid   grid(mask);
    const auto * data = mask->GetBufferPointer();
    if (grid.Contains(index) && data[grid.Offset(index)] != 0)
    {
      return 0.0;
    }
    const double best = NearestVoxelDistance(
      grid, index, limit, [&](const IndexType & at) { return grid.Contains(at) && data[grid.Offset(at)] != 0; });
    return best <= limit ? best : std::numeric_limits<double>::infinity();
  }

  /** What a positive correction click outside a non-empty mask adds of `component`, the pipeline's component that
   * holds the click (voxel offsets; ConnectedVoxels() of the pipeline's result at the click): the voxels of the
   * component that are background in `mask`, lie within max(2 x DistanceToMask(click), one voxel diagonal) mm of the
   * click and are connected to it (26 neighbours) through component voxels of like intensity, i.e. within mean +-
   * max(k x SD, minimumHalfWidth) of the click's 3 x 3 x 3 neighbourhood in `image`. The click sits in a miss of the
   * object beside the mask; the miss it corrects reaches about as far from the click as the click lies from the mask
   * (the negative click's carve is bounded by the click's depth in the mask the same way), and it is the tissue under
   * the click: what the pipeline's component holds beyond that ball, or across an intensity edge from the click, is
   * a guess about another structure, and on real CT mostly a spill (Documentation/Pipeline.md, "Corrections"). On an
   * empty mask the whole component's voxels are returned (a first click is the pipeline's answer); a caller that knows
   * the mask holds something passes `maskMayBeEmpty` false, and the mask is then never scanned. */
  template<typename TImage, typename TMask>
  static OffsetListType
  PositiveCorrection(const TImage *         image,
                     const TMask *          mask,
                     const OffsetListType & component,
                     const IndexType &      click,
                     double                 k,
                     double                 minimumHalfWidth,
                     bool                   maskMayBeEmpty = true)
  {
    const Grid   grid(mask);
    const auto * data = mask->GetBufferPointer();
    const bool empty = maskMayBeEmpty && std::find_if(data, data + grid.count, [](auto value) { return value != 0; }) ==
                                           data + grid.count;
    OffsetListType added;
    if (component.empty())
    {
      return added;
    }
    if (empty || !grid.Contains(click) || data[grid.Offset(click)] != 0)
    {
      for (const auto offset : component)
      {
        if (data[offset] == 0)
        {
          added.push_back(offset);
        }
      }
      return added;
    }
    auto squaredDistance = [&](SizeValueType offset) { return grid.SquaredDistance(grid.IndexOf(offset), click); };
    // The ball: beyond the component's farthest voxel it cuts nothing, so the distance search stops there.
    double farthest = 0.0;
    for (const auto offset : component)
    {
      farthest = std::max(farthest, squaredDistance(offset));
    }
    const double diagonal = std::sqrt(grid.spacing[0] * grid.spacing[0] + grid.spacing[1] * grid.spacing[1] +
                                      grid.spacing[2] * grid.spacing[2]);
    const double radius = std::max(2.0 * DistanceToMask(mask, click, 0.5 * std::sqrt(farthest) + diagonal), diagonal);
    // Like intensity: mean +- max(k SD, minimumHalfWidth) of the click's 3 x 3 x 3 neighbourhood.
    const auto   band = LikeIntensityBand(image, grid, click, k, minimumHalfWidth);
    const double mean = band.first, half = band.second;
    const auto * values = image->GetBufferPointer();
    // The walk from the click through the component's like-intensity voxels inside the ball, on the component's
    // bounding box (no array of the image's size).
    IndexType low, high;
    low = high = click;
    grid.Enclose(component, low, high);
    std::array<SizeValueType, 3> box;
    for (unsigned int a = 0; a < 3; ++a)
    {
      box[a] = static_cast<SizeValueType>(high[a] - low[a] + 1);
    }
    auto local = [&](const IndexType & index)
    {
      return static_cast<SizeValueType>(index[0] - low[0]) +
             box[0] *
               (static_cast<SizeValueType>(index[1] - low[1]) + box[1] * static_cast<SizeValueType>(index[2] - low[2]));
    };
    constexpr uint8_t    Outside = 0, Member = 1, Reached = 2;
    std::vector<uint8_t> state(box[0] * box[1] * box[2], Outside);
    for (const auto offset : component)
    {
      state[local(grid.IndexOf(offset))] = Member;
    }
    const SizeValueType start = grid.Offset(click);
    state[local(click)] = Reached;
    OffsetListType reached{ start };
    for (size_t next = 0; next < reached.size(); ++next)
    {
      grid.ForEachNeighbour(reached[next],
                            [&](SizeValueType neighbour, int)
                            {
                              const auto index = grid.IndexOf(neighbour);
                              for (unsigned int a = 0; a < 3; ++a)
                              {
                                if (index[a] < low[a] || index[a] > high[a])
                                {
                                  return;
                                }
                              }
                              auto & at = state[local(index)];
                              if (at != Member)
                              {
                                return;
                              }
                              at = Reached;
                              if (std::abs(static_cast<double>(values[neighbour]) - mean) > half ||
                                  squaredDistance(neighbour) > radius * radius)
                              {
                                return;
                              }
                              reached.push_back(neighbour);
                            });
    }
    for (const auto offset : reached)
    {
      if (data[offset] == 0)
      {
        added.push_back(offset);
      }
    }
    return added;
  }

  /** What a positive correction click outside a non-empty mask adds when the pipeline's answer at the click is stage
   * 1's probability alone (`probability`, on its own grid: ClickGuidedSegmentationFilter::RunCoarseWindow(), one
   * window around the click; Documentation/Pipeline.md, "Corrections"): PositiveCorrection()'s rule, the result's
   * voxels being the voxels of `mask`'s grid whose probability, linearly interpolated at their centres (0 beyond half
   * a voxel outside the probability's grid), is at least `threshold`. The click's voxel must be such a voxel (else
   * nothing is added, as for an empty component) and background in `mask`. The ball's radius is max(2 x
   * DistanceToMask(click), one voxel diagonal), searched no farther than half of stage 1's component at the click
   * (its 26-connected voxels at or above `threshold` on the probability's grid) plus a voxel diagonal: the ball then
   * holds the whole result at the click. Only the voxels the walk from the click reaches are interpolated, inside the
   * bounding box of that component (one probability voxel wider, which holds every interpolated voxel at or above the
   * threshold connected to the click) and of the ball: the work scales with the region the click changes, never with
   * the image. When the mask lies farther from the click than that search (the ball would hold all of stage 1's
   * answer: a new object rather than a miss beside the mask) and `farFromMask` is given, nothing is added and
   * *farFromMask is set: the caller answers such a click with the whole pipeline (sessions and the filter do). */
  template<typename TImage, typename TMask, typename TProbability>
  static OffsetListType
  PositiveCorrectionFromProbability(const TImage *       image,
                                    const TMask *        mask,
                                    const TProbability * probability,
                                    double               threshold,
                                    const IndexType &    click,
                                    double               k,
                                    double               minimumHalfWidth,
                                    bool *               farFromMask = nullptr)
  {
    OffsetListType added;
    if (farFromMask != nullptr)
    {
      *farFromMask = false;
    }
    const Grid   grid(mask);
    const auto * data = mask->GetBufferPointer();
    if (!grid.Contains(click) || data[grid.Offset(click)] != 0)
    {
      return added;
    }
    const Grid   coarse(probability);
    const auto * values = probability->GetBufferPointer();
    // Index of `mask`'s grid -> continuous index of the probability's buffer (affine: an origin and three steps).
    using PointType = typename TMask::PointType;
    auto toCoarse = [&](const std::array<double, 3> & at)
    {
      ContinuousIndex<double, 3> index;
      for (unsigned int a = 0; a < 3; ++a)
      {
        index[a] = at[a];
      }
      PointType point;
      mask->TransformContinuousIndexToPhysicalPoint(index, point);
      ContinuousIndex<double, 3> inCoarse;
      probability->TransformPhysicalPointToContinuousIndex(point, inCoarse);
      std::array<double, 3> result{};
      for (unsigned int a = 0; a < 3; ++a)
      {
        result[a] = inCoarse[a] - static_cast<double>(coarse.start[a]);
      }
      return result;
    };
    const auto                           origin = toCoarse({ { 0.0, 0.0, 0.0 } });
    std::array<std::array<double, 3>, 3> steps{};
    for (unsigned int b = 0; b < 3; ++b)
    {
      std::array<double, 3> unit{ { 0.0, 0.0, 0.0 } };
      unit[b] = 1.0;
      const auto at = toCoarse(unit);
      for (unsigned int a = 0; a < 3; ++a)
      {
        steps[b][a] = at[a] - origin[a];
      }
    }
    auto coarseIndexOf = [&](const IndexType & index)
    {
      std::array<double, 3> c{};
      for (unsigned int a = 0; a < 3; ++a)
      {
        c[a] = origin[a] + index[0] * steps[0][a] + index[1] * steps[1][a] + index[2] * steps[2][a];
      }
      return c;
    };
    auto interpolate = [&](const IndexType & index)
    {
      const auto                   c = coarseIndexOf(index);
      std::array<SizeValueType, 3> low{}, high{};
      std::array<double, 3>        f{};
      for (unsigned int a = 0; a < 3; ++a)
      {
        const double last = static_cast<double>(coarse.size[a]) - 1.0;
        if (c[a] < -0.5 || c[a] > last + 0.5)
        {
          return 0.0;
        }
        const double at = std::clamp(c[a], 0.0, last);
        low[a] = static_cast<SizeValueType>(std::floor(at));
        high[a] = std::min(low[a] + 1, coarse.size[a] - 1);
        f[a] = at - static_cast<double>(low[a]);
      }
      auto value = [&](SizeValueType x, SizeValueType y, SizeValueType z)
      { return static_cast<double>(values[x + coarse.size[0] * (y + coarse.size[1] * z)]); };
      const double c00 = value(low[0], low[1], low[2]) * (1 - f[0]) + value(high[0], low[1], low[2]) * f[0];
      const double c10 = value(low[0], high[1], low[2]) * (1 - f[0]) + value(high[0], high[1], low[2]) * f[0];
      const double c01 = value(low[0], low[1], high[2]) * (1 - f[0]) + value(high[0], low[1], high[2]) * f[0];
      const double c11 = value(low[0], high[1], high[2]) * (1 - f[0]) + value(high[0], high[1], high[2]) * f[0];
      return (c00 * (1 - f[1]) + c10 * f[1]) * (1 - f[2]) + (c01 * (1 - f[1]) + c11 * f[1]) * f[2];
    };
    if (interpolate(click) < threshold)
    {
      return added; // the result misses the click: nothing at it
    }

    // Stage 1's component at the click: seeded by the corners of the click's cell at or above the threshold (at
    // least one, since the click's value is; all 26-neighbours of each other). Its bounding box and farthest voxel.
    const auto             clickCoarse = coarseIndexOf(click);
    std::vector<bool>      seen(coarse.count, false);
    OffsetListType         component;
    std::array<int64_t, 3> cell{};
    for (unsigned int a = 0; a < 3; ++a)
    {
      cell[a] = static_cast<int64_t>(std::floor(std::clamp(clickCoarse[a], 0.0, coarse.size[a] - 1.0)));
    }
    for (int corner = 0; corner < 8; ++corner)
    {
      IndexType at;
      for (unsigned int a = 0; a < 3; ++a)
      {
        at[a] =
          coarse.start[a] + std::min<int64_t>(cell[a] + ((corner >> a) & 1), static_cast<int64_t>(coarse.size[a]) - 1);
      }
      const auto offset = coarse.Offset(at);
      if (!seen[offset] && values[offset] >= threshold)
      {
        seen[offset] = true;
        component.push_back(offset);
      }
    }
    for (size_t next = 0; next < component.size(); ++next)
    {
      coarse.ForEachNeighbour(component[next],
                              [&](SizeValueType neighbour, int)
                              {
                                if (!seen[neighbour] && values[neighbour] >= threshold)
                                {
                                  seen[neighbour] = true;
                                  component.push_back(neighbour);
                                }
                              });
    }
    IndexType coarseLow, coarseHigh;
    coarseLow = coarseHigh = coarse.IndexOf(component.front());
    coarse.Enclose(component, coarseLow, coarseHigh);
    PointType clickPoint;
    mask->TransformIndexToPhysicalPoint(click, clickPoint);
    double farthest = 0.0;
    for (const auto offset : component)
    {
      PointType point;
      probability->TransformIndexToPhysicalPoint(coarse.IndexOf(offset), point);
      farthest = std::max(farthest, point.SquaredEuclideanDistanceTo(clickPoint));
    }
    const double coarseDiagonal =
      std::sqrt(coarse.spacing[0] * coarse.spacing[0] + coarse.spacing[1] * coarse.spacing[1] +
                coarse.spacing[2] * coarse.spacing[2]);
    const double diagonal = std::sqrt(grid.spacing[0] * grid.spacing[0] + grid.spacing[1] * grid.spacing[1] +
                                      grid.spacing[2] * grid.spacing[2]);
    const double radius =
      std::max(2.0 * DistanceToMask(mask, click, 0.5 * (std::sqrt(farthest) + coarseDiagonal) + diagonal), diagonal);
    if (!std::isfinite(radius) && farFromMask != nullptr)
    {
      *farFromMask = true; // a new object rather than a miss beside the mask: the caller decides
      return added;
    }

    // The box: the component's, one probability voxel wider, on `mask`'s grid; within the ball's; within the image.
    IndexType low, high;
    for (unsigned int a = 0; a < 3; ++a)
    {
      low[a] = grid.start[a] + static_cast<IndexValueType>(grid.size[a]) - 1;
      high[a] = grid.start[a];
    }
    for (int corner = 0; corner < 8; ++corner)
    {
      ContinuousIndex<double, 3> at;
      for (unsigned int a = 0; a < 3; ++a)
      {
        at[a] = static_cast<double>((corner >> a) & 1 ? coarseHigh[a] + 1 : coarseLow[a] - 1);
      }
      PointType point;
      probability->TransformContinuousIndexToPhysicalPoint(at, point);
      ContinuousIndex<double, 3> onGrid;
      mask->TransformPhysicalPointToContinuousIndex(point, onGrid);
      for (unsigned int a = 0; a < 3; ++a)
      {
        low[a] = std::min(low[a], static_cast<IndexValueType>(std::floor(onGrid[a])));
        high[a] = std::max(high[a], static_cast<IndexValueType>(std::ceil(onGrid[a])));
      }
    }
    for (unsigned int a = 0; a < 3; ++a)
    {
      if (std::isfinite(radius))
      {
        const auto reach = static_cast<IndexValueType>(std::ceil(radius / grid.spacing[a]));
        low[a] = std::max(low[a], click[a] - reach);
        high[a] = std::min(high[a], click[a] + reach);
      }
      low[a] = std::max(low[a], grid.start[a]);
      high[a] = std::min(high[a], grid.start[a] + static_cast<IndexValueType>(grid.size[a]) - 1);
      low[a] = std::min(low[a], click[a]);
      high[a] = std::max(high[a], click[a]);
    }
    // The walk from the click through result voxels of like intensity inside the ball, in the box's coordinates.
    std::array<int64_t, 3> box{};
    for (unsigned int a = 0; a < 3; ++a)
    {
      box[a] = high[a] - low[a] + 1;
    }
    const auto           band = LikeIntensityBand(image, grid, click, k, minimumHalfWidth);
    const double         mean = band.first, half = band.second;
    const auto *         intensities = image->GetBufferPointer();
    const auto           boxOrigin = static_cast<int64_t>(grid.Offset(low));
    const auto           sx = static_cast<int64_t>(grid.size[0]), sxy = sx * static_cast<int64_t>(grid.size[1]);
    const double         limit = radius * radius;
    std::vector<uint8_t> visited(static_cast<size_t>(box[0] * box[1] * box[2]), 0);
    std::vector<std::array<int64_t, 3>> queue{ { { click[0] - low[0], click[1] - low[1], click[2] - low[2] } } };
    visited[static_cast<size_t>(queue[0][0] + box[0] * (queue[0][1] + box[1] * queue[0][2]))] = 1;
    for (size_t next = 0; next < queue.size(); ++next)
    {
      const auto at = queue[next];
      for (int64_t dz = -1; dz <= 1; ++dz)
      {
        const int64_t z = at[2] + dz;
        if (z < 0 || z >= box[2])
        {
          continue;
        }
        const double ddz = (z + low[2] - click[2]) * grid.spacing[2];
        for (int64_t dy = -1; dy <= 1; ++dy)
        {
          const int64_t y = at[1] + dy;
          if (y < 0 || y >= box[1])
          {
            continue;
          }
          const double ddy = (y + low[1] - click[1]) * grid.spacing[1];
          for (int64_t dx = -1; dx <= 1; ++dx)
          {
            const int64_t x = at[0] + dx;
            if (x < 0 || x >= box[0])
            {
              continue;
            }
            auto & seen = visited[static_cast<size_t>(x + box[0] * (y + box[1] * z))];
            if (seen != 0)
            {
              continue;
            }
            seen = 1;
            const double ddx = (x + low[0] - click[0]) * grid.spacing[0];
            const auto   offset = static_cast<SizeValueType>(boxOrigin + x + sx * y + sxy * z);
            if (ddx * ddx + ddy * ddy + ddz * ddz > limit ||
                std::abs(static_cast<double>(intensities[offset]) - mean) > half ||
                interpolate(IndexType{ { low[0] + x, low[1] + y, low[2] + z } }) < threshold)
            {
              continue;
            }
            queue.push_back({ { x, y, z } });
          }
        }
      }
    }
    for (const auto & at : queue)
    {
      const auto offset = static_cast<SizeValueType>(boxOrigin + at[0] + sx * at[1] + sxy * at[2]);
      if (data[offset] == 0)
      {
        added.push_back(offset);
      }
    }
    return added;
  }

  /** Throws itk::ExceptionObject naming `what` and what differs when `mask` is not on `image`'s grid: the same size,
   * and origin, spacing and direction equal within 1e-4 of a voxel (origin, spacing) and 1e-6 (direction). */
  static void
  CheckSameGrid(const ImageBase<3> * image, const ImageBase<3> * mask, const std::string & what)
  {
    std::ostringstream message;
    const auto &       size = mask->GetLargestPossibleRegion().GetSize();
    const auto &       imageSize = image->GetLargestPossibleRegion().GetSize();
    const double       tolerance = 1e-4 * *std::min_element(image->GetSpacing().Begin(), image->GetSpacing().End());
    if (size != imageSize)
    {
      message << "size " << size << " differs from the image's " << imageSize;
    }
    else if (image->GetOrigin().EuclideanDistanceTo(mask->GetOrigin()) > tolerance)
    {
      message << "origin " << mask->GetOrigin() << " differs from the image's " << image->GetOrigin();
    }
    else
    {
      bool spacing = true, direction = true;
      for (unsigned int a = 0; a < 3; ++a)
      {
        spacing = spacing && std::abs(mask->GetSpacing()[a] - image->GetSpacing()[a]) <= tolerance;
        for (unsigned int b = 0; b < 3; ++b)
        {
          direction = direction && std::abs(mask->GetDirection()[a][b] - image->GetDirection()[a][b]) <= 1e-6;
        }
      }
      if (!spacing)
      {
        message << "spacing " << mask->GetSpacing() << " differs from the image's " << image->GetSpacing();
      }
      else if (!direction)
      {
        message << "direction differs from the image's";
      }
    }
    if (!message.str().empty())
    {
      itkGenericExceptionMacro(<< "DivAttention: input \"" << what << "\": not on the image's grid: " << message.str()
                               << " (a mask must have the image's size, origin, spacing and direction)");
    }
  }

private:
  // The buffered grid's strides and the physical length of each of the 26 steps.
  struct Grid
  {
    std::array<SizeValueType, 3> size;
    std::array<double, 3>        spacing;
    IndexType                    start;
    SizeValueType                count;

    template<typename TMask>
    explicit Grid(const TMask * mask)
    {
      const auto & region = mask->GetBufferedRegion();
      for (unsigned int a = 0; a < 3; ++a)
      {
        size[a] = region.GetSize()[a];
        spacing[a] = mask->GetSpacing()[a];
      }
      start = region.GetIndex();
      count = size[0] * size[1] * size[2];
    }
    bool
    Contains(const IndexType & index) const
    {
      for (unsigned int a = 0; a < 3; ++a)
      {
        if (index[a] < start[a] || index[a] >= start[a] + static_cast<IndexValueType>(size[a]))
        {
          return false;
        }
      }
      return true;
    }
    SizeValueType
    Offset(const IndexType & index) const
    {
      return static_cast<SizeValueType>(index[0] - start[0]) +
             size[0] * (static_cast<SizeValueType>(index[1] - start[1]) +
                        size[1] * static_cast<SizeValueType>(index[2] - start[2]));
    }
    IndexType
    IndexOf(SizeValueType offset) const
    {
      IndexType index;
      index[0] = start[0] + static_cast<IndexValueType>(offset % size[0]);
      offset /= size[0];
      index[1] = start[1] + static_cast<IndexValueType>(offset % size[1]);
      index[2] = start[2] + static_cast<IndexValueType>(offset / size[1]);
      return index;
    }
    // Squared physical distance (mm^2) between the centres of two voxels (the grid's spacing; no direction needed).
    double
    SquaredDistance(const IndexType & a, const IndexType & b) const
    {
      double squared = 0.0;
      for (unsigned int d = 0; d < 3; ++d)
      {
        const double step = (a[d] - b[d]) * spacing[d];
        squared += step * step;
      }
      return squared;
    }
    // Widens [low, high] to hold every voxel of `offsets`.
    template<typename TOffsets>
    void
    Enclose(const TOffsets & offsets, IndexType & low, IndexType & high) const
    {
      for (const auto offset : offsets)
      {
        const auto index = IndexOf(offset);
        for (unsigned int a = 0; a < 3; ++a)
        {
          low[a] = std::min(low[a], index[a]);
          high[a] = std::max(high[a], index[a]);
        }
      }
    }
    // Step k = (dx + 1) + 3 (dy + 1) + 9 (dz + 1).
    std::array<float, 27>
    StepLengths() const
    {
      std::array<float, 27> lengths{};
      for (int k = 0; k < 27; ++k)
      {
        const double x = (k % 3 - 1) * spacing[0], y = (k / 3 % 3 - 1) * spacing[1], z = (k / 9 - 1) * spacing[2];
        lengths[static_cast<size_t>(k)] = static_cast<float>(std::sqrt(x * x + y * y + z * z));
      }
      return lengths;
    }
    template<typename TVisit>
    void
    ForEachNeighbour(SizeValueType offset, TVisit && visit) const
    {
      const auto x = static_cast<int64_t>(offset % size[0]);
      const auto y = static_cast<int64_t>(offset / size[0] % size[1]);
      const auto z = static_cast<int64_t>(offset / (size[0] * size[1]));
      const auto sx = static_cast<int64_t>(size[0]), sy = static_cast<int64_t>(size[1]),
                 sz = static_cast<int64_t>(size[2]);
      for (int dz = -1; dz <= 1; ++dz)
      {
        if (z + dz < 0 || z + dz >= sz)
        {
          continue;
        }
        for (int dy = -1; dy <= 1; ++dy)
        {
          if (y + dy < 0 || y + dy >= sy)
          {
            continue;
          }
          for (int dx = -1; dx <= 1; ++dx)
          {
            if ((dx == 0 && dy == 0 && dz == 0) || x + dx < 0 || x + dx >= sx)
            {
              continue;
            }
            const int64_t neighbour = static_cast<int64_t>(offset) + dx + sx * (dy + sy * dz);
            visit(static_cast<SizeValueType>(neighbour), (dx + 1) + 3 * (dy + 1) + 9 * (dz + 1));
          }
        }
      }
    }
  };

  // "Like intensity" at a click: the mean of the click's 3 x 3 x 3 neighbourhood in `image` (its voxels inside the
  // image) and the half-width max(k x SD, minimumHalfWidth) around it.
  template<typename TImage>
  static std::pair<double, double>
  LikeIntensityBand(const TImage * image, const Grid & grid, const IndexType & click, double k, double minimumHalfWidth)
  {
    const auto * values = image->GetBufferPointer();
    double       sum = 0.0, squares = 0.0;
    size_t       n = 0;
    for (IndexValueType dz = -1; dz <= 1; ++dz)
    {
      for (IndexValueType dy = -1; dy <= 1; ++dy)
      {
        for (IndexValueType dx = -1; dx <= 1; ++dx)
        {
          const IndexType at{ { click[0] + dx, click[1] + dy, click[2] + dz } };
          if (grid.Contains(at))
          {
            const double v = static_cast<double>(values[grid.Offset(at)]);
            sum += v;
            squares += v * v;
            ++n;
          }
        }
      }
    }
    const double mean = sum / static_cast<double>(n);
    const double sd = std::sqrt(std::max(0.0, squares / static_cast<double>(n) - mean * mean));
    return { mean, std::max(k * sd, minimumHalfWidth) };
  }

  // The physical distance from `index`'s centre to the nearest voxel centre for which `found` holds, searched in cubes
  // of growing (Chebyshev) radius r (a voxel at radius r is at least r x the smallest spacing away) until no nearer
  // one can follow or the radius passes `limit` mm; infinity when none is found.
  template<typename TFound>
  static double
  NearestVoxelDistance(const Grid & grid, const IndexType & index, double limit, const TFound & found)
  {
    const double smallest = *std::min_element(grid.spacing.begin(), grid.spacing.end());
    double       best = std::numeric_limits<double>::infinity();
    for (IndexValueType r = 1; static_cast<double>(r) * smallest < best && static_cast<double>(r) * smallest <= limit;
         ++r)
    {
      for (IndexValueType dz = -r; dz <= r; ++dz)
      {
        for (IndexValueType dy = -r; dy <= r; ++dy)
        {
          const bool face = std::abs(dz) == r || std::abs(dy) == r;
          for (IndexValueType dx = -r; dx <= r; dx += (face ? 1 : 2 * r))
          {
            const IndexType at{ { index[0] + dx, index[1] + dy, index[2] + dz } };
            if (!found(at))
            {
              continue;
            }
            const double x = dx * grid.spacing[0], y = dy * grid.spacing[1], z = dz * grid.spacing[2];
            best = std::min(best, std::sqrt(x * x + y * y + z * z));
          }
        }
      }
    }
    return best;
  }
};
} // namespace itk

#endif
