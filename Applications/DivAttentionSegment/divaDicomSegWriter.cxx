#include "divaDicomSegWriter.h"

#include "divaAtomicFile.h"
#include "itkGDCMSeriesFileNames.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <stdexcept>

#if DIVATTENTION_HAVE_DCMTK
#  include <dcmtk/config/osconfig.h>
#  include <dcmtk/dcmdata/dcdeftag.h>
#  include <dcmtk/dcmdata/dcfilefo.h>
#  include <dcmtk/dcmdata/dcuid.h>
#  include <dcmtk/dcmfg/fgderimg.h>
#  include <dcmtk/dcmfg/fgfracon.h>
#  include <dcmtk/dcmfg/fgpixmsr.h>
#  include <dcmtk/dcmfg/fgplanor.h>
#  include <dcmtk/dcmfg/fgplanpo.h>
#  include <dcmtk/dcmiod/iodreferences.h>
#  include <dcmtk/dcmseg/segdoc.h>
#  include <dcmtk/dcmseg/segment.h>
#  include <dcmtk/oflog/oflog.h>
#endif

namespace diva
{
namespace application
{
namespace
{
std::string
Lower(std::string text)
{
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

#if DIVATTENTION_HAVE_DCMTK
// Throws naming the output and what DCMTK said when `condition` is an error.
void
Check(const OFCondition & condition, const std::string & path, const std::string & what)
{
  if (condition.bad())
  {
    throw std::runtime_error("--output \"" + path + "\": DICOM SEG: " + what + ": " + condition.text());
  }
}

std::string
Text(DcmItem & item, const DcmTagKey & tag, long position = -1)
{
  OFString value;
  if (position < 0)
  {
    item.findAndGetOFStringArray(tag, value);
  }
  else
  {
    item.findAndGetOFString(tag, value, static_cast<unsigned long>(position));
  }
  return value.c_str();
}

std::string
NewUid()
{
  char uid[100];
  dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT);
  return uid;
}
#endif
} // namespace

const std::vector<SegmentType> &
SegmentTypes()
{
  // SNOMED CT (SCT) concepts of DICOM PS3.16 CID 7150 (categories) and CID 7151/7159 (types).
  static const std::vector<SegmentType> types = {
    { "tissue", { "85756007", "SCT", "Tissue" }, { "85756007", "SCT", "Tissue" } },
    { "spleen", { "123037004", "SCT", "Anatomical Structure" }, { "78961009", "SCT", "Spleen" } },
    { "liver", { "123037004", "SCT", "Anatomical Structure" }, { "10200004", "SCT", "Liver" } },
    { "kidney", { "123037004", "SCT", "Anatomical Structure" }, { "64033007", "SCT", "Kidney" } },
    { "kidney-left", { "123037004", "SCT", "Anatomical Structure" }, { "18639004", "SCT", "Left kidney" } },
    { "kidney-right", { "123037004", "SCT", "Anatomical Structure" }, { "9846003", "SCT", "Right kidney" } },
    { "pancreas", { "123037004", "SCT", "Anatomical Structure" }, { "15776009", "SCT", "Pancreas" } },
    { "tumour", { "49755003", "SCT", "Morphologically Altered Structure" }, { "108369006", "SCT", "Neoplasm" } },
    { "lesion", { "49755003", "SCT", "Morphologically Altered Structure" }, { "52988006", "SCT", "Lesion" } },
    { "nodule", { "49755003", "SCT", "Morphologically Altered Structure" }, { "27925004", "SCT", "Nodule" } },
  };
  return types;
}

const SegmentType &
FindSegmentType(const std::string & option, const std::string & name)
{
  const std::string wanted = name.empty() ? "tissue" : Lower(name);
  std::string       known;
  for (const auto & type : SegmentTypes())
  {
    if (type.name == wanted || (wanted == "tumor" && type.name == "tumour"))
    {
      return type;
    }
    known += (known.empty() ? "" : ", ") + type.name;
  }
  throw std::invalid_argument("option " + option + ": \"" + name + "\" is not a known segment type (" + known + ")");
}

bool
DicomSegAvailable()
{
  return DIVATTENTION_HAVE_DCMTK != 0;
}

std::vector<std::string>
DicomSeriesFiles(const std::string & directory)
{
  auto names = itk::GDCMSeriesFileNames::New();
  names->SetUseSeriesDetails(true);
  names->SetDirectory(directory);
  const auto & series = names->GetSeriesUIDs();
  if (series.empty())
  {
    throw std::runtime_error("input \"" + directory + "\" is a directory without a DICOM series");
  }
  return names->GetFileNames(series.front());
}

void
WriteDicomSegmentation(const itk::Image<uint8_t, 3> *   mask,
                       const std::vector<std::string> & sourceFiles,
                       const DicomSegOptions &          options,
                       const std::string &              path)
{
#if !DIVATTENTION_HAVE_DCMTK
  (void)mask;
  (void)sourceFiles;
  (void)options;
  throw std::runtime_error("--output \"" + path +
                           "\": this build writes no DICOM SEG (DCMTK's dcmseg was not found when it was configured; "
                           "Documentation/Building.md)");
#else
  const auto size = mask->GetLargestPossibleRegion().GetSize();
  if (sourceFiles.size() != size[2])
  {
    throw std::runtime_error("--output \"" + path + "\": the mask has " + std::to_string(size[2]) +
                             " slices, the source series " + std::to_string(sourceFiles.size()) + " files");
  }
  if (size[0] > 65535 || size[1] > 65535)
  {
    throw std::runtime_error("--output \"" + path + "\": slices larger than 65535 voxels cannot be DICOM frames");
  }
  const SegmentType & type = FindSegmentType("--segment-type", options.segmentType);
  // DCMTK's warnings (e.g. one per source slice read up to its pixel data) would bury the program's own lines;
  // its errors still print, and every failure is reported through Check().
  OFLog::configure(OFLogger::ERROR_LOG_LEVEL);

  // The source slices' headers (the pixel data is not needed).
  std::vector<std::unique_ptr<DcmFileFormat>> sources;
  for (const auto & file : sourceFiles)
  {
    auto format = std::make_unique<DcmFileFormat>();
    if (format
          ->loadFileUntilTag(file.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect, DCM_PixelData)
          .bad())
    {
      throw std::runtime_error("--output \"" + path + "\": source slice \"" + file + "\" cannot be read as DICOM");
    }
    DcmDataset & dataset = *format->getDataset();
    Uint16       rows = 0, columns = 0;
    dataset.findAndGetUint16(DCM_Rows, rows);
    dataset.findAndGetUint16(DCM_Columns, columns);
    if (rows != size[1] || columns != size[0])
    {
      throw std::runtime_error("--output \"" + path + "\": source slice \"" + file + "\" is " +
                               std::to_string(columns) + "x" + std::to_string(rows) + ", the mask's slices " +
                               std::to_string(size[0]) + "x" + std::to_string(size[1]));
    }
    if (Text(dataset, DCM_ImagePositionPatient).empty() || Text(dataset, DCM_ImageOrientationPatient).empty())
    {
      throw std::runtime_error("--output \"" + path + "\": source slice \"" + file +
                               "\" has no Image Position/Orientation (Patient)");
    }
    sources.push_back(std::move(format));
  }
  DcmDataset & first = *sources.front()->getDataset();

  const IODGeneralEquipmentModule::EquipmentInfo equipment("DivAttention", "DivAttentionSegment", "1",
                                                           options.algorithmVersion.empty() ? "unknown"
                                                                                            : options.algorithmVersion);
  const ContentIdentificationMacro               content("1", "DIVATTENTION", options.seriesDescription.c_str(),
                                                         options.algorithmName.c_str());
  DcmSegmentation *                              created = nullptr;
  Check(DcmSegmentation::createBinarySegmentation(created, static_cast<Uint16>(size[1]), static_cast<Uint16>(size[0]),
                                                  equipment, content),
        path, "create");
  std::unique_ptr<DcmSegmentation> segmentation(created);
  Check(segmentation->importFromSourceImage(first), path, "import patient, study and frame of reference");
  Check(segmentation->getSeries().setSeriesInstanceUID(NewUid().c_str()), path, "series UID");
  Check(segmentation->getSeries().setSeriesNumber("9901"), path, "series number");
  Check(segmentation->getSeries().setSeriesDescription(options.seriesDescription.c_str()), path, "series description");
  Check(segmentation->getSOPCommon().setSOPInstanceUID(NewUid().c_str()), path, "SOP instance UID");

  // The segment.
  DcmSegment * segment = nullptr;
  Check(DcmSegment::create(
          segment, (options.segmentLabel.empty() ? type.type.meaning : options.segmentLabel).c_str(),
          CodeSequenceMacro(type.category.value.c_str(), type.category.scheme.c_str(), type.category.meaning.c_str()),
          CodeSequenceMacro(type.type.value.c_str(), type.type.scheme.c_str(), type.type.meaning.c_str()),
          DcmSegTypes::SAT_AUTOMATIC, options.algorithmName.c_str()),
        path, "segment");
  Uint16 segmentNumber = 0;
  {
    const OFCondition added = segmentation->addSegment(segment, segmentNumber);
    if (added.bad())
    {
      delete segment;
    }
    Check(added, path, "add segment");
  }

  // Shared by every frame: orientation and pixel spacing, copied from the source.
  std::unique_ptr<FGPlaneOrientationPatient> orientation(FGPlaneOrientationPatient::createMinimal(
    Text(first, DCM_ImageOrientationPatient, 0).c_str(), Text(first, DCM_ImageOrientationPatient, 1).c_str(),
    Text(first, DCM_ImageOrientationPatient, 2).c_str(), Text(first, DCM_ImageOrientationPatient, 3).c_str(),
    Text(first, DCM_ImageOrientationPatient, 4).c_str(), Text(first, DCM_ImageOrientationPatient, 5).c_str()));
  Check(segmentation->addForAllFrames(*orientation), path, "plane orientation");
  FGPixelMeasures   measures;
  const std::string pixelSpacing = Text(first, DCM_PixelSpacing);
  Check(measures.setPixelSpacing(pixelSpacing.c_str()), path, "pixel spacing \"" + pixelSpacing + "\"");
  std::string thickness = Text(first, DCM_SliceThickness);
  if (thickness.empty())
  {
    thickness = std::to_string(mask->GetSpacing()[2]);
  }
  Check(measures.setSliceThickness(thickness.c_str()), path, "slice thickness");
  Check(segmentation->addForAllFrames(measures), path, "pixel measures");

  // Frames are organised by segment number, then position.
  const std::string dimensions = NewUid();
  Check(segmentation->getDimensions().addDimensionIndex(DCM_ReferencedSegmentNumber, dimensions.c_str(),
                                                        DCM_SegmentIdentificationSequence, "ReferencedSegmentNumber"),
        path, "dimension index");
  Check(segmentation->getDimensions().addDimensionIndex(DCM_ImagePositionPatient, dimensions.c_str(),
                                                        DCM_PlanePositionSequence, "ImagePositionPatient"),
        path, "dimension index");

  // One frame per source slice, in the source's order.
  const size_t            sliceSize = size[0] * size[1];
  std::vector<Uint8>      frame(sliceSize);
  const CodeSequenceMacro derivation("113076", "DCM", "Segmentation");
  const CodeSequenceMacro purpose("121322", "DCM", "Source image for image processing operation");
  IODReferences           references;
  for (size_t k = 0; k < sources.size(); ++k)
  {
    DcmDataset & source = *sources[k]->getDataset();
    std::copy(mask->GetBufferPointer() + k * sliceSize, mask->GetBufferPointer() + (k + 1) * sliceSize, frame.begin());

    std::unique_ptr<FGPlanePosPatient> position(FGPlanePosPatient::createMinimal(
      Text(source, DCM_ImagePositionPatient, 0).c_str(), Text(source, DCM_ImagePositionPatient, 1).c_str(),
      Text(source, DCM_ImagePositionPatient, 2).c_str()));
    FGFrameContent                     frameContent;
    Check(frameContent.setDimensionIndexValues(segmentNumber, 0), path, "frame content");
    Check(frameContent.setDimensionIndexValues(static_cast<Uint32>(k + 1), 1), path, "frame content");
    FGDerivationImage     derived;
    DerivationImageItem * derivationItem = nullptr;
    Check(derived.addDerivationImageItem(derivation, "", derivationItem), path, "derivation item");
    SourceImageItem * sourceItem = nullptr;
    Check(derivationItem->addSourceImageItem(&source, purpose, sourceItem), path,
          "source image item for \"" + sourceFiles[k] + "\"");

    OFVector<FGBase *> perFrame;
    perFrame.push_back(position.get());
    perFrame.push_back(&frameContent);
    perFrame.push_back(&derived);
    Check(segmentation->addFrame(frame.data(), segmentNumber, perFrame), path, "frame " + std::to_string(k + 1));

    references.add(
      new IODImageReference(Text(source, DCM_PatientID).c_str(), Text(source, DCM_StudyInstanceUID).c_str(),
                            Text(source, DCM_SeriesInstanceUID).c_str(), Text(source, DCM_SOPInstanceUID).c_str(),
                            Text(source, DCM_SOPClassUID).c_str()));
  }
  segmentation->getCommonInstanceReference().addReferences(references, Text(first, DCM_StudyInstanceUID).c_str());

  diva::WriteFileAtomically(path, [&](const std::string & temporary)
                            { Check(segmentation->saveFile(temporary.c_str()), path, "write"); });
#endif
}

} // namespace application
} // namespace diva
