// LibTorch-side run-time settings: device choice (also built where no ITK exists).
#include "DivAttentionTestDevice.h"
#include "divaDevice.h"
#include "divaThreadBudget.h"

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <torch/torch.h>

#include <cstdlib>

TEST(Device, ParsesEveryDocumentedSpelling)
{
  int index = -1;
  EXPECT_EQ(diva::ParseDeviceChoice("auto"), diva::DeviceChoice::Auto);
  EXPECT_EQ(diva::ParseDeviceChoice("CPU"), diva::DeviceChoice::CPU);
  EXPECT_EQ(diva::ParseDeviceChoice("cuda", &index), diva::DeviceChoice::CUDA);
  EXPECT_EQ(index, 0);
  EXPECT_EQ(diva::ParseDeviceChoice("cuda:3", &index), diva::DeviceChoice::CUDA);
  EXPECT_EQ(index, 3);
}

TEST(Device, RefusesUnknownSpellingNamingIt)
{
  for (const char * bad : { "gpu", "", "cuda:", "cuda:x", "cpu0" })
  {
    try
    {
      diva::ParseDeviceChoice(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    }
    catch (const std::invalid_argument & error)
    {
      EXPECT_NE(std::string(error.what()).find(std::string("\"") + bad + "\""), std::string::npos) << error.what();
    }
  }
}

TEST(Device, AutoFollowsCudaAvailabilityAndCudaRequestFailsClearlyWithoutIt)
{
  EXPECT_EQ(diva::ResolveDevice("auto").is_cuda(), torch::cuda::is_available());
  EXPECT_TRUE(diva::ResolveDevice("cpu").is_cpu());
  if (torch::cuda::is_available())
  {
    const torch::Device cuda = diva::ResolveDevice("cuda");
    EXPECT_TRUE(cuda.is_cuda());
    // A tensor really lives there.
    EXPECT_TRUE(torch::ones({ 2 }, torch::TensorOptions().device(cuda)).is_cuda());
    EXPECT_THROW(diva::ResolveDevice("cuda:99"), std::runtime_error);
  }
  else
  {
    try
    {
      diva::ResolveDevice("cuda");
      FAIL() << "cuda resolved on a machine without CUDA";
    }
    catch (const std::runtime_error & error)
    {
      EXPECT_NE(std::string(error.what()).find("no CUDA device"), std::string::npos) << error.what();
    }
  }
}

TEST(ThreadBudget, TorchBudgetAppliesAndRefusesZero)
{
  diva::SetTorchThreadBudget(1);
  EXPECT_EQ(torch::get_num_threads(), 1);
  EXPECT_EQ(diva::GetTorchThreadBudget(), 1);
  EXPECT_THROW(diva::SetTorchThreadBudget(0), std::invalid_argument);
}

TEST(ThreadBudget, DefaultHonoursEnvironment)
{
  setenv("DIVATTENTION_NUM_THREADS", "3", 1);
  EXPECT_EQ(diva::DefaultThreadBudget(), 3);
  setenv("DIVATTENTION_NUM_THREADS", "not-a-number", 1);
  EXPECT_GE(diva::DefaultThreadBudget(), 1); // falls back to the CPUs this process may use
  unsetenv("DIVATTENTION_NUM_THREADS");
}

TEST(ThreadBudget, OpenBlasGetsOneThreadUnlessTheEnvironmentSaysOtherwise)
{
  unsetenv("DIVATTENTION_BLAS_THREADS");
  EXPECT_EQ(diva::BlasThreads(2), 1);
  setenv("DIVATTENTION_BLAS_THREADS", "2", 1);
  EXPECT_EQ(diva::BlasThreads(4), 2);
  EXPECT_EQ(diva::BlasThreads(1), 1); // never more than the budget
  setenv("DIVATTENTION_BLAS_THREADS", "many", 1);
  EXPECT_EQ(diva::BlasThreads(2), 1);
  unsetenv("DIVATTENTION_BLAS_THREADS");
  // Where OpenBLAS is the BLAS (setup.sh installs it), the budget really reaches its pool.
  using GetterType = int (*)();
  if (auto getter = reinterpret_cast<GetterType>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads")))
  {
    diva::SetTorchThreadBudget(2);
    EXPECT_EQ(getter(), 1);
    EXPECT_EQ(torch::get_num_threads(), 2);
  }
}

// The CUDA twins of the device-dependent tests (Testing/CMakeLists.txt) get their device from DIVATTENTION_TEST_DEVICE;
// a twin must fail where CUDA is missing rather than run on the CPU and pass as a copy of its CPU test.
TEST(TestDevice, FollowsTheEnvironmentAndNeverFallsBackToTheCpu)
{
  const char *      saved = std::getenv("DIVATTENTION_TEST_DEVICE");
  const std::string restore = saved == nullptr ? "" : saved;
  unsetenv("DIVATTENTION_TEST_DEVICE");
  EXPECT_EQ(diva::testing::TestDeviceName(), "cpu");
  EXPECT_TRUE(diva::testing::TestDevice().is_cpu());
  setenv("DIVATTENTION_TEST_DEVICE", "cuda", 1);
  EXPECT_EQ(diva::testing::TestDeviceName(), "cuda");
  if (torch::cuda::is_available())
  {
    EXPECT_TRUE(diva::testing::TestDevice().is_cuda());
  }
  else
  {
    EXPECT_THROW(diva::testing::TestDevice(), std::runtime_error);
  }
  setenv("DIVATTENTION_TEST_DEVICE", "gpu-please", 1);
  EXPECT_THROW(diva::testing::TestDevice(), std::invalid_argument);
  if (saved == nullptr)
  {
    unsetenv("DIVATTENTION_TEST_DEVICE");
  }
  else
  {
    setenv("DIVATTENTION_TEST_DEVICE", restore.c_str(), 1);
  }
}
