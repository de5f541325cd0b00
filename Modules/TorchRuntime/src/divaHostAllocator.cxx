#include "divaHostAllocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <utility>
#include <vector>

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

// Large blocks, best fit with splitting and coalescing (the design of LibTorch's CUDA caching allocator, here for
// host memory): a request takes the smallest free block that holds it and leaves the rest free; a returned block
// merges with free neighbours at adjacent addresses. So buffers of one size can be reused for another (stage 1's
// activations for stage 2's) instead of each size keeping its own pages: the process maps the most that is live at
// once, not the sum over all sizes ever used, and reused pages are not first-touched again.
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
      const auto                  found = m_FreeBySize.lower_bound({ bytes, 0 });
      if (found != m_FreeBySize.end())
      {
        const auto [size, address] = *found;
        m_FreeBySize.erase(found);
        auto block = m_Blocks.find(address);
        block->second.free = false;
        if (size > bytes)
        {
          // The rest stays free, as a block of its own.
          block->second.size = bytes;
          m_Blocks.emplace(address + bytes, Block{ size - bytes, true });
          m_FreeBySize.emplace(size - bytes, address + bytes);
          ++m_Statistics.splits;
        }
        m_Statistics.cachedBytes -= bytes;
        m_Statistics.liveBytes += bytes;
        ++m_Statistics.reuses;
        NotePeaks();
        return reinterpret_cast<void *>(address);
      }
    }
    // No cached block holds the request: build it from the cached blocks as far as they go (moved into one range by
    // mremap: their pages keep their contents and stay resident, so nothing is first-touched again and no memory is
    // added while free memory sits in the cache), and fresh pages for the rest.
    std::vector<std::pair<std::uintptr_t, std::size_t>> pieces;
    {
      std::lock_guard<std::mutex> lock(m_Mutex);
      TakePieces(bytes, pieces);
    }
    void * block = MapAligned(bytes);
    if (block == nullptr)
    {
      // Memory is short: give the cache (and the pieces) back and try once more before failing like operator new.
      Unmap(pieces);
      pieces.clear();
      ReleaseAll();
      block = MapAligned(bytes);
      if (block == nullptr)
      {
        throw std::bad_alloc();
      }
    }
    std::size_t moved = 0, offset = 0, freshBytes = bytes;
    for (const auto & [address, size] : pieces)
    {
      if (MoveInto(address, size, reinterpret_cast<std::uintptr_t>(block) + offset))
      {
        ++moved;
        freshBytes -= size;
      }
      else
      {
        munmap(reinterpret_cast<void *>(address), size); // the destination keeps its fresh pages there
      }
      offset += size;
    }
    std::lock_guard<std::mutex> lock(m_Mutex);
    m_Blocks.emplace(reinterpret_cast<std::uintptr_t>(block), Block{ bytes, false });
    m_Statistics.liveBytes += bytes;
    m_Statistics.movedBlocks += moved;
    m_Statistics.freshBytes += freshBytes;
    if (freshBytes > 0)
    {
      ++m_Statistics.fresh;
    }
    else
    {
      ++m_Statistics.reuses;
    }
    NotePeaks();
    return block;
  }

  /** Takes back a large block and returns true, or returns false when `block` is not one of ours (a small one). */
  bool
  Return(void * pointer)
  {
    std::vector<std::pair<std::uintptr_t, std::size_t>> released;
    {
      std::lock_guard<std::mutex> lock(m_Mutex);
      auto                        block = m_Blocks.find(reinterpret_cast<std::uintptr_t>(pointer));
      if (block == m_Blocks.end() || block->second.free)
      {
        return false;
      }
      const std::size_t bytes = block->second.size;
      m_Statistics.liveBytes -= bytes;
      m_Statistics.cachedBytes += bytes;
      block->second.free = true;
      // Merge with the free neighbours at adjacent addresses (mappings that happen to touch merge too: munmap and
      // madvise work on any page range).
      if (block != m_Blocks.begin())
      {
        auto before = std::prev(block);
        if (before->second.free && before->first + before->second.size == block->first)
        {
          m_FreeBySize.erase({ before->second.size, before->first });
          before->second.size += block->second.size;
          m_Blocks.erase(block);
          block = before;
        }
      }
      auto after = std::next(block);
      if (after != m_Blocks.end() && after->second.free && block->first + block->second.size == after->first)
      {
        m_FreeBySize.erase({ after->second.size, after->first });
        block->second.size += after->second.size;
        m_Blocks.erase(after);
      }
      m_FreeBySize.emplace(block->second.size, block->first);
      TrimTo(m_Statistics.cacheLimit, released);
    }
    Unmap(released);
    return true;
  }

  void
  ReleaseAll()
  {
    std::vector<std::pair<std::uintptr_t, std::size_t>> released;
    {
      std::lock_guard<std::mutex> lock(m_Mutex);
      TrimTo(0, released);
    }
    Unmap(released);
  }

  void
  SetLimit(std::size_t bytes)
  {
    std::vector<std::pair<std::uintptr_t, std::size_t>> released;
    {
      std::lock_guard<std::mutex> lock(m_Mutex);
      m_Statistics.cacheLimit = bytes;
      TrimTo(bytes, released);
    }
    Unmap(released);
  }

  HostAllocatorStatistics
  Statistics()
  {
    std::lock_guard<std::mutex> lock(m_Mutex);
    return m_Statistics;
  }

  void
  ResetPeaks()
  {
    std::lock_guard<std::mutex> lock(m_Mutex);
    m_Statistics.peakLiveBytes = m_Statistics.liveBytes;
    m_Statistics.peakMappedBytes = m_Statistics.liveBytes + m_Statistics.cachedBytes;
  }

