#ifndef divaApplicationSupport_h
#define divaApplicationSupport_h

#include <array>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace diva
{
/** \brief What every DivAttention application shares.
 * \ingroup DivAttention */
namespace application
{
/** "DivAttention <version> (git <revision>), LibTorch <version>, ITK <version>". */
std::string
VersionText();

/** The OpenMP wait policy LibTorch's CPU threads use in this process, as the environment set it when the process
 * started (libgomp reads OMP_WAIT_POLICY once): "passive (OMP_WAIT_POLICY)", or "default (...)" when it is unset.
 * Documentation/Performance.md, "OpenMP waiting". */
std::string
OpenMPWaitPolicy();

/** Runs `body` after the run-time set-up (host allocator, thread budget), and turns every failure into one line on
 * stderr, "<name>: error: <what>", and a non-zero exit: 2 for a command-line usage error, 1 for anything else. */
/// Applications parse with TCLAP::CmdLine::setExceptionHandling(false), so that parse errors reach Run().
int
Run(const std::string & name, const std::function<int()> & body);

/** An outcome that ends a run without output but is not a bad input: Run() prints "<name>: <what>" (one line, no
 * "error:") and returns `status`. DivAttentionSegment's "nothing found at the click" is status 3. */
class ExitWithStatus : public std::runtime_error
{
public:
  ExitWithStatus(int status, const std::string & what) : std::runtime_error(what), m_Status(status) {}
  int
  Status() const
  {
    return m_Status;
  }

private:
  int m_Status;
};

/** Parses "a,b,c" into three finite numbers; throws std::invalid_argument naming `option` and the text. */
std::array<double, 3>
ParseTriple(const std::string & option, const std::string & text);

/** Parses "a,b" into two finite numbers; throws std::invalid_argument naming `option` and the text. */
std::array<double, 2>
ParsePair(const std::string & option, const std::string & text);

/** Parses "a,b,..." into numbers of type T (an empty text gives an empty list); throws std::invalid_argument naming
 * `option` and the text. */
template<typename T>
std::vector<T>
ParseList(const std::string & option, const std::string & text)
{
  std::vector<T>    values;
  std::stringstream stream(text);
  std::string       item;
  while (std::getline(stream, item, ','))
  {
    std::istringstream parse(item);
    T                  value{};
    if (!(parse >> value) || !parse.eof())
    {
      throw std::invalid_argument("option " + option + ": \"" + text + "\" is not a comma-separated list of numbers");
    }
    values.push_back(value);
  }
  return values;
}

} // namespace application
} // namespace diva

#endif
