#ifndef itkCoarseBandRefinementImageFilter_hxx
#define itkCoarseBandRefinementImageFilter_hxx

#include "itkImageRegionConstIterator.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkLinearInterpolateImageFunction.h"
#include "itkSignedMaurerDistanceMapImageFilter.h"

#include <algorithm>
#include <cmath>

namespace itk
{
template<typename TImage, typename TCoarseImage>
CoarseBandRefinementImageFilter<TImage, TCoarseImage>::CoarseBandRefinementImageFilter()
{
  this->AddRequiredInputName("CoarseMask");
}

template<typename TImage, typename TCoarseImage>
void
CoarseBandRefinementImageFilter<TImage, TCoarseImage>::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if (!(m_BandWidth >= 0.0) || !std::isfinite(m_BandWidth))
  {
    itkDivAttentionInputError("BandWidth", "must be a finite number >= 0 mm, got " << m_BandWidth);
  }
  if (!(m_Threshold > 0.0 && m_Threshold < 1.0))
  {
    itkDivAttentionInputError("Threshold", "must lie in (0, 1), got " << m_Threshold);
  }
}

template<typename TImage, typename TCoarseImage>
void
CoarseBandRefinementImageFilter<TImage, TCoarseImage>::GenerateInputRequestedRegion()
{
  Superclass::GenerateInputRequestedRegion();
  if (auto * input = const_cast<ImageType *>(this->GetInput()))
  {
    input->SetRequestedRegionToLargestPossibleRegion();
  }
  if (auto * coarse = const_cast<CoarseImageType *>(this->GetCoarseMask()))
  {
    coarse->SetRequestedRegionToLargestPossibleRegion();
  }
}

template<typename TImage, typename TCoarseImage>
void
CoarseBandRefinementImageFilter<TImage, TCoarseImage>::EnlargeOutputRequestedRegion(DataObject * output)
{
  Superclass::EnlargeOutputRequestedRegion(output);
  output->SetRequestedRegionToLargestPossibleRegion();
}

template<typename TImage, typename TCoarseImage>
void
CoarseBandRefinementImageFilter<TImage, TCoarseImage>::GenerateData()
{
  this->AllocateOutputs();
  const ImageType *       refined = this->GetInput();
  const CoarseImageType * coarse = this->GetCoarseMask();
  ImageType *             output = this->GetOutput();
  const auto              region = refined->GetLargestPossibleRegion();

  // The coarse mask on the patch grid: linear interpolation at each patch voxel's centre, nothing outside its grid.
  using MaskType = Image<uint8_t, 3>;
  auto mask = MaskType::New();
  mask->CopyInformation(refined);
  mask->SetRegions(region);
  mask->Allocate();
  auto interpolator = LinearInterpolateImageFunction<CoarseImageType, double>::New();
  interpolator->SetInputImage(coarse);
  size_t objectVoxels = 0;
  for (ImageRegionIteratorWithIndex<MaskType> it(mask, region); !it.IsAtEnd(); ++it)
  {
    typename ImageType::PointType point;
    refined->TransformIndexToPhysicalPoint(it.GetIndex(), point);
    const auto index = coarse->template TransformPhysicalPointToContinuousIndex<double>(point);
    const bool inside =
      interpolator->IsInsideBuffer(index) && interpolator->EvaluateAtContinuousIndex(index) >= m_Threshold;
    it.Set(inside ? 1 : 0);
    objectVoxels += inside ? 1 : 0;
  }
  m_CoarseMaskIsEmpty = objectVoxels == 0;
  m_RefinementRejected = false;
  if (m_CoarseMaskIsEmpty)
  {
    ImageRegionConstIterator<ImageType> in(refined, region);
    for (ImageRegionIterator<ImageType> out(output, region); !out.IsAtEnd(); ++in, ++out)
    {
      out.Set(in.Get());
    }
    return;
  }

  // Signed distance in mm (negative inside) between voxel centres: Maurer's map is 0 on the object's border voxels
  // and the distance to them elsewhere, so the border surface lies half a voxel outside the zero level. Half the
  // smallest spacing is added to both sides' distances to measure from that surface.
  using DistanceType = Image<float, 3>;
  auto distance = SignedMaurerDistanceMapImageFilter<MaskType, DistanceType>::New();
  distance->SetInput(mask);
  distance->SetUseImageSpacing(true);
  distance->SetSquaredDistance(false);
  distance->SetInsideIsPositive(false);
  distance->SetBackgroundValue(0);
  distance->SetNumberOfWorkUnits(this->GetNumberOfWorkUnits());
  distance->Update();
  const double halfVoxel = 0.5 * refined->GetSpacing().GetVnlVector().min_value();

  ImageRegionConstIterator<ImageType>    in(refined, region);
  ImageRegionConstIterator<DistanceType> d(distance->GetOutput(), region);
  ImageRegionConstIterator<MaskType>     m(mask, region);
  size_t                                 keptVoxels = 0;
  for (ImageRegionIterator<ImageType> out(output, region); !out.IsAtEnd(); ++in, ++d, ++m, ++out)
  {
    const double fromBorder = std::abs(static_cast<double>(d.Get())) + (m.Get() != 0 ? halfVoxel : -halfVoxel);
    if (fromBorder > m_BandWidth)
    {
      out.Set(m.Get() != 0 ? 1 : 0);
    }
    else
    {
      out.Set(in.Get());
    }
    keptVoxels += out.Get() >= m_Threshold ? 1 : 0;
  }
  // A refinement that throws most of the coarse object away disagrees with stage 1 rather than refining it.
  if (static_cast<double>(keptVoxels) < m_MinimumKeptFraction * static_cast<double>(objectVoxels))
  {
    m_RefinementRejected = true;
    ImageRegionConstIterator<MaskType> coarseMask(mask, region);
    for (ImageRegionIterator<ImageType> out(output, region); !out.IsAtEnd(); ++coarseMask, ++out)
    {
      out.Set(coarseMask.Get() != 0 ? 1 : 0);
    }
  }
}

template<typename TImage, typename TCoarseImage>
void
CoarseBandRefinementImageFilter<TImage, TCoarseImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Threshold: " << m_Threshold << std::endl;
  os << indent << "BandWidth: " << m_BandWidth << std::endl;
  os << indent << "MinimumKeptFraction: " << m_MinimumKeptFraction << std::endl;
  os << indent << "CoarseMaskIsEmpty: " << m_CoarseMaskIsEmpty << std::endl;
  os << indent << "RefinementRejected: " << m_RefinementRejected << std::endl;
}
} // namespace itk

#endif
