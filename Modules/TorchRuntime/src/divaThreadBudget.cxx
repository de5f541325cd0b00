#include "divaThreadBudget.h"

#include <torch/torch.h>

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace diva
{
namespace
{
std::atomic<int> g_Budget{ 0 };
std::once_flag   g_InteropOnce;

// OpenBLAS is reached through libblas.so.3 (Debian's alternatives), so its thread setter is looked up at run time:
// with the reference BLAS or MKL the symbol is simply absent.
void
SetBlasThreads(int threads)
{
  using SetterType = void (*)(int);
  if (auto setter = reinterpret_cast<SetterType>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
  {
    setter(threads);
  }
}
} // namespace

int
BlasThreads(int budget)
{
  if (const char * text = std::getenv("DIVATTENTION_BLAS_THREADS"))
  {
    char *     end = nullptr;
    const long value = std::strtol(text, &end, 10);
    if (end != text && *end == '\0' && value > 0 && value <= 4096)
    {
      return static_cast<int>(std::min<long>(value, budget));
    }
  }
  return 1;
}

int
DefaultThreadBudget()
{
  if (const char * text = std::getenv("DIVATTENTION_NUM_THREADS"))
  {
    char *     end = nullptr;
    const long value = std::strtol(text, &end, 10);
    if (end != text && *end == '\0' && value > 0 && value <= 4096)
    {
      return static_cast<int>(value);
    }
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
  {
    const int count = CPU_COUNT(&set);
    if (count > 0)
    {
      return count;
    }
  }
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware > 0 ? static_cast<int>(hardware) : 1;
}

void
SetTorchThreadBudget(int threads)
{
  if (threads < 1)
  {
    throw std::invalid_argument("thread budget must be at least 1, got " + std::to_string(threads));
  }
  torch::set_num_threads(threads);
  // The inter-op pool can be sized only once per process, before it is first used; one thread is enough for the
  // sequential graphs we run, and keeps it from competing with the intra-op pool.
  std::call_once(g_InteropOnce,
                 []
                 {
                   try
                   {
                     torch::set_num_interop_threads(1);
                   }
                   catch (const std::exception &)
                   {
                     // Already started by someone else: its size is then not ours to choose.
                   }
                 });
  SetBlasThreads(BlasThreads(threads));
  g_Budget = threads;
}

int
GetTorchThreadBudget()
{
  const int budget = g_Budget.load();
  return budget > 0 ? budget : DefaultThreadBudget();
}

} // namespace diva
