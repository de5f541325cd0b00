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
 * - `CSV`: a file of `image,label[,id]` lines (paths relative to the file's folder unless absolute). An optional
 *   header line names the columns in any order: `image`, `label` (or `mask`) and optionally `id` (or `case`,
 *   `case_id`). Without an id, a case is named after its image file (`ct/a.nii.gz` -> "a"); where that name repeats
 *   (`STS_001/ct.nii.gz`, `STS_002/ct.nii.gz`) by the folders above the file, one more level until the names differ
 *   ("STS_001", "STS_002"). Ids given in the file must be unique;
 * - `TotalSegmentator`: the TotalSegmentator dataset: `<case>/ct.nii.gz` + `<case>/segmentations/<structure>.nii.gz`,
 *   one binary mask per structure (the root may also be one case folder). Such a case lists its masks in
 *   `structures` (sorted by name, every one a click target, the name kept for grouping) and has an empty `label`; a
 *   case without ct.nii.gz, without segmentations/ or with no mask in it is a per-case problem.
 * `Auto` picks by what exists: a .csv file, dataset.json (MSD, also written by nnU-Net v2: then images are found by
 * the nnU-Net rule when "training" is absent), imagesTr/<case>_0000 files (nnU-Net), `segmentations/` folders
 * (TotalSegmentator), else case_XXXXX folders (KiTS).
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
    CSV,
    TotalSegmentator
  };

  /** One structure of a case given as its own binary mask file (TotalSegmentator layout). */
  struct Structure
  {
    std::string name; ///< the file name without extension ("spleen", "vertebrae_L1")
    std::string mask; ///< path, ready to open
  };

  struct Case
  {
    std::string            id;
    std::string            image; ///< absolute or root-relative path as resolved, ready to open
    std::string            label; ///< the label map; empty where the case gives `structures` instead
    std::vector<Structure> structures{};
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

  /** "auto", "msd", "kits", "nnunet", "csv", "totalseg" (or "totalsegmentator"). */
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
