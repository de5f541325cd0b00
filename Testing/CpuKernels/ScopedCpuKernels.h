#ifndef ScopedCpuKernels_h
#define ScopedCpuKernels_h

#include "divaCpuKernelSelection.h"

#include <torch/torch.h>

/** Restores the process-wide CPU kernel choice and LibTorch's thread count that a test changes, when it ends. */
class ScopedCpuKernels
{
public:
  ScopedCpuKernels() : m_Kernels(diva::GetCpuKernels()), m_Threads(torch::get_num_threads()) {}
  ~ScopedCpuKernels()
  {
    diva::SetCpuKernels(m_Kernels);
    torch::set_num_threads(m_Threads);
  }
  ScopedCpuKernels(const ScopedCpuKernels &) = delete;
  ScopedCpuKernels &
  operator=(const ScopedCpuKernels &) = delete;

private:
  diva::CpuKernels m_Kernels;
  int              m_Threads;
};

#endif
