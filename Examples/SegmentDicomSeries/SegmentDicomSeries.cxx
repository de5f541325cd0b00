// SegmentDicomSeries: a DICOM CT series and a click in, a NIfTI mask out, with itk::ClickGuidedSegmentationFilter.
//
// Usage:
//   SegmentDicomSeries --dicom DIR --click x,y,z --output MASK.nii.gz
//                      [--coarse-model FILE] [--refine-model FILE] [--device auto|cpu|cuda]
//   SegmentDicomSeries --phantom DIR [--organ spleen] [--coarse-model FILE] [--refine-model FILE] [--min-dice D]
//
// With --dicom, the first series of the directory is read (as a user's scanner export). With --phantom, the example
// first makes a series of its own: a CT phantom (itk::CTPhantomGenerator) written slice by slice as a DICOM CT series
// into DIR/dicom, with one study, one series and per slice the ImagePositionPatient, ImageOrientationPatient, pixel
// spacing and slice spacing that place it in the patient. It then reads that directory back exactly as a user's
// series, checks that the geometry survived the round trip, segments the organ (by default the spleen) from the
// phantom's own click on it, writes DIR/mask.nii.gz and prints the Dice against the phantom's truth.
//
// The click is a physical point in LPS (mm), DICOM's patient coordinates, so a point read off a DICOM viewer (which
// shows ImagePositionPatient-style coordinates) is used as it is. The models default to the bundled ones (Models/).
// Returns non-zero on any error, an empty mask, a geometry that did not survive the DICOM round trip, or a Dice
// below --min-dice.
#include "itkCTPhantomGenerator.h"
#include "itkClickGuidedSegmentationFilter.h"
#include "itkClickPoints.h"
#include "itkDivAttentionRuntime.h"
#include "itkGDCMImageIO.h"
#include "itkGDCMSeriesFileNames.h"
#include "itkImageFileWriter.h"
#include "itkImageRegionConstIterator.h"
#include "itkImageSeriesReader.h"
#include "itkImageSeriesWriter.h"
#include "itkMetaDataObject.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace
{
using CTImageType = itk::Image<float, 3>; // HU, as the reader applies DICOM's rescale slope and intercept
using MaskImageType = itk::Image<uint8_t, 3>;
using PhantomCTImageType = itk::CTPhantomGenerator::CTImageType; // int16 HU
using LabelImageType = itk::CTPhantomGenerator::LabelImageType;  // uint8
using PointType = itk::Point<double, 3>;

#ifndef DIVATTENTION_EXAMPLE_MODEL_DIR
#  define DIVATTENTION_EXAMPLE_MODEL_DIR "Models"
#endif

// "--key value" pairs; every key must be one of `known`.
std::map<std::string, std::string>
ParseOptions(int argc, char * argv[], const std::map<std::string, std::string> & known)
{
  std::map<std::string, std::string> options = known; // the defaults
  for (int i = 1; i < argc; i += 2)
  {
    const std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || known.count(key.substr(2)) == 0 || i + 1 >= argc)
    {
      throw std::invalid_argument("unknown option or missing value: \"" + key + "\"");
    }
    options[key.substr(2)] = argv[i + 1];
  }
  return options;
}

// Numbers as DICOM's decimal strings (DS) hold them: backslash-separated, at most 16 characters each.
std::string
DecimalStrings(const std::vector<double> & values)
{
  std::string text;
  for (size_t i = 0; i < values.size(); ++i)
  {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.10g", values[i]);
    text += (i > 0 ? "\\" : "") + std::string(buffer);
  }
  return text;
}

