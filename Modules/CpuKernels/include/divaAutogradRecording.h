#ifndef divaAutogradRecording_h
#define divaAutogradRecording_h

#include <c10/core/GradMode.h>
#include <torch/types.h>

namespace diva
{
/** Whether autograd would record an operation on these operands: grad mode is on and any defined operand requires a
 * gradient. The toolkit's inference-only kernels run only where this is false. \ingroup DivAttention */
template<typename... Tensors>
bool
AutogradRecords(const Tensors &... operands)
{
  return c10::GradMode::is_enabled() && ((operands.defined() && operands.requires_grad()) || ...);
}

} // namespace diva

#endif
