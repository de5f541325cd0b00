#include "divaModelFile.h"

#include "divaAtomicFile.h"
#include "divaESPNet3D.h"
#include "divaMUnet.h"
#include "divaUNETR.h"

#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/nn/module.h>

#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <stdexcept>

namespace diva
{
namespace
{
constexpr const char * FormatName = "divattention-model";
constexpr int64_t      FormatVersion = 1;

using TextDict = c10::Dict<std::string, std::string>;

TextDict
ToDict(const Settings & settings)
{
  TextDict dict;
  for (const auto & [key, value] : settings)
  {
    dict.insert(key, value);
  }
  return dict;
}

Settings
ToSettings(const c10::IValue & value, const std::string & what)
{
  if (!value.isGenericDict())
  {
    throw std::runtime_error(what + " is not a dictionary");
  }
  Settings settings;
  for (const auto & entry : value.toGenericDict())
  {
    if (!entry.key().isString() || !entry.value().isString())
    {
      throw std::runtime_error(what + " holds a non-text entry");
    }
    settings[entry.key().toStringRef()] = entry.value().toStringRef();
  }
  return settings;
}

std::string
Join(const std::vector<std::string> & items)
{
  std::string text;
  for (const auto & item : items)
  {
    text += (text.empty() ? "" : "\n") + item;
  }
  return text;
}

std::vector<std::string>
Split(const std::string & text)
{
  std::vector<std::string> items;
  std::istringstream       stream(text);
  for (std::string line; std::getline(stream, line);)
  {
    items.push_back(line);
  }
  return items;
}

Settings
DescribeToSettings(const ModelDescription & d)
{
  const auto & p = d.preprocessing;
  Settings     s;
  s["preset"] = d.preset;
  s["role"] = d.role;
  s["input_channels"] = Join(d.inputChannels);
  s["preprocessing.clip_minimum"] = ToSettingText(p.clipMinimum);
  s["preprocessing.clip_maximum"] = ToSettingText(p.clipMaximum);
  s["preprocessing.normalization"] = p.normalization;
  s["preprocessing.mean"] = ToSettingText(p.mean);
  s["preprocessing.standard_deviation"] = ToSettingText(p.standardDeviation);
  for (int axis = 0; axis < 3; ++axis)
  {
    s["preprocessing.target_spacing." + std::to_string(axis)] = ToSettingText(p.targetSpacing[axis]);
    s["preprocessing.patch_size." + std::to_string(axis)] = ToSettingText(p.patchSize[axis]);
  }
  s["preprocessing.click_encoding"] = p.clickEncoding;
  s["provenance.version"] = d.provenance.version;
  s["provenance.training_command"] = d.provenance.trainingCommand;
  s["provenance.data"] = d.provenance.data;
  s["provenance.date"] = d.provenance.date;
  return s;
}

ModelDescription
DescriptionFromSettings(const Settings & s)
{
  ModelDescription d;
  auto &           p = d.preprocessing;
  d.preset = SettingText(s, "preset");
  // Optional: files written before roles existed have none.
  const auto role = s.find("role");
  d.role = role == s.end() ? std::string("unknown") : role->second;
  d.inputChannels = Split(SettingText(s, "input_channels"));
  p.clipMinimum = SettingReal(s, "preprocessing.clip_minimum");
  p.clipMaximum = SettingReal(s, "preprocessing.clip_maximum");
  p.normalization = SettingText(s, "preprocessing.normalization");
  p.mean = SettingReal(s, "preprocessing.mean");
  p.standardDeviation = SettingReal(s, "preprocessing.standard_deviation");
  for (int axis = 0; axis < 3; ++axis)
  {
    p.targetSpacing[axis] = SettingReal(s, "preprocessing.target_spacing." + std::to_string(axis));
    p.patchSize[axis] = SettingInteger(s, "preprocessing.patch_size." + std::to_string(axis));
  }
  p.clickEncoding = SettingText(s, "preprocessing.click_encoding");
  d.provenance.version = SettingText(s, "provenance.version");
  d.provenance.trainingCommand = SettingText(s, "provenance.training_command");
  d.provenance.data = SettingText(s, "provenance.data");
  d.provenance.date = SettingText(s, "provenance.date");
  return d;
}

std::vector<std::pair<std::string, torch::Tensor>>
NamedTensors(const torch::nn::Module & network)
{
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto & item : network.named_parameters())
  {
    tensors.emplace_back(item.key(), item.value());
  }
  for (const auto & item : network.named_buffers())
  {
    tensors.emplace_back(item.key(), item.value());
  }
  return tensors;
}

std::vector<char>
ReadBytes(const std::string & path)
{
  std::ifstream stream(path, std::ios::binary);
  if (!stream)
  {
    throw std::runtime_error("model file '" + path + "': cannot be opened for reading");
  }
  return std::vector<char>(std::istreambuf_iterator<char>(stream), std::istreambuf_iterator<char>());
}
} // namespace

std::shared_ptr<SegmentationNetworkImpl>
CreateNetwork(const Settings & architecture)
{
  const auto name = SettingText(architecture, "architecture");
  if (name == "UNETR")
  {
    return std::make_shared<UNETRImpl>(UNETROptions::FromSettings(architecture));
  }
  if (name == "mUnet")
  {
    return std::make_shared<MUnetImpl>(MUnetOptions::FromSettings(architecture));
  }
  if (name == "ESPNet3D")
  {
    return std::make_shared<ESPNet3DImpl>(ESPNet3DOptions::FromSettings(architecture));
  }
  throw std::invalid_argument("CreateNetwork: unknown architecture '" + name + "' (expected UNETR, mUnet or ESPNet3D)");
}

