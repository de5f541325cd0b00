#include "itkCTPhantomGenerator.h"

#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkMultiThreaderBase.h"
#include "itkPhantomRandom.h"
#include "itkSmoothingRecursiveGaussianImageFilter.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace itk
{
namespace
{
using Vec3 = std::array<double, 3>;

Vec3
Sub(const Vec3 & a, const Vec3 & b)
{
  return { a[0] - b[0], a[1] - b[1], a[2] - b[2] };
}
double
Dot(const Vec3 & a, const Vec3 & b)
{
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}
double
Norm(const Vec3 & a)
{
  return std::sqrt(Dot(a, a));
}

/** A smooth closed surface: an ellipsoid (centre, rotation, semi-axes) whose normalised radius is perturbed by a few
 * plane waves. Inside where Evaluate() < 0. */
struct DeformedEllipsoid
{
  Vec3                  center{};
  std::array<Vec3, 3>   axes{};     // unit vectors of the ellipsoid's axes
  Vec3                  semiAxes{}; // mm
  std::array<Vec3, 4>   waveDirection{};
  std::array<double, 4> waveFrequency{}; // cycles per mean radius
  std::array<double, 4> wavePhase{};
  double                amplitude = 0.0;
  double                bound = 0.0; // no point farther than this from the centre is inside

  void
  Randomize(PhantomRandom & random, double deformation, double frequencyScale)
  {
    amplitude = deformation;
    for (size_t w = 0; w < 4; ++w)
    {
      waveDirection[w] = random.UnitVector();
      waveFrequency[w] = frequencyScale * random.Uniform(0.4, 1.2);
      wavePhase[w] = random.Uniform(0.0, 2.0 * M_PI);
    }
    Finish();
  }

  void
  Finish()
  {
    bound = std::max({ semiAxes[0], semiAxes[1], semiAxes[2] }) * (1.0 + 2.0 * amplitude + 0.05) + 1.0;
  }

  double
  MeanRadius() const
  {
    return (semiAxes[0] + semiAxes[1] + semiAxes[2]) / 3.0;
  }

  double
  MinimumSemiAxis() const
  {
    return std::min({ semiAxes[0], semiAxes[1], semiAxes[2] });
  }

  double
  Evaluate(const Vec3 & p) const
  {
    const Vec3 d = Sub(p, center);
    if (Norm(d) > bound)
    {
      return 1.0;
    }
    double r2 = 0.0;
    for (size_t a = 0; a < 3; ++a)
    {
      const double q = Dot(d, axes[a]) / semiAxes[a];
      r2 += q * q;
    }
    double       perturbation = 0.0;
    const double mean = MeanRadius();
    for (size_t w = 0; w < 4; ++w)
    {
      perturbation += std::sin(2.0 * M_PI * waveFrequency[w] * Dot(d, waveDirection[w]) / mean + wavePhase[w]);
    }
    return std::sqrt(r2) - 1.0 + amplitude * perturbation / 2.0; // |perturbation| <= 4: at most 2 x amplitude
  }

  bool
  Contains(const Vec3 & p) const
  {
    return Evaluate(p) < 0.0;
  }
};

/** Axes rotated by small random angles about each axis. */
std::array<Vec3, 3>
RandomAxes(PhantomRandom & random, double maximumDegrees)
{
  const double a = random.Uniform(-1, 1) * maximumDegrees * M_PI / 180.0;
  const double b = random.Uniform(-1, 1) * maximumDegrees * M_PI / 180.0;
  const double c = random.Uniform(-1, 1) * maximumDegrees * M_PI / 180.0;
  const double ca = std::cos(a), sa = std::sin(a), cb = std::cos(b), sb = std::sin(b), cc = std::cos(c),
               sc = std::sin(c);
  // R = Rz(a) * Ry(b) * Rx(c); its columns are the rotated axes.
  const double        R[3][3] = { { ca * cb, ca * sb * sc - sa * cc, ca * sb * cc + sa * sc },
                                  { sa * cb, sa * sb * sc + ca * cc, sa * sb * cc - ca * sc },
                                  { -sb, cb * sc, cb * cc } };
  std::array<Vec3, 3> axes;
  for (size_t col = 0; col < 3; ++col)
  {
    axes[col] = { R[0][col], R[1][col], R[2][col] };
  }
  return axes;
}

struct Organ
{
  DeformedEllipsoid shape;
  uint8_t           label = 0;
  double            hu = 0.0;
  std::string       name;
};

struct Lesion
{
  DeformedEllipsoid shape;
  double            hu = 0.0;
  double            diameter = 0.0;
  uint16_t          instance = 0;
  int               host = -1; // index into organs; -1 for a nodule in fat
};

// Nominal tissue attenuation, HU (non-contrast abdominal CT): neighbours that matter are close on purpose.
constexpr double kAirHU = -1000.0;
constexpr double kSubcutaneousFatHU = -100.0;
constexpr double kMuscleHU = 52.0;
constexpr double kVisceralHU = -70.0; // mesenteric fat with vessels and bowel, averaged
constexpr double kLungHU = -850.0;
constexpr double kCancellousBoneHU = 260.0;
constexpr double kCorticalBoneHU = 650.0;
constexpr double kRibHU = 480.0;
constexpr double kBowelHU = 38.0;
constexpr double kNoduleHU = 38.0;
} // namespace

CTPhantomGenerator::CTPhantomGenerator()
{
  m_Size.Fill(96);
  m_Spacing[0] = 3.5;
  m_Spacing[1] = 3.5;
  m_Spacing[2] = 5.0;
  m_Direction.SetIdentity();
  m_Center[0] = 0.0;
  m_Center[1] = 10.0;
  m_Center[2] = 0.0;
}

void
CTPhantomGenerator::Update()
{
  for (unsigned d = 0; d < 3; ++d)
  {
    if (m_Size[d] == 0)
    {
      itkExceptionMacro(<< "DivAttention: phantom size " << m_Size << " has an empty axis");
    }
    if (!(m_Spacing[d] > 0.0) || !std::isfinite(m_Spacing[d]))
    {
      itkExceptionMacro(<< "DivAttention: phantom spacing " << m_Spacing << " must be positive and finite");
    }
  }
  if (std::abs(vnl_determinant(m_Direction.GetVnlMatrix())) < 1e-6)
  {
    itkExceptionMacro(<< "DivAttention: phantom direction matrix is singular");
  }

  PhantomRandom random(m_Seed, /*stream=*/1);

  // ---- Anatomy, jittered per seed --------------------------------------------------------------------------------
  const double bodyA = 160.0 * random.Uniform(0.9, 1.1); // x semi-axis of the body ellipse, mm
  const double bodyB = 115.0 * random.Uniform(0.9, 1.1); // y semi-axis
  const double bodyY = 10.0;
  const double fatThickness = random.Uniform(12.0, 28.0);
  const double muscleThickness = random.Uniform(8.0, 14.0);

  std::vector<Organ> organs;
  auto               addOrgan = [&](const std::string & name, uint8_t label, double hu, Vec3 center, Vec3 semiAxes)
  {
    Organ organ;
    organ.name = name;
    organ.label = label;
    organ.hu = hu + random.Uniform(-6.0, 6.0);
    for (size_t d = 0; d < 3; ++d)
    {
      organ.shape.center[d] = center[d] + random.Uniform(-8.0, 8.0);
      organ.shape.semiAxes[d] = semiAxes[d] * random.Uniform(0.88, 1.12);
    }
    organ.shape.axes = RandomAxes(random, 12.0);
    organ.shape.Randomize(random, m_ShapeDeformation, 1.0);
    organs.push_back(organ);
  };
  addOrgan("liver", LabelLiver, 62.0, { -65.0, 5.0, 45.0 }, { 85.0, 75.0, 70.0 });
  addOrgan("spleen", LabelSpleen, 50.0, { 95.0, 45.0, 55.0 }, { 30.0, 50.0, 55.0 });
  addOrgan("kidney_right", LabelKidneyRight, 36.0, { -72.0, 62.0, -35.0 }, { 28.0, 30.0, 55.0 });
  addOrgan("kidney_left", LabelKidneyLeft, 36.0, { 72.0, 62.0, -25.0 }, { 28.0, 30.0, 55.0 });
  // The stomach touches the spleen on its anterior-medial side at nearly the spleen's HU.
  {
    // A copy, not a reference into `organs`: addOrgan's push_back may reallocate the vector (AddressSanitizer found
    // the stomach's centre read from the freed block).
    const DeformedEllipsoid spleen = organs[1].shape;
    const Vec3              towards = { -0.6, -0.8, 0.0 };
    const double            stomachRadius = 40.0;
    const double            reach = 0.5 * (spleen.semiAxes[0] + spleen.semiAxes[1]) + stomachRadius;
    addOrgan(
      "stomach", LabelStomach, 47.0,
      { spleen.center[0] + 0.92 * reach * towards[0], spleen.center[1] + 0.92 * reach * towards[1], spleen.center[2] },
      { 45.0, stomachRadius, 60.0 });
    organs.back().shape.center = { spleen.center[0] + 0.92 * reach * towards[0],
                                   spleen.center[1] + 0.92 * reach * towards[1], spleen.center[2] };
  }
  // Unlabelled bowel loops pressed against each kidney's anterior-lateral side, at the kidneys' HU.
  std::vector<DeformedEllipsoid> bowel;
  for (size_t k : { size_t{ 2 }, size_t{ 3 } })
  {
    const auto &      kidney = organs[k].shape;
    DeformedEllipsoid loop;
    const double      side = kidney.center[0] < 0 ? -1.0 : 1.0;
    loop.semiAxes = { 22.0, 18.0, 35.0 };
    loop.center = { kidney.center[0] + side * 0.2 * kidney.semiAxes[0],
                    kidney.center[1] - 0.85 * (kidney.semiAxes[1] + loop.semiAxes[1]),
                    kidney.center[2] + random.Uniform(-15.0, 15.0) };
    loop.axes = RandomAxes(random, 20.0);
    loop.Randomize(random, 0.1, 1.5);
    bowel.push_back(loop);
  }

  // Lesions: inside organs (liver most often), placed off the organ's centre so that the organ's click stays on the
  // organ, and not overlapping each other.
  std::vector<Lesion> lesions;
  const double        logMin = std::log(std::max(1.0, m_MinimumLesionDiameter));
  for (unsigned n = 0; n < m_NumberOfOrganLesions; ++n)
  {
    for (int attempt = 0; attempt < 50; ++attempt)
    {
      const double pick = random.Uniform(0.0, 1.0);
      const int    host = pick < 0.5 ? 0 : (pick < 0.7 ? 1 : (pick < 0.85 ? 2 : 3));
      const auto & hostShape = organs[static_cast<size_t>(host)].shape;
      const double largest = std::min(m_MaximumLesionDiameter, 0.7 * hostShape.MinimumSemiAxis());
      if (largest < m_MinimumLesionDiameter)
      {
        continue;
      }
      const double diameter = std::exp(random.Uniform(logMin, std::log(largest)));
      const double radius = diameter / 2.0;
      // Normalised distance from the host centre, leaving room for the lesion and the host's own deformation.
      const double room = 1.0 - radius / hostShape.MinimumSemiAxis() - 2.5 * m_ShapeDeformation;
      if (room <= 0.3)
      {
        continue;
      }
      const double t = random.Uniform(0.3, room);
      const Vec3   u = random.UnitVector();
      Lesion       lesion;
      for (size_t d = 0; d < 3; ++d)
      {
        lesion.shape.center[d] = hostShape.center[d];
        for (size_t a = 0; a < 3; ++a)
        {
          lesion.shape.center[d] += t * u[a] * hostShape.semiAxes[a] * hostShape.axes[a][d];
        }
        lesion.shape.semiAxes[d] = radius * random.Uniform(0.8, 1.15);
      }
      bool overlaps = false;
      for (const auto & other : lesions)
      {
        overlaps = overlaps || Norm(Sub(other.shape.center, lesion.shape.center)) <
                                 other.diameter / 2.0 + radius + 4.0 + 2.0 * m_ShapeDeformation * radius;
      }
      if (overlaps)
      {
        continue;
      }
      lesion.shape.axes = RandomAxes(random, 90.0);
      lesion.shape.Randomize(random, random.Uniform(0.08, 0.2), 2.0); // irregular borders: stronger, finer waves
      const double hostHU = organs[static_cast<size_t>(host)].hu;
      lesion.hu = random.Uniform(0.0, 1.0) < 0.65 ? hostHU - random.Uniform(25.0, 45.0)  // hypodense
                                                  : hostHU + random.Uniform(35.0, 70.0); // hyperdense
      lesion.diameter = diameter;
      lesion.host = host;
      lesion.instance = static_cast<uint16_t>(lesions.size() + 1);
      lesions.push_back(lesion);
      break;
    }
  }
  // Lymph-node-like nodules in the visceral fat (small, soft-tissue HU against fat), away from organs.
  for (unsigned n = 0; n < m_NumberOfNodules; ++n)
  {
    for (int attempt = 0; attempt < 100; ++attempt)
    {
      const double diameter = std::exp(random.Uniform(logMin, std::log(std::max(m_MinimumLesionDiameter, 18.0))));
      const Vec3   c = { random.Uniform(-0.55, 0.55) * bodyA, bodyY + random.Uniform(-0.55, 0.3) * bodyB,
                         random.Uniform(-90.0, 40.0) };
      bool         clear = true;
      for (const auto & organ : organs)
      {
        clear = clear && organ.shape.Evaluate(c) > 0.35;
      }
      for (const auto & loop : bowel)
      {
        clear = clear && loop.Evaluate(c) > 0.5;
      }
      for (const auto & other : lesions)
      {
        clear = clear && Norm(Sub(other.shape.center, c)) > other.diameter / 2.0 + diameter / 2.0 + 6.0;
      }
      if (!clear)
      {
        continue;
      }
      Lesion nodule;
      nodule.shape.center = c;
      nodule.shape.semiAxes = { diameter / 2.0, diameter / 2.0 * random.Uniform(0.75, 1.0), diameter / 2.0 };
      nodule.shape.axes = RandomAxes(random, 90.0);
      nodule.shape.Randomize(random, 0.05, 1.0);
      nodule.hu = kNoduleHU + random.Uniform(-5.0, 10.0);
      nodule.diameter = diameter;
      nodule.instance = static_cast<uint16_t>(lesions.size() + 1);
      lesions.push_back(nodule);
      break;
    }
  }

  // ---- The grid ----------------------------------------------------------------------------------------------------
  using FloatImageType = Image<float, 3>;
  auto hu = FloatImageType::New();
  hu->SetRegions(m_Size);
  hu->SetSpacing(m_Spacing);
  hu->SetDirection(m_Direction);
  PointType origin = m_Center;
  for (unsigned r = 0; r < 3; ++r)
  {
    for (unsigned c = 0; c < 3; ++c)
    {
      origin[r] -= m_Direction[r][c] * 0.5 * static_cast<double>(m_Size[c] - 1) * m_Spacing[c];
    }
  }
  hu->SetOrigin(origin);
  hu->Allocate();
  m_Labels = LabelImageType::New();
  m_Labels->CopyInformation(hu);
  m_Labels->SetRegions(hu->GetLargestPossibleRegion());
  m_Labels->Allocate();
  m_Instances = InstanceImageType::New();
  m_Instances->CopyInformation(hu);
  m_Instances->SetRegions(hu->GetLargestPossibleRegion());
  m_Instances->Allocate();

  const uint64_t textureSeed = m_Seed;
  const double   textureSigma = m_TextureStandardDeviation;
  auto           texture = [&](const Vec3 & p, uint64_t stream, double scale)
  { return textureSigma * PhantomRandom::SmoothNoise(textureSeed, stream, p[0] / scale, p[1] / scale, p[2] / scale); };

  // ---- Voxel by voxel, in parallel; each voxel depends only on its own physical point -----------------------------
  auto paint = [&](const FloatImageType::RegionType & region)
  {
    ImageRegionIteratorWithIndex<FloatImageType> it(hu, region);
    for (; !it.IsAtEnd(); ++it)
    {
      PointType physical;
      hu->TransformIndexToPhysicalPoint(it.GetIndex(), physical);
      const Vec3 p = { physical[0], physical[1], physical[2] };
      double     value = kAirHU;
      uint8_t    label = LabelBackground;
      uint16_t   instance = 0;

      // Body cross-section: an ellipse whose size varies slowly along z.
      const double zScale = 1.0 + 0.05 * std::sin(p[2] / 90.0);
      const double ex = p[0] / (bodyA * zScale), ey = (p[1] - bodyY) / (bodyB * zScale);
      const double bodyRadius = std::sqrt(ex * ex + ey * ey); // 1 on the skin
      const double meanSemi = 0.5 * (bodyA + bodyB) * zScale;
      const double depth = (1.0 - bodyRadius) * meanSemi; // approximate depth below the skin, mm
      if (depth >= 0.0)
      {
        value = kSubcutaneousFatHU + texture(p, 11, 25.0);
        if (depth > fatThickness)
        {
          value = kMuscleHU + texture(p, 12, 15.0);
        }
        if (depth > fatThickness + muscleThickness)
        {
          value = kVisceralHU + 2.0 * texture(p, 13, 12.0);
          // Lungs fill the upper chest, each side of the mediastinum.
          const double zLung = p[2] - 110.0;
          for (const double side : { -1.0, 1.0 })
          {
            const double lx = (p[0] - side * 0.48 * bodyA) / (0.38 * bodyA), ly = (p[1] - bodyY) / (0.7 * bodyB);
            const double lz = zLung / 70.0;
            if (lx * lx + ly * ly + (lz < 0 ? lz * lz : 0.0) < 1.0)
            {
              value = kLungHU + 3.0 * texture(p, 14, 20.0);
            }
          }
        }
        // Vertebral column: a cylinder of cancellous bone with a cortical shell, behind the organs.
        const double vx = p[0], vy = p[1] - (bodyY + 0.62 * bodyB);
        const double vr = std::sqrt(vx * vx + vy * vy);
        if (vr < 21.0)
        {
          value = vr > 17.5 ? kCorticalBoneHU : kCancellousBoneHU + texture(p, 15, 6.0) * 4.0;
        }
        // Ribs: thin bands just inside the muscle wall every 28 mm in z, above the kidneys.
        const double ribDepth = depth - fatThickness - 0.5 * muscleThickness;
        const double ribPhase = std::fmod(p[2] + 1000.0, 28.0);
        if (p[2] > -30.0 && std::abs(ribDepth) < 4.0 && ribPhase < 8.0 && ey < 0.55)
        {
          value = kRibHU;
        }
        if (depth > fatThickness + muscleThickness)
        {
          for (const auto & loop : bowel)
          {
            if (loop.Contains(p))
            {
              value = kBowelHU + texture(p, 16, 8.0);
            }
          }
          for (size_t o = 0; o < organs.size(); ++o)
          {
            if (organs[o].shape.Contains(p))
            {
              value = organs[o].hu + texture(p, 20 + o, 10.0);
              label = organs[o].label;
            }
          }
          for (const auto & lesion : lesions)
          {
            if (lesion.shape.Contains(p))
            {
              value = lesion.hu + 1.5 * texture(p, 40 + lesion.instance, 4.0);
              label = LabelLesion;
              instance = lesion.instance;
            }
          }
        }
      }
      it.Set(static_cast<float>(value));
      m_Labels->SetPixel(it.GetIndex(), label);
      m_Instances->SetPixel(it.GetIndex(), instance);
    }
  };
  MultiThreaderBase::New()->ParallelizeImageRegion<3>(hu->GetLargestPossibleRegion(), paint, nullptr);

  // ---- Scanner: point spread function (partial volume) and noise ----------------------------------------------------
  using BlurType = SmoothingRecursiveGaussianImageFilter<FloatImageType, FloatImageType>;
  auto                     blur = BlurType::New();
  BlurType::SigmaArrayType sigma;
  sigma[0] = std::max(m_InPlaneBlurSigma, 1e-3);
  sigma[1] = std::max(m_InPlaneBlurSigma, 1e-3);
  sigma[2] = std::max(m_SliceBlurFraction * m_Spacing[2], 1e-3);
  blur->SetInput(hu);
  blur->SetSigmaArray(sigma);
  blur->Update();
  FloatImageType::Pointer blurred = blur->GetOutput();

  m_CT = CTImageType::New();
  m_CT->CopyInformation(hu);
  m_CT->SetRegions(hu->GetLargestPossibleRegion());
  m_CT->Allocate();
  const size_t   count = hu->GetLargestPossibleRegion().GetNumberOfPixels();
  const float *  in = blurred->GetBufferPointer();
  int16_t *      out = m_CT->GetBufferPointer();
  const double   noise = m_NoiseStandardDeviation;
  const uint64_t seed = m_Seed;
  MultiThreaderBase::New()->ParallelizeArray(
    0, count,
    [&](SizeValueType i)
    {
      const double value = in[i] + noise * PhantomRandom::Normal(seed, 2, i);
      out[i] = static_cast<int16_t>(std::lround(std::clamp(value, -1024.0, 3071.0)));
    },
    nullptr);

  // ---- The objects, with clicks that lie inside them on this grid -------------------------------------------------
  m_Objects.clear();
  auto describe =
    [&](const std::string & name, uint8_t label, uint16_t instance, bool isLesion, const Vec3 & center, double diameter)
  {
    PhantomObject object;
    object.name = name;
    object.label = label;
    object.instance = instance;
    object.isLesion = isLesion;
    object.diameter = diameter;
    auto belongs = [&](const LabelImageType::IndexType & index)
    { return m_Labels->GetPixel(index) == label && (!isLesion || m_Instances->GetPixel(index) == instance); };
    // Count voxels and find the centroid on the grid.
    double                                            sum[3] = { 0, 0, 0 };
    ImageRegionConstIteratorWithIndex<LabelImageType> it(m_Labels, m_Labels->GetLargestPossibleRegion());
    for (; !it.IsAtEnd(); ++it)
    {
      if (belongs(it.GetIndex()))
      {
        ++object.voxels;
        for (unsigned d = 0; d < 3; ++d)
        {
          sum[d] += static_cast<double>(it.GetIndex()[d]);
        }
      }
    }
    if (object.voxels == 0)
    {
      return; // the object lies outside this grid
    }
    // The click: the shape's centre if it falls on the object, else the object's voxel nearest its centroid.
    PointType centerPoint;
    centerPoint[0] = center[0];
    centerPoint[1] = center[1];
    centerPoint[2] = center[2];
    LabelImageType::IndexType centerIndex;
    if (m_Labels->TransformPhysicalPointToIndex(centerPoint, centerIndex) && belongs(centerIndex))
    {
      object.click = centerPoint;
    }
    else
    {
      double                    best = std::numeric_limits<double>::max();
      LabelImageType::IndexType bestIndex{};
      for (it.GoToBegin(); !it.IsAtEnd(); ++it)
      {
        if (belongs(it.GetIndex()))
        {
          double distance = 0.0;
          for (unsigned d = 0; d < 3; ++d)
          {
            const double delta =
              (static_cast<double>(it.GetIndex()[d]) - sum[d] / static_cast<double>(object.voxels)) * m_Spacing[d];
            distance += delta * delta;
          }
          if (distance < best)
          {
            best = distance;
            bestIndex = it.GetIndex();
          }
        }
      }
      m_Labels->TransformIndexToPhysicalPoint(bestIndex, object.click);
    }
    m_Objects.push_back(object);
  };
  for (const auto & organ : organs)
  {
    const double longest = std::max({ organ.shape.semiAxes[0], organ.shape.semiAxes[1], organ.shape.semiAxes[2] });
    describe(organ.name, organ.label, 0, false, organ.shape.center, 2.0 * longest);
  }
  for (const auto & lesion : lesions)
  {
    describe("lesion-" + std::to_string(lesion.instance), LabelLesion, lesion.instance, true, lesion.shape.center,
             lesion.diameter);
  }
  this->Modified();
}

void
CTPhantomGenerator::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Size: " << m_Size << std::endl;
  os << indent << "Spacing: " << m_Spacing << std::endl;
  os << indent << "Direction: " << m_Direction << std::endl;
  os << indent << "Center: " << m_Center << std::endl;
  os << indent << "Seed: " << m_Seed << std::endl;
  os << indent << "NoiseStandardDeviation: " << m_NoiseStandardDeviation << std::endl;
  os << indent << "InPlaneBlurSigma: " << m_InPlaneBlurSigma << std::endl;
  os << indent << "SliceBlurFraction: " << m_SliceBlurFraction << std::endl;
  os << indent << "NumberOfOrganLesions: " << m_NumberOfOrganLesions << std::endl;
  os << indent << "NumberOfNodules: " << m_NumberOfNodules << std::endl;
  os << indent << "MinimumLesionDiameter: " << m_MinimumLesionDiameter << std::endl;
  os << indent << "MaximumLesionDiameter: " << m_MaximumLesionDiameter << std::endl;
  os << indent << "ShapeDeformation: " << m_ShapeDeformation << std::endl;
  os << indent << "TextureStandardDeviation: " << m_TextureStandardDeviation << std::endl;
  os << indent << "Objects: " << m_Objects.size() << std::endl;
}

} // namespace itk
