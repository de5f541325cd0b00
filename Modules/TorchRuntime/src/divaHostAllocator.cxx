#include "divaHostAllocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

namespace diva
{
namespace
{
constexpr std::size_t kHugePage = std::size_t{ 2 } << 20;   // 2 MiB, x86-64 and arm64 transparent huge page
constexpr std::size_t kLargeBlock = std::size_t{ 1 } << 20; // blocks from here on are cached and huge-page backed
constexpr std::size_t kSmallAlignment = 64;                 // what LibTorch's default CPU allocator guarantees

std::size_t
DefaultCacheLimit()
{
  if (const char * text = std::getenv("DIVATTENTION_HOST_CACHE_MB"))
  {
    char *                   end = nullptr;
    const unsigned long long megabytes = std::strtoull(text, &end, 10);
    if (end != text && *end == '\0')
    {
      return static_cast<std::size_t>(megabytes) << 20;
    }
  }
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long pageSize = sysconf(_SC_PAGESIZE);
  if (pages > 0 && pageSize > 0)
  {
    return static_cast<std::size_t>(pages) * static_cast<std::size_t>(pageSize) / 4;
  }
  return std::size_t{ 4 } << 30;
}

// Maps `bytes` (a multiple of kHugePage) at a kHugePage-aligned address, so that the kernel can back it with huge
// pages.
void *
MapAligned(std::size_t bytes)
{
  const std::size_t padded = bytes + kHugePage;
  void *            raw = mmap(nullptr, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
  {
    return nullptr;
  }
  const auto           start = reinterpret_cast<std::uintptr_t>(raw);
  const std::uintptr_t aligned = (start + kHugePage - 1) & ~(kHugePage - 1);
  const std::size_t    head = aligned - start;
  const std::size_t    tail = padded - head - bytes;
  if (head > 0)
  {
    munmap(raw, head);
  }
  if (tail > 0)
  {
    munmap(reinterpret_cast<void *>(aligned + bytes), tail);
  }
  void * block = reinterpret_cast<void *>(aligned);
#ifdef MADV_HUGEPAGE
  madvise(block, bytes, MADV_HUGEPAGE); // advice only: without THP support the block still works with small pages
#endif
  return block;
}

class BlockCache
{
public:
  static BlockCache &
  Instance()
  {
    static BlockCache * cache = new BlockCache; // never destroyed: tensors may be freed during static destruction
    return *cache;
  }

  void *
  Acquire(std::size_t requested)
  {
    const std::size_t bytes = (requested + kHugePage - 1) & ~(kHugePage - 1);
    {
      std::lock_guard<std::mutex> lock(m_Mutex);
      auto                        found = m_Free.find(bytes);
      if (found != m_Free.end())
      {
        void * block = found->second;
        m_Free.erase(found);
        m_Statistics.cachedBytes -= bytes;
        m_Statistics.liveBytes += bytes;
        ++m_Statistics.reuses;
        m_Live.emplace(block, bytes);
        return block;
      }
    }
    void * block = MapAligned(bytes);
    if (block == nullptr)
    {
      // Memory is short: give the cache back and try once more before failing like operator new.
      ReleaseAll();
      block = MapAligned(bytes);
      if (block == nullptr)
      {
        throw std::bad_alloc();
      }
    }
    std::lock_guard<std::mutex> lock(m_Mutex);
    m_Statistics.liveBytes += bytes;
    ++m_Statistics.fresh;
    m_Live.emplace(block, bytes);
    return block;
  }

  /** Takes back a large block and returns true, or returns false when `block` is not one of ours (a small one). */
  bool
  Return(void * block)
  {
    std::unique_lock<std::mutex> lock(m_Mutex);
    auto                         found = m_Live.find(block);
    if (found == m_Live.end())
    {
      return false;
    }
    const std::size_t bytes = found->second;
    m_Live.erase(found);
    m_Statistics.liveBytes -= bytes;
    if (m_Statistics.cachedBytes + bytes <= m_Statistics.cacheLimit)
    {
      m_Free.emplace(bytes, block);
      m_Statistics.cachedBytes += bytes;
      return true;
    }
    lock.unlock();
    munmap(block, bytes);
    return true;
  }

  void
  ReleaseAll()
  {
    std::multimap<std::size_t, void *> released;
    {
      std::lock_guard<std::mutex> lock(m_Mutex);
      released.swap(m_Free);
      m_Statistics.cachedBytes = 0;
    }
    for (const auto & entry : released)
    {
      munmap(entry.second, entry.first);
    }
  }

  void
  SetLimit(std::size_t bytes)
  {
    std::multimap<std::size_t, void *> released;
    {
      std::lock_guard<std::mutex> lock(m_Mutex);
      m_Statistics.cacheLimit = bytes;
      while (m_Statistics.cachedBytes > bytes && !m_Free.empty())
      {
        auto largest = std::prev(m_Free.end());
        m_Statistics.cachedBytes -= largest->first;
        released.emplace(largest->first, largest->second);
        m_Free.erase(largest);
      }
    }
    for (const auto & entry : released)
    {
      munmap(entry.second, entry.first);
    }
  }

  HostAllocatorStatistics
  Statistics()
  {
    std::lock_guard<std::mutex> lock(m_Mutex);
    return m_Statistics;
  }

private:
  BlockCache() { m_Statistics.cacheLimit = DefaultCacheLimit(); }

  std::mutex                              m_Mutex;
  std::multimap<std::size_t, void *>      m_Free;
  std::unordered_map<void *, std::size_t> m_Live;
  HostAllocatorStatistics                 m_Statistics;
};

// One deleter for both kinds: LibTorch's raw_allocate()/raw_deallocate() (used by oneDNN) need a single raw deleter.
void
Delete(void * pointer)
{
  if (pointer != nullptr && !BlockCache::Instance().Return(pointer))
  {
    std::free(pointer);
  }
}

// LibTorch 2.3 made Allocator::allocate non-const and added copy_data(); 1.13 has the const form and no copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#  define DIVA_ALLOCATOR_2_3 1
#  define DIVA_ALLOCATE_CONST
#else
#  define DIVA_ALLOCATOR_2_3 0
#  define DIVA_ALLOCATE_CONST const
#endif

class CachingHostAllocator final : public c10::Allocator
{
public:
  c10::DataPtr
  allocate(std::size_t bytes) DIVA_ALLOCATE_CONST override
  {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (bytes >= kLargeBlock)
    {
      void * block = BlockCache::Instance().Acquire(bytes);
      return { block, block, &Delete, cpu };
    }
    void * pointer = nullptr;
    if (posix_memalign(&pointer, kSmallAlignment, bytes == 0 ? kSmallAlignment : bytes) != 0)
    {
      throw std::bad_alloc();
    }
    return { pointer, pointer, &Delete, cpu };
  }

  c10::DeleterFnPtr
  raw_deleter() const override
  {
    return &Delete;
  }

#if DIVA_ALLOCATOR_2_3
  void
  copy_data(void * destination, const void * source, std::size_t count) const override
  {
    std::memcpy(destination, source, count);
  }
#endif
};

std::once_flag g_InstallOnce;
bool           g_Installed = false;
} // namespace

void
InstallHostAllocator()
{
  std::call_once(g_InstallOnce,
                 []
                 {
                   // An escape hatch for measuring (and for hosts whose allocator policy must win): keep LibTorch's
                   // own.
                   if (const char * choice = std::getenv("DIVATTENTION_HOST_ALLOCATOR"))
                   {
                     if (std::string(choice) == "system")
                     {
                       return;
                     }
                   }
                   // Never destroyed: LibTorch may free tensors during static destruction.
                   static auto * allocator = new CachingHostAllocator;
                   // Priority above LibTorch's own registration (0), so that a later default registration cannot
                   // displace it.
                   c10::SetCPUAllocator(allocator, /*priority=*/1);
                   g_Installed = true;
                 });
}

bool
HostAllocatorIsInstalled()
{
  return g_Installed;
}

HostAllocatorStatistics
GetHostAllocatorStatistics()
{
  return BlockCache::Instance().Statistics();
}

void
ReleaseCachedHostMemory()
{
  BlockCache::Instance().ReleaseAll();
}

void
SetHostCacheLimit(std::size_t bytes)
{
  BlockCache::Instance().SetLimit(bytes);
}

} // namespace diva
