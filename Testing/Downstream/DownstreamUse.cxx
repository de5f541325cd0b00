// Uses the installed DivAttention: an ITK image through the bridge into LibTorch and back.
#include "itkDivAttentionRuntime.h"
#include "itkImageTensorBridge.h"

#include <iostream>

int
main()
{
  itk::DivAttentionRuntime::Initialize();
  using ImageType = itk::Image<float, 3>;
  auto image = ImageType::New();
  image->SetRegions(ImageType::SizeType{ { 4, 3, 2 } });
  image->Allocate();
  image->FillBuffer(2.0f);
  const torch::Tensor doubled = itk::ImageToTensor(image.GetPointer()) * 2;
  auto                back = itk::TensorToImage<ImageType>(doubled.contiguous(), image.GetPointer());
  const float         value = back->GetPixel({ { 3, 2, 1 } });
  std::cout << "downstream: pixel " << value << '\n';
  return value == 4.0f ? 0 : 1;
}
