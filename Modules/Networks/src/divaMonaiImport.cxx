#include "divaMonaiImport.h"

#include "divaModelFile.h"

#include <torch/csrc/jit/serialization/import.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <fstream>
#include <iterator>
#include <stdexcept>

namespace diva
{
namespace
{
using NamedTensorList = std::vector<std::pair<std::string, torch::Tensor>>;

bool
TryTorchScript(const std::string & path, NamedTensorList & tensors)
{
  torch::jit::Module script;
  try
  {
    script = torch::jit::load(path, torch::kCPU);
  }
  catch (const std::exception &)
  {
    return false; // not TorchScript: try a pickled state dict
  }
  for (const auto & item : script.named_parameters(true))
  {
    tensors.emplace_back(item.name, item.value);
  }
  for (const auto & item : script.named_buffers(true))
  {
    tensors.emplace_back(item.name, item.value);
  }
  return true;
}

NamedTensorList
ReadPickledStateDict(const std::string & path)
{
  std::ifstream stream(path, std::ios::binary);
  if (!stream)
  {
    throw std::runtime_error("MONAI checkpoint '" + path + "': cannot be opened for reading");
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  c10::IValue             contents;
  try
  {
    contents = torch::jit::pickle_load(bytes);
  }
  catch (const std::exception & error)
  {
    throw std::runtime_error("MONAI checkpoint '" + path + "': neither TorchScript nor a torch.save file: " +
                             std::string(error.what()).substr(0, 200));
  }
  // Training scripts often nest the state dict one level down.
  for (int depth = 0; depth < 2 && contents.isGenericDict(); ++depth)
  {
    const auto dict = contents.toGenericDict();
    bool       nested = false;
    for (const char * key : { "state_dict", "model", "network" })
    {
      if (dict.contains(key) && dict.at(key).isGenericDict())
      {
        contents = dict.at(key);
        nested = true;
        break;
      }
    }
    if (!nested)
    {
      break;
    }
  }
  if (!contents.isGenericDict())
  {
    throw std::runtime_error("MONAI checkpoint '" + path + "': holds no state dict");
  }
  NamedTensorList tensors;
  for (const auto & entry : contents.toGenericDict())
  {
    if (entry.key().isString() && entry.value().isTensor())
    {
      tensors.emplace_back(entry.key().toStringRef(), entry.value().toTensor());
    }
  }
  return tensors;
}
} // namespace

bool
IsUnusedMonaiKey(const std::string & key)
{
  return key.find(".cross_attn.") != std::string::npos || key.find(".norm_cross_attn.") != std::string::npos;
}

std::size_t
ImportMonaiUnetr(UNETRImpl & network, const std::string & path)
{
  NamedTensorList tensors;
  if (!TryTorchScript(path, tensors))
  {
    tensors = ReadPickledStateDict(path);
  }
  for (auto & item : tensors)
  {
    if (item.first.rfind("module.", 0) == 0)
    {
      item.first.erase(0, 7);
    }
  }
  // Our div-attention modules are not MONAI's: give them their current values so only MONAI's names are checked.
  std::size_t ours = 0;
  if (network.div_attention)
  {
    for (const auto & item : network.div_attention->named_parameters())
    {
      tensors.emplace_back("div_attention." + item.key(), item.value().detach().clone());
      ++ours;
    }
  }
  return LoadNamedTensors(network, tensors, &IsUnusedMonaiKey, "MONAI checkpoint '" + path + "'") - ours;
}

} // namespace diva
