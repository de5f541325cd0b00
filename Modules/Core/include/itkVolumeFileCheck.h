#ifndef itkVolumeFileCheck_h
#define itkVolumeFileCheck_h

#include <cstdint>
#include <string>

namespace itk
{
/** \class VolumeFileCheck
 * \brief Checks, from the file's own bytes, that an image file holds every voxel its header announces.
 *
 * ITK 5.2's NIfTI reader does not report a short read: a `.nii.gz` cut to its first 100 kB loads without complaint,
 * the missing voxels zero (or left as they were), and a NaN or infinite float voxel is silently replaced by 0 by the
 * NIfTI library. Check() reads the file itself and throws itk::ExceptionObject naming `what` and the file when
 *
 * - NIfTI-1 or NIfTI-2, single file (`.nii`, `.nii.gz`) or pair (`.hdr` + `.img`, each possibly `.gz`): the data
 *   holds fewer bytes than dim[1] x ... x dim[dim[0]] x bitpix / 8 from vox_offset on, or a float32 / float64 voxel
 *   is NaN or infinite (it names the count and the first voxel's index);
 * - any file that is gzip-compressed as a whole (NIfTI or another format): the gzip stream is cut short or fails
 *   its CRC-32;
 * - any other file: nothing is checked here (MetaImage and NRRD readers of ITK 5.2 report a short or corrupt data
 *   block themselves; Documentation/Reliability.md lists what is tested).
 *
 * Costs one pass over the file (decompression included): about 10 ms per 1 MB of a `.nii.gz` on one core.
 * \ingroup DivAttention
 */
class VolumeFileCheck
{
public:
  /** Throws itk::ExceptionObject ("DivAttention: input "<what>": file "<path>" ...") when the file is cut short,
   * corrupt, or (NIfTI) holds non-finite float voxels; does nothing for a complete file. */
  static void
  Check(const std::string & path, const std::string & what);

  /** Bytes of the file's content after decompression (the file's size when it is not gzip-compressed); throws
   * itk::ExceptionObject naming `what` when a gzip stream is cut short or corrupt. */
  static uint64_t
  DecompressedSize(const std::string & path, const std::string & what);
};
} // namespace itk

#endif
