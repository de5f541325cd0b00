// DivAttentionSegment: one click on a CT, a 3D mask of the organ or lesion under it.
// Reads a volume (NIfTI, NRRD, MHA, ... or a DICOM series directory), runs ClickGuidedSegmentationFilter (coarse
// stage, PCA crop, div-attention refinement, paste back) and writes the mask, optionally the probability, the
// attention map, the crop and a preview picture. Every output is written to a temporary name and renamed at the end.
#include "divaApplicationSupport.h"
#include "divaBatchRun.h"
#include "divaDevice.h"
#include "divaDicomSegWriter.h"
#include "divaVersion.h"
#include "itkBoxPrompt.h"
#include "itkClickGuidedSegmentationFilter.h"
#include "itkClickPoints.h"
#include "itkCommand.h"
#include "itkGDCMImageIO.h"
#include "itkGDCMSeriesFileNames.h"
#include "itkImageFileReader.h"
#include "itkImageIOFactory.h"
#include "itkImageSeriesReader.h"
#include "itkMaskCorrectionSupport.h"
#include "itkNearestNeighborInterpolateImageFunction.h"
#include "itkNiftiVolumeReader.h"
#include "itkSegmentationInputCheck.h"
#include "itkSegmentationModelSupport.h"
#include "itkSegmentationPreview.h"
#include "itkVolumeFileCheck.h"
#include "itkWriteImageAtomically.h"

