#include "divaAtomicFile.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace diva
{
namespace
{
namespace fs = std::filesystem;

// The extension a format-sniffing writer looks at: everything from the first dot of the file name (".nii.gz").
std::string
FullExtension(const std::string & fileName)
{
  const auto dot = fileName.find('.', fileName.empty() ? 0 : 1);
  return dot == std::string::npos ? std::string() : fileName.substr(dot);
}

void
SyncPath(const fs::path & path, int flags)
{
  const int descriptor = ::open(path.c_str(), flags);
  if (descriptor >= 0)
  {
    ::fsync(descriptor);
    ::close(descriptor);
  }
}
} // namespace

std::string
TemporaryPathFor(const std::string & destination)
{
  static std::atomic<unsigned> counter{ 0 };
  const fs::path               target(destination);
  const std::string            name = target.filename().string();
  const std::string            extension = FullExtension(name);
  const std::string            stem = name.substr(0, name.size() - extension.size());
  const std::string            temporaryName =
    "." + stem + ".partial-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + extension;
  return (target.parent_path() / temporaryName).string();
}

void
WriteFileAtomically(const std::string & destination, const std::function<void(const std::string &)> & write)
{
  if (destination.empty())
  {
    throw std::runtime_error("output path is empty");
  }
  const fs::path  target(destination);
  const fs::path  directory = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code error;
  if (!fs::is_directory(directory, error))
  {
    throw std::runtime_error("output \"" + destination + "\": directory \"" + directory.string() + "\" does not exist");
  }
  if (fs::is_directory(target, error))
  {
    throw std::runtime_error("output \"" + destination + "\" is a directory");
  }
  const std::string temporary = TemporaryPathFor(destination);
  try
  {
    write(temporary);
    if (!fs::exists(temporary, error))
    {
      throw std::runtime_error("output \"" + destination + "\": the writer produced no file");
    }
    SyncPath(temporary, O_RDONLY);
    fs::rename(temporary, target); // atomic within one file system
  }
  catch (...)
  {
    fs::remove(temporary, error);
    throw;
  }
  SyncPath(directory, O_RDONLY | O_DIRECTORY);
}

} // namespace diva
