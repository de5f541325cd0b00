#ifndef itkCorrectionClickSimulator_hxx
#define itkCorrectionClickSimulator_hxx

#include "itkConnectedComponentImageFilter.h"
#include "itkCorrectionClickSimulator.h"
#include "itkImage.h"
#include "itkImageRegionConstIterator.h"
#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkImageRegionIterator.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkMacro.h"
#include "itkSignedMaurerDistanceMapImageFilter.h"

#include <array>
#include <cstdint>
#include <limits>
#include <vector>

namespace itk
{
namespace CorrectionClickDetail
{
using ErrorImageType = Image<uint8_t, 3>;
using LabelImageType = Image<uint32_t, 3>;
using DistanceImageType = Image<float, 3>;

/** One connected error region: its voxel count, its first voxel's offset in the full buffer, its bounding box. */
struct Component
{
  uint64_t                  voxels = 0;
  uint64_t                  firstOffset = std::numeric_limits<uint64_t>::max();
  std::array<int64_t, 3>    low{ { std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max(),
                                   std::numeric_limits<int64_t>::max() } };
  std::array<int64_t, 3>    high{ { -1, -1, -1 } };
  bool                      positive = true;
  LabelImageType::PixelType label = 0;
  LabelImageType::Pointer   labels; ///< the labels of its kind, on the errors' bounding box (zero-based index)
};

/** A zero-based image with the geometry of `grid`'s voxels from `start` on, `size` voxels. */
template<typename TImage, typename TGrid>
typename TImage::Pointer
MakeSubImage(const TGrid * grid, const Index<3> & start, const Size<3> & size)
{
  auto                       image = TImage::New();
  typename TImage::PointType origin;
  // The voxel `start` of the grid may lie outside it (a padding voxel): the affine map holds there too.
  grid->TransformIndexToPhysicalPoint(start, origin);
  image->SetRegions(size);
  image->SetOrigin(origin);
  image->SetSpacing(grid->GetSpacing());
  image->SetDirection(grid->GetDirection());
  image->Allocate(true);
  return image;
}

template<typename TImage>
void
CheckBuffered(const TImage * image, const char * name)
{
  if (image == nullptr)
  {
    itkGenericExceptionMacro(<< "DivAttention: input \"" << name << "\": no image was given");
  }
  if (image->GetBufferedRegion() != image->GetLargestPossibleRegion() || image->GetBufferPointer() == nullptr)
  {
    itkGenericExceptionMacro(<< "DivAttention: input \"" << name << "\": the image is not fully buffered (buffered "
                             << image->GetBufferedRegion() << ", largest " << image->GetLargestPossibleRegion()
                             << "): Update() it first");
  }
}
} // namespace CorrectionClickDetail

template<typename TMaskImage, typename TReferenceImage>
std::optional<CorrectionClick>
NextCorrectionClick(const TMaskImage * mask, const TReferenceImage * reference)
{
  static_assert(TMaskImage::ImageDimension == 3 && TReferenceImage::ImageDimension == 3,
                "NextCorrectionClick works on 3D masks");
  using namespace CorrectionClickDetail;
  CheckBuffered(mask, "Mask");
  CheckBuffered(reference, "Reference");

  // Same tolerance as ITK's own VerifyInputInformation: a fraction of a voxel.
  const double tolerance = 1e-6 * mask->GetSpacing().GetVnlVector().max_value();
  const bool   sameRegion = reference->GetLargestPossibleRegion() == mask->GetLargestPossibleRegion();
  const bool   sameOrigin = reference->GetOrigin().EuclideanDistanceTo(mask->GetOrigin()) <= tolerance;
  const bool   sameSpacing = (reference->GetSpacing() - mask->GetSpacing()).GetNorm() <= tolerance;
  const bool   sameDirection =
    (reference->GetDirection().GetVnlMatrix() - mask->GetDirection().GetVnlMatrix()).absolute_value_max() <= 1e-6;
  if (!(sameRegion && sameOrigin && sameSpacing && sameDirection))
  {
    itkGenericExceptionMacro(<< "DivAttention: input \"Reference\": must lie on the mask's grid (region, origin, "
                                "spacing and direction); reference "
                             << reference->GetLargestPossibleRegion() << " origin " << reference->GetOrigin()
                             << " spacing " << reference->GetSpacing() << ", mask " << mask->GetLargestPossibleRegion()
                             << " origin " << mask->GetOrigin() << " spacing " << mask->GetSpacing());
  }

  // One pass over both buffers: the bounding box of every error voxel.
  const auto             region = mask->GetLargestPossibleRegion();
  const auto             size = region.GetSize();
  const int64_t          nx = static_cast<int64_t>(size[0]), ny = static_cast<int64_t>(size[1]);
  const uint64_t         count = region.GetNumberOfPixels();
  const auto *           m = mask->GetBufferPointer();
  const auto *           r = reference->GetBufferPointer();
  std::array<int64_t, 3> low{ { nx, ny, static_cast<int64_t>(size[2]) } }, high{ { -1, -1, -1 } };
  for (uint64_t i = 0; i < count; ++i)
  {
    if ((m[i] != 0) != (r[i] != 0))
    {
      const int64_t x = static_cast<int64_t>(i) % nx, y = (static_cast<int64_t>(i) / nx) % ny,
                    z = static_cast<int64_t>(i) / (nx * ny);
      low = { { std::min(low[0], x), std::min(low[1], y), std::min(low[2], z) } };
      high = { { std::max(high[0], x), std::max(high[1], y), std::max(high[2], z) } };
    }
  }
  if (high[0] < 0)
  {
    return std::nullopt;
  }

  // Misses and false positives on the bounding box, each split into face-connected components.
  Index<3> boxStart;
  Size<3>  boxSize;
  for (unsigned d = 0; d < 3; ++d)
  {
    boxStart[d] = region.GetIndex(d) + low[d];
    boxSize[d] = static_cast<SizeValueType>(high[d] - low[d] + 1);
  }
  const auto             misses = MakeSubImage<ErrorImageType>(mask, boxStart, boxSize);
  const auto             falsePositives = MakeSubImage<ErrorImageType>(mask, boxStart, boxSize);
  std::vector<Component> components;
  {
    ImageRegionIteratorWithIndex<ErrorImageType> missIt(misses, misses->GetLargestPossibleRegion());
    ImageRegionIterator<ErrorImageType>          fpIt(falsePositives, falsePositives->GetLargestPossibleRegion());
    for (; !missIt.IsAtEnd(); ++missIt, ++fpIt)
    {
      const auto &   local = missIt.GetIndex();
      const uint64_t offset = static_cast<uint64_t>(local[0] + low[0]) +
                              static_cast<uint64_t>(nx) * (static_cast<uint64_t>(local[1] + low[1]) +
                                                           static_cast<uint64_t>(ny) * (local[2] + low[2]));
      const bool inMask = m[offset] != 0, inReference = r[offset] != 0;
      missIt.Set(inReference && !inMask ? 1 : 0);
      fpIt.Set(inMask && !inReference ? 1 : 0);
    }
  }
  for (const bool positive : { true, false })
  {
    auto connected = ConnectedComponentImageFilter<ErrorImageType, LabelImageType>::New();
    connected->SetInput(positive ? misses : falsePositives);
    connected->SetFullyConnected(false);
    connected->SetBackgroundValue(0);
    connected->Update();
    LabelImageType::Pointer labels = connected->GetOutput();
    labels->DisconnectPipeline();
    const size_t firstOfKind = components.size();
    components.resize(firstOfKind + connected->GetObjectCount());
    for (ImageRegionConstIteratorWithIndex<LabelImageType> it(labels, labels->GetLargestPossibleRegion());
         !it.IsAtEnd(); ++it)
    {
      const auto label = it.Get();
      if (label == 0)
      {
        continue;
      }
      Component &  component = components[firstOfKind + label - 1];
      const auto & local = it.GetIndex();
      if (component.voxels == 0)
      {
        component.firstOffset = static_cast<uint64_t>(local[0] + low[0]) +
                                static_cast<uint64_t>(nx) * (static_cast<uint64_t>(local[1] + low[1]) +
                                                             static_cast<uint64_t>(ny) * (local[2] + low[2]));
        component.positive = positive;
        component.label = label;
        component.labels = labels;
      }
      ++component.voxels;
      for (unsigned d = 0; d < 3; ++d)
      {
        component.low[d] = std::min<int64_t>(component.low[d], local[d]);
        component.high[d] = std::max<int64_t>(component.high[d], local[d]);
      }
    }
  }
  // The largest by volume (one grid: by voxel count, exactly); ties to the first voxel in buffer order.
  const Component * best = nullptr;
  for (const auto & component : components)
  {
    if (component.voxels > 0 && (best == nullptr || component.voxels > best->voxels ||
                                 (component.voxels == best->voxels && component.firstOffset < best->firstOffset)))
    {
      best = &component;
    }
  }

  // Its centre: the deepest voxel by physical distance to the component's border. The component is copied with one
  // voxel of background all round, so that the image's edge counts as border too.
  Index<3> paddedStart;
  Size<3>  paddedSize;
  for (unsigned d = 0; d < 3; ++d)
  {
    paddedStart[d] = boxStart[d] + best->low[d] - 1;
    paddedSize[d] = static_cast<SizeValueType>(best->high[d] - best->low[d] + 3);
  }
  const auto component = MakeSubImage<ErrorImageType>(mask, paddedStart, paddedSize);
  {
    LabelImageType::RegionType inside;
    for (unsigned d = 0; d < 3; ++d)
    {
      inside.SetIndex(d, best->low[d]);
      inside.SetSize(d, paddedSize[d] - 2);
    }
    ImageRegionConstIteratorWithIndex<LabelImageType> labelIt(best->labels, inside);
    for (; !labelIt.IsAtEnd(); ++labelIt)
    {
      if (labelIt.Get() == best->label)
      {
        Index<3> local = labelIt.GetIndex();
        for (unsigned d = 0; d < 3; ++d)
        {
          local[d] += 1 - best->low[d];
        }
        component->SetPixel(local, 1);
      }
    }
  }
  // Maurer's "background" is the component: every component voxel gets its (positive, physical) distance to the
  // nearest voxel outside it, so a region two voxels thick still has a middle (a distance to the component's own
  // surface voxels would be 0 throughout it).
  auto distance = SignedMaurerDistanceMapImageFilter<ErrorImageType, DistanceImageType>::New();
  distance->SetInput(component);
  distance->SetBackgroundValue(1);
  distance->SetInsideIsPositive(false);
  distance->SetUseImageSpacing(true);
  distance->SetSquaredDistance(false);
  distance->Update();
  const DistanceImageType *                         depth = distance->GetOutput();
  Index<3>                                          deepest{};
  float                                             deepestValue = -std::numeric_limits<float>::infinity();
  ImageRegionConstIteratorWithIndex<ErrorImageType> it(component, component->GetLargestPossibleRegion());
  ImageRegionConstIterator<DistanceImageType>       depthIt(depth, depth->GetLargestPossibleRegion());
  for (; !it.IsAtEnd(); ++it, ++depthIt)
  {
    if (it.Get() != 0 && depthIt.Get() > deepestValue) // strict: ties go to the first voxel in buffer order
    {
      deepestValue = depthIt.Get();
      deepest = it.GetIndex();
    }
  }
  Index<3> index;
  for (unsigned d = 0; d < 3; ++d)
  {
    index[d] = paddedStart[d] + deepest[d];
  }
  CorrectionClick click;
  mask->TransformIndexToPhysicalPoint(index, click.point);
  click.positive = best->positive;
  double voxelVolume = 1.0;
  for (unsigned d = 0; d < 3; ++d)
  {
    voxelVolume *= mask->GetSpacing()[d];
  }
  click.regionVolume = static_cast<double>(best->voxels) * voxelVolume;
  return click;
}
} // namespace itk

#endif
