// The device the device-dependent tests run on: CPU by default; the CUDA twins of those tests (registered by
// divattention_add_cuda_twins in Testing/CMakeLists.txt, suffix ".cuda", label CUDA) set
// DIVATTENTION_TEST_DEVICE=cuda. A twin never falls back to the CPU: asking for a device that is not there throws, so
// the twin fails instead of passing as a copy of its CPU test.
#ifndef DivAttentionTestDevice_h
#define DivAttentionTestDevice_h

#include "divaDevice.h"

#include <torch/torch.h>

#include <cstdlib>
#include <string>

namespace diva::testing
{
/** The text of DIVATTENTION_TEST_DEVICE ("cpu" when unset or empty), as the filters' SetDevice() takes it. */
inline std::string
TestDeviceName()
{
  const char * text = std::getenv("DIVATTENTION_TEST_DEVICE");
  return text == nullptr || *text == '\0' ? std::string("cpu") : std::string(text);
}

/** The torch::Device of TestDeviceName(); throws (std::runtime_error from diva::ResolveDevice) when that is CUDA and
 * no CUDA device exists. */
inline torch::Device
TestDevice()
{
  return diva::ResolveDevice(TestDeviceName());
}
} // namespace diva::testing

#endif
