#ifndef itkCoarseSegmentationFilter_hxx
#define itkCoarseSegmentationFilter_hxx

#include "itkClickPoints.h"
#include "itkContinuousIndex.h"
#include "itkDivAttentionRuntime.h"
#include "itkImageRegionConstIterator.h"
#include "itkLinearInterpolateImageFunction.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <type_traits>
#include <vector>

namespace itk
{
template<typename TInputImage, typename TOutputImage>
CoarseSegmentationFilter<TInputImage, TOutputImage>::CoarseSegmentationFilter()
{
  m_Click.Fill(0.0);
  this->AddRequiredInputName("ClickMap");
  this->AddOptionalInputName("NegativeClickMap");
}

template<typename TInputImage, typename TOutputImage>
auto
CoarseSegmentationFilter<TInputImage, TOutputImage>::ResolveModel() -> ModelPointer
{
  const auto   device = DivAttentionRuntime::ResolveDevice(m_Device);
  ModelPointer model = m_Model;
  if (!model)
  {
    const auto key = m_ModelFile + "|" + device.str();
    if (!m_FileModel || key != m_FileModelKey)
    {
      m_FileModel = SegmentationModelSupport::Load(m_ModelFile, device, "coarse model");
      m_FileModelKey = key;
    }
    model = m_FileModel;
  }
  else if (m_Device != "auto" && SegmentationModelSupport::DeviceOf(*model) != device)
  {
    itkDivAttentionInputError("coarse model", "the loaded model lives on " << SegmentationModelSupport::DeviceOf(*model)
                                                                           << " but Device asks for " << device);
  }
  SegmentationModelSupport::CheckRole(*model, "coarse", "coarse model");
  return model;
}

template<typename TInputImage, typename TOutputImage>
void
CoarseSegmentationFilter<TInputImage, TOutputImage>::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if (!(m_MaximumExtent > 0.0) || !std::isfinite(m_MaximumExtent))
  {
    itkDivAttentionInputError("MaximumExtent", "must be a finite number > 0 mm, got " << m_MaximumExtent);
  }
  for (unsigned int d = 0; d < 3; ++d)
  {
    if (!std::isfinite(m_Click[d]))
    {
      itkDivAttentionInputError("Click", "is not finite: " << m_Click);
    }
  }
}

template<typename TInputImage, typename TOutputImage>
void
CoarseSegmentationFilter<TInputImage, TOutputImage>::GenerateOutputInformation()
{
  const InputImageType * ct = this->GetInput();
  OutputImageType *      output = this->GetOutput();
  if (!ct || !output)
  {
    return;
  }
  const auto   model = this->ResolveModel();
  const auto & preprocessing = model->description.preprocessing;
  if (!ClickPoints::IsInside(m_Click, ct))
  {
    itkDivAttentionInputError("Click", "the click " << m_Click << " lies outside the image");
  }
  m_WindowsInsideImageUsed =
    m_WindowPlacement == WindowPlacementEnum::InsideImage ||
    (m_WindowPlacement == WindowPlacementEnum::AsTrained && preprocessing.windowPlacement != "centred-on-click");
  const auto                 region = ct->GetLargestPossibleRegion();
  ContinuousIndex<double, 3> click;
  ct->TransformPhysicalPointToContinuousIndex(m_Click, click);

  // Work in the CT's axes, in mm from voxel 0's centre: the CT spans [-sp/2, (N - 1/2) sp] on each axis.
  ContinuousIndex<double, 3>            gridOrigin;
  typename OutputImageType::SizeType    size;
  typename OutputImageType::SpacingType spacing;
  for (unsigned int a = 0; a < 3; ++a)
  {
    const double sp = ct->GetSpacing()[a];
    const double s = preprocessing.targetSpacing[a];
    const auto   patch = static_cast<SizeValueType>(preprocessing.patchSize[a]);
    if (!(s > 0.0) || preprocessing.patchSize[a] <= 0)
    {
      itkDivAttentionInputError("coarse model", "target spacing and patch size must be positive");
    }
    const double u = (click[a] - region.GetIndex(a)) * sp;
    // Beyond the CT by half a window, so that the first window stays centred on a click near the CT's border.
    const double margin = m_WindowsInsideImageUsed ? 0.0 : 0.5 * static_cast<double>(patch) * s;
    const double low = std::max(u - 0.5 * m_MaximumExtent, -0.5 * sp - margin);
    const double high = std::min(u + 0.5 * m_MaximumExtent, (region.GetSize(a) - 0.5) * sp + margin);
    const auto   voxels = static_cast<SizeValueType>(std::ceil((high - low) / s - 1e-6));
    size[a] = std::max(patch, voxels);
    spacing[a] = s;
    const double firstCentre = 0.5 * (low + high) - 0.5 * (size[a] - 1) * s;
    gridOrigin[a] = firstCentre / sp + region.GetIndex(a);
  }
  typename OutputImageType::PointType origin;
  ct->TransformContinuousIndexToPhysicalPoint(gridOrigin, origin);
  output->SetOrigin(origin);
  output->SetSpacing(spacing);
  output->SetDirection(ct->GetDirection());
  output->SetLargestPossibleRegion(OutputImageRegionType(size));
}

