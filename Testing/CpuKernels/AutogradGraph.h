#ifndef AutogradGraph_h
#define AutogradGraph_h

// What a test can ask of the autograd graph behind a tensor: which operations (nodes) recorded it.
#include <torch/torch.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace diva::testing
{
/** Every node of the autograd graph that produced `output`, by name (custom functions by their demangled type). */
inline std::vector<std::string>
GraphNodeNames(const torch::Tensor & output)
{
  std::vector<std::string>                names;
  std::vector<torch::autograd::Node *>    pending{ output.grad_fn().get() };
  std::set<const torch::autograd::Node *> seen;
  while (!pending.empty())
  {
    auto * node = pending.back();
    pending.pop_back();
    if (node == nullptr || !seen.insert(node).second)
    {
      continue;
    }
    names.push_back(node->name());
    for (const auto & edge : node->next_edges())
    {
      pending.push_back(edge.function.get());
    }
  }
  return names;
}

/** How many nodes of that graph have `fragment` in their name. */
inline std::size_t
CountGraphNodes(const torch::Tensor & output, const std::string & fragment)
{
  const auto names = GraphNodeNames(output);
  return static_cast<std::size_t>(std::count_if(
    names.begin(), names.end(), [&](const std::string & name) { return name.find(fragment) != std::string::npos; }));
}

} // namespace diva::testing

#endif
