// Faults (issue 8): DivAttentionTrain killed with SIGKILL at reproducibly random points -- at random times and, through
// the test-only hook DIVATTENTION_FAULT_AT (divaAtomicFile.h), in the middle of writing a checkpoint, the exported
// model, the log and final.pt -- and resumed each time must lose no committed epoch, never leave a file that does not
// load, and end with the same log and the same weights, bit for bit, as an uninterrupted run (deterministic mode, one
// thread, CPU). An output of DivAttentionSegment killed mid-write leaves the old file or none.
// DIVATTENTION_FAULT_SEED=<n> replays another kill schedule (the seed in use is printed).
#include "DivAttentionTestFiles.h"
#include "divaAtomicFile.h"
#include "divaCliTestSupport.h"
#include "divaTinyModelFiles.h"
#include "divaTrainer.h"
#include "itkCTPhantomGenerator.h"
#include "itkImageFileReader.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;

namespace
{
struct Child
{
  int         status = 0; // waitpid status
  std::string output;
  double      seconds = 0.0;

  bool
  Killed() const
  {
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }
  bool
  Succeeded() const
  {
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
};

std::vector<std::string>
Words(const std::string & text)
{
  std::istringstream       in(text);
  std::vector<std::string> words;
  for (std::string word; in >> word;)
  {
    words.push_back(word);
  }
  return words;
}

/** When to kill a child: once `trigger` (a text it prints; empty: from its start) has appeared in its output, after
 * `delay` seconds. Tying the kill to the child's own progress keeps the point it lands in the same on a busy or an
 * idle machine, where a plain delay would not. */
struct KillRule
{
  bool        enabled = false;
  std::string trigger;
  double      delay = 0.0;
};

/** Runs `executable` with `arguments` (split on blanks), stdout and stderr to `log`, with the fault hook set to
 * `fault` (empty: unset), killing it with SIGKILL as `rule` says; when `watch` is given, the time it first appears
 * in the output goes to `*watchSeconds`. */
Child
Spawn(const std::string & executable,
      const std::string & arguments,
      const fs::path &    log,
      const std::string & fault,
      const KillRule &    rule = KillRule(),
      const std::string & watch = "",
      double *            watchSeconds = nullptr)
{
  const auto  start = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0)
  {
    const int descriptor = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(descriptor, STDOUT_FILENO);
    ::dup2(descriptor, STDERR_FILENO);
    if (fault.empty())
    {
      ::unsetenv(diva::FaultInjectionVariable);
    }
    else
    {
      ::setenv(diva::FaultInjectionVariable, fault.c_str(), 1);
    }
    auto                words = Words(arguments);
    std::vector<char *> argv{ const_cast<char *>(executable.c_str()) };
    for (auto & word : words)
    {
      argv.push_back(word.data());
    }
    argv.push_back(nullptr);
    ::execv(executable.c_str(), argv.data());
    ::_exit(127);
  }
  Child      child;
  const auto since = [&start]()
  { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  bool   triggered = rule.trigger.empty();
  double triggeredAt = 0.0;
  bool   watched = watch.empty();
  for (;;)
  {
    if (::waitpid(pid, &child.status, WNOHANG) == pid)
    {
      break;
    }
    if (!triggered || !watched)
    {
      const std::string output = diva::testing::ReadFileBytes(log);
      if (!triggered && output.find(rule.trigger) != std::string::npos)
      {
        triggered = true;
        triggeredAt = since();
      }
      if (!watched && output.find(watch) != std::string::npos)
      {
        watched = true;
        *watchSeconds = since();
      }
    }
    if (rule.enabled && triggered && since() - triggeredAt >= rule.delay)
    {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &child.status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  child.seconds = since();
  child.output = diva::testing::ReadFileBytes(log);
  return child;
}

/** The epochs a run printed as completed ("epoch k/E: ..."), in order. */
std::vector<int64_t>
PrintedEpochs(const std::string & output)
{
  std::vector<int64_t> epochs;
  std::istringstream   in(output);
  for (std::string line; std::getline(in, line);)
  {
    if (line.rfind("epoch ", 0) == 0 && line.find(':') != std::string::npos && line.find('/') != std::string::npos)
    {
      epochs.push_back(std::stoll(line.substr(6, line.find('/') - 6)));
    }
  }
  return epochs;
}

struct Checkpoint
{
  nlohmann::json                                 state;
  std::shared_ptr<diva::SegmentationNetworkImpl> network;
};

/** Loads everything of a checkpoint (state, options, weights); any failure is a test failure. */
Checkpoint
LoadCheckpoint(const fs::path & path)
{
  Checkpoint                     checkpoint;
  const auto                     options = diva::Trainer::CheckpointOptions(path.string());
  torch::serialize::InputArchive archive;
  archive.load_from(path.string());
  c10::IValue text;
  archive.read("state", text);
  checkpoint.state = nlohmann::json::parse(text.toStringRef());
  torch::serialize::InputArchive model;
  archive.read("model", model);
  checkpoint.network = diva::CreateTrainingNetwork(options, options.stage == 1 ? 2 : 1);
  checkpoint.network->load(model);
  return checkpoint;
}

/** training_log.csv without the seconds column (wall time differs between runs), one string per epoch. */
std::vector<std::string>
LogRows(const fs::path & path)
{
  std::ifstream            in(path);
  std::vector<std::string> rows;
  std::string              line;
  std::getline(in, line);
  EXPECT_EQ(line, "epoch,training_loss,validation_loss,dice,recall,precision,learning_rate,seconds") << path;
  while (std::getline(in, line))
  {
    const auto last = line.rfind(',');
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), 7) << "truncated row in " << path << ": " << line;
    rows.push_back(line.substr(0, last));
  }
  return rows;
}

void
ExpectSameWeights(diva::SegmentationNetworkImpl & a, diva::SegmentationNetworkImpl & b, const std::string & what)
{
  const auto pa = a.named_parameters();
  const auto pb = b.named_parameters();
  ASSERT_EQ(pa.size(), pb.size()) << what;
  for (const auto & item : pa)
  {
    EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << what << ": " << item.key();
  }
  const auto ba = a.named_buffers();
  const auto bb = b.named_buffers();
  for (const auto & item : ba)
  {
    EXPECT_TRUE(torch::equal(item.value(), bb[item.key()])) << what << ": " << item.key();
  }
}

class TrainingFaults : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite()
  {
    root = diva::clitest::MakeScratch("faults");
    for (const char * id : { "c0", "c1", "c2" })
    {
      diva::clitest::WriteCase(root, id);
    }
    diva::clitest::WriteText(root / "data.csv", "image,label,id\nc0_ct.nii.gz,c0_label.nii.gz,c0\n"
                                                "c1_ct.nii.gz,c1_label.nii.gz,c1\nc2_ct.nii.gz,c2_label.nii.gz,c2\n");
  }