#include <tclap/CmdLine.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace
{
namespace fs = std::filesystem;
using CTImageType = itk::Image<float, 3>;
using MaskImageType = itk::Image<uint8_t, 3>;
using SegmentationFilterType = itk::ClickGuidedSegmentationFilter<CTImageType, MaskImageType>;
using ReferenceImageType = itk::Image<uint16_t, 3>;

// The CT, from a file or from the first DICOM series of a directory. `finite` says whether every voxel is known to be
// finite already (NiftiVolumeReader checks), so that CheckFinite can be left out.
CTImageType::Pointer
ReadInput(const std::string & path, bool & finite)
{
  finite = false;
  std::error_code error;
  if (!fs::exists(path, error))
  {
    throw std::runtime_error("input \"" + path + "\" does not exist");
  }
  if (fs::is_directory(path, error))
  {
    auto names = itk::GDCMSeriesFileNames::New();
    names->SetUseSeriesDetails(true);
    names->SetDirectory(path);
    const auto & series = names->GetSeriesUIDs();
    if (series.empty())
    {
      throw std::runtime_error("input \"" + path + "\" is a directory without a DICOM series");
    }
    auto reader = itk::ImageSeriesReader<CTImageType>::New();
    reader->SetImageIO(itk::GDCMImageIO::New());
    reader->SetFileNames(names->GetFileNames(series.front()));
    reader->Update();
    return reader->GetOutput();
  }
  auto io = itk::ImageIOFactory::CreateImageIO(path.c_str(), itk::ImageIOFactory::IOFileModeEnum::ReadMode);
  if (io.IsNull())
  {
    throw std::runtime_error("input \"" + path + "\" is not an image this program can read");
  }
  io->SetFileName(path);
  io->ReadImageInformation();
  const unsigned dimensions = io->GetNumberOfDimensions();
  if (dimensions != 3)
  {
    throw std::runtime_error("input \"" + path + "\" is " + std::to_string(dimensions) + "D; a 3D CT volume is needed");
  }
  if (io->GetNumberOfComponents() != 1)
  {
    throw std::runtime_error("input \"" + path + "\" has " + std::to_string(io->GetNumberOfComponents()) +
                             " components per voxel; a scalar CT is needed");
  }
  // A plain, complete 3D NIfTI: read in one pass, converted on every thread, ITK's geometry (a third of the time of
  // ITK's reader and the check below: Documentation/Performance.md, "Cold start"). Anything else, or a file cut short
  // or corrupt, is read by ITK and checked below.
  if (auto image = itk::NiftiVolumeReader::ReadAsFloat(path))
  {
    finite = true;
    return image;
  }
  auto reader = itk::ImageFileReader<CTImageType>::New();
  reader->SetFileName(path);
  reader->Update();
  // ITK 5.2's readers miss a file cut short (NIfTI, MetaImage) and NaN voxels in NIfTI: read the bytes again.
  itk::VolumeFileCheck::Check(path, "--input");
  return reader->GetOutput();
}

void
CheckFinite(const CTImageType * image, const std::string & path)
{
  const size_t  count = image->GetBufferedRegion().GetNumberOfPixels();
  const float * data = image->GetBufferPointer();
  size_t        bad = 0, first = 0;
  for (size_t i = 0; i < count; ++i)
  {
    if (!std::isfinite(data[i]))
    {
      first = bad == 0 ? i : first;
      ++bad;
    }
  }
  if (bad > 0)
  {
    const auto         index = image->ComputeIndex(static_cast<CTImageType::OffsetValueType>(first));
    std::ostringstream message;
    message << "input \"" << path << "\" has " << bad << " voxels that are not finite (NaN or infinite), the first at "
            << "index " << index;
    throw std::runtime_error(message.str());
  }
}

// An output must be writable before hours of work are spent: its directory must exist and accept files.
void
CheckWritable(const std::string & option, const std::string & path)
{
  if (path.empty())
  {
    return;
  }
  const fs::path  target(path);
  const fs::path  directory = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code error;
  if (!fs::is_directory(directory, error))
  {
    throw std::runtime_error(option + " \"" + path + "\": directory \"" + directory.string() + "\" does not exist");
  }
  if (::access(directory.c_str(), W_OK) != 0)
  {
    throw std::runtime_error(option + " \"" + path + "\": directory \"" + directory.string() + "\" is not writable");
  }
}

// The bundled model of a role, looked for next to the executable's install tree and the source tree.
std::string
BundledModel(const std::string & fileName)
{
  std::vector<fs::path> candidates;
  if (const char * directory = std::getenv("DIVATTENTION_MODEL_DIR"))
  {
    candidates.emplace_back(fs::path(directory) / fileName);
  }
  std::error_code error;
  const fs::path  executable = fs::read_symlink("/proc/self/exe", error);
  if (!error)
  {
    candidates.push_back(executable.parent_path() / ".." / "share" / "DivAttention" / "Models" / fileName);
    candidates.push_back(executable.parent_path() / ".." / ".." / "Models" / fileName); // build tree inside source
  }
  for (const auto & candidate : candidates)
  {
    if (fs::is_regular_file(candidate, error))
    {
      return candidate.lexically_normal().string();
    }
  }
  return {};
}

// A progress bar on a terminal; nothing when stderr is a file or a pipe.
class ProgressBar : public itk::Command
{
public:
  using Self = ProgressBar;
  using Pointer = itk::SmartPointer<Self>;
  itkNewMacro(Self);
  void
  Execute(itk::Object * caller, const itk::EventObject & event) override
  {
    Execute(static_cast<const itk::Object *>(caller), event);
  }
  void
  Execute(const itk::Object * caller, const itk::EventObject & event) override
  {
    if (!itk::ProgressEvent().CheckEvent(&event))
    {
      return;
    }
    const auto * process = dynamic_cast<const itk::ProcessObject *>(caller);
    const int    percent = static_cast<int>(std::lround(100.0 * process->GetProgress()));
    if (percent == m_Last)
    {
      return;
    }
    m_Last = percent;
    const int filled = percent / 4;
    std::cerr << "\r[" << std::string(static_cast<size_t>(filled), '#')
              << std::string(static_cast<size_t>(25 - filled), ' ') << "] " << std::setw(3) << percent << "%"
              << (percent >= 100 ? "\n" : "") << std::flush;
  }

private:
  int m_Last = -1;
};

// A 3D Slicer CLI-module description of this program (Slicer runs TCLAP programs described by such XML).
void
PrintSlicerXml()
{
  std::cout << R"(<?xml version="1.0" encoding="utf-8"?>
<executable>
  <category>Segmentation</category>
  <title>DivAttention click segmentation</title>
  <description>One click on a CT, a 3D mask of the organ or lesion under it (coarse nnU-Net-style U-Net, PCA crop, UNETR refinement with the div-attention module).</description>
  <version>)"
            << DIVATTENTION_VERSION << R"(</version>
  <documentation-url>https://example.invalid/DivAttention</documentation-url>
  <license>see the DivAttention repository</license>
  <contributor>DivAttention developers</contributor>
  <parameters>
    <label>Input and output</label>
    <image>
      <name>input</name><longflag>input</longflag><label>CT volume</label><channel>input</channel>
      <description>CT volume in Hounsfield units</description>
    </image>
    <point multiple="true" coordinateSystem="lps">
      <name>click</name><longflag>click</longflag><label>Click(s)</label><channel>input</channel>
      <description>Point(s) inside the object, physical LPS millimetres</description>
    </point>
    <point multiple="true" coordinateSystem="lps">
      <name>negativeClick</name><longflag>negative-click</longflag><label>Negative click(s)</label><channel>input</channel>
      <description>Point(s) on a false positive, physical LPS millimetres: the part of the mask geodesically closer to it than to every click is removed (cut at the narrowing where it joins the object); models with a negative click map read them instead</description>
    </point>
    <image type="label">
      <name>previousMask</name><longflag>previous-mask</longflag><label>Previous mask</label><channel>input</channel>
      <description>Optional mask to correct (non-zero = object, on the CT's grid): clicks outside it add what the pipeline finds there, clicks inside it keep their part, negative clicks carve it; clicks are then optional</description>
    </image>
    <double-vector>
      <name>box</name><longflag>box</longflag><label>Box (two corners)</label>
      <description>Optional box prompt x0,y0,z0,x1,y1,z1: two opposite corners, physical LPS millimetres, along the CT's axes. It places the crop instead of stage 1, and the mask stays inside it; clicks are then optional</description>
    </double-vector>
    <image type="label">
      <name>output</name><longflag>output</longflag><label>Mask</label><channel>output</channel>
      <description>Label image (1 = object) on the input grid</description>
    </image>
    <image>
      <name>probability</name><longflag>probability</longflag><label>Probability</label><channel>output</channel>
      <description>Foreground probability on the input grid (optional)</description>
    </image>
  </parameters>
  <parameters advanced="true">
    <label>Models and device</label>
    <file><name>coarseModel</name><longflag>coarse-model</longflag><label>Stage-1 model file</label><channel>input</channel><description>Default: the bundled model</description></file>
    <file><name>refineModel</name><longflag>refine-model</longflag><label>Stage-2 model file</label><channel>input</channel><description>Default: the bundled model</description></file>
    <string-enumeration><name>device</name><longflag>device</longflag><label>Device</label><default>auto</default><element>auto</element><element>cpu</element><element>cuda</element><description>Where the networks run</description></string-enumeration>
    <double><name>threshold</name><longflag>threshold</longflag><label>Threshold</label><default>0.5</default><description>Probability threshold of the mask</description></double>
    <boolean><name>wholeCoarseMask</name><longflag>whole-coarse-mask</longflag><label>Crop by the whole coarse mask</label><default>false</default><description>Place the crop by PCA of the whole coarse mask, as the paper (default: only its components under the clicks)</description></boolean>
    <double><name>refinementBand</name><longflag>refinement-band</longflag><label>Refinement band (coarse voxels)</label><default>0.5</default><description>Half-width of the band around the coarse mask's border within which the refinement decides, in voxels of the coarse model's grid (deeper inside is object, farther outside background); negative: no band, the refinement's mask as it is (the paper's literal pipeline)</description></double>
    <string-enumeration><name>warmUp</name><longflag>warm-up</longflag><label>Warm-up</label><default>read</default><element>read</element><element>always</element><element>off</element><description>One forward of each model at the run's shapes in a thread while the CT is read (read: only while the read lasts; always; off: none, the models load after the read). The mask is the same</description></string-enumeration>
    <string-enumeration><name>nothingFound</name><longflag>nothing-found</longflag><label>When the networks find nothing</label><default>like-intensity</default><element>like-intensity</element><element>error</element><description>like-intensity: the click's like-intensity region within the radius below (a warning says so); error: no mask, exit status 3</description></string-enumeration>
    <double><name>clickTissueFraction</name><longflag>click-tissue-fraction</longflag><label>Share of the mask of the clicked tissue</label><default>0.3</default><description>The share of the networks' mask that must be of the clicked tissue for it to count as found at the click (0: no check)</description></double>
    <double><name>nothingFoundRadius</name><longflag>nothing-found-radius</longflag><label>Like-intensity radius (mm)</label><default>30</default><description>Radius of the like-intensity region when the networks find nothing at the click</description></double>
    <double><name>coarseMaxExtent</name><longflag>coarse-max-extent</longflag><label>Largest object extent (mm)</label><default>400</default><description>The coarse stage looks no further than this cube around the click (one window at least)</description></double>
    <string-enumeration><name>coarseWindowPlacement</name><longflag>coarse-window-placement</longflag><label>Coarse windows at the CT's border</label><default>as-trained</default><element>as-trained</element><element>inside-image</element><element>centred-on-click</element><description>as-trained: as the coarse model file says its training placed them; inside-image: every window inside the CT (a click near its border sits off-centre); centred-on-click: up to half a window beyond the CT (read as air), so the first window is centred on the click</description></string-enumeration>
  </parameters>
</executable>
)";
}
// The mask of --previous-mask (non-zero = object), which must lie on the CT's grid.
MaskImageType::Pointer
ReadPreviousMask(const std::string & path, const CTImageType * ct)
{
  if (!std::filesystem::is_regular_file(path))
  {
    throw std::runtime_error("--previous-mask \"" + path + "\": no such file");
  }
  auto reader = itk::ImageFileReader<MaskImageType>::New();
  reader->SetFileName(path);
  try
  {
    reader->Update();
    itk::VolumeFileCheck::Check(path, "--previous-mask");
    itk::MaskCorrectionSupport::CheckSameGrid(ct, reader->GetOutput(), "--previous-mask \"" + path + "\"");
  }
  catch (const itk::ExceptionObject & error)
  {
    std::string description = error.GetDescription();
    for (const std::string prefix : { "ITK ERROR: ", "DivAttention: " })
    {
      if (description.rfind(prefix, 0) == 0)
      {
        description.erase(0, prefix.size());
      }
    }
    throw std::runtime_error(description.find("--previous-mask") != std::string::npos
                               ? description
                               : "--previous-mask \"" + path + "\": cannot be read as a 3D label image (" +
                                   description + ")");
  }
  return reader->GetOutput();
}

