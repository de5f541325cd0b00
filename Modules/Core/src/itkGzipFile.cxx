#include "itkGzipFile.h"

#include "itkMacro.h"
#include "itkReadOnlyFileMapping.h"

#ifndef DIVATTENTION_HAVE_LIBDEFLATE
#  define DIVATTENTION_HAVE_LIBDEFLATE 0
#endif
#if DIVATTENTION_HAVE_LIBDEFLATE
#  include <libdeflate.h>
#endif

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace itk
{
namespace
{
[[noreturn]] void
Fail(const std::string & path, const std::string & problem)
{
  itkGenericExceptionMacro(<< "DivAttention: gzip file \"" << path << "\": " << problem);
}

// A file descriptor closed on every path out.
class Descriptor
{
public:
  explicit Descriptor(int descriptor) : m_Descriptor(descriptor) {}
  ~Descriptor()
  {
    if (m_Descriptor >= 0)
    {
      ::close(m_Descriptor);
    }
  }
  Descriptor(const Descriptor &) = delete;
  Descriptor &
  operator=(const Descriptor &) = delete;
  int
  Get() const
  {
    return m_Descriptor;
  }
  // Closes now and says whether the close succeeded (a delayed write error shows here on some file systems).
  bool
  Close()
  {
    const int descriptor = m_Descriptor;
    m_Descriptor = -1;
    return ::close(descriptor) == 0;
  }

private:
  int m_Descriptor;
};

#if DIVATTENTION_HAVE_LIBDEFLATE
struct CompressorDeleter
{
  void
  operator()(libdeflate_compressor * compressor) const
  {
    libdeflate_free_compressor(compressor);
  }
};

struct FreeDeleter
{
  void
  operator()(void * data) const
  {
    std::free(data);
  }
};

// Removes what WriteWhole left of `path` when it is a regular file (never a device such as /dev/full).
void
RemovePartial(const std::string & path, int descriptor)
{
  struct stat status
  {
  };
  if (::fstat(descriptor, &status) == 0 && S_ISREG(status.st_mode))
  {
    ::unlink(path.c_str());
  }
}

// Writes all `size` bytes or throws naming `path`; removes the partial file on failure.
void
WriteWhole(const std::string & path, const unsigned char * data, size_t size)
{
  Descriptor file(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666));
  if (file.Get() < 0)
  {
    Fail(path, std::string("cannot be created: ") + std::strerror(errno));
  }
  size_t done = 0;
  while (done < size)
  {
    const ssize_t wrote = ::write(file.Get(), data + done, size - done);
    if (wrote < 0 && errno == EINTR)
    {
      continue;
    }
    if (wrote <= 0)
    {
      const std::string reason = wrote < 0 ? std::strerror(errno) : "no progress";
      RemovePartial(path, file.Get());
      Fail(path,
           "written only in part (" + std::to_string(done) + " of " + std::to_string(size) + " bytes): " + reason);
    }
    done += static_cast<size_t>(wrote);
  }
  const int   descriptor = file.Get();
  struct stat status
  {
  };
  const bool regular = ::fstat(descriptor, &status) == 0 && S_ISREG(status.st_mode);
  if (!file.Close())
  {
    const std::string reason = std::strerror(errno);
    if (regular)
    {
      ::unlink(path.c_str());
    }
    Fail(path, "could not be closed after writing: " + reason);
  }
}
#endif
} // namespace

bool
GzipFile::IsAvailable()
{
  return DIVATTENTION_HAVE_LIBDEFLATE != 0;
}

void
GzipFile::Compress(const std::string & source, const std::string & destination, int level)
{
  if (level < 1 || level > 12)
  {
    Fail(destination, "compression level " + std::to_string(level) + " is not in 1..12");
  }
#if DIVATTENTION_HAVE_LIBDEFLATE
  // The source's bytes mapped read-only: the page cache's pages are the compressor's input, no copy.
  const ReadOnlyFileMapping input(source);
  if (!input.IsMapped())
  {
    Fail(source, "cannot be read to compress: it " + input.Problem());
  }
  const std::unique_ptr<libdeflate_compressor, CompressorDeleter> compressor(libdeflate_alloc_compressor(level));
  if (!compressor)
  {
    Fail(destination, "no memory for the compressor");
  }
  const size_t bound = libdeflate_gzip_compress_bound(compressor.get(), input.Size());
  // Only the pages the compressed bytes reach are ever touched.
  const std::unique_ptr<unsigned char, FreeDeleter> output(static_cast<unsigned char *>(std::malloc(bound)));
  if (!output)
  {
    Fail(destination, "no memory for " + std::to_string(bound) + " bytes of output");
  }
  const size_t size = libdeflate_gzip_compress(compressor.get(), input.Data(), input.Size(), output.get(), bound);
  if (size == 0)
  {
    Fail(destination, "the compressor failed on \"" + source + "\"");
  }
  WriteWhole(destination, output.get(), size);
#else
  (void)source;
  Fail(destination, "this build has no libdeflate (GzipFile::IsAvailable() is false)");
#endif
}
} // namespace itk
