#ifndef divaDicomSegWriter_h
#define divaDicomSegWriter_h

#include "itkImage.h"

#include <cstdint>
#include <string>
#include <vector>

namespace diva
{
namespace application
{
/** \brief A coded concept of a DICOM SEG segment: code value, coding scheme designator, code meaning.
 * \ingroup DivAttention */
struct SegmentCode
{
  std::string value;
  std::string scheme;
  std::string meaning;
};

/** \brief What `--segment-type NAME` writes as a segment's Segmented Property Category and Type (SNOMED CT codes of
 * DICOM's context groups 7150 and 7151; Documentation/ClinicalIO.md has the table).
 * \ingroup DivAttention */
struct SegmentType
{
  std::string name; ///< what --segment-type takes, e.g. "spleen"
  SegmentCode category;
  SegmentCode type;
};

/** The segment types --segment-type knows, in the documented order. */
const std::vector<SegmentType> &
SegmentTypes();

/** The type named `name` (case-insensitive); std::invalid_argument naming `option`, the text and the known names
 * otherwise. An empty name gives the generic "tissue" type. */
const SegmentType &
FindSegmentType(const std::string & option, const std::string & name);

/** \brief What a DICOM SEG says about its one segment and where it came from.
 * \ingroup DivAttention */
struct DicomSegOptions
{
  std::string segmentLabel; ///< empty: the type's meaning
  std::string segmentType;  ///< a name of SegmentTypes(); empty: "tissue"
  std::string algorithmName = "DivAttention";
  std::string algorithmVersion;
  std::string seriesDescription = "DivAttention segmentation";
};

/** Whether this build writes DICOM SEG (DCMTK's dcmseg was found when CMake configured). */
bool
DicomSegAvailable();

/** The files of the first DICOM series of `directory`, in the order DivAttentionSegment stacks them into a volume
 * (itk::GDCMSeriesFileNames with series details: sorted along the slice normal). std::runtime_error when there is no
 * series. */
std::vector<std::string>
DicomSeriesFiles(const std::string & directory);

/** Writes `mask` (on the grid of the series read from `sourceFiles`, slice k from file k) as a binary DICOM
 * Segmentation with one segment, atomically (temporary file renamed into place). Patient, study and frame of
 * reference come from the source series; the SEG is a new series in that study. One frame per source slice, in the
 * source's order: each frame has its source slice's Image Position (Patient) copied from the file, a derivation item
 * referencing that slice's SOP instance, and its dimension index (segment number, slice number); the orientation and
 * pixel spacing are shared and also copied from the source. The Common Instance Reference module lists every source
 * instance. std::runtime_error naming `path` for a build without DCMTK, a mask whose size differs from the series'
 * rows, columns or slice count, an unreadable source file, or a failure of DCMTK. */
void
WriteDicomSegmentation(const itk::Image<uint8_t, 3> *   mask,
                       const std::vector<std::string> & sourceFiles,
                       const DicomSegOptions &          options,
                       const std::string &              path);

} // namespace application
} // namespace diva

#endif
