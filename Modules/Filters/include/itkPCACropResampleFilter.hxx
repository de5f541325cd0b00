#ifndef itkPCACropResampleFilter_hxx
#define itkPCACropResampleFilter_hxx

#include "itkBoxPrompt.h"
#include "itkDivAttentionFilterUtilities.h"
#include "itkImageScanlineIterator.h"
#include "itkLinearInterpolateImageFunction.h"
#include "itkPCACropResampleFilter.h"
#include "vnl/algo/vnl_determinant.h"
#include "vnl/algo/vnl_symmetric_eigensystem.h"
#include "vnl/vnl_matrix.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <type_traits>

namespace itk
{
template<typename TInputImage, typename TMaskImage, typename TOutputImage>
PCACropResampleFilter<TInputImage, TMaskImage, TOutputImage>::PCACropResampleFilter()
{
  // Required unless a box places the cube (VerifyPreconditions).
  this->AddOptionalInputName("MaskImage", 1);
  m_OutputSize.Fill(96);
  m_Interpolator = LinearInterpolateImageFunction<TInputImage, double>::New();
  m_DefaultPixelValue = DivAttentionDetail::ConvertInterpolatedValue<OutputPixelType>(-1024.0);
  m_FallbackCenter.Fill(0.0);
  m_BoxCorner1.Fill(0.0);
  m_BoxCorner2.Fill(0.0);
  m_CropCenter.Fill(0.0);
  m_CropAxes.SetIdentity();
  m_PrincipalAxes.SetIdentity();
  m_PrincipalVariances.Fill(0.0);
  this->DynamicMultiThreadingOn();
}

template<typename TInputImage, typename TMaskImage, typename TOutputImage>
void
PCACropResampleFilter<TInputImage, TMaskImage, TOutputImage>::SetBox(const PointType & corner1,
                                                                     const PointType & corner2)
{
  if (!m_UseBox || corner1 != m_BoxCorner1 || corner2 != m_BoxCorner2)
  {
    m_UseBox = true;
    m_BoxCorner1 = corner1;
    m_BoxCorner2 = corner2;
    this->Modified();
  }
}

template<typename TInputImage, typename TMaskImage, typename TOutputImage>
void
PCACropResampleFilter<TInputImage, TMaskImage, TOutputImage>::RemoveBox()
{
  if (m_UseBox)
  {
    m_UseBox = false;
    this->Modified();
  }
}

template<typename TInputImage, typename TMaskImage, typename TOutputImage>
void
PCACropResampleFilter<TInputImage, TMaskImage, TOutputImage>::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if (m_UseBox)
  {
    for (const PointType * corner : { &m_BoxCorner1, &m_BoxCorner2 })
    {
      for (unsigned int d = 0; d < ImageDimension; ++d)
      {
        if (!std::isfinite((*corner)[d]))
        {
          itkDivAttentionInputError("Box", "corner " << *corner << " is not finite");
        }
      }
    }
  }
  else if (this->GetMaskImage() == nullptr)
  {
    itkDivAttentionInputError("MaskImage", "no mask and no box: one of them must place the crop");
  }
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    if (m_OutputSize[d] == 0)
    {
      itkDivAttentionInputError("OutputSize", "every size must be > 0, got " << m_OutputSize);
    }
  }
  if (!(m_MarginFactor > 0.0) || !std::isfinite(m_MarginFactor))
  {
    itkDivAttentionInputError("MarginFactor", "must be a finite number > 0, got " << m_MarginFactor);
  }
  if (!(m_MinimumSideLength >= 0.0) || !std::isfinite(m_MinimumSideLength))
  {
    itkDivAttentionInputError("MinimumSideLength", "must be a finite number >= 0 mm, got " << m_MinimumSideLength);
  }
  if (m_Interpolator.IsNull())
  {
    itkDivAttentionInputError("Interpolator", "no interpolator was set");
  }
  if (m_UseFallback)
  {
    if (!(m_FallbackSideLength > 0.0) || !std::isfinite(m_FallbackSideLength))
    {
      itkDivAttentionInputError("FallbackSideLength", "must be a finite number > 0 mm, got " << m_FallbackSideLength);
    }
    for (unsigned int d = 0; d < ImageDimension; ++d)
    {
      if (!std::isfinite(m_FallbackCenter[d]))
      {
        itkDivAttentionInputError("FallbackCenter", "is not finite: " << m_FallbackCenter);
      }
    }
  }
}

