#include "itkLabelMapCTPainter.h"

#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkMultiThreaderBase.h"
#include "itkPhantomRandom.h"
#include "itkSmoothingRecursiveGaussianImageFilter.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace itk
{
LabelMapCTPainter::LabelMapCTPainter() : m_Table(DefaultAbdominalTable())
{
}

LabelMapCTPainter::TableType
LabelMapCTPainter::DefaultAbdominalTable()
{
  // Non-contrast abdominal CT, HU: neighbours (spleen/stomach/duodenum/pancreas) deliberately close, as in patients.
  return { { 1, 50.0 }, { 2, 35.0 },  { 3, 35.0 },  { 4, 12.0 },  { 5, 40.0 },  { 6, 60.0 }, { 7, 38.0 }, { 8, 45.0 },
           { 9, 42.0 }, { 10, 42.0 }, { 11, 32.0 }, { 12, 32.0 }, { 13, 38.0 }, { 14, 8.0 }, { 15, 42.0 } };
}

void
LabelMapCTPainter::Update()
{
  if (m_Labels.IsNull())
  {
    itkExceptionMacro(<< "DivAttention: LabelMapCTPainter: no label map set");
  }
  const auto region = m_Labels->GetLargestPossibleRegion();
  if (m_Labels->GetBufferedRegion() != region)
  {
    itkExceptionMacro(<< "DivAttention: LabelMapCTPainter: the label map must be fully buffered (Update() it first)");
  }

  // The body: an axis-aligned (in physical x, y) elliptic cylinder around every labelled voxel, grown by the margin.
  double lo[2] = { 1e300, 1e300 }, hi[2] = { -1e300, -1e300 };
  size_t labelled = 0;
  for (ImageRegionConstIteratorWithIndex<LabelImageType> it(m_Labels, region); !it.IsAtEnd(); ++it)
  {
    if (it.Get() != 0)
    {
      Point<double, 3> p;
      m_Labels->TransformIndexToPhysicalPoint(it.GetIndex(), p);
      for (unsigned d = 0; d < 2; ++d)
      {
        lo[d] = std::min(lo[d], p[d]);
        hi[d] = std::max(hi[d], p[d]);
      }
      ++labelled;
    }
  }
  if (labelled == 0)
  {
    itkExceptionMacro(<< "DivAttention: LabelMapCTPainter: the label map has no labelled voxel");
  }
  const double cx = 0.5 * (lo[0] + hi[0]), cy = 0.5 * (lo[1] + hi[1]);
  // An ellipse through the corners of the box has semi-axes sqrt(2) x the half-widths.
  const double ax = std::sqrt(2.0) * 0.5 * (hi[0] - lo[0]) + m_BodyMargin;
  const double ay = std::sqrt(2.0) * 0.5 * (hi[1] - lo[1]) + m_BodyMargin;
  const double fat = 0.35 * m_BodyMargin, muscle = 0.25 * m_BodyMargin;

  using FloatImageType = Image<float, 3>;
  auto hu = FloatImageType::New();
  hu->CopyInformation(m_Labels);
  hu->SetRegions(region);
  hu->Allocate();
  const uint64_t seed = m_Seed;
  const double   sigma = m_TextureStandardDeviation;
  auto           texture = [&](const Point<double, 3> & p, uint64_t stream, double scale)
  { return sigma * PhantomRandom::SmoothNoise(seed, stream, p[0] / scale, p[1] / scale, p[2] / scale); };
  if (!(m_ClutterScale > 0.0))
  {
    itkExceptionMacro(<< "DivAttention: LabelMapCTPainter: ClutterScale must be > 0 mm, got " << m_ClutterScale);
  }
  // Clutter where the (about unit-variance Gaussian) smooth noise lies above its (1 - ClutterFraction) quantile.
  const double clutterFraction = m_ClutterFraction;
  double       clutterLevel = std::numeric_limits<double>::infinity();
  if (clutterFraction > 0.0)
  {
    double low = -8.0, high = 8.0;
    for (int k = 0; k < 60; ++k)
    {
      const double middle = 0.5 * (low + high);
      (0.5 * std::erfc(middle / std::sqrt(2.0)) > clutterFraction ? low : high) = middle;
    }
    clutterLevel = 0.5 * (low + high);
  }
  const double clutterScale = m_ClutterScale, clutterHU = m_ClutterHU;
  // Two octaves of smooth noise, the finer one on rotated axes, so the blobs are rounded rather than the lattice's
  // boxes; scaled back to about unit variance (1 + 0.5^2).
  auto clutterField = [&](const Point<double, 3> & p)
  {
    const double x = p[0] / clutterScale, y = p[1] / clutterScale, z = p[2] / clutterScale;
    const double coarse = PhantomRandom::SmoothNoise(seed, 14, x, y, z);
    const double fine =
      PhantomRandom::SmoothNoise(seed, 16, 1.41 * (x + y) + 0.3 * z, 1.41 * (y - x) + 0.5 * z, 2.0 * z - 0.4 * x);
    return (coarse + 0.5 * fine) / std::sqrt(1.25);
  };
  MultiThreaderBase::New()->ParallelizeImageRegion<3>(
    region,
    [&](const FloatImageType::RegionType & part)
    {
      for (ImageRegionIteratorWithIndex<FloatImageType> it(hu, part); !it.IsAtEnd(); ++it)
      {
        Point<double, 3> p;
        hu->TransformIndexToPhysicalPoint(it.GetIndex(), p);
        const uint16_t label = m_Labels->GetPixel(it.GetIndex());
        double         value;
        if (label != 0)
        {
          const auto found = m_Table.find(label);
          value = (found != m_Table.end() ? found->second : m_UnknownLabelHU) + texture(p, 100 + label, 10.0);
        }
        else
        {
          const double ex = (p[0] - cx) / ax, ey = (p[1] - cy) / ay;
          const double depth = (1.0 - std::sqrt(ex * ex + ey * ey)) * 0.5 * (ax + ay);
          if (depth < 0.0)
          {
            value = -1000.0;
          }
          else if (depth < fat)
          {
            value = -100.0 + texture(p, 11, 25.0);
          }
          else if (depth < fat + muscle)
          {
            value = 52.0 + texture(p, 12, 15.0);
          }
          else if (clutterField(p) > clutterLevel)
          {
            value = clutterHU + texture(p, 15, 10.0);
          }
          else
          {
            value = -70.0 + 2.0 * texture(p, 13, 12.0);
          }
        }
        it.Set(static_cast<float>(value));
      }
    },
    nullptr);

  using BlurType = SmoothingRecursiveGaussianImageFilter<FloatImageType, FloatImageType>;
  auto                     blur = BlurType::New();
  BlurType::SigmaArrayType sigmas;
  sigmas[0] = std::max(m_InPlaneBlurSigma, 1e-3);
  sigmas[1] = std::max(m_InPlaneBlurSigma, 1e-3);
  sigmas[2] = std::max(m_SliceBlurFraction * m_Labels->GetSpacing()[2], 1e-3);
  blur->SetInput(hu);
  blur->SetSigmaArray(sigmas);
  blur->Update();

  m_CT = CTImageType::New();
  m_CT->CopyInformation(m_Labels);
  m_CT->SetRegions(region);
  m_CT->Allocate();
  const float * in = blur->GetOutput()->GetBufferPointer();
  int16_t *     out = m_CT->GetBufferPointer();
  const double  noise = m_NoiseStandardDeviation;
  MultiThreaderBase::New()->ParallelizeArray(
    0, region.GetNumberOfPixels(),
    [&](SizeValueType i)
    {
      const double value = in[i] + noise * PhantomRandom::Normal(seed, 2, i);
      out[i] = static_cast<int16_t>(std::lround(std::clamp(value, -1024.0, 3071.0)));
    },
    nullptr);
  this->Modified();
}

void
LabelMapCTPainter::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Labels: " << m_Labels.GetPointer() << std::endl;
  os << indent << "Table entries: " << m_Table.size() << std::endl;
  os << indent << "UnknownLabelHU: " << m_UnknownLabelHU << std::endl;
  os << indent << "BodyMargin: " << m_BodyMargin << std::endl;
  os << indent << "Seed: " << m_Seed << std::endl;
  os << indent << "NoiseStandardDeviation: " << m_NoiseStandardDeviation << std::endl;
  os << indent << "TextureStandardDeviation: " << m_TextureStandardDeviation << std::endl;
  os << indent << "InPlaneBlurSigma: " << m_InPlaneBlurSigma << std::endl;
  os << indent << "SliceBlurFraction: " << m_SliceBlurFraction << std::endl;
  os << indent << "ClutterFraction: " << m_ClutterFraction << std::endl;
  os << indent << "ClutterHU: " << m_ClutterHU << std::endl;
  os << indent << "ClutterScale: " << m_ClutterScale << std::endl;
}

} // namespace itk
