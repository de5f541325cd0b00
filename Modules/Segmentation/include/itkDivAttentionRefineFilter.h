#ifndef itkDivAttentionRefineFilter_h
#define itkDivAttentionRefineFilter_h

#include "itkDivAttentionMacros.h"
#include "itkImage.h"
#include "itkImageToImageFilter.h"
#include "itkSegmentationModelSupport.h"

#include <memory>
#include <string>

namespace itk
{
/** \class DivAttentionRefineFilter
 * \brief Stage 2 of the pipeline: the refinement network (a host with div-attention modules) on the crop.
 *
 * Input 0 is the patch PCACropResampleFilter produced (CT in HU on the patch grid, the model's patch size, e.g.
 * 96^3); when the model takes a second channel, SetClickMap gives the click map on the patch grid. The patch is
 * clipped and normalised as the model file says and run once per GenerateData under torch::InferenceMode.
 *
 * Output 0: the refined foreground probability on the patch's grid (same geometry).
 * Output 1 (GetAttentionOutput()): the div-attention maps for review, on the patch grid: each module's map (eq. 4) is
 * averaged over its channels, upsampled trilinearly to the patch size (align_corners false, as the module resizes),
 * divided by its own maximum (the maps are bounded by 1/sqrt(D H W) of their own level, so raw values of different
 * levels are not comparable), and the maps are averaged. 1 = where the scales disagree most; all 0 when the model
 * has no div-attention module (Documentation/Pipeline.md).
 *
 * Errors (itk::ExceptionObject naming the input): no model, an unreadable model file, a model whose role is
 * "coarse", a channel count the model does not take, a patch size that is not a multiple of the network's size
 * divisor, NaN in the patch.
 * \ingroup DivAttention
 */
template<typename TInputImage = Image<float, 3>, typename TOutputImage = Image<float, 3>>
class ITK_TEMPLATE_EXPORT DivAttentionRefineFilter : public ImageToImageFilter<TInputImage, TOutputImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(DivAttentionRefineFilter);

  using Self = DivAttentionRefineFilter;
  using Superclass = ImageToImageFilter<TInputImage, TOutputImage>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;

  itkNewMacro(Self);
  itkDivAttentionTypeMacro(DivAttentionRefineFilter, ImageToImageFilter);

  static_assert(TInputImage::ImageDimension == 3 && TOutputImage::ImageDimension == 3, "3D images only");

  using InputImageType = TInputImage;
  using OutputImageType = TOutputImage;
  using ClickMapImageType = Image<float, 3>;
  using ModelPointer = std::shared_ptr<diva::LoadedModel>;

  /** Click map on the patch grid (only for models with a second input channel). */
  itkSetInputMacro(ClickMap, ClickMapImageType);
  itkGetInputMacro(ClickMap, ClickMapImageType);

  /** The stage-2 model as a file, loaded on first use onto Device. */
  itkSetStringMacro(ModelFile);
  itkGetStringMacro(ModelFile);
  /** An already loaded stage-2 model (takes precedence over ModelFile; shared, only read). */
  virtual void
  SetModel(ModelPointer model)
  {
    if (model != m_Model)
    {
      m_Model = std::move(model);
      this->Modified();
    }
  }
  ModelPointer
  GetModel() const
  {
    return m_Model;
  }

  /** "auto" (default), "cpu", "cuda" or "cuda:N": where a model file is loaded. */
  itkSetStringMacro(Device);
  itkGetStringMacro(Device);

  /** Output 1: the averaged, upsampled div-attention map. */
  OutputImageType *
  GetAttentionOutput()
  {
    return this->GetOutput(1);
  }

  /** Compute output 1, the attention map (default on). Off, the network is asked for no maps (its div-attention
   * modules then skip writing them) and output 1 is all zeros; output 0 is the same. */
  itkSetMacro(ComputeAttentionMap, bool);
  itkGetConstMacro(ComputeAttentionMap, bool);
  itkBooleanMacro(ComputeAttentionMap);

  /** After Update(): how many attention maps the model returned, and the device it ran on. */
  itkGetConstMacro(NumberOfAttentionMaps, unsigned int);
  itkGetStringMacro(DeviceUsed);

  /** The model in use (loads the model file if needed); itk::ExceptionObject on failure. */
  ModelPointer
  ResolveModel();

protected:
  DivAttentionRefineFilter();
  ~DivAttentionRefineFilter() override = default;

  void
  PrintSelf(std::ostream & os, Indent indent) const override;

  /** The network sees the whole patch: whole input, whole outputs. */
  void
  GenerateInputRequestedRegion() override;
  void
  EnlargeOutputRequestedRegion(DataObject * output) override;

  void
  GenerateData() override;

private:
  ModelPointer m_Model;
  std::string  m_ModelFile;
  std::string  m_Device{ "auto" };

  ModelPointer m_FileModel;
  std::string  m_FileModelKey;

  bool         m_ComputeAttentionMap{ true };
  unsigned int m_NumberOfAttentionMaps{ 0 };
  std::string  m_DeviceUsed;
};
} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkDivAttentionRefineFilter.hxx"
#endif

#endif