template<typename TInputImage, typename TMaskImage, typename TOutputImage>
void
PCACropResampleFilter<TInputImage, TMaskImage, TOutputImage>::GenerateOutputInformation()
{
  Superclass::GenerateOutputInformation(); // copies the CT's meta-data; the geometry is replaced below

  if (m_UseBox)
  {
    this->ComputeBoxGeometry();
  }
  else
  {
    // The geometry depends on the mask's pixels: bring the whole mask up to date now (AutoCropLabelMapFilter pattern).
    auto * mask = const_cast<MaskImageType *>(this->GetMaskImage());
    mask->UpdateOutputInformation();
    mask->SetRequestedRegionToLargestPossibleRegion();
    mask->PropagateRequestedRegion();
    mask->UpdateOutputData();

    this->ComputeCropGeometry();
  }

  OutputImageType *                     output = this->GetOutput();
  typename OutputImageType::SpacingType spacing;
  PointType                             origin = m_CropCenter;
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    spacing[d] = m_CropSideLength / static_cast<double>(m_OutputSize[d]);
  }
  // Voxel centres sit at -s/2 + (i + 1/2) * spacing along each cube axis.
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    const double along = -0.5 * m_CropSideLength + 0.5 * spacing[d];
    for (unsigned int r = 0; r < ImageDimension; ++r)
    {
      origin[r] += m_CropAxes[r][d] * along;
    }
  }
  output->SetLargestPossibleRegion(OutputImageRegionType(m_OutputSize));
  output->SetSpacing(spacing);
  output->SetOrigin(origin);
  output->SetDirection(m_CropAxes);
}

