#ifndef divaTorchSaveArchive_h
#define divaTorchSaveArchive_h

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace diva
{
/** \brief One value of what Python's `torch.save` pickled: the plain Python types a checkpoint holds, tensors, and an
 * opaque object for anything else (an optimizer's class, a numpy scalar, ...), which is kept only so that the rest
 * of the file can still be read.
 * \ingroup DivAttention */
struct PickledValue
{
  enum class Kind
  {
    None,
    Boolean,
    Integer,
    Real,
    Text,    ///< str
    Bytes,   ///< bytes / bytearray
    Tuple,   ///< items
    List,    ///< items (also set and frozenset)
    Dict,    ///< entries (dict and collections.OrderedDict)
    Tensor,  ///< tensor
    Global,  ///< a class or function named by `text` ("module.name")
    Storage, ///< a storage of `storageElements` elements of `storageType`, record `text` of the archive
    Object   ///< anything else; `text` names its class when known
  };
  using Pointer = std::shared_ptr<PickledValue>;

  Kind                                     kind = Kind::None;
  bool                                     boolean = false;
  int64_t                                  integer = 0;
  double                                   real = 0.0;
  std::string                              text;
  std::vector<Pointer>                     items;
  std::vector<std::pair<Pointer, Pointer>> entries;
  torch::Tensor                            tensor;
  torch::ScalarType                        storageType = torch::kFloat;
  int64_t                                  storageElements = 0;

  /** A short description for messages: "dict with keys 'epoch', 'state_dict'", "tensor [96, 2, 16, 16, 16]", ... */
  std::string
  Describe() const;
};

/** Reads a file written by Python's `torch.save` (PyTorch >= 1.6's zip archive: `<name>/data.pkl` pickled with any
 * protocol up to 5, tensors' storages in `<name>/data/<key>`) into a value tree. Dicts, OrderedDicts, lists, tuples,
 * numbers, strings and tensors (`torch._utils._rebuild_tensor_v2`, `_rebuild_parameter`, any dtype of the legacy
 * storage classes) come back as they are; every tensor is copied into memory of its own (contiguous, CPU).
 *
 * std::runtime_error naming `path` and what is wrong for a file that cannot be opened, is not a zip archive (e.g.
 * the legacy format of `_use_new_zipfile_serialization=False`), is a TorchScript archive (use torch::jit::load),
 * holds a truncated or unsupported pickle, a big-endian archive, or a tensor reaching past its storage.
 * \ingroup DivAttention */
PickledValue::Pointer
ReadTorchSaveArchive(const std::string & path);

/** Whether path is a zip archive holding TorchScript code (`constants.pkl` or `code/`) rather than a torch.save. */
bool
IsTorchScriptArchive(const std::string & path);

} // namespace diva

#endif
