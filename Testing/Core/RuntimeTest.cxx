// Run-time device choice and the shared thread budget.
#include "divaDevice.h"
#include "divaThreadBudget.h"
#include "itkDivAttentionRuntime.h"
#include "itkMultiThreaderBase.h"

#include <gtest/gtest.h>
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
  const torch::Device automatic = itk::DivAttentionRuntime::ResolveDevice("auto");
  EXPECT_EQ(automatic.is_cuda(), torch::cuda::is_available());
  EXPECT_TRUE(itk::DivAttentionRuntime::ResolveDevice("cpu").is_cpu());
  if (torch::cuda::is_available())
  {
    EXPECT_TRUE(itk::DivAttentionRuntime::ResolveDevice("cuda").is_cuda());
  }
  else
  {
    try
    {
      itk::DivAttentionRuntime::ResolveDevice("cuda");
      FAIL() << "cuda resolved on a machine without CUDA";
    }
    catch (const itk::ExceptionObject & error)
    {
      EXPECT_NE(std::string(error.GetDescription()).find("no CUDA device"), std::string::npos);
    }
  }
  EXPECT_THROW(itk::DivAttentionRuntime::ResolveDevice("tpu"), itk::ExceptionObject);
}

TEST(ThreadBudget, OneCallSetsItkAndTorchTogether)
{
  itk::DivAttentionRuntime::SetThreadBudget(1);
  EXPECT_EQ(torch::get_num_threads(), 1);
  EXPECT_EQ(itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads(), 1u);
  EXPECT_EQ(itk::DivAttentionRuntime::GetThreadBudget(), 1);
  itk::DivAttentionRuntime::SetThreadBudget(2);
  EXPECT_EQ(torch::get_num_threads(), 2);
  EXPECT_EQ(itk::MultiThreaderBase::GetGlobalDefaultNumberOfThreads(), 2u);
  EXPECT_THROW(itk::DivAttentionRuntime::SetThreadBudget(0), itk::ExceptionObject);
}

TEST(ThreadBudget, DefaultHonoursEnvironment)
{
  setenv("DIVATTENTION_NUM_THREADS", "3", 1);
  EXPECT_EQ(diva::DefaultThreadBudget(), 3);
  setenv("DIVATTENTION_NUM_THREADS", "not-a-number", 1);
  EXPECT_GE(diva::DefaultThreadBudget(), 1); // falls back to the CPUs this process may use
  unsetenv("DIVATTENTION_NUM_THREADS");
}