template<typename TInputImage, typename TMaskImage, typename TOutputImage>
void
PCACropResampleFilter<TInputImage, TMaskImage, TOutputImage>::ComputeCropGeometry()
{
  const MaskImageType * mask = this->GetMaskImage();
  using MaskPixelType = typename MaskImageType::PixelType;
  const auto region = mask->GetBufferedRegion();

  // Moments of the object voxels' indices, summed exactly in 64-bit integers (per row: count, sum x, sum x^2 along
  // the row, then combined with the row's other coordinates), then mapped to physical space once:
  // mean_p = origin + M mean_i, cov_p = M cov_i M^T with M = direction x spacing.
  struct Moments
  {
    int64_t count = 0;
    int64_t nans = 0;
    int64_t sum[ImageDimension] = {};
    int64_t products[ImageDimension][ImageDimension] = {};
  };
  Moments    total;
  std::mutex mutex;

  // For integer masks compare with the smallest integer >= threshold: an integer comparison vectorises.
  const double  threshold = m_MaskThreshold;
  MaskPixelType integerThreshold{};
  bool          everyValueIsObject = false;
  if constexpr (std::is_integral<MaskPixelType>::value)
  {
    const double ceiling = std::ceil(threshold);
    everyValueIsObject = ceiling <= static_cast<double>(NumericTraits<MaskPixelType>::NonpositiveMin());
    if (!everyValueIsObject && ceiling <= static_cast<double>(NumericTraits<MaskPixelType>::max()))
    {
      integerThreshold = static_cast<MaskPixelType>(ceiling);
    }
  }
  const bool thresholdAboveRange = std::is_integral<MaskPixelType>::value &&
                                   std::ceil(threshold) > static_cast<double>(NumericTraits<MaskPixelType>::max());

  const auto scan = [&](const typename MaskImageType::RegionType & piece)
  {
    Moments                                   local;
    ImageScanlineConstIterator<MaskImageType> it(mask, piece);
    const auto                                length = static_cast<int64_t>(piece.GetSize(0));
    while (!it.IsAtEnd())
    {
      const auto            index = it.GetIndex();
      const MaskPixelType * row = mask->GetBufferPointer() + mask->ComputeOffset(index);
      const int64_t         x0 = index[0] - region.GetIndex(0);
      int64_t               count = 0, sumX = 0, sumXX = 0, nans = 0;
      if constexpr (std::is_integral<MaskPixelType>::value)
      {
        // Most rows hold no object: a maximum over the row (vectorised) rules them out before the moment loop.
        MaskPixelType rowMaximum = row[0];
        for (int64_t t = 1; t < length; ++t)
        {
          rowMaximum = row[t] > rowMaximum ? row[t] : rowMaximum;
        }
        if (!thresholdAboveRange && (everyValueIsObject || rowMaximum >= integerThreshold))
        {
          for (int64_t t = 0; t < length; ++t)
          {
            const int64_t in = (everyValueIsObject || row[t] >= integerThreshold) ? 1 : 0;
            const int64_t x = x0 + t;
            count += in;
            sumX += in * x;
            sumXX += in * x * x;
          }
        }
      }
      else
      {
        for (int64_t t = 0; t < length; ++t)
        {
          const double  value = static_cast<double>(row[t]);
          const int64_t in = value >= threshold ? 1 : 0;
          const int64_t x = x0 + t;
          nans += (value != value) ? 1 : 0;
          count += in;
          sumX += in * x;
          sumXX += in * x * x;
        }
      }
      local.nans += nans;
      if (count > 0)
      {
        int64_t coordinate[ImageDimension];
        for (unsigned int d = 1; d < ImageDimension; ++d)
        {
          coordinate[d] = index[d] - region.GetIndex(d);
        }
        local.count += count;
        local.sum[0] += sumX;
        local.products[0][0] += sumXX;
        for (unsigned int d = 1; d < ImageDimension; ++d)
        {
          local.sum[d] += count * coordinate[d];
          local.products[0][d] += sumX * coordinate[d];
          for (unsigned int e = d; e < ImageDimension; ++e)
          {
            local.products[d][e] += count * coordinate[d] * coordinate[e];
          }
        }
      }
      it.NextLine();
    }
    const std::lock_guard<std::mutex> lock(mutex);
    total.count += local.count;
    total.nans += local.nans;
    for (unsigned int d = 0; d < ImageDimension; ++d)
    {
      total.sum[d] += local.sum[d];
      for (unsigned int e = d; e < ImageDimension; ++e)
      {
        total.products[d][e] += local.products[d][e];
      }
    }
  };
  auto * threader = this->GetMultiThreader();
  threader->SetNumberOfWorkUnits(this->GetNumberOfWorkUnits());
  threader->template ParallelizeImageRegion<ImageDimension>(region, scan, nullptr);

  if (total.nans > 0)
  {
    itkDivAttentionInputError("MaskImage", "the mask contains " << total.nans << " NaN voxel(s)");
  }
  m_NumberOfObjectVoxels = static_cast<SizeValueType>(total.count);
  m_UsedFallback = false;
  const DirectionType & imageAxes = this->GetInput()->GetDirection();
  if (total.count == 0)
  {
    if (!m_UseFallback)
    {
      itkDivAttentionInputError("MaskImage", "the mask is empty (no voxel >= "
                                               << m_MaskThreshold << "): cannot place the crop (see UseFallback)");
    }
    m_UsedFallback = true;
    m_CropCenter = m_FallbackCenter;
    m_CropSideLength = m_FallbackSideLength;
    m_LongestAxisLength = 0.0;
    m_PrincipalAxes = imageAxes;
    m_PrincipalVariances.Fill(0.0);
    m_CropAxes = imageAxes;
    return;
  }

  const double n = static_cast<double>(total.count);
  double       meanIndex[ImageDimension];
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    meanIndex[d] = static_cast<double>(total.sum[d]) / n;
  }
  vnl_matrix<double> indexCovariance(ImageDimension, ImageDimension);
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    for (unsigned int e = d; e < ImageDimension; ++e)
    {
      const double value = static_cast<double>(total.products[d][e]) / n - meanIndex[d] * meanIndex[e];
      indexCovariance(d, e) = value;
      indexCovariance(e, d) = value;
    }
  }
  const auto         matrix = DivAttentionDetail::IndexToPhysicalMatrix(mask);
  vnl_matrix<double> m(ImageDimension, ImageDimension);
  for (unsigned int r = 0; r < ImageDimension; ++r)
  {
    for (unsigned int c = 0; c < ImageDimension; ++c)
    {
      m(r, c) = matrix[r][c];
    }
  }
  const vnl_matrix<double> covariance = m * indexCovariance * m.transpose();

  for (unsigned int r = 0; r < ImageDimension; ++r)
  {
    double sum = mask->GetOrigin()[r];
    for (unsigned int c = 0; c < ImageDimension; ++c)
    {
      sum += matrix[r][c] * (meanIndex[c] + static_cast<double>(region.GetIndex(c)));
    }
    m_CropCenter[r] = sum;
  }

  // vnl orders eigenvalues ascending: take them from the top. Each axis's sign is fixed (largest component
  // positive) so the result does not depend on the solver, then the last axis is flipped if needed for det = +1.
  const vnl_symmetric_eigensystem<double> eigen(covariance);
  for (unsigned int k = 0; k < ImageDimension; ++k)
  {
    const unsigned int source = ImageDimension - 1 - k;
    m_PrincipalVariances[k] = std::max(0.0, eigen.get_eigenvalue(source));
    const auto   vector = eigen.get_eigenvector(source);
    unsigned int largest = 0;
    for (unsigned int r = 1; r < ImageDimension; ++r)
    {
      if (std::abs(vector[r]) > std::abs(vector[largest]))
      {
        largest = r;
      }
    }
    const double sign = vector[largest] < 0.0 ? -1.0 : 1.0;
    for (unsigned int r = 0; r < ImageDimension; ++r)
    {
      m_PrincipalAxes[r][k] = sign * vector[r];
    }
  }
  if (vnl_determinant(vnl_matrix<double>(m_PrincipalAxes.GetVnlMatrix().data_block(), ImageDimension, ImageDimension)) <
      0.0)
  {
    for (unsigned int r = 0; r < ImageDimension; ++r)
    {
      m_PrincipalAxes[r][ImageDimension - 1] *= -1.0;
    }
  }

  // A solid ellipsoid's variance along a semi-axis a is a^2 / 5, so its full longest axis is 2 sqrt(5 lambda_max).
  m_LongestAxisLength = 2.0 * std::sqrt(5.0 * m_PrincipalVariances[0]);
  m_CropSideLength = std::max(m_MarginFactor * m_LongestAxisLength, m_MinimumSideLength);
  if (!(m_CropSideLength > 0.0))
  {
    // A single-voxel object with MinimumSideLength 0: use one voxel's extent rather than a degenerate cube.
    m_CropSideLength = mask->GetSpacing().GetVnlVector().max_value();
  }
  m_CropAxes = (m_Axes == AxesEnum::Principal) ? m_PrincipalAxes : imageAxes;
}

