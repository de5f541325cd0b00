#include "divaDistributedContext.h"

#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <type_traits>

// DIVA_WITH_C10D_GLOO (and DIVA_WITH_C10D_NCCL) come from CMake/DivAttentionDistributed.cmake, which compiled
// LibTorch's c10d headers on this machine. USE_C10D_* are the switches those headers test themselves.
#if DIVA_WITH_C10D_GLOO
#  ifndef USE_C10D_GLOO
#    define USE_C10D_GLOO
#  endif
#  include <torch/csrc/distributed/c10d/Backend.hpp>
#  include <torch/csrc/distributed/c10d/HashStore.hpp>
#  include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#  include <torch/csrc/distributed/c10d/TCPStore.hpp>
#  if DIVA_WITH_C10D_NCCL
#    ifndef USE_C10D_NCCL
#      define USE_C10D_NCCL
#    endif
#    include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#  endif
#endif

namespace diva
{
namespace
{
int
EnvironmentInteger(const char * name, int fallback)
{
  const char * text = std::getenv(name);
  if (text == nullptr || *text == '\0')
  {
    return fallback;
  }
  char *     end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max())
  {
    throw std::invalid_argument(std::string("environment variable ") + name + "=\"" + text + "\" is not an integer");
  }
  return static_cast<int>(value);
}
} // namespace

void
DistributedOptions::Validate() const
{
  if (worldSize < 1)
  {
    throw std::invalid_argument("world size (--world-size / WORLD_SIZE) must be at least 1, not " +
                                std::to_string(worldSize));
  }
  if (rank < 0 || rank >= worldSize)
  {
    throw std::invalid_argument("rank " + std::to_string(rank) + " (--rank / RANK) is not below the world size " +
                                std::to_string(worldSize) + " (--world-size / WORLD_SIZE): ranks are 0 to " +
                                std::to_string(worldSize - 1));
  }
  if (masterAddress.empty())
  {
    throw std::invalid_argument("master address (--master-addr / MASTER_ADDR) is empty");
  }
  if (masterPort < 1 || masterPort > 65535)
  {
    throw std::invalid_argument("master port (--master-port / MASTER_PORT) must be 1 to 65535, not " +
                                std::to_string(masterPort));
  }
  if (!(timeoutSeconds > 0.0) || !std::isfinite(timeoutSeconds))
  {
    throw std::invalid_argument("distributed timeout (--dist-timeout) must be a positive number of seconds");
  }
}

DistributedOptions
DistributedOptions::FromEnvironment()
{
  DistributedOptions options;
  options.worldSize = EnvironmentInteger("WORLD_SIZE", options.worldSize);
  options.rank = EnvironmentInteger("RANK", options.rank);
  options.masterPort = EnvironmentInteger("MASTER_PORT", options.masterPort);
  if (const char * address = std::getenv("MASTER_ADDR"); address != nullptr && *address != '\0')
  {
    options.masterAddress = address;
  }
  return options;
}

#if DIVA_WITH_C10D_GLOO

namespace
{
// LibTorch 1.13 derives its process groups from c10d::ProcessGroup, 2.x from c10d::Backend (which 1.13 also declares):
// the collectives are called through whichever base the Gloo group has.
using Collectives =
  std::conditional_t<std::is_base_of_v<c10d::Backend, c10d::ProcessGroupGloo>, c10d::Backend, c10d::ProcessGroup>;

// c10 errors carry a backtrace after the first line; a user needs the first line.
std::string
FirstLine(const std::string & text)
{
  return text.substr(0, text.find('\n'));
}

std::chrono::milliseconds
Milliseconds(double seconds)
{
  return std::chrono::milliseconds(static_cast<int64_t>(std::llround(seconds * 1000.0)));
}

bool
IsLoopback(const std::string & address)
{
  return address == "localhost" || address == "::1" || address.rfind("127.", 0) == 0;
}

// Gloo's own sockets: the interface named by GLOO_SOCKET_IFNAME (as PyTorch), loopback when the group lives on this
// machine, otherwise the address of this machine's host name.
std::shared_ptr<::gloo::transport::Device>
GlooDevice(const std::string & masterAddress)
{
  if (const char * interface = std::getenv("GLOO_SOCKET_IFNAME"); interface != nullptr && *interface != '\0')
  {
    return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
  }
  if (IsLoopback(masterAddress))
  {
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}
} // namespace

class DistributedContext::LocalStore
{
public:
  c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::HashStore>();
};

class DistributedContext::Group
{
public:
  Group(c10::intrusive_ptr<c10d::Store> rendezvous,
        int                             rankValue,
        int                             worldSizeValue,
        torch::Device                   deviceValue,
        double                          timeoutSeconds,
        const std::string &             masterAddress)
      : rank(rankValue), worldSize(worldSizeValue), device(deviceValue), store(std::move(rendezvous))
  {
#  if DIVA_WITH_C10D_NCCL
    if (device.is_cuda())
    {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = Milliseconds(timeoutSeconds);
      collectives = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, worldSize, options);
      backend = "nccl";
      return;
    }
#  endif
    auto options = c10d::ProcessGroupGloo::Options::create(Milliseconds(timeoutSeconds));
    options->devices.push_back(GlooDevice(masterAddress));
    collectives = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, worldSize, options);
    backend = "gloo";
  }

  // Runs one collective and waits for it; a failure (a rank gone, a timeout) becomes one readable line.
  template<typename TStart>
  void
  Run(const char * what, TStart start)
  {
    try
    {
      start()->wait();
    }
    catch (const std::exception & error)
    {
      throw std::runtime_error(std::string("distributed ") + what + " failed on rank " + std::to_string(rank) + " of " +
                               std::to_string(worldSize) + ": " + FirstLine(error.what()));
    }
  }

  int                             rank;
  int                             worldSize;
  torch::Device                   device;
  std::string                     backend;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Collectives> collectives;
};

