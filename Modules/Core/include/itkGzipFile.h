#ifndef itkGzipFile_h
#define itkGzipFile_h

#include <string>

namespace itk
{
/** \class GzipFile
 * \brief Compresses a whole file into a standard gzip file (RFC 1952, one member) with libdeflate.
 *
 * ITK 5.2's NIfTI writer compresses `.nii.gz` through zlib at its default level, 0.45-0.5 s for the 78 MB mask of a
 * 512 x 512 x 300 CT on one core of the AVX-512 machine. libdeflate compresses the same bytes whole, in memory, in
 * about a third of that at level 6 (and into a similar size: 112 kB against zlib's 105 kB;
 * Documentation/Performance.md, "Cold start"). WriteImageAtomically uses it for `.nii.gz`: ITK writes the uncompressed
 * NIfTI (ITK's header and geometry), then Compress() turns it into the compressed temporary that is renamed into place.
 * The result is an ordinary gzip file: ITK, nibabel and gunzip read it.
 *
 * When the build found no libdeflate, IsAvailable() is false and WriteImageAtomically lets ITK compress.
 * \ingroup DivAttention
 */
class GzipFile
{
public:
  /** The compression level WriteImageAtomically uses (libdeflate's default: on masks, level 1 is slower and larger). */
  static constexpr int DefaultLevel = 6;

  /** Whether this build has libdeflate (Compress() throws otherwise). */
  static bool
  IsAvailable();

  /** Writes the gzip compression of the file `source` to `destination` (created or replaced; a file name recorded
   * in no header), at `level` (1 fastest to 12 smallest). Throws itk::ExceptionObject naming the file and the
   * problem when `source` cannot be read, `destination` cannot be written completely (a full disk, a file-size limit)
   * or the level is out of range; a partial `destination` is then removed. */
  static void
  Compress(const std::string & source, const std::string & destination, int level = DefaultLevel);
};
} // namespace itk

#endif
