// Determinism (issue 8): on the CPU at a fixed thread count, a forward pass is bit-identical from run to run and from
// one copy of the network to another (a fresh process that loads the same weights), for every network of the method.
// Across thread counts results may differ by rounding: DivAttentionDeterminismBench measures by how much
// (Documentation/Reliability.md, "Determinism").
#include "divaESPNet3D.h"
#include "divaMUnet.h"
#include "divaModelFile.h"
#include "divaSegmentationLoss.h"
#include "divaThreadBudget.h"
#include "divaUNETR.h"

#include "NetworkTestSupport.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

namespace
{
std::shared_ptr<diva::SegmentationNetworkImpl>
Build(const std::string & architecture, int64_t side)
{
  if (architecture == "UNETR")
  {
    auto options = diva::UNETROptions::Preset("small").image_size(side);
    options.div_attention().enabled(true);
    return std::make_shared<diva::UNETRImpl>(options);
  }
  if (architecture == "mUnet")
  {
    auto options = diva::MUnetOptions::Preset("small").in_channels(2);
    options.div_attention().enabled(true);
    return std::make_shared<diva::MUnetImpl>(options);
  }
  auto options = diva::ESPNet3DOptions::Preset("small");
  options.div_attention().enabled(true);
  return std::make_shared<diva::ESPNet3DImpl>(options);
}

torch::Tensor
Probability(diva::SegmentationNetworkImpl & network, const torch::Tensor & input)
{
  torch::InferenceMode guard;
  return diva::ForegroundProbability(network.Segment(input).logits);
}

// The same weights in a second network object, through the serialized form (what another process would load).
std::shared_ptr<diva::SegmentationNetworkImpl>
Copy(diva::SegmentationNetworkImpl & network)
{
  std::stringstream               bytes;
  torch::serialize::OutputArchive out;
  network.save(out);
  out.save_to(bytes);
  auto                           copy = diva::CreateNetwork(network.GetSettings());
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  copy->load(in);
  copy->eval();
  return copy;
}

class Determinism : public ::testing::TestWithParam<int>
{
protected:
  void
  SetUp() override
  {
    m_Before = diva::GetTorchThreadBudget();
    diva::SetTorchThreadBudget(GetParam());
  }
  void
  TearDown() override
  {
    diva::SetTorchThreadBudget(m_Before);
  }

private:
  int m_Before = 1;
};
} // namespace

TEST_P(Determinism, ForwardIsBitIdenticalAcrossRunsAndCopiesAtAFixedThreadCount)
{
  constexpr int64_t side = 32;
  for (const std::string architecture : { "UNETR", "mUnet", "ESPNet3D" })
  {
    SCOPED_TRACE(architecture);
    torch::manual_seed(21);
    auto network = Build(architecture, side);
    network->eval();
    const auto input = diva::testing::MakePhantom(side, network->GetInputChannels()).first;
    const auto first = Probability(*network, input);
    // Tolerance 0 (torch::equal): the same kernels on the same data with the same work split must give the same bits.
    EXPECT_TRUE(torch::equal(Probability(*network, input), first));
    EXPECT_TRUE(torch::equal(Probability(*Copy(*network), input), first));
    // The comparison can fail: a change of one part in 10^4 of the input moves the output.
    EXPECT_FALSE(torch::equal(Probability(*network, input * 1.0001), first));
  }
}

INSTANTIATE_TEST_SUITE_P(Threads, Determinism, ::testing::Values(1, 2));
