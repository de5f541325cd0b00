// Distributed training on LibTorch's c10d (Gloo): the context's collectives, two ranks against one process on the
// combined batch, and DivAttentionTrain's distributed command line. Built and registered only where CMake found c10d's
// Gloo headers (CMake/DivAttentionDistributed.cmake). Ranks run as threads of this process sharing a HashStore (no
// port to collide with anything else), except the command-line tests, which start real processes on a free port.
#include "DivAttentionTinyTraining.h"
#include "divaDistributedContext.h"
#include "divaTrainer.h"
#include "itkDivAttentionRuntime.h"
#include "itkTrainingSampleSource.h"

#ifdef DIVATTENTION_TRAIN_EXE
#  include "divaCliTestSupport.h"
#endif

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <arpa/inet.h>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace
{
namespace fs = std::filesystem;

const diva::testing::ScratchFolder distributedScratch("distributed");

// Runs body(rank) for ranks 0 .. worldSize-1 on threads; rethrows the first failure.
void
OnRanks(int worldSize, const std::function<void(int)> & body)
{
  std::vector<std::exception_ptr> errors(static_cast<size_t>(worldSize));
  std::vector<std::thread>        threads;
  for (int rank = 0; rank < worldSize; ++rank)
  {
    threads.emplace_back(
      [&, rank]()
      {
        try
        {
          body(rank);
        }
        catch (...)
        {
          errors[static_cast<size_t>(rank)] = std::current_exception();
        }
      });
  }
  for (auto & thread : threads)
  {
    thread.join();
  }
  for (const auto & error : errors)
  {
    if (error)
    {
      std::rethrow_exception(error);
    }
  }
}

// Stage 2 with UNETR `small` at 16^3: instance and layer norm only, so a sample's forward pass does not depend on the
// other samples of its batch, and no dropout: the combined batch of two ranks is then the same computation as one
// process's batch (batch norm, as in ESPNet, would normalise each rank's half on its own; Training.md).
diva::TrainingOptions
TinyOptions(const std::string & output)
{
  auto options = diva::testing::TinyTrainingOptions(2, output);
  options.model = "unetr";
  options.targetSpacing = diva::TrainingOptions().targetSpacing; // the default: stage 2 only records it
  options.stepsPerEpoch = 3;
  options.epochs = 1;
  options.prefetchBatches = 0; // the rank threads are enough threads on 2 cores
  options.seed = 5;
  return options;
}

// Data, network (initialised from torch::manual_seed(initSeed)) and trainer of one rank or one process; network and
// samples in `type`.
std::unique_ptr<diva::testing::TinyTrainingRun>
MakeRun(const diva::TrainingOptions & options, uint64_t initSeed, torch::Dtype type = torch::kFloat32)
{
  auto run = std::make_unique<diva::testing::TinyTrainingRun>();
  auto preparation = options;
  preparation.outputDirectory.clear(); // the split is not written: only the trainer's files are checked
  run->data = itk::PrepareTrainingData(preparation);
  torch::manual_seed(initSeed);
  run->network = diva::CreateTrainingNetwork(options, 1);
  run->network->to(type);
  diva::testing::AttachTrainer(*run, options, diva::testing::TinySampleProvider(run->data, type), { "CT (HU)" });
  return run;
}

double
MaxDifference(diva::SegmentationNetworkImpl & a, diva::SegmentationNetworkImpl & b)
{
  double     largest = 0.0;
  const auto other = b.named_parameters();
  for (const auto & item : a.named_parameters())
  {
    largest = std::max(largest, (item.value() - other[item.key()]).abs().max().item<double>());
  }
  return largest;
}

class DistributedTraining : public ::testing::Test
{
protected:
  void
  SetUp() override
  {
    itk::DivAttentionRuntime::Initialize();
    itk::DivAttentionRuntime::SetThreadBudget(1); // one thread per rank: fixed summation order within a rank
    at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
  }
};
} // namespace

