// DivAttentionSegment --output mask.dcm (Documentation/ClinicalIO.md): the DICOM SEG read back with DCMTK, every frame
// checked against the source slice it references and against the voxel mask of the same run written as NIfTI; a SEG
// for an input that is not a DICOM series is refused before any work.
#include "DivAttentionDicomSeries.h"
#include "divaCliTestSupport.h"
#include "divaTinyModelFiles.h"
#include "itkCTPhantomGenerator.h"
#include "itkGDCMImageIO.h"
#include "itkImageFileReader.h"
#include "itkImageSeriesWriter.h"
#include "itkMetaDataObject.h"
#include "itkWriteImageAtomically.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#if DIVATTENTION_HAVE_DCMTK
#  include <dcmtk/config/osconfig.h>
#  include <dcmtk/dcmdata/dcdeftag.h>
#  include <dcmtk/dcmdata/dcfilefo.h>
#  include <dcmtk/dcmfg/fgderimg.h>
#  include <dcmtk/dcmfg/fgpixmsr.h>
#  include <dcmtk/dcmfg/fgplanor.h>
#  include <dcmtk/dcmfg/fgplanpo.h>
#  include <dcmtk/dcmseg/segdoc.h>
#  include <dcmtk/dcmseg/segment.h>
#  include <dcmtk/dcmseg/segutils.h>
#endif

namespace fs = std::filesystem;

namespace
{
using CTImageType = itk::CTPhantomGenerator::CTImageType;
using MaskImageType = itk::Image<uint8_t, 3>;

using diva::clitest::Result;
using diva::clitest::RunSegment;

class DivAttentionSegmentDicomSeg : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite()
  {
    root = diva::clitest::MakeScratch("segment-dicomseg");
    fs::create_directories(root / "out");
    const auto generator = diva::clitest::MakeSmallPhantom({ { 8.0, 7.5, 9.0 } });
    // An oblique series (rotated 20 degrees about the z axis, off-centre origin): orientation and positions are
    // then not the identity's, so a frame whose geometry is taken from the wrong place shows.
    CTImageType::Pointer   ct = generator->GetCT();
    CTImageType::IndexType clickIndex;
    ct->TransformPhysicalPointToIndex(generator->GetObjects().front().click, clickIndex);
    const double               angle = 20.0 * 3.14159265358979 / 180.0;
    CTImageType::DirectionType direction;
    direction.SetIdentity();
    direction[0][0] = std::cos(angle);
    direction[1][0] = std::sin(angle);
    direction[0][1] = -std::sin(angle);
    direction[1][1] = std::cos(angle);
    ct->SetDirection(direction);
    CTImageType::PointType origin;
    origin[0] = -170.25;
    origin[1] = -60.5;
    origin[2] = 310.0;
    ct->SetOrigin(origin);
    CTImageType::PointType clickPoint;
    ct->TransformIndexToPhysicalPoint(clickIndex, clickPoint);
    click = diva::clitest::PointText(clickPoint);
    diva::testing::WriteDicomSeries(ct.GetPointer(), root / "series", "SEG-TEST-1");
    itk::WriteImageAtomically(ct.GetPointer(), (root / "ct.nii.gz").string());
    diva::testing::WriteTinyModelFiles(root); // untrained: the masks only need to be the same in both outputs
  }

  // The tiny models, and a low threshold so that their masks are not empty.
  static std::string
  Options()
  {
    return " --coarse-model " + (root / "coarse.pt").string() + " --refine-model " + (root / "refine.pt").string() +
           " --threads 2 --coarse-max-extent 150 --threshold 0.05";
  }

  static inline fs::path    root;
  static inline std::string click;
};
} // namespace

