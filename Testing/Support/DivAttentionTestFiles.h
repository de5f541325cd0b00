// Files as the tests that check what is on disk read them (atomic writes, killed runs, batch runs): the whole content
// of a file, and the temporaries an atomic write leaves while it is in progress. Standard library only: the
// LibTorch-only tests use it too.
#ifndef DivAttentionTestFiles_h
#define DivAttentionTestFiles_h

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace diva::testing
{
/** The bytes of the file at `path` ("" when it cannot be opened). */
inline std::string
ReadFileBytes(const std::filesystem::path & path)
{
  std::ifstream      stream(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << stream.rdbuf();
  return bytes.str();
}

/** The files of `directory` (not below it) whose name holds ".partial-": the temporaries of atomic writes
 * (divaAtomicFile.h) that have not been renamed into place. */
inline std::vector<std::filesystem::path>
PartialFiles(const std::filesystem::path & directory)
{
  std::vector<std::filesystem::path> found;
  for (const auto & entry : std::filesystem::directory_iterator(directory))
  {
    if (entry.path().filename().string().find(".partial-") != std::string::npos)
    {
      found.push_back(entry.path());
    }
  }
  return found;
}
} // namespace diva::testing

#endif
