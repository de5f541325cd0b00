#include "itkDivAttentionRuntime.h"

#include "divaDevice.h"
#include "divaHostAllocator.h"
#include "divaThreadBudget.h"
#include "itkMacro.h"
#include "itkMultiThreaderBase.h"

#include <atomic>
#include <mutex>

namespace itk
{
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
                   diva::InstallHostAllocator();
                   if (!g_BudgetSet)
                   {
                     SetThreadBudget(diva::DefaultThreadBudget());
                   }
                 });
}

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
