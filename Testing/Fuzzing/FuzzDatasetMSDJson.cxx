// Fuzz target: the dataset.json reader of the Medical Segmentation Decathlon layout
// (itk::SegmentationDatasetReader::ParseMSDJson). Any text either lists cases (each a case or a per-case problem: the
// paths under the root do not exist) or throws itk::ExceptionObject (its documented error type). Every listed id,
// case or problem, is unique (the reader promises that even for odd file names).
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
      itk::SegmentationDatasetReader::ParseMSDJson(text, "/nonexistent-divattention-fuzz-root", "fuzz/dataset.json");
    std::set<std::string> ids;
    for (const auto & entry : listing.cases)
    {
      if (!ids.insert(entry.id).second)
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