TEST_F(DivAttentionSegmentDicomSeg, FramesReferenceTheSeriesAndMatchTheMask)
{
#if !DIVATTENTION_HAVE_DCMTK
  GTEST_SKIP() << "built without DCMTK (dcmseg): no DICOM SEG output";
#else
  const fs::path seg = root / "out" / "mask.dcm", nifti = root / "out" / "mask.nii.gz";
  const Result   written =
    RunSegment("--input " + (root / "series").string() + " --click " + click + Options() + " --output " + seg.string() +
               " --segment-type spleen --segment-label \"Spleen A\"");
  ASSERT_EQ(written.exitCode, 0) << written.output;
  const Result reference = RunSegment("--input " + (root / "series").string() + " --click " + click + Options() +
                                      " --output " + nifti.string());
  ASSERT_EQ(reference.exitCode, 0) << reference.output;
  auto reader = itk::ImageFileReader<MaskImageType>::New();
  reader->SetFileName(nifti.string());
  reader->Update();
  const MaskImageType * mask = reader->GetOutput();
  const auto            size = mask->GetLargestPossibleRegion().GetSize();

  // The source slices: SOP instance UID -> position, and the series' shared attributes.
  std::map<std::string, std::array<double, 3>> positions;
  std::string                                  studyUid, seriesUid, frameOfReferenceUid, patientId;
  std::array<double, 6>                        orientation{};
  for (const auto & entry : fs::directory_iterator(root / "series"))
  {
    DcmFileFormat file;
    ASSERT_TRUE(file.loadFile(entry.path().c_str()).good()) << entry.path();
    DcmDataset * dataset = file.getDataset();
    OFString     value;
    dataset->findAndGetOFString(DCM_SOPInstanceUID, value);
    std::array<double, 3> position{};
    for (unsigned d = 0; d < 3; ++d)
    {
      dataset->findAndGetFloat64(DCM_ImagePositionPatient, position[d], d);
    }
    positions[value.c_str()] = position;
    for (unsigned d = 0; d < 6; ++d)
    {
      dataset->findAndGetFloat64(DCM_ImageOrientationPatient, orientation[d], d);
    }
    dataset->findAndGetOFString(DCM_StudyInstanceUID, value);
    studyUid = value.c_str();
    dataset->findAndGetOFString(DCM_SeriesInstanceUID, value);
    seriesUid = value.c_str();
    dataset->findAndGetOFString(DCM_FrameOfReferenceUID, value);
    frameOfReferenceUid = value.c_str();
    dataset->findAndGetOFString(DCM_PatientID, value);
    patientId = value.c_str();
  }
  ASSERT_EQ(positions.size(), size[2]);

  DcmSegmentation * loaded = nullptr;
  ASSERT_TRUE(DcmSegmentation::loadFile(seg.c_str(), loaded).good());
  std::unique_ptr<DcmSegmentation> segmentation(loaded);
  OFString                         value;
  segmentation->getStudy().getStudyInstanceUID(value);
  EXPECT_EQ(std::string(value.c_str()), studyUid);
  segmentation->getFrameOfReference().getFrameOfReferenceUID(value);
  EXPECT_EQ(std::string(value.c_str()), frameOfReferenceUid);
  segmentation->getPatient().getPatientID(value);
  EXPECT_EQ(std::string(value.c_str()), patientId);
  segmentation->getSeries().getSeriesInstanceUID(value);
  EXPECT_FALSE(value.empty());
  EXPECT_NE(std::string(value.c_str()), seriesUid) << "the SEG is a series of its own";

  // The segment: label, coded type, algorithm.
  DcmSegment * segment = segmentation->getSegment(1);
  ASSERT_NE(segment, nullptr);
  segment->getSegmentLabel(value);
  EXPECT_EQ(std::string(value.c_str()), "Spleen A");
  segment->getSegmentedPropertyTypeCode().getCodeValue(value);
  EXPECT_EQ(std::string(value.c_str()), "78961009");
  segment->getSegmentedPropertyTypeCode().getCodingSchemeDesignator(value);
  EXPECT_EQ(std::string(value.c_str()), "SCT");
  segment->getSegmentedPropertyCategoryCode().getCodeValue(value);
  EXPECT_EQ(std::string(value.c_str()), "123037004");
  EXPECT_EQ(segment->getSegmentAlgorithmType(), DcmSegTypes::SAT_AUTOMATIC);
  segment->getSegmentAlgorithmName(value);
  EXPECT_EQ(std::string(value.c_str()), "DivAttention");

  // Every frame: its source slice, its geometry against that slice and the mask's grid, its pixels against the mask.
  ASSERT_EQ(segmentation->getNumberOfFrames(), size[2]);
  FGInterface &         groups = segmentation->getFunctionalGroups();
  std::set<std::string> referenced;
  size_t                objectVoxels = 0;
  const double          tolerance = 1e-4; // mm: DS strings carry 10 significant digits here, values of ~1e2 mm
  for (Uint32 f = 0; f < size[2]; ++f)
  {
    auto * derivation = dynamic_cast<FGDerivationImage *>(groups.get(f, DcmFGTypes::EFG_DERIVATIONIMAGE));
    ASSERT_NE(derivation, nullptr) << "frame " << f;
    ASSERT_EQ(derivation->getDerivationImageItems().size(), 1u);
    ASSERT_EQ(derivation->getDerivationImageItems()[0]->getSourceImageItems().size(), 1u);
    derivation->getDerivationImageItems()[0]
      ->getSourceImageItems()[0]
      ->getImageSOPInstanceReference()
      .getReferencedSOPInstanceUID(value);
    ASSERT_EQ(positions.count(value.c_str()), 1u) << "frame " << f << " references an unknown instance " << value;
    referenced.insert(value.c_str());
    const auto & source = positions[value.c_str()];

    auto * position = dynamic_cast<FGPlanePosPatient *>(groups.get(f, DcmFGTypes::EFG_PLANEPOSPATIENT));
    ASSERT_NE(position, nullptr);
    Float64 x = 0, y = 0, z = 0;
    ASSERT_TRUE(position->getImagePositionPatient(x, y, z).good());
    EXPECT_NEAR(x, source[0], tolerance) << "frame " << f;
    EXPECT_NEAR(y, source[1], tolerance) << "frame " << f;
    EXPECT_NEAR(z, source[2], tolerance) << "frame " << f;

    auto * planes = dynamic_cast<FGPlaneOrientationPatient *>(groups.get(f, DcmFGTypes::EFG_PLANEORIENTPATIENT));
    ASSERT_NE(planes, nullptr);
    std::array<Float64, 6> rowColumn{};
    ASSERT_TRUE(
      planes
        ->getImageOrientationPatient(rowColumn[0], rowColumn[1], rowColumn[2], rowColumn[3], rowColumn[4], rowColumn[5])
        .good());
    for (unsigned d = 0; d < 6; ++d)
    {
      EXPECT_NEAR(rowColumn[d], orientation[d], 1e-6) << "frame " << f;
    }
    auto * measures = dynamic_cast<FGPixelMeasures *>(groups.get(f, DcmFGTypes::EFG_PIXELMEASURES));
    ASSERT_NE(measures, nullptr);
    Float64 rowSpacing = 0, columnSpacing = 0;
    measures->getPixelSpacing(rowSpacing, 0);
    measures->getPixelSpacing(columnSpacing, 1);
    EXPECT_NEAR(rowSpacing, mask->GetSpacing()[1], 1e-6);
    EXPECT_NEAR(columnSpacing, mask->GetSpacing()[0], 1e-6);

    // Which slice of the voxel mask this frame is: where its position falls on the mask's grid.
    MaskImageType::PointType point;
    point[0] = x;
    point[1] = y;
    point[2] = z;
    MaskImageType::IndexType index;
    ASSERT_TRUE(mask->TransformPhysicalPointToIndex(point, index)) << "frame " << f << " lies off the mask's grid";
    EXPECT_EQ(index[0], 0);
    EXPECT_EQ(index[1], 0);
    const auto &                        frame = *segmentation->getFrame(f);
    const size_t                        pixels = size[0] * size[1];
    std::unique_ptr<DcmIODTypes::Frame> unpacked;
    const Uint8 *                       bits = frame.pixData;
    if (frame.length < pixels) // bit-packed as stored
    {
      unpacked.reset(
        DcmSegUtils::unpackBinaryFrame(&frame, static_cast<Uint16>(size[1]), static_cast<Uint16>(size[0])));
      ASSERT_NE(unpacked, nullptr);
      bits = unpacked->pixData;
    }
    const uint8_t * slice = mask->GetBufferPointer() + static_cast<size_t>(index[2]) * pixels;
    size_t          differ = 0;
    for (size_t p = 0; p < pixels; ++p)
    {
      differ += (bits[p] != 0) != (slice[p] != 0) ? 1 : 0;
      objectVoxels += bits[p] != 0 ? 1 : 0;
    }
    EXPECT_EQ(differ, 0u) << "frame " << f << " (mask slice " << index[2] << ")";
  }
  EXPECT_EQ(referenced.size(), size[2]) << "every source slice is referenced by one frame";
  EXPECT_GT(objectVoxels, 0u) << "an empty mask would make the pixel comparison vacuous";
#endif
}

