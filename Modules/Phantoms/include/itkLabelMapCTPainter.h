#ifndef itkLabelMapCTPainter_h
#define itkLabelMapCTPainter_h

#include "itkDivAttentionMacros.h"
#include "itkImage.h"
#include "itkObject.h"
#include "itkObjectFactory.h"

#include <cstdint>
#include <map>

namespace itk
{
/** \class LabelMapCTPainter
 * \brief Paints a real label map (real anatomy) into a CT-like volume (synthetic intensities).
 *
 * Each label gets its tissue's HU (a table; the default is for AMOS-style abdominal labels, see
 * DefaultAbdominalTable()) plus a smooth texture; unlabelled voxels inside the body become fat and a muscle wall, and
 * those outside become air. The body is not in an organ label map, so it is modelled: an elliptic cylinder around
 * the labelled organs, grown by `BodyMargin` mm. Then the scanner's blur and noise are applied as in
 * CTPhantomGenerator. The output lies on the label map's grid, with its geometry. Deterministic by seed.
 * \ingroup DivAttention
 */
class LabelMapCTPainter : public Object
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(LabelMapCTPainter);

  using Self = LabelMapCTPainter;
  using Superclass = Object;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkDivAttentionTypeMacro(LabelMapCTPainter, Object);

  using LabelImageType = Image<uint16_t, 3>;
  using CTImageType = Image<int16_t, 3>;
  using TableType = std::map<uint16_t, double>; // label -> mean HU

  /** AMOS22 abdominal labels (1 spleen .. 15 prostate/uterus) at non-contrast HU. */
  static TableType
  DefaultAbdominalTable();

  void
  SetLabels(const LabelImageType * labels)
  {
    m_Labels = labels;
    this->Modified();
  }
  void
  SetTable(const TableType & table)
  {
    m_Table = table;
    this->Modified();
  }
  const TableType &
  GetTable() const
  {
    return m_Table;
  }
  /** HU of labels missing from the table (default 40, soft tissue). */
  itkSetMacro(UnknownLabelHU, double);
  itkGetConstMacro(UnknownLabelHU, double);
  itkSetMacro(BodyMargin, double);
  itkGetConstMacro(BodyMargin, double);
  itkSetMacro(Seed, uint64_t);
  itkGetConstMacro(Seed, uint64_t);
  itkSetMacro(NoiseStandardDeviation, double);
  itkGetConstMacro(NoiseStandardDeviation, double);
  itkSetMacro(TextureStandardDeviation, double);
  itkGetConstMacro(TextureStandardDeviation, double);
  itkSetMacro(InPlaneBlurSigma, double);
  itkGetConstMacro(InPlaneBlurSigma, double);
  itkSetMacro(SliceBlurFraction, double);
  itkGetConstMacro(SliceBlurFraction, double);
  /** Fraction (0..1, default 0) of the unlabelled tissue inside the muscle wall painted as soft-tissue clutter at
   * ClutterHU instead of fat: smooth blobs of about ClutterScale mm, as bowel, vessels and unlabelled organs pack
   * a real abdomen. With 0 every labelled organ lies in fat, and a network learns that an organ ends where fat begins,
   * which real CT contradicts (the spleen touches the stomach, the liver the kidney). */
  itkSetClampMacro(ClutterFraction, double, 0.0, 1.0);
  itkGetConstMacro(ClutterFraction, double);
  itkSetMacro(ClutterHU, double);
  itkGetConstMacro(ClutterHU, double);
  itkSetMacro(ClutterScale, double);
  itkGetConstMacro(ClutterScale, double);

  /** Paints; throws itk::ExceptionObject when no label map is set or it has no labelled voxel. */
  void
  Update();

  CTImageType *
  GetCT() const
  {
    return m_CT.GetPointer();
  }

protected:
  LabelMapCTPainter();
  ~LabelMapCTPainter() override = default;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  LabelImageType::ConstPointer m_Labels;
  TableType                    m_Table;
  double                       m_UnknownLabelHU = 40.0;
  double                       m_BodyMargin = 35.0;
  uint64_t                     m_Seed = 1;
  double                       m_NoiseStandardDeviation = 12.0;
  double                       m_TextureStandardDeviation = 8.0;
  double                       m_InPlaneBlurSigma = 0.6;
  double                       m_SliceBlurFraction = 0.4;
  double                       m_ClutterFraction = 0.0;
  double                       m_ClutterHU = 35.0;
  double                       m_ClutterScale = 14.0;
  CTImageType::Pointer         m_CT;
};
} // namespace itk

#endif
