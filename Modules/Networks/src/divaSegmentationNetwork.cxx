#include "divaSegmentationNetwork.h"

#include <cstdio>
#include <sstream>
#include <stdexcept>

namespace diva
{
int64_t
CountParameters(const torch::nn::Module & module)
{
  int64_t count = 0;
  for (const auto & parameter : module.parameters())
  {
    count += parameter.numel();
  }
  return count;
}

void
CheckImageShape(const torch::Tensor & image, int64_t channels, int64_t divisor, const std::string & network)
{
  std::ostringstream problem;
  if (!image.defined())
  {
    problem << "the input image is undefined";
  }
  else if (image.dim() != 5)
  {
    problem << "the input image must be [N, C, D, H, W], got " << image.dim() << " dimensions " << image.sizes();
  }
  else if (image.size(1) != channels)
  {
    problem << "the input image has " << image.size(1) << " channels, the network was built for " << channels;
  }
  else
  {
    for (int axis = 2; axis < 5; ++axis)
    {
      if (image.size(axis) <= 0 || image.size(axis) % divisor != 0)
      {
        problem << "every spatial side of the input image must be a positive multiple of " << divisor << ", got "
                << image.sizes();
        break;
      }
    }
  }
  if (!problem.str().empty())
  {
    throw std::invalid_argument(network + ": " + problem.str());
  }
}

std::string
SettingText(const Settings & settings, const std::string & key)
{
  const auto found = settings.find(key);
  if (found == settings.end())
  {
    throw std::invalid_argument("network settings: the key '" + key + "' is missing");
  }
  return found->second;
}

int64_t
SettingInteger(const Settings & settings, const std::string & key)
{
  const auto  text = SettingText(settings, key);
  std::size_t used = 0;
  int64_t     value = 0;
  try
  {
    value = std::stoll(text, &used);
  }
  catch (const std::exception &)
  {
    used = 0;
  }
  if (used == 0 || used != text.size())
  {
    throw std::invalid_argument("network settings: '" + key + "' must be an integer, got '" + text + "'");
  }
  return value;
}

double
SettingReal(const Settings & settings, const std::string & key)
{
  const auto  text = SettingText(settings, key);
  std::size_t used = 0;
  double      value = 0;
  try
  {
    value = std::stod(text, &used);
  }
  catch (const std::exception &)
  {
    used = 0;
  }
  if (used == 0 || used != text.size())
  {
    throw std::invalid_argument("network settings: '" + key + "' must be a number, got '" + text + "'");
  }
  return value;
}

bool
SettingFlag(const Settings & settings, const std::string & key)
{
  const auto text = SettingText(settings, key);
  if (text == "true")
  {
    return true;
  }
  if (text == "false")
  {
    return false;
  }
  throw std::invalid_argument("network settings: '" + key + "' must be true or false, got '" + text + "'");
}

std::string
ToSettingText(double value)
{
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.17g", value);
  return buffer;
}

} // namespace diva
