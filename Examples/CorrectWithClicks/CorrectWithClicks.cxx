// CorrectWithClicks: one click, then a correction, then Undo, in a live itk::ClickGuidedSegmentationSession.
//
// The session holds one CT, its models and a mask that each click changes (Documentation/Pipeline.md, "Corrections"):
// a positive click outside the mask runs the pipeline there and adds what it finds, a negative click on the mask
// removes the part of it geodesically closer to that click than to every positive click (cut where it narrows to
// join the object), and Undo takes the last click back exactly. Networks run only for positive clicks outside the
// mask, once per click.
//
// Usage:
//   CorrectWithClicks [--ct CT --click x,y,z --truth LABELS --label N] [--coarse-model FILE] [--refine-model FILE]
//                     [--min-dice D]
//
// Without --ct it uses the bundled demo phantom (Models/demo: phantom-ct.nii.gz, its labels, click.txt and label.txt)
// and the bundled models. It corrects a mask that spilled into the neighbouring organ (the truth of the object and of
// that organ, as a previous mask): a positive click on the object (inside the mask: it marks the part to keep), a
// negative click in the neighbour (removed), Undo (back); then, from an empty mask, the positive click again (the
// pipeline runs). It prints the voxel count and the Dice after each step, and returns non-zero when a step
// misbehaves: an exception, a negative click that does not raise the Dice, an Undo that does not restore the mask bit
// for bit, an empty mask or a Dice below --min-dice from the pipeline, or a network run for anything but that click.
#include "itkClickGuidedSegmentationSession.h"
#include "itkClickPoints.h"
#include "itkImageFileReader.h"
#include "itkImageRegionConstIteratorWithIndex.h"

#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace
{
using CTImageType = itk::Image<float, 3>;
using MaskImageType = itk::Image<uint8_t, 3>;
using LabelImageType = itk::Image<uint8_t, 3>;
using SessionType = itk::ClickGuidedSegmentationSession<CTImageType, MaskImageType>;

#ifndef DIVATTENTION_EXAMPLE_MODEL_DIR
#  define DIVATTENTION_EXAMPLE_MODEL_DIR "Models"
#endif

std::string
ReadText(const std::string & path)
{
  std::ifstream stream(path);
  std::string   text;
  if (!(stream >> text))
  {
    throw std::runtime_error("cannot read " + path);
  }
  return text;
}

// "--key value" pairs; every key must be one of `known`.
std::map<std::string, std::string>
ParseOptions(int argc, char * argv[], const std::map<std::string, std::string> & known)
{
  std::map<std::string, std::string> options = known;
  for (int i = 1; i < argc; i += 2)
  {
    const std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || known.count(key.substr(2)) == 0 || i + 1 >= argc)
    {
      throw std::invalid_argument("unknown option or missing value: \"" + key + "\"");
    }
    options[key.substr(2)] = argv[i + 1];
  }
  return options;
}

// Dice of (mask != 0) and (truth == label), and the mask's voxel count.
double
Dice(const MaskImageType * mask, const LabelImageType * truth, int label, size_t & voxels)
{
  size_t     both = 0, inTruth = 0;
  const auto count = mask->GetBufferedRegion().GetNumberOfPixels();
  voxels = 0;
  for (size_t i = 0; i < count; ++i)
  {
    const bool a = mask->GetBufferPointer()[i] != 0;
    const bool b = truth->GetBufferPointer()[i] == label;
    both += a && b;
    voxels += a;
    inTruth += b;
  }
  return 2.0 * both / std::max<double>(1.0, static_cast<double>(voxels + inTruth));
}
} // namespace

