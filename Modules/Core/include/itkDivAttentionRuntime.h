#ifndef itkDivAttentionRuntime_h
#define itkDivAttentionRuntime_h

#include <torch/types.h>

#include <string>

namespace itk
{
/** \class DivAttentionRuntime
 * \brief One place for the process-wide settings shared by ITK and LibTorch.
 *
 * - Thread budget: ITK's global default number of threads, LibTorch's intra-op pool and OpenBLAS's pool are all set
 *   to the same number. ITK filters and network forwards run one after the other in a pipeline, so each may use the
 *   whole budget without the two ever oversubscribing the cores.
 * - Device: "auto" (CUDA when LibTorch sees it, else CPU), "cpu", "cuda" or "cuda:N"; a CUDA request where none
 *   exists is an itk::ExceptionObject that says so.
 * - Host memory: Initialize() installs the caching huge-page allocator for LibTorch (diva::InstallHostAllocator).
 * - Image formats: RegisterImageIOFactories() makes ITK's readers and writers know NIfTI, NRRD, MetaImage, PNG and
 *   DICOM (GDCM). It runs when the library is loaded, so every program that links DivAttention can read and write
 *   them in each of the three build modes (in ITK's module system nothing else registers them for an executable).
 *
 * \ingroup DivAttention
 */
class DivAttentionRuntime
{
public:
  /** Registers the image IO factories, installs the host allocator and applies the default thread budget
   * (DIVATTENTION_NUM_THREADS, else the CPUs this process may use) unless a budget was set before. Idempotent; every
   * application calls it first. */
  static void
  Initialize();

  /** Registers ITK's image IO factories for the formats DivAttention supports. Idempotent, and coordinated with
   * UseITK.cmake's registration manager (through ITK's own once-only registration functions): no factory is ever
   * registered twice. Called at library load; call it again only after unregistering factories. */
  static void
  RegisterImageIOFactories();

  /** Sets ITK's, LibTorch's and the BLAS's thread counts to `threads` (>= 1); throws itk::ExceptionObject else. */
  static void
  SetThreadBudget(int threads);

  /** The budget in force. */
  static int
  GetThreadBudget();

  /** Parses and resolves a device text; throws itk::ExceptionObject naming the text on error. */
  static torch::Device
  ResolveDevice(const std::string & deviceText);
};
} // namespace itk

#endif
