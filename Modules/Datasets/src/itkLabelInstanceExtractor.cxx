#include "itkLabelInstanceExtractor.h"

#include "itkConnectedComponentImageFilter.h"
#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkImageRegionIterator.h"
#include "itkMacro.h"

#include <algorithm>
#include <map>

namespace itk
{
LabelInstanceExtractor::Result
LabelInstanceExtractor::Extract(const LabelImageType * labels, const Options & options)
{
  if (labels == nullptr)
  {
    itkGenericExceptionMacro(<< "DivAttention: instances: no label image");
  }
  if (options.targetLabels.empty())
  {
    itkGenericExceptionMacro(<< "DivAttention: instances: no target label given");
  }
  const auto region = labels->GetLargestPossibleRegion();
  auto       mask = InstanceImageType::New();
  mask->CopyInformation(labels);
  mask->SetRegions(region);
  mask->Allocate();
  {
    ImageRegionConstIterator<LabelImageType> in(labels, region);
    ImageRegionIterator<InstanceImageType>   out(mask, region);
    for (; !in.IsAtEnd(); ++in, ++out)
    {
      const bool target =
        std::find(options.targetLabels.begin(), options.targetLabels.end(), in.Get()) != options.targetLabels.end();
      out.Set(target ? 1 : 0);
    }
  }
  InstanceImageType::Pointer components = mask;
  if (options.mode == Mode::Lesion)
  {
    auto connected = ConnectedComponentImageFilter<InstanceImageType, InstanceImageType>::New();
    connected->SetInput(mask);
    connected->SetFullyConnected(true);
    connected->SetBackgroundValue(0);
    connected->Update();
    components = connected->GetOutput();
    components->DisconnectPipeline();
  }

  // Size and bounding box of every component.
  struct Extent
  {
    size_t   voxels = 0;
    Index<3> low, high;
  };
  std::map<uint16_t, Extent> extents;
  for (ImageRegionConstIteratorWithIndex<InstanceImageType> it(components, region); !it.IsAtEnd(); ++it)
  {
    if (it.Get() == 0)
    {
      continue;
    }
    auto &     extent = extents[it.Get()];
    const auto index = it.GetIndex();
    if (extent.voxels++ == 0)
    {
      extent.low = index;
      extent.high = index;
    }
    for (unsigned d = 0; d < 3; ++d)
    {
      extent.low[d] = std::min(extent.low[d], index[d]);
      extent.high[d] = std::max(extent.high[d], index[d]);
    }
  }

  // Keep by the discard rule, largest first, renumbered 1..n.
  std::vector<std::pair<uint16_t, Extent>> ordered(extents.begin(), extents.end());
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto & a, const auto & b) { return a.second.voxels > b.second.voxels; });
  Result                       result;
  std::map<uint16_t, uint16_t> renumber;
  for (const auto & [component, extent] : ordered)
  {
    bool small = extent.voxels < options.minimumVoxels;
    for (unsigned d = 0; d < 3; ++d)
    {
      small = small || static_cast<unsigned>(extent.high[d] - extent.low[d] + 1) < options.minimumExtent;
    }
    if (small)
    {
      ++result.discarded;
      continue;
    }
    Instance instance;
    instance.id = static_cast<uint16_t>(result.kept.size() + 1);
    instance.voxels = extent.voxels;
    Size<3> size;
    for (unsigned d = 0; d < 3; ++d)
    {
      size[d] = static_cast<SizeValueType>(extent.high[d] - extent.low[d] + 1);
    }
    instance.boundingBox = ImageRegion<3>(extent.low, size);
    renumber[component] = instance.id;
    result.kept.push_back(instance);
  }
  for (ImageRegionIterator<InstanceImageType> it(components, region); !it.IsAtEnd(); ++it)
  {
    const auto found = renumber.find(it.Get());
    it.Set(found == renumber.end() ? 0 : found->second);
  }
  result.instances = components;
  return result;
}
} // namespace itk