  // Stage 2 ESPNet `small` at 16^3 (its smallest patch; batch norm running statistics and Adam state must both
  // survive), deterministic: one thread and a fixed seed. Patience off so that every epoch runs.
  static std::string
  Arguments(const fs::path & output)
  {
    return "--dataset " + (root / "data.csv").string() + " --output-dir " + output.string() + " --epochs " +
           std::to_string(Epochs) +
           " --stage 2 --model espnet --preset small --patch 16,16,16 --spacing 2,2,2 --batch-size 2"
           " --steps-per-epoch 2 --lr 0.003 --patience 0 --seed 11 --deterministic --no-progress --prefetch 1";
  }

  static constexpr int64_t Epochs = 10;
  static inline fs::path   root;
};

// What may be on disk at any instant: every checkpoint present loads and agrees with the log; returns the epochs
// latest.pt commits (0 when absent).
int64_t
CheckDirectoryAfterKill(const fs::path & directory, const std::string & when)
{
  SCOPED_TRACE(when);
  int64_t                           committed = 0;
  std::map<std::string, Checkpoint> loaded;
  for (const char * name : { "latest.pt", "best.pt", "final.pt" })
  {
    if (!fs::exists(directory / name))
    {
      continue;
    }
    Checkpoint checkpoint;
    EXPECT_NO_THROW(checkpoint = LoadCheckpoint(directory / name)) << name << " does not load";
    if (checkpoint.state.is_null())
    {
      continue;
    }
    const auto next = checkpoint.state.at("next_epoch").get<int64_t>();
    EXPECT_EQ(static_cast<int64_t>(checkpoint.state.at("history").size()), next) << name;
    loaded[name] = checkpoint;
  }
  std::shared_ptr<diva::SegmentationNetworkImpl> exported;
  if (fs::exists(directory / "model-best.pt"))
  {
    EXPECT_NO_THROW(exported = diva::LoadModel((directory / "model-best.pt").string(), torch::kCPU).network)
      << "model-best.pt does not load";
  }
  if (loaded.count("latest.pt") != 0)
  {
    // What latest.pt commits is on disk: best.pt and model-best.pt hold the best epoch it names (unless best.pt is
    // already ahead, written for the epoch the kill interrupted).
    const auto & latest = loaded["latest.pt"];
    committed = latest.state.at("next_epoch").get<int64_t>();
    EXPECT_TRUE(latest.state.at("best_epoch").get<int64_t>() == 0 || loaded.count("best.pt") != 0) << "no best.pt";
    if (loaded.count("best.pt") != 0 && loaded["best.pt"].state.at("next_epoch").get<int64_t>() <= committed)
    {
      const auto & best = loaded["best.pt"];
      EXPECT_EQ(best.state.at("best_epoch"), latest.state.at("best_epoch")) << "best.pt behind latest.pt";
      EXPECT_TRUE(exported != nullptr) << "best.pt without model-best.pt";
      if (exported != nullptr)
      {
        ExpectSameWeights(*best.network, *exported, "model-best.pt behind best.pt");
      }
    }
  }
  if (fs::exists(directory / "training_log.csv"))
  {
    // The log is written just before latest.pt, so it is the committed epochs or one more.
    const auto rows = LogRows(directory / "training_log.csv");
    EXPECT_TRUE(static_cast<int64_t>(rows.size()) == committed || static_cast<int64_t>(rows.size()) == committed + 1)
      << rows.size() << " log rows, " << committed << " epochs committed";
    for (size_t i = 0; i < rows.size(); ++i)
    {
      EXPECT_EQ(rows[i].substr(0, rows[i].find(',')), std::to_string(i + 1));
    }
  }
  for (const auto & temporary : diva::testing::PartialFiles(directory))
  {
    // A temporary never carries a real file's name, so nothing ever loads one by mistake.
    EXPECT_EQ(temporary.filename().string()[0], '.') << temporary;
  }
  return committed;
}
} // namespace

