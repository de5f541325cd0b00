#ifndef itkImageTensorBridge_hxx
#define itkImageTensorBridge_hxx

#include "itkDivAttentionMacros.h"
#include "itkImageAlgorithm.h"
#include "itkImageRegionConstIterator.h"
#include "itkTensorImportImageContainer.h"

#include <sstream>

namespace itk
{
namespace ImageTensorBridgeDetail
{
template<typename TImage>
void
CheckImageForTensor(const TImage * image)
{
  static_assert(TImage::ImageDimension == 3, "the ITK <-> LibTorch bridge handles 3D images");
  static_assert(std::is_arithmetic<typename TImage::PixelType>::value, "the bridge handles scalar pixel types");
  if (image == nullptr)
  {
    itkGenericExceptionMacro(<< "DivAttention: ImageToTensor: the image is null");
  }
  const auto & buffered = image->GetBufferedRegion();
  const auto & largest = image->GetLargestPossibleRegion();
  if (buffered != largest)
  {
    itkGenericExceptionMacro(<< "DivAttention: ImageToTensor: the image's buffered region " << buffered.GetIndex()
                             << " + " << buffered.GetSize() << " is not its largest possible region "
                             << largest.GetIndex() << " + " << largest.GetSize()
                             << "; update the whole image (or extract the region) first");
  }
  if (buffered.GetNumberOfPixels() == 0 || image->GetBufferPointer() == nullptr)
  {
    itkGenericExceptionMacro(<< "DivAttention: ImageToTensor: the image has no pixels in memory");
  }
}

template<typename TImage>
std::vector<int64_t>
TensorShape(const TImage * image)
{
  const auto size = image->GetBufferedRegion().GetSize();
  return { 1, 1, static_cast<int64_t>(size[2]), static_cast<int64_t>(size[1]), static_cast<int64_t>(size[0]) };
}
} // namespace ImageTensorBridgeDetail

template<typename TImage>
torch::Tensor
ImageToTensor(const TImage * image)
{
  using PixelType = typename TImage::PixelType;
  static_assert(TorchPixelTraits<PixelType>::Shareable,
                "this pixel type has no LibTorch equivalent: use ImageToTensorAs() to convert");
  ImageTensorBridgeDetail::CheckImageForTensor(image);
  // The tensor's deleter holds a reference to the pixel container: the memory lives while the tensor does.
  typename TImage::PixelContainer::ConstPointer keepAlive = image->GetPixelContainer();
  auto *                                        data = const_cast<PixelType *>(image->GetBufferPointer());
  return torch::from_blob(
    data, ImageTensorBridgeDetail::TensorShape(image), [keepAlive](void *) mutable { keepAlive = nullptr; },
    torch::TensorOptions().dtype(TorchPixelTraits<PixelType>::ScalarType()).device(torch::kCPU));
}

template<typename TImage>
torch::Tensor
ImageToTensorAs(const TImage * image, torch::ScalarType dtype)
{
  using PixelType = typename TImage::PixelType;
  ImageTensorBridgeDetail::CheckImageForTensor(image);
  if constexpr (TorchPixelTraits<PixelType>::Shareable)
  {
    return ImageToTensor(image).to(dtype, /*non_blocking=*/false, /*copy=*/true);
  }
  else
  {
    // No LibTorch dtype holds these pixels: convert through double, which is exact for every integer up to 2^53.
    torch::Tensor result = torch::empty(ImageTensorBridgeDetail::TensorShape(image), torch::kFloat64);
    auto *        out = result.data_ptr<double>();
    const auto *  in = image->GetBufferPointer();
    const size_t  count = image->GetBufferedRegion().GetNumberOfPixels();
    for (size_t i = 0; i < count; ++i)
    {
      out[i] = static_cast<double>(in[i]);
    }
    return dtype == torch::kFloat64 ? result : result.to(dtype);
  }
}

template<typename TImage>
typename TImage::Pointer
TensorToImage(const torch::Tensor & tensor, const ImageBase<3> * reference)
{
  static_assert(TImage::ImageDimension == 3, "the ITK <-> LibTorch bridge handles 3D images");
  using PixelType = typename TImage::PixelType;
  static_assert(TorchPixelTraits<PixelType>::Shareable, "TensorToImage needs a pixel type LibTorch can hold");
  if (reference == nullptr)
  {
    itkGenericExceptionMacro(<< "DivAttention: TensorToImage: the reference image is null");
  }
  if (!tensor.defined())
  {
    itkGenericExceptionMacro(<< "DivAttention: TensorToImage: the tensor is undefined");
  }
  const int64_t rank = tensor.dim();
  if (rank < 3 || rank > 5)
  {
    itkGenericExceptionMacro(<< "DivAttention: TensorToImage: tensor of rank " << rank << " (shape " << tensor.sizes()
                             << "); expected (z,y,x), (1,z,y,x) or (1,1,z,y,x)");
  }
  for (int64_t d = 0; d < rank - 3; ++d)
  {
    if (tensor.size(d) != 1)
    {
      itkGenericExceptionMacro(<< "DivAttention: TensorToImage: tensor of shape " << tensor.sizes()
                               << " holds more than one image; select one batch item and channel first");
    }
  }
  const auto expectedType = TorchPixelTraits<PixelType>::ScalarType();
  if (tensor.scalar_type() != expectedType)
  {
    itkGenericExceptionMacro(<< "DivAttention: TensorToImage: tensor dtype " << tensor.scalar_type()
                             << " does not match the image pixel type (" << expectedType
                             << "); convert with tensor.to(...) first");
  }
  if (!tensor.is_contiguous())
  {
    itkGenericExceptionMacro(<< "DivAttention: TensorToImage: tensor of shape " << tensor.sizes() << " and strides "
                             << tensor.strides() << " is not contiguous; call .contiguous() first");
  }
  const auto    size = reference->GetLargestPossibleRegion().GetSize();
  const int64_t z = tensor.size(rank - 3), y = tensor.size(rank - 2), x = tensor.size(rank - 1);
  if (x != static_cast<int64_t>(size[0]) || y != static_cast<int64_t>(size[1]) || z != static_cast<int64_t>(size[2]))
  {
    itkGenericExceptionMacro(<< "DivAttention: TensorToImage: tensor spatial shape (z,y,x) = (" << z << "," << y << ","
                             << x << ") does not match the reference image size (x,y,z) = " << size);
  }
  torch::Tensor onCpu = tensor.device().is_cpu() ? tensor : tensor.to(torch::kCPU);

  auto container = TensorImportImageContainer<SizeValueType, PixelType>::New();
  container->SetTensor(onCpu);

  auto image = TImage::New();
  image->SetRegions(reference->GetLargestPossibleRegion());
  image->SetOrigin(reference->GetOrigin());
  image->SetSpacing(reference->GetSpacing());
  image->SetDirection(reference->GetDirection());
  image->SetPixelContainer(container);
  return image;
}

template<typename TImage>
torch::Tensor
ImagesToChannels(const std::vector<const TImage *> & images, double tolerance)
{
  if (images.empty())
  {
    itkGenericExceptionMacro(<< "DivAttention: ImagesToChannels: no images given");
  }
  std::vector<torch::Tensor> channels;
  channels.reserve(images.size());
  for (size_t c = 0; c < images.size(); ++c)
  {
    if (images[c] == nullptr)
    {
      itkGenericExceptionMacro(<< "DivAttention: ImagesToChannels: image " << c << " is null");
    }
    if (c > 0 && !SameGrid(images[0], images[c], tolerance))
    {
      itkGenericExceptionMacro(<< "DivAttention: ImagesToChannels: image " << c
                               << " does not lie on the grid of image 0 (size, origin, spacing or direction differ)");
    }
    channels.push_back(ImageToTensorAs(images[c], torch::kFloat32));
  }
  return StackChannels(channels);
}

} // namespace itk

#endif
