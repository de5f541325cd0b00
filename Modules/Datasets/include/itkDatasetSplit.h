#ifndef itkDatasetSplit_h
#define itkDatasetSplit_h

#include <cstdint>
#include <string>
#include <vector>

namespace itk
{
/** \class DatasetSplit
 * \brief Train / validation / test case lists, as the paper splits them, deterministic by seed and saved as JSON so
 * that a later run (or another model in an ablation) uses exactly the same cases.
 *
 * Schemes: `Public` (the paper's MSD/KiTS rule: 80 % train, 20 % validation, no test) and `Private` (30 % test, then
 * 80/20 of the rest). Cases are shuffled by a seeded Fisher-Yates over the sorted ids, with a generator whose
 * output is fixed by the C++ standard (std::mt19937_64), so a seed gives the same split everywhere.
 * \ingroup DivAttention
 */
class DatasetSplit
{
public:
  enum class Scheme
  {
    Public,
    Private
  };

  std::string              scheme;
  uint64_t                 seed = 0;
  std::vector<std::string> train;
  std::vector<std::string> validation;
  std::vector<std::string> test;

  /** Splits `ids` (any order; duplicates are an itk::ExceptionObject). At least one case goes to training. */
  static DatasetSplit
  Make(std::vector<std::string> ids, Scheme scheme, uint64_t seed);

  /** "public" or "private". */
  static Scheme
  ParseScheme(const std::string & text);

  /** Writes the split as JSON, atomically. */
  void
  Save(const std::string & path) const;

  /** Reads a split written by Save(); throws itk::ExceptionObject naming the file and the problem. */
  static DatasetSplit
  Load(const std::string & path);

  /** Parses split JSON text (Load's parser, exposed for fuzzing). */
  static DatasetSplit
  Parse(const std::string & jsonText, const std::string & sourceName);
};
} // namespace itk

#endif