bool
DistributedContext::IsAvailable()
{
  return true;
}

bool
DistributedContext::IsNcclAvailable()
{
#  if DIVA_WITH_C10D_NCCL
  return true;
#  else
  return false;
#  endif
}

std::shared_ptr<DistributedContext::LocalStore>
DistributedContext::MakeLocalStore()
{
  return std::make_shared<LocalStore>();
}

DistributedContext::DistributedContext(const DistributedOptions & options, torch::Device device)
{
  options.Validate();
  try
  {
    c10d::TCPStoreOptions storeOptions;
    storeOptions.port = static_cast<uint16_t>(options.masterPort);
    storeOptions.isServer = options.rank == 0;
    storeOptions.numWorkers = static_cast<std::size_t>(options.worldSize);
    storeOptions.waitWorkers = true;
    storeOptions.timeout = Milliseconds(options.timeoutSeconds);
    auto store = c10::make_intrusive<c10d::TCPStore>(options.masterAddress, storeOptions);
    m_Group = std::make_unique<Group>(store, options.rank, options.worldSize, device, options.timeoutSeconds,
                                      options.masterAddress);
  }
  catch (const std::exception & error)
  {
    std::ostringstream message;
    message << "distributed rendezvous of rank " << options.rank << " of " << options.worldSize << " at "
            << options.masterAddress << ':' << options.masterPort << " failed (timeout " << options.timeoutSeconds
            << " s): " << FirstLine(error.what()) << "; are all " << options.worldSize
            << " ranks started, with the same master address and port?";
    throw std::runtime_error(message.str());
  }
}

DistributedContext::DistributedContext(const std::shared_ptr<LocalStore> & store,
                                       int                                 rank,
                                       int                                 worldSize,
                                       torch::Device                       device,
                                       double                              timeoutSeconds)
{
  DistributedOptions options;
  options.rank = rank;
  options.worldSize = worldSize;
  options.timeoutSeconds = timeoutSeconds;
  options.Validate();
  if (!store)
  {
    throw std::invalid_argument("DistributedContext: no local store");
  }
  m_Group = std::make_unique<Group>(store->store, rank, worldSize, device, timeoutSeconds, "127.0.0.1");
}

DistributedContext::~DistributedContext() = default;

int
DistributedContext::Rank() const
{
  return m_Group->rank;
}

int
DistributedContext::WorldSize() const
{
  return m_Group->worldSize;
}

std::string
DistributedContext::BackendName() const
{
  return m_Group->backend;
}

void
DistributedContext::Broadcast(const std::vector<torch::Tensor> & tensors)
{
  torch::NoGradGuard noGrad;
  // One flat buffer per dtype (a network holds float weights and integer counters), in a fixed order on every rank.
  std::map<int, std::vector<torch::Tensor>> byType;
  for (const auto & tensor : tensors)
  {
    if (tensor.defined() && tensor.numel() > 0)
    {
      byType[static_cast<int>(tensor.scalar_type())].push_back(tensor);
    }
  }
  for (auto & [type, group] : byType)
  {
    std::vector<torch::Tensor> pieces;
    for (const auto & tensor : group)
    {
      pieces.push_back(tensor.reshape(-1).to(m_Group->device));
    }
    std::vector<at::Tensor> flat{ torch::cat(pieces) };
    c10d::BroadcastOptions  options;
    options.rootRank = 0;
    m_Group->Run("broadcast", [&]() { return m_Group->collectives->broadcast(flat, options); });
    int64_t offset = 0;
    for (auto & tensor : group)
    {
      tensor.copy_(flat[0].narrow(0, offset, tensor.numel()).view(tensor.sizes()));
      offset += tensor.numel();
    }
  }
}

