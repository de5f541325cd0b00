// Fuzz target: the split file reader (itk::DatasetSplit::Parse, what DatasetSplit::Load reads). Any text either gives
// a split with at least one training case and no case in two places, or throws itk::ExceptionObject (its documented
// error type).
#include "itkDatasetSplit.h"

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
    const auto split = itk::DatasetSplit::Parse(text, "fuzz/split.json");
    if (split.train.empty())
    {
      __builtin_trap();
    }
    std::set<std::string> ids;
    for (const auto * list : { &split.train, &split.validation, &split.test })
    {
      for (const auto & id : *list)
      {
        if (!ids.insert(id).second)
        {
          __builtin_trap();
        }
      }
    }
  }
  catch (const itk::ExceptionObject &)
  {
  }
  return 0;
}
