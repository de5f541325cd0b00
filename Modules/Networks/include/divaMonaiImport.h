#ifndef divaMonaiImport_h
#define divaMonaiImport_h

#include "divaUNETR.h"

#include <string>

namespace diva
{
/** \brief Imports the weights of a MONAI UNETR checkpoint into our UNETR by state-dict name.
 *
 * `path` is what Python's `torch.save` writes (the zip archive; the state dict at the top or nested under
 * "state_dict", "model" or "network", as training scripts save it; with or without DataParallel's "module." prefix;
 * read by ReadTorchSaveArchive) or a TorchScript file (torch.jit.save of MONAI's UNETR). Keys MONAI creates but never
 * uses (`*.cross_attn.*`, `*.norm_cross_attn.*` of MONAI >= 1.3) are ignored. The network must have been built with
 * the checkpoint's options and MONAI's skip taps (UNETROptions' default; div-attention off, or its modules stay as
 * initialised: they are not in MONAI's dict and are then the only names allowed to be missing). Returns the number of
 * tensors copied; std::runtime_error naming the file and what is wrong for a file that is neither format, holds no
 * state dict, or a missing, unexpected or misshapen weight.
 * \ingroup DivAttention */
std::size_t
ImportMonaiUnetr(UNETRImpl & network, const std::string & path);

/** Whether MONAI's UNETR state dict holds `key` without ever using it. */
bool
IsUnusedMonaiKey(const std::string & key);

} // namespace diva

#endif