private:
  struct Block
  {
    std::size_t size;
    bool        free;
  };

  BlockCache() { m_Statistics.cacheLimit = DefaultCacheLimit(); }

  void
  NotePeaks()
  {
    m_Statistics.peakLiveBytes = std::max(m_Statistics.peakLiveBytes, m_Statistics.liveBytes);
    m_Statistics.peakMappedBytes =
      std::max(m_Statistics.peakMappedBytes, m_Statistics.liveBytes + m_Statistics.cachedBytes);
  }

  // Takes cached blocks out, largest first, that add up to at most `bytes`, splitting the last if it holds more than
  // is still needed (its rest stays cached).
  void
  TakePieces(std::size_t bytes, std::vector<std::pair<std::uintptr_t, std::size_t>> & pieces)
  {
    std::size_t taken = 0;
    while (taken < bytes && !m_FreeBySize.empty())
    {
      const auto largest = std::prev(m_FreeBySize.end());
      const auto [size, address] = *largest;
      m_FreeBySize.erase(largest);
      auto              block = m_Blocks.find(address);
      const std::size_t used = std::min(size, bytes - taken);
      if (used < size)
      {
        block->second.size = size - used; // the rest, from the block's end, stays cached where it is
        m_FreeBySize.emplace(size - used, address);
        pieces.emplace_back(address + size - used, used);
        ++m_Statistics.splits;
      }
      else
      {
        m_Blocks.erase(block);
        pieces.emplace_back(address, size);
      }
      m_Statistics.cachedBytes -= used;
      taken += used;
    }
  }

  // Moves the pages of [from, from + size) to `to` (which lies in a mapping of ours), without copying. False when
  // this system cannot (no mremap, or it refused): the caller then gives the piece back and keeps fresh pages at `to`.
  static bool
  MoveInto(std::uintptr_t from, std::size_t size, std::uintptr_t to)
  {
#if defined(MREMAP_FIXED) && defined(MREMAP_MAYMOVE)
    return mremap(reinterpret_cast<void *>(from), size, size, MREMAP_MAYMOVE | MREMAP_FIXED,
                  reinterpret_cast<void *>(to)) != MAP_FAILED;
#else
    (void)from;
    (void)size;
    (void)to;
    return false;
#endif
  }

  // Takes free blocks out, largest first, until the cache holds at most `limit` bytes; the caller unmaps them outside
  // the lock.
  void
  TrimTo(std::size_t limit, std::vector<std::pair<std::uintptr_t, std::size_t>> & released)
  {
    while (m_Statistics.cachedBytes > limit && !m_FreeBySize.empty())
    {
      const auto largest = std::prev(m_FreeBySize.end());
      const auto [size, address] = *largest;
      m_FreeBySize.erase(largest);
      m_Blocks.erase(address);
      m_Statistics.cachedBytes -= size;
      released.emplace_back(address, size);
    }
  }

  static void
  Unmap(const std::vector<std::pair<std::uintptr_t, std::size_t>> & released)
  {
    for (const auto & [address, size] : released)
    {
      munmap(reinterpret_cast<void *>(address), size);
    }
  }

  std::mutex                                       m_Mutex;
  std::map<std::uintptr_t, Block>                  m_Blocks;     // every large block, live or free, by address
  std::set<std::pair<std::size_t, std::uintptr_t>> m_FreeBySize; // the free ones, smallest (then lowest) first
  HostAllocatorStatistics                          m_Statistics;
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

void
ResetHostAllocatorPeaks()
{
  BlockCache::Instance().ResetPeaks();
}

} // namespace diva