TEST_F(TrainingFaults, KilledAtRandomPointsAndResumedMatchesAnUninterruptedRun)
{
  const std::string exe = DIVATTENTION_TRAIN_EXE;
  const fs::path    reference = root / "reference";
  double            startup = 0.0; // until "dataset: ..." is printed
  const Child whole = Spawn(exe, Arguments(reference), root / "reference.txt", "", KillRule(), "dataset:", &startup);
  ASSERT_TRUE(whole.Succeeded()) << whole.output;
  ASSERT_EQ(PrintedEpochs(whole.output).size(), static_cast<size_t>(Epochs)) << whole.output;

  const auto referenceRows = LogRows(reference / "training_log.csv");
  double     epochSeconds = 0.0;
  {
    std::ifstream in(reference / "training_log.csv");
    std::string   line;
    std::getline(in, line);
    while (std::getline(in, line))
    {
      epochSeconds += std::stod(line.substr(line.rfind(',') + 1));
    }
    epochSeconds /= static_cast<double>(Epochs);
  }
  const char *    seedText = std::getenv("DIVATTENTION_FAULT_SEED");
  const auto      seed = seedText != nullptr ? std::strtoull(seedText, nullptr, 10) : 20261126ULL;
  std::mt19937_64 random(seed);
  std::cout << "fault schedule seed " << seed << " (DIVATTENTION_FAULT_SEED); reference run " << whole.seconds
            << " s, start-up " << startup << " s, epoch " << epochSeconds << " s" << std::endl;

  // Hook kills: in the middle of writing the exported model of the first epoch (before any latest.pt exists), the
  // second latest.pt of a process, the log, and final.pt. Between them, random kills: a random delay after a random
  // point of the child's own progress -- its start (delay up to 1.5 reference start-ups: lands in start-up or the
  // first epoch), the end of start-up ("dataset:" printed) or the end of its first epoch (delays up to one epoch:
  // lands in a step, validation or a write). Tied to progress, a kill never lets a child run far, so the hook kills
  // after it still have epochs to act on, whatever the load of the machine.
  const std::vector<std::string> schedule{ "model-best.pt:1",    "", "latest.pt:2", "",
                                           "training_log.csv:1", "", "final.pt:1" };
  const fs::path                 run = root / "faulted";
  int64_t                        committed = 0;
  int                            kills = 0;
  bool                           finished = false;
  for (size_t attempt = 0; attempt < schedule.size() + 4 && !finished; ++attempt)
  {
    const std::string fault = attempt < schedule.size() ? schedule[attempt] : "";
    KillRule          rule;
    if (attempt < schedule.size() && fault.empty())
    {
      rule.enabled = true;
      const auto point = std::uniform_int_distribution<int>(0, 2)(random);
      const auto share = std::uniform_real_distribution<double>(0.0, 1.0)(random);
      rule.trigger = point == 0 ? "" : point == 1 ? "dataset:" : "epoch " + std::to_string(committed + 1) + "/";
      rule.delay = point == 0 ? 1.5 * startup * share : epochSeconds * share;
    }
    // Until latest.pt exists there is nothing to resume: the user reruns the original command.
    const bool        resume = fs::exists(run / "latest.pt");
    const std::string arguments = resume ? "--resume " + run.string() + " --no-progress" : Arguments(run);
    const std::string what =
      "attempt " + std::to_string(attempt) + " (" + (resume ? "resume" : "fresh") + ", " +
      (fault.empty() ? "kill " + std::to_string(rule.delay) + " s after \"" + rule.trigger + "\"" : "hook " + fault) +
      ")";
    SCOPED_TRACE(what);
    const Child child = Spawn(exe, arguments, root / ("attempt-" + std::to_string(attempt) + ".txt"), fault, rule);
    const auto  printed = PrintedEpochs(child.output);
    // No committed epoch is redone or lost: a resumed run starts right after the last committed one.
    if (!printed.empty())
    {
      EXPECT_EQ(printed.front(), committed + 1) << child.output;
    }
    if (child.Succeeded())
    {
      EXPECT_TRUE(fault.empty()) << "the hook did not fire: " << child.output;
      finished = true;
      break;
    }
    ASSERT_TRUE(child.Killed()) << "status " << child.status << ": " << child.output;
    ++kills;
    const int64_t now = CheckDirectoryAfterKill(run, what);
    EXPECT_GE(now, committed) << "a committed epoch was lost";
    if (!printed.empty())
    {
      // Only the epoch being written when the kill came may be missing.
      EXPECT_GE(now, printed.back() - 1) << child.output;
    }
    if (fault.rfind("latest.pt", 0) == 0 && !printed.empty())
    {
      EXPECT_EQ(now, printed.back() - 1) << "killed writing latest.pt, yet it moved on";
    }
    if (fault.rfind("final.pt", 0) == 0)
    {
      EXPECT_EQ(now, Epochs);
    }
    std::cout << what << ": " << printed.size() << " epochs printed, " << now << " committed" << std::endl;
    committed = now;
  }
  ASSERT_TRUE(finished) << "training did not finish";
  EXPECT_GE(kills, 5);

  // Same metrics as the uninterrupted run (every column but the wall time), same weights, bit for bit: one thread on
  // the CPU runs the same operations in the same order on the same data.
  EXPECT_EQ(LogRows(run / "training_log.csv"), referenceRows);
  for (const char * name : { "final.pt", "best.pt", "latest.pt" })
  {
    const auto a = LoadCheckpoint(reference / name);
    const auto b = LoadCheckpoint(run / name);
    ExpectSameWeights(*a.network, *b.network, name);
    // The metric history at full double precision (the log rounds to 9 digits), wall times aside.
    auto historyA = a.state.at("history"), historyB = b.state.at("history");
    for (auto * history : { &historyA, &historyB })
    {
      for (auto & record : *history)
      {
        record.erase("seconds");
      }
    }
    EXPECT_EQ(historyA, historyB) << name;
    EXPECT_EQ(a.state.at("best_epoch"), b.state.at("best_epoch")) << name;
    EXPECT_EQ(a.state.at("next_epoch"), b.state.at("next_epoch")) << name;
  }
  auto a = diva::LoadModel((reference / "model-best.pt").string(), torch::kCPU);
  auto b = diva::LoadModel((run / "model-best.pt").string(), torch::kCPU);
  ExpectSameWeights(*a.network, *b.network, "model-best.pt");
  EXPECT_TRUE(diva::testing::PartialFiles(run).empty()) << "resume leaves the killed runs' temporaries behind";
}

