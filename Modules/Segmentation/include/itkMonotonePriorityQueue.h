#ifndef itkMonotonePriorityQueue_h
#define itkMonotonePriorityQueue_h

#include "itkMacro.h"

#include <array>
#include <cstdint>
#include <vector>

namespace itk
{
/** \class MonotonePriorityQueue
 * \brief A min-priority queue of 64-bit keys for searches whose keys never go below the last key popped (Dijkstra's
 * algorithm with positive step lengths): a radix heap.
 *
 * Pop() returns the smallest key held, so the sequence of keys popped is exactly the one std::priority_queue with
 * std::greater (or any other min-heap) returns for the same pushes; equal keys are interchangeable. Each key is kept in
 * the bucket of the highest bit in which it differs from the last key popped, and moves only to lower buckets, so a
 * push is O(1) and a pop amortised O(64) without the comparisons and cache misses of a binary heap.
 *
 * Pushing a key below the last key popped breaks the order: itk::ExceptionObject. Pack a float distance >= 0 and an
 * index into one key with Pack() (the float's bits order like the float for non-negative values).
 * \ingroup DivAttention
 */
class MonotonePriorityQueue
{
public:
  /** A non-negative finite distance in the high 32 bits, an index below 2^32 in the low 32: keys order as
   * (distance, index) pairs do. */
  static uint64_t
  Pack(float distance, uint64_t index)
  {
    uint32_t bits = 0;
    static_assert(sizeof(bits) == sizeof(distance), "32-bit float");
    __builtin_memcpy(&bits, &distance, sizeof(bits));
    return (static_cast<uint64_t>(bits) << 32) | index;
  }
  static float
  Distance(uint64_t key)
  {
    const auto bits = static_cast<uint32_t>(key >> 32);
    float      distance = 0.0f;
    __builtin_memcpy(&distance, &bits, sizeof(bits));
    return distance;
  }
  static uint64_t
  Index(uint64_t key)
  {
    return key & 0xFFFFFFFFULL;
  }

  bool
  Empty() const
  {
    return m_Size == 0;
  }
  size_t
  Size() const
  {
    return m_Size;
  }

  void
  Push(uint64_t key)
  {
    if (key < m_Last)
    {
      itkGenericExceptionMacro(<< "MonotonePriorityQueue: key " << key << " pushed below the last key popped "
                               << m_Last);
    }
    m_Buckets[BucketOf(key)].push_back(key);
    ++m_Size;
  }

  /** The smallest key, removed; the queue must not be empty. */
  uint64_t
  Pop()
  {
    if (m_Buckets[0].empty())
    {
      size_t bucket = 1;
      while (m_Buckets[bucket].empty())
      {
        ++bucket;
      }
      // The smallest key of the first non-empty bucket becomes the reference; the bucket's keys spread below it.
      auto & keys = m_Buckets[bucket];
      m_Last = keys.front();
      for (const auto key : keys)
      {
        m_Last = key < m_Last ? key : m_Last;
      }
      for (const auto key : keys)
      {
        m_Buckets[BucketOf(key)].push_back(key);
      }
      keys.clear();
    }
    const uint64_t key = m_Buckets[0].back();
    m_Buckets[0].pop_back();
    --m_Size;
    return key;
  }

private:
  size_t
  BucketOf(uint64_t key) const
  {
    // 0 for a key equal to the last popped, else 1 + the highest bit in which they differ.
    return key == m_Last ? 0 : static_cast<size_t>(64 - __builtin_clzll(key ^ m_Last));
  }

  std::array<std::vector<uint64_t>, 65> m_Buckets;
  uint64_t                              m_Last{ 0 };
  size_t                                m_Size{ 0 };
};
} // namespace itk

#endif
