#include "divaApplicationSupport.h"

#include "divaVersion.h"
#include "itkDivAttentionRuntime.h"
#include "itkMacro.h"
#include "itkVersion.h"

#include <tclap/CmdLine.h>
#include <torch/version.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace diva
{
namespace application
{
namespace
{
// One line: a message that spans lines (ITK's often do) is joined, so logs and scripts get one line per failure.
std::string
OneLine(std::string text)
{
  for (char & c : text)
  {
    if (c == '\n' || c == '\r')
    {
      c = ' ';
    }
  }
  while (!text.empty() && text.back() == ' ')
  {
    text.pop_back();
  }
  return text;
}

std::vector<double>
ParseNumbers(const std::string & option, const std::string & text, size_t expected)
{
  std::vector<double> values;
  std::stringstream   stream(text);
  std::string         item;
  while (std::getline(stream, item, ','))
  {
    char *       end = nullptr;
    const double value = std::strtod(item.c_str(), &end);
    if (item.empty() || end == item.c_str() || *end != '\0' || !std::isfinite(value))
    {
      throw std::invalid_argument("option " + option + ": \"" + text + "\" is not " + std::to_string(expected) +
                                  " comma-separated numbers");
    }
    values.push_back(value);
  }
  if (values.size() != expected)
  {
    throw std::invalid_argument("option " + option + ": \"" + text + "\" is not " + std::to_string(expected) +
                                " comma-separated numbers");
  }
  return values;
}
} // namespace

std::string
VersionText()
{
  std::ostringstream text;
  text << "DivAttention " << DIVATTENTION_VERSION << " (git " << DIVATTENTION_GIT_REVISION << "), LibTorch "
       << TORCH_VERSION << ", ITK " << itk::Version::GetITKVersion();
  return text.str();
}

std::string
OpenMPWaitPolicy()
{
  const char * policy = std::getenv("OMP_WAIT_POLICY");
  if (policy == nullptr)
  {
    return "default (OMP_WAIT_POLICY unset: idle workers spin before they sleep)";
  }
  std::string text = policy;
  for (char & c : text)
  {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return text + " (OMP_WAIT_POLICY)";
}

int
Run(const std::string & name, const std::function<int()> & body)
{
  try
  {
    itk::DivAttentionRuntime::Initialize();
    return body();
  }
  catch (const TCLAP::ExitException & exit) // --help, --version: TCLAP has printed what was asked
  {
    return exit.getExitStatus();
  }
  catch (const TCLAP::ArgException & error)
  {
    const std::string argument = error.argId() == " " ? std::string() : error.argId() + ": ";
    std::cerr << name << ": error: " << OneLine(argument + error.error()) << " (see --help)" << std::endl;
    return 2;
  }
  catch (const itk::ExceptionObject & error)
  {
    std::string       description = error.GetDescription();
    const std::string itkPrefix = "ITK ERROR: ";
    if (description.rfind(itkPrefix, 0) == 0)
    {
      description.erase(0, itkPrefix.size());
    }
    std::cerr << name << ": error: " << OneLine(description) << std::endl;
  }
  catch (const ExitWithStatus & outcome)
  {
    std::cerr << name << ": " << OneLine(outcome.what()) << std::endl;
    return outcome.Status();
  }
  catch (const std::exception & error)
  {
    std::cerr << name << ": error: " << OneLine(error.what()) << std::endl;
  }
  return 1;
}

std::array<double, 3>
ParseTriple(const std::string & option, const std::string & text)
{
  const auto v = ParseNumbers(option, text, 3);
  return { v[0], v[1], v[2] };
}

std::array<double, 2>
ParsePair(const std::string & option, const std::string & text)
{
  const auto v = ParseNumbers(option, text, 2);
  return { v[0], v[1] };
}

} // namespace application
} // namespace diva
