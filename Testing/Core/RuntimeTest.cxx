// ITK-side run-time settings: one call sets ITK's and LibTorch's thread budgets; device errors as ITK exceptions.
#include "divaHostAllocator.h"
#include "itkDivAttentionRuntime.h"
#include "itkImageIOFactory.h"
#include "itkMultiThreaderBase.h"
#include "itkObjectFactoryBase.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <string>

TEST(DivAttentionRuntime, DeviceErrorsAreItkExceptionsNamingTheText)
{
  EXPECT_TRUE(itk::DivAttentionRuntime::ResolveDevice("cpu").is_cpu());
  try
  {
    itk::DivAttentionRuntime::ResolveDevice("tpu");
    FAIL() << "accepted tpu";
  }
  catch (const itk::ExceptionObject & error)
  {
    EXPECT_NE(std::string(error.GetDescription()).find("\"tpu\""), std::string::npos) << error.GetDescription();
  }
  if (!torch::cuda::is_available())
  {
    EXPECT_THROW(itk::DivAttentionRuntime::ResolveDevice("cuda"), itk::ExceptionObject);
  }
}

TEST(DivAttentionRuntime, OneCallSetsItkAndTorchTogether)
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

TEST(DivAttentionRuntime, InitializeInstallsAllocatorAndKeepsAnExplicitBudget)
{
  itk::DivAttentionRuntime::SetThreadBudget(1);
  itk::DivAttentionRuntime::Initialize(); // must not override a budget the program chose
  EXPECT_EQ(torch::get_num_threads(), 1);
  EXPECT_TRUE(diva::HostAllocatorIsInstalled());
}

TEST(DivAttentionRuntime, ImageIOFactoriesAreRegisteredOnceEachInEveryBuildMode)
{
  // Registered at library load (no call here first): a program that links DivAttention reads and writes these
  // formats in every build mode. Calling again must not register a second copy of any factory.
  itk::DivAttentionRuntime::RegisterImageIOFactories();
  itk::DivAttentionRuntime::RegisterImageIOFactories();
  std::map<std::string, int> count;
  for (auto * factory : itk::ObjectFactoryBase::GetRegisteredFactories())
  {
    ++count[factory->GetNameOfClass()];
  }
  for (const char * name :
       { "NiftiImageIOFactory", "NrrdImageIOFactory", "MetaImageIOFactory", "PNGImageIOFactory", "GDCMImageIOFactory" })
  {
    EXPECT_EQ(count[name], 1) << name;
  }
  // And the readers find them by file name.
  for (const char * file : { "a.nii.gz", "a.nrrd", "a.mha", "a.png" })
  {
    EXPECT_NE(itk::ImageIOFactory::CreateImageIO(file, itk::ImageIOFactory::FileModeEnum::WriteMode), nullptr) << file;
  }
}