TEST(DistributedOptions, EnvironmentGivesDefaultsAndBadValuesAreNamed)
{
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "3", 1);
  ::setenv("MASTER_ADDR", "node7", 1);
  ::setenv("MASTER_PORT", "29555", 1);
  const auto options = diva::DistributedOptions::FromEnvironment();
  EXPECT_EQ(options.worldSize, 4);
  EXPECT_EQ(options.rank, 3);
  EXPECT_EQ(options.masterAddress, "node7");
  EXPECT_EQ(options.masterPort, 29555);
  EXPECT_NO_THROW(options.Validate());
  ::setenv("RANK", "three", 1);
  try
  {
    diva::DistributedOptions::FromEnvironment();
    ADD_FAILURE() << "RANK=three accepted";
  }
  catch (const std::invalid_argument & error)
  {
    EXPECT_NE(std::string(error.what()).find("RANK"), std::string::npos) << error.what();
  }
  for (const char * name : { "WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT" })
  {
    ::unsetenv(name);
  }
  const auto defaults = diva::DistributedOptions::FromEnvironment();
  EXPECT_EQ(defaults.worldSize, 1);
  EXPECT_FALSE(defaults.Enabled());

  auto bad = defaults;
  bad.worldSize = 2;
  bad.rank = 2;
  EXPECT_THROW(bad.Validate(), std::invalid_argument);
  bad.rank = -1;
  EXPECT_THROW(bad.Validate(), std::invalid_argument);
  bad.rank = 1;
  bad.masterPort = 70000;
  EXPECT_THROW(bad.Validate(), std::invalid_argument);
  bad.masterPort = 29500;
  bad.timeoutSeconds = 0.0;
  EXPECT_THROW(bad.Validate(), std::invalid_argument);
}

TEST(DistributedContext, CollectivesOnThreeRanks)
{
  ASSERT_TRUE(diva::DistributedContext::IsAvailable());
  const auto                       store = diva::DistributedContext::MakeLocalStore();
  std::vector<std::vector<double>> sums(3);
  std::vector<torch::Tensor>       gradients(3);
  std::vector<std::vector<double>> extras(3);
  std::vector<torch::Tensor>       broadcastFloat(3);
  std::vector<torch::Tensor>       broadcastInteger(3);
  OnRanks(3,
          [&](int rank)
          {
            diva::DistributedContext group(store, rank, 3, torch::kCPU, 60.0);
            ASSERT_EQ(group.Rank(), rank);
            ASSERT_EQ(group.WorldSize(), 3);
            EXPECT_EQ(group.BackendName(), "gloo");
            const auto r = static_cast<double>(rank);
            // Broadcast: rank 0's values of two dtypes reach every rank.
            auto floats = torch::full({ 2, 3 }, r + 0.5);
            auto integers = torch::full({ 4 }, 10 + rank, torch::kInt64);
            group.Broadcast({ floats, integers });
            broadcastFloat[static_cast<size_t>(rank)] = floats;
            broadcastInteger[static_cast<size_t>(rank)] = integers;
            // Gradients: the mean over ranks; a parameter without a gradient stays without one.
            auto weight = torch::zeros({ 5 }, torch::requires_grad());
            auto unused = torch::zeros({ 2 }, torch::requires_grad());
            (weight * (r + 1.0)).sum().backward(); // gradient r + 1 everywhere
            extras[static_cast<size_t>(rank)] = group.AverageGradients({ weight, unused }, { r, 1.0 });
            EXPECT_FALSE(unused.grad().defined());
            gradients[static_cast<size_t>(rank)] = weight.grad();
            sums[static_cast<size_t>(rank)] = group.Sum({ r * r, 0.25 });
            group.Barrier();
          });
  for (size_t rank = 0; rank < 3; ++rank)
  {
    // Small integers and halves: every value here is exact in float32, so equality is exact.
    EXPECT_TRUE(torch::equal(broadcastFloat[rank], torch::full({ 2, 3 }, 0.5))) << rank;
    EXPECT_TRUE(torch::equal(broadcastInteger[rank], torch::full({ 4 }, 10, torch::kInt64))) << rank;
    EXPECT_TRUE(torch::equal(gradients[rank], torch::full({ 5 }, 2.0))) << rank; // (1 + 2 + 3) / 3
    EXPECT_EQ(extras[rank], (std::vector<double>{ 3.0, 3.0 })) << rank;          // 0 + 1 + 2, 1 + 1 + 1
    EXPECT_EQ(sums[rank], (std::vector<double>{ 5.0, 0.75 })) << rank;
  }
}

