// DivAttentionNetworkBench: forward and training-step time of one network on one device, as a plain program that
// prints its figures. It needs only LibTorch (no ITK, no Google Benchmark), so it also runs on a GPU machine that has
// nothing but a pip LibTorch (built with -DDivAttention_TORCH_ONLY=ON).
//   DivAttentionNetworkBench [--device auto|cpu|cuda] [--model unetr|munet|espnet] [--preset small|paper]
//                            [--div-attention 0|1] [--batch N] [--side S] [--iterations N] [--threads N]
//                            [--feature-size F (UNETR only; 0 = the preset's)] [--fusion-kernel 1|3 (the
//                            div-attention module's fusion convolution; default the network's)] [--profile PREFIX]
//                            (also writes PREFIX-forward.json / PREFIX-train.json: chrome traces
//                                                 of one forward and one train step; Utilities/profile-summary.py)
//                            [--compare-forward 1] (the host with and without div-attention in one process, forwards
//                            alternating, the order swapped every round: the module's cost on a machine whose speed
//                            drifts between processes; prints both medians and the median of the per-round ratios)
//                            [--compare-train 1] (the same with training steps)
#include "divaDevice.h"
#include "divaESPNet3D.h"
#include "divaHostAllocator.h"
#include "divaMUnet.h"
#include "divaSegmentationLoss.h"
#include "divaThreadBudget.h"
#include "divaUNETR.h"

