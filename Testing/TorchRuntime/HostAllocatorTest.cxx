// The caching huge-page host allocator that DivAttention installs into LibTorch.
#include "divaHostAllocator.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <iostream>

namespace
{
constexpr std::uintptr_t kHugePage = std::uintptr_t{ 2 } << 20;
}

TEST(HostAllocator, LargeBlocksAreHugePageAlignedAndReused)
{
  diva::InstallHostAllocator();
  ASSERT_TRUE(diva::HostAllocatorIsInstalled());
  diva::SetHostCacheLimit(std::size_t{ 1 } << 30);
  const auto before = diva::GetHostAllocatorStatistics();

  void * first = nullptr;
  {
    torch::Tensor big = torch::empty({ 3, 1000, 1000 }); // 12 MB
    first = big.data_ptr();
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(first) % kHugePage, 0u);
    big.fill_(1.5f);
    EXPECT_FLOAT_EQ(big.sum().item<float>(), 1.5f * 3e6f);
    EXPECT_GE(diva::GetHostAllocatorStatistics().liveBytes, std::size_t{ 12000000 });
  }
  const auto afterFree = diva::GetHostAllocatorStatistics();
  EXPECT_GE(afterFree.cachedBytes, std::size_t{ 12000000 });

  torch::Tensor again = torch::empty({ 3, 1000, 1000 });
  EXPECT_EQ(again.data_ptr(), first); // served from the cache: no new mapping, no page faults
  const auto afterReuse = diva::GetHostAllocatorStatistics();
  EXPECT_EQ(afterReuse.reuses, before.reuses + 1);
}

TEST(HostAllocator, SmallBlocksBypassTheCacheAndLimitIsHonoured)
{
  diva::InstallHostAllocator();
  const auto    before = diva::GetHostAllocatorStatistics();
  torch::Tensor small = torch::ones({ 100 });
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(small.data_ptr()) % 64, 0u);
  EXPECT_EQ(diva::GetHostAllocatorStatistics().fresh, before.fresh);
  EXPECT_EQ(diva::GetHostAllocatorStatistics().reuses, before.reuses);

  {
    torch::Tensor big = torch::empty({ 4 << 20 });
  } // 16 MiB, returned to the cache
  EXPECT_GT(diva::GetHostAllocatorStatistics().cachedBytes, 0u);
  diva::SetHostCacheLimit(0);
  EXPECT_EQ(diva::GetHostAllocatorStatistics().cachedBytes, 0u);
  {
    torch::Tensor big = torch::empty({ 4 << 20 });
  } // with no room, the block goes back to the system
  EXPECT_EQ(diva::GetHostAllocatorStatistics().cachedBytes, 0u);
  diva::SetHostCacheLimit(std::size_t{ 1 } << 30);
  diva::ReleaseCachedHostMemory();
}

namespace
{
constexpr std::size_t kMiB = std::size_t{ 1 } << 20;

// A float tensor of `mebibytes` MiB from the installed allocator.
torch::Tensor
Block(std::size_t mebibytes)
{
  return torch::empty({ static_cast<int64_t>(mebibytes * kMiB / sizeof(float)) });
}

// Starts a test from an empty cache with room, peaks reset.
diva::HostAllocatorStatistics
EmptyCache()
{
  diva::InstallHostAllocator();
  diva::SetHostCacheLimit(std::size_t{ 1 } << 30);
  diva::ReleaseCachedHostMemory();
  diva::ResetHostAllocatorPeaks();
  return diva::GetHostAllocatorStatistics();
}
} // namespace

TEST(HostAllocator, ASmallerRequestTakesPartOfALargerCachedBlock)
{
  const auto before = EmptyCache();
  void *     address = nullptr;
  {
    auto big = Block(16);
    address = big.data_ptr();
  }
  auto part = Block(4); // best fit: the cached 16 MiB block, split
  EXPECT_EQ(part.data_ptr(), address);
  const auto after = diva::GetHostAllocatorStatistics();
  EXPECT_EQ(after.fresh, before.fresh + 1) << "only the 16 MiB block was ever mapped";
  EXPECT_EQ(after.splits, before.splits + 1);
  EXPECT_EQ(after.cachedBytes, 12 * kMiB) << "the rest of the block stays cached";
  EXPECT_EQ(after.peakMappedBytes, 16 * kMiB);
}

TEST(HostAllocator, ReturnedNeighboursMergeIntoOneBlock)
{
  const auto before = EmptyCache();
  void *     address = nullptr;
  {
    auto big = Block(16);
    address = big.data_ptr();
  }
  {
    auto first = Block(8), second = Block(8); // both halves of the cached block
    EXPECT_EQ(diva::GetHostAllocatorStatistics().cachedBytes, 0U);
  }
  auto whole = Block(16); // the halves merged again: one cached block serves it
  EXPECT_EQ(whole.data_ptr(), address);
  const auto after = diva::GetHostAllocatorStatistics();
  EXPECT_EQ(after.fresh, before.fresh + 1);
  EXPECT_EQ(after.movedBlocks, before.movedBlocks) << "nothing had to be moved";
  EXPECT_EQ(after.peakMappedBytes, 16 * kMiB);
}

TEST(HostAllocator, ALargerRequestIsBuiltFromCachedBlocksWithoutNewMemory)
{
  const auto before = EmptyCache();
  bool       adjacent = false;
  {
    // Two 8 MiB blocks with a live one mapped between them, so that they are most likely not neighbours.
    auto first = Block(8);
    auto spacer = Block(2);
    auto second = Block(8);
    first.fill_(1.0f);
    second.fill_(2.0f);
    const auto a = reinterpret_cast<std::uintptr_t>(first.data_ptr());
    const auto b = reinterpret_cast<std::uintptr_t>(second.data_ptr());
    adjacent = a + 8 * kMiB == b || b + 8 * kMiB == a;
    diva::ResetHostAllocatorPeaks();
    first = torch::Tensor();
    second = torch::Tensor();
    auto       whole = Block(16); // 16 MiB cached in two pieces (the spacer is still live)
    const auto stats = diva::GetHostAllocatorStatistics();
    EXPECT_EQ(stats.freshBytes, before.freshBytes + 18 * kMiB) << "no new memory for the 16 MiB block";
    EXPECT_EQ(stats.peakMappedBytes, 18 * kMiB) << "memory never grew beyond what was live before";
    if (!adjacent)
    {
      EXPECT_EQ(stats.movedBlocks, before.movedBlocks + 2);
    }
    std::cout << (adjacent ? "the two blocks were neighbours: merged on return"
                           : "the two blocks were apart: moved into one range")
              << std::endl;
    // The block is whole and usable: every element written and read back.
    whole.fill_(3.0f);
    EXPECT_FLOAT_EQ(whole.sum().item<float>(), 3.0f * static_cast<float>(whole.numel()));
  }
  // Larger than the cache holds (now 18 MiB): only the difference is new memory.
  const auto beforeLarger = diva::GetHostAllocatorStatistics();
  ASSERT_EQ(beforeLarger.cachedBytes, 18 * kMiB);
  auto larger = Block(24);
  larger.fill_(1.0f);
  EXPECT_FLOAT_EQ(larger.sum().item<float>(), static_cast<float>(larger.numel()));
  const auto after = diva::GetHostAllocatorStatistics();
  EXPECT_EQ(after.freshBytes, beforeLarger.freshBytes + 6 * kMiB);
  EXPECT_EQ(after.fresh, beforeLarger.fresh + 1);
  EXPECT_EQ(after.cachedBytes, 0U);
}