TEST_F(DivAttentionSegmentDicomSeg, SegOfANonDicomInputIsRefusedBeforeTheWork)
{
  const fs::path seg = root / "out" / "refused.dcm";
  Result         result = RunSegment("--input " + (root / "ct.nii.gz").string() + " --click " + click + Options() +
                                     " --output " + seg.string() + " --verbose");
  EXPECT_EQ(result.exitCode, 1) << result.output;
  EXPECT_EQ(result.output.find("] read "), std::string::npos) << "the input was read: refused after the work started\n"
                                                              << result.output;
#if DIVATTENTION_HAVE_DCMTK
  EXPECT_NE(result.output.find("is not a DICOM series directory"), std::string::npos) << result.output;
#else
  EXPECT_NE(result.output.find("writes no DICOM SEG"), std::string::npos) << result.output;
#endif
  EXPECT_EQ(result.output.find("wrote"), std::string::npos) << result.output;
  EXPECT_FALSE(fs::exists(seg));

  const fs::path nifti = root / "out" / "refused.nii.gz";
  result = RunSegment("--input " + (root / "ct.nii.gz").string() + " --click " + click + Options() + " --output " +
                      nifti.string() + " --output-format dicom-seg");
  EXPECT_EQ(result.exitCode, 1) << result.output;
  EXPECT_FALSE(fs::exists(nifti));

  result = RunSegment("--input " + (root / "series").string() + " --click " + click + Options() + " --output " +
                      seg.string() + " --segment-type heart");
  EXPECT_EQ(result.exitCode, 1) << result.output;
  EXPECT_NE(result.output.find("--segment-type: \"heart\" is not a known segment type (tissue, spleen"),
            std::string::npos)
    << result.output;
  EXPECT_FALSE(fs::exists(seg));
}