template<typename TInputImage, typename TOutputImage>
void
CoarseSegmentationFilter<TInputImage, TOutputImage>::EnlargeOutputRequestedRegion(DataObject * output)
{
  Superclass::EnlargeOutputRequestedRegion(output);
  output->SetRequestedRegionToLargestPossibleRegion();
}

template<typename TInputImage, typename TOutputImage>
void
CoarseSegmentationFilter<TInputImage, TOutputImage>::GenerateInputRequestedRegion()
{
  const OutputImageType * output = this->GetOutput();
  const auto              outputRegion = output->GetLargestPossibleRegion();
  // Bounding box, in the input's index space, of the output grid's outer corners, one voxel wider for the
  // linear interpolation.
  const auto request = [&](ImageBase<3> * image)
  {
    if (!image)
    {
      return;
    }
    ContinuousIndex<double, 3> low, high;
    low.Fill(NumericTraits<double>::max());
    high.Fill(NumericTraits<double>::NonpositiveMin());
    for (unsigned int corner = 0; corner < 8; ++corner)
    {
      ContinuousIndex<double, 3> index;
      for (unsigned int a = 0; a < 3; ++a)
      {
        index[a] = outputRegion.GetIndex(a) - 0.5 + ((corner >> a) & 1U ? outputRegion.GetSize(a) : 0.0);
      }
      PointType point;
      output->TransformContinuousIndexToPhysicalPoint(index, point);
      ContinuousIndex<double, 3> inputIndex;
      image->TransformPhysicalPointToContinuousIndex(point, inputIndex);
      for (unsigned int a = 0; a < 3; ++a)
      {
        low[a] = std::min(low[a], inputIndex[a]);
        high[a] = std::max(high[a], inputIndex[a]);
      }
    }
    ImageRegion<3> region;
    for (unsigned int a = 0; a < 3; ++a)
    {
      const auto first = static_cast<IndexValueType>(std::floor(low[a])) - 1;
      const auto last = static_cast<IndexValueType>(std::ceil(high[a])) + 1;
      region.SetIndex(a, first);
      region.SetSize(a, static_cast<SizeValueType>(last - first + 1));
    }
    if (!region.Crop(image->GetLargestPossibleRegion()))
    {
      // Cannot happen with the click inside the image; keep the request valid anyway.
      region = image->GetLargestPossibleRegion();
      region.SetSize({ { 1, 1, 1 } });
    }
    image->SetRequestedRegion(region);
  };
  request(const_cast<InputImageType *>(this->GetInput()));
  request(const_cast<ClickMapImageType *>(this->GetClickMap()));
  request(const_cast<ClickMapImageType *>(this->GetNegativeClickMap()));
}

