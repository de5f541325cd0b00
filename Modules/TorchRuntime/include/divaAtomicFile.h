#ifndef divaAtomicFile_h
#define divaAtomicFile_h

#include <functional>
#include <string>

namespace diva
{
/** \brief Writes a file so that readers see the old file or the complete new one, never a truncated one.
 *
 * `write` is called with a temporary path in the destination's directory (same file system, so the final rename is
 * atomic); the temporary keeps the destination's full extension (".nii.gz", ".pt") so that writers that choose a
 * format by extension behave as for the destination. After `write` returns, the temporary is flushed to disk (fsync)
 * and renamed over `destination`, and the directory entry is flushed too. If `write` throws or fails, the temporary
 * is removed, the destination is untouched, and the exception propagates.
 * Throws std::runtime_error naming the path when the directory does not exist or the rename fails.
 * \ingroup DivAttention
 */
void
WriteFileAtomically(const std::string &                                            destination,
                    const std::function<void(const std::string & temporaryPath)> & write);

/** The temporary path WriteFileAtomically would use for `destination` (exposed for tests and cleanup tools). */
std::string
TemporaryPathFor(const std::string & destination);

} // namespace diva

#endif
