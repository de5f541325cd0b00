#ifndef itkReadOnlyFileMapping_h
#define itkReadOnlyFileMapping_h

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

namespace itk
{
/** \class ReadOnlyFileMapping
 * \brief A whole regular file mapped read-only (MAP_POPULATE: its pages in one call, read sequentially), unmapped on
 * destruction.
 *
 * For readers of whole files whose bytes go straight into a conversion or a compressor (NiftiVolumeReader,
 * GzipFile): no buffer of the file's size to allocate and no copy by read(). It never throws: IsMapped() says whether
 * the mapping exists and Problem() why not (the file cannot be opened, is not a regular file, or cannot be mapped), so
 * each caller decides between an error naming the file and another way to read it. An empty regular file is mapped
 * (IsMapped() true) with Size() 0 and Data() null.
 * \ingroup DivAttention
 */
class ReadOnlyFileMapping
{
public:
  explicit ReadOnlyFileMapping(const std::string & path)
  {
    const int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (descriptor < 0)
    {
      m_Problem = std::string("cannot be opened: ") + std::strerror(errno);
      return;
    }
    struct stat status
    {
    };
    if (::fstat(descriptor, &status) != 0 || !S_ISREG(status.st_mode))
    {
      m_Problem = "is not a regular file that can be read";
    }
    else if (status.st_size > 0)
    {
      void * data =
        ::mmap(nullptr, static_cast<size_t>(status.st_size), PROT_READ, MAP_PRIVATE | MAP_POPULATE, descriptor, 0);
      if (data == MAP_FAILED)
      {
        m_Problem = std::string("cannot be mapped: ") + std::strerror(errno);
      }
      else
      {
        m_Data = static_cast<const unsigned char *>(data);
        m_Size = static_cast<size_t>(status.st_size);
        ::madvise(data, m_Size, MADV_SEQUENTIAL);
      }
    }
    ::close(descriptor); // the mapping stays valid without the descriptor
  }
  ~ReadOnlyFileMapping()
  {
    if (m_Data != nullptr)
    {
      ::munmap(const_cast<unsigned char *>(m_Data), m_Size);
    }
  }
  ReadOnlyFileMapping(const ReadOnlyFileMapping &) = delete;
  ReadOnlyFileMapping &
  operator=(const ReadOnlyFileMapping &) = delete;

  bool
  IsMapped() const
  {
    return m_Problem.empty();
  }
  const std::string &
  Problem() const
  {
    return m_Problem;
  }
  const unsigned char *
  Data() const
  {
    return m_Data;
  }
  size_t
  Size() const
  {
    return m_Size;
  }

private:
  const unsigned char * m_Data = nullptr;
  size_t                m_Size = 0;
  std::string           m_Problem;
};
} // namespace itk

#endif
