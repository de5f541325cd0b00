// ComposeFiltersByHand: one click on a CT, a 3D mask of the object under it, with the pipeline built by hand.
//
// itk::ClickGuidedSegmentationFilter runs the whole method as one composite filter. This example wires the same
// filters explicitly, one after the other, so that every step and every parameter can be seen (and changed):
//
//   CT ──┬─ ClickDistanceTransformFilter ─ CoarseSegmentationFilter ─ ClickedComponentImageFilter ─
//   PCACropResampleFilter
//        │   (click map on the CT grid)      (stage 1 around the click)  (the part under the click)   (cube sized by
//        PCA) │                                                                            ─ DivAttentionRefineFilter
//        │                                                                              (stage 2 on the cube)
//        └──────────────────────────────────────────────────────────────────────────────────── PasteBackFilter ─ mask
//                                                                                               (back on the CT grid)
//
// Usage:
//   ComposeFiltersByHand --ct CT --click x,y,z --output MASK [--truth LABELS --label N]
//                        [--coarse-model FILE] [--refine-model FILE] [--device auto|cpu|cuda] [--min-dice D]
//   ComposeFiltersByHand --phantom DIR [--organ spleen] [--coarse-model FILE] [--refine-model FILE] [--min-dice D]
//
// The click is a physical point in ITK's LPS convention (mm). With --phantom the example first makes its own data: a
// small CT phantom (itk::CTPhantomGenerator) and its truth labels, written to DIR as NIfTI, then segments the organ
// (by default the spleen) from the phantom's own click on it, exactly as from a user's file. The models default to the
// bundled ones (Models/ of the source tree). It prints the mask's voxel count and, when a truth is known, the Dice.
// It returns non-zero when anything fails: an exception, an empty mask, a mask not on the CT's grid, a written file
// that does not read back as the mask, or a Dice below --min-dice.
#include "itkCTPhantomGenerator.h"
#include "itkClickDistanceTransformFilter.h"
#include "itkClickPoints.h"
#include "itkClickedComponentImageFilter.h"
#include "itkCoarseSegmentationFilter.h"
#include "itkDivAttentionRefineFilter.h"
#include "itkDivAttentionRuntime.h"
#include "itkImageFileReader.h"
#include "itkImageFileWriter.h"
#include "itkImageRegionConstIterator.h"
#include "itkPCACropResampleFilter.h"
#include "itkPasteBackFilter.h"
#include "itkSegmentationModelSupport.h"

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>

