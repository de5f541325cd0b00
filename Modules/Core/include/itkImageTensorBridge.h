#ifndef itkImageTensorBridge_h
#define itkImageTensorBridge_h

#include "itkImage.h"
#include "itkImageBase.h"
#include "itkTorchPixelTraits.h"

#include <torch/types.h>

#include <vector>

namespace itk
{
/** \file
 * \brief Where ITK images and LibTorch tensors meet (Documentation/Conventions.md).
 *
 * Axis convention, in one sentence: a 3D itk::Image's buffer stores x fastest, then y, then z, so the same memory is
 * the contiguous tensor of shape (N, C, D, H, W) = (1, 1, z, y, x), and tensor element [0][0][k][j][i] is the pixel
 * at index (i, j, k). Physical geometry (origin, spacing, direction; LPS as everywhere in ITK) stays with the images:
 * a tensor has none, so TensorToImage() takes it from a reference image.
 * \ingroup DivAttention
 */

/** Views the buffer of a 3D scalar image as a (1, 1, z, y, x) CPU tensor, without copying. The tensor keeps the
 * image's pixel container alive, and writes through the tensor are seen in the image.
 * Throws itk::ExceptionObject for a null image, an empty buffer, or a buffered region that is not the largest
 * possible region (the tensor would silently stand for a part of the image). */
template<typename TImage>
torch::Tensor
ImageToTensor(const TImage * image);

/** Copies a 3D scalar image of any pixel type into a new (1, 1, z, y, x) tensor of `dtype` (e.g. unsigned short CT
 * to float). Same refusals as ImageToTensor(). */
template<typename TImage>
torch::Tensor
ImageToTensorAs(const TImage * image, torch::ScalarType dtype);

/** Returns an image of type TImage on the grid of `reference` (size, origin, spacing, direction) whose pixels are the
 * tensor's. Accepts shapes (z, y, x), (1, z, y, x) and (1, 1, z, y, x) matching the reference's size. A contiguous
 * CPU tensor of TImage's pixel dtype is shared, not copied; a CUDA tensor is copied to the CPU first.
 * Throws itk::ExceptionObject for an undefined, non-contiguous, wrong-dtype, wrong-rank or wrong-shape tensor. */
template<typename TImage>
typename TImage::Pointer
TensorToImage(const torch::Tensor & tensor, const ImageBase<3> * reference);

/** Stacks (1, 1, z, y, x) tensors (e.g. CT and click map) along the channel axis into (1, C, z, y, x). Copies.
 * Throws itk::ExceptionObject when shapes, dtypes or devices differ. */
torch::Tensor
StackChannels(const std::vector<torch::Tensor> & channels);

/** Stacks (1, C, z, y, x) tensors into a batch (N, C, z, y, x). Copies. Same refusals as StackChannels(). */
torch::Tensor
StackBatch(const std::vector<torch::Tensor> & samples);

/** Images on one physical grid (size, origin, spacing, direction within `tolerance` of a voxel) into one
 * (1, C, z, y, x) float tensor; throws itk::ExceptionObject naming the first image whose grid differs. */
template<typename TImage>
torch::Tensor
ImagesToChannels(const std::vector<const TImage *> & images, double tolerance = 1e-4);

/** Whether two images lie on the same physical grid, to `tolerance` relative to the spacing. */
bool
SameGrid(const ImageBase<3> * a, const ImageBase<3> * b, double tolerance = 1e-4);

} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkImageTensorBridge.hxx"
#endif

#endif