// The reference label image of --reference, which must lie on the CT's grid (same size, origin, spacing, direction).
ReferenceImageType::Pointer
ReadReference(const std::string & path, const CTImageType * ct)
{
  if (!std::filesystem::is_regular_file(path))
  {
    throw std::runtime_error("--reference \"" + path + "\": no such file");
  }
  auto reader = itk::ImageFileReader<ReferenceImageType>::New();
  reader->SetFileName(path);
  try
  {
    reader->Update();
  }
  catch (const itk::ExceptionObject & error)
  {
    throw std::runtime_error("--reference \"" + path + "\": cannot be read as a 3D label image (" +
                             std::string(error.GetDescription()) + ")");
  }
  itk::VolumeFileCheck::Check(path, "--reference");
  ReferenceImageType::Pointer image = reader->GetOutput();
  const auto &                grid = image->GetLargestPossibleRegion();
  const double                tolerance = 1e-4 * ct->GetSpacing()[0];
  bool                        same = grid.GetSize() == ct->GetLargestPossibleRegion().GetSize();
  for (unsigned d = 0; d < 3 && same; ++d)
  {
    same = std::abs(image->GetOrigin()[d] - ct->GetOrigin()[d]) <= tolerance &&
           std::abs(image->GetSpacing()[d] - ct->GetSpacing()[d]) <= tolerance;
    for (unsigned e = 0; e < 3 && same; ++e)
    {
      same = std::abs(image->GetDirection()[d][e] - ct->GetDirection()[d][e]) <= 1e-6;
    }
  }
  if (!same)
  {
    throw std::runtime_error("--reference \"" + path +
                             "\": not on the input's grid (size, origin, spacing or "
                             "direction differ)");
  }
  return image;
}

// Dice, recall and precision of the mask against the reference object, on one line.
void
PrintAgreement(const MaskImageType * mask, const ReferenceImageType * reference, int label, const std::string & path)
{
  const size_t count = mask->GetBufferedRegion().GetNumberOfPixels();
  size_t       both = 0, maskOnly = 0, referenceOnly = 0;
  for (size_t i = 0; i < count; ++i)
  {
    const uint16_t value = reference->GetBufferPointer()[i];
    const bool     inReference = label == 0 ? value != 0 : value == label;
    const bool     inMask = mask->GetBufferPointer()[i] != 0;
    both += inMask && inReference ? 1 : 0;
    maskOnly += inMask && !inReference ? 1 : 0;
    referenceOnly += !inMask && inReference ? 1 : 0;
  }
  // Conventions of Documentation/Method.md: both empty -> 1.
  auto ratio = [](double numerator, double denominator) { return denominator > 0 ? numerator / denominator : 1.0; };
  std::cout << "DivAttentionSegment: against " << path << (label == 0 ? "" : " label " + std::to_string(label))
            << ": Dice " << std::fixed << std::setprecision(3)
            << ratio(2.0 * both, 2.0 * both + maskOnly + referenceOnly) << ", recall "
            << ratio(both, both + referenceOnly) << ", precision " << ratio(both, both + maskOnly) << std::endl;
}

// Every output of a single-case run is written, flushed and renamed: the process ends at once, with `status`.
// Returning from main would unmap the CT's and the networks' buffers and run the static destructors of LibTorch's
// ~300 libraries: 0.2 s of a command-line run that does nothing for the result. Sanitizer builds return instead, so
// that LeakSanitizer still checks the process at exit.
int
EndProcessNow(int status)
{
#if defined(DIVATTENTION_SANITIZED) || defined(__SANITIZE_ADDRESS__)
  return status;
#else
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(status);
#endif
}
} // namespace

