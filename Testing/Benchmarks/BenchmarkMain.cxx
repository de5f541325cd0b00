// Entry point of the benchmark binary: the same run-time set-up as every DivAttention application (host allocator,
// thread budget), then Google Benchmark. Each benchmark sets its own thread count from its argument.
#include "divaHostAllocator.h"
#include "itkDivAttentionRuntime.h"

#include <benchmark/benchmark.h>

#include <iostream>

int
main(int argc, char ** argv)
{
  itk::DivAttentionRuntime::Initialize();
  std::cerr << "DivAttention host allocator: "
            << (diva::HostAllocatorIsInstalled() ? "caching, huge pages" : "LibTorch default (system)") << '\n';
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
  {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
