#include "frontend/onnx_loader.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "deepep/error.h"
#include "ir/op_registry.h"
#include "onnx.pb.h"

namespace deepep {

namespace fs = std::filesystem;
namespace pb = deepep_onnx;

namespace {

const char* onnx_type_name(int code) {
  switch (code) {
    case 8: return "STRING";
    case 14: return "COMPLEX64";
    case 15: return "COMPLEX128";
    default: return "UNDEFINED";
  }
}

DType to_dtype(int code, const std::string& what) {
  if (!dtype_supported(code))
    throw Error(detail::concat("unsupported dtype ", onnx_type_name(code), " (ONNX code ", code,
                               ") for ", what));
  return DType(code);
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int extra = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : -1;
    if (extra < 0 || i + extra >= s.size() + (extra == 0)) return false;
    for (int k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += size_t(extra) + 1;
  }
  return true;
}

// `s` with bytes outside printable ASCII written as \xNN (for messages).
std::string printable(const std::string& s) {
  std::string r;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      r += char(c);
    } else {
      char b[5];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      r += b;
    }
  }
  return r;
}

struct Loader {
  // Names become Python str (inputs, outputs, messages): they must be UTF-8.
  void name_ok(const std::string& s, const char* what) {
    if (!valid_utf8(s))
      throw Error(detail::concat(display, ": ", what, " '", printable(s), "' is not valid UTF-8"));
  }

  std::string base_dir;
  std::string display;
  std::map<std::string, int64_t> opsets;
  // Unsupported ops, "Op 'node' (opset N)", collected across all subgraphs.
  std::vector<std::string> unsupported;
  ExternalResolver resolver;

  Tensor tensor_from_proto(const pb::TensorProto& tp, const std::string& what) {
    DType dt = to_dtype(tp.data_type(), "tensor '" + what + "'");
    Shape shape(tp.dims().begin(), tp.dims().end());
    for (int64_t d : shape)
      DEEPEP_CHECK(d >= 0, display, ": tensor '", what, "' has a negative dimension");
    checked_numel(what, shape);
    if (tp.data_location() == pb::TensorProto::EXTERNAL) return read_external(tp, what, dt, shape);
    check_data_present(tp, what, dt, shape);
    Tensor t(dt, shape);
    const size_t nbytes = t.nbytes();
    const int64_t n = t.numel();
    if (dtype_packed_bits(dt) < 8) {
      unpack_sub_byte(tp, what, t);
      return t;
    }
    if (tp.has_raw_data()) {
      DEEPEP_CHECK(tp.raw_data().size() == nbytes, display, ": tensor '", what, "' has ",
                   tp.raw_data().size(), " bytes of raw data, expected ", nbytes, " for ",
                   dtype_name(dt), shape_str(shape));
      if (nbytes) std::memcpy(t.raw(), tp.raw_data().data(), nbytes);
      return t;
    }
    auto need = [&](int64_t have) {
      DEEPEP_CHECK(have == n, display, ": tensor '", what, "' holds ", have, " values, expected ",
                   n, " for shape ", shape_str(shape));
    };
    switch (dt) {
      case DType::kFloat32:
        need(tp.float_data_size());
        std::memcpy(t.raw(), tp.float_data().data(), nbytes);
        break;
      case DType::kFloat64:
        need(tp.double_data_size());
        std::memcpy(t.raw(), tp.double_data().data(), nbytes);
        break;
      case DType::kInt64:
        need(tp.int64_data_size());
        std::memcpy(t.raw(), tp.int64_data().data(), nbytes);
        break;
      case DType::kUInt32:
      case DType::kUInt64: {
        need(tp.uint64_data_size());
        for (int64_t i = 0; i < n; ++i) {
          if (dt == DType::kUInt32) t.data<uint32_t>()[i] = uint32_t(tp.uint64_data(int(i)));
          else t.data<uint64_t>()[i] = tp.uint64_data(int(i));
        }
        break;
      }
      default: {  // everything narrower than 32 bits travels in int32_data
        need(tp.int32_data_size());
        const size_t es = dtype_size(dt);
        for (int64_t i = 0; i < n; ++i) {
          int32_t v = tp.int32_data(int(i));
          std::memcpy(static_cast<char*>(t.raw()) + i * es, &v, es);  // little-endian low bytes
        }
      }
    }
    return t;
  }