// The test: N = 3 Adam steps of two ranks, each on its half of the batch, against one process on the whole
// batch. Rank 1 starts from other weights (another seed): the start broadcast must replace them.
//
// Why float64. The loss is a mean over the batch (cross-entropy over every voxel of every sample, soft Dice per
// sample), and UNETR normalises per sample, so with equal halves the mean of the two ranks' gradients is the combined
// batch's gradient exactly; only the summation order differs (a weight gradient sums over the whole batch in one pass
// in one process, over each half and then across ranks here). Adam turns that rounding into real steps where a
// gradient is nothing but rounding: a conv bias in front of an instance norm has a gradient of exactly 0 in exact
// arithmetic, and so do many weights of UNETR's one-token ViT at 16^3; in float32 such elements (|g| ~ 1e-7..1e-9)
// take steps of up to lr in either direction, and after the first step the two runs are different networks (measured:
// 2e-3 = 2 lr after one step, 6e-3 after three). That is Adam on float32 noise, not the distribution, so the
// equivalence is checked where rounding is 1e-16: network and samples in float64 (the same code: every collective
// takes the tensors' type).
//
// Tolerance 1e-9 on every parameter. In float64 a gradient element carries a relative rounding error of ~1e-15, which
// Adam passes on as ~1e-15 lr; a noise-only element (|g| ~ 1e-16) moves by at most lr |g| / eps = 1e-3 * 1e-16 / 1e-8
// = 1e-11 per step. Measured: 7e-12 (a conv bias in front of an instance norm), 1.5e-13 for the largest ordinary
// weight. A run on other batches differs by more than 1e-4 (checked below), and the two ranks agree bit for bit (same
// all-reduced sum, same Adam step).
TEST_F(DistributedTraining, TwoRanksMatchOneRankOnTheCombinedBatch)
{
  const double               tolerance = 1e-9;
  auto                       single = TinyOptions(distributedScratch.Folder("single").string());
  auto                       whole = MakeRun(single, single.seed, torch::kFloat64);
  const auto                 initial = whole->network->named_parameters().values();
  std::vector<torch::Tensor> start;
  for (const auto & p : initial)
  {
    start.push_back(p.detach().clone());
  }
  const auto expected = whole->trainer->Fit();

  // Rank 0 writes into its output directory; rank 1 is given another, which must stay empty.
  const auto                                                   rank0Output = distributedScratch.Folder("rank0");
  const auto                                                   rank1Output = distributedScratch.Folder("rank1");
  std::vector<std::unique_ptr<diva::testing::TinyTrainingRun>> ranks;
  for (int rank = 0; rank < 2; ++rank)
  {
    auto options = single;
    options.outputDirectory = (rank == 0 ? rank0Output : rank1Output).string();
    ranks.push_back(MakeRun(options, single.seed + static_cast<uint64_t>(rank) * 1000, torch::kFloat64));
  }
  ASSERT_GT(MaxDifference(*ranks[0]->network, *ranks[1]->network), 1e-3); // the ranks start apart
  std::vector<diva::TrainingSummary> summaries(2);
  const auto                         store = diva::DistributedContext::MakeLocalStore();
  OnRanks(2,
          [&](int rank)
          {
            auto group = std::make_shared<diva::DistributedContext>(store, rank, 2, torch::kCPU, 120.0);
            ranks[static_cast<size_t>(rank)]->trainer->UseDistributed(group);
            summaries[static_cast<size_t>(rank)] = ranks[static_cast<size_t>(rank)]->trainer->Fit();
          });

  // The two ranks hold the same weights, bit for bit.
  const auto a = ranks[0]->network->named_parameters();
  const auto b = ranks[1]->network->named_parameters();
  for (const auto & item : a)
  {
    EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
  }
  // ... and those of one process on the combined batch, within the tolerance above; while the weights did move by far
  // more than the tolerance, so the comparison means something.
  const double difference = MaxDifference(*ranks[0]->network, *whole->network);
  std::cout << "largest weight difference, 2 ranks vs 1 process after 3 Adam steps: " << difference << std::endl;
  EXPECT_LE(difference, tolerance);
  double     moved = 0.0;
  const auto finalWeights = whole->network->named_parameters().values();
  for (size_t i = 0; i < start.size(); ++i)
  {
    moved = std::max(moved, (finalWeights[i] - start[i]).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-3); // Adam moves an element up to ~lr per step: 3e-3 in 3 steps
  // The logged training loss is the mean over both ranks; the validation metrics are sums over the shared-out
  // instances (here rank 1 has none: 1 validation instance). Float64 throughout: rounding of 1e-15 relative, with
  // room for the 1e-9 weight differences (the Dice counts thresholded voxels: no voxel lies within 1e-9 of 0.5).
  ASSERT_EQ(summaries[0].history.size(), 1u);
  ASSERT_EQ(expected.history.size(), 1u);
  EXPECT_NEAR(summaries[0].history[0].trainingLoss, expected.history[0].trainingLoss,
              1e-9 * expected.history[0].trainingLoss);
  EXPECT_NEAR(summaries[0].history[0].dice, expected.history[0].dice, 1e-9);
  EXPECT_EQ(summaries[1].history[0].dice, summaries[0].history[0].dice);

  // Only rank 0 wrote.
  for (const char * name : { "latest.pt", "best.pt", "final.pt", "model-best.pt", "training_log.csv" })
  {
    EXPECT_TRUE(fs::exists(rank0Output / name)) << name;
  }
  EXPECT_TRUE(fs::is_empty(rank1Output));

  // The comparison can fail: one process on other batches (batch 1: the order's samples 0, 1, 2 instead of the pairs
  // 0-1, 2-3, 0-1) ends far outside the tolerance.
  auto half = single;
  half.outputDirectory.clear();
  half.batchSize = 1;
  auto alone = MakeRun(half, single.seed, torch::kFloat64);
  alone->trainer->Fit();
  EXPECT_GT(MaxDifference(*alone->network, *whole->network), 1e-4);
}

TEST_F(DistributedTraining, BatchSizeMustBeAMultipleOfTheWorldSize)
{
  auto options = TinyOptions("");
  options.batchSize = 3;
  auto                                      run = MakeRun(options, 1);
  const auto                                store = diva::DistributedContext::MakeLocalStore();
  std::shared_ptr<diva::DistributedContext> rank0;
  std::shared_ptr<diva::DistributedContext> rank1;
  OnRanks(2,
          [&](int rank) {
            (rank == 0 ? rank0 : rank1) = std::make_shared<diva::DistributedContext>(store, rank, 2, torch::kCPU, 60.0);
          });
  EXPECT_THROW(run->trainer->UseDistributed(rank0), std::invalid_argument);
}

// A rank resumed from another checkpoint than rank 0 (here: rank 0 fresh, rank 1 at epoch 1) would train on other
// epochs' samples and learning rates: every rank refuses to start, naming the checkpoint, instead of going on.
TEST_F(DistributedTraining, RanksAtDifferentEpochsRefuseToStart)
{
  auto options = TinyOptions(distributedScratch.Folder("resume-source").string());
  options.stepsPerEpoch = 1;
  MakeRun(options, 1)->trainer->Fit();
  const std::string checkpoint = options.outputDirectory + "/latest.pt";
  options.epochs = 2;
  options.outputDirectory.clear();
  std::vector<std::unique_ptr<diva::testing::TinyTrainingRun>> ranks;
  ranks.push_back(MakeRun(options, 1));
  ranks.push_back(MakeRun(options, 1));
  ranks[1]->trainer->Resume(checkpoint);
  std::vector<std::string> errors(2);
  const auto               store = diva::DistributedContext::MakeLocalStore();
  OnRanks(2,
          [&](int rank)
          {
            auto group = std::make_shared<diva::DistributedContext>(store, rank, 2, torch::kCPU, 60.0);
            ranks[static_cast<size_t>(rank)]->trainer->UseDistributed(group);
            try
            {
              ranks[static_cast<size_t>(rank)]->trainer->Fit();
            }
            catch (const std::runtime_error & error)
            {
              errors[static_cast<size_t>(rank)] = error.what();
            }
          });
  for (const auto & error : errors)
  {
    EXPECT_NE(error.find("same latest.pt"), std::string::npos) << "\"" << error << "\"";
  }
}

#ifdef DIVATTENTION_TRAIN_EXE
namespace
{
// A port nobody listens on now (the kernel's choice); a small race with other programs is accepted.
int
FreePort()
{
  const int   socketFd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (socketFd < 0 || ::bind(socketFd, reinterpret_cast<sockaddr *>(&address), sizeof(address)) != 0 ||
      ::getsockname(socketFd, reinterpret_cast<sockaddr *>(&address), &length) != 0)
  {
    throw std::runtime_error("no free port");
  }
  const int port = ntohs(address.sin_port);
  ::close(socketFd);
  return port;
}

std::string
CliArguments(const fs::path & output, int batchSize = 2, int epochs = 1)
{
  return "--dataset " + diva::testing::TinyPhantomDataset() +
         " --labels 2 --stage 2 --model unetr --preset small --patch 16,16,16 " + "--epochs " + std::to_string(epochs) +
         " --batch-size " + std::to_string(batchSize) +
         " --steps-per-epoch 2 --lr 1e-3 --no-progress --threads 1 --output-dir " + output.string();
}
} // namespace

TEST(DivAttentionTrainDistributed, RankNotBelowWorldSizeIsAnError)
{
  const auto root = distributedScratch.Folder("cli-rank");
  diva::clitest::ExpectFailure(DIVATTENTION_TRAIN_EXE, "DivAttentionTrain",
                               CliArguments(root / "out") + " --world-size 2 --rank 2",
                               { "rank 2", "world size 2", "--rank" }, { root / "out" });
}

TEST(DivAttentionTrainDistributed, BatchNotDivisibleIsAnError)
{
  const auto root = distributedScratch.Folder("cli-batch");
  diva::clitest::ExpectFailure(DIVATTENTION_TRAIN_EXE, "DivAttentionTrain",
                               CliArguments(root / "out", 3) + " --world-size 2 --rank 0",
                               { "--batch-size 3", "--world-size 2" }, { root / "out" });
}

TEST(DivAttentionTrainDistributed, MissingRankTimesOutWithoutOutput)
{
  const auto root = distributedScratch.Folder("cli-alone");
  const auto start = std::chrono::steady_clock::now();
  diva::clitest::ExpectFailure(DIVATTENTION_TRAIN_EXE, "DivAttentionTrain",
                               CliArguments(root / "out") + " --world-size 2 --rank 0 --dist-timeout 2 --master-port " +
                                 std::to_string(FreePort()),
                               { "rendezvous of rank 0 of 2", "timeout 2 s" }, { root / "out" });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 60.0);
}

