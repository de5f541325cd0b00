#ifndef divaCliTestSupport_h
#define divaCliTestSupport_h
// What the application bad-input tests share: run a built executable, capture its output and exit code, make tiny
// images, and check the failure contract (one "<app>: error: " line naming the input, non-zero exit, no output).
#include "itkCTPhantomGenerator.h"
#include "itkImage.h"
#include "itkWriteImageAtomically.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace diva
{
namespace clitest
{
namespace fs = std::filesystem;

struct Result
{
  int         exitCode = -1; // -1: killed by a signal
  int         signal = 0;    // the signal that killed it, 0 if it exited
  std::string output;        // stdout and stderr together
};

/** Runs a shell command line (an executable and its arguments, optionally with environment assignments in front),
 * capturing stdout and stderr together. */
inline Result
RunShell(const std::string & command)
{
  Result result;
  FILE * pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr)
  {
    return result;
  }
  std::array<char, 4096> buffer{};
  while (fgets(buffer.data(), static_cast<int>(buffer.size()), pipe) != nullptr)
  {
    result.output += buffer.data();
  }
  const int status = pclose(pipe);
  result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  return result;
}

inline Result
Run(const std::string & executable, const std::string & arguments)
{
  return RunShell(executable + " " + arguments);
}

#ifdef DIVATTENTION_SEGMENT_EXE
/** Runs DivAttentionSegment (the executable the test target is built against) with `arguments`. */
inline Result
RunSegment(const std::string & arguments)
{
  return Run(DIVATTENTION_SEGMENT_EXE, arguments);
}
#endif

/** A scratch directory of this process (CTest runs the cases of a suite in parallel processes). */
inline fs::path
MakeScratch(const std::string & name)
{
  const fs::path root = fs::temp_directory_path() / ("divattention-" + name + "-cli-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  return root;
}

/** Runs `application` with `arguments` and expects the failure contract: exit code `exitCode` (1 for a bad input, 2 for
 * a command-line usage error), one "<application>: error: " message holding every fragment, and none of `absent`
 * left on disk. */
inline void
ExpectFailure(const std::string &              executable,
              const std::string &              application,
              const std::string &              arguments,
              const std::vector<std::string> & fragments,
              const std::vector<fs::path> &    absent,
              int                              exitCode = 1)
{
  const Result result = Run(executable, arguments);
  EXPECT_EQ(result.exitCode, exitCode) << result.output;
  const std::string prefix = application + ": error: ";
  const auto        start = result.output.find(prefix);
  ASSERT_NE(start, std::string::npos) << result.output;
  const std::string message = result.output.substr(start, result.output.find('\n', start) - start);
  for (const auto & fragment : fragments)
  {
    EXPECT_NE(message.find(fragment), std::string::npos) << "expected \"" << fragment << "\" in: " << message;
  }
  for (const auto & path : absent)
  {
    EXPECT_FALSE(fs::exists(path)) << "left behind: " << path;
  }
}

#if defined(DIVATTENTION_SEGMENT_EXE) && defined(DIVATTENTION_BUNDLED_MODEL_DIR)
/** A test of DivAttentionSegment with the bundled models on the demo phantom (Models/, Models/demo/), in a scratch
 * directory of its own that is removed after the test. */
class BundledDemoTest : public ::testing::Test
{
protected:
  /** Skips the test (check IsSkipped() after the call) unless the two bundled models, the demo CT and the demo files
   * `demoFiles` (names in Models/demo) are there; otherwise makes the scratch directory `scratch` (MakeScratch). */
  void
  SetUpDemo(const std::vector<std::string> & demoFiles, const std::string & scratch)
  {
    std::vector<fs::path> needed{ CoarseModel(), RefineModel(), CT() };
    for (const auto & name : demoFiles)
    {
      needed.push_back(demo / name);
    }
    for (const auto & path : needed)
    {
      if (!fs::is_regular_file(path))
      {
        GTEST_SKIP() << path << " is missing (the bundled models and demo phantom are not in this tree)";
      }
    }
    root = MakeScratch(scratch);
  }

  void
  TearDown() override
  {
    if (!root.empty())
    {
      fs::remove_all(root);
    }
  }

  fs::path
  CoarseModel() const
  {
    return models / "coarse-munet-small.pt";
  }

  fs::path
  RefineModel() const
  {
    return models / "refine-unetr-small-divattention.pt";
  }

  fs::path
  CT() const
  {
    return demo / "phantom-ct.nii.gz";
  }

  /** DivAttentionSegment on the demo CT with the bundled models and 2 threads, then `arguments`. */
  Result
  Segment(const std::string & arguments) const
  {
    return RunSegment("--input " + CT().string() + " --coarse-model " + CoarseModel().string() + " --refine-model " +
                      RefineModel().string() + " --threads 2 " + arguments);
  }

  const fs::path models = DIVATTENTION_BUNDLED_MODEL_DIR;
  const fs::path demo = models / "demo";
  fs::path       root; ///< the scratch directory; empty when the test was skipped
};
#endif

/** A 3D image of `size` voxels (spacing 2 mm) filled with `value`, a cube of `cube` from index 4 to 11. */
template<typename TPixel>
void
WriteCube(const fs::path & path, itk::Size<3> size, TPixel value, TPixel cube)
{
  using ImageType = itk::Image<TPixel, 3>;
  auto image = ImageType::New();
  image->SetRegions(size);
  typename ImageType::SpacingType spacing;
  spacing.Fill(2.0);
  image->SetSpacing(spacing);
  image->Allocate();
  image->FillBuffer(value);
  for (itk::IndexValueType z = 4; z < 12 && z < static_cast<itk::IndexValueType>(size[2]); ++z)
  {
    for (itk::IndexValueType y = 4; y < 12; ++y)
    {
      for (itk::IndexValueType x = 4; x < 12; ++x)
      {
        image->SetPixel({ { x, y, z } }, cube);
      }
    }
  }
  itk::WriteImageAtomically(image.GetPointer(), path.string());
}

/** Writes case `id` into `directory`: a 16^3 CT (40 HU, a 300 HU cube) and its label (the cube holds `label`). */
inline void
WriteCase(const fs::path & directory, const std::string & id, uint8_t label = 1, unsigned labelSlices = 16)
{
  WriteCube<float>(directory / (id + "_ct.nii.gz"), itk::Size<3>{ { 16, 16, 16 } }, 40.0f, 300.0f);
  WriteCube<uint8_t>(directory / (id + "_label.nii.gz"), itk::Size<3>{ { 16, 16, labelSlices } }, 0, label);
}

inline void
WriteText(const fs::path & path, const std::string & text)
{
  std::ofstream(path) << text;
}

/** A small phantom, generated: 48 x 40 x 28 voxels of `spacing` mm (x, y, z), no organ lesion and no nodule, so that
 * its first object is the liver. */
inline itk::CTPhantomGenerator::Pointer
MakeSmallPhantom(const std::array<double, 3> & spacing)
{
  auto generator = itk::CTPhantomGenerator::New();
  generator->SetSize(itk::CTPhantomGenerator::SizeType{ { 48, 40, 28 } });
  generator->SetSpacing(itk::CTPhantomGenerator::SpacingType(spacing.data()));
  generator->SetNumberOfOrganLesions(0);
  generator->SetNumberOfNodules(0);
  generator->Update();
  return generator;
}

/** A physical point as --click text: "x,y,z", each coordinate as std::to_string writes it. */
inline std::string
PointText(const itk::Point<double, 3> & point)
{
  return std::to_string(point[0]) + "," + std::to_string(point[1]) + "," + std::to_string(point[2]);
}

} // namespace clitest
} // namespace diva

#endif
