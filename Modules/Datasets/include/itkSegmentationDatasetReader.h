#ifndef itkSegmentationDatasetReader_h
#define itkSegmentationDatasetReader_h

#include <string>
#include <vector>

namespace itk
{
/** \class SegmentationDatasetReader
 * \brief Lists the (image, label) pairs of a segmentation dataset in one of the layouts researchers have.
 *
 * - `MSD`: the Medical Segmentation Decathlon: `dataset.json` whose "training" entries give "image" and "label"
 *   paths relative to the root (`./imagesTr/x.nii.gz`, `./labelsTr/x.nii.gz`);
 * - `KiTS`: KiTS19: `case_XXXXX/imaging.nii.gz` + `case_XXXXX/segmentation.nii.gz` under the root (or its `data/`);
 * - `NNUNetRaw`: nnU-Net's raw layout: `imagesTr/<case>_0000.nii.gz` (channel 0) with `labelsTr/<case>.nii.gz`;
 * - `CSV`: a file of `image,label` lines (an optional header line "image,label"; paths relative to the file's folder
 *   unless absolute; a third column, if any, is the case id).
 * `Auto` picks by what exists: a .csv file, dataset.json (MSD, also written by nnU-Net v2: then images are found by
 * the nnU-Net rule when "training" is absent), case_XXXXX folders (KiTS), imagesTr/<case>_0000 files (nnU-Net).
 * Listing does not open images; a case whose files are missing is reported in `problems`, not listed. Malformed
 * dataset.json or CSV is an itk::ExceptionObject naming the file, the line or entry, and what is wrong.
 * \ingroup DivAttention
 */
class SegmentationDatasetReader
{
public:
  enum class Layout
  {
    Auto,
    MSD,
    KiTS,
    NNUNetRaw,
    CSV
  };

  struct Case
  {
    std::string id;
    std::string image; ///< absolute or root-relative path as resolved, ready to open
    std::string label;
  };

  struct Problem
  {
    std::string id;
    std::string reason;
  };

  struct Listing
  {
    Layout               layout = Layout::Auto;
    std::vector<Case>    cases;
    std::vector<Problem> problems;
  };

  /** "auto", "msd", "kits", "nnunet", "csv". */
  static Layout
  ParseLayout(const std::string & text);

  static std::string
  LayoutName(Layout layout);

  /** Lists the dataset at `path` (a directory, or a .csv file). Cases come sorted by id. */
  static Listing
  Read(const std::string & path, Layout layout = Layout::Auto);

  /** Parses dataset.json text (used by Read, exposed for fuzzing): fills cases relative to `root`. */
  static Listing
  ParseMSDJson(const std::string & jsonText, const std::string & root, const std::string & sourceName);

  /** Parses CSV text (used by Read, exposed for fuzzing): paths relative to `root`. */
  static Listing
  ParseCSV(const std::string & csvText, const std::string & root, const std::string & sourceName);
};
} // namespace itk

#endif