std::vector<double>
DistributedContext::AverageGradients(const std::vector<torch::Tensor> & parameters, const std::vector<double> & extras)
{
  torch::NoGradGuard         noGrad;
  std::vector<torch::Tensor> gradients;
  for (const auto & parameter : parameters)
  {
    if (parameter.grad().defined())
    {
      gradients.push_back(parameter.grad());
    }
  }
  const auto                 type = gradients.empty() ? torch::kFloat64 : gradients.front().scalar_type();
  std::vector<torch::Tensor> pieces;
  int64_t                    count = 0;
  for (const auto & gradient : gradients)
  {
    if (gradient.scalar_type() != type)
    {
      throw std::invalid_argument("DistributedContext::AverageGradients: gradients of mixed types");
    }
    pieces.push_back(gradient.reshape(-1));
    count += gradient.numel();
  }
  pieces.push_back(torch::tensor(extras, torch::kFloat64).to(m_Group->device, type));
  std::vector<at::Tensor> flat{ torch::cat(pieces) };
  m_Group->Run("gradient all-reduce", [&]() { return m_Group->collectives->allreduce(flat); });
  // A sum over the ranks, divided once: for 2 ranks a + b is the same in either order and / 2 is exact, so every rank
  // ends with the same bits.
  flat[0].narrow(0, 0, count).div_(static_cast<double>(m_Group->worldSize));
  int64_t offset = 0;
  for (auto & gradient : gradients)
  {
    gradient.copy_(flat[0].narrow(0, offset, gradient.numel()).view(gradient.sizes()));
    offset += gradient.numel();
  }
  const auto summed = flat[0].narrow(0, count, static_cast<int64_t>(extras.size())).to(torch::kCPU, torch::kFloat64);
  std::vector<double> result(extras.size());
  for (size_t i = 0; i < extras.size(); ++i)
  {
    result[i] = summed[static_cast<int64_t>(i)].item<double>();
  }
  return result;
}

std::vector<double>
DistributedContext::Sum(const std::vector<double> & values)
{
  if (values.empty())
  {
    return {};
  }
  std::vector<at::Tensor> flat{ torch::tensor(values, torch::kFloat64).to(m_Group->device) };
  m_Group->Run("all-reduce", [&]() { return m_Group->collectives->allreduce(flat); });
  const auto          summed = flat[0].to(torch::kCPU);
  std::vector<double> result(values.size());
  for (size_t i = 0; i < values.size(); ++i)
  {
    result[i] = summed[static_cast<int64_t>(i)].item<double>();
  }
  return result;
}

void
DistributedContext::Barrier()
{
  m_Group->Run("barrier", [&]() { return m_Group->collectives->barrier(); });
}

#else // no c10d: the same interface, refusing to start

namespace
{
[[noreturn]] void
Unavailable()
{
  throw std::runtime_error("distributed training is not available in this build: LibTorch's c10d Gloo headers were "
                           "not found when it was configured (install libgloo-dev and configure again; "
                           "Documentation/Training.md)");
}
} // namespace

class DistributedContext::LocalStore
{
};

class DistributedContext::Group
{
public:
  int rank = 0;
  int worldSize = 1;
};

bool
DistributedContext::IsAvailable()
{
  return false;
}

bool
DistributedContext::IsNcclAvailable()
{
  return false;
}

std::shared_ptr<DistributedContext::LocalStore>
DistributedContext::MakeLocalStore()
{
  Unavailable();
}

DistributedContext::DistributedContext(const DistributedOptions & options, torch::Device)
{
  options.Validate();
  Unavailable();
}

DistributedContext::DistributedContext(const std::shared_ptr<LocalStore> &, int, int, torch::Device, double)
{
  Unavailable();
}

DistributedContext::~DistributedContext() = default;

int
DistributedContext::Rank() const
{
  return m_Group->rank;
}

int
DistributedContext::WorldSize() const
{
  return m_Group->worldSize;
}

std::string
DistributedContext::BackendName() const
{
  return "none";
}

void
DistributedContext::Broadcast(const std::vector<torch::Tensor> &)
{
  Unavailable();
}

std::vector<double>
DistributedContext::AverageGradients(const std::vector<torch::Tensor> &, const std::vector<double> &)
{
  Unavailable();
}

std::vector<double>
DistributedContext::Sum(const std::vector<double> &)
{
  Unavailable();
}

void
DistributedContext::Barrier()
{
  Unavailable();
}

#endif
} // namespace diva
