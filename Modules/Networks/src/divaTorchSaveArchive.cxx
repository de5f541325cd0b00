#include "divaTorchSaveArchive.h"

#include <caffe2/serialize/inline_container.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <unordered_map>

// LibTorch's own unpickler (torch::pickle_load) turns collections.OrderedDict into None, so the state dict that
// `torch.save(model.state_dict(), path)` writes cannot be read with it. This is a small unpickler of the opcodes
// Python's pickle writes (protocols 2 to 5) that knows the few globals torch.save uses.
namespace diva
{
namespace
{
using Pointer = PickledValue::Pointer;
using Kind = PickledValue::Kind;

Pointer
Make(Kind kind)
{
  auto value = std::make_shared<PickledValue>();
  value->kind = kind;
  return value;
}

Pointer
MakeInteger(int64_t integer)
{
  auto value = Make(Kind::Integer);
  value->integer = integer;
  return value;
}

Pointer
MakeText(Kind kind, std::string text)
{
  auto value = Make(kind);
  value->text = std::move(text);
  return value;
}

/** The element type of a legacy storage class name ("FloatStorage" -> float). */
bool
StorageElementType(const std::string & name, torch::ScalarType & type)
{
  static const std::map<std::string, torch::ScalarType> types = { { "FloatStorage", torch::kFloat },
                                                                  { "DoubleStorage", torch::kDouble },
                                                                  { "HalfStorage", torch::kHalf },
                                                                  { "BFloat16Storage", torch::kBFloat16 },
                                                                  { "LongStorage", torch::kLong },
                                                                  { "IntStorage", torch::kInt },
                                                                  { "ShortStorage", torch::kShort },
                                                                  { "CharStorage", torch::kChar },
                                                                  { "ByteStorage", torch::kByte },
                                                                  { "BoolStorage", torch::kBool },
                                                                  { "ComplexFloatStorage", torch::kComplexFloat },
                                                                  { "ComplexDoubleStorage", torch::kComplexDouble } };
  const auto                                            found = types.find(name);
  if (found == types.end())
  {
    return false;
  }
  type = found->second;
  return true;
}

std::vector<int64_t>
IntegerTuple(const Pointer & value, const std::string & what)
{
  if (!value || (value->kind != Kind::Tuple && value->kind != Kind::List))
  {
    throw std::runtime_error(what + " is not a tuple");
  }
  std::vector<int64_t> result;
  for (const auto & item : value->items)
  {
    if (item->kind != Kind::Integer)
    {
      throw std::runtime_error(what + " holds a non-integer");
    }
    result.push_back(item->integer);
  }
  return result;
}

class Unpickler
{
public:
  Unpickler(const char * data, std::size_t size, caffe2::serialize::PyTorchStreamReader & archive)
      : m_Data(data), m_Size(size), m_Archive(archive)
  {
  }

  Pointer
  Run()
  {
    for (;;)
    {
      const auto opcode = static_cast<unsigned char>(Bytes(1)[0]);
      if (opcode == '.') // STOP
      {
        if (m_Stack.size() != 1)
        {
          throw std::runtime_error("the pickle stops with " + std::to_string(m_Stack.size()) + " values on its stack");
        }
        return m_Stack.back();
      }
      Step(opcode);
    }
  }

private:
  const char *                             m_Data;
  std::size_t                              m_Size;
  std::size_t                              m_Position = 0;
  caffe2::serialize::PyTorchStreamReader & m_Archive;
  std::vector<Pointer>                     m_Stack;
  std::vector<std::size_t>                 m_Marks;
  std::unordered_map<int64_t, Pointer>     m_Memo;
  std::map<std::string, torch::Tensor>     m_Storages; // record key -> its elements (views share a storage)

  const char *
  Bytes(std::size_t count)
  {
    if (count > m_Size - m_Position)
    {
      throw std::runtime_error("the pickle is truncated at byte " + std::to_string(m_Position));
    }
    const char * start = m_Data + m_Position;
    m_Position += count;
    return start;
  }

  uint64_t
  Unsigned(std::size_t count) // little-endian
  {
    const auto * bytes = reinterpret_cast<const unsigned char *>(Bytes(count));
    uint64_t     value = 0;
    for (std::size_t i = 0; i < count; ++i)
    {
      value |= static_cast<uint64_t>(bytes[i]) << (8 * i);
    }
    return value;
  }

