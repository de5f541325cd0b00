#ifndef itkSegmentationPreview_h
#define itkSegmentationPreview_h

#include "itkImage.h"
#include "itkPoint.h"
#include "itkRGBPixel.h"

#include <string>

namespace itk
{
/** \class SegmentationPreview
 * \brief A picture to check a segmentation at a glance: axial, coronal and sagittal slices through the click, the CT
 * with the mask's outline, and the div-attention map beside it (the paper's figs. 2 and 3).
 *
 * Slices are sampled in physical space along the patient's axes (LPS), so oblique and anisotropic images show
 * undistorted anatomy in the usual radiological orientation: axial with anterior up and the patient's right on the
 * left; coronal and sagittal with superior up. Pixels are square, of the image's smallest spacing. The CT is shown in
 * an abdominal window [-160, 240] HU (option); the outline is red; the click is a yellow cross; the attention map is
 * grey scaled to its maximum over the slice, with the outline too.
 * \ingroup DivAttention
 */
class SegmentationPreview
{
public:
  using CTImageType = Image<float, 3>;
  using MaskImageType = Image<uint8_t, 3>;
  using PreviewImageType = Image<RGBPixel<uint8_t>, 2>;
  using PointType = Point<double, 3>;

  struct Options
  {
    double windowLow = -160.0;
    double windowHigh = 240.0;
    /** Largest side of one panel, pixels: large images are shown at a coarser pixel size. */
    unsigned int maximumPanelSide = 384;
  };

  /** Renders the preview: 3 rows (axial, coronal, sagittal) x 1 or 2 columns (CT + outline, attention + outline).
   * `attention` may be null; the mask may lie on any grid (it is sampled physically). Throws itk::ExceptionObject
   * for a null CT or mask. */
  static PreviewImageType::Pointer
  Render(const CTImageType *   ct,
         const MaskImageType * mask,
         const CTImageType *   attention,
         const PointType &     click,
         const Options &       options);

  /** Render() and write the PNG atomically to `path`. */
  static void
  Write(const std::string &   path,
        const CTImageType *   ct,
        const MaskImageType * mask,
        const CTImageType *   attention,
        const PointType &     click,
        const Options &       options);
};
} // namespace itk

#endif
