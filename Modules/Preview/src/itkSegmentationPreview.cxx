#include "itkSegmentationPreview.h"

#include "itkLinearInterpolateImageFunction.h"
#include "itkNearestNeighborInterpolateImageFunction.h"
#include "itkWriteImageAtomically.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

namespace itk
{
namespace
{
using Vec3 = std::array<double, 3>;

struct Panel
{
  unsigned           width = 0, height = 0;
  std::vector<float> ct, attention;
  std::vector<int>   mask; // -1 outside the mask's grid
};

// Physical bounding box of an image's voxel centres.
void
Bounds(const ImageBase<3> * image, Vec3 & low, Vec3 & high)
{
  low.fill(std::numeric_limits<double>::max());
  high.fill(-std::numeric_limits<double>::max());
  const auto region = image->GetLargestPossibleRegion();
  for (int corner = 0; corner < 8; ++corner)
  {
    Index<3> index;
    for (unsigned d = 0; d < 3; ++d)
    {
      index[d] = region.GetIndex()[d] + ((corner >> d) & 1 ? static_cast<IndexValueType>(region.GetSize()[d]) - 1 : 0);
    }
    Point<double, 3> p;
    image->TransformIndexToPhysicalPoint(index, p);
    for (unsigned d = 0; d < 3; ++d)
    {
      low[d] = std::min(low[d], p[d]);
      high[d] = std::max(high[d], p[d]);
    }
  }
}

// One slice: the plane through `click` spanned by LPS axes `across` (columns) and `down` (rows); rows run along
// `down` with `downSign` (+1: increasing coordinate downwards).
Panel
Sample(const SegmentationPreview::CTImageType *   ct,
       const SegmentationPreview::MaskImageType * mask,
       const SegmentationPreview::CTImageType *   attention,
       const Point<double, 3> &                   click,
       unsigned                                   across,
       unsigned                                   down,
       double                                     downSign,
       double                                     pixel,
       const Vec3 &                               low,
       const Vec3 &                               high)
{
  auto ctInterpolator = LinearInterpolateImageFunction<SegmentationPreview::CTImageType>::New();
  ctInterpolator->SetInputImage(ct);
  auto maskInterpolator = NearestNeighborInterpolateImageFunction<SegmentationPreview::MaskImageType>::New();
  maskInterpolator->SetInputImage(mask);
  auto attentionInterpolator = LinearInterpolateImageFunction<SegmentationPreview::CTImageType>::New();
  if (attention)
  {
    attentionInterpolator->SetInputImage(attention);
  }
  Panel panel;
  panel.width = static_cast<unsigned>(std::floor((high[across] - low[across]) / pixel)) + 1;
  panel.height = static_cast<unsigned>(std::floor((high[down] - low[down]) / pixel)) + 1;
  const size_t count = static_cast<size_t>(panel.width) * panel.height;
  panel.ct.assign(count, -1024.0f);
  panel.attention.assign(count, 0.0f);
  panel.mask.assign(count, -1);
  for (unsigned row = 0; row < panel.height; ++row)
  {
    for (unsigned column = 0; column < panel.width; ++column)
    {
      Point<double, 3> p = click;
      p[across] = low[across] + column * pixel;
      p[down] = downSign > 0 ? low[down] + row * pixel : high[down] - row * pixel;
      const size_t at = static_cast<size_t>(row) * panel.width + column;
      if (ctInterpolator->IsInsideBuffer(p))
      {
        panel.ct[at] = static_cast<float>(ctInterpolator->Evaluate(p));
      }
      if (maskInterpolator->IsInsideBuffer(p))
      {
        panel.mask[at] = maskInterpolator->Evaluate(p) > 0 ? 1 : 0;
      }
      if (attention && attentionInterpolator->IsInsideBuffer(p))
      {
        panel.attention[at] = static_cast<float>(attentionInterpolator->Evaluate(p));
      }
    }
  }
  return panel;
}
} // namespace

SegmentationPreview::PreviewImageType::Pointer
SegmentationPreview::Render(const CTImageType *   ct,
                            const MaskImageType * mask,
                            const CTImageType *   attention,
                            const PointType &     click,
                            const Options &       options)
{
  if (ct == nullptr || mask == nullptr)
  {
    itkGenericExceptionMacro(<< "DivAttention: preview: the CT and the mask are both needed");
  }
  Vec3 low, high;
  Bounds(ct, low, high);
  const auto & spacing = ct->GetSpacing();
  double       pixel = std::min({ spacing[0], spacing[1], spacing[2] });
  for (unsigned d = 0; d < 3; ++d)
  {
    pixel = std::max(pixel, (high[d] - low[d]) / std::max(1u, options.maximumPanelSide - 1));
  }
  // Axial: columns x (patient's right on the left), rows y (anterior up). Coronal: x across, z down-to-up.
  // Sagittal: y across (anterior on the left), z down-to-up.
  const std::array<Panel, 3> panels = {
    Sample(ct, mask, attention, click, 0, 1, +1.0, pixel, low, high),
    Sample(ct, mask, attention, click, 0, 2, -1.0, pixel, low, high),
    Sample(ct, mask, attention, click, 1, 2, -1.0, pixel, low, high),
  };
  // Where the click falls in each panel (column, row).
  const std::array<std::array<double, 2>, 3> clickAt = {
    { { (click[0] - low[0]) / pixel, (click[1] - low[1]) / pixel },
      { (click[0] - low[0]) / pixel, (high[2] - click[2]) / pixel },
      { (click[1] - low[1]) / pixel, (high[2] - click[2]) / pixel } }
  };
  unsigned width = 0, height = 0;
  for (const auto & panel : panels)
  {
    width = std::max(width, panel.width);
    height += panel.height;
  }
  const unsigned columns = attention ? 2 : 1;
  auto           preview = PreviewImageType::New();
  preview->SetRegions(PreviewImageType::SizeType{ { width * columns, height } });
  preview->Allocate();
  RGBPixel<uint8_t> black;
  black.Fill(0);
  preview->FillBuffer(black);

  unsigned top = 0;
  for (size_t k = 0; k < panels.size(); ++k)
  {
    const Panel & panel = panels[k];
    float         attentionMax = 0.0f;
    for (float a : panel.attention)
    {
      attentionMax = std::max(attentionMax, a);
    }
    for (unsigned row = 0; row < panel.height; ++row)
    {
      for (unsigned column = 0; column < panel.width; ++column)
      {
        const size_t at = static_cast<size_t>(row) * panel.width + column;
        bool         outline = false;
        if (panel.mask[at] == 1)
        {
          outline = row == 0 || column == 0 || row + 1 == panel.height || column + 1 == panel.width ||
                    panel.mask[at - 1] == 0 || panel.mask[at + 1] == 0 || panel.mask[at - panel.width] == 0 ||
                    panel.mask[at + panel.width] == 0;
        }
        const bool cross = (std::abs(column - clickAt[k][0]) < 0.5 && std::abs(row - clickAt[k][1]) < 6.0) ||
                           (std::abs(row - clickAt[k][1]) < 0.5 && std::abs(column - clickAt[k][0]) < 6.0);
        for (unsigned c = 0; c < columns; ++c)
        {
          double grey;
          if (c == 0)
          {
            grey = (panel.ct[at] - options.windowLow) / (options.windowHigh - options.windowLow);
          }
          else
          {
            grey = attentionMax > 0.0f ? panel.attention[at] / attentionMax : 0.0;
          }
          const auto        level = static_cast<uint8_t>(std::lround(255.0 * std::clamp(grey, 0.0, 1.0)));
          RGBPixel<uint8_t> pixelValue;
          pixelValue.Set(level, level, level);
          if (outline)
          {
            pixelValue.Set(255, 30, 30);
          }
          if (cross)
          {
            pixelValue.Set(255, 230, 0);
          }
          preview->SetPixel(
            { { static_cast<IndexValueType>(c * width + column), static_cast<IndexValueType>(top + row) } },
            pixelValue);
        }
      }
    }
    top += panel.height;
  }
  return preview;
}

void
SegmentationPreview::Write(const std::string &   path,
                           const CTImageType *   ct,
                           const MaskImageType * mask,
                           const CTImageType *   attention,
                           const PointType &     click,
                           const Options &       options)
{
  auto preview = Render(ct, mask, attention, click, options);
  WriteImageAtomically(preview.GetPointer(), path, /*compress=*/true);
}
} // namespace itk
