// Atomic file writing: the destination holds the old content or the complete new one, and no temporary survives.
#include "divaAtomicFile.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

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

std::string
ReadAll(const fs::path & path)
{
  std::ifstream     in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
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
                              EXPECT_EQ(ReadAll(target), "old"); // while writing, readers still see the old file
                              WriteText(temporary, "new");
                            });
  EXPECT_EQ(ReadAll(target), "new");
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
  EXPECT_EQ(ReadAll(target), "old");
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
