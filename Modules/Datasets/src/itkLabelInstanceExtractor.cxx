#include "itkLabelInstanceExtractor.h"

#include "itkBinaryThresholdImageFilter.h"
#include "itkConnectedComponentImageFilter.h"
#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkImageRegionIterator.h"
#include "itkMacro.h"

#include <algorithm>
#include <map>

namespace itk
{
LabelInstanceExtractor::Mode
LabelInstanceExtractor::ModeFromName(const std::string & name)
{
  if (name == "organ")
  {
    return Mode::Organ;
  }
  if (name == "lesion")
  {
    return Mode::Lesion;
  }
  if (name == "label-components")
  {
    return Mode::LabelComponents;
  }
  itkGenericExceptionMacro(<< "DivAttention: instances must be organ, lesion or label-components, not '" << name
                           << "'");
}

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
      const auto found = std::find(options.targetLabels.begin(), options.targetLabels.end(), in.Get());
      // In LabelComponents mode each label keeps its own value (its position in the list) so that touching organs of
      // different labels stay apart; the other modes see one foreground.
      const auto value = options.mode == Mode::LabelComponents ? found - options.targetLabels.begin() + 1 : 1;
      out.Set(found != options.targetLabels.end() ? static_cast<uint16_t>(value) : 0);
    }
  }
  InstanceImageType::Pointer components = mask;
  if (options.mode == Mode::LabelComponents)
  {
    // Components label by label, numbered on from the previous label's last component.
    components = InstanceImageType::New();
    components->CopyInformation(labels);
    components->SetRegions(region);
    components->Allocate(true);
    uint16_t offset = 0;
    for (size_t k = 0; k < options.targetLabels.size(); ++k)
    {
      auto only = BinaryThresholdImageFilter<InstanceImageType, InstanceImageType>::New();
      only->SetInput(mask);
      only->SetLowerThreshold(static_cast<uint16_t>(k + 1));
      only->SetUpperThreshold(static_cast<uint16_t>(k + 1));
      only->SetInsideValue(1);
      only->SetOutsideValue(0);
      auto connected = ConnectedComponentImageFilter<InstanceImageType, InstanceImageType>::New();
      connected->SetInput(only->GetOutput());
      connected->SetFullyConnected(true);
      connected->SetBackgroundValue(0);
      connected->Update();
      const auto count = connected->GetObjectCount();
      if (static_cast<size_t>(offset) + count > 65535)
      {
        itkGenericExceptionMacro(<< "DivAttention: instances: more than 65535 connected components");
      }
      ImageRegionConstIterator<InstanceImageType> in(connected->GetOutput(), region);
      ImageRegionIterator<InstanceImageType>      out(components, region);
      for (; !in.IsAtEnd(); ++in, ++out)
      {
        if (in.Get() != 0)
        {
          out.Set(static_cast<uint16_t>(offset + in.Get()));
        }
      }
      offset = static_cast<uint16_t>(offset + count);
    }
  }
  else if (options.mode == Mode::Lesion)
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
