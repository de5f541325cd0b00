// DivAttentionSegment --batch and --shard as a user runs them (Documentation/ClinicalIO.md): good, failing and
// already-done cases in one batch; a batch killed with SIGKILL in the middle of writing a case and run again; N shards
// of one batch; and the bad batch inputs, each a one-line message and no work done.
#include "DivAttentionTestFiles.h"
#include "divaAtomicFile.h"
#include "divaCliTestSupport.h"
#include "divaTinyModelFiles.h"
#include "itkCTPhantomGenerator.h"
#include "itkImageFileReader.h"
#include "itkWriteImageAtomically.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace
{
using diva::clitest::Result;
using diva::clitest::RunShell;

std::string
Segment()
{
  return DIVATTENTION_SEGMENT_EXE;
}

// One row of a summary CSV: case, status, seconds, voxels, output, message.
struct SummaryRow
{
  size_t      index = 0;
  std::string status;
  size_t      voxels = 0;
  std::string message;
};

std::vector<SummaryRow>
ReadSummary(const fs::path & path)
{
  std::vector<SummaryRow> rows;
  std::ifstream           stream(path);
  std::string             line;
  std::getline(stream, line);
  EXPECT_EQ(line, "case,status,seconds,voxels,output,message") << path;
  while (std::getline(stream, line))
  {
    std::stringstream fields(line);
    std::string       index, status, seconds, voxels;
    std::getline(fields, index, ',');
    std::getline(fields, status, ',');
    std::getline(fields, seconds, ',');
    std::getline(fields, voxels, ',');
    SummaryRow row;
    row.index = std::stoul(index);
    row.status = status;
    row.voxels = std::stoul(voxels);
    row.message = line;
    rows.push_back(row);
  }
  return rows;
}

size_t
CountVoxels(const fs::path & path)
{
  auto reader = itk::ImageFileReader<itk::Image<uint8_t, 3>>::New();
  reader->SetFileName(path.string());
  reader->Update();
  size_t count = 0;
  for (size_t i = 0; i < reader->GetOutput()->GetBufferedRegion().GetNumberOfPixels(); ++i)
  {
    count += reader->GetOutput()->GetBufferPointer()[i] != 0 ? 1 : 0;
  }
  return count;
}

class DivAttentionSegmentBatch : public ::testing::Test
{
protected:
  static void
  SetUpTestSuite()
  {
    root = diva::clitest::MakeScratch("segment-batch");
    const auto generator = diva::clitest::MakeSmallPhantom({ { 8.0, 8.0, 9.0 } });
    itk::WriteImageAtomically(generator->GetCT(), (root / "ct.nii.gz").string());
    for (const auto & object : generator->GetObjects())
    {
      clicks.push_back(diva::clitest::PointText(object.click));
    }
    diva::testing::WriteTinyModelFiles(root); // untrained: what matters is which cases run and what gets written
  }

  // The batch options every run shares: the tiny models, and a low threshold so that their masks are not empty.
  static std::string
  Options()
  {
    return " --coarse-model " + (root / "coarse.pt").string() + " --refine-model " + (root / "refine.pt").string() +
           " --threads 1 --coarse-max-extent 150 --threshold 0.05";
  }

  // A batch file in `directory` with `count` good cases on the phantom (clicks on its organs in turn), outputs
  // out/case<i>.nii.gz relative to the batch file.
  static fs::path
  WriteGoodBatch(const fs::path & directory, size_t count)
  {
    fs::create_directories(directory / "out");
    const fs::path batch = directory / "cases.csv";
    std::ofstream  stream(batch);
    stream << "image,clicks,negative_clicks,output\n";
    for (size_t i = 0; i < count; ++i)
    {
      stream << (root / "ct.nii.gz").string() << ",\"" << clicks[i % clicks.size()] << "\",,out/case" << i
             << ".nii.gz\n";
    }
    return batch;
  }

  static inline fs::path                 root;
  static inline std::vector<std::string> clicks;
};
} // namespace