// DivAttentionSegment killed while writing its outputs (atomic image writer): the old file keeps its bytes, a file
// that did not exist is not created, and the hook really killed the writer mid-write (a partial temporary is there).
class OutputFaults : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite()
  {
    root = diva::clitest::MakeScratch("output-faults");
    const auto generator = diva::clitest::MakeSmallPhantom({ { 8.0, 8.0, 8.0 } });
    itk::WriteImageAtomically(generator->GetCT(), (root / "ct.nii.gz").string());
    click = diva::clitest::PointText(generator->GetObjects().front().click); // the liver
    diva::testing::WriteTinyModelFiles(root); // untrained: only that outputs get written matters
  }

  static std::string
  Arguments(const fs::path & mask, const fs::path & probability)
  {
    return "--input " + (root / "ct.nii.gz").string() + " --click " + click + " --coarse-model " +
           (root / "coarse.pt").string() + " --refine-model " + (root / "refine.pt").string() + " --output " +
           mask.string() + " --probability " + probability.string() + " --threads 1 --device cpu";
  }

  static inline fs::path    root;
  static inline std::string click;
};

TEST_F(OutputFaults, SegmentKilledMidWriteLeavesTheOldFileOrNone)
{
  const std::string exe = DIVATTENTION_SEGMENT_EXE;
  const fs::path    out = root / "out";
  fs::create_directories(out);
  const fs::path    mask = out / "mask.nii.gz";
  const fs::path    probability = out / "probability.nrrd";
  const std::string old = "the previous mask: any bytes that must survive";
  diva::clitest::WriteText(mask, old);

  // Killed writing the mask, which existed: the old bytes stay; the probability (written after) does not appear.
  Child child = Spawn(exe, Arguments(mask, probability), root / "segment-1.txt", "mask.nii.gz:1");
  ASSERT_TRUE(child.Killed()) << child.output;
  EXPECT_EQ(diva::testing::ReadFileBytes(mask), old);
  EXPECT_FALSE(fs::exists(probability));
  auto temporaries = diva::testing::PartialFiles(out);
  ASSERT_EQ(temporaries.size(), 1u);
  EXPECT_GT(fs::file_size(temporaries[0]), 0u); // the kill came in the middle of a real write

  // Killed writing the probability, which did not exist: none is created; the mask written before it is complete.
  child = Spawn(exe, Arguments(mask, probability), root / "segment-2.txt", "probability.nrrd:1");
  ASSERT_TRUE(child.Killed()) << child.output;
  EXPECT_FALSE(fs::exists(probability));
  EXPECT_NE(diva::testing::ReadFileBytes(mask), old);
  EXPECT_NO_THROW((itk::ReadImage<itk::Image<uint8_t, 3>>(mask.string())));
  EXPECT_EQ(diva::RemoveStaleTemporaries(out.string()), 2u);

  // Without the hook the same command replaces both (so the checks above could fail).
  child = Spawn(exe, Arguments(mask, probability), root / "segment-3.txt", "");
  ASSERT_TRUE(child.Succeeded()) << child.output;
  EXPECT_NO_THROW((itk::ReadImage<itk::Image<float, 3>>(probability.string())));
  EXPECT_TRUE(diva::testing::PartialFiles(out).empty());
}