// Writes `ct` as a DICOM CT series, one file per slice (axis 2), into `directory`.
//
// ImageSeriesWriter cuts the volume into 2D slices; a 2D slice by itself has lost where it lies in the patient, so
// each slice gets a dictionary of DICOM tags that says so: ImagePositionPatient (the physical position of its first
// voxel), ImageOrientationPatient (the directions of its rows and columns), PixelSpacing and the slice spacing. The
// GDCMImageIO is shared by all slices and generates the UIDs: one study and one series for all of them, a new SOP
// instance UID per file.
void
WriteDicomSeries(const PhantomCTImageType * ct, const std::string & directory)
{
  std::filesystem::create_directories(directory);
  const auto size = ct->GetLargestPossibleRegion().GetSize();
  const auto spacing = ct->GetSpacing();
  const auto direction = ct->GetDirection();

  // Tags shared by every slice. DICOM names them (group|element) in hexadecimal.
  itk::MetaDataDictionary common;
  itk::EncapsulateMetaData<std::string>(common, "0010|0010", "DivAttention^Phantom"); // Patient's Name
  itk::EncapsulateMetaData<std::string>(common, "0010|0020", "PHANTOM-0001");         // Patient ID
  itk::EncapsulateMetaData<std::string>(common, "0008|0060", "CT");                   // Modality
  itk::EncapsulateMetaData<std::string>(common, "0008|0020", "20260101");             // Study Date
  itk::EncapsulateMetaData<std::string>(common, "0008|103e", "CTPhantomGenerator");   // Series Description
  itk::EncapsulateMetaData<std::string>(common, "0020|0011", "1");                    // Series Number
  itk::EncapsulateMetaData<std::string>(common, "0028|0004", "MONOCHROME2");          // Photometric Interpretation
  // Image Orientation (Patient): the row direction (along i) then the column direction (along j), in LPS.
  itk::EncapsulateMetaData<std::string>(common, "0020|0037",
                                        DecimalStrings({ direction[0][0], direction[1][0], direction[2][0],
                                                         direction[0][1], direction[1][1], direction[2][1] }));
  // Pixel Spacing: between rows (along j) first, then between columns (along i).
  itk::EncapsulateMetaData<std::string>(common, "0028|0030", DecimalStrings({ spacing[1], spacing[0] }));
  itk::EncapsulateMetaData<std::string>(common, "0018|0050", DecimalStrings({ spacing[2] })); // Slice Thickness
  itk::EncapsulateMetaData<std::string>(common, "0018|0088", DecimalStrings({ spacing[2] })); // Spacing Between Slices

  // One dictionary per slice: the shared tags plus where this slice lies.
  std::vector<itk::MetaDataDictionary>                                                    dictionaries(size[2], common);
  itk::ImageSeriesWriter<PhantomCTImageType, itk::Image<int16_t, 2>>::DictionaryArrayType dictionaryPointers;
  std::vector<std::string>                                                                fileNames;
  for (itk::SizeValueType k = 0; k < size[2]; ++k)
  {
    PhantomCTImageType::PointType position;
    ct->TransformIndexToPhysicalPoint({ { 0, 0, static_cast<itk::IndexValueType>(k) } }, position);
    const double location =
      position[0] * direction[0][2] + position[1] * direction[1][2] + position[2] * direction[2][2];
    auto & dictionary = dictionaries[k];
    itk::EncapsulateMetaData<std::string>(dictionary, "0020|0032",
                                          DecimalStrings({ position[0], position[1], position[2] })); // Image Position
    itk::EncapsulateMetaData<std::string>(dictionary, "0020|1041", DecimalStrings({ location }));     // Slice Location
    itk::EncapsulateMetaData<std::string>(dictionary, "0020|0013", std::to_string(k + 1));            // Instance Number
    dictionaryPointers.push_back(&dictionary);
    char name[32];
    std::snprintf(name, sizeof(name), "/IM%04u.dcm", static_cast<unsigned>(k + 1));
    fileNames.push_back(directory + name);
  }

  auto io = itk::GDCMImageIO::New();
  auto writer = itk::ImageSeriesWriter<PhantomCTImageType, itk::Image<int16_t, 2>>::New();
  writer->SetInput(ct);
  writer->SetImageIO(io);
  writer->SetFileNames(fileNames);
  writer->SetMetaDataDictionaryArray(&dictionaryPointers);
  writer->Update();
}