TEST_F(DivAttentionSegmentBatch, GoodFailingAndExistingCases)
{
  const fs::path directory = root / "mixed";
  fs::create_directories(directory / "out");
  const std::string existing = "not an image: must stay as it is";
  std::ofstream(directory / "out" / "c.nii.gz") << existing;
  {
    std::ofstream stream(directory / "cases.csv");
    stream << "image,clicks,negative_clicks,output\n"
           << "# good, missing image, output already there, two clicks\n"
           << (root / "ct.nii.gz").string() << ",\"" << clicks[0] << "\",,out/a.nii.gz\n"
           << "missing.nii.gz,\"" << clicks[0] << "\",,out/b.nii.gz\n"
           << (root / "ct.nii.gz").string() << ",\"" << clicks[0] << "\",,out/c.nii.gz\n"
           << (root / "ct.nii.gz").string() << ",\"" << clicks[0] << ";" << clicks[0] << "\",,out/d.nii.gz\n";
  }
  const Result result = RunShell(Segment() + " --batch " + (directory / "cases.csv").string() + Options());
  // One case failed: the exit status says so, and the batch went on past it.
  EXPECT_EQ(result.exitCode, 1) << result.output;
  EXPECT_NE(result.output.find("DivAttentionSegment: error: 1 of 4 cases failed"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("2 done, 1 skipped, 1 failed"), std::string::npos) << result.output;
  // A progress line per case, with the expected time to the end while cases are left.
  EXPECT_NE(result.output.find("[1/4] case 0 (line 3) done in "), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("; ETA "), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("[4/4] case 3 (line 6) done in "), std::string::npos) << result.output;

  const auto rows = ReadSummary(directory / "cases.summary.csv");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].status, "done");
  EXPECT_EQ(rows[1].status, "failed");
  EXPECT_NE(rows[1].message.find("missing.nii.gz"), std::string::npos) << rows[1].message;
  EXPECT_NE(rows[1].message.find("does not exist"), std::string::npos) << rows[1].message;
  EXPECT_EQ(rows[2].status, "skipped");
  EXPECT_EQ(rows[3].status, "done");
  // The existing output was not touched; the good cases' masks are on disk with the voxel counts the summary gives.
  EXPECT_EQ(diva::testing::ReadFileBytes(directory / "out" / "c.nii.gz"), existing);
  EXPECT_FALSE(fs::exists(directory / "out" / "b.nii.gz"));
  ASSERT_TRUE(fs::exists(directory / "out" / "a.nii.gz"));
  ASSERT_TRUE(fs::exists(directory / "out" / "d.nii.gz"));
  EXPECT_GT(rows[0].voxels, 0u);
  EXPECT_EQ(CountVoxels(directory / "out" / "a.nii.gz"), rows[0].voxels);
  EXPECT_EQ(CountVoxels(directory / "out" / "d.nii.gz"), rows[3].voxels);
  EXPECT_TRUE(diva::testing::PartialFiles(directory / "out").empty());

  // The batch's mask is the mask of a single run on the same case (models loaded once give the same result).
  const fs::path single = directory / "single.nii.gz";
  const Result   run = RunShell(Segment() + " --input " + (root / "ct.nii.gz").string() + " --click " + clicks[0] +
                                " --output " + single.string() + Options());
  ASSERT_EQ(run.exitCode, 0) << run.output;
  auto read = [](const fs::path & path)
  {
    auto reader = itk::ImageFileReader<itk::Image<uint8_t, 3>>::New();
    reader->SetFileName(path.string());
    reader->Update();
    return itk::Image<uint8_t, 3>::Pointer(reader->GetOutput());
  };
  const auto fromBatch = read(directory / "out" / "a.nii.gz"), fromSingle = read(single);
  ASSERT_EQ(fromBatch->GetLargestPossibleRegion(), fromSingle->GetLargestPossibleRegion());
  const size_t count = fromBatch->GetBufferedRegion().GetNumberOfPixels();
  EXPECT_TRUE(
    std::equal(fromBatch->GetBufferPointer(), fromBatch->GetBufferPointer() + count, fromSingle->GetBufferPointer()));
}