template<typename TInputImage, typename TOutputImage>
void
CoarseSegmentationFilter<TInputImage, TOutputImage>::GenerateData()
{
  this->AllocateOutputs();
  OutputImageType *         output = this->GetOutput();
  const InputImageType *    ct = this->GetInput();
  const ClickMapImageType * clickMap = this->GetClickMap();
  const ClickMapImageType * negativeMap = this->GetNegativeClickMap();
  output->FillBuffer(0);

  const auto model = this->ResolveModel();
  // A model with a negative click channel runs without negative clicks too: that channel then holds the encoding's
  // value of no click, as its training samples without negative clicks did (ClickMapValueWithoutClicks).
  const bool negativeChannel = negativeMap != nullptr || model->network->GetInputChannels() == 3;
  SegmentationModelSupport::CheckInputChannels(*model, negativeChannel ? 3 : 2,
                                               negativeChannel ? "CT, click map, negative click map" : "CT, click map",
                                               "coarse model");
  const auto & preprocessing = model->description.preprocessing;
  const float  noNegativeClick = negativeChannel && !negativeMap
                                   ? ClickMapValueWithoutClicks(SegmentationModelSupport::ClickEncodingOf(
                                       preprocessing.clickEncoding, "coarse model"))
                                   : 0.0f;
  m_DeviceUsed = SegmentationModelSupport::DeviceOf(*model).str();

  if constexpr (std::is_floating_point_v<typename InputImageType::PixelType>)
  {
    for (ImageRegionConstIterator<InputImageType> it(ct, ct->GetBufferedRegion()); !it.IsAtEnd(); ++it)
    {
      if (!std::isfinite(it.Get()))
      {
        itkDivAttentionInputError("CT",
                                  "voxel " << it.GetIndex() << " is not finite (" << it.Get() << "; NaN or infinite)");
      }
    }
  }

  const auto                 size = output->GetLargestPossibleRegion().GetSize();
  std::array<int64_t, 3>     patch{};
  std::array<int64_t, 3>     gridSize{};
  ContinuousIndex<double, 3> clickIndex;
  output->TransformPhysicalPointToContinuousIndex(m_Click, clickIndex);
  std::array<int64_t, 3> firstStart{};
  std::array<int64_t, 3> step{};
  for (unsigned int a = 0; a < 3; ++a)
  {
    patch[a] = preprocessing.patchSize[a];
    gridSize[a] = static_cast<int64_t>(size[a]);
    if (patch[a] % model->network->GetSizeDivisor() != 0)
    {
      itkDivAttentionInputError("coarse model", "patch size " << patch[a]
                                                              << " is not a multiple of the network's size divisor "
                                                              << model->network->GetSizeDivisor());
    }
    // The window centred on the click. A click on a voxel centre of a grid that the coarse grid shares (a CT at the
    // model's spacing, the grid clipped by the CT) falls exactly between two starts of an even window; the tie is
    // rounded up within StartTieTolerance of a voxel, so that the same click given as printed (9 digits) or through
    // another conversion (voxel index, RAS) runs the same window instead of one a voxel over.
    firstStart[a] = std::clamp<int64_t>(
      static_cast<int64_t>(std::floor(clickIndex[a] - 0.5 * (patch[a] - 1) + 0.5 + StartTieTolerance)), 0,
      gridSize[a] - patch[a]);
    step[a] = std::max<int64_t>(1, patch[a] / 2);
  }
  const auto tileStart = [&](unsigned int a, int64_t k)
  { return std::clamp<int64_t>(firstStart[a] + k * step[a], 0, gridSize[a] - patch[a]); };

  // nnU-Net's importance map: a Gaussian with sigma = 1/8 of the window, 1 at its centre.
  const auto gaussian = [&](unsigned int a)
  {
    const double       sigma = patch[a] / 8.0;
    const double       centre = 0.5 * (patch[a] - 1);
    std::vector<float> weights(static_cast<size_t>(patch[a]));
    for (int64_t i = 0; i < patch[a]; ++i)
    {
      weights[static_cast<size_t>(i)] =
        static_cast<float>(std::exp(-(i - centre) * (i - centre) / (2.0 * sigma * sigma)));
    }
    return weights;
  };
  const std::array<std::vector<float>, 3> importance{ { gaussian(0), gaussian(1), gaussian(2) } };

  // The output buffer accumulates the importance-weighted probabilities. The windows run always form a box of the
  // lattice (every round runs the whole box, which only grows), and the importance map is a product over axes, so the
  // summed weight at a voxel is the product of three per-axis sums: no weight image of the grid's size is needed.
  float *                           sum = output->GetBufferPointer();
  std::array<std::vector<float>, 3> axisWeight;
  const auto                        offsetOf = [&](int64_t x, int64_t y, int64_t z)
  { return static_cast<size_t>((z * gridSize[1] + y) * gridSize[0] + x); };
  const auto weightAt = [&](int64_t x, int64_t y, int64_t z)
  {
    return axisWeight[0][static_cast<size_t>(x)] * axisWeight[1][static_cast<size_t>(y)] *
           axisWeight[2][static_cast<size_t>(z)];
  };

  using InterpolatorType = LinearInterpolateImageFunction<InputImageType, double>;
  using MapInterpolatorType = LinearInterpolateImageFunction<ClickMapImageType, double>;
  auto ctInterpolator = InterpolatorType::New();
  ctInterpolator->SetInputImage(ct);
  auto clickInterpolator = MapInterpolatorType::New();
  clickInterpolator->SetInputImage(clickMap);
  typename MapInterpolatorType::Pointer negativeInterpolator;
  if (negativeMap)
  {
    negativeInterpolator = MapInterpolatorType::New();
    negativeInterpolator->SetInputImage(negativeMap);
  }
  // Clamped to the map's buffer: a distance map varies slowly, so its edge value is a fair stand-in outside.
  const auto clampedMapValue =
    [](const MapInterpolatorType * interpolator, const ClickMapImageType * map, ContinuousIndex<double, 3> index)
  {
    const auto & buffered = map->GetBufferedRegion();
    for (unsigned int a = 0; a < 3; ++a)
    {
      index[a] = std::clamp(index[a], static_cast<double>(buffered.GetIndex(a)),
                            static_cast<double>(buffered.GetIndex(a) + buffered.GetSize(a) - 1));
    }
    return interpolator->EvaluateAtContinuousIndex(index);
  };

  const int64_t voxels = patch[0] * patch[1] * patch[2];
  const auto    runWindow = [&](const std::array<int64_t, 3> & start)
  {
    // Output index -> CT continuous index is affine: map the window's first voxel and the three unit steps.
    const auto toInput = [&](int64_t x, int64_t y, int64_t z)
    {
      typename OutputImageType::IndexType index{ { start[0] + x, start[1] + y, start[2] + z } };
      PointType                           point;
      output->TransformIndexToPhysicalPoint(index, point);
      ContinuousIndex<double, 3> inputIndex;
      ct->TransformPhysicalPointToContinuousIndex(point, inputIndex);
      return inputIndex;
    };
    const auto origin = toInput(0, 0, 0);
    const auto dx = toInput(1, 0, 0) - origin;
    const auto dy = toInput(0, 1, 0) - origin;
    const auto dz = toInput(0, 0, 1) - origin;

    const int64_t channels = negativeChannel ? 3 : 2;
    auto          input = torch::empty({ 1, channels, patch[2], patch[1], patch[0] }, torch::kFloat32);
    float *       data = input.template data_ptr<float>();
    int64_t       n = 0;
    for (int64_t z = 0; z < patch[2]; ++z)
    {
      for (int64_t y = 0; y < patch[1]; ++y)
      {
        for (int64_t x = 0; x < patch[0]; ++x, ++n)
        {
          ContinuousIndex<double, 3> index;
          for (unsigned int a = 0; a < 3; ++a)
          {
            index[a] = origin[a] + x * dx[a] + y * dy[a] + z * dz[a];
          }
          data[n] = ctInterpolator->IsInsideBuffer(index)
                      ? static_cast<float>(ctInterpolator->EvaluateAtContinuousIndex(index))
                      : -1024.0f;
          data[voxels + n] = static_cast<float>(clampedMapValue(clickInterpolator, clickMap, index));
          if (negativeMap)
          {
            data[2 * voxels + n] = static_cast<float>(clampedMapValue(negativeInterpolator, negativeMap, index));
          }
          else if (negativeChannel)
          {
            data[2 * voxels + n] = noNegativeClick;
          }
        }
      }
    }
    using torch::indexing::Slice;
    input.index_put_({ Slice(), Slice(0, 1) }, SegmentationModelSupport::NormalizeIntensities(
                                                 input.index({ Slice(), Slice(0, 1) }), preprocessing));
    const auto probability = SegmentationModelSupport::Forward(*model, input, "coarse model");
    const auto values = probability.template accessor<float, 5>();
    for (int64_t z = 0; z < patch[2]; ++z)
    {
      for (int64_t y = 0; y < patch[1]; ++y)
      {
        for (int64_t x = 0; x < patch[0]; ++x)
        {
          const float w = importance[0][x] * importance[1][y] * importance[2][z];
          sum[offsetOf(start[0] + x, start[1] + y, start[2] + z)] += w * values[0][0][z][y][x];
        }
      }
    }
    ++m_NumberOfWindows;
    this->UpdateProgress(std::min(0.95f, 0.25f * m_NumberOfWindows));
  };

  // Whether the current blended prediction reaches the threshold anywhere on the plane index[axis] == plane of
  // the box [low, high).
  const auto faceTouches =
    [&](unsigned int axis, int64_t plane, const std::array<int64_t, 3> & low, const std::array<int64_t, 3> & high)
  {
    std::array<int64_t, 3> first = low;
    std::array<int64_t, 3> last = high;
    first[axis] = plane;
    last[axis] = plane + 1;
    for (int64_t z = first[2]; z < last[2]; ++z)
    {
      for (int64_t y = first[1]; y < last[1]; ++y)
      {
        for (int64_t x = first[0]; x < last[0]; ++x)
        {
          const float weight = weightAt(x, y, z);
          if (weight > 0.0f && sum[offsetOf(x, y, z)] >= m_GrowthThreshold * weight)
          {
            return true;
          }
        }
      }
    }
    return false;
  };

  m_NumberOfWindows = 0;
  std::set<std::array<int64_t, 3>> done;
  std::array<int64_t, 3>           kLow{ { 0, 0, 0 } };
  std::array<int64_t, 3>           kHigh{ { 0, 0, 0 } };
  for (;;)
  {
    for (int64_t kz = kLow[2]; kz <= kHigh[2]; ++kz)
    {
      for (int64_t ky = kLow[1]; ky <= kHigh[1]; ++ky)
      {
        for (int64_t kx = kLow[0]; kx <= kHigh[0]; ++kx)
        {
          const std::array<int64_t, 3> start{ { tileStart(0, kx), tileStart(1, ky), tileStart(2, kz) } };
          if (done.insert(start).second)
          {
            runWindow(start);
          }
        }
      }
    }
    // Per-axis weight sums of the box run so far (each distinct window start once, as the windows themselves).
    for (unsigned int a = 0; a < 3; ++a)
    {
      axisWeight[a].assign(static_cast<size_t>(gridSize[a]), 0.0f);
      std::set<int64_t> starts;
      for (int64_t k = kLow[a]; k <= kHigh[a]; ++k)
      {
        starts.insert(tileStart(a, k));
      }
      for (const int64_t first : starts)
      {
        for (int64_t i = 0; i < patch[a]; ++i)
        {
          axisWeight[a][static_cast<size_t>(first + i)] += importance[a][static_cast<size_t>(i)];
        }
      }
    }
    if (!m_GrowRegion)
    {
      break;
    }
    std::array<int64_t, 3> low{}, high{};
    for (unsigned int a = 0; a < 3; ++a)
    {
      low[a] = tileStart(a, kLow[a]);
      high[a] = tileStart(a, kHigh[a]) + patch[a];
    }
    bool grown = false;
    for (unsigned int a = 0; a < 3; ++a)
    {
      if (low[a] > 0 && faceTouches(a, low[a], low, high))
      {
        --kLow[a];
        grown = true;
      }
      if (high[a] < gridSize[a] && faceTouches(a, high[a] - 1, low, high))
      {
        ++kHigh[a];
        grown = true;
      }
    }
    if (!grown)
    {
      break;
    }
  }

  for (int64_t z = 0; z < gridSize[2]; ++z)
  {
    for (int64_t y = 0; y < gridSize[1]; ++y)
    {
      for (int64_t x = 0; x < gridSize[0]; ++x)
      {
        const float  weight = weightAt(x, y, z);
        const size_t offset = offsetOf(x, y, z);
        sum[offset] = weight > 0.0f ? sum[offset] / weight : 0.0f;
      }
    }
  }
  this->UpdateProgress(1.0f);
}

template<typename TInputImage, typename TOutputImage>
void
CoarseSegmentationFilter<TInputImage, TOutputImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "ModelFile: " << m_ModelFile << std::endl;
  os << indent << "Model: " << (m_Model ? "loaded" : "(none)") << std::endl;
  os << indent << "Device: " << m_Device << std::endl;
  os << indent << "Click: " << m_Click << std::endl;
  os << indent << "MaximumExtent: " << m_MaximumExtent << std::endl;
  os << indent << "GrowthThreshold: " << m_GrowthThreshold << std::endl;
  os << indent << "GrowRegion: " << m_GrowRegion << std::endl;
  os << indent << "WindowPlacement: " << m_WindowPlacement << std::endl;
  os << indent << "WindowsInsideImageUsed: " << m_WindowsInsideImageUsed << std::endl;
  os << indent << "FileModel: " << (m_FileModel ? m_FileModelKey : std::string("(none)")) << std::endl;
  os << indent << "NumberOfWindows: " << m_NumberOfWindows << std::endl;
  os << indent << "DeviceUsed: " << m_DeviceUsed << std::endl;
}
} // namespace itk

#endif