template<typename TInputImage, typename TMaskImage, typename TOutputImage>
void
PCACropResampleFilter<TInputImage, TMaskImage, TOutputImage>::ComputeBoxGeometry()
{
  // The box's own sides along the CT's axes stand for the PCA's longest axis; the cube never cuts the box.
  const InputImageType * ct = this->GetInput();
  const auto             sides = BoxPrompt::Sides(ct, m_BoxCorner1, m_BoxCorner2);
  m_UsedFallback = false;
  m_NumberOfObjectVoxels = 0;
  m_PrincipalAxes = ct->GetDirection();
  m_PrincipalVariances.Fill(0.0);
  m_CropAxes = ct->GetDirection();
  m_CropCenter = BoxPrompt::Centre(m_BoxCorner1, m_BoxCorner2);
  m_LongestAxisLength = std::max({ sides[0], sides[1], sides[2] });
  m_CropSideLength = std::max({ m_MarginFactor * m_LongestAxisLength, m_MinimumSideLength, m_LongestAxisLength });
  if (!(m_CropSideLength > 0.0))
  {
    // Both corners in one point with MinimumSideLength 0: one voxel's extent rather than a degenerate cube.
    m_CropSideLength = ct->GetSpacing().GetVnlVector().max_value();
  }
}

template<typename TInputImage, typename TMaskImage, typename TOutputImage>
void
PCACropResampleFilter<TInputImage, TMaskImage, TOutputImage>::GenerateInputRequestedRegion()
{
  // No Superclass call: it would ask both inputs for the output's index region, which means nothing here.
  auto * mask = const_cast<MaskImageType *>(this->GetMaskImage());
  if (mask != nullptr)
  {
    mask->SetRequestedRegionToLargestPossibleRegion();
  }
  auto * input = const_cast<InputImageType *>(this->GetInput());
  if (input != nullptr)
  {
    const OutputImageType * output = this->GetOutput();
    input->SetRequestedRegion(DivAttentionDetail::InputRegionForOutputRegion(output, output->GetRequestedRegion(),
                                                                             input, m_Interpolator->GetRadius()));
  }
}

template<typename TInputImage, typename TMaskImage, typename TOutputImage>
void
PCACropResampleFilter<TInputImage, TMaskImage, TOutputImage>::BeforeThreadedGenerateData()
{
  m_Interpolator->SetInputImage(this->GetInput());
}