// A run killed with SIGKILL while it writes case 2 (the fault hook of diva::WriteFileAtomically leaves half a
// temporary and no rename, as a real kill does), then the same command again: every case is done exactly once.
TEST_F(DivAttentionSegmentBatch, KilledRunResumesWithNoCaseLostOrDoneTwice)
{
  const fs::path directory = root / "resume";
  const fs::path batch = WriteGoodBatch(directory, 5);
  const Result   killed = RunShell(std::string(diva::FaultInjectionVariable) + "=case2.nii.gz:1 " + Segment() +
                                   " --batch " + batch.string() + Options());
  // The shell that popen runs reports its child's SIGKILL as exit status 128 + 9.
  ASSERT_TRUE(killed.signal == SIGKILL || killed.exitCode == 128 + SIGKILL) << killed.exitCode << "\n" << killed.output;
  EXPECT_TRUE(fs::exists(directory / "out" / "case0.nii.gz"));
  EXPECT_TRUE(fs::exists(directory / "out" / "case1.nii.gz"));
  EXPECT_FALSE(fs::exists(directory / "out" / "case2.nii.gz"));
  EXPECT_EQ(diva::testing::PartialFiles(directory / "out").size(), 1u) << "the kill should leave case 2's temporary";
  const auto first = ReadSummary(directory / "cases.summary.csv"); // as it was after the last finished case
  const auto case0 = fs::last_write_time(directory / "out" / "case0.nii.gz");

  const Result resumed = RunShell(Segment() + " --batch " + batch.string() + Options());
  ASSERT_EQ(resumed.exitCode, 0) << resumed.output;
  const auto            second = ReadSummary(directory / "cases.summary.csv");
  std::map<size_t, int> done;
  for (const auto & rows : { first, second })
  {
    for (const auto & row : rows)
    {
      EXPECT_NE(row.status, "failed") << row.message;
      done[row.index] += row.status == "done" ? 1 : 0;
    }
  }
  for (size_t i = 0; i < 5; ++i)
  {
    EXPECT_EQ(done[i], 1) << "case " << i << " done " << done[i] << " times over the two runs";
    EXPECT_TRUE(fs::exists(directory / "out" / ("case" + std::to_string(i) + ".nii.gz"))) << i;
  }
  EXPECT_EQ(second.size(), 5u);
  EXPECT_EQ(fs::last_write_time(directory / "out" / "case0.nii.gz"), case0) << "a finished case was written again";
  EXPECT_TRUE(diva::testing::PartialFiles(directory / "out").empty()) << "the killed run's temporary was left";
  // The case that was being written when the kill came is a whole image now.
  EXPECT_GT(CountVoxels(directory / "out" / "case2.nii.gz"), 0u);
}

// N processes, one per shard, at the same time and with no coordination: every case done by exactly one of them.
TEST_F(DivAttentionSegmentBatch, ShardsDoEveryCaseExactlyOnce)
{
  const fs::path directory = root / "shards";
  const size_t   cases = 7, shards = 3;
  const fs::path batch = WriteGoodBatch(directory, cases);
  std::string    command;
  for (size_t k = 0; k < shards; ++k)
  {
    command += "(" + Segment() + " --batch " + batch.string() + " --shard " + std::to_string(k) + "/" +
               std::to_string(shards) + Options() + " >/dev/null 2>&1; echo \"shard " + std::to_string(k) +
               " exit $?\") & ";
  }
  const Result          result = RunShell(command + "wait");
  std::map<size_t, int> done;
  for (size_t k = 0; k < shards; ++k)
  {
    EXPECT_NE(result.output.find("shard " + std::to_string(k) + " exit 0"), std::string::npos) << result.output;
    const fs::path summary =
      directory / ("cases.shard-" + std::to_string(k) + "-of-" + std::to_string(shards) + ".summary.csv");
    ASSERT_TRUE(fs::exists(summary)) << summary;
    for (const auto & row : ReadSummary(summary))
    {
      EXPECT_EQ(row.index % shards, k) << "shard " << k << " ran case " << row.index;
      EXPECT_EQ(row.status, "done") << row.message;
      done[row.index] += row.status == "done" ? 1 : 0;
    }
  }
  for (size_t i = 0; i < cases; ++i)
  {
    EXPECT_EQ(done[i], 1) << "case " << i;
    EXPECT_TRUE(fs::exists(directory / "out" / ("case" + std::to_string(i) + ".nii.gz"))) << i;
  }
}