#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace
{
std::shared_ptr<diva::SegmentationNetworkImpl>
Build(const std::string & model,
      const std::string & preset,
      bool                divAttention,
      int64_t             inputs,
      int64_t             side,
      int64_t             featureSize,
      int64_t             fusionKernel)
{
  // The host's own switch (its default fusion kernel) unless --fusion-kernel says otherwise.
  auto configure = [&](diva::DivAttentionSwitch divSwitch)
  {
    divSwitch.enabled(divAttention);
    if (fusionKernel > 0)
    {
      divSwitch.fusion_kernel_size(fusionKernel);
    }
    return divSwitch;
  };
  if (featureSize > 0 && model != "unetr")
  {
    throw std::invalid_argument("--feature-size applies to --model unetr only");
  }
  if (model == "unetr")
  {
    auto o = diva::UNETROptions::Preset(preset);
    if (featureSize > 0)
    {
      o.feature_size(featureSize);
    }
    o.div_attention(configure(o.div_attention()));
    o.in_channels(inputs);
    o.image_size(side);
    return std::make_shared<diva::UNETRImpl>(o);
  }
  if (model == "munet")
  {
    auto o = diva::MUnetOptions::Preset(preset).deep_supervision(true);
    o.div_attention(configure(o.div_attention()));
    o.in_channels(inputs);
    return std::make_shared<diva::MUnetImpl>(o);
  }
  if (model == "espnet")
  {
    auto o = diva::ESPNet3DOptions::Preset(preset);
    o.div_attention(configure(o.div_attention()));
    o.in_channels(inputs);
    return std::make_shared<diva::ESPNet3DImpl>(o);
  }
  throw std::invalid_argument("--model \"" + model + "\" is not one of unetr, munet, espnet");
}

void
Synchronize(const torch::Device & device)
{
  if (device.is_cuda())
  {
    torch::cuda::synchronize();
  }
}

// Median of `iterations` timed runs after two warm-ups, in milliseconds.
template<typename F>
double
MedianMilliseconds(const torch::Device & device, int iterations, F && run)
{
  run();
  run();
  Synchronize(device);
  std::vector<double> times;
  for (int i = 0; i < iterations; ++i)
  {
    const auto start = std::chrono::steady_clock::now();
    run();
    Synchronize(device);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}
// --compare-forward 1 / --compare-train 1: both variants in one process, runs alternating (baseline first in even
// rounds, the module first in odd ones), so process-to-process drift (this machine: up to +-15 %) cancels in each
// round's ratio. A run is one forward (inference, no maps) or one training step (forward, deep-supervised loss,
// backward, Adam).
int
CompareVariants(std::map<std::string, std::string> & args,
                const torch::Device &                device,
                int64_t                              batch,
                int64_t                              side,
                int                                  rounds,
                bool                                 train)
{
  std::vector<std::shared_ptr<diva::SegmentationNetworkImpl>> networks;
  std::vector<std::unique_ptr<torch::optim::Adam>>            optimizers;
  for (const bool divAttention : { false, true })
  {
    torch::manual_seed(0);
    networks.push_back(Build(args["model"], args["preset"], divAttention, std::stoll(args["inputs"]), side,
                             std::stoll(args["feature-size"]), std::stoll(args["fusion-kernel"])));
    networks.back()->to(device);
    networks.back()->train(train);
    optimizers.push_back(
      std::make_unique<torch::optim::Adam>(networks.back()->parameters(), torch::optim::AdamOptions(1e-4)));
  }
  const auto input = torch::randn({ batch, networks[0]->GetInputChannels(), side, side, side }, device);
  const auto target = (torch::rand({ batch, 1, side, side, side }, device) > 0.5).to(torch::kFloat32);
  const diva::SegmentationLossOptions lossOptions;
  const auto                          run = [&](std::size_t which)
  {
    const auto start = std::chrono::steady_clock::now();
    if (train)
    {
      optimizers[which]->zero_grad();
      diva::DeepSupervisedLoss(networks[which]->Segment(input), target, lossOptions).backward();
      optimizers[which]->step();
    }
    else
    {
      torch::InferenceMode inference;
      networks[which]->Segment(input, diva::SegmentationRequest{ false });
    }
    Synchronize(device);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  for (int warmUp = 0; warmUp < 2; ++warmUp)
  {
    run(0);
    run(1);
  }
  std::vector<double> baseline, module, ratios;
  for (int round = 0; round < rounds; ++round)
  {
    double first = 0.0, second = 0.0;
    if (round % 2 == 0)
    {
      first = run(0);
      second = run(1);
    }
    else
    {
      second = run(1);
      first = run(0);
    }
    baseline.push_back(first);
    module.push_back(second);
    ratios.push_back(second / first);
  }
  const auto median = [](std::vector<double> values)
  {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
  };
  const char * what = train ? "train_step" : "forward";
  std::printf("device=%s model=%s preset=%s batch=%lld side=%lld threads=%d rounds=%d %s_ms_baseline=%.2f "
              "%s_ms_div_attention=%.2f median_round_ratio=%.4f\n",
              diva::DescribeDevice(device).c_str(), args["model"].c_str(), args["preset"].c_str(),
              static_cast<long long>(batch), static_cast<long long>(side), diva::GetTorchThreadBudget(), rounds, what,
              median(baseline), what, median(module), median(ratios));
  return 0;
}
} // namespace

int
main(int argc, char ** argv)
{
  std::map<std::string, std::string> args = {
    { "device", "auto" },       { "model", "unetr" },    { "preset", "paper" },   { "div-attention", "1" },
    { "batch", "1" },           { "side", "96" },        { "iterations", "10" },  { "threads", "0" },
    { "inputs", "1" },          { "profile", "" },       { "feature-size", "0" }, { "fusion-kernel", "0" },
    { "compare-forward", "0" }, { "compare-train", "0" }
  };
  for (int i = 1; i + 1 < argc; i += 2)
  {
    if (std::strncmp(argv[i], "--", 2) != 0 || args.count(argv[i] + 2) == 0)
    {
      std::cerr << "DivAttentionNetworkBench: error: unknown option " << argv[i] << '\n';
      return 2;
    }
    args[argv[i] + 2] = argv[i + 1];
  }
  try
  {
    diva::InstallHostAllocator();
    const int threads = std::stoi(args["threads"]);
    diva::SetTorchThreadBudget(threads > 0 ? threads : diva::DefaultThreadBudget());
    const torch::Device device = diva::ResolveDevice(args["device"]);
    const int64_t       batch = std::stoll(args["batch"]), side = std::stoll(args["side"]);
    const int           iterations = std::stoi(args["iterations"]);
    if (args["compare-forward"] == "1" || args["compare-train"] == "1")
    {
      return CompareVariants(args, device, batch, side, iterations, args["compare-train"] == "1");
    }
    auto network = Build(args["model"], args["preset"], args["div-attention"] == "1", std::stoll(args["inputs"]), side,
                         std::stoll(args["feature-size"]), std::stoll(args["fusion-kernel"]));
    network->to(device);
    const auto input = torch::randn({ batch, network->GetInputChannels(), side, side, side }, device);
    const auto target = (torch::rand({ batch, 1, side, side, side }, device) > 0.5).to(torch::kFloat32);

    network->eval();
    const auto inferOnce = [&]
    {
      torch::InferenceMode inference;
      network->Segment(input, diva::SegmentationRequest{ false }); // as the pipeline runs it: no attention maps asked
    };
    inferOnce(); // the first forward maps every buffer; what later ones map is churn of the host allocator's cache
    const auto   cacheBefore = diva::GetHostAllocatorStatistics();
    const double forward = MedianMilliseconds(device, iterations, inferOnce);
    const auto   cacheAfter = diva::GetHostAllocatorStatistics();
    const double freshPerForward = static_cast<double>(cacheAfter.freshBytes - cacheBefore.freshBytes) /
                                   (1024.0 * 1024.0) / static_cast<double>(iterations + 2);
    if (!args["profile"].empty())
    {
      // One more forward under LibTorch's profiler, as a chrome trace; Utilities/profile-summary.py sums it.
      torch::autograd::profiler::RecordProfile recording(args["profile"] + "-forward.json");
      torch::InferenceMode                     inference;
      network->Segment(input, diva::SegmentationRequest{ false });
      Synchronize(device);
    }
    network->train();
    torch::optim::Adam                  optimizer(network->parameters(), torch::optim::AdamOptions(1e-4));
    const diva::SegmentationLossOptions lossOptions;
    const double                        step = MedianMilliseconds(device, std::max(3, iterations / 2),
                                                                  [&]
                                                                  {
                                             optimizer.zero_grad();
                                             const auto output = network->Segment(input);
                                             auto       value = diva::DeepSupervisedLoss(output, target, lossOptions);
                                             value.backward();
                                             optimizer.step();
                                           });
    if (!args["profile"].empty())
    {
      torch::autograd::profiler::RecordProfile recording(args["profile"] + "-train.json");
      optimizer.zero_grad();
      diva::DeepSupervisedLoss(network->Segment(input), target, lossOptions).backward();
      optimizer.step();
      Synchronize(device);
    }
    std::printf("device=%s model=%s preset=%s div_attention=%s batch=%lld side=%lld threads=%d params=%.2fM "
                "forward_ms=%.2f train_step_ms=%.2f forward_fresh_mib=%.1f\n",
                diva::DescribeDevice(device).c_str(), args["model"].c_str(), args["preset"].c_str(),
                args["div-attention"].c_str(), static_cast<long long>(batch), static_cast<long long>(side),
                diva::GetTorchThreadBudget(), diva::CountParameters(*network) / 1e6, forward, step, freshPerForward);
    return 0;
  }
  catch (const std::exception & error)
  {
    std::cerr << "DivAttentionNetworkBench: error: " << error.what() << '\n';
    return 1;
  }
}
