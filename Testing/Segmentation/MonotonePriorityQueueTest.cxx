// The radix heap behind the geodesic carve's Dijkstra (itkMonotonePriorityQueue.h): it must pop exactly what a binary
// heap pops, or a negative click would remove other voxels than before.
#include "itkMaskCorrectionSupport.h"
#include "itkMonotonePriorityQueue.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <queue>
#include <random>
#include <utility>
#include <vector>

namespace
{
using Entry = std::pair<float, uint64_t>;
using Heap = std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>>;
using itk::MonotonePriorityQueue;

TEST(MonotonePriorityQueue, PackOrdersAsDistanceThenIndex)
{
  const std::vector<Entry> entries{ { 0.0f, 0 },    { 0.0f, 7 },        { 1e-30f, 0 }, { 0.5f, 4294967295ULL },
                                    { 0.75f, 3 },   { 1.0f, 2 },        { 1.0f, 9 },   { 1.06066f, 1 },
                                    { 1000.0f, 5 }, { 123456.789f, 0 }, { 3.0e38f, 1 } };
  for (const auto & a : entries)
  {
    EXPECT_EQ(MonotonePriorityQueue::Distance(MonotonePriorityQueue::Pack(a.first, a.second)), a.first);
    EXPECT_EQ(MonotonePriorityQueue::Index(MonotonePriorityQueue::Pack(a.first, a.second)), a.second);
    for (const auto & b : entries)
    {
      EXPECT_EQ(MonotonePriorityQueue::Pack(a.first, a.second) < MonotonePriorityQueue::Pack(b.first, b.second), a < b)
        << "(" << a.first << ", " << a.second << ") vs (" << b.first << ", " << b.second << ")";
    }
  }
}

// Dijkstra over a random 3D mask (26 neighbours at 0.75 x 0.75 x 1 mm: distances tie often and indices decide; stale
// entries stay queued as the carve leaves them), driven by both queues in lockstep: every pop must be the binary
// heap's.
TEST(MonotonePriorityQueue, PopsWhatABinaryHeapPops)
{
  const int64_t nx = 40, ny = 36, nz = 24;
  float         lengths[27];
  for (int k = 0; k < 27; ++k)
  {
    const double x = (k % 3 - 1) * 0.75, y = (k / 3 % 3 - 1) * 0.75, z = (k / 9 - 1) * 1.0;
    lengths[k] = static_cast<float>(std::sqrt(x * x + y * y + z * z));
  }
  for (const unsigned int seed : { 1U, 2U, 3U })
  {
    std::mt19937                       random(seed);
    std::bernoulli_distribution        open(0.8);
    std::vector<bool>                  inside(static_cast<size_t>(nx * ny * nz));
    std::vector<float>                 distance(inside.size(), std::numeric_limits<float>::infinity());
    std::vector<bool>                  settled(inside.size(), false);
    std::uniform_int_distribution<int> pick(0, static_cast<int>(inside.size()) - 1);
    for (size_t k = 0; k < inside.size(); ++k)
    {
      inside[k] = open(random);
    }
    MonotonePriorityQueue queue;
    Heap                  heap;
    for (int k = 0; k < 4; ++k)
    {
      const auto at = static_cast<uint64_t>(pick(random));
      inside[at] = true;
      distance[at] = 0.0f;
      queue.Push(MonotonePriorityQueue::Pack(0.0f, at));
      heap.emplace(0.0f, at);
    }
    size_t popped = 0;
    while (!heap.empty())
    {
      ASSERT_FALSE(queue.Empty());
      ASSERT_EQ(queue.Size(), heap.size());
      const auto [reached, here] = heap.top();
      heap.pop();
      const uint64_t key = queue.Pop();
      ++popped;
      ASSERT_EQ(MonotonePriorityQueue::Distance(key), reached) << "pop " << popped << ", seed " << seed;
      ASSERT_EQ(MonotonePriorityQueue::Index(key), here) << "pop " << popped << ", seed " << seed;
      if (settled[here] || reached > distance[here])
      {
        continue;
      }
      settled[here] = true;
      const auto x = static_cast<int64_t>(here) % nx, y = static_cast<int64_t>(here) / nx % ny,
                 z = static_cast<int64_t>(here) / (nx * ny);
      for (int k = 0; k < 27; ++k)
      {
        const int64_t ax = x + k % 3 - 1, ay = y + k / 3 % 3 - 1, az = z + k / 9 - 1;
        if (k == 13 || ax < 0 || ay < 0 || az < 0 || ax >= nx || ay >= ny || az >= nz)
        {
          continue;
        }
        const auto  there = static_cast<uint64_t>(ax + nx * (ay + ny * az));
        const float candidate = reached + lengths[k];
        if (inside[there] && !settled[there] && candidate <= distance[there])
        {
          // "<=": a voxel reached again at the same distance is queued twice (equal entries).
          distance[there] = candidate;
          queue.Push(MonotonePriorityQueue::Pack(candidate, there));
          heap.emplace(candidate, there);
        }
      }
    }
    EXPECT_GT(popped, 20000u) << "the search must cover most of the mask";
    EXPECT_TRUE(queue.Empty());
  }
}

TEST(MonotonePriorityQueue, RefusesAKeyBelowTheLastPopped)
{
  MonotonePriorityQueue queue;
  queue.Push(MonotonePriorityQueue::Pack(2.0f, 5));
  queue.Push(MonotonePriorityQueue::Pack(3.0f, 1));
  EXPECT_EQ(queue.Pop(), MonotonePriorityQueue::Pack(2.0f, 5));
  EXPECT_THROW(queue.Push(MonotonePriorityQueue::Pack(2.0f, 4)), itk::ExceptionObject);
  queue.Push(MonotonePriorityQueue::Pack(2.0f, 5)); // equal to the last popped: allowed
  EXPECT_EQ(queue.Pop(), MonotonePriorityQueue::Pack(2.0f, 5));
  EXPECT_EQ(queue.Pop(), MonotonePriorityQueue::Pack(3.0f, 1));
  EXPECT_TRUE(queue.Empty());
}

// The carve's part size comes back with its result (LocalGeodesicCarve reads it instead of a second flood fill).
TEST(MaskCorrectionSupport, GeodesicCarveReportsItsPartSize)
{
  using MaskType = itk::Image<uint8_t, 3>;
  auto mask = MaskType::New();
  mask->SetRegions(MaskType::SizeType{ { 30, 12, 12 } });
  mask->Allocate();
  mask->FillBuffer(0);
  size_t part = 0;
  for (itk::IndexValueType x = 2; x < 20; ++x)
  {
    for (itk::IndexValueType y = 3; y < 8; ++y)
    {
      mask->SetPixel({ { x, y, 4 } }, 1);
      ++part;
    }
  }
  mask->SetPixel({ { 26, 5, 4 } }, 1); // another part
  itk::SizeValueType size = 0;
  const auto         removed =
    itk::MaskCorrectionSupport::GeodesicCarve(mask.GetPointer(), { { { 18, 5, 4 } } }, { { { 3, 5, 4 } } }, &size);
  EXPECT_EQ(size, part);
  EXPECT_FALSE(removed.empty());
  EXPECT_LT(removed.size(), part);
}
} // namespace