int
main(int argc, char * argv[])
{
  try
  {
    const std::string demo = std::string(DIVATTENTION_EXAMPLE_MODEL_DIR) + "/demo";
    const auto        options =
      ParseOptions(argc, argv,
                   { { "ct", demo + "/phantom-ct.nii.gz" },
                     { "click", "" },
                     { "truth", demo + "/phantom-labels.nii.gz" },
                     { "label", "" },
                     { "coarse-model", DIVATTENTION_EXAMPLE_MODEL_DIR "/coarse-munet-small.pt" },
                     { "refine-model", DIVATTENTION_EXAMPLE_MODEL_DIR "/refine-unetr-small-divattention.pt" },
                     { "min-dice", "0" } });
    const std::string clickText = options.at("click").empty() ? ReadText(demo + "/click.txt") : options.at("click");
    const int  label = std::stoi(options.at("label").empty() ? ReadText(demo + "/label.txt") : options.at("label"));
    const auto ct = itk::ReadImage<CTImageType>(options.at("ct"));
    const auto truth = itk::ReadImage<LabelImageType>(options.at("truth"));
    const auto click =
      itk::ClickPoints::ToPhysicalPoint(itk::ClickPoints::ParseTriple(clickText), itk::ClickPoints::Space::LPS, ct);

    // One session per CT: the models are given once (files here, loaded at the first click that needs them).
    auto session = SessionType::New();
    session->SetCoarseModelFile(options.at("coarse-model"));
    session->SetRefineModelFile(options.at("refine-model"));
    session->SetImage(ct);

    size_t voxels = 0;
    auto   report = [&](const std::string & step)
    {
      const double dice = Dice(session->GetMask(), truth, label, voxels);
      std::cout << std::left << std::setw(40) << step + ": " << voxels << " voxels, Dice " << std::fixed
                << std::setprecision(3) << dice << " (" << session->GetNumberOfPipelineRuns() << " pipeline runs)"
                << std::endl;
      return dice;
    };

    // 1. A mask to correct that spilled into the neighbouring organ (the other label whose centre lies nearest to the
    // click), as a mask from another tool might: the object's truth and that organ's.
    std::map<int, std::pair<itk::Vector<double, 3>, size_t>> centres;
    for (itk::ImageRegionConstIteratorWithIndex<LabelImageType> it(truth, truth->GetBufferedRegion()); !it.IsAtEnd();
         ++it)
    {
      if (it.Get() != 0 && it.Get() != label)
      {
        itk::Point<double, 3> point;
        truth->TransformIndexToPhysicalPoint(it.GetIndex(), point);
        centres[it.Get()].first += point.GetVectorFromOrigin();
        ++centres[it.Get()].second;
      }
    }
    int                   neighbour = -1;
    itk::Point<double, 3> neighbourCentre;
    for (const auto & [value, sum] : centres)
    {
      itk::Point<double, 3> centre;
      centre.Fill(0.0);
      centre += sum.first / static_cast<double>(sum.second);
      if (neighbour < 0 || centre.EuclideanDistanceTo(click) < neighbourCentre.EuclideanDistanceTo(click))
      {
        neighbour = value;
        neighbourCentre = centre;
      }
    }
    if (neighbour < 0)
    {
      throw std::runtime_error("the truth has no second object");
    }
    itk::Point<double, 3> mistake;
    double                nearest = -1.0;
    for (itk::ImageRegionConstIteratorWithIndex<LabelImageType> it(truth, truth->GetBufferedRegion()); !it.IsAtEnd();
         ++it)
    {
      itk::Point<double, 3> point;
      truth->TransformIndexToPhysicalPoint(it.GetIndex(), point);
      if (it.Get() == neighbour && (nearest < 0.0 || point.EuclideanDistanceTo(neighbourCentre) < nearest))
      {
        nearest = point.EuclideanDistanceTo(neighbourCentre);
        mistake = point;
      }
    }
    auto previous = MaskImageType::New();
    previous->CopyInformation(ct);
    previous->SetRegions(ct->GetLargestPossibleRegion());
    previous->Allocate();
    for (size_t i = 0; i < ct->GetBufferedRegion().GetNumberOfPixels(); ++i)
    {
      const int value = truth->GetBufferPointer()[i];
      previous->GetBufferPointer()[i] = value == label || value == neighbour ? 1 : 0;
    }
    session->SetPreviousMask(previous);
    report("previous mask (+ label " + std::to_string(neighbour) + ")");
    // 2. A positive click on the object, inside the mask: no network, it marks the part to keep.
    session->AddPositiveClick(click);
    const double               withMistake = report("positive click " + clickText);
    const std::vector<uint8_t> afterMistake(session->GetMask()->GetBufferPointer(),
                                            session->GetMask()->GetBufferPointer() +
                                              ct->GetBufferedRegion().GetNumberOfPixels());

    // 3. The correction: a negative click in the neighbouring organ removes it, and no network runs.
    session->AddNegativeClick(mistake);
    const double corrected = report("negative click on label " + std::to_string(neighbour));
    if (!(corrected > withMistake))
    {
      std::cerr << "CorrectWithClicks: the negative click did not raise the Dice" << std::endl;
      return EXIT_FAILURE;
    }

    // 4. Undo: exactly the mask before the negative click, no network.
    session->Undo();
    report("undo");
    if (!std::equal(afterMistake.begin(), afterMistake.end(), session->GetMask()->GetBufferPointer()))
    {
      std::cerr << "CorrectWithClicks: Undo did not restore the mask" << std::endl;
      return EXIT_FAILURE;
    }

    // 5. From an empty mask: the same positive click now runs the whole pipeline.
    session->SetPreviousMask(nullptr);
    // A positive click: the whole pipeline runs at it.
    session->AddPositiveClick(click);
    const double first = report("positive click " + clickText);
    if (voxels == 0 || first < std::stod(options.at("min-dice")))
    {
      std::cerr << "CorrectWithClicks: the first click's mask is empty or below --min-dice" << std::endl;
      return EXIT_FAILURE;
    }
    if (session->GetNumberOfPipelineRuns() != 1)
    {
      std::cerr << "CorrectWithClicks: the networks ran " << session->GetNumberOfPipelineRuns() << " times"
                << std::endl;
      return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
  }
  catch (const std::exception & error)
  {
    std::cerr << "CorrectWithClicks: error: " << error.what() << std::endl;
    return EXIT_FAILURE;
  }
}