  std::string
  Line()
  {
    const std::size_t start = m_Position;
    while (m_Position < m_Size && m_Data[m_Position] != '\n')
    {
      ++m_Position;
    }
    if (m_Position == m_Size)
    {
      throw std::runtime_error("the pickle is truncated in a text line");
    }
    return std::string(m_Data + start, m_Data + m_Position++);
  }

  Pointer
  Pop()
  {
    if (m_Stack.empty() || (!m_Marks.empty() && m_Stack.size() <= m_Marks.back()))
    {
      throw std::runtime_error("the pickle pops an empty stack at byte " + std::to_string(m_Position));
    }
    auto value = m_Stack.back();
    m_Stack.pop_back();
    return value;
  }

  Pointer &
  Top()
  {
    if (m_Stack.empty())
    {
      throw std::runtime_error("the pickle reads an empty stack at byte " + std::to_string(m_Position));
    }
    return m_Stack.back();
  }

  std::vector<Pointer>
  PopToMark()
  {
    if (m_Marks.empty())
    {
      throw std::runtime_error("the pickle has no mark at byte " + std::to_string(m_Position));
    }
    const std::size_t    mark = m_Marks.back();
    std::vector<Pointer> items(m_Stack.begin() + static_cast<std::ptrdiff_t>(mark), m_Stack.end());
    m_Stack.resize(mark);
    m_Marks.pop_back();
    return items;
  }

  Pointer
  Sequence(Kind kind, std::vector<Pointer> items)
  {
    auto value = Make(kind);
    value->items = std::move(items);
    return value;
  }

  void
  SetItems(const Pointer & target, const std::vector<Pointer> & keysAndValues)
  {
    if (keysAndValues.size() % 2 != 0)
    {
      throw std::runtime_error("the pickle sets a dict item without a value");
    }
    if (target->kind != Kind::Dict)
    {
      return; // items of an object we do not model (e.g. a defaultdict subclass): dropped
    }
    for (std::size_t i = 0; i < keysAndValues.size(); i += 2)
    {
      target->entries.emplace_back(keysAndValues[i], keysAndValues[i + 1]);
    }
  }

  void
  Memoize(int64_t index)
  {
    m_Memo[index] = Top();
  }

  Pointer
  Memo(int64_t index)
  {
    const auto found = m_Memo.find(index);
    if (found == m_Memo.end())
    {
      throw std::runtime_error("the pickle reads memo " + std::to_string(index) + ", never stored");
    }
    return found->second;
  }

  torch::Tensor
  StorageElements(const Pointer & storage)
  {
    const auto cached = m_Storages.find(storage->text);
    if (cached != m_Storages.end())
    {
      return cached->second;
    }
    const std::string record = "data/" + storage->text;
    if (!m_Archive.hasRecord(record))
    {
      throw std::runtime_error("the storage record '" + record + "' is missing from the archive");
    }
    auto       data = m_Archive.getRecord(record);
    const auto bytes = std::get<1>(data);
    auto elements = torch::empty({ storage->storageElements }, torch::TensorOptions().dtype(storage->storageType));
    const auto wanted = static_cast<std::size_t>(elements.nbytes());
    if (bytes != wanted)
    {
      throw std::runtime_error("the storage record '" + record + "' holds " + std::to_string(bytes) + " bytes, its " +
                               std::to_string(storage->storageElements) + " elements need " + std::to_string(wanted));
    }
    if (wanted > 0)
    {
      std::memcpy(elements.data_ptr(), std::get<0>(data).get(), wanted);
    }
    m_Storages.emplace(storage->text, elements);
    return elements;
  }