// In batch mode each case's output decides: a .dcm output of a series case is a SEG, of a NIfTI case a failed case.
TEST_F(DivAttentionSegmentDicomSeg, BatchWritesASegPerSeriesCase)
{
  const fs::path directory = root / "batch";
  fs::create_directories(directory / "out");
  {
    std::ofstream stream(directory / "cases.csv");
    stream << "image,clicks,output\n"
           << (root / "series").string() << ",\"" << click << "\",out/series.dcm\n"
           << (root / "ct.nii.gz").string() << ",\"" << click << "\",out/volume.dcm\n";
  }
  const Result result = RunSegment("--batch " + (directory / "cases.csv").string() + Options());
  EXPECT_EQ(result.exitCode, 1) << result.output;
  EXPECT_FALSE(fs::exists(directory / "out" / "volume.dcm"));
#if DIVATTENTION_HAVE_DCMTK
  EXPECT_NE(result.output.find("[1/2] case 0 (line 2) done"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("[2/2] case 1 (line 3) failed: --output"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("is not a DICOM series directory"), std::string::npos) << result.output;
  DcmSegmentation * loaded = nullptr;
  ASSERT_TRUE(DcmSegmentation::loadFile((directory / "out" / "series.dcm").c_str(), loaded).good());
  std::unique_ptr<DcmSegmentation> segmentation(loaded);
  EXPECT_EQ(segmentation->getNumberOfFrames(), 28u);
#else
  EXPECT_NE(result.output.find("writes no DICOM SEG"), std::string::npos) << result.output;
#endif
}
