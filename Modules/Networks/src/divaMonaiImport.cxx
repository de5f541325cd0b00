#include "divaMonaiImport.h"

#include "divaModelFile.h"
#include "divaTorchSaveArchive.h"

#include <torch/csrc/jit/serialization/import.h>

#include <stdexcept>

namespace diva
{
namespace
{
using NamedTensorList = std::vector<std::pair<std::string, torch::Tensor>>;

NamedTensorList
ReadTorchScript(const std::string & path)
{
  torch::jit::Module script;
  try
  {
    script = torch::jit::load(path, torch::kCPU);
  }
  catch (const std::exception & error)
  {
    const std::string what = error.what();
    throw std::runtime_error("MONAI checkpoint '" + path +
                             "': a TorchScript archive LibTorch cannot load: " + what.substr(0, what.find('\n')));
  }
  NamedTensorList tensors;
  for (const auto & item : script.named_parameters(true))
  {
    tensors.emplace_back(item.name, item.value);
  }
  for (const auto & item : script.named_buffers(true))
  {
    tensors.emplace_back(item.name, item.value);
  }
  return tensors;
}

/** The string -> tensor entries of dict (none when it is not a dict). */
NamedTensorList
TensorEntries(const PickledValue & dict)
{
  NamedTensorList tensors;
  if (dict.kind == PickledValue::Kind::Dict)
  {
    for (const auto & entry : dict.entries)
    {
      if (entry.first->kind == PickledValue::Kind::Text && entry.second->kind == PickledValue::Kind::Tensor)
      {
        tensors.emplace_back(entry.first->text, entry.second->tensor);
      }
    }
  }
  return tensors;
}

/** The state dict in what torch.save wrote: the top-level dict of tensors, or one nested (up to two levels) under
 * "state_dict", "model" or "network", as training scripts save it with their epoch and optimizer. */
NamedTensorList
ReadTorchSaveStateDict(const std::string & path)
{
  PickledValue::Pointer root;
  try
  {
    root = ReadTorchSaveArchive(path);
  }
  catch (const std::runtime_error & error)
  {
    throw std::runtime_error(std::string("MONAI checkpoint ") + error.what());
  }
  auto contents = root;
  for (int depth = 0; depth < 3; ++depth)
  {
    auto tensors = TensorEntries(*contents);
    if (!tensors.empty())
    {
      return tensors;
    }
    PickledValue::Pointer nested;
    if (contents->kind == PickledValue::Kind::Dict)
    {
      for (const char * key : { "state_dict", "model", "network" })
      {
        for (const auto & entry : contents->entries)
        {
          if (!nested && entry.first->kind == PickledValue::Kind::Text && entry.first->text == key &&
              entry.second->kind == PickledValue::Kind::Dict)
          {
            nested = entry.second;
          }
        }
      }
    }
    if (!nested)
    {
      break;
    }
    contents = nested;
  }
  throw std::runtime_error("MONAI checkpoint '" + path + "': a torch.save file without a state dict: it holds a " +
                           root->Describe() +
                           " (expected a dict of named tensors, or one under 'state_dict', 'model' or 'network')");
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
  NamedTensorList tensors = IsTorchScriptArchive(path) ? ReadTorchScript(path) : ReadTorchSaveStateDict(path);
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
