#ifndef divaAtomicFile_h
#define divaAtomicFile_h

#include <cstddef>
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

/** Removes the temporaries of WriteFileAtomically in `directory` whose writing process no longer runs (a process
 * killed in the middle of a write cannot remove its own); returns how many were removed. Temporaries of running
 * processes (this one included) are kept. */
size_t
RemoveStaleTemporaries(const std::string & directory);

/** Testing hook (Documentation/Reliability.md, "Faults"). When the environment variable DIVATTENTION_FAULT_AT holds
 * "NAME:N", the N-th call (1-based, counted per process) of WriteFileAtomically whose destination's file name is
 * NAME ("*": any name) cuts its finished temporary to half its size and kills the process with SIGKILL before the
 * rename: what a crash in the middle of a write leaves on disk. Unset, it costs one getenv per write. */
constexpr const char * FaultInjectionVariable = "DIVATTENTION_FAULT_AT";

} // namespace diva

#endif
