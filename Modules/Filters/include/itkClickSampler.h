#ifndef itkClickSampler_h
#define itkClickSampler_h

#include "itkDivAttentionMacros.h"
#include "itkImage.h"
#include "itkObject.h"
#include "itkObjectFactory.h"
#include "itkPoint.h"

#include <cstdint>
#include <iostream>
#include <random>
#include <vector>

namespace itk
{
/** \class ClickSamplerEnums
 * \brief Enumerations of ClickSampler.
 * \ingroup DivAttention
 */
class ClickSamplerEnums
{
public:
  /** Where in the object clicks fall. */
  enum class Strategy : uint8_t
  {
    /** Every object voxel equally likely (default). */
    Uniform = 0,
    /** An object voxel with probability proportional to its distance (mm) to the object's boundary: clicks fall
     * towards the interior, as a user's would, and never on the outermost voxel layer's edge. */
    Interior = 1
  };
};

inline std::ostream &
operator<<(std::ostream & out, const ClickSamplerEnums::Strategy value)
{
  switch (value)
  {
    case ClickSamplerEnums::Strategy::Uniform:
      return out << "Uniform";
    case ClickSamplerEnums::Strategy::Interior:
      return out << "Interior";
  }
  return out << "INVALID";
}

/** \class ClickSampler
 * \brief Draws simulated user clicks inside a binary mask, as physical points, for training.
 *
 * An object voxel is one whose mask value is >= MaskThreshold (default 0.5, so a 0/1 mask or a probability both
 * work). Sample() returns the physical (LPS) centre of a drawn object voxel, so the click always lies inside the
 * mask. The generator is std::mt19937_64 seeded with Seed and the draw uses only integer arithmetic and IEEE double
 * operations of its own (no std:: distribution, whose algorithm is implementation-defined), so a seed gives the same
 * clicks on every platform. Setting the seed, mask or strategy restarts the sequence.
 *
 * The Interior strategy weights voxels by a chamfer distance to the nearest background voxel (3x3x3 neighbourhood,
 * physical step lengths, so anisotropic and oblique grids are handled; voxels outside the image count as
 * background). The chamfer distance overestimates the Euclidean one by at most ~8 %, plenty for a weighting.
 *
 * An empty mask (no object voxel) is an itk::ExceptionObject.
 * \ingroup DivAttention
 */
template<typename TMaskImage>
class ITK_TEMPLATE_EXPORT ClickSampler : public Object
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(ClickSampler);

  using Self = ClickSampler;
  using Superclass = Object;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;

  itkNewMacro(Self);
  itkDivAttentionTypeMacro(ClickSampler, Object);

  static constexpr unsigned int ImageDimension = TMaskImage::ImageDimension;
  using MaskImageType = TMaskImage;
  using PointType = Point<double, ImageDimension>;
  using StrategyEnum = ClickSamplerEnums::Strategy;

  /** The mask (buffered region read as it is: update it before sampling). */
  virtual void
  SetMask(const MaskImageType * mask);
  itkGetConstObjectMacro(Mask, MaskImageType);

  itkSetMacro(MaskThreshold, double);
  itkGetConstMacro(MaskThreshold, double);

  virtual void
  SetSeed(uint64_t seed);
  itkGetConstMacro(Seed, uint64_t);

  virtual void
  SetStrategy(StrategyEnum strategy);
  itkGetEnumMacro(Strategy, StrategyEnum);

  /** Draws the next click (physical point). Throws itk::ExceptionObject for a missing or empty mask. */
  PointType
  Sample();

  /** Number of object voxels found by the last preparation (0 before the first Sample()). */
  itkGetConstMacro(NumberOfObjectVoxels, SizeValueType);

protected:
  ClickSampler() = default;
  ~ClickSampler() override = default;

  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  void
  Prepare();

  typename MaskImageType::ConstPointer m_Mask;
  double                               m_MaskThreshold{ 0.5 };
  uint64_t                             m_Seed{ 0 };
  StrategyEnum                         m_Strategy{ StrategyEnum::Uniform };

  // State derived from the above: offsets (into the buffered region) of the object voxels, cumulative weights for
  // the Interior strategy, and the generator.
  bool                       m_Prepared{ false };
  SizeValueType              m_NumberOfObjectVoxels{ 0 };
  std::vector<SizeValueType> m_Offsets;
  std::vector<double>        m_CumulativeWeights;
  std::mt19937_64            m_Generator;
  ModifiedTimeType           m_PreparedMaskTime{ 0 };
};
} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkClickSampler.hxx"
#endif

#endif
