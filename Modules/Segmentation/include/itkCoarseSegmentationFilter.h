#ifndef itkCoarseSegmentationFilter_h
#define itkCoarseSegmentationFilter_h

#include "itkDivAttentionMacros.h"
#include "itkImage.h"
#include "itkImageToImageFilter.h"
#include "itkSegmentationModelSupport.h"

#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>

namespace itk
{
/** \class CoarseSegmentationFilterEnums
 * \brief Enumerations of CoarseSegmentationFilter.
 * \ingroup DivAttention
 */
class CoarseSegmentationFilterEnums
{
public:
  /** Where the windows lie at the CT's border. */
  enum class WindowPlacement : uint8_t
  {
    /** As the model file's `window_placement` says stage 1 was trained (default; "inside-image" for files without
     * the record). */
    AsTrained = 0,
    /** Clamped inside the CT: a click near its border sits off-centre in its window. */
    InsideImage = 1,
    /** Up to half a window beyond the CT (read as air), so that the first window is centred on the click. */
    CentredOnClick = 2
  };
};

inline std::ostream &
operator<<(std::ostream & out, const CoarseSegmentationFilterEnums::WindowPlacement value)
{
  switch (value)
  {
    case CoarseSegmentationFilterEnums::WindowPlacement::AsTrained:
      return out << "AsTrained";
    case CoarseSegmentationFilterEnums::WindowPlacement::InsideImage:
      return out << "InsideImage";
    case CoarseSegmentationFilterEnums::WindowPlacement::CentredOnClick:
      return out << "CentredOnClick";
  }
  return out << "INVALID";
}

/** The placement named as the command-line tools and model files name it: "as-trained", "inside-image" or
 * "centred-on-click"; std::invalid_argument naming `option` for anything else. */
inline CoarseSegmentationFilterEnums::WindowPlacement
CoarseWindowPlacementFromName(const std::string & name, const std::string & option)
{
  using Placement = CoarseSegmentationFilterEnums::WindowPlacement;
  if (name == "as-trained")
  {
    return Placement::AsTrained;
  }
  if (name == "inside-image")
  {
    return Placement::InsideImage;
  }
  if (name == "centred-on-click")
  {
    return Placement::CentredOnClick;
  }
  throw std::invalid_argument(option + ": \"" + name + "\" is not as-trained, inside-image or centred-on-click");
}

/** \class CoarseSegmentationFilter
 * \brief Stage 1 of the pipeline: the coarse mUnet run on a region around the user's click.
 *
 * Inputs: the CT (input 0, any scalar pixel type, HU), the click map (SetClickMap: float, on the CT's grid, as
 * ClickDistanceTransformFilter makes it, encoded as the model file's click_encoding says) and, when the model takes
 * a third channel, the negative click map (SetNegativeClickMap; without one, such a model's third channel holds
 * ClickMapValueWithoutClicks of its click encoding, as in its training samples without negative clicks). The click
 * itself (SetClick, physical LPS) places the region. The model is a model file (SetModelFile, loaded onto SetDevice's
 * device) or an already loaded model (SetModel: shared and only read, so several pipelines in several threads may use
 * one; it runs on the device it was loaded on).
 *
 * Region (Documentation/Pipeline.md): the output grid has the model's target spacing and the CT's direction and
 * covers a cube of MaximumExtent mm centred on the click, clipped to the CT (never smaller than one window), so near
 * the CT's border the windows lie inside it and the click sits off-centre; with WindowPlacement CentredOnClick (or
 * AsTrained, the default, for a model file that says "centred-on-click") the grid reaches half a window beyond the CT
 * (read as air) and the first window is centred on the click wherever it lies.
 * The model runs first on one window of its patch size centred on the click (as far as the grid allows); while the
 * predicted object (probability >= GrowthThreshold) touches a face of the covered box that is not the grid's border,
 * the box grows by half a window on that side, and the new windows (on a fixed lattice with half-window steps) run as
 * well. Window predictions are blended with nnU-Net's Gaussian importance weights (sigma = 1/8 of the window). A 5 mm
 * node costs one window; a 25 cm liver grows to cover itself, up to MaximumExtent. Voxels no window reached hold 0.
 *
 * Each window is resampled from the CT and the click map (linear interpolation; CT voxels outside the CT are -1024
 * HU, click-map samples outside are clamped to its edge), clipped and normalised as the model file says, and run
 * once per GenerateData under torch::InferenceMode. Only the CT region under the output grid is requested.
 *
 * Output: the foreground probability (float) on the output grid; the whole grid is always computed.
 * Errors (itk::ExceptionObject naming the input): no model, an unreadable model file, a model whose role is
 * "refine", a model whose input channels differ from what is given, a click outside the CT, NaN in the CT.
 * \ingroup DivAttention
 */
template<typename TInputImage, typename TOutputImage = Image<float, 3>>
class ITK_TEMPLATE_EXPORT CoarseSegmentationFilter : public ImageToImageFilter<TInputImage, TOutputImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(CoarseSegmentationFilter);