  Pointer
  RebuildTensor(const std::vector<Pointer> & arguments)
  {
    if (arguments.size() < 4 || arguments[0]->kind != Kind::Storage || arguments[1]->kind != Kind::Integer)
    {
      throw std::runtime_error("_rebuild_tensor_v2 with arguments other than (storage, offset, size, stride, ...)");
    }
    const auto elements = StorageElements(arguments[0]);
    const auto offset = arguments[1]->integer;
    const auto size = IntegerTuple(arguments[2], "a tensor's size");
    const auto stride = IntegerTuple(arguments[3], "a tensor's stride");
    if (size.size() != stride.size())
    {
      throw std::runtime_error("a tensor's size and stride differ in length");
    }
    int64_t last = offset;
    bool    empty = false;
    for (std::size_t d = 0; d < size.size(); ++d)
    {
      if (size[d] < 0 || stride[d] < 0)
      {
        throw std::runtime_error("a tensor has a negative size or stride");
      }
      empty = empty || size[d] == 0;
      last += (size[d] - 1) * stride[d];
    }
    auto value = Make(Kind::Tensor);
    if (empty)
    {
      value->tensor = torch::empty(size, elements.options());
      return value;
    }
    if (offset < 0 || last >= elements.numel())
    {
      throw std::runtime_error("a tensor of size " + c10::str(c10::IntArrayRef(size)) +
                               " reaches past its storage of " + std::to_string(elements.numel()) + " elements");
    }
    value->tensor = elements.as_strided(size, stride, offset).clone(at::MemoryFormat::Contiguous);
    return value;
  }