// --jobs N: N processes of DivAttentionSegment share the cases (of a shard, when one is given) and one summary, ordered
// by case, holds them all; the jobs' own summaries are gone.
TEST_F(DivAttentionSegmentBatch, JobsDoEveryCaseOfTheirShardExactlyOnceWithOneSummary)
{
  for (const bool sharded : { false, true })
  {
    const fs::path directory = root / (sharded ? "jobs-sharded" : "jobs");
    const size_t   cases = 7;
    const fs::path batch = WriteGoodBatch(directory, cases);
    const Result   result = RunShell(Segment() + " --batch " + batch.string() + (sharded ? " --shard 1/2" : "") +
                                     " --jobs 3" + Options() + " 2>&1");
    ASSERT_EQ(result.exitCode, 0) << result.output;
    EXPECT_NE(result.output.find("in 3 jobs: " + std::to_string(sharded ? 3 : cases) + " cases"), std::string::npos)
      << result.output;
    const fs::path summary = directory / (sharded ? "cases.shard-1-of-2.summary.csv" : "cases.summary.csv");
    ASSERT_TRUE(fs::exists(summary)) << result.output;
    const auto       rows = ReadSummary(summary);
    std::set<size_t> seen;
    for (size_t r = 0; r < rows.size(); ++r)
    {
      EXPECT_EQ(rows[r].status, "done") << rows[r].message;
      EXPECT_TRUE(seen.insert(rows[r].index).second) << "case " << rows[r].index << " twice";
      if (r > 0)
      {
        EXPECT_LT(rows[r - 1].index, rows[r].index) << "the summary is ordered by case";
      }
    }
    for (size_t i = 0; i < cases; ++i)
    {
      const bool mine = !sharded || i % 2 == 1;
      EXPECT_EQ(seen.count(i), mine ? 1u : 0u) << "case " << i;
      EXPECT_EQ(fs::exists(directory / "out" / ("case" + std::to_string(i) + ".nii.gz")), mine) << "case " << i;
    }
    for (const auto & entry : fs::directory_iterator(directory))
    {
      EXPECT_EQ(entry.path().filename().string().find(".job-"), std::string::npos) << entry.path() << " was left";
    }
  }
  const Result refused =
    RunShell(Segment() + " --batch " + (root / "jobs" / "cases.csv").string() + " --jobs 0" + Options() + " 2>&1");
  EXPECT_EQ(refused.exitCode, 2) << refused.output;
  EXPECT_NE(refused.output.find("option --jobs: 0 is not >= 1"), std::string::npos) << refused.output;
}

// --jobs killed with SIGKILL while its jobs run: the jobs die with it (none runs on), and the same command run again
// finishes the batch without redoing a case the killed run finished.
TEST_F(DivAttentionSegmentBatch, KilledJobsDieWithTheirParentAndTheRunResumes)
{
  const fs::path    directory = root / "jobs-killed";
  const size_t      cases = 8;
  const fs::path    batch = WriteGoodBatch(directory, cases);
  const fs::path    log = directory / "killed.log";
  const std::string command = Segment() + " --batch " + batch.string() + " --jobs 2" + Options();
  // Kill the parent once a job has finished a case; then report every job that is still alive (not a zombie).
  const Result killed = RunShell(
    command + " > " + log.string() + " 2>&1 & parent=$!; for i in $(seq 1 1200); do grep -q '] case' " + log.string() +
    " && break; sleep 0.05; done; kill -9 $parent; wait $parent; sleep 1; for pid in $(sed -n 's/.*job [0-9]* of 2 "
    "(pid " +
    "\\([0-9]*\\)).*/\\1/p' " + log.string() + "); do echo \"job pid $pid\"; if [ -e /proc/$pid ] && " +
    "[ \"$(cut -d' ' -f3 /proc/$pid/stat)\" != Z ]; then echo \"job $pid alive\"; fi; done; echo checked");
  ASSERT_NE(killed.output.find("checked"), std::string::npos) << killed.output;
  size_t jobsSeen = 0;
  for (size_t at = killed.output.find("job pid "); at != std::string::npos; at = killed.output.find("job pid ", at + 1))
  {
    ++jobsSeen;
  }
  EXPECT_EQ(jobsSeen, 2u) << "the log should name both jobs' pids:\n" << killed.output;
  EXPECT_EQ(killed.output.find("alive"), std::string::npos) << killed.output;

  std::map<std::string, fs::file_time_type> finished;
  for (const auto & entry : fs::directory_iterator(directory / "out"))
  {
    if (entry.path().extension() == ".gz" && entry.path().filename().string()[0] != '.')
    {
      finished[entry.path().filename().string()] = fs::last_write_time(entry.path());
    }
  }
  ASSERT_GE(finished.size(), 1u) << "the kill came after a finished case";
  ASSERT_LT(finished.size(), cases) << "the kill came before the end";

  const Result resumed = RunShell(command);
  ASSERT_EQ(resumed.exitCode, 0) << resumed.output;
  const auto rows = ReadSummary(directory / "cases.summary.csv");
  ASSERT_EQ(rows.size(), cases);
  for (const auto & row : rows)
  {
    const std::string name = "case" + std::to_string(row.index) + ".nii.gz";
    EXPECT_EQ(row.status, finished.count(name) ? "skipped" : "done") << row.message;
    EXPECT_TRUE(fs::exists(directory / "out" / name)) << name;
  }
  for (const auto & [name, time] : finished)
  {
    EXPECT_EQ(fs::last_write_time(directory / "out" / name), time) << name << " was written again";
  }
  EXPECT_TRUE(diva::testing::PartialFiles(directory / "out").empty()) << "the killed run's temporaries were left";
}

