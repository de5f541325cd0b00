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
  std::size_t reuses = 0;      ///< large allocations served from the cache alone (one block, or several moved together)
  std::size_t fresh = 0;       ///< large allocations that had to map new memory (for all or part of the block)
  std::size_t freshBytes = 0;  ///< bytes of new memory mapped for them in all
  std::size_t splits = 0;      ///< cached blocks of which only a part was taken
  std::size_t movedBlocks = 0; ///< cached blocks moved (mremap) into a new, larger block instead of fresh pages
  std::size_t peakLiveBytes = 0;   ///< most live bytes at once since the last ResetHostAllocatorPeaks()
  std::size_t peakMappedBytes = 0; ///< most live + cached bytes at once since then (what the cache cost in memory)
};

/** \brief Replaces LibTorch's CPU allocator by one that keeps large blocks and backs them with huge pages.
 *
 * Why: a 3D network allocates and frees the same few large buffers (activations, im2col columns, gradients) at every
 * forward and backward. glibc returns such blocks to the kernel at once (they are mmap'ed), so each new buffer is
 * first-touched again, page by page; on machines where a 4 KiB page fault is slow (~11 us measured here) that
 * dominates 3D convolutions. This allocator
 *  - rounds blocks of 1 MiB and more up to whole 2 MiB huge pages, maps them 2 MiB-aligned and advises
 *    transparent huge pages (MADV_HUGEPAGE), so a first touch faults once per 2 MiB instead of once per 4 KiB;
 *  - keeps returned blocks in a cache and hands them out again (no fault at all), up to a limit:
 *    $DIVATTENTION_HOST_CACHE_MB, else a quarter of physical memory. A request takes the smallest cached block
 *    that holds it and leaves the rest cached (best fit with splitting; returned neighbours merge again), so the
 *    buffers of one network can serve another's of other sizes: the cache costs the most that was live at once,
 *    not the sum over every size ever used. A request no cached block holds is built from the cached blocks as
 *    far as they go (their pages moved into one range by mremap, no copy, no new fault) and fresh pages for the
 *    rest, so memory grows only when more is live than ever before;
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

/** Sets how many bytes the cache may keep; shrinking releases blocks at once (largest first). */
void
SetHostCacheLimit(std::size_t bytes);

/** Starts peakLiveBytes and peakMappedBytes again from the current figures. */
void
ResetHostAllocatorPeaks();

} // namespace diva

#endif
