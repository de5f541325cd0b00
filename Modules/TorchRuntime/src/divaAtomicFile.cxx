#include "divaAtomicFile.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
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

// The marker between a temporary's stem and its writer's process id (TemporaryPathFor).
constexpr const char * PartialMarker = ".partial-";

// True when the fault-injection hook asks to kill this process during this write to `fileName`.
bool
FaultRequested(const std::string & fileName)
{
  const char * spec = std::getenv(FaultInjectionVariable);
  if (spec == nullptr || *spec == '\0')
  {
    return false;
  }
  const std::string text(spec);
  const auto        colon = text.rfind(':');
  char *            end = nullptr;
  const auto        ordinal = colon == std::string::npos ? 0 : std::strtoul(text.c_str() + colon + 1, &end, 10);
  if (ordinal == 0 || end == nullptr || *end != '\0')
  {
    // A hook that silently never fires would let a fault test pass without a fault.
    throw std::runtime_error(std::string(FaultInjectionVariable) + "=\"" + text + "\": expected NAME:N with N >= 1");
  }
  const std::string name = text.substr(0, colon);
  if (name != "*" && name != fileName)
  {
    return false;
  }
  static std::atomic<unsigned long> matchingWrites{ 0 };
  return matchingWrites.fetch_add(1) + 1 == ordinal;
}

// Leaves what a kill in the middle of writing leaves: the first half of the temporary, and no rename.
[[noreturn]] void
DieWithPartialTemporary(const std::string & temporary)
{
  std::error_code error;
  const auto      size = fs::file_size(temporary, error);
  if (!error)
  {
    fs::resize_file(temporary, size / 2, error);
  }
  ::raise(SIGKILL);
  std::abort(); // not reached
}

bool
ProcessRuns(pid_t process)
{
  return process == ::getpid() || ::kill(process, 0) == 0 || errno == EPERM;
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
    "." + stem + PartialMarker + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + extension;
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
    if (FaultRequested(target.filename().string()))
    {
      DieWithPartialTemporary(temporary);
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

size_t
RemoveStaleTemporaries(const std::string & directory)
{
  size_t          removed = 0;
  std::error_code error;
  for (fs::directory_iterator it(directory, error), last; !error && it != last; it.increment(error))
  {
    // ".<stem>.partial-<pid>-<n><extension>"
    const std::string name = it->path().filename().string();
    const auto        marker = name.find(PartialMarker);
    if (name.empty() || name[0] != '.' || marker == std::string::npos)
    {
      continue;
    }
    const char * digits = name.c_str() + marker + std::strlen(PartialMarker);
    char *       end = nullptr;
    const long   process = std::strtol(digits, &end, 10);
    if (end == digits || *end != '-' || process <= 0 || ProcessRuns(static_cast<pid_t>(process)))
    {
      continue;
    }
    std::error_code removeError;
    if (it->is_regular_file(removeError) && fs::remove(it->path(), removeError))
    {
      ++removed;
    }
  }
  return removed;
}

} // namespace diva
