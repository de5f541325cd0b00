#ifndef itkCorrectionClickSimulator_h
#define itkCorrectionClickSimulator_h

#include "itkPoint.h"

#include <optional>

namespace itk
{
/** \brief One simulated correction click: where it goes, whether it adds (positive) or removes (negative), and the
 * physical volume (mm^3) of the error region it corrects.
 * \ingroup DivAttention
 */
struct CorrectionClick
{
  Point<double, 3> point;              ///< physical (LPS) point: the centre of the error region
  bool             positive = true;    ///< true: a miss (reference and not mask); false: a false positive
  double           regionVolume = 0.0; ///< mm^3
};

/** \brief The next correction click of the interactive-segmentation protocol: the centre of the largest error region.
 *
 * The protocol of the interactive literature (DeepEdit, nnInteractive, the CVPR 2025 interactive 3D challenge), used
 * to train with simulated corrections and to report Dice after N clicks: given the current mask and the reference
 * mask, the error voxels are split into misses (reference and not mask) and false positives (mask and not
 * reference); each kind is split into face-connected components (6 neighbours; a miss and a false positive never
 * share a component). The largest component by physical volume is the one the user corrects, and the click goes to
 * its centre: the component voxel farthest from the component's border, i.e. whose nearest voxel outside the
 * component is farthest away (Euclidean distance in mm by ITK's SignedMaurerDistanceMapImageFilter, so anisotropic
 * spacing is honoured; the image's edge counts as border). The click is positive for a miss and negative for a false
 * positive.
 *
 * Deterministic: of two components of equal volume the one whose first voxel (in buffer order, x fastest) comes
 * first wins; of two equally deep voxels the one that comes first in buffer order. A voxel is "in" a mask when its
 * value is non-zero.
 *
 * Cost: one pass over both buffers, then connected components and one distance map on the errors' bounding box only
 * (on a whole CT with a few local errors, a fraction of a second).
 *
 * \returns no click (std::nullopt) when the masks agree voxel for voxel.
 *
 * Errors (itk::ExceptionObject naming the input): a null image; an image that is not fully buffered; the reference
 * on another grid than the mask (region, origin, spacing or direction beyond a 1e-6 relative tolerance, as ITK's
 * VerifyInputInformation).
 * \ingroup DivAttention
 */
template<typename TMaskImage, typename TReferenceImage>
std::optional<CorrectionClick>
NextCorrectionClick(const TMaskImage * mask, const TReferenceImage * reference);
} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkCorrectionClickSimulator.hxx"
#endif

#endif