  Tensor read_external(const pb::TensorProto& tp, const std::string& what, DType dt,
                       const Shape& shape) {
    std::string location;
    int64_t offset = 0, length = -1;
    for (const auto& kv : tp.external_data()) {
      try {
        if (kv.key() == "location") location = kv.value();
        else if (kv.key() == "offset") offset = std::stoll(kv.value());
        else if (kv.key() == "length") length = std::stoll(kv.value());
      } catch (const std::exception&) {
        DEEPEP_FAIL(display, ": tensor '", what, "' has a malformed external-data ", kv.key(),
                    " '", kv.value(), "'");
      }
    }
    DEEPEP_CHECK(!location.empty(), display, ": tensor '", what,
                 "' is stored externally but names no location");
    if (resolver) {
      Tensor r = resolver(location, offset, length, dt, shape);
      if (r.defined()) return r;
    }
    fs::path p = fs::path(base_dir) / location;
    std::error_code ec;
    const auto st = fs::status(p, ec);
    DEEPEP_CHECK(fs::exists(st), display, ": external data file '", p.string(), "' for tensor '",
                 what, "' does not exist", ec && ec != std::errc::no_such_file_or_directory ? " (" + ec.message() + ")" : "");
    DEEPEP_CHECK(fs::is_regular_file(st), display, ": external data '", p.string(), "' for tensor '",
                 what, "' is not a regular file");
    const int64_t need = checked_numel(what, shape) * int64_t(dtype_size(dt));
    DEEPEP_CHECK(length < 0 || length == need, display, ": tensor '", what, "' external length ",
                 length, " does not match its ", need, " bytes");
    const auto fsize = int64_t(fs::file_size(p, ec));
    DEEPEP_CHECK(!ec, display, ": cannot read the size of '", p.string(), "' for tensor '", what, "': ", ec.message());
    DEEPEP_CHECK(offset >= 0 && offset <= fsize && need <= fsize - offset, display, ": tensor '", what,
                 "' reads bytes [", offset, ", ", offset + need, ") of '", p.string(),
                 "', which has only ", fsize, " bytes");
    Tensor t(dt, shape);  // only now: the file holds every byte it promises
    std::ifstream f(p, std::ios::binary);
    f.seekg(offset);
    f.read(static_cast<char*>(t.raw()), need);
    DEEPEP_CHECK(f.good() || need == 0, display, ": failed reading external data of '", what, "'");
    return t;
  }

