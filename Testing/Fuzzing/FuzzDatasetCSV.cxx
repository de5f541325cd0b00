// Fuzz target: the CSV dataset reader (itk::SegmentationDatasetReader::ParseCSV), `image,label[,id]` lines. Any text
// either lists cases (paths under the root do not exist: each becomes a per-case problem) or throws
// itk::ExceptionObject (its documented error type). Listed ids are unique.
#include "itkSegmentationDatasetReader.h"

#include "itkMacro.h"

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

extern "C" int
LLVMFuzzerTestOneInput(const uint8_t * data, size_t size)
{
  const std::string text(reinterpret_cast<const char *>(data), size);
  try
  {
    const auto listing =
      itk::SegmentationDatasetReader::ParseCSV(text, "/nonexistent-divattention-fuzz-root", "fuzz/cases.csv");
    std::set<std::string> ids;
    for (const auto & entry : listing.cases)
    {
      if (entry.id.empty() || !ids.insert(entry.id).second)
      {
        __builtin_trap();
      }
    }
    for (const auto & problem : listing.problems)
    {
      if (!ids.insert(problem.id).second)
      {
        __builtin_trap();
      }
    }
  }
  catch (const itk::ExceptionObject &)
  {
  }
  return 0;
}
