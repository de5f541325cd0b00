#ifndef itkTorchPixelTraits_h
#define itkTorchPixelTraits_h

#include <torch/types.h>

#include <cstdint>
#include <type_traits>

namespace itk
{
/** \class TorchPixelTraits
 * \brief Which torch::ScalarType holds an ITK scalar pixel type bit for bit, if any.
 *
 * LibTorch 1.13 has float, double, int8, uint8, int16, int32 and int64, so those pixel types can share memory with
 * a tensor; other types (unsigned short, unsigned int, ...) must be converted by ImageToTensorAs().
 * \ingroup DivAttention
 */
template<typename TPixel>
struct TorchPixelTraits
{
  static constexpr bool IsFloating = std::is_same<TPixel, float>::value || std::is_same<TPixel, double>::value;
  static constexpr bool IsSignedInteger =
    std::is_integral<TPixel>::value && std::is_signed<TPixel>::value && !std::is_same<TPixel, bool>::value;
  static constexpr bool Shareable =
    IsFloating ||
    (IsSignedInteger && (sizeof(TPixel) == 1 || sizeof(TPixel) == 2 || sizeof(TPixel) == 4 || sizeof(TPixel) == 8)) ||
    (std::is_integral<TPixel>::value && std::is_unsigned<TPixel>::value && sizeof(TPixel) == 1 &&
     !std::is_same<TPixel, bool>::value);

  static torch::ScalarType
  ScalarType()
  {
    static_assert(Shareable, "this pixel type has no LibTorch equivalent; use ImageToTensorAs() to convert");
    if (std::is_same<TPixel, float>::value)
    {
      return torch::kFloat32;
    }
    if (std::is_same<TPixel, double>::value)
    {
      return torch::kFloat64;
    }
    if (!IsSignedInteger)
    {
      return torch::kUInt8;
    }
    switch (sizeof(TPixel))
    {
      case 1:
        return torch::kInt8;
      case 2:
        return torch::kInt16;
      case 4:
        return torch::kInt32;
      default:
        return torch::kInt64;
    }
  }
};
} // namespace itk

#endif
