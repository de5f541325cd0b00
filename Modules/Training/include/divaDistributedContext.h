#ifndef divaDistributedContext_h
#define divaDistributedContext_h

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace diva
{
/** \brief Where a rank finds the others: world size, its rank, the rendezvous address (rank 0 hosts a TCP store there)
 * and how long to wait for peers. The usual environment variables (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT) give
 * the defaults; the command line overrides them. Not part of TrainingOptions: it describes how a run is launched, not
 * the run, so a checkpoint can be resumed with another world size. \ingroup DivAttention */
struct DistributedOptions
{
  int         worldSize = 1;
  int         rank = 0;
  std::string masterAddress = "127.0.0.1";
  int         masterPort = 29500;
  double      timeoutSeconds = 1800.0; ///< rendezvous and every collective (PyTorch's default, 30 min)

  /** More than one rank. */
  bool
  Enabled() const
  {
    return worldSize > 1;
  }

  /** Throws std::invalid_argument naming the first bad value (rank outside [0, world size), port, timeout). */
  void
  Validate() const;

  /** The defaults above with WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT applied where set; a malformed value
   * throws std::invalid_argument naming the variable. */
  static DistributedOptions
  FromEnvironment();
};

/** \brief One rank's membership of a data-parallel training group on LibTorch's c10d: a store for the rendezvous and
 * a process group for the collectives (Gloo for CPU tensors; NCCL for CUDA tensors where LibTorch has it, see
 * Documentation/Training.md). The trainer uses it to start every rank from rank 0's weights, to average gradients
 * (one all-reduce of one flat buffer per step), and to sum validation metrics and agree on decisions.
 *
 * Every call is a collective: all ranks must make the same calls in the same order, with tensors of the same sizes.
 * Built only where CMake found c10d's and Gloo's headers (IsAvailable()); elsewhere the constructors throw.
 * \ingroup DivAttention */
class DistributedContext
{
public:
  /** LibTorch's c10d with Gloo was found when this library was built. */
  static bool
  IsAvailable();
  /** ProcessGroupNCCL was found too (CUDA tensors then use NCCL). */
  static bool
  IsNcclAvailable();

  /** A rendezvous store shared by the ranks of one process (threads): tests, and trying things out. */
  class LocalStore;
  static std::shared_ptr<LocalStore>
  MakeLocalStore();

  /** Joins the group through a TCP store at options.masterAddress:masterPort, which rank 0 hosts. Blocks until every
   * rank has joined; std::runtime_error after options.timeoutSeconds. */
  DistributedContext(const DistributedOptions & options, torch::Device device);
  /** Joins a group of threads of this process that share `store`. */
  DistributedContext(const std::shared_ptr<LocalStore> & store,
                     int                                 rank,
                     int                                 worldSize,
                     torch::Device                       device,
                     double                              timeoutSeconds = 300.0);
  ~DistributedContext();
  DistributedContext(const DistributedContext &) = delete;
  DistributedContext &
  operator=(const DistributedContext &) = delete;

  int
  Rank() const;
  int
  WorldSize() const;
  /** Rank 0: the one that writes files and prints. */
  bool
  IsMain() const
  {
    return Rank() == 0;
  }
  /** "gloo" or "nccl". */
  std::string
  BackendName() const;

  /** Overwrites `tensors` (any dtypes, one device) with rank 0's values, in place; one broadcast per dtype. */
  void
  Broadcast(const std::vector<torch::Tensor> & tensors);

  /** Replaces the gradient of each parameter that has one by its mean over the ranks, and returns `extras` summed
   * over the ranks. Gradients and extras travel in one flat buffer (one all-reduce per step); the extras in the
   * gradients' precision. Ranks must have gradients for the same parameters (the same network and graph). */
  std::vector<double>
  AverageGradients(const std::vector<torch::Tensor> & parameters, const std::vector<double> & extras = {});

  /** `values` summed over the ranks, in double precision. */
  std::vector<double>
  Sum(const std::vector<double> & values);

  /** Waits until every rank has arrived. */
  void
  Barrier();

private:
  class Group;
  std::unique_ptr<Group> m_Group;
};
} // namespace diva

#endif
