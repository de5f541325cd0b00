#ifndef itkTensorImportImageContainer_h
#define itkTensorImportImageContainer_h

#include "itkDivAttentionMacros.h"
#include "itkImportImageContainer.h"

#include <torch/types.h>

namespace itk
{
/** \class TensorImportImageContainer
 * \brief An image pixel container that views the memory of a CPU tensor and keeps the tensor alive.
 *
 * Lets TensorToImage() hand back an itk::Image without copying: the image's buffer is the tensor's storage, and the
 * storage lives as long as either the tensor or the image does. The container never frees that memory itself; if ITK
 * reallocates the container (Reserve, Squeeze), it gets memory of its own and the tensor is simply released.
 * \ingroup DivAttention
 */
template<typename TElementIdentifier, typename TElement>
class TensorImportImageContainer : public ImportImageContainer<TElementIdentifier, TElement>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(TensorImportImageContainer);

  using Self = TensorImportImageContainer;
  using Superclass = ImportImageContainer<TElementIdentifier, TElement>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;

  itkNewMacro(Self);
  itkDivAttentionTypeMacro(TensorImportImageContainer, ImportImageContainer);

  /** Views `tensor` (CPU, contiguous, dtype matching TElement: checked by the caller). */
  void
  SetTensor(const torch::Tensor & tensor)
  {
    m_Tensor = tensor;
    this->SetImportPointer(static_cast<TElement *>(tensor.data_ptr()), static_cast<TElementIdentifier>(tensor.numel()),
                           /*LetContainerManageMemory=*/false);
  }

  const torch::Tensor &
  GetTensor() const
  {
    return m_Tensor;
  }

protected:
  TensorImportImageContainer() = default;
  ~TensorImportImageContainer() override = default;

  void
  PrintSelf(std::ostream & os, Indent indent) const override
  {
    Superclass::PrintSelf(os, indent);
    os << indent << "Tensor: " << (m_Tensor.defined() ? m_Tensor.sizes() : c10::IntArrayRef{}) << std::endl;
  }

private:
  torch::Tensor m_Tensor;
};
} // namespace itk

#endif