std::size_t
LoadNamedTensors(torch::nn::Module &                                        network,
                 const std::vector<std::pair<std::string, torch::Tensor>> & tensors,
                 bool (*ignore)(const std::string &),
                 const std::string & source)
{
  std::map<std::string, torch::Tensor> targets;
  for (const auto & [name, tensor] : NamedTensors(network))
  {
    targets.emplace(name, tensor);
  }
  std::vector<std::string> unexpected;
  std::size_t              copied = 0;
  torch::NoGradGuard       noGrad;
  for (const auto & [name, tensor] : tensors)
  {
    if (ignore && ignore(name))
    {
      continue;
    }
    const auto target = targets.find(name);
    if (target == targets.end())
    {
      unexpected.push_back(name);
      continue;
    }
    if (target->second.sizes() != tensor.sizes())
    {
      std::ostringstream message;
      message << source << ": '" << name << "' has shape " << tensor.sizes() << ", the network expects "
              << target->second.sizes();
      throw std::runtime_error(message.str());
    }
    target->second.copy_(tensor);
    targets.erase(target);
    ++copied;
  }
  if (!unexpected.empty() || !targets.empty())
  {
    std::ostringstream message;
    message << source << ": the weights do not match the network:";
    if (!targets.empty())
    {
      message << " " << targets.size() << " missing (first '" << targets.begin()->first << "')";
    }
    if (!unexpected.empty())
    {
      message << " " << unexpected.size() << " unexpected (first '" << unexpected.front() << "')";
    }
    throw std::runtime_error(message.str());
  }
  return copied;
}

void
SaveModel(const std::string & path, SegmentationNetworkImpl & network, const ModelDescription & description)
{
  if (!description.inputChannels.empty() &&
      static_cast<int64_t>(description.inputChannels.size()) != network.GetInputChannels())
  {
    throw std::invalid_argument("SaveModel: the description names " + std::to_string(description.inputChannels.size()) +
                                " input channels, the network has " + std::to_string(network.GetInputChannels()));
  }
  c10::Dict<std::string, torch::Tensor> weights;
  for (const auto & [name, tensor] : NamedTensors(network))
  {
    weights.insert(name, tensor.detach().to(torch::kCPU).contiguous().clone());
  }
  c10::impl::GenericDict file(c10::StringType::get(), c10::AnyType::get());
  file.insert("format", std::string(FormatName));
  file.insert("format_version", FormatVersion);
  file.insert("architecture", ToDict(network.GetSettings()));
  file.insert("description", ToDict(DescribeToSettings(description)));
  file.insert("state_dict", weights);
  const auto bytes = torch::jit::pickle_save(file);

  // Atomically: a reader (or a crash mid-write) sees the old model file or the complete new one, never a part.
  try
  {
    WriteFileAtomically(path,
                        [&](const std::string & temporary)
                        {
                          std::ofstream stream(temporary, std::ios::binary | std::ios::trunc);
                          stream.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
                          stream.close();
                          if (!stream)
                          {
                            throw std::runtime_error("cannot write '" + temporary + "'");
                          }
                        });
  }
  catch (const std::exception & error)
  {
    throw std::runtime_error("SaveModel: cannot write the model file '" + path + "': " + error.what());
  }
}

LoadedModel
LoadModel(const std::string & path, const torch::Device & device)
{
  const auto  bytes = ReadBytes(path);
  c10::IValue contents;
  const auto  source = "model file '" + path + "'";
  try
  {
    contents = torch::jit::pickle_load(bytes);
  }
  catch (const std::exception & error)
  {
    throw std::runtime_error(source + ": not a readable model file (truncated or of another kind): " +
                             std::string(error.what()).substr(0, 200));
  }
  if (!contents.isGenericDict())
  {
    throw std::runtime_error(source + ": not a DivAttention model file (no top-level dictionary)");
  }
  const auto dict = contents.toGenericDict();
  for (const char * key : { "format", "format_version", "architecture", "description", "state_dict" })
  {
    if (!dict.contains(key))
    {
      throw std::runtime_error(source + ": not a DivAttention model file (no '" + key + "' entry)");
    }
  }
  if (!dict.at("format").isString() || dict.at("format").toStringRef() != FormatName)
  {
    throw std::runtime_error(source + ": not a DivAttention model file (format is not '" + FormatName + "')");
  }
  if (!dict.at("format_version").isInt() || dict.at("format_version").toInt() > FormatVersion)
  {
    throw std::runtime_error(source + ": format version newer than this program reads (" +
                             std::to_string(FormatVersion) + ")");
  }

  LoadedModel model;
  try
  {
    model.network = CreateNetwork(ToSettings(dict.at("architecture"), "architecture"));
    model.description = DescriptionFromSettings(ToSettings(dict.at("description"), "description"));
  }
  catch (const std::exception & error)
  {
    throw std::runtime_error(source + ": " + error.what());
  }
  if (!dict.at("state_dict").isGenericDict())
  {
    throw std::runtime_error(source + ": the state_dict entry is not a dictionary");
  }
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto & entry : dict.at("state_dict").toGenericDict())
  {
    if (!entry.key().isString() || !entry.value().isTensor())
    {
      throw std::runtime_error(source + ": the state_dict holds an entry that is not a named tensor");
    }
    tensors.emplace_back(entry.key().toStringRef(), entry.value().toTensor());
  }
  LoadNamedTensors(*model.network, tensors, nullptr, source);
  model.network->to(device);
  model.network->eval();
  return model;
}

} // namespace diva
