#ifndef itkLabelInstanceExtractor_h
#define itkLabelInstanceExtractor_h

#include "itkImage.h"
#include "itkImageRegion.h"

#include <cstdint>
#include <string>
#include <vector>

namespace itk
{
/** \class LabelInstanceExtractor
 * \brief The objects a label map holds, as training samples: one per organ, one per lesion.
 *
 * Organs are one object per case: every voxel with one of the target labels, connected or not (an organ cut by the
 * field of view is still one organ). Lesions are split into connected components (26-connectivity), each its own
 * sample with its own click. The paper's rule discards instances smaller than 2 voxels along any axis or with fewer
 * than 5 voxels in all; both numbers are options.
 * \ingroup DivAttention
 */
class LabelInstanceExtractor
{
public:
  using LabelImageType = Image<uint16_t, 3>;
  using InstanceImageType = Image<uint16_t, 3>;

  enum class Mode
  {
    Organ,          ///< every voxel with any target label is one object per case
    Lesion,         ///< connected components of the union of the target labels
    LabelComponents ///< each target label on its own, split into connected components (multi-organ + lesion maps)
  };

  /** "organ", "lesion" or "label-components"; throws itk::ExceptionObject naming the text otherwise. */
  static Mode
  ModeFromName(const std::string & name);

  struct Options
  {
    std::vector<uint16_t> targetLabels{ 1 };
    Mode                  mode = Mode::Organ;
    unsigned int          minimumExtent = 2; ///< voxels along every axis
    size_t                minimumVoxels = 5;
  };

  struct Instance
  {
    uint16_t       id = 0; ///< value in the instance image
    size_t         voxels = 0;
    ImageRegion<3> boundingBox; ///< in the label image's index space
  };

  struct Result
  {
    InstanceImageType::Pointer instances; ///< 0 background, k for the k-th kept instance (largest first)
    std::vector<Instance>      kept;
    size_t                     discarded = 0;
  };

  /** Throws itk::ExceptionObject for a null image or an empty target label list. */
  static Result
  Extract(const LabelImageType * labels, const Options & options);
};
} // namespace itk

#endif
