#include "itkDivAttentionRuntime.h"

#include "divaDevice.h"
#include "divaHostAllocator.h"
#include "divaThreadBudget.h"
#include "itkMacro.h"
#include "itkMultiThreaderBase.h"

#include "ITKIOGDCMExport.h"
#include "ITKIOMetaExport.h"
#include "ITKIONIFTIExport.h"
#include "ITKIONRRDExport.h"
#include "ITKIOPNGExport.h"

#include <atomic>
#include <mutex>

namespace itk
{
// ITK's once-only registration functions of the IO factories (each IO library defines its own; UseITK.cmake's
// registration manager calls the same ones, so a factory is never registered twice).
void ITKIONIFTI_EXPORT
NiftiImageIOFactoryRegister__Private();
void ITKIONRRD_EXPORT
NrrdImageIOFactoryRegister__Private();
void ITKIOMeta_EXPORT
MetaImageIOFactoryRegister__Private();
void ITKIOPNG_EXPORT
PNGImageIOFactoryRegister__Private();
void ITKIOGDCM_EXPORT
GDCMImageIOFactoryRegister__Private();

namespace
{
std::atomic<bool> g_BudgetSet{ false };
std::once_flag    g_InitializeOnce;
} // namespace

void
DivAttentionRuntime::Initialize()
{
  std::call_once(g_InitializeOnce,
                 []
                 {
                   RegisterImageIOFactories(); // again, for static libraries (see below)
                   diva::InstallHostAllocator();
                   if (!g_BudgetSet)
                   {
                     SetThreadBudget(diva::DefaultThreadBudget());
                   }
                 });
}

void
DivAttentionRuntime::RegisterImageIOFactories()
{
  NiftiImageIOFactoryRegister__Private();
  NrrdImageIOFactoryRegister__Private();
  MetaImageIOFactoryRegister__Private();
  PNGImageIOFactoryRegister__Private();
  GDCMImageIOFactoryRegister__Private();
}

namespace
{
// At library load: in ITK's module system (build modes 2 and 3) no registration manager exists for executables, and
// a program that reads an image before anything else of DivAttention runs must already find the formats. (A static
// library's object is linked only where something of it is used: Initialize() registers too, and the tests link
// Testing/Support/RegisterImageIOAtStartup.cxx.)
const bool g_ImageIOFactoriesRegistered = (DivAttentionRuntime::RegisterImageIOFactories(), true);
} // namespace

void
DivAttentionRuntime::SetThreadBudget(int threads)
{
  if (threads < 1)
  {
    itkGenericExceptionMacro(<< "DivAttention: thread budget must be at least 1, got " << threads);
  }
  const auto count = static_cast<ThreadIdType>(threads);
  if (MultiThreaderBase::GetGlobalMaximumNumberOfThreads() < count)
  {
    MultiThreaderBase::SetGlobalMaximumNumberOfThreads(count);
  }
  MultiThreaderBase::SetGlobalDefaultNumberOfThreads(count);
  diva::SetTorchThreadBudget(threads);
  g_BudgetSet = true;
}

int
DivAttentionRuntime::GetThreadBudget()
{
  return diva::GetTorchThreadBudget();
}

torch::Device
DivAttentionRuntime::ResolveDevice(const std::string & deviceText)
{
  try
  {
    return diva::ResolveDevice(deviceText);
  }
  catch (const std::exception & error)
  {
    itkGenericExceptionMacro(<< "DivAttention: " << error.what());
  }
}

} // namespace itk
