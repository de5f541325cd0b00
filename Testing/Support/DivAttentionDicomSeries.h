#ifndef DivAttentionDicomSeries_h
#define DivAttentionDicomSeries_h

// A CT written as a DICOM series, for the tests and benchmarks of DICOM input and DICOM SEG output.
#include "itkGDCMImageIO.h"
#include "itkImage.h"
#include "itkImageSeriesWriter.h"
#include "itkMetaDataObject.h"

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace diva
{
namespace testing
{
/** Numbers as a DICOM multi-valued decimal string ("a\\b\\c"), 10 significant digits. */
inline std::string
DicomNumbers(const std::vector<double> & values)
{
  std::ostringstream text;
  text.precision(10);
  for (size_t i = 0; i < values.size(); ++i)
  {
    text << (i > 0 ? "\\" : "") << values[i];
  }
  return text.str();
}

/** Writes `ct` as a DICOM CT series in `directory` (one file per slice along axis 2, IM1000.dcm, IM1001.dcm, ...) with
 * the tags that place each slice: Image Orientation and Position (Patient), Pixel Spacing, Slice Thickness, Instance
 * Number; patient ID `patientId`. */
template<typename TImage>
void
WriteDicomSeries(const TImage * ct, const std::filesystem::path & directory, const std::string & patientId)
{
  std::filesystem::create_directories(directory);
  const auto              size = ct->GetLargestPossibleRegion().GetSize();
  const auto &            spacing = ct->GetSpacing();
  const auto &            direction = ct->GetDirection();
  itk::MetaDataDictionary common;
  itk::EncapsulateMetaData<std::string>(common, "0010|0020", patientId);
  itk::EncapsulateMetaData<std::string>(common, "0008|0060", "CT");
  itk::EncapsulateMetaData<std::string>(common, "0028|0004", "MONOCHROME2");
  itk::EncapsulateMetaData<std::string>(common, "0020|0037",
                                        DicomNumbers({ direction[0][0], direction[1][0], direction[2][0],
                                                       direction[0][1], direction[1][1], direction[2][1] }));
  itk::EncapsulateMetaData<std::string>(common, "0028|0030", DicomNumbers({ spacing[1], spacing[0] }));
  itk::EncapsulateMetaData<std::string>(common, "0018|0050", DicomNumbers({ spacing[2] }));
  std::vector<itk::MetaDataDictionary>                                                 dictionaries(size[2], common);
  typename itk::ImageSeriesWriter<TImage, itk::Image<int16_t, 2>>::DictionaryArrayType pointers;
  std::vector<std::string>                                                             names;
  for (itk::SizeValueType k = 0; k < size[2]; ++k)
  {
    typename TImage::PointType position;
    ct->TransformIndexToPhysicalPoint({ { 0, 0, static_cast<itk::IndexValueType>(k) } }, position);
    itk::EncapsulateMetaData<std::string>(dictionaries[k], "0020|0032",
                                          DicomNumbers({ position[0], position[1], position[2] }));
    itk::EncapsulateMetaData<std::string>(dictionaries[k], "0020|0013", std::to_string(k + 1));
    pointers.push_back(&dictionaries[k]);
    names.push_back((directory / ("IM" + std::to_string(1000 + k) + ".dcm")).string());
  }
  auto writer = itk::ImageSeriesWriter<TImage, itk::Image<int16_t, 2>>::New();
  writer->SetInput(ct);
  writer->SetImageIO(itk::GDCMImageIO::New());
  writer->SetFileNames(names);
  writer->SetMetaDataDictionaryArray(&pointers);
  writer->Update();
}
} // namespace testing
} // namespace diva

#endif
