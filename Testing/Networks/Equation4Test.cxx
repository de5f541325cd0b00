// Eq. 4 of the paper, attn = |Softmax(M_i - M_{i-1})| / sqrt(D*H*W), against values computed from the formula itself:
// literals worked out by hand (with a calculator) on tensors of a few voxels, and the formula written out in plain
// loops in double. Neither uses DivAttentionBlockImpl::Attention() or LibTorch's softmax, so a normalisation that only
// keeps the properties (bounds, sums to 1/sqrt(D*H*W)), such as a linear one, or a wrong scale, fails here. The fused
// CPU kernels (FusedDivAttention, FusedDivAttentionJunction) are checked against the same independent values.
#include "divaDivAttentionBlock.h"
#include "divaFusedDivAttention.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace
{
using diva::AbsolutePlacement;
using diva::SoftmaxAxis;

std::vector<double>
Values(const torch::Tensor & t)
{
  const auto c = t.detach().to(torch::kDouble).contiguous();
  return { c.data_ptr<double>(), c.data_ptr<double>() + c.numel() };
}

// Eq. 4 in plain loops, on masks laid out [N, C, V] (V = D*H*W voxels). Space: the softmax runs over the V voxels of
// each (sample, channel); Channel: over the C channels of each (sample, voxel). OfResidual: softmax(|M_i - M_{i-1}|),
// OfSoftmax: |softmax(M_i - M_{i-1})|, as printed.
std::vector<double>
Equation4ByLoops(const std::vector<double> & upperMask,
                 const std::vector<double> & lowerMask,
                 int64_t                     samples,
                 int64_t                     channels,
                 int64_t                     voxels,
                 SoftmaxAxis                 axis,
                 AbsolutePlacement           placement)
{
  std::vector<double> exponentials(upperMask.size());
  for (size_t i = 0; i < upperMask.size(); ++i)
  {
    const double residual = upperMask[i] - lowerMask[i];
    exponentials[i] = std::exp(placement == AbsolutePlacement::OfResidual ? std::fabs(residual) : residual);
  }
  std::vector<double> attention(upperMask.size());
  const double        root = std::sqrt(static_cast<double>(voxels));
  for (int64_t n = 0; n < samples; ++n)
  {
    if (axis == SoftmaxAxis::Space)
    {
      for (int64_t c = 0; c < channels; ++c)
      {
        const int64_t offset = (n * channels + c) * voxels;
        double        sum = 0.0;
        for (int64_t v = 0; v < voxels; ++v)
        {
          sum += exponentials[offset + v];
        }
        for (int64_t v = 0; v < voxels; ++v)
        {
          attention[offset + v] = std::fabs(exponentials[offset + v] / sum) / root;
        }
      }
    }
    else
    {
      for (int64_t v = 0; v < voxels; ++v)
      {
        double sum = 0.0;
        for (int64_t c = 0; c < channels; ++c)
        {
          sum += exponentials[(n * channels + c) * voxels + v];
        }
        for (int64_t c = 0; c < channels; ++c)
        {
          const int64_t i = (n * channels + c) * voxels + v;
          attention[i] = std::fabs(exponentials[i] / sum) / root;
        }
      }
    }
  }
  return attention;
}

double
Sigmoid(double x)
{
  return 1.0 / (1.0 + std::exp(-x));
}

double
LeakyRelu(double x, double slope)
{
  return x < 0.0 ? slope * x : x;
}

// Instance norm of one run of values in place: (x - mean) / sqrt(biased variance + eps), then weight and bias.
void
NormalizeByLoops(double * x, int64_t count, double eps, double weight = 1.0, double bias = 0.0)
{
  double mean = 0.0;
  for (int64_t v = 0; v < count; ++v)
  {
    mean += x[v];
  }
  mean /= static_cast<double>(count);
  double variance = 0.0;
  for (int64_t v = 0; v < count; ++v)
  {
    variance += (x[v] - mean) * (x[v] - mean);
  }
  variance /= static_cast<double>(count);
  for (int64_t v = 0; v < count; ++v)
  {
    x[v] = weight * (x[v] - mean) / std::sqrt(variance + eps) + bias;
  }
}

// Element by element: |actual - expected| <= tolerance * |expected| (attention values are all within a factor e^2 of
// each other in one softmax, so an error relative to each value is the strict test).
void
ExpectEachRelativelyClose(const torch::Tensor &       actual,
                          const std::vector<double> & expected,
                          double                      tolerance,
                          const std::string &         what)
{
  const auto values = Values(actual);
  ASSERT_EQ(values.size(), expected.size()) << what;
  int reported = 0;
  for (size_t i = 0; i < values.size(); ++i)
  {
    if (!(std::fabs(values[i] - expected[i]) <= tolerance * std::fabs(expected[i])) && reported++ < 5)
    {
      ADD_FAILURE() << what << ": element " << i << " is " << values[i] << ", the formula gives " << expected[i];
    }
  }
}

// Element by element against the largest magnitude of the expected values (outputs that pass through a norm: values
// near zero carry the absolute rounding of the others).
void
ExpectCloseToScale(const torch::Tensor &       actual,
                   const std::vector<double> & expected,
                   double                      tolerance,
                   const std::string &         what)
{
  const auto values = Values(actual);
  ASSERT_EQ(values.size(), expected.size()) << what;
  double scale = 0.0;
  for (const double e : expected)
  {
    scale = std::max(scale, std::fabs(e));
  }
  ASSERT_GT(scale, 0.0) << what;
  int reported = 0;
  for (size_t i = 0; i < values.size(); ++i)
  {
    if (!(std::fabs(values[i] - expected[i]) <= tolerance * scale) && reported++ < 5)
    {
      ADD_FAILURE() << what << ": element " << i << " is " << values[i] << ", the formula gives " << expected[i]
                    << " (scale " << scale << ")";
    }
  }
}

std::string
Describe(SoftmaxAxis axis, AbsolutePlacement placement)
{
  return diva::ToString(axis) + ", " + diva::ToString(placement);
}

// Hand-computed eq. 4 on [1, 2, 1, 1, 4]: four voxels (sqrt(D*H*W) = 2), two channels, masks that are exact in float.
//   channel 0: M_i = (1, 0.5, 0.75, 0),    M_{i-1} = (0, 0.5, 0.25, 1)  -> residual (1, 0, 0.5, -1)
//   channel 1: M_i = (0.25, 0.25, 0.5, 1), M_{i-1} = (0.5, 0.25, 0, 0.5) -> residual (-0.25, 0, 0.5, 0.5)
// e.g. softmax over space of |residual| in channel 0: e / (2e + 1 + e^0.5) / 2 = 2.718282 / 8.085285 / 2 = 0.1681006
// (a linear normalisation gives 1 / 2.5 / 2 = 0.2; the printed order |softmax| gives e / (e + 1 + e^0.5 + e^-1) / 2).
struct HandCase
{
  SoftmaxAxis       axis;
  AbsolutePlacement placement;
  double            expected[2][4];
};

const HandCase kHandCases[] = {
  { SoftmaxAxis::Space,
    AbsolutePlacement::OfResidual,
    { { 0.168100559, 0.0618407396, 0.101958143, 0.168100559 },
      { 0.115025781, 0.0895821679, 0.147696026, 0.147696026 } } },
  { SoftmaxAxis::Space,
    AbsolutePlacement::OfSoftmax,
    { { 0.236995423, 0.0871857438, 0.14374499, 0.0320738427 },
      { 0.0767103479, 0.0984980364, 0.162395808, 0.162395808 } } },
  // Over the two channels at each voxel: e.g. voxel 0, |residual| (1, 0.25): e / (e + e^0.25) / 2 = 0.3395894.
  { SoftmaxAxis::Channel,
    AbsolutePlacement::OfResidual,
    { { 0.33958935, 0.25, 0.25, 0.311229666 }, { 0.16041065, 0.25, 0.25, 0.188770334 } } },
  { SoftmaxAxis::Channel,
    AbsolutePlacement::OfSoftmax,
    { { 0.388649931, 0.25, 0.25, 0.0912127619 }, { 0.111350069, 0.25, 0.25, 0.408787238 } } },
};

torch::Tensor
HandUpperMask()
{
  return torch::tensor({ 1.0f, 0.5f, 0.75f, 0.0f, 0.25f, 0.25f, 0.5f, 1.0f }).view({ 1, 2, 1, 1, 4 });
}

torch::Tensor
HandLowerMask()
{
  return torch::tensor({ 0.0f, 0.5f, 0.25f, 1.0f, 0.5f, 0.25f, 0.0f, 0.5f }).view({ 1, 2, 1, 1, 4 });
}
} // namespace

