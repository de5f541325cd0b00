#ifndef itkWriteImageAtomically_h
#define itkWriteImageAtomically_h

#include "divaAtomicFile.h"
#include "itkGzipFile.h"
#include "itkImageFileWriter.h"
#include "itkMacro.h"

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace itk
{
/** Whether `path` names a header whose voxels ITK writes to a second file beside it (MetaImage `.mhd` with its
 * `.raw`/`.zraw`, Analyze/NIfTI `.hdr` with its `.img`, detached NRRD `.nhdr`), which references it by name.
 * \ingroup DivAttention */
inline bool
IsTwoFileImageFormat(const std::string & path)
{
  const auto extension = std::filesystem::path(path).extension().string();
  return extension == ".mhd" || extension == ".hdr" || extension == ".nhdr";
}

/** Whether `path` names a compressed single-file NIfTI (`.nii.gz`), which WriteImageAtomically compresses itself
 * (GzipFile) when the build has libdeflate.
 * \ingroup DivAttention */
inline bool
IsCompressedNiftiFile(const std::string & path)
{
  const std::string suffix = ".nii.gz";
  return path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/** Writes `image` to `path` (format by extension, compressed where the format allows) so that `path` holds either
 * its old content or the complete new image, never a partial file: the image goes to a temporary file in the same
 * directory, which is flushed and renamed into place (diva::WriteFileAtomically). A `.nii.gz` (with `compress`, in
 * a build with libdeflate) is written by ITK as an uncompressed NIfTI beside it (a second temporary, removed
 * afterwards, on every path), then compressed into the temporary by GzipFile at its default level: the same header and
 * voxels as ITK's own `.nii.gz`, compressed in about a third of the time of ITK's zlib. For a two-file format
 * (IsTwoFileImageFormat) both files are written, with their final names, into a temporary folder beside `path`, then
 * renamed into place data file first and header last, so the header never names a data file that is missing or
 * partial (a reader between the two renames may see the old header with the new data). Throws itk::ExceptionObject
 * naming the path on any failure (unknown extension, missing directory, full disk), leaving no temporary behind.
 * \ingroup DivAttention */
template<typename TImage>
void
WriteImageAtomically(const TImage * image, const std::string & path, bool compress = true)
{
  if (image == nullptr)
  {
    itkGenericExceptionMacro(<< "DivAttention: output \"" << path << "\": no image to write");
  }
  const auto write = [&](const std::string & file, bool useCompression)
  {
    auto writer = ImageFileWriter<TImage>::New();
    writer->SetInput(image);
    writer->SetFileName(file);
    writer->SetUseCompression(useCompression);
    writer->Update();
  };
  if (IsTwoFileImageFormat(path))
  {
    namespace fs = std::filesystem;
    static std::atomic<unsigned> counter{ 0 };
    const fs::path               target(path);
    const fs::path               folder = target.parent_path().empty() ? fs::path(".") : target.parent_path();
    const fs::path  staging = folder / ("." + target.filename().string() + ".partial-" + std::to_string(::getpid()) +
                                       "-" + std::to_string(counter++));
    std::error_code ignored;
    try
    {
      if (!fs::is_directory(folder))
      {
        itkGenericExceptionMacro(<< "the folder \"" << folder.string() << "\" does not exist");
      }
      fs::create_directory(staging);
      write((staging / target.filename()).string(), compress);
      std::vector<fs::path> dataFiles;
      for (const auto & entry : fs::directory_iterator(staging))
      {
        if (entry.path().filename() != target.filename())
        {
          dataFiles.push_back(entry.path());
        }
      }
      for (const auto & data : dataFiles)
      {
        fs::rename(data, folder / data.filename());
      }
      fs::rename(staging / target.filename(), target);
      fs::remove_all(staging, ignored);
    }
    catch (const ExceptionObject & error)
    {
      fs::remove_all(staging, ignored);
      itkGenericExceptionMacro(<< "DivAttention: output \"" << path << "\": " << error.GetDescription());
    }
    catch (const std::exception & error)
    {
      fs::remove_all(staging, ignored);
      itkGenericExceptionMacro(<< "DivAttention: output \"" << path << "\": " << error.what());
    }
    return;
  }
  try
  {
    if (compress && IsCompressedNiftiFile(path) && GzipFile::IsAvailable())
    {
      diva::WriteFileAtomically(path,
                                [&](const std::string & temporaryPath)
                                {
                                  // ".<stem>.partial-<pid>-<n>.nii": a temporary of its own (RemoveStaleTemporaries
                                  // knows the name), removed on every path out.
                                  const std::string uncompressed = temporaryPath.substr(0, temporaryPath.size() - 3);
                                  struct Remove
                                  {
                                    const std::string & file;
                                    ~Remove()
                                    {
                                      std::error_code ignored;
                                      std::filesystem::remove(file, ignored);
                                    }
                                  } removeUncompressed{ uncompressed };
                                  write(uncompressed, false);
                                  GzipFile::Compress(uncompressed, temporaryPath);
                                });
    }
    else
    {
      diva::WriteFileAtomically(path, [&](const std::string & temporaryPath) { write(temporaryPath, compress); });
    }
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
