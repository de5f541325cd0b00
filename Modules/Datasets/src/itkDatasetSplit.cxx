#include "itkDatasetSplit.h"

#include "divaAtomicFile.h"
#include "itkMacro.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

namespace itk
{
DatasetSplit::Scheme
DatasetSplit::ParseScheme(const std::string & text)
{
  if (text == "public")
  {
    return Scheme::Public;
  }
  if (text == "private")
  {
    return Scheme::Private;
  }
  itkGenericExceptionMacro(<< "DivAttention: split scheme \"" << text << "\" is not one of public, private");
}

DatasetSplit
DatasetSplit::Make(std::vector<std::string> ids, Scheme scheme, uint64_t seed)
{
  if (ids.empty())
  {
    itkGenericExceptionMacro(<< "DivAttention: split: no cases to split");
  }
  std::sort(ids.begin(), ids.end());
  if (std::adjacent_find(ids.begin(), ids.end()) != ids.end())
  {
    itkGenericExceptionMacro(<< "DivAttention: split: case id \"" << *std::adjacent_find(ids.begin(), ids.end())
                             << "\" appears twice");
  }
  // Fisher-Yates with mt19937_64 raw output (fully specified by the standard, unlike the distributions).
  std::mt19937_64 generator(seed);
  for (size_t i = ids.size() - 1; i > 0; --i)
  {
    const size_t j = static_cast<size_t>(generator() % (i + 1));
    std::swap(ids[i], ids[j]);
  }
  DatasetSplit split;
  split.scheme = scheme == Scheme::Public ? "public" : "private";
  split.seed = seed;
  size_t testCount = 0;
  if (scheme == Scheme::Private)
  {
    testCount = static_cast<size_t>(std::round(0.3 * static_cast<double>(ids.size())));
  }
  const size_t rest = ids.size() - testCount;
  size_t       validationCount = static_cast<size_t>(std::round(0.2 * static_cast<double>(rest)));
  if (validationCount >= rest)
  {
    validationCount = rest - 1; // training keeps at least one case
  }
  split.test.assign(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(testCount));
  split.validation.assign(ids.begin() + static_cast<std::ptrdiff_t>(testCount),
                          ids.begin() + static_cast<std::ptrdiff_t>(testCount + validationCount));
  split.train.assign(ids.begin() + static_cast<std::ptrdiff_t>(testCount + validationCount), ids.end());
  for (auto * list : { &split.train, &split.validation, &split.test })
  {
    std::sort(list->begin(), list->end());
  }
  return split;
}

void
DatasetSplit::Save(const std::string & path) const
{
  const nlohmann::json document = {
    { "scheme", scheme }, { "seed", seed }, { "train", train }, { "validation", validation }, { "test", test }
  };
  try
  {
    diva::WriteFileAtomically(path,
                              [&](const std::string & temporary)
                              {
                                std::ofstream out(temporary);
                                out << document.dump(2) << '\n';
                                if (!out)
                                {
                                  throw std::runtime_error("cannot write \"" + temporary + "\"");
                                }
                              });
  }
  catch (const std::exception & error)
  {
    itkGenericExceptionMacro(<< "DivAttention: split: " << error.what());
  }
}

DatasetSplit
DatasetSplit::Parse(const std::string & jsonText, const std::string & sourceName)
{
  const auto document = nlohmann::json::parse(jsonText, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object())
  {
    itkGenericExceptionMacro(<< "DivAttention: split \"" << sourceName << "\" is not a JSON object");
  }
  DatasetSplit          split;
  std::set<std::string> seen;
  auto                  readList = [&](const char * key, std::vector<std::string> & list)
  {
    if (!document.contains(key) || !document[key].is_array())
    {
      itkGenericExceptionMacro(<< "DivAttention: split \"" << sourceName << "\" has no \"" << key << "\" list");
    }
    for (const auto & id : document[key])
    {
      if (!id.is_string())
      {
        itkGenericExceptionMacro(<< "DivAttention: split \"" << sourceName << "\": \"" << key
                                 << "\" holds a non-string entry");
      }
      if (!seen.insert(id.get<std::string>()).second)
      {
        itkGenericExceptionMacro(<< "DivAttention: split \"" << sourceName << "\": case \"" << id.get<std::string>()
                                 << "\" appears in more than one place");
      }
      list.push_back(id.get<std::string>());
    }
  };
  readList("train", split.train);
  readList("validation", split.validation);
  readList("test", split.test);
  if (split.train.empty())
  {
    itkGenericExceptionMacro(<< "DivAttention: split \"" << sourceName << "\" has no training case");
  }
  if (document.contains("scheme") && document["scheme"].is_string())
  {
    split.scheme = document["scheme"];
  }
  if (document.contains("seed") && document["seed"].is_number_unsigned())
  {
    split.seed = document["seed"];
  }
  return split;
}

DatasetSplit
DatasetSplit::Load(const std::string & path)
{
  std::ifstream in(path);
  if (!in)
  {
    itkGenericExceptionMacro(<< "DivAttention: split \"" << path << "\" cannot be read");
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return Parse(buffer.str(), path);
}
} // namespace itk