  /** What calling `callee` with `arguments` gives, for the callables torch.save files use; an opaque object else. */
  Pointer
  Call(const Pointer & callee, const Pointer & arguments)
  {
    const std::string name = callee->kind == Kind::Global ? callee->text : std::string();
    const auto &      args = arguments->items;
    if (name == "collections.OrderedDict" || name == "builtins.dict" || name == "__builtin__.dict")
    {
      auto dict = Make(Kind::Dict);
      if (!args.empty() && args[0]->kind == Kind::List) // OrderedDict([(key, value), ...])
      {
        for (const auto & pair : args[0]->items)
        {
          if (pair->kind == Kind::Tuple && pair->items.size() == 2)
          {
            dict->entries.emplace_back(pair->items[0], pair->items[1]);
          }
        }
      }
      return dict;
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor")
    {
      return RebuildTensor(args);
    }
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state")
    {
      if (args.empty() || args[0]->kind != Kind::Tensor)
      {
        throw std::runtime_error("_rebuild_parameter without a tensor");
      }
      return args[0];
    }
    if (name == "torch._tensor._rebuild_from_type_v2" && args.size() >= 3 && args[0]->kind == Kind::Global)
    {
      return Call(args[0], args[2]); // (function, type, arguments, state): a plain tensor for our purposes
    }
    // LibTorch's own pickler (torch::pickle_save) tags typed containers: the value is the first argument.
    if (name == "torch.jit._pickle.restore_type_tag" || name == "torch.jit._pickle.build_intlist" ||
        name == "torch.jit._pickle.build_doublelist" || name == "torch.jit._pickle.build_boollist" ||
        name == "torch.jit._pickle.build_tensorlist")
    {
      if (args.empty())
      {
        throw std::runtime_error(name + " without arguments");
      }
      return args[0];
    }
    if (name == "torch.Size" || name == "builtins.tuple")
    {
      return args.empty() ? Sequence(Kind::Tuple, {}) : Sequence(Kind::Tuple, args[0]->items);
    }
    if (name == "builtins.set" || name == "builtins.frozenset" || name == "builtins.list")
    {
      return args.empty() ? Sequence(Kind::List, {}) : Sequence(Kind::List, args[0]->items);
    }
    return MakeText(Kind::Object, name.empty() ? std::string("an object") : name);
  }

  Pointer
  PersistentLoad(const Pointer & id)
  {
    // torch.save's persistent id: ('storage', <storage class>, key, location, number of elements)
    if (id->kind != Kind::Tuple || id->items.size() < 5 || id->items[0]->kind != Kind::Text ||
        id->items[0]->text != "storage" || id->items[1]->kind != Kind::Global || id->items[4]->kind != Kind::Integer)
    {
      throw std::runtime_error("a persistent id other than torch.save's ('storage', type, key, location, size)");
    }
    auto         storage = Make(Kind::Storage);
    const auto & className = id->items[1]->text;
    const auto   dot = className.rfind('.');
    if (!StorageElementType(dot == std::string::npos ? className : className.substr(dot + 1), storage->storageType))
    {
      throw std::runtime_error("a storage of unsupported type '" + className + "'");
    }
    storage->text = id->items[2]->kind == Kind::Text ? id->items[2]->text : std::to_string(id->items[2]->integer);
    storage->storageElements = id->items[4]->integer;
    if (storage->storageElements < 0)
    {
      throw std::runtime_error("a storage of negative size");
    }
    return storage;
  }

  void
  Step(unsigned char opcode)
  {
    switch (opcode)
    {
      case 0x80: // PROTO
        if (static_cast<unsigned char>(Bytes(1)[0]) > 5)
        {
          throw std::runtime_error("pickle protocol above 5");
        }
        break;
      case 0x95: // FRAME: a length we do not need
        Bytes(8);
        break;
      case '(': // MARK
        m_Marks.push_back(m_Stack.size());
        break;
      case '0': // POP
        Pop();
        break;
      case '1': // POP_MARK
        PopToMark();
        break;
      case '2': // DUP
        m_Stack.push_back(Top());
        break;
      case 'N':
        m_Stack.push_back(Make(Kind::None));
        break;
      case 0x88: // NEWTRUE
      case 0x89: // NEWFALSE
      {
        auto value = Make(Kind::Boolean);
        value->boolean = opcode == 0x88;
        m_Stack.push_back(value);
        break;
      }
      case 'J': // BININT
        m_Stack.push_back(MakeInteger(static_cast<int32_t>(Unsigned(4))));
        break;
      case 'K': // BININT1
        m_Stack.push_back(MakeInteger(static_cast<int64_t>(Unsigned(1))));
        break;
      case 'M': // BININT2
        m_Stack.push_back(MakeInteger(static_cast<int64_t>(Unsigned(2))));
        break;
      case 0x8a: // LONG1
      case 0x8b: // LONG4
      {
        const auto count = static_cast<std::size_t>(Unsigned(opcode == 0x8a ? 1 : 4));
        if (count > 8)
        {
          throw std::runtime_error("an integer wider than 64 bits");
        }
        uint64_t value = count == 0 ? 0 : Unsigned(count);
        if (count > 0 && count < 8 && (value >> (8 * count - 1)) != 0) // negative: sign-extend
        {
          value |= ~uint64_t{ 0 } << (8 * count);
        }
        m_Stack.push_back(MakeInteger(static_cast<int64_t>(value)));
        break;
      }
      case 'G': // BINFLOAT, big-endian
      {
        const auto * bytes = reinterpret_cast<const unsigned char *>(Bytes(8));
        uint64_t     bits = 0;
        for (int i = 0; i < 8; ++i)
        {
          bits = (bits << 8) | bytes[i];
        }
        auto value = Make(Kind::Real);
        std::memcpy(&value->real, &bits, sizeof(double));
        m_Stack.push_back(value);
        break;
      }
      case 'X':  // BINUNICODE
      case 0x8c: // SHORT_BINUNICODE
      case 0x8d: // BINUNICODE8
      case 'T':  // BINSTRING
      case 'U':  // SHORT_BINSTRING
      {
        const std::size_t width = (opcode == 0x8c || opcode == 'U') ? 1 : (opcode == 0x8d ? 8 : 4);
        const auto        count = static_cast<std::size_t>(Unsigned(width));
        m_Stack.push_back(MakeText(Kind::Text, std::string(Bytes(count), count)));
        break;
      }
      case 'B':  // BINBYTES
      case 'C':  // SHORT_BINBYTES
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
      {
        const std::size_t width = opcode == 'C' ? 1 : (opcode == 'B' ? 4 : 8);
        const auto        count = static_cast<std::size_t>(Unsigned(width));
        m_Stack.push_back(MakeText(Kind::Bytes, std::string(Bytes(count), count)));
        break;
      }
      case ')': // EMPTY_TUPLE
        m_Stack.push_back(Sequence(Kind::Tuple, {}));
        break;
      case 't': // TUPLE
        m_Stack.push_back(Sequence(Kind::Tuple, PopToMark()));
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: // TUPLE3
      {
        std::vector<Pointer> items(static_cast<std::size_t>(opcode - 0x84));
        for (auto item = items.rbegin(); item != items.rend(); ++item)
        {
          *item = Pop();
        }
        m_Stack.push_back(Sequence(Kind::Tuple, std::move(items)));
        break;
      }
      case ']':  // EMPTY_LIST
      case 0x8f: // EMPTY_SET
        m_Stack.push_back(Sequence(Kind::List, {}));
        break;
      case 'l':  // LIST
      case 0x91: // FROZENSET
        m_Stack.push_back(Sequence(Kind::List, PopToMark()));
        break;
      case 'a': // APPEND
      {
        auto item = Pop();
        auto list = Top();
        if (list->kind == Kind::List)
        {
          list->items.push_back(item);
        }
        break;
      }
      case 'e':  // APPENDS
      case 0x90: // ADDITEMS
      {
        auto items = PopToMark();
        auto list = Top();
        if (list->kind == Kind::List)
        {
          list->items.insert(list->items.end(), items.begin(), items.end());
        }
        break;
      }
      case '}': // EMPTY_DICT
        m_Stack.push_back(Make(Kind::Dict));
        break;
      case 'd': // DICT
      {
        auto dict = Make(Kind::Dict);
        SetItems(dict, PopToMark());
        m_Stack.push_back(dict);
        break;
      }
      case 's': // SETITEM
      {
        auto value = Pop();
        auto key = Pop();
        SetItems(Top(), { key, value });
        break;
      }
      case 'u': // SETITEMS
      {
        auto items = PopToMark();
        SetItems(Top(), items);
        break;
      }
      case 'c': // GLOBAL
      {
        auto module = Line();
        auto name = Line();
        m_Stack.push_back(MakeText(Kind::Global, module + "." + name));
        break;
      }
      case 0x93: // STACK_GLOBAL
      {
        auto name = Pop();
        auto module = Pop();
        if (module->kind != Kind::Text || name->kind != Kind::Text)
        {
          throw std::runtime_error("STACK_GLOBAL without a module and a name");
        }
        m_Stack.push_back(MakeText(Kind::Global, module->text + "." + name->text));
        break;
      }
      case 'R': // REDUCE
      {
        auto arguments = Pop();
        auto callee = Pop();
        if (arguments->kind != Kind::Tuple)
        {
          throw std::runtime_error("REDUCE without an argument tuple");
        }
        m_Stack.push_back(Call(callee, arguments));
        break;
      }
      case 0x81: // NEWOBJ: cls.__new__(cls, *args)
      {
        Pop();
        auto cls = Pop();
        m_Stack.push_back(MakeText(Kind::Object, cls->kind == Kind::Global ? cls->text : std::string("an object")));
        break;
      }
      case 0x92: // NEWOBJ_EX
      {
        Pop();
        Pop();
        auto cls = Pop();
        m_Stack.push_back(MakeText(Kind::Object, cls->kind == Kind::Global ? cls->text : std::string("an object")));
        break;
      }
      case 'b': // BUILD: sets attributes (e.g. a state dict's _metadata), never dict items
        Pop();
        Top();
        break;
      case 'Q': // BINPERSID
        m_Stack.push_back(PersistentLoad(Pop()));
        break;
      case 'q': // BINPUT
        Memoize(static_cast<int64_t>(Unsigned(1)));
        break;
      case 'r': // LONG_BINPUT
        Memoize(static_cast<int64_t>(Unsigned(4)));
        break;
      case 0x94: // MEMOIZE
        Memoize(static_cast<int64_t>(m_Memo.size()));
        break;
      case 'h': // BINGET
        m_Stack.push_back(Memo(static_cast<int64_t>(Unsigned(1))));
        break;
      case 'j': // LONG_BINGET
        m_Stack.push_back(Memo(static_cast<int64_t>(Unsigned(4))));
        break;
      default:
      {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02x", static_cast<unsigned>(opcode));
        throw std::runtime_error(std::string("unsupported pickle opcode ") + hex + " at byte " +
                                 std::to_string(m_Position - 1));
      }
    }
  }
};

bool
StartsLikeZip(const std::string & path)
{
  std::ifstream stream(path, std::ios::binary);
  char          magic[4] = {};
  stream.read(magic, 4);
  return stream.gcount() == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

std::unique_ptr<caffe2::serialize::PyTorchStreamReader>
OpenArchive(const std::string & path)
{
  if (!std::ifstream(path, std::ios::binary))
  {
    throw std::runtime_error("'" + path + "': cannot be opened for reading");
  }
  if (!StartsLikeZip(path))
  {
    throw std::runtime_error("'" + path +
                             "': not a zip archive, so neither TorchScript nor a torch.save file of PyTorch >= 1.6 "
                             "(the legacy format of _use_new_zipfile_serialization=False is not read: save again "
                             "with the default)");
  }
  try
  {
    return std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  }
  catch (const std::exception & error)
  {
    const std::string what = error.what();
    throw std::runtime_error(
      "'" + path + "': a zip archive PyTorch cannot read (truncated or corrupt?): " + what.substr(0, what.find('\n')));
  }
}
} // namespace

std::string
PickledValue::Describe() const
{
  switch (kind)
  {
    case Kind::None:
      return "None";
    case Kind::Boolean:
      return boolean ? "True" : "False";
    case Kind::Integer:
      return "integer " + std::to_string(integer);
    case Kind::Real:
      return "real " + std::to_string(real);
    case Kind::Text:
      return "text '" + text.substr(0, 40) + "'";
    case Kind::Bytes:
      return std::to_string(text.size()) + " bytes";
    case Kind::Tuple:
      return "tuple of " + std::to_string(items.size());
    case Kind::List:
      return "list of " + std::to_string(items.size());
    case Kind::Dict:
    {
      std::string keys;
      std::size_t shown = 0;
      for (const auto & entry : entries)
      {
        if (shown++ == 6)
        {
          keys += ", ...";
          break;
        }
        keys += (shown > 1 ? ", " : "") +
                (entry.first->kind == Kind::Text ? "'" + entry.first->text + "'" : entry.first->Describe());
      }
      return "dict of " + std::to_string(entries.size()) + (entries.empty() ? std::string() : " (keys " + keys + ")");
    }
    case Kind::Tensor:
      return "tensor " + c10::str(tensor.sizes());
    case Kind::Global:
      return "global " + text;
    case Kind::Storage:
      return "storage";
    case Kind::Object:
      return "object " + text;
  }
  return "value";
}

bool
IsTorchScriptArchive(const std::string & path)
{
  if (!StartsLikeZip(path))
  {
    return false;
  }
  try
  {
    caffe2::serialize::PyTorchStreamReader archive(path);
    if (archive.hasRecord("constants.pkl"))
    {
      return true;
    }
    for (const auto & record : archive.getAllRecords())
    {
      if (record.rfind("code/", 0) == 0)
      {
        return true;
      }
    }
  }
  catch (const std::exception &)
  {
  }
  return false;
}

PickledValue::Pointer
ReadTorchSaveArchive(const std::string & path)
{
  auto archive = OpenArchive(path);
  if (!archive->hasRecord("data.pkl"))
  {
    const auto  records = archive->getAllRecords();
    std::string found;
    for (std::size_t i = 0; i < records.size() && i < 5; ++i)
    {
      found += (i ? ", " : "") + records[i];
    }
    throw std::runtime_error("'" + path + "': a zip archive without data.pkl, so not a torch.save file (" +
                             (IsTorchScriptArchive(path) ? std::string("it is TorchScript") : "records: " + found) +
                             ")");
  }
  if (archive->hasRecord("byteorder"))
  {
    auto              order = archive->getRecord("byteorder");
    const std::string text(static_cast<const char *>(std::get<0>(order).get()), std::get<1>(order));
    if (text != "little")
    {
      throw std::runtime_error("'" + path + "': a " + text + "-endian archive; only little-endian files are read");
    }
  }
  auto pickle = archive->getRecord("data.pkl");
  try
  {
    Unpickler unpickler(static_cast<const char *>(std::get<0>(pickle).get()), std::get<1>(pickle), *archive);
    return unpickler.Run();
  }
  catch (const c10::Error & error)
  {
    const std::string what = error.what();
    throw std::runtime_error("'" + path + "': " + what.substr(0, what.find('\n')));
  }
  catch (const std::runtime_error & error)
  {
    throw std::runtime_error("'" + path + "': " + error.what());
  }
}

} // namespace diva
