#include "divaBatchRun.h"

#include "divaAtomicFile.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>

#ifdef __linux__
#  include <csignal>
#  include <sys/prctl.h>
#  include <sys/wait.h>
#  include <unistd.h>
#endif

namespace diva
{
namespace application
{
namespace
{
namespace fs = std::filesystem;

std::string
Trim(const std::string & text)
{
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos)
  {
    return {};
  }
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

// The fields of one CSV line (RFC 4180: a field in double quotes may hold commas; "" is a quote inside it).
std::vector<std::string>
SplitCsvLine(const std::string & line, const std::string & where)
{
  std::vector<std::string> fields;
  std::string              field;
  bool                     quoted = false;
  for (size_t i = 0; i < line.size(); ++i)
  {
    const char c = line[i];
    if (quoted)
    {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"')
      {
        field += '"';
        ++i;
      }
      else if (c == '"')
      {
        quoted = false;
      }
      else
      {
        field += c;
      }
    }
    else if (c == '"')
    {
      quoted = true;
    }
    else if (c == ',')
    {
      fields.push_back(Trim(field));
      field.clear();
    }
    else
    {
      field += c;
    }
  }
  if (quoted)
  {
    throw std::runtime_error(where + ": a quoted field is not closed");
  }
  fields.push_back(Trim(field));
  return fields;
}

// "Negative Clicks", "negative-clicks" -> "negative_clicks".
std::string
ColumnKey(const std::string & name)
{
  std::string key;
  for (const char c : name)
  {
    key += (c == ' ' || c == '-') ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return key;
}

std::vector<std::string>
SplitClicks(const std::string & text)
{
  std::vector<std::string> clicks;
  std::stringstream        stream(text);
  std::string              item;
  while (std::getline(stream, item, ';'))
  {
    clicks.push_back(Trim(item));
  }
  return clicks;
}

std::string
OneLine(std::string text)
{
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

std::string
CsvField(const std::string & text)
{
  if (text.find_first_of(",\"\n") == std::string::npos)
  {
    return text;
  }
  std::string quoted = "\"";
  for (const char c : text)
  {
    quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  }
  return quoted + "\"";
}

// Removes what a killed earlier run left while writing `output` (diva::WriteFileAtomically's temporaries for it).
// Only this case's temporaries: other processes of a sharded batch may be writing other cases in the same folder.
void
RemoveLeftoverTemporaries(const std::string & output)
{
  const fs::path    target(output);
  const std::string temporaryName = fs::path(diva::TemporaryPathFor(output)).filename().string();
  const std::string prefix = temporaryName.substr(0, temporaryName.find(".partial-") + std::string(".partial-").size());
  const fs::path    directory = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code   error;
  for (fs::directory_iterator entry(directory, error), end; !error && entry != end; entry.increment(error))
  {
    if (entry->path().filename().string().rfind(prefix, 0) == 0)
    {
      fs::remove(entry->path(), error);
    }
  }
}

std::string
Duration(double seconds)
{
  std::ostringstream text;
  const long         whole = std::lround(seconds);
  if (whole >= 3600)
  {
    text << whole / 3600 << " h " << std::setw(2) << std::setfill('0') << (whole % 3600) / 60 << " min";
  }
  else if (whole >= 60)
  {
    text << whole / 60 << " min " << std::setw(2) << std::setfill('0') << whole % 60 << " s";
  }
  else
  {
    text << whole << " s";
  }
  return text.str();
}
} // namespace

std::vector<BatchCase>
ReadBatchFile(const std::string & path)
{
  std::error_code error;
  if (!fs::is_regular_file(path, error))
  {
    throw std::runtime_error("--batch \"" + path + "\": no such file");
  }
  std::ifstream stream(path);
  if (!stream)
  {
    throw std::runtime_error("--batch \"" + path + "\": cannot be read");
  }
  const fs::path folder = fs::path(path).has_parent_path() ? fs::path(path).parent_path() : fs::path(".");
  auto           resolve = [&](const std::string & text) { return (folder / text).lexically_normal().string(); };

  std::map<std::string, size_t> column; // key -> position
  std::vector<BatchCase>        cases;
  std::map<std::string, size_t> outputs; // resolved output -> line
  std::string                   line;
  size_t                        number = 0;
  while (std::getline(stream, line))
  {
    ++number;
    const std::string where = "--batch \"" + path + "\" line " + std::to_string(number);
    if (Trim(line).empty() || Trim(line)[0] == '#')
    {
      continue;
    }
    const auto fields = SplitCsvLine(line, where);
    if (column.empty())
    {
      for (size_t k = 0; k < fields.size(); ++k)
      {
        const std::string key = ColumnKey(fields[k]);
        if (key != "image" && key != "clicks" && key != "negative_clicks" && key != "output")
        {
          throw std::runtime_error(where + ": unknown column \"" + fields[k] +
                                   "\" (the header names image, clicks, negative_clicks, output)");
        }
        if (!column.emplace(key, k).second)
        {
          throw std::runtime_error(where + ": column \"" + fields[k] + "\" appears twice");
        }
      }
      for (const std::string needed : { "image", "clicks", "output" })
      {
        if (column.count(needed) == 0)
        {
          throw std::runtime_error(where + ": the header has no \"" + needed +
                                   "\" column (the first line names the columns: image, clicks, negative_clicks, "
                                   "output)");
        }
      }
      continue;
    }
    if (fields.size() != column.size())
    {
      throw std::runtime_error(where + ": " + std::to_string(fields.size()) + " fields, the header has " +
                               std::to_string(column.size()) + " (quote a field that holds commas)");
    }
    BatchCase entry;
    entry.index = cases.size();
    entry.line = number;
    const std::string image = fields[column.at("image")], output = fields[column.at("output")];
    if (image.empty() || output.empty())
    {
      throw std::runtime_error(where + ": " + (image.empty() ? "the image" : "the output") + " is empty");
    }
    entry.image = resolve(image);
    entry.output = resolve(output);
    entry.clicks = SplitClicks(fields[column.at("clicks")]);
    if (column.count("negative_clicks") > 0)
    {
      entry.negativeClicks = SplitClicks(fields[column.at("negative_clicks")]);
    }
    const auto [previous, added] = outputs.emplace(entry.output, number);
    if (!added)
    {
      throw std::runtime_error(where + ": output \"" + output + "\" is also the output of line " +
                               std::to_string(previous->second));
    }
    cases.push_back(std::move(entry));
  }
  if (column.empty())
  {
    throw std::runtime_error("--batch \"" + path + "\": empty (the first line names the columns: image, clicks, " +
                             "negative_clicks, output)");
  }
  return cases;
}

BatchShard
ParseShard(const std::string & option, const std::string & text)
{
  const auto slash = text.find('/');
  auto       number = [&](const std::string & part, size_t & value)
  {
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos || part.size() > 9)
    {
      return false;
    }
    value = std::stoul(part);
    return true;
  };
  BatchShard shard;
  if (slash == std::string::npos || !number(text.substr(0, slash), shard.index) ||
      !number(text.substr(slash + 1), shard.count))
  {
    throw std::invalid_argument("option " + option + ": \"" + text + "\" is not K/N (shard K of N, 0-based)");
  }
  if (shard.count == 0 || shard.index >= shard.count)
  {
    throw std::invalid_argument("option " + option + ": \"" + text + "\": K must be in 0 .. N-1 (shards are 0-based)");
  }
  return shard;
}

std::string
DefaultSummaryPath(const std::string & batchPath, const BatchShard & shard)
{
  fs::path    path(batchPath);
  std::string stem = path.filename().string();
  if (path.extension() == ".csv")
  {
    stem = path.stem().string();
  }
  if (shard.count > 1)
  {
    stem += ".shard-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count);
  }
  return (path.parent_path() / (stem + ".summary.csv")).string();
}

BatchTotals
RunBatch(const std::vector<BatchCase> &                                            cases,
         const BatchShard &                                                        shard,
         const std::string &                                                       summaryPath,
         const std::function<std::size_t(const BatchCase &, std::string & note)> & segment,
         std::ostream &                                                            log)
{
  std::vector<const BatchCase *> mine;
  for (const auto & entry : cases)
  {
    if (entry.index % shard.count == shard.index)
    {
      mine.push_back(&entry);
    }
  }
  std::ostringstream summary;
  summary << "case,status,seconds,voxels,output,message\n";
  BatchTotals totals;
  double      workSeconds = 0.0;
  size_t      worked = 0, position = 0;
  for (const BatchCase * entry : mine)
  {
    ++position;
    std::string     status, message;
    size_t          voxels = 0;
    const auto      start = std::chrono::steady_clock::now();
    std::error_code error;
    if (fs::exists(entry->output, error))
    {
      status = "skipped";
      message = "output exists";
      ++totals.skipped;
    }
    else
    {
      try
      {
        RemoveLeftoverTemporaries(entry->output);
        voxels = segment(*entry, message);
        status = "done";
        ++totals.done;
      }
      catch (const std::exception & failure)
      {
        status = "failed";
        message = OneLine(failure.what());
        ++totals.failed;
      }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (status != "skipped")
    {
      workSeconds += seconds;
      ++worked;
    }
    std::ostringstream row;
    row << entry->index << "," << status << "," << std::fixed << std::setprecision(3) << seconds << "," << voxels << ","
        << CsvField(entry->output) << "," << CsvField(message) << "\n";
    summary << row.str();
    diva::WriteFileAtomically(summaryPath,
                              [&](const std::string & temporary)
                              {
                                std::ofstream file(temporary);
                                file << summary.str();
                                if (!file.flush())
                                {
                                  throw std::runtime_error("summary \"" + summaryPath + "\": cannot be written");
                                }
                              });

    const size_t left = mine.size() - position;
    log << "DivAttentionSegment: [" << position << "/" << mine.size() << "] case " << entry->index << " (line "
        << entry->line << ") " << status;
    if (status == "done")
    {
      log << " in " << std::fixed << std::setprecision(2) << seconds << " s, " << voxels << " voxels";
      if (!message.empty())
      {
        log << " (" << message << ")";
      }
    }
    else if (status == "failed")
    {
      log << ": " << message;
    }
    else
    {
      log << ": " << entry->output << " exists";
    }
    if (left > 0 && worked > 0)
    {
      log << "; ETA " << Duration(workSeconds / static_cast<double>(worked) * static_cast<double>(left));
    }
    log << std::endl;
  }
  if (mine.empty())
  {
    diva::WriteFileAtomically(summaryPath,
                              [&](const std::string & temporary) { std::ofstream(temporary) << summary.str(); });
  }
  return totals;
}

std::vector<std::string>
WithoutOptions(const std::vector<std::string> & arguments, const std::vector<std::string> & names)
{
  std::vector<std::string> kept;
  for (size_t k = 0; k < arguments.size(); ++k)
  {
    bool dropped = false;
    for (const auto & name : names)
    {
      if (arguments[k] == name)
      {
        ++k; // its value
        dropped = true;
        break;
      }
      if (arguments[k].rfind(name + "=", 0) == 0)
      {
        dropped = true;
        break;
      }
    }
    if (!dropped)
    {
      kept.push_back(arguments[k]);
    }
  }
  return kept;
}

BatchTotals
RunBatchInJobs(const std::string &              program,
               const std::vector<std::string> & arguments,
               const BatchShard &               shard,
               const BatchJobs &                jobs,
               const std::string &              summaryPath,
               std::ostream &                   log)
{
#ifdef __linux__
  const std::vector<std::string> common = WithoutOptions(arguments, { "--jobs", "--shard", "--summary", "--threads" });
  std::vector<std::string>       summaries;
  std::vector<std::pair<size_t, pid_t>> children; // job, pid
  std::vector<std::string>              problems;
  const pid_t                           parent = ::getpid();
  for (size_t j = 0; j < jobs.count; ++j)
  {
    const BatchShard  part{ shard.index + shard.count * j, shard.count * jobs.count };
    const std::string partText = std::to_string(part.index) + "/" + std::to_string(part.count);
    summaries.push_back(summaryPath + ".job-" + std::to_string(j) + "-of-" + std::to_string(jobs.count) + ".csv");
    std::vector<std::string> words{ program };
    words.insert(words.end(), common.begin(), common.end());
    words.insert(words.end(), { "--shard", partText, "--summary", summaries.back(), "--threads",
                                std::to_string(std::max(1, jobs.threadsEach)) });
    std::vector<char *> argv;
    for (auto & word : words)
    {
      argv.push_back(word.data());
    }
    argv.push_back(nullptr);
    const pid_t child = ::fork();
    if (child == 0)
    {
      // The job dies with its parent (a killed batch leaves no job running on); only exec-safe calls from here.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent)
      {
        ::_exit(127);
      }
      ::execv("/proc/self/exe", argv.data());
      ::_exit(127);
    }
    if (child < 0)
    {
      problems.push_back("job " + std::to_string(j) + " could not start");
      continue;
    }
    children.emplace_back(j, child);
    log << "DivAttentionSegment: job " << j << " of " << jobs.count << " (pid " << child << "): cases of shard "
        << partText << ", " << std::max(1, jobs.threadsEach) << " threads" << std::endl;
  }
  for (const auto & [j, child] : children)
  {
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR)
    {
    }
    if (WIFSIGNALED(status))
    {
      problems.push_back("job " + std::to_string(j) + " was killed by signal " + std::to_string(WTERMSIG(status)));
    }
    else if (WIFEXITED(status) && WEXITSTATUS(status) > 1)
    {
      problems.push_back("job " + std::to_string(j) + " ended with exit status " + std::to_string(WEXITSTATUS(status)) +
                         " (its message is above)");
    }
  }

  // Every job's rows, ordered by case, into one summary; the jobs' own files go.
  std::vector<std::pair<size_t, std::string>> rows;
  BatchTotals                                 totals;
  for (const auto & path : summaries)
  {
    std::ifstream file(path);
    std::string   line;
    bool          header = true;
    while (std::getline(file, line))
    {
      if (header || line.empty())
      {
        header = false;
        continue;
      }
      const auto fields = SplitCsvLine(line, "summary \"" + path + "\"");
      const auto status = fields.size() > 1 ? fields[1] : std::string();
      totals.done += status == "done" ? 1 : 0;
      totals.skipped += status == "skipped" ? 1 : 0;
      totals.failed += status == "failed" ? 1 : 0;
      rows.emplace_back(std::stoul(fields.at(0)), line);
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const auto & a, const auto & b) { return a.first < b.first; });
  diva::WriteFileAtomically(summaryPath,
                            [&](const std::string & temporary)
                            {
                              std::ofstream file(temporary);
                              file << "case,status,seconds,voxels,output,message\n";
                              for (const auto & row : rows)
                              {
                                file << row.second << "\n";
                              }
                              if (!file.flush())
                              {
                                throw std::runtime_error("summary \"" + summaryPath + "\": cannot be written");
                              }
                            });
  for (const auto & path : summaries)
  {
    std::error_code ignored;
    fs::remove(path, ignored);
  }
  if (!problems.empty())
  {
    std::string text = "--jobs:";
    for (const auto & problem : problems)
    {
      text += " " + problem + ";";
    }
    text.back() = ' ';
    throw std::runtime_error(text + "(the summary " + summaryPath + " holds the cases that ended)");
  }
  return totals;
#else
  (void)program;
  (void)arguments;
  (void)shard;
  (void)jobs;
  (void)summaryPath;
  (void)log;
  throw std::runtime_error("--jobs: several processes are supported on Linux only; use --shard K/N instead");
#endif
}

} // namespace application
} // namespace diva