// Two DivAttentionTrain processes: rank 1 configured by the environment variables, rank 0 by the options. Both finish;
// only rank 0's output directory exists, with the model.
TEST(DivAttentionTrainDistributed, TwoProcessesTrainAndOnlyRankZeroWrites)
{
  const auto        root = distributedScratch.Folder("cli-two");
  const std::string port = std::to_string(FreePort());
  const std::string exe = DIVATTENTION_TRAIN_EXE;
  const std::string script =
    "WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port + " " + exe + " " + CliArguments(root / "out1") +
    " --dist-timeout 120 > " + (root / "rank1.log").string() + " 2>&1 & " + exe + " " + CliArguments(root / "out0") +
    " --world-size 2 --rank 0 --master-port " + port + " --dist-timeout 120; r0=$?; wait $!; " + "r1=$?; cat " +
    (root / "rank1.log").string() + "; echo \"exit codes $r0 $r1\"";
  const auto result = diva::clitest::Run("/bin/sh -c", "'" + script + "'");
  EXPECT_NE(result.output.find("exit codes 0 0"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("rank 1 of 2 joined (gloo"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("best validation Dice"), std::string::npos) << result.output;
  EXPECT_TRUE(fs::exists(root / "out0" / "model-best.pt"));
  EXPECT_TRUE(fs::exists(root / "out0" / "split.json"));
  EXPECT_FALSE(fs::exists(root / "out1"));
}
#endif

#ifdef DIVATTENTION_TRAIN_EXE
// SIGTERM to rank 1 only: the stop flag rides on the next gradient all-reduce, so rank 0 stops after the same step
// (exit code 130 from both) and its latest.pt is the last complete epoch, instead of rank 0 waiting in a collective
// for a rank that has gone.
TEST(DivAttentionTrainDistributed, StopOnOneRankStopsBoth)
{
  const auto        root = distributedScratch.Folder("cli-stop");
  const std::string port = std::to_string(FreePort());
  const std::string exe = DIVATTENTION_TRAIN_EXE;
  const std::string log0 = (root / "rank0.log").string();
  const std::string log1 = (root / "rank1.log").string();
  const std::string common = " --patience 0 --dist-timeout 120 --world-size 2 --master-port " + port;
  const std::string script =
    exe + " " + CliArguments(root / "out1", 2, 200) + common + " --rank 1 > " + log1 + " 2>&1 & p1=$!; " + exe + " " +
    CliArguments(root / "out0", 2, 200) + common + " --rank 0 > " + log0 +
    " 2>&1 & p0=$!; for i in $(seq 1 1200); do grep -q \"^epoch 1/200\" " + log0 +
    " && break; kill -0 $p0 || break; sleep 0.1; done; kill -TERM $p1; wait $p0; r0=$?; wait $p1; r1=$?; cat " + log0 +
    " " + log1 + "; echo \"exit codes $r0 $r1\"";
  const auto result = diva::clitest::Run("/bin/sh -c", "'" + script + "'");
  EXPECT_NE(result.output.find("exit codes 130 130"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("stop requested"), std::string::npos) << result.output;
  EXPECT_TRUE(fs::exists(root / "out0" / "latest.pt"));
  EXPECT_FALSE(fs::exists(root / "out0" / "final.pt")); // stopped, not finished
  EXPECT_FALSE(fs::exists(root / "out1"));
}
#endif