// The literals are rounded to 9 significant digits (5e-9 relative); the float computation (exp, a sum of four terms, a
// division) is within a few float ulps (1.3e-7 relative measured on AVX-512). 1e-6 relative fails on a linear
// normalisation (19 % off), on 1/(D*H*W) in place of 1/sqrt(D*H*W) (a factor 2), on the other axis or the other
// placement of the bars.
TEST(Equation4, AttentionGivesTheHandComputedValues)
{
  for (const auto & c : kHandCases)
  {
    const auto attention =
      diva::DivAttentionBlockImpl::Attention(HandUpperMask(), HandLowerMask(), c.axis, c.placement);
    std::vector<double> expected(std::begin(c.expected[0]), std::end(c.expected[0]));
    expected.insert(expected.end(), std::begin(c.expected[1]), std::end(c.expected[1]));
    EXPECT_EQ(attention.sizes(), torch::IntArrayRef({ 1, 2, 1, 1, 4 }));
    ExpectEachRelativelyClose(attention, expected, 1e-6, Describe(c.axis, c.placement));
  }
}

// The loops below are the reference of the larger tests: they give the hand-computed values too (in double: 1e-8).
TEST(Equation4, TheLoopsGiveTheHandComputedValues)
{
  for (const auto & c : kHandCases)
  {
    const auto attention =
      Equation4ByLoops(Values(HandUpperMask()), Values(HandLowerMask()), 1, 2, 4, c.axis, c.placement);
    for (int channel = 0; channel < 2; ++channel)
    {
      for (int v = 0; v < 4; ++v)
      {
        EXPECT_NEAR(attention[channel * 4 + v], c.expected[channel][v], 1e-8)
          << Describe(c.axis, c.placement) << ", channel " << channel << ", voxel " << v;
      }
    }
  }
}

