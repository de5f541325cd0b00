// Atomic file writing: the destination holds the old content or the complete new one, and no temporary survives.
#include "DivAttentionTestFiles.h"
#include "divaAtomicFile.h"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace fs = std::filesystem;

namespace
{
fs::path
ScratchDirectory(const std::string & name)
{
  const fs::path directory = fs::temp_directory_path() / ("divattention-atomic-" + name);
  fs::remove_all(directory);
  fs::create_directories(directory);
  return directory;
}

void
WriteText(const std::string & path, const std::string & text)
{
  std::ofstream(path) << text;
}

size_t
EntriesIn(const fs::path & directory)
{
  return static_cast<size_t>(std::distance(fs::directory_iterator(directory), fs::directory_iterator()));
}
} // namespace

TEST(AtomicFile, ReplacesContentAndKeepsTheFullExtensionOnTheTemporary)
{
  const fs::path    directory = ScratchDirectory("replace");
  const std::string target = (directory / "mask.nii.gz").string();
  WriteText(target, "old");
  std::string seenTemporary;
  diva::WriteFileAtomically(target,
                            [&](const std::string & temporary)
                            {
                              seenTemporary = temporary;
                              EXPECT_EQ(diva::testing::ReadFileBytes(target),
                                        "old"); // while writing, readers still see the old file
                              WriteText(temporary, "new");
                            });
  EXPECT_EQ(diva::testing::ReadFileBytes(target), "new");
  EXPECT_EQ(fs::path(seenTemporary).parent_path(), directory);
  EXPECT_EQ(seenTemporary.substr(seenTemporary.size() - 7), ".nii.gz");
  EXPECT_EQ(EntriesIn(directory), 1u);
}

TEST(AtomicFile, FailedWriteLeavesOldFileAndNoTemporary)
{
  const fs::path    directory = ScratchDirectory("fail");
  const std::string target = (directory / "model.pt").string();
  WriteText(target, "old");
  EXPECT_THROW(diva::WriteFileAtomically(target,
                                         [&](const std::string & temporary)
                                         {
                                           WriteText(temporary, "half");
                                           throw std::runtime_error("disk full");
                                         }),
               std::runtime_error);
  EXPECT_EQ(diva::testing::ReadFileBytes(target), "old");
  EXPECT_EQ(EntriesIn(directory), 1u);
}

TEST(AtomicFile, RefusesMissingDirectoryAndWriterThatWritesNothing)
{
  const fs::path directory = ScratchDirectory("refuse");
  try
  {
    diva::WriteFileAtomically((directory / "no-such-dir" / "out.mha").string(), [](const std::string &) {});
    FAIL() << "accepted a missing directory";
  }
  catch (const std::runtime_error & error)
  {
    EXPECT_NE(std::string(error.what()).find("does not exist"), std::string::npos) << error.what();
  }
  EXPECT_THROW(diva::WriteFileAtomically((directory / "out.mha").string(), [](const std::string &) {}),
               std::runtime_error);
  EXPECT_FALSE(fs::exists(directory / "out.mha"));
  EXPECT_THROW(diva::WriteFileAtomically(directory.string(), [](const std::string &) {}), std::runtime_error);
}