  // The element count of `shape`, which must stay far from overflowing
  // int64 (so byte sizes computed from it cannot wrap either).
  int64_t checked_numel(const std::string& what, const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
      DEEPEP_CHECK(d == 0 || n <= (int64_t(1) << 56) / d, display, ": tensor '", what,
                   "' is too large (shape ", shape_str(shape), ")");
      n *= d;
    }
    return n;
  }

  // Before allocating what the dims promise (a few bytes of protobuf may
  // claim gigabytes): the element count must not overflow, and the proto
  // must hold that much data. Same messages as the exact checks after.
  void check_data_present(const pb::TensorProto& tp, const std::string& what, DType dt, const Shape& shape) {
    const int64_t n = checked_numel(what, shape);
    const int bits = dtype_packed_bits(dt);
    if (bits < 8) {
      const int64_t packed = (n * bits + 7) / 8;
      const int64_t have = tp.has_raw_data() ? int64_t(tp.raw_data().size()) : int64_t(tp.int32_data_size());
      DEEPEP_CHECK(have >= packed, display, ": tensor '", what, "' has ", have, " packed bytes, expected ",
                   packed, " for ", n, " ", dtype_name(dt), " values");
    } else if (tp.has_raw_data()) {
      const uint64_t nbytes = uint64_t(n) * dtype_size(dt);
      DEEPEP_CHECK(tp.raw_data().size() >= nbytes, display, ": tensor '", what, "' has ",
                   tp.raw_data().size(), " bytes of raw data, expected ", nbytes, " for ", dtype_name(dt),
                   shape_str(shape));
    } else {
      int64_t have = tp.int32_data_size();
      if (dt == DType::kFloat32) have = tp.float_data_size();
      if (dt == DType::kFloat64) have = tp.double_data_size();
      if (dt == DType::kInt64) have = tp.int64_data_size();
      if (dt == DType::kUInt32 || dt == DType::kUInt64) have = tp.uint64_data_size();
      DEEPEP_CHECK(have >= n, display, ": tensor '", what, "' holds ", have, " values, expected ", n,
                   " for shape ", shape_str(shape));
    }
  }

  // 4- and 2-bit types arrive packed (first element in the low bits), in
  // raw_data or one byte per int32_data entry; DeepEP holds one per byte.
  void unpack_sub_byte(const pb::TensorProto& tp, const std::string& what, Tensor& t) {
    const int bits = dtype_packed_bits(t.dtype());
    const int64_t n = t.numel();
    const int64_t packed = (n * bits + 7) / 8;
    std::string bytes;
    if (tp.has_raw_data()) {
      bytes = tp.raw_data();
    } else {
      for (int32_t v : tp.int32_data()) bytes.push_back(char(uint8_t(v)));
    }
    DEEPEP_CHECK(int64_t(bytes.size()) == packed, display, ": tensor '", what, "' has ",
                 bytes.size(), " packed bytes, expected ", packed, " for ", n, " ",
                 dtype_name(t.dtype()), " values");
    const int per = 8 / bits;
    const uint8_t mask = uint8_t((1 << bits) - 1);
    auto* out = t.data<uint8_t>();
    for (int64_t i = 0; i < n; ++i)
      out[i] = uint8_t(uint8_t(bytes[size_t(i / per)]) >> ((i % per) * bits)) & mask;
  }

  void set_type(Value* v, const pb::TypeProto& tp) {
    if (tp.value_case() == pb::TypeProto::VALUE_NOT_SET) return;  // type left to inference
    if (!tp.has_tensor_type()) {
      const char* kind = tp.has_sequence_type() ? "sequence" : tp.has_optional_type() ? "optional"
                         : tp.has_map_type() ? "map" : "non-tensor";
      throw Error(detail::concat("value '", v->name, "' has a ", kind,
                                 " type, which DeepEP does not support (tensor values only)"));
    }
    const auto& tt = tp.tensor_type();
    if (tt.elem_type() != 0) v->dtype = to_dtype(tt.elem_type(), "value '" + v->name + "'");
    if (tt.has_shape()) {
      SymShape s;
      for (const auto& d : tt.shape().dim()) {
        if (d.has_dim_value()) s.push_back(Dim::known(d.dim_value()));
        else if (d.has_dim_param() && !d.dim_param().empty()) {
          name_ok(d.dim_param(), "dimension name");
          s.push_back(Dim::sym(d.dim_param()));
        }
        else s.push_back(Dim{});
      }
      v->shape = std::move(s);
    }
  }

  Attribute convert_attr(const pb::AttributeProto& a, Graph& g, const std::string& node) {
    Attribute r;
    using A = pb::AttributeProto;
    switch (a.type()) {
      case A::INT: r.kind = Attribute::Kind::kInt; r.i = a.i(); break;
      case A::FLOAT: r.kind = Attribute::Kind::kFloat; r.f = a.f(); break;
      case A::STRING: r.kind = Attribute::Kind::kString; r.s = a.s(); break;
      case A::INTS: r.kind = Attribute::Kind::kInts; r.ints.assign(a.ints().begin(), a.ints().end()); break;
      case A::FLOATS: r.kind = Attribute::Kind::kFloats; r.floats.assign(a.floats().begin(), a.floats().end()); break;
      case A::STRINGS: r.kind = Attribute::Kind::kStrings; r.strings.assign(a.strings().begin(), a.strings().end()); break;
      case A::TENSOR: r.kind = Attribute::Kind::kTensor; r.t = tensor_from_proto(a.t(), node + "." + a.name()); break;
      case A::GRAPH:
        r.kind = Attribute::Kind::kGraph;
        r.graphs.push_back(convert_graph(a.g(), &g));
        break;
      case A::GRAPHS:
        r.kind = Attribute::Kind::kGraphs;
        for (const auto& sg : a.graphs()) r.graphs.push_back(convert_graph(sg, &g));
        break;
      default:
        throw Error(detail::concat(display, ": node '", node, "' attribute '", a.name(),
                                   "' has unsupported type ", int(a.type())));
    }
    return r;
  }

  // A Constant node becomes a value holding data.
  void fold_constant(const pb::NodeProto& n, Graph& g) {
    DEEPEP_CHECK(n.output_size() == 1 && n.attribute_size() == 1, display, ": Constant node '",
                 n.name(), "' must have one output and one value attribute");
    const auto& a = n.attribute(0);
    const std::string& out = n.output(0);
    Tensor t;
    if (a.name() == "value") t = tensor_from_proto(a.t(), out);
    else if (a.name() == "value_float") t = Tensor::scalar(DType::kFloat32, a.f());
    else if (a.name() == "value_int") t = Tensor::scalar(DType::kInt64, int64_t(a.i()));
    else if (a.name() == "value_floats") {
      t = Tensor(DType::kFloat32, {int64_t(a.floats_size())});
      std::copy(a.floats().begin(), a.floats().end(), t.data<float>());
    } else if (a.name() == "value_ints") {
      t = Tensor(DType::kInt64, {int64_t(a.ints_size())});
      std::copy(a.ints().begin(), a.ints().end(), t.data<int64_t>());
    } else {
      throw Error(detail::concat(display, ": Constant node '", n.name(), "' uses '", a.name(),
                                 "', which DeepEP does not support"));
    }
    Value* v = g.add_value(out);
    v->dtype = t.dtype();
    v->shape = to_sym_shape(t.shape());
    v->data = std::move(t);
  }

  std::unique_ptr<Graph> convert_graph(const pb::GraphProto& gp, Graph* parent) {
    auto g = std::make_unique<Graph>(parent);
    name_ok(gp.name(), "graph name");
    for (const auto& vi : gp.input()) name_ok(vi.name(), "graph input name");
    for (const auto& vi : gp.output()) name_ok(vi.name(), "graph output name");
    for (const auto& t : gp.initializer()) name_ok(t.name(), "initializer name");
    for (const auto& np : gp.node()) {
      name_ok(np.name(), "node name");
      name_ok(np.op_type(), "op type");
      name_ok(np.domain(), "op domain");
      for (const auto& x : np.input()) name_ok(x, "value name");
      for (const auto& x : np.output()) name_ok(x, "value name");
      for (const auto& a : np.attribute()) name_ok(a.name(), "attribute name");
    }
    g->name = gp.name();
    std::set<std::string> init_names;
    for (const auto& init : gp.initializer()) {
      Value* v = g->add_value(init.name());
      v->data = tensor_from_proto(init, init.name());
      v->dtype = v->data->dtype();
      v->shape = to_sym_shape(v->data->shape());
      init_names.insert(init.name());
    }
    DEEPEP_CHECK(gp.sparse_initializer_size() == 0, display,
                 ": sparse initializers are not supported");
    for (const auto& in : gp.input()) {
      if (init_names.count(in.name())) continue;  // IR < 4 lists initializers as inputs
      Value* v = g->add_value(in.name());
      set_type(v, in.type());
      g->inputs.push_back(v);
    }
    std::map<std::string, const pb::ValueInfoProto*> infos;
    for (const auto& vi : gp.value_info()) infos[vi.name()] = &vi;
    for (const auto& vi : gp.output()) infos[vi.name()] = &vi;

    for (const auto& np : gp.node()) {
      const std::string domain = np.domain() == "ai.onnx" ? "" : np.domain();
      if (domain.empty() && np.op_type() == "Constant") {
        fold_constant(np, *g);
        continue;
      }
      Node* n = g->add_node(np.op_type(), np.name());
      n->domain = domain;
      auto os = opsets.find(domain);
      n->opset = os == opsets.end() ? 0 : int(os->second);
      n->def = find_op(domain, np.op_type());
      if (!n->def) {
        unsupported.push_back(detail::concat(domain.empty() ? "" : domain + ".", np.op_type(),
                                             " (node '", np.name(), "', opset ", n->opset, ")"));
      }
      for (const auto& in : np.input()) {
        if (in.empty()) {
          n->inputs.push_back(nullptr);
          continue;
        }
        Value* v = g->find(in);
        DEEPEP_CHECK(v, display, ": node ", n->describe(), " reads '", in,
                     "', which no earlier node, input or initializer produces");
        n->inputs.push_back(v);
      }
      for (const auto& a : np.attribute()) n->attrs[a.name()] = convert_attr(a, *g, np.name());
      for (const auto& out : np.output()) {
        if (out.empty()) {
          n->outputs.push_back(nullptr);
          continue;
        }
        Value* v = g->add_value(out);
        v->producer = n;
        auto it = infos.find(out);
        if (it != infos.end() && it->second->has_type() && it->second->type().has_tensor_type())
          set_type(v, it->second->type());
        n->outputs.push_back(v);
      }
    }
    for (const auto& out : gp.output()) {
      Value* v = g->find(out.name());
      DEEPEP_CHECK(v, display, ": graph output '", out.name(), "' is never produced");
      if (v->dtype == DType::kUndefined && out.has_type()) set_type(v, out.type());
      g->outputs.push_back(v);
    }
    return g;
  }
};

