// Fuzz target: the model-file loader (diva::LoadModelFromBytes, the bytes LoadModel reads). It must never crash, hang
// or leak on any bytes: it either rebuilds a network or throws std::runtime_error (its documented error type). Any
// other exception escapes and counts as a finding.
//
// The file ends with a CRC-32 of everything before it, which random mutations almost never keep right, so each input
// is loaded twice: as it is (the frame checks), and, when it begins with the magic, with the trailer rewritten (the
// right CRC-32 and end marker) so that mutations of the header and the tensor table reach the parser behind them.
#include "divaModelFile.h"

#include <torch/torch.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace
{
// CRC-32 as the file format defines it (zlib's), table-driven; not instrumented for coverage (its branches would only
// make the fuzzer slower: they depend on the input's bytes, not on what the parser does with them).
#if defined(__clang__)
__attribute__((no_sanitize("coverage")))
#endif
uint32_t
Crc32(const std::string & bytes, std::size_t size)
{
  static const auto table = []
  {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i)
    {
      uint32_t crc = i;
      for (int bit = 0; bit < 8; ++bit)
      {
        crc = (crc >> 1) ^ ((crc & 1u) ? 0xEDB88320u : 0u);
      }
      t[i] = crc;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (std::size_t i = 0; i < size; ++i)
  {
    crc = (crc >> 8) ^ table[(crc ^ static_cast<unsigned char>(bytes[i])) & 0xFFu];
  }
  return crc ^ 0xFFFFFFFFu;
}

void
Load(const std::string & bytes)
{
  try
  {
    const auto model = diva::LoadModelFromBytes(bytes, "fuzz");
    if (!model.network)
    {
      __builtin_trap(); // a successful load always has a network
    }
  }
  catch (const std::runtime_error &)
  {
  }
}
} // namespace

extern "C" int
LLVMFuzzerInitialize(int *, char ***)
{
  torch::set_num_threads(1); // one input at a time, deterministic and without a thread pool per run
  return 0;
}

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t * data, size_t size)
{
  std::string bytes(reinterpret_cast<const char *>(data), size);
  Load(bytes);

  constexpr char        magic[8] = { 'D', 'I', 'V', 'A', 'M', 'D', 'L', '\0' };
  constexpr std::size_t preamble = 8 + 4 + 8; // magic, version, header length
  constexpr std::size_t trailer = 4 + 8;      // CRC-32, magic
  if (size >= preamble + trailer && bytes.compare(0, 8, magic, 8) == 0)
  {
    const std::size_t at = size - trailer;
    const uint32_t    crc = Crc32(bytes, at);
    for (int i = 0; i < 4; ++i)
    {
      bytes[at + static_cast<std::size_t>(i)] = static_cast<char>((crc >> (8 * i)) & 0xFFu);
    }
    bytes.replace(at + 4, 8, magic, 8);
    if (bytes.compare(0, std::string::npos, reinterpret_cast<const char *>(data), size) != 0)
    {
      Load(bytes);
    }
  }
  return 0;
}