TEST_F(DivAttentionSegmentBatch, BadBatchInputsAreOneLineErrorsBeforeAnyWork)
{
  const fs::path directory = root / "bad";
  const fs::path batch = WriteGoodBatch(directory, 2);
  auto           expectError = [&](const std::string & arguments, int exitCode, const std::string & fragment)
  {
    const Result result = RunShell(Segment() + " " + arguments);
    EXPECT_EQ(result.exitCode, exitCode) << arguments << "\n" << result.output;
    EXPECT_NE(result.output.find("DivAttentionSegment: error: "), std::string::npos) << result.output;
    EXPECT_NE(result.output.find(fragment), std::string::npos)
      << "expected \"" << fragment << "\" in " << result.output;
    EXPECT_FALSE(fs::exists(directory / "out" / "case0.nii.gz")) << arguments;
    EXPECT_FALSE(fs::exists(directory / "cases.summary.csv")) << arguments;
  };
  const std::string good = "--batch " + batch.string() + Options();
  expectError(good + " --shard 3/3", 1, "K must be in 0 .. N-1");
  expectError(good + " --shard 1", 1, "\"1\" is not K/N");
  expectError(good + " --shard -1/2", 1, "is not K/N");
  expectError(good + " --input " + (root / "ct.nii.gz").string(), 2, "--input cannot be combined with --batch");
  expectError("--shard 0/2 --input x --click 1,2,3 --output y", 2, "--shard needs --batch");
  expectError("--click 1,2,3 --output y", 2, "Required argument missing: input");
  expectError("--batch " + (directory / "none.csv").string() + Options(), 1, "none.csv\": no such file");

  auto write = [&](const std::string & name, const std::string & text)
  {
    std::ofstream(directory / name) << text;
    return "--batch " + (directory / name).string() + Options();
  };
  expectError(write("unknown.csv", "image,click,output\n"), 1, "line 1: unknown column \"click\"");
  expectError(write("nooutput.csv", "image,clicks\n"), 1, "no \"output\" column");
  expectError(write("fields.csv", "image,clicks,output\nct.nii.gz,1,2,3,out/x.nii.gz\n"), 1, "line 2: 5 fields");
  expectError(write("quote.csv", "image,clicks,output\nct.nii.gz,\"1,2,3,out/x.nii.gz\n"), 1,
              "line 2: a quoted field is not closed");
  expectError(write("twice.csv", "image,clicks,output\na.nii.gz,\"1,2,3\",out/x.nii.gz\nb.nii.gz,\"1,2,3\","
                                 "out/../out/x.nii.gz\n"),
              1, "line 3: output \"out/../out/x.nii.gz\" is also the output of line 2");
  expectError(write("empty.csv", ""), 1, "empty");
}
