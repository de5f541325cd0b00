// DivAttentionPhantom: writes a dataset of CT phantoms with known masks in the Medical Segmentation Decathlon layout
// (dataset.json, imagesTr/, labelsTr/), with a suggested click per object. Fully deterministic by --seed.
#include "divaApplicationSupport.h"
#include "itkPhantomDataset.h"

#include <tclap/CmdLine.h>

#include <cstdint>
#include <iostream>
#include <stdexcept>
#include <string>

int
main(int argc, char ** argv)
{
  return diva::application::Run(
    "DivAttentionPhantom",
    [&]()
    {
      namespace app = diva::application;
      TCLAP::CmdLine cmd("Writes CT phantoms with known masks as an MSD-layout dataset (dataset.json, imagesTr/, "
                         "labelsTr/), each object with a suggested click. Deterministic by --seed.",
                         ' ', app::VersionText());
      cmd.setExceptionHandling(false);
      itk::PhantomDataset::Options defaults;
      TCLAP::ValueArg<std::string> output("o", "output-dir", "Directory to write the dataset into", true, "", "dir",
                                          cmd);
      // Signed, so that "-1" is refused instead of wrapping round to four billion cases.
      TCLAP::ValueArg<int64_t>     cases("n", "cases", "Number of cases", false, defaults.cases, "count", cmd);
      TCLAP::ValueArg<uint64_t>    seed("s", "seed", "Seed of the whole dataset", false, defaults.seed, "integer", cmd);
      TCLAP::ValueArg<std::string> prefix("", "name-prefix", "Case name prefix", false, defaults.namePrefix, "text",
                                          cmd);
      TCLAP::ValueArg<std::string> fov("", "fov", "Field of view x,y,z in mm", false, "380,300,260", "x,y,z", cmd);
      TCLAP::ValueArg<double>      spacing("", "in-plane-spacing", "In-plane pixel spacing, mm", false,
                                           defaults.inPlaneSpacing, "mm", cmd);
      TCLAP::ValueArg<std::string> slices("", "slice-thickness", "Slice thickness range min,max in mm (drawn per case)",
                                          false, "2.5,5", "min,max", cmd);
      TCLAP::ValueArg<double>      oblique("", "oblique-degrees",
                                           "Largest per-case rotation of the image grid about each axis, degrees", false,
                                           defaults.maximumObliqueDegrees, "degrees", cmd);
      TCLAP::ValueArg<double>      noise("", "noise", "Noise standard deviation, HU", false, defaults.noise, "HU", cmd);
      TCLAP::ValueArg<double> texture("", "texture", "Tissue texture standard deviation, HU", false, defaults.texture,
                                      "HU", cmd);
      TCLAP::ValueArg<double> blur("", "blur", "In-plane point spread function sigma, mm", false, defaults.inPlaneBlur,
                                   "mm", cmd);
      TCLAP::ValueArg<double> sliceBlur("", "slice-blur", "Slice profile sigma as a fraction of the slice thickness",
                                        false, defaults.sliceBlurFraction, "fraction", cmd);
      TCLAP::ValueArg<unsigned> lesions("", "lesions", "Lesions inside organs per case", false, defaults.organLesions,
                                        "count", cmd);
      TCLAP::ValueArg<unsigned> nodules("", "nodules", "Lymph-node-like nodules per case", false, defaults.nodules,
                                        "count", cmd);
      TCLAP::ValueArg<std::string> diameters("", "lesion-diameter", "Lesion diameter range min,max in mm", false,
                                             "5,60", "min,max", cmd);
      TCLAP::ValueArg<double>      deformation("", "deformation", "Organ shape deformation, fraction of radius", false,
                                               defaults.shapeDeformation, "fraction", cmd);
      TCLAP::ValueArg<std::string> labelMap(
        "", "label-map", "Paint this real label map (e.g. AMOS) instead of generating anatomy", false, "", "file", cmd);
      TCLAP::ValueArg<std::string> labelHU("", "label-hu",
                                           "With --label-map: draw each label's mean HU per case uniformly in min,max "
                                           "(intensity domain randomisation) instead of the fixed abdominal table",
                                           false, "", "min,max", cmd);
      TCLAP::ValueArg<double>      clutter("", "clutter",
                                           "With --label-map: fraction (0..1) of the unlabelled tissue inside the body "
                                                "painted as soft-tissue blobs (bowel, vessels) instead of fat, so organs touch "
                                                "tissue of like HU as in real CT; with --label-hu their HU is drawn per case too",
                                           false, 0.0, "fraction", cmd);
      cmd.parse(argc, argv);

      itk::PhantomDataset::Options options;
      options.outputDirectory = output.getValue();
      if (cases.getValue() < 1 || cases.getValue() > 100000)
      {
        throw std::invalid_argument("option --cases: \"" + std::to_string(cases.getValue()) +
                                    "\" is not a number of cases from 1 to 100000");
      }
      options.cases = static_cast<unsigned>(cases.getValue());
      options.seed = seed.getValue();
      options.namePrefix = prefix.getValue();
      options.fieldOfView = app::ParseTriple("--fov", fov.getValue());
      options.inPlaneSpacing = spacing.getValue();
      options.sliceThickness = app::ParsePair("--slice-thickness", slices.getValue());
      options.maximumObliqueDegrees = oblique.getValue();
      options.noise = noise.getValue();
      options.texture = texture.getValue();
      options.inPlaneBlur = blur.getValue();
      options.sliceBlurFraction = sliceBlur.getValue();
      options.organLesions = lesions.getValue();
      options.nodules = nodules.getValue();
      const auto range = app::ParsePair("--lesion-diameter", diameters.getValue());
      options.minimumLesionDiameter = range[0];
      options.maximumLesionDiameter = range[1];
      options.shapeDeformation = deformation.getValue();
      options.labelMap = labelMap.getValue();
      if (labelHU.isSet())
      {
        if (options.labelMap.empty())
        {
          throw std::invalid_argument(
            "option --label-hu: only with --label-map (the generated anatomy has its own HU)");
        }
        options.randomLabelHU = true;
        options.labelHURange = app::ParsePair("--label-hu", labelHU.getValue());
      }
      if (clutter.isSet())
      {
        if (options.labelMap.empty())
        {
          throw std::invalid_argument("option --clutter: only with --label-map (the generated anatomy has its own)");
        }
        if (!(clutter.getValue() >= 0.0 && clutter.getValue() <= 1.0))
        {
          throw std::invalid_argument("option --clutter: \"" + std::to_string(clutter.getValue()) +
                                      "\" is not a fraction from 0 to 1");
        }
        options.clutterFraction = clutter.getValue();
      }

      const auto summaries = itk::PhantomDataset::Write(options);
      for (const auto & summary : summaries)
      {
        std::cout << summary.name << ": " << summary.image << ", " << summary.label << ", " << summary.objects.size()
                  << " objects\n";
      }
      std::cout << "wrote " << summaries.size() << " cases and dataset.json to " << options.outputDirectory
                << std::endl;
      return 0;
    });
}
