#ifndef itkDatasetCaseValidator_h
#define itkDatasetCaseValidator_h

#include "itkSegmentationDatasetReader.h"

#include <cstdint>
#include <string>
#include <vector>

namespace itk
{
/** \class DatasetCaseValidator
 * \brief Checks that a dataset case can be trained on, and says why not.
 *
 * Problems found (each a one-line reason): an image or label that cannot be read, one that is not 3D, a file cut
 * short or corrupt or a NIfTI file with NaN / infinite float voxels (itk::VolumeFileCheck: ITK 5.2's readers would
 * read zeros), image and
 * label on different grids (size, spacing, origin or direction; spacing and origin compared to 1e-3 of a voxel, the
 * direction to 1e-4), a label without any voxel of the target labels, and a label with values other than 0 and 1
 * where a binary label is expected. Only headers are read for the geometry; the label's pixels are read for the
 * content checks. A case given as one mask per structure (TotalSegmentator layout) has each mask's header checked
 * (readable, 3D, on the image's grid; the problem names the structure and its file); an empty structure mask is not a
 * problem (a structure outside the field of view).
 * \ingroup DivAttention
 */
class DatasetCaseValidator
{
public:
  struct Options
  {
    std::vector<uint16_t> targetLabels{ 1 };
    bool                  expectBinary = false;
  };

  /** The reasons `entry` is unusable; empty when it is fine. Never throws for a bad case. */
  static std::vector<std::string>
  Check(const SegmentationDatasetReader::Case & entry, const Options & options);
};
} // namespace itk

#endif
