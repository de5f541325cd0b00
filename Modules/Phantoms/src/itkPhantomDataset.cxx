#include "itkPhantomDataset.h"

#include "divaAtomicFile.h"
#include "itkImageFileReader.h"
#include "itkImageRegionConstIterator.h"
#include "itkLabelMapCTPainter.h"
#include "itkMacro.h"
#include "itkPhantomRandom.h"
#include "itkWriteImageAtomically.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <set>
#include <sstream>

namespace itk
{
namespace
{
namespace fs = std::filesystem;

CTPhantomGenerator::DirectionType
RandomDirection(PhantomRandom & random, double maximumDegrees)
{
  CTPhantomGenerator::DirectionType direction;
  direction.SetIdentity();
  if (maximumDegrees <= 0.0)
  {
    return direction;
  }
  for (unsigned axis = 0; axis < 3; ++axis)
  {
    const double                      angle = random.Uniform(-maximumDegrees, maximumDegrees) * M_PI / 180.0;
    CTPhantomGenerator::DirectionType rotation;
    rotation.SetIdentity();
    const unsigned a = (axis + 1) % 3, b = (axis + 2) % 3;
    rotation[a][a] = std::cos(angle);
    rotation[a][b] = -std::sin(angle);
    rotation[b][a] = std::sin(angle);
    rotation[b][b] = std::cos(angle);
    direction = rotation * direction;
  }
  return direction;
}

std::string
CaseName(const std::string & prefix, unsigned index)
{
  std::ostringstream name;
  name << prefix << "_" << std::setw(3) << std::setfill('0') << index;
  return name.str();
}

nlohmann::json
ObjectToJson(const CTPhantomGenerator::PhantomObject & object)
{
  return { { "name", object.name },
           { "label", object.label },
           { "instance", object.instance },
           { "lesion", object.isLesion },
           { "click_lps", { object.click[0], object.click[1], object.click[2] } },
           { "diameter_mm", object.diameter },
           { "voxels", object.voxels } };
}
} // namespace

void
PhantomDataset::Validate(const Options & options)
{
  if (options.outputDirectory.empty())
  {
    itkGenericExceptionMacro(<< "DivAttention: phantom dataset: no output directory given");
  }
  if (options.cases == 0)
  {
    itkGenericExceptionMacro(<< "DivAttention: phantom dataset: --cases must be at least 1");
  }
  for (unsigned d = 0; d < 3; ++d)
  {
    if (!(options.fieldOfView[d] > 0.0) || !std::isfinite(options.fieldOfView[d]))
    {
      itkGenericExceptionMacro(<< "DivAttention: phantom dataset: field of view must be positive, got "
                               << options.fieldOfView[d] << " mm");
    }
  }
  if (!(options.inPlaneSpacing > 0.0) || !std::isfinite(options.inPlaneSpacing))
  {
    itkGenericExceptionMacro(<< "DivAttention: phantom dataset: in-plane spacing must be positive, got "
                             << options.inPlaneSpacing << " mm");
  }
  if (!(options.sliceThickness[0] > 0.0) || !(options.sliceThickness[1] >= options.sliceThickness[0]) ||
      !std::isfinite(options.sliceThickness[1]))
  {
    itkGenericExceptionMacro(<< "DivAttention: phantom dataset: slice thickness range " << options.sliceThickness[0]
                             << "," << options.sliceThickness[1] << " mm must be positive and ordered (min <= max)");
  }
  if (!(options.minimumLesionDiameter > 0.0) || options.maximumLesionDiameter < options.minimumLesionDiameter)
  {
    itkGenericExceptionMacro(<< "DivAttention: phantom dataset: lesion diameter range must be positive and ordered");
  }
  if (options.noise < 0.0 || options.texture < 0.0 || options.inPlaneBlur < 0.0 || options.sliceBlurFraction < 0.0 ||
      options.shapeDeformation < 0.0 || options.shapeDeformation > 0.3)
  {
    itkGenericExceptionMacro(<< "DivAttention: phantom dataset: noise, texture and blur must be >= 0 and the shape "
                                "deformation in [0, 0.3]");
  }
  if (options.randomLabelHU &&
      !(options.labelHURange[0] >= -1000.0 && options.labelHURange[0] <= options.labelHURange[1] &&
        options.labelHURange[1] <= 3000.0))
  {
    itkGenericExceptionMacro(<< "DivAttention: phantom dataset: label HU range " << options.labelHURange[0] << ","
                             << options.labelHURange[1] << " must be ordered and within -1000..3000 HU");
  }
  if (!options.labelMap.empty() && !fs::exists(options.labelMap))
  {
    itkGenericExceptionMacro(<< "DivAttention: phantom dataset: label map \"" << options.labelMap
                             << "\" does not exist");
  }
}

std::vector<PhantomDataset::CaseSummary>
PhantomDataset::Write(const Options & options)
{
  Validate(options);
  // The label map is read before anything is written: an unreadable one leaves no output behind.
  LabelMapCTPainter::LabelImageType::Pointer realLabels;
  std::set<uint16_t>                         labelsPresent; // in ascending order: the HU draws follow it
  if (!options.labelMap.empty())
  {
    auto reader = ImageFileReader<LabelMapCTPainter::LabelImageType>::New();
    reader->SetFileName(options.labelMap);
    try
    {
      reader->Update();
    }
    catch (const ExceptionObject & error)
    {
      itkGenericExceptionMacro(<< "DivAttention: phantom dataset: label map \"" << options.labelMap
                               << "\" cannot be read: " << error.GetDescription());
    }
    realLabels = reader->GetOutput();
    for (ImageRegionConstIterator<LabelMapCTPainter::LabelImageType> it(realLabels,
                                                                        realLabels->GetLargestPossibleRegion());
         !it.IsAtEnd(); ++it)
    {
      if (it.Get() != 0)
      {
        labelsPresent.insert(it.Get());
      }
    }
  }
  const fs::path root(options.outputDirectory);
  try
  {
    fs::create_directories(root / "imagesTr");
    fs::create_directories(root / "labelsTr");
  }
  catch (const fs::filesystem_error & error)
  {
    itkGenericExceptionMacro(<< "DivAttention: phantom dataset: cannot create \"" << options.outputDirectory
                             << "\": " << error.what());
  }

  std::vector<CaseSummary> summaries;
  nlohmann::json           training = nlohmann::json::array();
  nlohmann::json           cases = nlohmann::json::array();
  for (unsigned index = 0; index < options.cases; ++index)
  {
    CaseSummary summary;
    summary.name = CaseName(options.namePrefix, index);
    summary.image = "imagesTr/" + summary.name + ".nii.gz";
    summary.label = "labelsTr/" + summary.name + ".nii.gz";
    const uint64_t caseSeed = PhantomRandom::Hash(options.seed * 1000003ULL + index);
    PhantomRandom  random(caseSeed, 7);
    nlohmann::json caseJson = { { "name", summary.name }, { "seed", caseSeed } };

    if (realLabels)
    {
      auto painter = LabelMapCTPainter::New();
      painter->SetLabels(realLabels);
      painter->SetSeed(caseSeed);
      painter->SetNoiseStandardDeviation(options.noise);
      painter->SetTextureStandardDeviation(options.texture);
      painter->SetInPlaneBlurSigma(options.inPlaneBlur);
      painter->SetSliceBlurFraction(options.sliceBlurFraction);
      painter->SetClutterFraction(options.clutterFraction);
      if (options.randomLabelHU)
      {
        LabelMapCTPainter::TableType table;
        nlohmann::json               drawn = nlohmann::json::object();
        for (const uint16_t label : labelsPresent)
        {
          table[label] = random.Uniform(options.labelHURange[0], options.labelHURange[1]);
          drawn[std::to_string(label)] = table[label];
        }
        painter->SetTable(table);
        caseJson["label_hu"] = drawn;
        if (options.clutterFraction > 0.0)
        {
          painter->SetClutterHU(random.Uniform(options.labelHURange[0], options.labelHURange[1]));
          caseJson["clutter_hu"] = painter->GetClutterHU();
        }
      }
      painter->Update();
      WriteImageAtomically(painter->GetCT(), (root / summary.image).string());
      using LabelOut = Image<uint8_t, 3>;
      auto labels = LabelOut::New();
      labels->CopyInformation(realLabels);
      labels->SetRegions(realLabels->GetLargestPossibleRegion());
      labels->Allocate();
      ImageRegionConstIterator<LabelMapCTPainter::LabelImageType> in(realLabels,
                                                                     realLabels->GetLargestPossibleRegion());
      for (uint8_t * out = labels->GetBufferPointer(); !in.IsAtEnd(); ++in, ++out)
      {
        *out = static_cast<uint8_t>(std::min<uint16_t>(in.Get(), 255));
      }
      WriteImageAtomically(labels.GetPointer(), (root / summary.label).string());
      caseJson["source_label_map"] = options.labelMap;
    }
    else
    {
      auto                            generator = CTPhantomGenerator::New();
      CTPhantomGenerator::SpacingType spacing;
      spacing[0] = options.inPlaneSpacing;
      spacing[1] = options.inPlaneSpacing;
      spacing[2] = random.Uniform(options.sliceThickness[0], options.sliceThickness[1]);
      CTPhantomGenerator::SizeType size;
      for (unsigned d = 0; d < 3; ++d)
      {
        size[d] = static_cast<SizeValueType>(std::max(1.0, std::round(options.fieldOfView[d] / spacing[d])));
      }
      generator->SetSize(size);
      generator->SetSpacing(spacing);
      generator->SetDirection(RandomDirection(random, options.maximumObliqueDegrees));
      generator->SetSeed(caseSeed);
      generator->SetNoiseStandardDeviation(options.noise);
      generator->SetInPlaneBlurSigma(options.inPlaneBlur);
      generator->SetSliceBlurFraction(options.sliceBlurFraction);
      generator->SetNumberOfOrganLesions(options.organLesions);
      generator->SetNumberOfNodules(options.nodules);
      generator->SetMinimumLesionDiameter(options.minimumLesionDiameter);
      generator->SetMaximumLesionDiameter(options.maximumLesionDiameter);
      generator->SetShapeDeformation(options.shapeDeformation);
      generator->SetTextureStandardDeviation(options.texture);
      generator->Update();
      WriteImageAtomically(generator->GetCT(), (root / summary.image).string());
      WriteImageAtomically(generator->GetLabels(), (root / summary.label).string());
      summary.objects = generator->GetObjects();
      nlohmann::json objects = nlohmann::json::array();
      for (const auto & object : summary.objects)
      {
        objects.push_back(ObjectToJson(object));
      }
      caseJson["objects"] = objects;
      caseJson["spacing_mm"] = { spacing[0], spacing[1], spacing[2] };
    }
    training.push_back({ { "image", "./" + summary.image }, { "label", "./" + summary.label } });
    cases.push_back(caseJson);
    summaries.push_back(summary);
  }

  nlohmann::json labels = { { "0", "background" } };
  if (options.labelMap.empty())
  {
    labels = { { "0", "background" },  { "1", "liver" },   { "2", "spleen" }, { "3", "kidney_right" },
               { "4", "kidney_left" }, { "5", "stomach" }, { "6", "lesion" } };
  }
  else
  {
    labels = { { "0", "background" },    { "1", "spleen" },    { "2", "kidney_right" }, { "3", "kidney_left" },
               { "4", "gallbladder" },   { "5", "esophagus" }, { "6", "liver" },        { "7", "stomach" },
               { "8", "aorta" },         { "9", "ivc" },       { "10", "pancreas" },    { "11", "adrenal_right" },
               { "12", "adrenal_left" }, { "13", "duodenum" }, { "14", "bladder" },     { "15", "prostate_uterus" } };
  }
  nlohmann::json dataset = {
    { "name", "DivAttentionPhantoms" },
    { "description", "Synthetic abdominal CT phantoms with known masks, made by DivAttentionPhantom" },
    { "reference", "DivAttention CTPhantomGenerator" },
    { "licence", "generated data, no restriction" },
    { "tensorImageSize", "3D" },
    { "modality", { { "0", "CT" } } },
    { "labels", labels },
    { "numTraining", training.size() },
    { "numTest", 0 },
    { "training", training },
    { "test", nlohmann::json::array() },
    { "divattention",
      { { "generator", options.labelMap.empty() ? "CTPhantomGenerator" : "LabelMapCTPainter" },
        { "seed", options.seed },
        { "field_of_view_mm", options.fieldOfView },
        { "in_plane_spacing_mm", options.inPlaneSpacing },
        { "slice_thickness_mm", options.sliceThickness },
        { "maximum_oblique_degrees", options.maximumObliqueDegrees },
        { "noise_hu", options.noise },
        { "in_plane_blur_mm", options.inPlaneBlur },
        { "slice_blur_fraction", options.sliceBlurFraction },
        { "organ_lesions", options.organLesions },
        { "nodules", options.nodules },
        { "lesion_diameter_mm", { options.minimumLesionDiameter, options.maximumLesionDiameter } },
        { "shape_deformation", options.shapeDeformation },
        { "texture_hu", options.texture },
        { "clutter_fraction", options.clutterFraction },
        { "label_hu_range", options.randomLabelHU ? nlohmann::json(options.labelHURange) : nlohmann::json(nullptr) },
        { "cases", cases } } }
  };
  try
  {
    diva::WriteFileAtomically((root / "dataset.json").string(),
                              [&](const std::string & temporary)
                              {
                                std::ofstream out(temporary);
                                out << dataset.dump(2) << '\n';
                                if (!out)
                                {
                                  throw std::runtime_error("cannot write " + temporary);
                                }
                              });
  }
  catch (const std::exception & error)
  {
    itkGenericExceptionMacro(<< "DivAttention: phantom dataset: " << error.what());
  }
  return summaries;
}

} // namespace itk