int
main(int argc, char ** argv)
{
  return diva::application::Run(
    "DivAttentionSegment",
    [&]()
    {
      namespace app = diva::application;
      for (int i = 1; i < argc; ++i)
      {
        if (std::string(argv[i]) == "--xml")
        {
          PrintSlicerXml();
          return 0;
        }
      }
      TCLAP::CmdLine cmd("One click on a CT, a 3D mask of the organ or lesion under it. Prints a Slicer CLI "
                         "description with --xml.",
                         ' ', app::VersionText());
      cmd.setExceptionHandling(false);
      // --input, --click and --output are required without --batch (checked after parsing).
      TCLAP::ValueArg<std::string> input("i", "input", "CT volume (NIfTI, NRRD, MHA, ...) or DICOM series directory",
                                         false, "", "path", cmd);
      TCLAP::MultiArg<std::string> clicks("c", "click", "Click x,y,z (repeatable; the first is the main click)", false,
                                          "x,y,z", cmd);
      TCLAP::MultiArg<std::string> negativeClicks(
        "", "negative-click",
        "Negative click x,y,z on a false positive (repeatable): the part of the mask geodesically closer to it than to "
        "every click is removed, cut where it narrows to join the object (models with a negative click map read it "
        "instead)",
        false, "x,y,z", cmd);
      TCLAP::ValueArg<std::string> previousMask(
        "", "previous-mask",
        "Mask to correct (non-zero = object, on the input's grid): a click outside it adds what the pipeline finds "
        "there, a click inside it keeps that part, negative clicks carve it (--click is then optional)",
        false, "", "file", cmd);
      TCLAP::ValueArg<std::string> box("", "box",
                                       "Box prompt x0,y0,z0,x1,y1,z1: two opposite corners in --click-space (physical "
                                       "LPS mm by default), the box axis-aligned in the CT's index space. It places "
                                       "the crop instead of stage 1 and the mask stays inside it; --click is then "
                                       "optional (given, it must lie in the box)",
                                       false, "", "corners", cmd);
      TCLAP::ValueArg<std::string> clickSpace("", "click-space", "Space of the clicks: lps (default), ras or index",
                                              false, "lps", "lps|ras|index", cmd);
      TCLAP::ValueArg<std::string> output("o", "output", "Mask (label image, 1 = object) on the input grid", false, "",
                                          "file", cmd);
      TCLAP::ValueArg<std::string> batch("", "batch",
                                         "Segment every case of a CSV file (columns image, clicks, negative_clicks, "
                                         "output) with the models loaded once; a case whose output exists is skipped",
                                         false, "", "cases.csv", cmd);
      TCLAP::ValueArg<std::string> shard("", "shard", "With --batch: only cases K, K+N, K+2N, ... (0-based)", false, "",
                                         "K/N", cmd);
      TCLAP::ValueArg<int>         jobs(
                "", "jobs",
                "With --batch: run the cases in N processes of this program at once, each with 1/N of --threads (at least "
                        "one); one summary for all. On a machine of few cores --jobs 2 keeps both busy where one process leaves one "
                        "idle between its network layers and while it reads and writes (default 1)",
                false, 1, "N", cmd);
      TCLAP::ValueArg<std::string> summary(
        "", "summary", "With --batch: the summary CSV (default: <batch file>.summary.csv beside it)", false, "", "file",
        cmd);
      TCLAP::ValueArg<std::string> outputFormat(
        "", "output-format",
        "Format of the mask: auto (by the extension: .dcm is a DICOM SEG, others as ITK writes them), image or "
        "dicom-seg (needs a DICOM series as input)",
        false, "auto", "auto|image|dicom-seg", cmd);
      TCLAP::ValueArg<std::string> segmentLabel(
        "", "segment-label", "DICOM SEG: the segment's label (default: the type's name)", false, "", "text", cmd);
      TCLAP::ValueArg<std::string> segmentType(
        "", "segment-type",
        "DICOM SEG: the segment's coded type: tissue (default), spleen, liver, kidney, kidney-left, kidney-right, "
        "pancreas, tumour, lesion, nodule",
        false, "", "name", cmd);
      TCLAP::ValueArg<std::string> probability("", "probability", "Also write the probability on the input grid", false,
                                               "", "file", cmd);
      TCLAP::ValueArg<std::string> attention("", "attention", "Also write the div-attention map (crop grid)", false, "",
                                             "file", cmd);
      TCLAP::ValueArg<std::string> crop("", "crop", "Also write the CT crop the refinement saw", false, "", "file",
                                        cmd);
      TCLAP::ValueArg<std::string> preview("", "preview",
                                           "Also write a PNG: slices through the click with the mask's "
                                           "outline and the attention map",
                                           false, "", "file.png", cmd);
      TCLAP::ValueArg<std::string> coarseModel("", "coarse-model", "Stage-1 model file (default: the bundled one)",
                                               false, "", "file", cmd);
      TCLAP::ValueArg<std::string> refineModel("", "refine-model", "Stage-2 model file (default: the bundled one)",
                                               false, "", "file", cmd);
      TCLAP::ValueArg<std::string> device("", "device", "auto, cpu or cuda", false, "auto", "device", cmd);
      TCLAP::ValueArg<int> threads("", "threads", "CPU threads (default: all this process may use)", false, 0, "count",
                                   cmd);
      TCLAP::ValueArg<double> threshold("", "threshold", "Probability threshold of the mask", false, 0.5, "probability",
                                        cmd);
      TCLAP::ValueArg<double> coarseMaxExtent(
        "", "coarse-max-extent",
        "Largest object extent in mm: the coarse stage looks no further than this cube around the click (one window "
        "at least; smaller is faster for small targets)",
        false, 400.0, "mm", cmd);
      TCLAP::ValueArg<std::string> coarseWindowPlacement(
        "", "coarse-window-placement",
        "Where the coarse windows lie at the CT's border: as-trained (default) as the coarse model file says its "
        "training placed them; inside-image: every window inside the CT (a click near its border sits off-centre); "
        "centred-on-click: up to half a window beyond the CT (read as air), so the first window is centred on the "
        "click",
        false, "as-trained", "as-trained|inside-image|centred-on-click", cmd);
      TCLAP::SwitchArg wholeCoarseMask(
        "", "whole-coarse-mask",
        "Place the crop by PCA of the whole coarse mask, as the paper (default: only its components under the clicks)",
        cmd);
      TCLAP::ValueArg<double> refinementBand(
        "", "refinement-band",
        "Half-width, in coarse-model voxels, of the band around the coarse mask's border within which the refinement "
        "decides (deeper inside is object, farther outside background); a negative value switches the band off: the "
        "refinement's mask as it is, the paper's literal pipeline",
        false, 0.5, "voxels", cmd);
      TCLAP::ValueArg<std::string> nothingFound(
        "", "nothing-found",
        "When the networks find nothing at the first click: like-intensity (default) writes the click's like-intensity "
        "region (connected voxels within mean +- max(2.5 SD, 20 HU) of its 3x3x3 neighbourhood, within "
        "--nothing-found-radius mm) and says so on stderr; error writes nothing and exits with status 3",
        false, "like-intensity", "like-intensity|error", cmd);
      TCLAP::ValueArg<double> nothingFoundRadius(
        "", "nothing-found-radius", "Radius in mm of the like-intensity region of --nothing-found like-intensity",
        false, itk::MaskCorrectionSupport::LikeIntensityNothingFoundRadius, "mm", cmd);
      TCLAP::ValueArg<double> clickTissueFraction(
        "", "click-tissue-fraction",
        "The share of the networks' mask that must be of the clicked tissue (in the click's like-intensity band) for "
        "it "
        "to count as found at the click; below it the mask counts as nothing found (--nothing-found). 0 turns the "
        "check off",
        false, 0.3, "0..1", cmd);
      TCLAP::ValueArg<std::string> warmUpMode(
        "", "warm-up",
        "auto (default): read on a CUDA device and for paper-size models; on the CPU with smaller models (the bundled "
        "ones) no warm-up, which there costs a run more than it saves; read: a thread loads the models and runs each "
        "once at the run's shapes while the CT is "
        "read, starting a model's warm-up only while the read lasts; always: both warm-ups, waited for; off: the "
        "models load after the read, no warm-up. The mask is the same",
        false, "auto", "auto|read|always|off", cmd);
      TCLAP::SwitchArg             verbose("v", "verbose", "Say what happens and how long it takes", cmd);
      TCLAP::ValueArg<std::string> reference("", "reference",
                                             "Reference label image on the input's grid: print Dice, recall and "
                                             "precision of the mask against it",
                                             false, "", "file", cmd);
      TCLAP::ValueArg<int>         referenceLabel(
                "", "reference-label", "Label of the object in --reference (0: any non-zero label)", false, 0, "id", cmd);
      cmd.parse(argc, argv);
      const bool batchMode = batch.isSet();
      if (jobs.getValue() < 1)
      {
        throw TCLAP::CmdLineParseException("option --jobs: " + std::to_string(jobs.getValue()) + " is not >= 1");
      }
      if (batchMode)
      {
        // Each case's image, clicks and output come from the batch file; the other outputs are per-case pictures.
        for (const TCLAP::Arg * single :
             std::vector<const TCLAP::Arg *>{ &input, &clicks, &negativeClicks, &box, &previousMask, &output,
                                              &probability, &attention, &crop, &preview, &reference })
        {
          if (single->isSet())
          {
            throw TCLAP::CmdLineParseException("option --" + single->getName() +
                                               " cannot be combined with --batch (each case's image, clicks and "
                                               "output come from the batch file)");
          }
        }
      }
      else
      {
        for (const TCLAP::Arg * needed : std::vector<const TCLAP::Arg *>{ &input, &clicks, &output })
        {
          if (!needed->isSet() && !(needed == &clicks && (box.isSet() || previousMask.isSet())))
          {
            throw TCLAP::CmdLineParseException("Required argument missing: " + needed->getName() +
                                               " (or --batch cases.csv)");
          }
        }
        for (const TCLAP::Arg * batchOnly : std::vector<const TCLAP::Arg *>{ &shard, &summary, &jobs })
        {
          if (batchOnly->isSet())
          {
            throw TCLAP::CmdLineParseException("option --" + batchOnly->getName() + " needs --batch");
          }
        }
      }

      const auto start = std::chrono::steady_clock::now();
      auto       log = [&](const std::string & message)
      {
        if (verbose.getValue())
        {
          const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          std::cerr << "[" << std::fixed << std::setprecision(2) << seconds << " s] " << message << std::endl;
        }
      };
      if (threads.getValue() < 0)
      {
        throw std::invalid_argument("option --threads: " + std::to_string(threads.getValue()) + " is not >= 0");
      }
      if (threads.getValue() > 0)
      {
        itk::DivAttentionRuntime::SetThreadBudget(threads.getValue());
      }
      log("threads: " + std::to_string(itk::DivAttentionRuntime::GetThreadBudget()) +
          "; OpenMP waiting: " + diva::application::OpenMPWaitPolicy());
      if (!(threshold.getValue() > 0.0 && threshold.getValue() < 1.0))
      {
        throw std::invalid_argument("option --threshold: " + std::to_string(threshold.getValue()) +
                                    " is not in (0, 1)");
      }
      if (!(coarseMaxExtent.getValue() > 0.0 && std::isfinite(coarseMaxExtent.getValue())))
      {
        throw std::invalid_argument("option --coarse-max-extent: " + std::to_string(coarseMaxExtent.getValue()) +
                                    " is not a finite number > 0 mm");
      }
      if (warmUpMode.getValue() != "auto" && warmUpMode.getValue() != "read" && warmUpMode.getValue() != "always" &&
          warmUpMode.getValue() != "off")
      {
        throw std::invalid_argument("option --warm-up: \"" + warmUpMode.getValue() +
                                    "\" is not auto, read, always or off");
      }
      const auto placement =
        itk::CoarseWindowPlacementFromName(coarseWindowPlacement.getValue(), "option --coarse-window-placement");
      if (nothingFound.getValue() != "like-intensity" && nothingFound.getValue() != "error")
      {
        throw std::invalid_argument("option --nothing-found: \"" + nothingFound.getValue() +
                                    "\" is not like-intensity or error");
      }
      if (!(clickTissueFraction.getValue() >= 0.0 && clickTissueFraction.getValue() <= 1.0))
      {
        throw std::invalid_argument("option --click-tissue-fraction: " +
                                    std::to_string(clickTissueFraction.getValue()) + " is not between 0 and 1");
      }
      if (!(nothingFoundRadius.getValue() > 0.0 && std::isfinite(nothingFoundRadius.getValue())))
      {
        throw std::invalid_argument("option --nothing-found-radius: " + std::to_string(nothingFoundRadius.getValue()) +
                                    " is not a finite number > 0 mm");
      }
      if (!std::isfinite(refinementBand.getValue()))
      {
        throw std::invalid_argument("option --refinement-band: " + std::to_string(refinementBand.getValue()) +
                                    " is not a finite number of coarse voxels (negative: no band)");
      }
      // Everything that can be checked before the work is checked before the work.
      // The mask as a DICOM SEG (Documentation/ClinicalIO.md): only from a DICOM series, whose slices it references.
      if (outputFormat.getValue() != "auto" && outputFormat.getValue() != "image" &&
          outputFormat.getValue() != "dicom-seg")
      {
        throw std::invalid_argument("option --output-format: \"" + outputFormat.getValue() +
                                    "\" is not auto, image or dicom-seg");
      }
      auto isDicomSeg = [&](const std::string & path)
      {
        const std::string extension = fs::path(path).extension().string();
        return outputFormat.getValue() == "dicom-seg" ||
               (outputFormat.getValue() == "auto" && (extension == ".dcm" || extension == ".DCM"));
      };
      diva::application::DicomSegOptions segOptions;
      segOptions.segmentLabel = segmentLabel.getValue();
      segOptions.segmentType = diva::application::FindSegmentType("--segment-type", segmentType.getValue()).name;
      segOptions.algorithmVersion = DIVATTENTION_VERSION;
      // Checks the input of a DICOM SEG output before the work.
      auto checkDicomSegInput = [&](const std::string & inputPath, const std::string & outputPath)
      {
        if (!diva::application::DicomSegAvailable())
        {
          throw std::runtime_error("--output \"" + outputPath +
                                   "\": this build writes no DICOM SEG (DCMTK's dcmseg was not found when it was "
                                   "configured)");
        }
        std::error_code error;
        if (!fs::is_directory(inputPath, error))
        {
          throw std::runtime_error("--output \"" + outputPath + "\": a DICOM SEG references the slices of a DICOM " +
                                   "series, and input \"" + inputPath +
                                   "\" is not a DICOM series directory (write the mask as .nii.gz, or use "
                                   "--output-format image)");
        }
      };
      // The mask, as a DICOM SEG referencing the input series or as an image, atomically.
      auto writeMask = [&](const MaskImageType * mask, const std::string & inputPath, const std::string & outputPath)
      {
        if (isDicomSeg(outputPath))
        {
          checkDicomSegInput(inputPath, outputPath);
          diva::application::WriteDicomSegmentation(mask, diva::application::DicomSeriesFiles(inputPath), segOptions,
                                                    outputPath);
        }
        else
        {
          itk::WriteImageAtomically(mask, outputPath);
        }
        log("wrote " + outputPath);
      };
      if (!batchMode && isDicomSeg(output.getValue()))
      {
        checkDicomSegInput(input.getValue(), output.getValue());
      }
      CheckWritable("--output", output.getValue());
      CheckWritable("--probability", probability.getValue());
      CheckWritable("--attention", attention.getValue());
      CheckWritable("--crop", crop.getValue());
      CheckWritable("--preview", preview.getValue());
      const torch::Device resolved = itk::DivAttentionRuntime::ResolveDevice(device.getValue());
      const auto          space = itk::ClickPoints::ParseSpace(clickSpace.getValue());
      std::string         coarsePath = coarseModel.getValue(), refinePath = refineModel.getValue();
      if (coarsePath.empty())
      {
        coarsePath = BundledModel("coarse-munet-small.pt");
      }
      if (refinePath.empty())
      {
        refinePath = BundledModel("refine-unetr-small-divattention.pt");
      }
      if (coarsePath.empty() || refinePath.empty())
      {
        throw std::runtime_error("no --coarse-model/--refine-model given and no bundled model found (set "
                                 "DIVATTENTION_MODEL_DIR or pass the model files)");
      }

      // The models are loaded once and shared by every case's filter. Unless --no-warm-up, a thread loads them (in
      // batch mode they are loaded here first, so a bad model stops the batch before any case) and runs one forward
      // of each at the shapes of the run (SegmentationModelSupport::WarmUp) while the first CT is read, so the first
      // click pays no lazy set-up (Documentation/Performance.md, "Cold start"). With --no-warm-up they load in this
      // thread when the first CT has been read, as the filter would load them.
      using ModelPointer = SegmentationFilterType::ModelPointer;
      struct PreparedModels
      {
        ModelPointer coarse, refine;
        double       loadSeconds = 0.0, warmUpSeconds = 0.0;
        std::string  warmedUp, warmUpError, warmUpSkipped;
      };
      // auto: read, except on the CPU with models smaller than the paper's, whose first forward has little lazy set-up:
      // there a forward beside the read slows both and costs the run more than it saves (Documentation/Performance.md,
      // "Cold start"). On CUDA the context and the libraries' handles are worth creating while the CT is read.
      const bool        autoMode = warmUpMode.getValue() == "auto";
      const bool        autoOnCpu = autoMode && !resolved.is_cuda();
      const std::string warmUpUsed = autoMode ? "read" : warmUpMode.getValue();
      log("warm-up: " + warmUpMode.getValue() +
          (autoMode ? std::string(resolved.is_cuda() ? " (read on cuda)" : " (on the cpu: read for paper-size models)")
                    : std::string()));
      const bool warmUp = warmUpUsed != "off";
      const bool attentionMaps = !attention.getValue().empty() || !preview.getValue().empty();
      // With --warm-up read, a warm-up starts only while the CT is still being read: a forward that would run after
      // the read would cost the run more than the lazy set-up it saves (Documentation/Performance.md, "Cold start").
      auto       reading = std::make_shared<std::atomic<bool>>(true);
      const bool onlyWhileReading = warmUpUsed == "read";
      auto       prepare = [coarsePath, refinePath, resolved, warmUp, attentionMaps, reading, onlyWhileReading,
                      autoOnCpu](ModelPointer coarse, ModelPointer refine)
      {
        PreparedModels prepared;
        const auto     started = std::chrono::steady_clock::now();
        if (!coarse)
        {
          coarse = itk::SegmentationModelSupport::Load(coarsePath, resolved, "coarse model");
          itk::SegmentationModelSupport::CheckRole(*coarse, "coarse", "coarse model");
        }
        if (!refine)
        {
          refine = itk::SegmentationModelSupport::Load(refinePath, resolved, "refine model");
          itk::SegmentationModelSupport::CheckRole(*refine, "refine", "refine model");
        }
        const auto loaded = std::chrono::steady_clock::now();
        prepared.loadSeconds = std::chrono::duration<double>(loaded - started).count();
        if (warmUp && autoOnCpu && coarse->description.preset != "paper" && refine->description.preset != "paper")
        {
          prepared.warmUpSkipped = "auto on the cpu, models smaller than the paper's";
        }
        else if (warmUp)
        {
          try
          {
            if (!onlyWhileReading || reading->load())
            {
              itk::SegmentationModelSupport::WarmUp(*coarse, "coarse model", false);
              prepared.warmedUp = "coarse";
            }
            if (!onlyWhileReading || reading->load())
            {
              itk::SegmentationModelSupport::WarmUp(*refine, "refine model", attentionMaps);
              prepared.warmedUp += prepared.warmedUp.empty() ? "refine" : " and refine";
            }
          }
          catch (const std::exception & error)
          {
            // Only a head start is lost: the run itself reports what fails.
            prepared.warmUpError = error.what();
          }
          prepared.warmUpSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - loaded).count();
        }
        prepared.coarse = std::move(coarse);
        prepared.refine = std::move(refine);
        return prepared;
      };
      std::future<PreparedModels>               preparing;
      SegmentationFilterType::ModelPointer      coarseLoaded, refineLoaded;
      std::vector<diva::application::BatchCase> cases;
      diva::application::BatchShard             part;
      std::string                               summaryPath;
      // A batch's last words: the counts on stdout, and the exit status (1 when a case failed).
      auto finishBatch = [&](const diva::application::BatchTotals & totals, const std::string & how)
      {
        const size_t total = totals.done + totals.skipped + totals.failed;
        std::cout << "DivAttentionSegment: batch " << batch.getValue()
                  << (part.count > 1 ? " shard " + shard.getValue() : "") << how << ": " << total << " cases, "
                  << totals.done << " done, " << totals.skipped << " skipped, " << totals.failed << " failed; summary "
                  << summaryPath << std::endl;
        if (totals.failed > 0)
        {
          std::cerr << "DivAttentionSegment: error: " << totals.failed << " of " << total
                    << " cases failed (their messages are in " << summaryPath << ")" << std::endl;
          return 1;
        }
        log("done");
        return 0;
      };
      if (batchMode)
      {
        // The batch file, the shard and the summary are checked before the models load.
        cases = diva::application::ReadBatchFile(batch.getValue());
        if (shard.isSet())
        {
          part = diva::application::ParseShard("--shard", shard.getValue());
        }
        summaryPath =
          summary.isSet() ? summary.getValue() : diva::application::DefaultSummaryPath(batch.getValue(), part);
        CheckWritable("--summary", summaryPath);
        if (jobs.getValue() > 1)
        {
          // The jobs load the models and run the cases; this process waits and merges their summaries.
          const int  threadsEach = std::max(1, itk::DivAttentionRuntime::GetThreadBudget() / jobs.getValue());
          const auto totals = diva::application::RunBatchInJobs(
            argv[0], std::vector<std::string>(argv + 1, argv + argc), part,
            { static_cast<size_t>(jobs.getValue()), threadsEach }, summaryPath, std::cerr);
          return finishBatch(totals, " in " + std::to_string(jobs.getValue()) + " jobs");
        }
        coarseLoaded = itk::SegmentationModelSupport::Load(coarsePath, resolved, "coarse model");
        refineLoaded = itk::SegmentationModelSupport::Load(refinePath, resolved, "refine model");
        itk::SegmentationModelSupport::CheckRole(*coarseLoaded, "coarse", "coarse model");
        itk::SegmentationModelSupport::CheckRole(*refineLoaded, "refine", "refine model");
        log("loaded the models");
      }
      preparing = std::async(warmUp ? std::launch::async : std::launch::deferred, prepare, coarseLoaded, refineLoaded);
      // Waits for the models (the first case only); a model that cannot be loaded is this run's error.
      auto modelsReady = [&]()
      {
        if (!preparing.valid())
        {
          return;
        }
        const auto           waitStarted = std::chrono::steady_clock::now();
        const PreparedModels prepared = preparing.get();
        const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - waitStarted).count();
        coarseLoaded = prepared.coarse;
        refineLoaded = prepared.refine;
        std::ostringstream message;
        message << std::fixed << std::setprecision(2) << "models ready: loaded in " << prepared.loadSeconds << " s";
        if (warmUp)
        {
          if (!prepared.warmUpSkipped.empty())
          {
            message << ", no warm-up (" << prepared.warmUpSkipped << ")";
          }
          else if (prepared.warmedUp.empty())
          {
            message << ", no warm-up (the CT was read first)";
          }
          else
          {
            message << ", warmed up " << prepared.warmedUp << " in " << prepared.warmUpSeconds
                    << " s in a thread beside the read (waited " << waited << " s)";
          }
        }
        log(message.str());
        if (!prepared.warmUpError.empty())
        {
          log("warm-up failed, going on without it: " + prepared.warmUpError);
        }
      };

      // One case: read and check the CT and the clicks, segment. `afterRead` sees the CT before the work starts.
      struct CaseResult
      {
        CTImageType::Pointer                  ct;
        SegmentationFilterType::Pointer       filter;
        SegmentationFilterType::PointListType points;
        size_t                                voxels = 0;
      };
      auto segmentCase = [&](const std::string & inputPath, const std::vector<std::string> & clickTexts,
                             const std::vector<std::string> &                 negativeTexts,
                             const std::function<void(const CTImageType *)> & afterRead)
      {
        CaseResult result;
        if (clickTexts.empty() && box.getValue().empty() && previousMask.getValue().empty())
        {
          throw std::runtime_error("no click for input \"" + inputPath + "\"");
        }
        CTImageType::Pointer ct;
        bool                 knownFinite = false;
        try
        {
          ct = ReadInput(inputPath, knownFinite);
        }
        catch (...)
        {
          reading->store(false);
          throw;
        }
        reading->store(false);
        log("read " + inputPath);
        if (!knownFinite)
        {
          CheckFinite(ct, inputPath);
        }
        itk::SegmentationInputCheck::CheckImage(ct.GetPointer(), "--input \"" + inputPath + "\"");
        if (afterRead)
        {
          afterRead(ct);
        }
        const auto points = itk::ClickPoints::Parse(clickTexts, space, ct);
        auto       nearest = itk::NearestNeighborInterpolateImageFunction<CTImageType>::New();
        nearest->SetInputImage(ct);
        for (size_t k = 0; k < points.size(); ++k)
        {
          const std::string text = "click \"" + clickTexts[k] + "\" (" + clickSpace.getValue() + ")";
          if (!itk::ClickPoints::IsInside(points[k], ct))
          {
            throw std::runtime_error(text + " lies outside the image");
          }
          // Air is refused only outside the body: lungs, airways and lesions in them are targets.
          if (itk::SegmentationInputCheck::IsOnAirOutsideTheBody(ct.GetPointer(), points[k]))
          {
            std::ostringstream message;
            message << text << " lies on air outside the body (" << std::lround(nearest->Evaluate(points[k]))
                    << " HU): click inside the organ or lesion";
            throw std::runtime_error(message.str());
          }
        }
        SegmentationFilterType::PointListType negativePoints;
        if (!negativeTexts.empty())
        {
          negativePoints = itk::ClickPoints::Parse(negativeTexts, space, ct);
          for (size_t k = 0; k < negativePoints.size(); ++k)
          {
            if (!itk::ClickPoints::IsInside(negativePoints[k], ct))
            {
              throw std::runtime_error("negative click \"" + negativeTexts[k] + "\" (" + clickSpace.getValue() +
                                       ") lies outside the image");
            }
          }
        }
        // The mask to correct (--previous-mask): on the CT's grid, or an error before the work.
        MaskImageType::Pointer previous;
        if (!previousMask.getValue().empty())
        {
          previous = ReadPreviousMask(previousMask.getValue(), ct);
        }
        // The box prompt (--box), in the clicks' space: inside the image and not flat, or an error before the work.
        std::pair<SegmentationFilterType::PointType, SegmentationFilterType::PointType> boxCorners;
        if (!box.getValue().empty())
        {
          boxCorners = itk::BoxPrompt::Parse(box.getValue(), space, ct, "--box");
          itk::BoxPrompt::Check(ct, boxCorners.first, boxCorners.second,
                                "--box \"" + box.getValue() + "\" (" + clickSpace.getValue() + ")");
        }

        modelsReady();
        auto filter = SegmentationFilterType::New();
        filter->SetInput(ct);
        if (coarseLoaded && refineLoaded)
        {
          filter->SetCoarseModel(coarseLoaded);
          filter->SetRefineModel(refineLoaded);
        }
        else
        {
          filter->SetCoarseModelFile(coarsePath);
          filter->SetRefineModelFile(refinePath);
        }
        filter->SetClicks(points);
        filter->SetNegativeClicks(negativePoints);
        filter->SetPreviousMask(previous);
        if (!box.getValue().empty())
        {
          filter->SetBox(boxCorners.first, boxCorners.second);
        }
        filter->SetDevice(diva::DescribeDevice(resolved));
        filter->SetThreshold(threshold.getValue());
        filter->SetCoarseMaximumExtent(coarseMaxExtent.getValue());
        filter->SetCoarseWindowPlacement(placement);
        filter->SetKeepClickedComponent(!wholeCoarseMask.getValue());
        filter->SetRefinementBand(refinementBand.getValue());
        filter->SetLikeIntensityWhenNothingFound(nothingFound.getValue() == "like-intensity");
        filter->SetNothingFoundRadius(nothingFoundRadius.getValue());
        filter->SetMinimumClickTissueFraction(clickTissueFraction.getValue());
        // The float probability on the input's grid only when it is written (it is the size of the CT).
        filter->SetComputeProbabilityImage(!probability.getValue().empty());
        filter->SetComputeAttentionMap(!attention.getValue().empty() || !preview.getValue().empty());
        if (!batchMode && ::isatty(STDERR_FILENO))
        {
          filter->AddObserver(itk::ProgressEvent(), ProgressBar::New());
        }
        filter->Update();
        log("segmented on " + std::string(filter->GetDeviceUsed()) +
            (filter->GetUsedFallbackCrop() ? " (the coarse mask was empty: crop centred on the click)" : ""));
        if (verbose.getValue())
        {
          // Each step's own wall-clock time (StartEvent to EndEvent of the composite filter's internal filters).
          std::ostringstream steps;
          steps << std::fixed << std::setprecision(2);
          for (const auto & [step, seconds] : filter->GetStepSeconds())
          {
            steps << (steps.tellp() > 0 ? ", " : "") << step << " " << seconds << " s";
          }
          log("steps: " + steps.str() + " (" + std::to_string(filter->GetNumberOfCoarseWindows()) + " coarse windows)");
        }
        if (filter->GetUsedFallbackCrop())
        {
          std::cerr << "DivAttentionSegment: note: the coarse stage found nothing under the click; the refinement "
                       "worked on a crop centred on the click"
                    << std::endl;
        }
        if (filter->GetUsedLikeIntensityFallback())
        {
          std::cerr << "DivAttentionSegment: warning: the networks found nothing at the click \"" << clickTexts.front()
                    << "\" in \"" << inputPath << "\""
                    << (filter->GetMaskNotOfClickedTissue()
                          ? " (their mask was mostly of another tissue: " +
                              std::to_string(static_cast<int>(std::lround(100.0 * filter->GetClickTissueFraction()))) +
                              " % of it like the click's)"
                          : std::string())
                    << "; the mask is the click's like-intensity region within " << filter->GetUsedNothingFoundRadius()
                    << " mm (--nothing-found error refuses instead)" << std::endl;
        }
        else if (filter->GetNothingFoundAtClick())
        {
          // Documented exit status 3 (Documentation/Reliability.md): no mask, and no object elsewhere in its place.
          throw diva::application::ExitWithStatus(
            3, (clickTexts.empty() ? "nothing found in the box \"" + box.getValue()
                                   : "nothing found at the click \"" + clickTexts.front()) +
                 "\" in \"" + inputPath + "\" (" +
                 (clickTexts.empty() ? "the refinement found no object in the box"
                  : filter->GetUsedFallbackCrop()
                    ? "the coarse stage found nothing, nor did the refinement on a crop around the click"
                  : filter->GetUsedAllCoarseComponents() ? "no click lies on or near the coarse mask"
                  : filter->GetMaskNotOfClickedTissue()  ? "the mask is mostly of another tissue than the click's"
                                                         : "the mask does not contain the click") +
                 "); no mask written");
        }
        {
          // The mask's voxels, counted over its buffer (pointer and size read once: the loop vectorises).
          const MaskImageType * mask = filter->GetOutput();
          const uint8_t *       voxels = mask->GetBufferPointer();
          const size_t          count = mask->GetBufferedRegion().GetNumberOfPixels();
          size_t                set = 0;
          for (size_t i = 0; i < count; ++i)
          {
            set += voxels[i] != 0;
          }
          result.voxels = set;
        }
        result.ct = ct;
        result.filter = filter;
        result.points = points;
        if (result.points.empty() && box.getValue().empty() && !negativePoints.empty())
        {
          // A previous mask corrected by negative clicks alone: the preview's slices go through the first of them.
          result.points.push_back(negativePoints.front());
        }
        else if (result.points.empty() && box.getValue().empty())
        {
          // A previous mask and no click at all: through the image's centre.
          itk::ContinuousIndex<double, 3> centre;
          for (unsigned int a = 0; a < 3; ++a)
          {
            centre[a] = (static_cast<double>(ct->GetLargestPossibleRegion().GetSize()[a]) - 1.0) / 2.0;
          }
          SegmentationFilterType::PointType point;
          ct->TransformContinuousIndexToPhysicalPoint(centre, point);
          result.points.push_back(point);
        }
        if (result.points.empty())
        {
          // A box without a click: the preview's slices go through the box's centre.
          result.points.push_back(itk::BoxPrompt::Centre(boxCorners.first, boxCorners.second));
        }
        return result;
      };

      if (batchMode)
      {
        const auto totals = diva::application::RunBatch(
          cases, part, summaryPath,
          [&](const diva::application::BatchCase & entry, std::string & note) -> size_t
          {
            try
            {
              CheckWritable("output", entry.output);
              const CaseResult result = segmentCase(entry.image, entry.clicks, entry.negativeClicks, {});
              writeMask(result.filter->GetOutput(), entry.image, entry.output);
              if (result.filter->GetUsedLikeIntensityFallback())
              {
                std::ostringstream text;
                text << "the networks found nothing at the click; the mask is its like-intensity region within "
                     << result.filter->GetUsedNothingFoundRadius() << " mm";
                note = text.str();
              }
              return result.voxels;
            }
            catch (const itk::ExceptionObject & error)
            {
              std::string       description = error.GetDescription();
              const std::string itkPrefix = "ITK ERROR: ";
              if (description.rfind(itkPrefix, 0) == 0)
              {
                description.erase(0, itkPrefix.size());
              }
              throw std::runtime_error(description);
            }
          },
          std::cerr);
        return finishBatch(totals, "");
      }

      ReferenceImageType::Pointer  referenceImage;
      CaseResult                   result = segmentCase(input.getValue(), clicks.getValue(), negativeClicks.getValue(),
                                                        [&](const CTImageType * ct)
                                                        {
                                        if (!reference.getValue().empty())
                                        {
                                          referenceImage = ReadReference(reference.getValue(), ct);
                                        }
                                      });
      const CTImageType::Pointer & ct = result.ct;
      const SegmentationFilterType::Pointer & filter = result.filter;
      const auto &                            points = result.points;
      const size_t                            voxels = result.voxels;
      writeMask(filter->GetOutput(), input.getValue(), output.getValue());
      // With --previous-mask and every click inside it, no pipeline ran: no probability, crop or attention map.
      if (previousMask.isSet() && filter->GetCrop() == nullptr)
      {
        for (const TCLAP::ValueArg<std::string> * unwritten : { &probability, &attention, &crop })
        {
          if (!unwritten->getValue().empty())
          {
            std::cerr << "DivAttentionSegment: note: --" << unwritten->getName() << " not written: no click ran the "
                      << "pipeline (every click lies in the previous mask)" << std::endl;
          }
        }
      }
      if (!probability.getValue().empty() && filter->GetProbabilityImage() != nullptr)
      {
        itk::WriteImageAtomically(filter->GetProbabilityImage(), probability.getValue());
      }
      if (!attention.getValue().empty() && filter->GetAttentionMap() != nullptr)
      {
        itk::WriteImageAtomically(filter->GetAttentionMap(), attention.getValue());
      }
      if (!crop.getValue().empty() && filter->GetCrop() != nullptr)
      {
        itk::WriteImageAtomically(filter->GetCrop(), crop.getValue());
      }
      if (!preview.getValue().empty())
      {
        itk::SegmentationPreview::Write(preview.getValue(), ct, filter->GetOutput(), filter->GetAttentionMap(),
                                        points.front(), {});
      }
      const auto & spacing = ct->GetSpacing();
      std::cout << "DivAttentionSegment: wrote " << output.getValue() << ": " << voxels << " voxels, "
                << std::setprecision(4) << voxels * spacing[0] * spacing[1] * spacing[2] / 1000.0 << " mL" << std::endl;
      if (referenceImage)
      {
        PrintAgreement(filter->GetOutput(), referenceImage, referenceLabel.getValue(), reference.getValue());
      }
      log("done");
      return EndProcessNow(0);
    });
}
