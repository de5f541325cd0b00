#ifndef itkCTPhantomGenerator_h
#define itkCTPhantomGenerator_h

#include "itkDivAttentionMacros.h"
#include "itkImage.h"
#include "itkObject.h"
#include "itkObjectFactory.h"
#include "itkPoint.h"

#include <cstdint>
#include <string>
#include <vector>

namespace itk
{
/** \class CTPhantomGenerator
 * \brief Generates an abdominal CT-like volume whose every mask is known: the toolkit's stand-in for real training
 * data, which cannot be downloaded here.
 *
 * Anatomy is analytic, in physical space (LPS, mm; x to the patient's left, y posterior, z superior): an elliptic
 * body with subcutaneous fat and a muscle wall, lungs at the top, a vertebral column and ribs, and smooth randomly
 * deformed organs — liver, spleen, two kidneys — with a stomach touching the spleen and bowel loops touching the
 * kidneys at nearly the same HU (so that thresholding cannot separate a target from its neighbours), plus lesions
 * (hypo- or hyperdense, irregular borders, 5–60 mm) inside organs and lymph-node-like nodules in the fat. Each
 * tissue has its own HU mean and a smooth texture; the volume is then blurred like a scanner's point spread function
 * (in-plane and slice profile, partial volume included) and receives Gaussian noise. Every random choice derives from
 * the seed through counter-based hashing, so a seed gives the same volume on any machine and thread count.
 *
 * The image grid is any ITK grid (size, spacing, direction — oblique and anisotropic included); by default its centre
 * is placed on the body's centre. Labels (uint8) are evaluated at voxel centres before blurring: LabelLiver ..
 * LabelLesion below; every lesion also has its own instance number in GetLesionInstances().
 *
 * \ingroup DivAttention
 */
class CTPhantomGenerator : public Object
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(CTPhantomGenerator);

  using Self = CTPhantomGenerator;
  using Superclass = Object;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkDivAttentionTypeMacro(CTPhantomGenerator, Object);

  using CTImageType = Image<int16_t, 3>;
  using LabelImageType = Image<uint8_t, 3>;
  using InstanceImageType = Image<uint16_t, 3>;
  using PointType = Point<double, 3>;
  using SizeType = CTImageType::SizeType;
  using SpacingType = CTImageType::SpacingType;
  using DirectionType = CTImageType::DirectionType;

  /** Label values of the target structures. */
  enum Label : uint8_t
  {
    LabelBackground = 0,
    LabelLiver = 1,
    LabelSpleen = 2,
    LabelKidneyRight = 3,
    LabelKidneyLeft = 4,
    LabelStomach = 5,
    LabelLesion = 6
  };

  /** One segmentable object and where a user would click on it. */
  struct PhantomObject
  {
    std::string name;         ///< "liver", "spleen", ..., "lesion-3"
    uint8_t     label = 0;    ///< value in the label image
    uint16_t    instance = 0; ///< lesions: value in the instance image; organs: 0
    bool        isLesion = false;
    PointType   click;        ///< a point well inside the object (physical, LPS)
    double      diameter = 0; ///< lesions: nominal diameter in mm; organs: longest semi-axis x 2
    size_t      voxels = 0;   ///< voxels of the object on the grid
  };

  itkSetMacro(Size, SizeType);
  itkGetConstMacro(Size, SizeType);
  itkSetMacro(Spacing, SpacingType);
  itkGetConstMacro(Spacing, SpacingType);
  itkSetMacro(Direction, DirectionType);
  itkGetConstMacro(Direction, DirectionType);
  /** Physical position of the image centre (default: the body centre, (0, 10, 0)). */
  itkSetMacro(Center, PointType);
  itkGetConstMacro(Center, PointType);
  itkSetMacro(Seed, uint64_t);
  itkGetConstMacro(Seed, uint64_t);
  /** Standard deviation of the added noise, HU (default 12, a standard-dose abdominal CT). */
  itkSetMacro(NoiseStandardDeviation, double);
  itkGetConstMacro(NoiseStandardDeviation, double);
  /** Scanner point spread function as a Gaussian sigma in mm, in-plane (default 0.6). */
  itkSetMacro(InPlaneBlurSigma, double);
  itkGetConstMacro(InPlaneBlurSigma, double);
  /** Slice profile as a fraction of the z spacing used as Gaussian sigma (default 0.4: FWHM about one slice). */
  itkSetMacro(SliceBlurFraction, double);
  itkGetConstMacro(SliceBlurFraction, double);
  /** Lesions inside organs (default 3) and lymph-node-like nodules in fat (default 2). */
  itkSetMacro(NumberOfOrganLesions, unsigned int);
  itkGetConstMacro(NumberOfOrganLesions, unsigned int);
  itkSetMacro(NumberOfNodules, unsigned int);
  itkGetConstMacro(NumberOfNodules, unsigned int);
  /** Lesion diameters are drawn log-uniformly in [min, max] mm (default 5–60), limited by the host organ's size. */
  itkSetMacro(MinimumLesionDiameter, double);
  itkGetConstMacro(MinimumLesionDiameter, double);
  itkSetMacro(MaximumLesionDiameter, double);
  itkGetConstMacro(MaximumLesionDiameter, double);
  /** Amplitude of the smooth random deformation of organ shapes, as a fraction of their radius (default 0.12). */
  itkSetMacro(ShapeDeformation, double);
  itkGetConstMacro(ShapeDeformation, double);
  /** Standard deviation of each tissue's smooth texture, HU (default 8). */
  itkSetMacro(TextureStandardDeviation, double);
  itkGetConstMacro(TextureStandardDeviation, double);

  /** Builds the volume; throws itk::ExceptionObject for an empty size, non-positive spacing or a singular direction. */
  void
  Update();

  CTImageType *
  GetCT() const
  {
    return m_CT.GetPointer();
  }
  LabelImageType *
  GetLabels() const
  {
    return m_Labels.GetPointer();
  }
  InstanceImageType *
  GetLesionInstances() const
  {
    return m_Instances.GetPointer();
  }
  const std::vector<PhantomObject> &
  GetObjects() const
  {
    return m_Objects;
  }

protected:
  CTPhantomGenerator();
  ~CTPhantomGenerator() override = default;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  SizeType      m_Size;
  SpacingType   m_Spacing;
  DirectionType m_Direction;
  PointType     m_Center;
  uint64_t      m_Seed = 1;
  double        m_NoiseStandardDeviation = 12.0;
  double        m_InPlaneBlurSigma = 0.6;
  double        m_SliceBlurFraction = 0.4;
  unsigned int  m_NumberOfOrganLesions = 3;
  unsigned int  m_NumberOfNodules = 2;
  double        m_MinimumLesionDiameter = 5.0;
  double        m_MaximumLesionDiameter = 60.0;
  double        m_ShapeDeformation = 0.12;
  double        m_TextureStandardDeviation = 8.0;

  CTImageType::Pointer       m_CT;
  LabelImageType::Pointer    m_Labels;
  InstanceImageType::Pointer m_Instances;
  std::vector<PhantomObject> m_Objects;
};
} // namespace itk

#endif
