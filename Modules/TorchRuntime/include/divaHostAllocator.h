#ifndef divaHostAllocator_h
#define divaHostAllocator_h

#include <cstddef>

namespace diva
{
/** \brief Figures of the caching host allocator (see InstallHostAllocator). \ingroup DivAttention */
struct HostAllocatorStatistics
{
  std::size_t liveBytes = 0;   ///< large blocks handed out and not yet returned
  std::size_t cachedBytes = 0; ///< large blocks returned and kept for reuse
  std::size_t cacheLimit = 0;  ///< most bytes the cache keeps
  std::size_t reuses = 0;      ///< large allocations served from the cache
  std::size_t fresh = 0;       ///< large allocations that had to map new memory
};

/** \brief Replaces LibTorch's CPU allocator by one that keeps large blocks and backs them with huge pages.
 *
 * Why: a 3D network allocates and frees the same few large buffers (activations, im2col columns, gradients) at every
 * forward and backward. glibc returns such blocks to the kernel at once (they are mmap'ed), so each new buffer is
 * first-touched again, page by page; on machines where a 4 KiB page fault is slow (~11 us measured here) that
 * dominates 3D convolutions. This allocator
 *  - rounds blocks of 1 MiB and more up to whole 2 MiB huge pages, maps them 2 MiB-aligned and advises
 *    transparent huge pages (MADV_HUGEPAGE), so a first touch faults once per 2 MiB instead of once per 4 KiB;
 *  - keeps returned blocks in a cache keyed by size and hands them out again (no fault at all), up to a limit:
 *    $DIVATTENTION_HOST_CACHE_MB, else a quarter of physical memory;
 *  - leaves small blocks to the system allocator (64-byte aligned, as LibTorch's own).
 * Installing is idempotent and thread-safe; tensors allocated before keep their own deleters. Every DivAttention
 * entry point (itk::DivAttentionRuntime::Initialize) installs it; a program may call this itself.
 * DIVATTENTION_HOST_ALLOCATOR=system keeps LibTorch's own allocator (to measure the difference).
 * \ingroup DivAttention
 */
void
InstallHostAllocator();

/** Whether InstallHostAllocator() has run in this process. */
bool
HostAllocatorIsInstalled();

/** Current figures. */
HostAllocatorStatistics
GetHostAllocatorStatistics();

/** Gives every cached block back to the system (live blocks are untouched). */
void
ReleaseCachedHostMemory();

/** Sets how many bytes the cache may keep; shrinking releases blocks at once. */
void
SetHostCacheLimit(std::size_t bytes);

} // namespace diva

#endif