namespace
{
// Runs `body` in a child process with the fault hook set to `fault`; returns the child's wait status.
template<typename F>
int
InChild(const std::string & fault, F && body)
{
  const pid_t child = ::fork();
  if (child == 0)
  {
    ::setenv(diva::FaultInjectionVariable, fault.c_str(), 1);
    try
    {
      body();
    }
    catch (...)
    {
      ::_exit(3);
    }
    ::_exit(0); // the hook did not fire
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return status;
}

bool
KilledBySigkill(int status)
{
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

} // namespace

// The fault hook kills the writer between writing the temporary and the rename, with half the temporary on disk:
// the destination must keep its old bytes, and the stale temporary is recognised and removed afterwards.
TEST(AtomicFile, WriterKilledMidWriteLeavesTheOldFile)
{
  const fs::path    directory = ScratchDirectory("killed-old");
  const std::string target = (directory / "latest.pt").string();
  const std::string newContent(1000, 'n');
  const int         status = InChild(
            "latest.pt:2",
            [&]()
            {
      // The first write to latest.pt completes, the second is killed; other names don't count.
      diva::WriteFileAtomically(target, [](const std::string & t) { WriteText(t, "old"); });
      diva::WriteFileAtomically((directory / "best.pt").string(), [](const std::string & t) { WriteText(t, "best"); });
      diva::WriteFileAtomically(target, [&](const std::string & t) { WriteText(t, newContent); });
    });
  ASSERT_TRUE(KilledBySigkill(status)) << "status " << status;
  EXPECT_EQ(diva::testing::ReadFileBytes(target), "old");
  EXPECT_EQ(diva::testing::ReadFileBytes(directory / "best.pt"), "best");
  const auto temporaries = diva::testing::PartialFiles(directory);
  ASSERT_EQ(temporaries.size(), 1u);
  EXPECT_EQ(fs::file_size(temporaries[0]), newContent.size() / 2); // a partial write really happened
  EXPECT_EQ(diva::RemoveStaleTemporaries(directory.string()), 1u);
  EXPECT_EQ(EntriesIn(directory), 2u);
}

TEST(AtomicFile, WriterKilledMidWriteOfANewFileLeavesNone)
{
  const fs::path    directory = ScratchDirectory("killed-none");
  const std::string target = (directory / "mask.nii.gz").string();
  const int         status = InChild(
            "*:1", [&]() { diva::WriteFileAtomically(target, [](const std::string & t) { WriteText(t, "partial mask"); }); });
  ASSERT_TRUE(KilledBySigkill(status)) << "status " << status;
  EXPECT_FALSE(fs::exists(target));
  EXPECT_EQ(diva::RemoveStaleTemporaries(directory.string()), 1u);
  EXPECT_EQ(EntriesIn(directory), 0u);
}

TEST(AtomicFile, MalformedFaultSpecificationIsAnErrorNotASilentNoOp)
{
  const fs::path    directory = ScratchDirectory("bad-fault");
  const std::string target = (directory / "out.csv").string();
  for (const char * spec : { "out.csv", "out.csv:0", "out.csv:x", "out.csv:2x" })
  {
    const int status =
      InChild(spec, [&]() { diva::WriteFileAtomically(target, [](const std::string & t) { WriteText(t, "x"); }); });
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << spec << ": status " << status;
    EXPECT_FALSE(fs::exists(target)) << spec;
    EXPECT_EQ(EntriesIn(directory), 0u) << spec;
  }
}

TEST(AtomicFile, RemoveStaleTemporariesKeepsThoseOfRunningProcesses)
{
  const fs::path directory = ScratchDirectory("stale");
  const pid_t    finished = ::fork();
  if (finished == 0)
  {
    ::_exit(0);
  }
  ::waitpid(finished, nullptr, 0); // a process id that no longer runs (reuse within the test is unlikely)
  WriteText((directory / (".model.partial-" + std::to_string(finished) + "-0.pt")).string(), "dead writer");
  WriteText(diva::TemporaryPathFor((directory / "model.pt").string()), "this process");
  WriteText((directory / (".log.partial-" + std::to_string(::getppid()) + "-3.csv")).string(), "running parent");
  WriteText((directory / "model.partial-1-0.pt").string(), "not hidden: not a temporary");
  WriteText((directory / "model.pt").string(), "real");
  EXPECT_EQ(diva::RemoveStaleTemporaries(directory.string()), 1u);
  EXPECT_EQ(EntriesIn(directory), 4u);
  EXPECT_FALSE(fs::exists(directory / (".model.partial-" + std::to_string(finished) + "-0.pt")));
}