namespace
{
// The CT is read as float (HU); every intermediate image is float; the mask is uint8 (1 = object).
using CTImageType = itk::Image<float, 3>;
using FloatImageType = itk::Image<float, 3>;
using MaskImageType = itk::Image<uint8_t, 3>;
using LabelImageType = itk::Image<uint8_t, 3>;
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

// Writes the phantom's CT and truth labels into `directory` (as a user's files would be) and returns the click on
// `organ` that the phantom itself proposes (a point well inside the object) and the organ's label value.
void
MakePhantom(const std::string & directory, const std::string & organ, PointType & click, int & label)
{
  // Coarse, so that the example runs in seconds: 190 x 150 x 52 voxels of 2 x 2 x 5 mm, the field of view the bundled
  // models were trained on (380 x 300 x 260 mm; a field of view that cuts the body off is outside their training).
  auto phantom = itk::CTPhantomGenerator::New();
  phantom->SetSize({ { 190, 150, 52 } });
  itk::CTPhantomGenerator::SpacingType spacing;
  spacing[0] = 2.0;
  spacing[1] = 2.0;
  spacing[2] = 5.0;
  phantom->SetSpacing(spacing);
  phantom->SetSeed(7);
  phantom->Update();

  label = -1;
  for (const auto & object : phantom->GetObjects())
  {
    if (object.name == organ)
    {
      click = object.click;
      label = object.label;
    }
  }
  if (label < 0)
  {
    throw std::invalid_argument("the phantom has no object \"" + organ + "\"");
  }

  std::filesystem::create_directories(directory);
  itk::WriteImage(phantom->GetCT(), directory + "/phantom-ct.nii.gz", true);
  itk::WriteImage(phantom->GetLabels(), directory + "/phantom-labels.nii.gz", true);
}

// Voxels of the mask that are 1.
size_t
CountVoxels(const MaskImageType * mask)
{
  size_t count = 0;
  for (itk::ImageRegionConstIterator<MaskImageType> it(mask, mask->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
  {
    count += it.Get() != 0 ? 1 : 0;
  }
  return count;
}

// Dice of (mask != 0) and (truth == label); both on the same grid.
double
Dice(const MaskImageType * mask, const LabelImageType * truth, int label)
{
  if (mask->GetLargestPossibleRegion() != truth->GetLargestPossibleRegion())
  {
    throw std::runtime_error("the truth labels are not on the CT's grid");
  }
  size_t                                        both = 0, inMask = 0, inTruth = 0;
  itk::ImageRegionConstIterator<MaskImageType>  m(mask, mask->GetLargestPossibleRegion());
  itk::ImageRegionConstIterator<LabelImageType> t(truth, truth->GetLargestPossibleRegion());
  for (; !m.IsAtEnd(); ++m, ++t)
  {
    const bool a = m.Get() != 0;
    const bool b = t.Get() == label;
    both += (a && b) ? 1 : 0;
    inMask += a ? 1 : 0;
    inTruth += b ? 1 : 0;
  }
  return inMask + inTruth == 0 ? 1.0 : 2.0 * static_cast<double>(both) / static_cast<double>(inMask + inTruth);
}

int
Run(int argc, char * argv[])
{
  const std::string modelDirectory = DIVATTENTION_EXAMPLE_MODEL_DIR;
  auto              options = ParseOptions(argc, argv,
                                           { { "ct", "" },
                                             { "click", "" },
                                             { "output", "" },
                                             { "truth", "" },
                                             { "label", "" },
                                             { "phantom", "" },
                                             { "organ", "spleen" },
                                             { "coarse-model", modelDirectory + "/coarse-munet-small.pt" },
                                             { "refine-model", modelDirectory + "/refine-unetr-small-divattention.pt" },
                                             { "device", "auto" },
                                             { "min-dice", "0" } });

  // The runtime first: one thread budget for ITK and LibTorch, and LibTorch's host allocator.
  itk::DivAttentionRuntime::Initialize();

  // --- Inputs: a CT file, a click (LPS, mm), optionally the truth. With --phantom, files the example makes. ---
  PointType click;
  int       label = -1;
  if (!options["phantom"].empty())
  {
    const std::string directory = options["phantom"];
    MakePhantom(directory, options["organ"], click, label);
    options["ct"] = directory + "/phantom-ct.nii.gz";
    options["truth"] = directory + "/phantom-labels.nii.gz";
    options["output"] = directory + "/mask.nii.gz";
    std::cout << "phantom written to " << directory << ", clicking the " << options["organ"] << " (label " << label
              << ")" << std::endl;
  }
  else
  {
    if (options["ct"].empty() || options["click"].empty() || options["output"].empty())
    {
      throw std::invalid_argument("give --ct, --click and --output (or --phantom DIR)");
    }
    const auto xyz = itk::ClickPoints::ParseTriple(options["click"]);
    for (unsigned int a = 0; a < 3; ++a)
    {
      click[a] = xyz[a];
    }
    label = options["label"].empty() ? 1 : std::stoi(options["label"]);
  }
  const CTImageType::Pointer ct = itk::ReadImage<CTImageType>(options["ct"]);
  std::cout << "CT " << options["ct"] << ": " << ct->GetLargestPossibleRegion().GetSize() << " voxels of "
            << ct->GetSpacing() << " mm; click " << click << " (LPS, mm)" << std::endl;

  // --- The two models, loaded once. Each filter could load its own file (SetModelFile); loading them here lets us
  // read what the pipeline needs to know from the model files: the click encoding and the patch size. ---
  const auto device = itk::DivAttentionRuntime::ResolveDevice(options["device"]);
  const auto coarseModel = itk::SegmentationModelSupport::Load(options["coarse-model"], device, "coarse model");
  const auto refineModel = itk::SegmentationModelSupport::Load(options["refine-model"], device, "refine model");
  itk::SegmentationModelSupport::CheckRole(*coarseModel, "coarse", "coarse model");
  itk::SegmentationModelSupport::CheckRole(*refineModel, "refine", "refine model");

  // --- Step 1: the click map on the CT's grid, encoded as the coarse model was trained (e.g. distance in mm). ---
  using ClickMapFilterType = itk::ClickDistanceTransformFilter<CTImageType, FloatImageType>;
  auto clickMap = ClickMapFilterType::New();
  clickMap->SetReferenceImage(ct); // only the grid is used
  clickMap->SetClicks({ click });
  clickMap->SetEncoding(itk::SegmentationModelSupport::ClickEncodingOf(
    coarseModel->description.preprocessing.clickEncoding, "coarse model"));

  // --- Step 2: stage 1. The coarse network runs on windows at its own spacing around the click; the region grows
  // while the predicted object touches its border (up to MaximumExtent mm). Output: a probability on its own grid. ---
  using CoarseFilterType = itk::CoarseSegmentationFilter<CTImageType, FloatImageType>;
  auto coarse = CoarseFilterType::New();
  coarse->SetInput(ct);
  coarse->SetClickMap(clickMap->GetOutput());
  coarse->SetModel(coarseModel);
  coarse->SetClick(click);
  coarse->SetMaximumExtent(400.0); // mm: room for a large liver
  coarse->SetGrowthThreshold(0.5);

  // --- Step 2b: only the part of the coarse mask under the click (its connected component), so that a second object
  // in the coarse mask cannot pull the crop away from the click. ---
  using ComponentFilterType = itk::ClickedComponentImageFilter<FloatImageType, FloatImageType>;
  auto component = ComponentFilterType::New();
  component->SetInput(coarse->GetOutput());
  component->SetClicks({ click });
  component->SetThreshold(0.5);

  // --- Step 3: the crop. A cube centred on the clicked object, its side 1.5 x the object's longest axis (estimated
  // by PCA; at least 48 mm), resampled from the CT to the refine model's patch size. If stage 1 found nothing, a 64 mm
  // cube around the click is used instead. ---
  using CropFilterType = itk::PCACropResampleFilter<CTImageType, FloatImageType, FloatImageType>;
  CropFilterType::SizeType patchSize;
  for (unsigned int a = 0; a < 3; ++a)
  {
    patchSize[a] = static_cast<itk::SizeValueType>(refineModel->description.preprocessing.patchSize[a]);
  }
  auto crop = CropFilterType::New();
  crop->SetInput(ct);
  crop->SetMaskImage(component->GetOutput());
  crop->SetOutputSize(patchSize);
  crop->SetMaskThreshold(0.5);
  crop->SetMarginFactor(1.5);
  crop->SetMinimumSideLength(48.0);
  crop->SetAxes(CropFilterType::AxesEnum::Image); // the CT's axes, as the paper; Principal turns with the object
  crop->UseFallbackOn();
  crop->SetFallbackCenter(click);
  crop->SetFallbackSideLength(64.0);

  // --- Step 4: stage 2, the refinement network with its div-attention modules, on the cube. A model trained with a
  // click channel also gets the click map on the cube's grid. Output 0: refined probability; output 1: the
  // div-attention map (where the network's decoder scales disagreed), both on the cube's grid. ---
  using RefineFilterType = itk::DivAttentionRefineFilter<FloatImageType, FloatImageType>;
  auto refine = RefineFilterType::New();
  refine->SetInput(crop->GetOutput());
  refine->SetModel(refineModel);
  using CropClickMapFilterType = itk::ClickDistanceTransformFilter<FloatImageType, FloatImageType>;
  CropClickMapFilterType::Pointer cropClickMap;
  if (refineModel->network->GetInputChannels() == 2)
  {
    cropClickMap = CropClickMapFilterType::New();
    cropClickMap->SetReferenceImage(crop->GetOutput());
    cropClickMap->SetClicks({ click });
    cropClickMap->SetEncoding(itk::SegmentationModelSupport::ClickEncodingOf(
      refineModel->description.preprocessing.clickEncoding, "refine model"));
    refine->SetClickMap(cropClickMap->GetOutput());
  }

  // --- Step 5: back onto the CT's grid. Each CT voxel inside the cube takes the interpolated refined probability,
  // thresholded at 0.5 into a label (1 = object); voxels outside the cube are 0. ---
  using PasteFilterType = itk::PasteBackFilter<FloatImageType, MaskImageType, CTImageType>;
  auto paste = PasteFilterType::New();
  paste->SetInput(refine->GetOutput());
  paste->SetReferenceImage(ct); // only the grid is used
  paste->SetOutputMode(PasteFilterType::OutputEnum::Label);
  paste->SetThreshold(0.5);

  // --- Writing the mask pulls the whole pipeline: nothing above has run yet. ---
  auto writer = itk::ImageFileWriter<MaskImageType>::New();
  writer->SetInput(paste->GetOutput());
  writer->SetFileName(options["output"]);
  writer->UseCompressionOn();
  writer->Update();

  // What each step did.
  const MaskImageType * mask = paste->GetOutput();
  std::cout << "stage 1: " << coarse->GetNumberOfWindows() << " windows on " << coarse->GetDeviceUsed() << ", grid "
            << coarse->GetOutput()->GetLargestPossibleRegion().GetSize() << " at " << coarse->GetOutput()->GetSpacing()
            << " mm" << std::endl;
  std::cout << "crop: centre " << crop->GetCropCenter() << ", side " << crop->GetCropSideLength() << " mm"
            << (crop->GetUsedFallback() ? " (fallback: stage 1 found nothing)" : "") << ", patch "
            << crop->GetOutput()->GetLargestPossibleRegion().GetSize() << std::endl;
  std::cout << "stage 2: " << refine->GetNumberOfAttentionMaps() << " div-attention maps" << std::endl;

  // --- Checks: the mask is on the CT's grid, not empty, and the file reads back as it. ---
  int        failures = 0;
  const auto voxels = CountVoxels(mask);
  std::cout << "mask " << options["output"] << ": " << voxels << " voxels ("
            << static_cast<double>(voxels) * ct->GetSpacing()[0] * ct->GetSpacing()[1] * ct->GetSpacing()[2] / 1000.0
            << " ml)" << std::endl;
  if (voxels == 0)
  {
    std::cerr << "FAILED: the mask is empty" << std::endl;
    ++failures;
  }
  if (mask->GetLargestPossibleRegion() != ct->GetLargestPossibleRegion() || mask->GetOrigin() != ct->GetOrigin() ||
      mask->GetDirection() != ct->GetDirection())
  {
    std::cerr << "FAILED: the mask is not on the CT's grid" << std::endl;
    ++failures;
  }
  const auto written = itk::ReadImage<MaskImageType>(options["output"]);
  if (written->GetLargestPossibleRegion() != mask->GetLargestPossibleRegion() || CountVoxels(written) != voxels)
  {
    std::cerr << "FAILED: " << options["output"] << " does not read back as the mask" << std::endl;
    ++failures;
  }
  if (!options["truth"].empty())
  {
    const auto truth = itk::ReadImage<LabelImageType>(options["truth"]);
    const auto dice = Dice(mask, truth, label);
    std::cout << "Dice against the truth (label " << label << "): " << dice << std::endl;
    if (dice < std::stod(options["min-dice"]))
    {
      std::cerr << "FAILED: Dice " << dice << " < " << options["min-dice"] << std::endl;
      ++failures;
    }
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
    std::cerr << "ComposeFiltersByHand: " << error.what() << std::endl;
    return EXIT_FAILURE;
  }
}