  using Self = CoarseSegmentationFilter;
  using Superclass = ImageToImageFilter<TInputImage, TOutputImage>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;

  itkNewMacro(Self);
  itkDivAttentionTypeMacro(CoarseSegmentationFilter, ImageToImageFilter);

  static constexpr unsigned int ImageDimension = 3;
  static_assert(TInputImage::ImageDimension == 3 && TOutputImage::ImageDimension == 3, "3D images only");

  using InputImageType = TInputImage;
  using OutputImageType = TOutputImage;
  using ClickMapImageType = Image<float, 3>;
  using OutputImageRegionType = typename TOutputImage::RegionType;
  using PointType = Point<double, 3>;
  using ModelPointer = std::shared_ptr<diva::LoadedModel>;

  /** Distance map of the positive clicks on the CT's grid (required). */
  itkSetInputMacro(ClickMap, ClickMapImageType);
  itkGetInputMacro(ClickMap, ClickMapImageType);
  /** Distance map of the negative clicks (only for models with a third input channel; optional for them). */
  itkSetInputMacro(NegativeClickMap, ClickMapImageType);
  itkGetInputMacro(NegativeClickMap, ClickMapImageType);

  /** The click that places the region (physical LPS, mm). */
  itkSetMacro(Click, PointType);
  itkGetConstReferenceMacro(Click, PointType);

  /** The stage-1 model as a file, loaded on first use onto Device. */
  itkSetStringMacro(ModelFile);
  itkGetStringMacro(ModelFile);
  /** An already loaded stage-1 model (takes precedence over ModelFile). */
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

  /** Largest side (mm) of the region the filter may grow to; default 400 mm (a large liver). */
  itkSetMacro(MaximumExtent, double);
  itkGetConstMacro(MaximumExtent, double);

  /** Probability at and above which a voxel on a region face makes the region grow; default 0.5. */
  itkSetMacro(GrowthThreshold, double);
  itkGetConstMacro(GrowthThreshold, double);

  /** Grow the region by tiling when the object touches its faces (default on); off runs one window. */
  itkSetMacro(GrowRegion, bool);
  itkGetConstMacro(GrowRegion, bool);
  itkBooleanMacro(GrowRegion);

  using WindowPlacementEnum = CoarseSegmentationFilterEnums::WindowPlacement;

  /** Where the windows lie at the CT's border: AsTrained (default) follows the model file's `window_placement`, so a
   * stage 1 runs as it was trained; InsideImage clips the output grid to the CT itself (every window inside it, a
   * click near its border off-centre); CentredOnClick lets the grid reach up to half a window beyond the CT, CT
   * samples there being -1024 HU (air), so the first window is centred on the click. The bundled stage 1 was trained
   * inside the image (Documentation/Pipeline.md, "Windows at the CT's border"). */
  itkSetEnumMacro(WindowPlacement, WindowPlacementEnum);
  itkGetEnumMacro(WindowPlacement, WindowPlacementEnum);

  /** After GenerateOutputInformation(): whether the windows were kept inside the image (the placement resolved). */
  itkGetConstMacro(WindowsInsideImageUsed, bool);

  /** After Update(): windows run, and the device the model ran on ("cpu", "cuda:0"). */
  itkGetConstMacro(NumberOfWindows, unsigned int);
  itkGetStringMacro(DeviceUsed);

  /** The model in use (loads the model file if needed); itk::ExceptionObject on failure. */
  ModelPointer
  ResolveModel();

protected:
  CoarseSegmentationFilter();
  ~CoarseSegmentationFilter() override = default;

  void
  PrintSelf(std::ostream & os, Indent indent) const override;

  void
  VerifyPreconditions() ITKv5_CONST override;

  /** Output grid from the click, the model's spacing and patch size, and MaximumExtent. */
  void
  GenerateOutputInformation() override;

  /** Only the CT (and click-map) region under the output grid. */
  void
  GenerateInputRequestedRegion() override;

  /** The windows depend on each other's predictions: the whole output is computed at once. */
  void
  EnlargeOutputRequestedRegion(DataObject * output) override;

  void
  GenerateData() override;

private:
  /** Voxels of the coarse grid within which a click's first window start counts as a tie (rounded up): a click printed
   * with 9 significant digits lies within 1e-6 voxel of the computed one. */
  static constexpr double StartTieTolerance = 1e-4;

  ModelPointer        m_Model;
  std::string         m_ModelFile;
  std::string         m_Device{ "auto" };
  PointType           m_Click;
  double              m_MaximumExtent{ 400.0 };
  double              m_GrowthThreshold{ 0.5 };
  bool                m_GrowRegion{ true };
  WindowPlacementEnum m_WindowPlacement{ WindowPlacementEnum::AsTrained };
  bool                m_WindowsInsideImageUsed{ true };

  // Model loaded from m_ModelFile, kept until the file or device changes.
  ModelPointer m_FileModel;
  std::string  m_FileModelKey;

  unsigned int m_NumberOfWindows{ 0 };
  std::string  m_DeviceUsed;
};
} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkCoarseSegmentationFilter.hxx"
#endif

#endif