template<typename TInputImage, typename TMaskImage, typename TOutputImage>
void
PCACropResampleFilter<TInputImage, TMaskImage, TOutputImage>::DynamicThreadedGenerateData(
  const OutputImageRegionType & outputRegion)
{
  if (outputRegion.GetNumberOfPixels() == 0)
  {
    return;
  }
  OutputImageType *      output = this->GetOutput();
  const InputImageType * input = this->GetInput();
  const auto &           buffered = input->GetBufferedRegion();

  DivAttentionDetail::IndexToIndexAffine<ImageDimension> affine;
  affine.Compute(output, input);
  Vector<double, ImageDimension>          step;
  ContinuousIndex<double, ImageDimension> low, high;
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    step[d] = affine.matrix[d][0];
    // The interpolator's own bounds (ImageFunction::IsInsideBuffer): half a voxel beyond the buffered centres.
    low[d] = static_cast<double>(buffered.GetIndex(d)) - 0.5;
    high[d] = static_cast<double>(buffered.GetIndex(d) + static_cast<IndexValueType>(buffered.GetSize(d))) - 0.5;
  }
  const auto               length = static_cast<SizeValueType>(outputRegion.GetSize(0));
  const OutputPixelType    outside = m_DefaultPixelValue;
  const InterpolatorType * interpolator = m_Interpolator.GetPointer();

  ImageScanlineIterator<OutputImageType> it(output, outputRegion);
  while (!it.IsAtEnd())
  {
    const auto        base = affine.Map(it.GetIndex());
    OutputPixelType * out = &it.Value();
    const auto        run = DivAttentionDetail::InsideRun(interpolator, base, step, low, high, length);
    std::fill(out, out + run.first, outside);
    ContinuousIndex<double, ImageDimension> position;
    for (SizeValueType t = run.first; t < run.second; ++t)
    {
      for (unsigned int d = 0; d < ImageDimension; ++d)
      {
        position[d] = base[d] + static_cast<double>(t) * step[d];
      }
      out[t] = DivAttentionDetail::ConvertInterpolatedValue<OutputPixelType>(
        interpolator->EvaluateAtContinuousIndex(position));
    }
    std::fill(out + std::max(run.first, run.second), out + length, outside);
    it.NextLine();
  }
}

template<typename TInputImage, typename TMaskImage, typename TOutputImage>
void
PCACropResampleFilter<TInputImage, TMaskImage, TOutputImage>::AfterThreadedGenerateData()
{
  // Do not keep the CT alive through the interpolator.
  m_Interpolator->SetInputImage(nullptr);
}

template<typename TInputImage, typename TMaskImage, typename TOutputImage>
void
PCACropResampleFilter<TInputImage, TMaskImage, TOutputImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "OutputSize: " << m_OutputSize << std::endl;
  os << indent << "MaskThreshold: " << m_MaskThreshold << std::endl;
  os << indent << "MarginFactor: " << m_MarginFactor << std::endl;
  os << indent << "MinimumSideLength: " << m_MinimumSideLength << std::endl;
  os << indent << "Axes: " << m_Axes << std::endl;
  os << indent << "Interpolator: " << m_Interpolator.GetPointer() << std::endl;
  os << indent
     << "DefaultPixelValue: " << static_cast<typename NumericTraits<OutputPixelType>::PrintType>(m_DefaultPixelValue)
     << std::endl;
  os << indent << "UseFallback: " << m_UseFallback << std::endl;
  os << indent << "FallbackCenter: " << m_FallbackCenter << std::endl;
  os << indent << "FallbackSideLength: " << m_FallbackSideLength << std::endl;
  os << indent << "UseBox: " << m_UseBox << std::endl;
  os << indent << "BoxCorner1: " << m_BoxCorner1 << std::endl;
  os << indent << "BoxCorner2: " << m_BoxCorner2 << std::endl;
  os << indent << "CropCenter: " << m_CropCenter << std::endl;
  os << indent << "CropSideLength: " << m_CropSideLength << std::endl;
  os << indent << "CropAxes: " << m_CropAxes << std::endl;
  os << indent << "LongestAxisLength: " << m_LongestAxisLength << std::endl;
  os << indent << "PrincipalAxes: " << m_PrincipalAxes << std::endl;
  os << indent << "PrincipalVariances: " << m_PrincipalVariances << std::endl;
  os << indent << "NumberOfObjectVoxels: " << m_NumberOfObjectVoxels << std::endl;
  os << indent << "UsedFallback: " << m_UsedFallback << std::endl;
}
} // namespace itk

#endif
