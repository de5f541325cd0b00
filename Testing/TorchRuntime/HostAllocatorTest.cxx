// The caching huge-page host allocator that DivAttention installs into LibTorch.
#include "divaHostAllocator.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>

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