// The fused kernels start from the logits (eqs. 2-3 inside). On [1, 2, 1, 4, 5] (20 voxels: two 8-lane vectors and a
// 4-voxel scalar tail), logits of masks 0.75 = sigmoid(ln 3), 0.5 = sigmoid(0) and 0.25 = sigmoid(-ln 3):
//   channel 0: voxels 0-3 M_i = 0.75, M_{i-1} = 0.25 (residual 0.5, in a vector); voxels 16-19 M_i = 0.25,
//              M_{i-1} = 0.5 (residual -0.25, in the tail); the 12 others 0.5 and 0.5 (residual 0)
//   channel 1: every voxel 0.5 and 0.5: a uniform map, 1 / 20 / sqrt(20) = 0.0111803399
// Channel 0 by hand, S = 4 e^0.5 + 4 e^{+-0.25} + 12 (the sign: |residual| or the residual itself):
//   OfResidual: e^0.5 / S / sqrt(20) = 0.0155351856, e^0.25 / S / sqrt(20) = 0.0120988147, 1 / S / sqrt(20) =
//   0.00942256637; OfSoftmax: 0.0169812891, e^-0.25 / S / sqrt(20) = 0.00802139298, 0.0102996725.
// Tolerance 2e-6 relative: the kernels' exp is a polynomial (2e-7 relative, three per voxel), the logits of 0.75 and
// 0.25 are rounded to float (sigmoid(float(ln 3)) is 0.75 to 3e-8), the sum runs in double (9e-8 measured); a linear
// normalisation or any other scale is percents off.
TEST(Equation4, FusedKernelsGiveTheHandComputedValues)
{
  const auto probe = torch::zeros({ 1, 2, 1, 4, 5 });
  if (!diva::FusedDivAttentionApplies(probe, probe, probe, SoftmaxAxis::Space))
  {
    GTEST_SKIP() << "the fused kernels need AVX2 and FMA, which this CPU lacks";
  }
  const float         ln3 = static_cast<float>(std::log(3.0));
  std::vector<float>  upper(40, 0.0f), lower(40, 0.0f);
  std::vector<double> features(40);
  for (int v = 0; v < 4; ++v)
  {
    upper[v] = ln3;
    lower[v] = -ln3;
  }
  for (int v = 16; v < 20; ++v)
  {
    upper[v] = -ln3;
  }
  for (int i = 0; i < 40; ++i)
  {
    features[i] = 0.5 + 0.25 * (i % 7); // positive and varied: attn * F shows every voxel's weight
  }
  const auto upperTensor = torch::tensor(upper).view({ 1, 2, 1, 4, 5 });
  const auto lowerTensor = torch::tensor(lower).view({ 1, 2, 1, 4, 5 });
  const auto featureTensor = torch::tensor(features, torch::kFloat).view({ 1, 2, 1, 4, 5 });
  const struct
  {
    AbsolutePlacement placement;
    double            plus, minus, zero;
  } cases[] = { { AbsolutePlacement::OfResidual, 0.0155351856, 0.0120988147, 0.00942256637 },
                { AbsolutePlacement::OfSoftmax, 0.0169812891, 0.00802139298, 0.0102996725 } };
  for (const auto & c : cases)
  {
    std::vector<double> expected(40, 0.0111803399);
    for (int v = 0; v < 20; ++v)
    {
      expected[v] = v < 4 ? c.plus : (v >= 16 ? c.minus : c.zero);
    }
    const std::string    what = diva::ToString(c.placement);
    torch::InferenceMode inference;
    // M_ref not normalised: the fusion input is O_i + O'_{i-1} + attn * F, each term known here.
    const auto result = diva::FusedDivAttention(upperTensor, lowerTensor, featureTensor, c.placement, false, 1e-5);
    ExpectEachRelativelyClose(result.attention, expected, 2e-6, "FusedDivAttention, " + what);
    std::vector<double> fusionInput(40);
    for (int i = 0; i < 40; ++i)
    {
      fusionInput[i] = double(upper[i]) + double(lower[i]) + expected[i] * features[i];
    }
    ExpectCloseToScale(result.fusionInput, fusionInput, 1e-6, "FusedDivAttention's fusion input, " + what);

    diva::FusedJunctionParameters p;
    p.placement = c.placement;
    p.fuseWeight = torch::eye(2).view({ 2, 2, 1, 1, 1 });
    const auto junction = diva::FusedDivAttentionJunction(upperTensor, lowerTensor, featureTensor, p);
    ExpectEachRelativelyClose(junction.attention, expected, 2e-6, "FusedDivAttentionJunction, " + what);
  }
}

