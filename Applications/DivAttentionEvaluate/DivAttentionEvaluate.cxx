// DivAttentionEvaluate: runs one or several trained models of one stage over a split (or the whole dataset) with
// clicks simulated from the reference masks (fixed seed) and reports Dice, recall, precision and HD95 per sample and
// per model, as CSV and as a table laid out like the paper's Table 1.
#include "divaApplicationSupport.h"
#include "divaAtomicFile.h"
#include "divaDevice.h"
#include "divaEvaluation.h"
#include "divaModelFile.h"
#include "divaSegmentationLoss.h"
#include "divaSegmentationMetrics.h"
#include "itkDatasetSplit.h"
#include "itkTrainingSampleSource.h"

#include <tclap/CmdLine.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace
{
void
WriteText(const std::string & path, const std::string & text)
{
  diva::WriteFileAtomically(path,
                            [&](const std::string & temporary)
                            {
                              std::ofstream out(temporary);
                              out << text;
                              if (!out.flush())
                              {
                                throw std::runtime_error("cannot write " + temporary);
                              }
                            });
}
} // namespace

int
main(int argc, char ** argv)
{
  return diva::application::Run(
    "DivAttentionEvaluate",
    [&]()
    {
      TCLAP::CmdLine cmd("Evaluates models of one stage on a dataset split with simulated clicks: Dice, recall, "
                         "precision, HD95 per sample and a Table-1-style summary.",
                         ' ', diva::application::VersionText());
      cmd.setExceptionHandling(false);
      TCLAP::MultiArg<std::string> models("m", "model", "NAME=model-file (repeat to put models side by side)", true,
                                          "name=file", cmd);
      TCLAP::ValueArg<std::string> dataset("", "dataset", "Dataset root or CSV file", true, "", "path", cmd);
      TCLAP::ValueArg<std::string> layout("", "layout", "auto, msd, kits, nnunet or csv", false, "auto", "name", cmd);
      TCLAP::ValueArg<std::string> split("", "split", "Split JSON (e.g. the training run's split.json)", false, "",
                                         "file", cmd);
      TCLAP::ValueArg<std::string> subset("", "subset", "test, validation, train or all", false, "validation", "name",
                                          cmd);
      TCLAP::ValueArg<std::string> label("", "label", "Target label id(s), e.g. 1 or 1,2,3", false, "1", "ids", cmd);
      TCLAP::ValueArg<std::string> device("", "device", "auto, cpu, cuda or cuda:N", false, "auto", "device", cmd);
      TCLAP::ValueArg<std::string> instances("", "instances", "organ, lesion or label-components", false, "organ",
                                             "kind", cmd);
      TCLAP::ValueArg<int>      stage("", "stage", "1 or 2 (0: from the model's input channels)", false, 0, "N", cmd);
      TCLAP::ValueArg<unsigned> clicks("", "clicks", "Simulated clicks per instance", false, 3, "N", cmd);
      TCLAP::ValueArg<uint64_t> seed("", "seed", "Seed of the simulated clicks", false, 0, "integer", cmd);
      TCLAP::ValueArg<std::string> name("", "dataset-name", "Column group title of the table", false, "Dataset", "text",
                                        cmd);
      TCLAP::ValueArg<std::string> csv("", "csv", "Per-sample CSV output", false, "", "file", cmd);
      TCLAP::ValueArg<std::string> markdown("", "markdown", "Markdown table output", false, "", "file", cmd);
      cmd.parse(argc, argv);

      // The options are checked before the dataset is read and the models run, so that a bad one fails at once.
      const std::string subsetName = subset.getValue();
      if (subsetName != "test" && subsetName != "validation" && subsetName != "train" && subsetName != "all")
      {
        throw TCLAP::CmdLineParseException("--subset must be test, validation, train or all, not \"" + subsetName +
                                           "\"");
      }
      const auto labels = diva::application::ParseList<uint16_t>("--label", label.getValue());
      if (labels.empty())
      {
        throw std::invalid_argument("option --label: give at least one label id");
      }
      for (const auto & text : models.getValue())
      {
        const auto equals = text.find('=');
        if (equals == std::string::npos || equals == 0 || equals + 1 == text.size())
        {
          throw TCLAP::CmdLineParseException("--model expects NAME=file, got \"" + text + "\"");
        }
        if (!std::filesystem::is_regular_file(text.substr(equals + 1)))
        {
          throw std::runtime_error("--model " + text.substr(0, equals) + ": model file \"" + text.substr(equals + 1) +
                                   "\" does not exist");
        }
      }
      for (const auto * output : { &csv, &markdown })
      {
        const auto directory = std::filesystem::path(output->getValue()).parent_path();
        if (output->isSet() && !directory.empty() && !std::filesystem::is_directory(directory))
        {
          throw std::runtime_error("--" + output->getName() + " \"" + output->getValue() + "\": directory \"" +
                                   directory.string() + "\" does not exist");
        }
      }

      auto listing = itk::SegmentationDatasetReader::Read(
        dataset.getValue(), itk::SegmentationDatasetReader::ParseLayout(layout.getValue()));
      std::vector<itk::SegmentationDatasetReader::Case> cases = listing.cases;
      if (split.isSet() && subsetName != "all")
      {
        const auto                       s = itk::DatasetSplit::Load(split.getValue());
        const std::vector<std::string> * ids = subsetName == "test"         ? &s.test
                                               : subsetName == "validation" ? &s.validation
                                                                            : &s.train;
        cases.erase(std::remove_if(cases.begin(), cases.end(),
                                   [ids](const auto & entry)
                                   { return std::find(ids->begin(), ids->end(), entry.id) == ids->end(); }),
                    cases.end());
      }
      const torch::Device                computeDevice = diva::ResolveDevice(device.getValue());
      std::vector<diva::EvaluatedSample> samples;
      for (const auto & text : models.getValue())
      {
        const auto            equals = text.find('=');
        const std::string     modelName = text.substr(0, equals);
        auto                  loaded = diva::LoadModel(text.substr(equals + 1), computeDevice);
        diva::TrainingOptions options;
        options.stage = stage.getValue() != 0 ? stage.getValue() : (loaded.network->GetInputChannels() == 2 ? 1 : 2);
        options.targetLabels = labels;
        options.instances = instances.getValue();
        options.patchSize = loaded.description.preprocessing.patchSize;
        options.targetSpacing = loaded.description.preprocessing.targetSpacing;
        options.augment = false;
        options.seed = seed.getValue();
        itk::TrainingSampleSource source(options, cases);
        source.SetPreprocessing(loaded.description.preprocessing);
        torch::NoGradGuard noGrad;
        loaded.network->eval();
        for (size_t index = 0; index < source.NumberOfInstances(); ++index)
        {
          for (unsigned click = 0; click < clicks.getValue(); ++click)
          {
            const auto            sample = source.MakeValidationSample(index, click);
            const auto            output = loaded.network->Segment(sample.input.unsqueeze(0).to(computeDevice));
            const torch::Tensor   prediction = (diva::ForegroundProbability(output.logits).squeeze() >= 0.5).cpu();
            const torch::Tensor   reference = sample.target.squeeze();
            const auto            metrics = diva::ComputeBinaryMetrics(prediction, reference);
            diva::EvaluatedSample result;
            result.model = modelName;
            result.caseId = source.CaseId(source.Instances()[index].caseIndex);
            result.instance = source.Instances()[index].id;
            result.click = click;
            result.dice = metrics.dice;
            result.recall = metrics.recall;
            result.precision = metrics.precision;
            result.hd95 = diva::HausdorffDistance95(prediction, reference, sample.spacing);
            samples.push_back(result);
          }
        }
      }
      const auto summaries = diva::Summarize(samples);
      std::cout << diva::FormatTable1(summaries, name.getValue(), false);
      if (csv.isSet())
      {
        WriteText(csv.getValue(), diva::FormatSamplesCSV(samples));
      }
      if (markdown.isSet())
      {
        WriteText(markdown.getValue(), diva::FormatTable1(summaries, name.getValue(), true));
      }
      return 0;
    });
}
