#ifndef divaBatchRun_h
#define divaBatchRun_h

#include <cstddef>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace diva
{
namespace application
{
/** \brief One case of a batch file (DivAttentionSegment --batch; Documentation/ClinicalIO.md).
 * \ingroup DivAttention */
struct BatchCase
{
  std::size_t              index = 0; ///< 0-based position among the file's cases (what --shard counts)
  std::size_t              line = 0;  ///< 1-based line in the batch file, for messages
  std::string              image;     ///< CT file or DICOM series directory (resolved against the batch file's folder)
  std::vector<std::string> clicks;    ///< "x,y,z" each; at least one
  std::vector<std::string> negativeClicks; ///< "x,y,z" each; may be empty
  std::string              output;         ///< the mask (resolved against the batch file's folder)
};

/** Reads a batch file: CSV (RFC 4180 quoting) whose first line names the columns image, clicks, output and optionally
 * negative_clicks (any order; "negative clicks" and "negative-clicks" are accepted too). Clicks are "x,y,z" points
 * separated by ';' (quote the field: it holds commas). Blank lines and lines starting with '#' are skipped. Relative
 * paths are taken relative to the batch file's directory. Throws std::runtime_error naming the file and the line for a
 * file that cannot be read, a missing or unknown column, a row with the wrong number of fields, an empty image or
 * output, an unterminated quote, or two cases with the same output. */
std::vector<BatchCase>
ReadBatchFile(const std::string & path);

/** \brief Which cases one process of a sharded batch takes: case i when i % count == index.
 * \ingroup DivAttention */
struct BatchShard
{
  std::size_t index = 0;
  std::size_t count = 1;
};

/** Parses "K/N" (0 <= K < N); throws std::invalid_argument naming `option` and the text otherwise. */
BatchShard
ParseShard(const std::string & option, const std::string & text);

/** The summary's default path: "<batch file without .csv>.summary.csv", or "...shard-K-of-N.summary.csv" when the
 * batch is sharded (N > 1), next to the batch file. */
std::string
DefaultSummaryPath(const std::string & batchPath, const BatchShard & shard);

/** \brief How many cases of a batch run were done, skipped (output already there) and failed.
 * \ingroup DivAttention */
struct BatchTotals
{
  std::size_t done = 0;
  std::size_t skipped = 0;
  std::size_t failed = 0;
};

/** Runs the cases of `shard` in file order. A case whose output exists is skipped (so a killed run resumes where it
 * stopped); before a case runs, the temporaries a killed earlier run left for its output are removed. `segment` does
 * one case: it writes the output atomically and returns the mask's voxel count (and may set `note`, the message of a
 * case done, e.g. that its mask is the like-intensity answer), or throws; a case that throws is
 * reported on `log` and the batch goes on. After each case `log` gets a progress line (case, status, time, and the
 * expected time to the end from the mean time of the cases run so far), and the summary CSV (case, status, seconds,
 * voxels, output, message; the cases of this run so far) is rewritten atomically at `summaryPath`. */
BatchTotals
RunBatch(const std::vector<BatchCase> &                                            cases,
         const BatchShard &                                                        shard,
         const std::string &                                                       summaryPath,
         const std::function<std::size_t(const BatchCase &, std::string & note)> & segment,
         std::ostream &                                                            log);

/** \brief How a batch is spread over processes of this program on one machine (DivAttentionSegment --jobs).
 * \ingroup DivAttention */
struct BatchJobs
{
  std::size_t count = 1;       ///< processes at once
  int         threadsEach = 1; ///< --threads of each
};

/** `arguments` without the options named in `names` (each given as "--name value" or "--name=value"). */
std::vector<std::string>
WithoutOptions(const std::vector<std::string> & arguments, const std::vector<std::string> & names);

/** Runs the cases of `shard` in `jobs.count` processes of this program (`program`, with `arguments`: the command line
 * without --jobs, --shard, --summary and --threads) at once. Job j is the shard K + N j of N J (K/N: `shard`, J:
 * jobs.count), so the jobs share the cases without overlap and take together exactly those of `shard`; each writes
 * its own summary next to `summaryPath`, and the summaries are merged into `summaryPath` (ordered by case) when all
 * jobs have ended. A job ends with its parent: killed, the run resumes as a single process does (outputs are written
 * atomically and existing ones skipped). Returns the merged totals; std::runtime_error names a job that could not
 * start or did not run to its end (a signal, or an exit status other than 0 and 1) after every job has ended. Linux
 * only (fork and exec of /proc/self/exe). */
BatchTotals
RunBatchInJobs(const std::string &              program,
               const std::vector<std::string> & arguments,
               const BatchShard &               shard,
               const BatchJobs &                jobs,
               const std::string &              summaryPath,
               std::ostream &                   log);

} // namespace application
} // namespace diva

#endif