void read_whole_file(const std::string& path, std::string& bytes) {
  std::ifstream f(path, std::ios::binary);
  DEEPEP_CHECK(f, "cannot open model file '", path, "'");
  std::ostringstream ss;
  ss << f.rdbuf();
  bytes = ss.str();
}

}  // namespace

OnnxModel load_onnx_bytes(const std::string& bytes, const std::string& base_dir,
                          const std::string& display_name, const ExternalResolver& resolver) {
  pb::ModelProto mp;
  google::protobuf::io::ArrayInputStream raw(bytes.data(), int(std::min<size_t>(bytes.size(), INT_MAX)));
  google::protobuf::io::CodedInputStream coded(&raw);
  coded.SetTotalBytesLimit(INT_MAX);
  if (!mp.ParseFromCodedStream(&coded) || !coded.ConsumedEntireMessage())
    throw Error(detail::concat("'", display_name,
                               "' is not a valid ONNX model: the protobuf could not be parsed "
                               "(the file is truncated, corrupt or not ONNX)"));
  if (!mp.has_graph() || mp.ir_version() <= 0)
    throw Error(detail::concat("'", display_name,
                               "' is not an ONNX model: it has no graph or no IR version"));
  Loader l;
  l.base_dir = base_dir;
  l.display = display_name;
  l.resolver = resolver;
  for (const auto& os : mp.opset_import())
    l.opsets[os.domain() == "ai.onnx" ? "" : os.domain()] = os.version();
  OnnxModel m;
  m.ir_version = mp.ir_version();
  m.opset = l.opsets.count("") ? l.opsets[""] : 0;
  m.producer = mp.producer_name() + (mp.producer_version().empty() ? "" : " " + mp.producer_version());
  m.graph = l.convert_graph(mp.graph(), nullptr);
  if (!l.unsupported.empty()) {
    std::string msg = detail::concat("'", display_name, "' uses ", l.unsupported.size(),
                                     " node(s) with ops DeepEP does not support:");
    for (const auto& u : l.unsupported) msg += "\n  " + u;
    throw Error(msg);
  }
  infer_shapes(*m.graph);
  return m;
}

