// A main() for the fuzz targets where libFuzzer is not used (a GCC sanitizer build, CI): feeds every file named on the
// command line, and every file under a directory named there, once to LLVMFuzzerTestOneInput. A finding of a
// sanitizer, or an exception the target does not expect, ends the program with a non-zero status, as under libFuzzer.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t * data, size_t size);
extern "C" __attribute__((weak)) int
LLVMFuzzerInitialize(int * argc, char *** argv);

int
main(int argc, char ** argv)
{
  namespace fs = std::filesystem;
  if (LLVMFuzzerInitialize != nullptr)
  {
    LLVMFuzzerInitialize(&argc, &argv);
  }
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i)
  {
    const fs::path path(argv[i]);
    if (fs::is_directory(path))
    {
      for (const auto & entry : fs::recursive_directory_iterator(path))
      {
        if (entry.is_regular_file())
        {
          inputs.push_back(entry.path());
        }
      }
    }
    else if (fs::is_regular_file(path))
    {
      inputs.push_back(path);
    }
    else
    {
      std::fprintf(stderr, "replay: '%s' is neither a file nor a directory\n", argv[i]);
      return 2;
    }
  }
  if (inputs.empty())
  {
    std::fprintf(stderr, "replay: no inputs (usage: %s FILE_OR_DIRECTORY...)\n", argv[0]);
    return 2;
  }
  for (const auto & path : inputs)
  {
    std::ifstream     stream(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
    if (!stream.good() && !stream.eof())
    {
      std::fprintf(stderr, "replay: cannot read '%s'\n", path.c_str());
      return 2;
    }
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), bytes.size());
    // A copy of exactly `size` bytes on the heap, so that AddressSanitizer sees a read past the end.
    const std::vector<uint8_t> copy(bytes.begin(), bytes.end());
    LLVMFuzzerTestOneInput(copy.data(), copy.size());
  }
  std::fprintf(stderr, "replay: %zu inputs, no finding\n", inputs.size());
  return 0;
}
