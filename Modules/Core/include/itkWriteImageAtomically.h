#ifndef itkWriteImageAtomically_h
#define itkWriteImageAtomically_h

#include "divaAtomicFile.h"
#include "itkImageFileWriter.h"
#include "itkMacro.h"

#include <string>

namespace itk
{
/** Writes `image` to `path` (format by extension, compressed where the format allows) so that `path` holds either
 * its old content or the complete new image, never a partial file: the image goes to a temporary file in the same
 * directory, which is flushed and renamed into place (diva::WriteFileAtomically). Throws itk::ExceptionObject naming
 * the path on any failure (unknown extension, missing directory, full disk), leaving no temporary behind.
 * \ingroup DivAttention */
template<typename TImage>
void
WriteImageAtomically(const TImage * image, const std::string & path, bool compress = true)
{
  if (image == nullptr)
  {
    itkGenericExceptionMacro(<< "DivAttention: output \"" << path << "\": no image to write");
  }
  try
  {
    diva::WriteFileAtomically(path,
                              [&](const std::string & temporaryPath)
                              {
                                auto writer = ImageFileWriter<TImage>::New();
                                writer->SetInput(image);
                                writer->SetFileName(temporaryPath);
                                writer->SetUseCompression(compress);
                                writer->Update();
                              });
  }
  catch (const ExceptionObject & error)
  {
    itkGenericExceptionMacro(<< "DivAttention: output \"" << path << "\": " << error.GetDescription());
  }
  catch (const std::exception & error)
  {
    itkGenericExceptionMacro(<< "DivAttention: " << error.what());
  }
}
} // namespace itk

#endif