// Random logits on [2, 3, 9, 11, 13]: 1287 voxels per instance (a full 1024-voxel block, a ragged one, a 7-voxel
// tail), masks anywhere in (0, 1). The block's Attention() for the four readings, and both fused kernels' outputs,
// against the loops: eq. 4, then (kernels) M_ref = attn * F, its instance norm in uniform-attention units, the sum
// O_i + O'_{i-1} + M_ref, and for the junction the image branch's norm before and the 1x1x1 fusion and its norm after.
TEST(Equation4, OperatorsAndFusedKernelsMatchTheFormulaInLoops)
{
  torch::manual_seed(2026);
  const int64_t       samples = 2, channels = 3, voxels = 9 * 11 * 13;
  const auto          upper = torch::randn({ samples, channels, 9, 11, 13 }) * 2.0;
  const auto          lower = torch::randn({ samples, channels, 9, 11, 13 }) * 2.0;
  const auto          raw = torch::randn({ samples, channels, 9, 11, 13 }) * 3.0 + 20.0; // image convolution
  const auto          u = Values(upper), l = Values(lower), g = Values(raw);
  std::vector<double> upperMask(u.size()), lowerMask(l.size());
  for (size_t i = 0; i < u.size(); ++i)
  {
    upperMask[i] = Sigmoid(u[i]);
    lowerMask[i] = Sigmoid(l[i]);
  }
  torch::InferenceMode inference;
  // Attention() on masks made by LibTorch's sigmoid (float): 5e-6 relative covers their rounding (1e-7 absolute in the
  // residual) and the float softmax over 1287 terms (4e-7 measured on AVX-512; LibTorch's exp differs by ISA).
  for (const auto axis : { SoftmaxAxis::Space, SoftmaxAxis::Channel })
  {
    for (const auto placement : { AbsolutePlacement::OfResidual, AbsolutePlacement::OfSoftmax })
    {
      const auto expected = Equation4ByLoops(upperMask, lowerMask, samples, channels, voxels, axis, placement);
      ExpectEachRelativelyClose(
        diva::DivAttentionBlockImpl::Attention(torch::sigmoid(upper), torch::sigmoid(lower), axis, placement), expected,
        5e-6, "Attention(), " + Describe(axis, placement));
    }
  }
  if (!diva::FusedDivAttentionApplies(upper, lower, raw, SoftmaxAxis::Space))
  {
    GTEST_SKIP() << "the fused kernels need AVX2 and FMA, which this CPU lacks";
  }
  // The junction's parameters, away from 1 and 0 so that ignoring one fails.
  const auto imageWeight = torch::rand({ channels }) + 0.5, imageBias = torch::rand({ channels }) - 0.5;
  const auto fuseNormWeight = torch::rand({ channels }) + 0.5, fuseNormBias = torch::rand({ channels }) - 0.5;
  const auto fuseWeight = torch::randn({ channels, channels, 1, 1, 1 });
  const auto iw = Values(imageWeight), ib = Values(imageBias), fw = Values(fuseNormWeight), fb = Values(fuseNormBias),
             w = Values(fuseWeight);
  const double        eps = 1e-5, slope = 0.01;
  const double        uniformUnits = voxels * std::sqrt(double(voxels)); // 1 / (uniform attention value)
  std::vector<double> features = g;                                      // F = leaky_relu(image_norm(raw))
  for (int64_t instance = 0; instance < samples * channels; ++instance)
  {
    const int64_t c = instance % channels;
    NormalizeByLoops(features.data() + instance * voxels, voxels, eps, iw[c], ib[c]);
  }
  for (double & f : features)
  {
    f = LeakyRelu(f, slope);
  }
  for (const auto placement : { AbsolutePlacement::OfResidual, AbsolutePlacement::OfSoftmax })
  {
    const auto attention =
      Equation4ByLoops(upperMask, lowerMask, samples, channels, voxels, SoftmaxAxis::Space, placement);
    for (const bool normalize : { false, true })
    {
      const std::string what = diva::ToString(placement) + (normalize ? ", M_ref normalised" : ", M_ref as is");
      // X = O_i + O'_{i-1} + M_ref, with M_ref = attn * F (normalised in uniform-attention units if asked).
      const auto fusionInputFor = [&](const std::vector<double> & f)
      {
        std::vector<double> refined(attention.size());
        for (size_t i = 0; i < refined.size(); ++i)
        {
          refined[i] = attention[i] * f[i] * (normalize ? uniformUnits : 1.0);
        }
        if (normalize)
        {
          for (int64_t instance = 0; instance < samples * channels; ++instance)
          {
            NormalizeByLoops(refined.data() + instance * voxels, voxels, eps);
          }
        }
        std::vector<double> x(refined.size());
        for (size_t i = 0; i < x.size(); ++i)
        {
          x[i] = u[i] + l[i] + refined[i];
        }
        return x;
      };

      // FusedDivAttention with the raw features: attn 5e-6 relative (as above, with the kernel's polynomial exp: 3e-7
      // measured); the fusion input 5e-6 of its scale (the norm's statistics in double over float products: 4.5e-7
      // measured).
      const auto fused =
        diva::FusedDivAttention(upper, lower, raw, placement, normalize, eps, normalize ? uniformUnits : 1.0);
      ExpectEachRelativelyClose(fused.attention, attention, 5e-6, "FusedDivAttention attn, " + what);
      ExpectCloseToScale(fused.fusionInput, fusionInputFor(g), 5e-6, "FusedDivAttention fusion input, " + what);

      // FusedDivAttentionJunction: fused = leaky_relu(fuse_norm(W X)), W the 1x1x1 fusion (no bias: the norm
      // removes it). 1e-5 of the output's scale: three norms and a product of three channels in float (2e-7
      // measured; the margin is for other CPUs' product order).
      diva::FusedJunctionParameters p;
      p.imageNormWeight = imageWeight;
      p.imageNormBias = imageBias;
      p.imageNormEps = eps;
      p.placement = placement;
      p.normalizeRefined = normalize;
      p.refinedEps = eps;
      p.refinedScale = normalize ? uniformUnits : 1.0;
      p.fuseWeight = fuseWeight;
      p.fuseNormWeight = fuseNormWeight;
      p.fuseNormBias = fuseNormBias;
      p.fuseNormEps = eps;
      p.negativeSlope = slope;
      const auto          x = fusionInputFor(features);
      std::vector<double> output(x.size(), 0.0);
      for (int64_t n = 0; n < samples; ++n)
      {
        for (int64_t out = 0; out < channels; ++out)
        {
          double * y = output.data() + (n * channels + out) * voxels;
          for (int64_t in = 0; in < channels; ++in)
          {
            const double * source = x.data() + (n * channels + in) * voxels;
            for (int64_t v = 0; v < voxels; ++v)
            {
              y[v] += w[out * channels + in] * source[v];
            }
          }
          NormalizeByLoops(y, voxels, eps, fw[out], fb[out]);
          for (int64_t v = 0; v < voxels; ++v)
          {
            y[v] = LeakyRelu(y[v], slope);
          }
        }
      }
      const auto junction = diva::FusedDivAttentionJunction(upper, lower, raw, p);
      ExpectEachRelativelyClose(junction.attention, attention, 5e-6, "FusedDivAttentionJunction attn, " + what);
      ExpectCloseToScale(junction.fused, output, 1e-5, "FusedDivAttentionJunction output, " + what);
    }
  }
}
