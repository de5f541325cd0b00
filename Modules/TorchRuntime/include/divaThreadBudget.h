#ifndef divaThreadBudget_h
#define divaThreadBudget_h

namespace diva
{
/** \brief The number of CPU threads LibTorch (and the BLAS under it) may use.
 *
 * LibTorch runs its intra-op work on an OpenMP pool, and Debian's OpenBLAS (the pthread flavour) keeps a pool of its
 * own; left alone, each sizes itself to the machine and they oversubscribe the cores when one calls the other. This
 * sets LibTorch's pool to the budget and OpenBLAS to BlasThreads(budget) threads. The ITK side
 * (itk::DivAttentionRuntime::SetThreadBudget) calls this and also sets ITK's global default number of threads, so one
 * call governs everything. \ingroup DivAttention
 */
void
SetTorchThreadBudget(int threads);

/** The threads OpenBLAS gets under a budget: 1 unless $DIVATTENTION_BLAS_THREADS says otherwise (capped at the
 * budget). Why one: LibTorch calls BLAS from inside its own operators while the other OpenMP threads of the pool are
 * still spinning for the next parallel region, so OpenBLAS's own threads find the cores busy; measured here
 * (Documentation/Performance.md, "CPU kernel selection"), UNETR's 12-head attention products ran 4x faster and the
 * whole forward 25 % faster with one BLAS thread. The large products that do want both cores (the transformer's
 * linear layers) run on oneDNN, which shares LibTorch's OpenMP pool (divaCpuKernelSelection.h). */
int
BlasThreads(int budget);

/** The budget last set (or the default if never set). */
int
GetTorchThreadBudget();

/** The default budget: $DIVATTENTION_NUM_THREADS if set and valid, else the CPUs this process may run on
 * (sched_getaffinity, so container CPU limits by cpuset are honoured). */
int
DefaultThreadBudget();

} // namespace diva

#endif
