#ifndef itkPhantomDataset_h
#define itkPhantomDataset_h

#include "itkCTPhantomGenerator.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace itk
{
/** \class PhantomDataset
 * \brief Writes a dataset of CT phantoms in the Medical Segmentation Decathlon layout.
 *
 * `outputDirectory/dataset.json`, `imagesTr/<name>.nii.gz` (int16 HU) and `labelsTr/<name>.nii.gz` (uint8 labels
 * of CTPhantomGenerator, or of the painted label map), exactly as MSD tasks are laid out, so the same readers serve
 * MSD data and phantoms. dataset.json also carries a "divattention" block: the generator's parameters and seed and,
 * per case, every object with its label, instance, suggested click (LPS, mm) and size. Each case has its own seed
 * derived from the dataset seed, its own slice thickness drawn from a range and, optionally, its own oblique
 * direction, so one dataset spans the anisotropy and orientations of real scans. Files are written atomically.
 * \ingroup DivAttention
 */
class PhantomDataset
{
public:
  struct Options
  {
    std::string           outputDirectory;
    std::string           namePrefix = "phantom";
    unsigned int          cases = 4;
    uint64_t              seed = 1;
    std::array<double, 3> fieldOfView{ { 380.0, 300.0, 260.0 } }; ///< mm, x y z
    double                inPlaneSpacing = 1.5;                   ///< mm
    std::array<double, 2> sliceThickness{ { 2.5, 5.0 } };         ///< mm, drawn uniformly per case
    double                maximumObliqueDegrees = 0.0;            ///< per-case rotation about each axis, up to this
    // Realism parameters passed to CTPhantomGenerator (its documentation gives the meaning of each).
    double       noise = 12.0;
    double       inPlaneBlur = 0.6;
    double       sliceBlurFraction = 0.4;
    unsigned int organLesions = 3;
    unsigned int nodules = 2;
    double       minimumLesionDiameter = 5.0;
    double       maximumLesionDiameter = 60.0;
    double       shapeDeformation = 0.12;
    double       texture = 8.0;
    /** When set, every case paints this label map (LabelMapCTPainter) instead of generating anatomy. */
    std::string labelMap;
    /** Label-map cases only: when set, each case draws every label's mean HU uniformly from labelHURange instead of
     * the painter's table (intensity domain randomisation, as SynthSeg: the network cannot rely on one organ's HU). */
    bool                  randomLabelHU = false;
    std::array<double, 2> labelHURange{ { -20.0, 200.0 } }; ///< HU, min,max
    /** Label-map cases only: LabelMapCTPainter's ClutterFraction (soft-tissue blobs in the unlabelled body; their HU
     * is drawn from labelHURange per case when randomLabelHU is set). */
    double clutterFraction = 0.0;
  };

  struct CaseSummary
  {
    std::string                                    name;
    std::string                                    image; ///< path relative to the output directory
    std::string                                    label; ///< path relative to the output directory
    std::vector<CTPhantomGenerator::PhantomObject> objects;
  };

  /** Generates and writes every case, then dataset.json. Throws itk::ExceptionObject naming what is wrong (no
   * output directory, unwritable directory, bad option values, unreadable label map). */
  static std::vector<CaseSummary>
  Write(const Options & options);

  /** Checks the options without writing anything; throws itk::ExceptionObject naming the first bad one. */
  static void
  Validate(const Options & options);
};
} // namespace itk

#endif