// Reads the first DICOM series of `directory` as a user would: GDCMSeriesFileNames finds the series and sorts its
// files by position along the slice normal; ImageSeriesReader stacks them into a volume with the series' geometry.
CTImageType::Pointer
ReadDicomSeries(const std::string & directory)
{
  auto names = itk::GDCMSeriesFileNames::New();
  names->SetUseSeriesDetails(true); // split series that share a UID but differ in geometry
  names->SetDirectory(directory);
  const auto & series = names->GetSeriesUIDs();
  if (series.empty())
  {
    throw std::runtime_error("no DICOM series in \"" + directory + "\"");
  }
  const auto files = names->GetFileNames(series.front());
  std::cout << "DICOM: " << series.size() << " series in " << directory << "; reading the first, " << files.size()
            << " files" << std::endl;

  auto reader = itk::ImageSeriesReader<CTImageType>::New();
  reader->SetImageIO(itk::GDCMImageIO::New());
  reader->SetFileNames(files);
  reader->Update();
  return reader->GetOutput();
}

// Dice of (mask != 0) and (truth == label); both on the same grid.
double
Dice(const MaskImageType * mask, const LabelImageType * truth, int label, size_t & maskVoxels)
{
  size_t                                        both = 0, inTruth = 0;
  itk::ImageRegionConstIterator<MaskImageType>  m(mask, mask->GetLargestPossibleRegion());
  itk::ImageRegionConstIterator<LabelImageType> t(truth, truth->GetLargestPossibleRegion());
  maskVoxels = 0;
  for (; !m.IsAtEnd(); ++m, ++t)
  {
    const bool a = m.Get() != 0;
    const bool b = t.Get() == label;
    both += (a && b) ? 1 : 0;
    maskVoxels += a ? 1 : 0;
    inTruth += b ? 1 : 0;
  }
  const auto sum = maskVoxels + inTruth;
  return sum == 0 ? 1.0 : 2.0 * static_cast<double>(both) / static_cast<double>(sum);
}

// Whether two grids agree to within `tolerance` mm (origin, spacing) and 1e-6 (direction).
bool
SameGeometry(const itk::ImageBase<3> * a, const itk::ImageBase<3> * b, double tolerance)
{
  if (a->GetLargestPossibleRegion().GetSize() != b->GetLargestPossibleRegion().GetSize())
  {
    return false;
  }
  for (unsigned int r = 0; r < 3; ++r)
  {
    if (std::abs(a->GetOrigin()[r] - b->GetOrigin()[r]) > tolerance ||
        std::abs(a->GetSpacing()[r] - b->GetSpacing()[r]) > tolerance)
    {
      return false;
    }
    for (unsigned int c = 0; c < 3; ++c)
    {
      if (std::abs(a->GetDirection()[r][c] - b->GetDirection()[r][c]) > 1e-6)
      {
        return false;
      }
    }
  }
  return true;
}

