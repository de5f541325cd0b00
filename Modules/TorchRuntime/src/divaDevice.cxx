#include "divaDevice.h"

#include <torch/cuda.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace diva
{
namespace
{
std::string
ToLower(std::string text)
{
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}
} // namespace

DeviceChoice
ParseDeviceChoice(const std::string & text, int * cudaIndex)
{
  const std::string lower = ToLower(text);
  if (cudaIndex != nullptr)
  {
    *cudaIndex = 0;
  }
  if (lower == "auto")
  {
    return DeviceChoice::Auto;
  }
  if (lower == "cpu")
  {
    return DeviceChoice::CPU;
  }
  if (lower == "cuda")
  {
    return DeviceChoice::CUDA;
  }
  if (lower.rfind("cuda:", 0) == 0)
  {
    const std::string digits = lower.substr(5);
    const bool        allDigits = !digits.empty() && digits.size() < 4 &&
                           std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); });
    if (allDigits)
    {
      if (cudaIndex != nullptr)
      {
        *cudaIndex = std::stoi(digits);
      }
      return DeviceChoice::CUDA;
    }
  }
  throw std::invalid_argument("device \"" + text + "\" is not one of auto, cpu, cuda, cuda:N");
}

bool
CudaIsAvailable()
{
  return torch::cuda::is_available();
}

torch::Device
ResolveDevice(DeviceChoice choice, int cudaIndex)
{
  switch (choice)
  {
    case DeviceChoice::CPU:
      return torch::Device(torch::kCPU);
    case DeviceChoice::Auto:
      return CudaIsAvailable() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
    case DeviceChoice::CUDA:
    {
      if (!CudaIsAvailable())
      {
        throw std::runtime_error("device cuda was requested, but LibTorch sees no CUDA device on this machine "
                                 "(use --device auto or cpu)");
      }
      const auto count = static_cast<int>(torch::cuda::device_count());
      if (cudaIndex < 0 || cudaIndex >= count)
      {
        throw std::runtime_error("device cuda:" + std::to_string(cudaIndex) + " was requested, but only " +
                                 std::to_string(count) + " CUDA device(s) exist");
      }
      return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(cudaIndex));
    }
  }
  throw std::logic_error("unknown DeviceChoice");
}

torch::Device
ResolveDevice(const std::string & text)
{
  int                index = 0;
  const DeviceChoice choice = ParseDeviceChoice(text, &index);
  return ResolveDevice(choice, index);
}

std::string
DescribeDevice(const torch::Device & device)
{
  return device.str();
}

} // namespace diva
