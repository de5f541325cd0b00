// A main() for the fuzz targets where libFuzzer is not used (a GCC sanitizer build, CI): feeds every file named on the
// command line, and every file under a directory named there, once to LLVMFuzzerTestOneInput; then, with -runs=N, N
// mutants of those inputs (a short, deterministic, coverage-blind fuzzing run: bit flips, boundary bytes, inserted,
// erased and duplicated ranges, splices of two inputs, numbers in text swapped for extreme ones), drawn from -seed=S.
// A finding of a sanitizer, or an exception the target does not expect, ends the program with a non-zero status, as
// under libFuzzer, after the input that caused it is written to <artifact prefix>crash-input (-artifact_prefix=P).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t * data, size_t size);
extern "C" __attribute__((weak)) int
LLVMFuzzerInitialize(int * argc, char *** argv);
// The sanitizers' runtime calls this back before it ends the process on a finding (weak: absent without sanitizers).
extern "C" __attribute__((weak)) void
__sanitizer_set_death_callback(void (*callback)(void));

namespace
{
std::vector<uint8_t> g_Current;     // the input being run, for the crash file
std::string          g_CrashPath;   // where it goes
const char *         g_Description; // what it is, for the log

void
WriteCurrentInput()
{
  if (FILE * file = std::fopen(g_CrashPath.c_str(), "wb"))
  {
    std::fwrite(g_Current.data(), 1, g_Current.size(), file);
    std::fclose(file);
    std::fprintf(stderr, "replay: finding on %s; input written to %s\n", g_Description, g_CrashPath.c_str());
  }
}

void
Run(const std::vector<uint8_t> & bytes, const char * description)
{
  // A copy of exactly `size` bytes on the heap, so that AddressSanitizer sees a read past the end.
  g_Current = bytes;
  g_Description = description;
  const std::vector<uint8_t> copy(bytes);
  LLVMFuzzerTestOneInput(copy.data(), copy.size());
}

// One random edit of `data`; `other` is another input to splice from.
void
Mutate(std::vector<uint8_t> & data, const std::vector<uint8_t> & other, std::mt19937_64 & random)
{
  const auto           pick = [&](size_t n) { return n == 0 ? size_t{ 0 } : static_cast<size_t>(random() % n); };
  static const uint8_t boundary[] = { 0x00, 0x01, 0x7F, 0x80, 0xFF, '-', '9', '.', 'e', '"', '{', '[', ',', '\n' };
  static const char *  numbers[] = {
     "-1", "0", "4294967296", "1e308", "-1e308", "1.5", "nan", "1e-320", "18446744073709551616", "9223372036854775807"
  };
  switch (random() % 7)
  {
    case 0: // flip a bit
      if (!data.empty())
      {
        data[pick(data.size())] ^= static_cast<uint8_t>(1u << (random() % 8));
      }
      break;
    case 1: // a boundary byte
      if (!data.empty())
      {
        data[pick(data.size())] = boundary[pick(sizeof(boundary))];
      }
      break;
    case 2: // insert random bytes
    {
      const size_t         at = pick(data.size() + 1);
      std::vector<uint8_t> bytes(1 + pick(8));
      for (auto & b : bytes)
      {
        b = static_cast<uint8_t>(random());
      }
      data.insert(data.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin(), bytes.end());
      break;
    }
    case 3: // erase a range
      if (!data.empty())
      {
        const size_t at = pick(data.size());
        const size_t n = 1 + pick(std::min<size_t>(64, data.size() - at));
        data.erase(data.begin() + static_cast<std::ptrdiff_t>(at), data.begin() + static_cast<std::ptrdiff_t>(at + n));
      }
      break;
    case 4: // duplicate a range
      if (!data.empty())
      {
        const size_t               at = pick(data.size());
        const size_t               n = 1 + pick(std::min<size_t>(64, data.size() - at));
        const std::vector<uint8_t> chunk(data.begin() + static_cast<std::ptrdiff_t>(at),
                                         data.begin() + static_cast<std::ptrdiff_t>(at + n));
        data.insert(data.begin() + static_cast<std::ptrdiff_t>(pick(data.size() + 1)), chunk.begin(), chunk.end());
      }
      break;
    case 5: // splice: our head, the other's tail
    {
      data.resize(pick(data.size() + 1));
      const size_t from = pick(other.size() + 1);
      data.insert(data.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
      break;
    }
    default: // a number in text replaced by an extreme one
    {
      std::vector<size_t> digits;
      for (size_t i = 0; i < data.size(); ++i)
      {
        if (data[i] >= '0' && data[i] <= '9' && (i == 0 || data[i - 1] < '0' || data[i - 1] > '9'))
        {
          digits.push_back(i);
        }
      }
      if (!digits.empty())
      {
        const size_t at = digits[pick(digits.size())];
        size_t       end = at;
        while (end < data.size() && ((data[end] >= '0' && data[end] <= '9') || data[end] == '.'))
        {
          ++end;
        }
        const std::string number = numbers[pick(sizeof(numbers) / sizeof(numbers[0]))];
        data.erase(data.begin() + static_cast<std::ptrdiff_t>(at), data.begin() + static_cast<std::ptrdiff_t>(end));
        data.insert(data.begin() + static_cast<std::ptrdiff_t>(at), number.begin(), number.end());
      }
      break;
    }
  }
}
} // namespace

int
main(int argc, char ** argv)
{
  namespace fs = std::filesystem;
  if (LLVMFuzzerInitialize != nullptr)
  {
    LLVMFuzzerInitialize(&argc, &argv);
  }
  unsigned long long    runs = 0, seed = 1;
  std::string           prefix;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i)
  {
    const std::string argument = argv[i];
    if (argument.rfind("-runs=", 0) == 0)
    {
      runs = std::strtoull(argument.c_str() + 6, nullptr, 10);
      continue;
    }
    if (argument.rfind("-seed=", 0) == 0)
    {
      seed = std::strtoull(argument.c_str() + 6, nullptr, 10);
      continue;
    }
    if (argument.rfind("-artifact_prefix=", 0) == 0)
    {
      prefix = argument.substr(17);
      continue;
    }
    const fs::path path(argument);
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
    std::fprintf(stderr, "replay: no inputs (usage: %s [-runs=N] [-seed=S] [-artifact_prefix=P] FILE_OR_DIR...)\n",
                 argv[0]);
    return 2;
  }
  std::sort(inputs.begin(), inputs.end()); // the same order everywhere, so a seed names the same mutants
  g_CrashPath = prefix + "crash-input";
  if (__sanitizer_set_death_callback != nullptr)
  {
    __sanitizer_set_death_callback(WriteCurrentInput);
  }
  std::set_terminate(
    []
    {
      WriteCurrentInput(); // an exception the target does not expect
      std::abort();
    });

  std::vector<std::vector<uint8_t>> corpus;
  for (const auto & path : inputs)
  {
    std::ifstream     stream(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
    if (!stream.good() && !stream.eof())
    {
      std::fprintf(stderr, "replay: cannot read '%s'\n", path.c_str());
      return 2;
    }
    corpus.emplace_back(bytes.begin(), bytes.end());
    Run(corpus.back(), path.c_str());
  }
  std::fprintf(stderr, "replay: %zu inputs, no finding\n", corpus.size());
  if (runs > 0)
  {
    std::mt19937_64 random(seed);
    for (unsigned long long run = 0; run < runs; ++run)
    {
      std::vector<uint8_t> mutant = corpus[random() % corpus.size()];
      const auto &         other = corpus[random() % corpus.size()];
      for (unsigned edits = 1 + static_cast<unsigned>(random() % 4); edits > 0; --edits)
      {
        Mutate(mutant, other, random);
      }
      Run(mutant, "a mutant");
    }
    std::fprintf(stderr, "replay: %llu mutants (seed %llu), no finding\n", runs, seed);
  }
  return 0;
}