OnnxModel load_onnx_file(const std::string& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  DEEPEP_CHECK(!ec || ec == std::errc::no_such_file_or_directory, "cannot open model file '", path,
               "': ", ec.message());
  DEEPEP_CHECK(fs::exists(st), "model file '", path, "' does not exist");
  DEEPEP_CHECK(!fs::is_directory(st), "model path '", path, "' is a directory, not a file");
  std::string bytes;
  read_whole_file(path, bytes);
  return load_onnx_bytes(bytes, fs::path(path).parent_path().string(), path);
}

void infer_shapes(Graph& g) {
  for (const auto& n : g.nodes()) {
    for (const auto& [k, a] : n->attrs)
      for (const auto& sg : a.graphs) infer_shapes(*sg);
    if (!n->def || !n->def->infer) continue;
    InferContext ctx{*n, {}, {}};
    for (Value* v : n->inputs) ctx.inputs.push_back(v);
    ctx.outputs.resize(n->outputs.size());
    try {
      n->def->infer(ctx);
    } catch (const Error&) {
      continue;  // inference is best effort; the kernel reports real errors at run time
    }
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      Value* v = n->outputs[i];
      if (!v) continue;
      const auto& o = ctx.outputs[i];
      if (o.dtype != DType::kUndefined) v->dtype = o.dtype;
      if (o.shape) v->shape = o.shape;
    }
  }
}

}  // namespace deepep