int
Run(int argc, char * argv[])
{
  const std::string modelDirectory = DIVATTENTION_EXAMPLE_MODEL_DIR;
  auto              options = ParseOptions(argc, argv,
                                           { { "dicom", "" },
                                             { "click", "" },
                                             { "output", "" },
                                             { "phantom", "" },
                                             { "organ", "spleen" },
                                             { "coarse-model", modelDirectory + "/coarse-munet-small.pt" },
                                             { "refine-model", modelDirectory + "/refine-unetr-small-divattention.pt" },
                                             { "device", "auto" },
                                             { "min-dice", "0" } });
  itk::DivAttentionRuntime::Initialize();

  int                              failures = 0;
  PointType                        click;
  itk::CTPhantomGenerator::Pointer phantom;
  int                              label = -1;
  if (!options["phantom"].empty())
  {
    // A phantom of 190 x 150 x 52 voxels of 2 x 2 x 5 mm (the bundled models' training field of view, 380 x 300 x
    // 260 mm), written as 52 DICOM slices.
    phantom = itk::CTPhantomGenerator::New();
    phantom->SetSize({ { 190, 150, 52 } });
    itk::CTPhantomGenerator::SpacingType spacing;
    spacing[0] = 2.0;
    spacing[1] = 2.0;
    spacing[2] = 5.0;
    phantom->SetSpacing(spacing);
    phantom->SetSeed(11);
    phantom->Update();
    for (const auto & object : phantom->GetObjects())
    {
      if (object.name == options["organ"])
      {
        click = object.click;
        label = object.label;
      }
    }
    if (label < 0)
    {
      throw std::invalid_argument("the phantom has no object \"" + options["organ"] + "\"");
    }
    options["dicom"] = options["phantom"] + "/dicom";
    options["output"] = options["phantom"] + "/mask.nii.gz";
    WriteDicomSeries(phantom->GetCT(), options["dicom"]);
    std::cout << "phantom written as a DICOM series to " << options["dicom"] << ", clicking the " << options["organ"]
              << " (label " << label << ")" << std::endl;
  }
  else
  {
    if (options["dicom"].empty() || options["click"].empty() || options["output"].empty())
    {
      throw std::invalid_argument("give --dicom, --click and --output (or --phantom DIR)");
    }
    const auto xyz = itk::ClickPoints::ParseTriple(options["click"]);
    for (unsigned int a = 0; a < 3; ++a)
    {
      click[a] = xyz[a];
    }
  }

  // --- Read the series back, as from a scanner. ---
  const auto ct = ReadDicomSeries(options["dicom"]);
  std::cout << "CT: " << ct->GetLargestPossibleRegion().GetSize() << " voxels of " << ct->GetSpacing() << " mm, origin "
            << ct->GetOrigin() << std::endl;
  if (phantom)
  {
    const bool same = SameGeometry(ct, phantom->GetCT(), 1e-3);
    std::cout << "geometry after the DICOM round trip: " << (same ? "as written" : "CHANGED") << std::endl;
    failures += same ? 0 : 1;
  }
  if (!itk::ClickPoints::IsInside(click, ct))
  {
    throw std::invalid_argument("the click lies outside the series");
  }

  // --- The whole method in one filter: click map, stage 1, PCA crop, div-attention refinement, paste back. ---
  using SegmentationFilterType = itk::ClickGuidedSegmentationFilter<CTImageType, MaskImageType>;
  auto segmentation = SegmentationFilterType::New();
  segmentation->SetInput(ct);
  segmentation->SetClicks({ click });
  segmentation->SetCoarseModelFile(options["coarse-model"]);
  segmentation->SetRefineModelFile(options["refine-model"]);
  segmentation->SetDevice(options["device"]);

  // --- Write the mask as NIfTI: it keeps the series' geometry (origin, spacing, direction), so it overlays the
  // DICOM series in any viewer. ---
  itk::WriteImage(segmentation->GetOutput(), options["output"], true);
  std::cout << "segmented on " << segmentation->GetDeviceUsed() << ": " << segmentation->GetNumberOfCoarseWindows()
            << " stage-1 windows" << (segmentation->GetUsedFallbackCrop() ? ", fallback crop" : "")
            << "; mask written to " << options["output"] << std::endl;

  // --- Checks. ---
  const MaskImageType * mask = segmentation->GetOutput();
  if (!SameGeometry(mask, ct, 1e-9))
  {
    std::cerr << "FAILED: the mask is not on the series' grid" << std::endl;
    ++failures;
  }
  size_t voxels = 0;
  if (phantom)
  {
    const double dice = Dice(mask, phantom->GetLabels(), label, voxels);
    std::cout << "mask: " << voxels << " voxels; Dice against the truth (label " << label << "): " << dice << std::endl;
    if (dice < std::stod(options["min-dice"]))
    {
      std::cerr << "FAILED: Dice " << dice << " < " << options["min-dice"] << std::endl;
      ++failures;
    }
  }
  else
  {
    for (itk::ImageRegionConstIterator<MaskImageType> it(mask, mask->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
    {
      voxels += it.Get() != 0 ? 1 : 0;
    }
    std::cout << "mask: " << voxels << " voxels" << std::endl;
  }
  if (voxels == 0)
  {
    std::cerr << "FAILED: the mask is empty" << std::endl;
    ++failures;
  }
  if (!std::filesystem::exists(options["output"]))
  {
    std::cerr << "FAILED: " << options["output"] << " was not written" << std::endl;
    ++failures;
  }
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
} // namespace

int
main(int argc, char * argv[])
{
  try
  {
    return Run(argc, argv);
  }
  catch (const std::exception & error) // itk::ExceptionObject is a std::exception
  {
    std::cerr << "SegmentDicomSeries: " << error.what() << std::endl;
    return EXIT_FAILURE;
  }
}
