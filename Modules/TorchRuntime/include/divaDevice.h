#ifndef divaDevice_h
#define divaDevice_h

#include <torch/types.h>

#include <string>

namespace diva
{
/** \brief Where the networks run: chosen at run time, never at build time.
 *
 * `Auto` takes CUDA when torch::cuda::is_available() and the CPU otherwise; `CUDA` is an error where no CUDA device
 * exists (the caller asked for something this machine cannot do, so it must hear about it).
 * \ingroup DivAttention
 */
enum class DeviceChoice
{
  Auto,
  CPU,
  CUDA
};

/** Parses "auto", "cpu", "cuda" or "cuda:N" (case-insensitive). Throws std::invalid_argument naming the text. */
DeviceChoice
ParseDeviceChoice(const std::string & text, int * cudaIndex = nullptr);

/** The torch::Device a choice means on this machine. Throws std::runtime_error for CUDA where none is available. */
torch::Device
ResolveDevice(DeviceChoice choice, int cudaIndex = 0);

/** ParseDeviceChoice then ResolveDevice. */
torch::Device
ResolveDevice(const std::string & text);

/** Whether LibTorch sees at least one CUDA device. */
bool
CudaIsAvailable();

/** "cpu" or "cuda:N (device name)" for logs and provenance. */
std::string
DescribeDevice(const torch::Device & device);

} // namespace diva

#endif
