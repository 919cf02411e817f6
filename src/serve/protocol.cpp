#include "serve/protocol.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "deepep/half.h"

namespace deepep::serve {

using json = nlohmann::json;

namespace {
struct NameMap {
  DType t;
  const char* name;
};
constexpr NameMap kNames[] = {
    {DType::kBool, "BOOL"},     {DType::kUInt8, "UINT8"},   {DType::kUInt16, "UINT16"},
    {DType::kUInt32, "UINT32"}, {DType::kUInt64, "UINT64"}, {DType::kInt8, "INT8"},
    {DType::kInt16, "INT16"},   {DType::kInt32, "INT32"},   {DType::kInt64, "INT64"},
    {DType::kFloat16, "FP16"},  {DType::kFloat32, "FP32"},  {DType::kFloat64, "FP64"},
    {DType::kBFloat16, "BF16"},
};

template <class... A>
[[noreturn]] void bad(A&&... a) {
  throw BadRequest(detail::concat(std::forward<A>(a)...));
}

// The start of j as JSON text, for an error message. Written here rather
// than by j.dump(), which recurses once per nesting level: a request whose
// bad value nests 300,000 arrays deep overflowed the stack.
void describe_into(const json& j, std::string& out, int depth) {
  constexpr size_t kEnough = 41;
  if (out.size() >= kEnough) return;
  if (!j.is_structured()) {
    out += j.dump(-1, ' ', false, json::error_handler_t::replace);
    return;
  }
  out += j.is_array() ? '[' : '{';
  if (depth >= 8 && !j.empty()) out += "...";
  else {
    bool first = true;
    for (auto it = j.begin(); it != j.end() && out.size() < kEnough; ++it, first = false) {
      if (!first) out += ',';
      if (j.is_object()) out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace) + ':';
      describe_into(*it, out, depth + 1);
    }
  }
  out += j.is_array() ? ']' : '}';
}

std::string describe(const json& j) {
  std::string s;
  describe_into(j, s, 0);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// Appends every leaf of a nested array to `out` (flat data is the depth-1 case).
void flatten(const json& j, std::vector<const json*>& out, const std::string& input, int depth) {
  if (depth > 64) bad("input '", input, "': 'data' is nested too deeply");
  if (j.is_array()) {
    for (const json& e : j) flatten(e, out, input, depth + 1);
  } else {
    out.push_back(&j);
  }
}

template <class T>
void fill_ints(Tensor& t, const std::vector<const json*>& leaves, const std::string& input) {
  T* p = t.data<T>();
  for (size_t i = 0; i < leaves.size(); ++i) {
    const json& e = *leaves[i];
    if (e.is_boolean()) {
      p[i] = T(e.get<bool>());
      continue;
    }
    if (!e.is_number_integer())
      bad("input '", input, "': data element ", i, " is ", describe(e), ", expected an integer for ",
          kserve_dtype(t.dtype()));
    if (e.is_number_unsigned()) {
      uint64_t v = e.get<uint64_t>();
      if (v > uint64_t(std::numeric_limits<T>::max()))
        bad("input '", input, "': data element ", i, " (", v, ") is out of range for ",
            kserve_dtype(t.dtype()));
      p[i] = T(v);
    } else {
      int64_t v = e.get<int64_t>();
      if constexpr (std::is_unsigned_v<T>) {
        if (v < 0) bad("input '", input, "': data element ", i, " (", v, ") is negative but ",
                       kserve_dtype(t.dtype()), " is unsigned");
        if (uint64_t(v) > uint64_t(std::numeric_limits<T>::max()))
          bad("input '", input, "': data element ", i, " (", v, ") is out of range for ",
              kserve_dtype(t.dtype()));
      } else {
        if (v < int64_t(std::numeric_limits<T>::min()) || v > int64_t(std::numeric_limits<T>::max()))
          bad("input '", input, "': data element ", i, " (", v, ") is out of range for ",
              kserve_dtype(t.dtype()));
      }
      p[i] = T(v);
    }
  }
}

double float_of(const json& e, size_t i, const Tensor& t, const std::string& input) {
  if (e.is_number()) return e.get<double>();
  if (e.is_null()) return std::numeric_limits<double>::quiet_NaN();  // how JSON writers spell NaN
  if (e.is_string()) {
    const std::string& s = e.get_ref<const std::string&>();
    if (s == "NaN" || s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity" || s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity" || s == "-inf") return -std::numeric_limits<double>::infinity();
  }
  bad("input '", input, "': data element ", i, " is ", describe(e), ", expected a number for ",
      kserve_dtype(t.dtype()));
}

void fill_json(Tensor& t, const std::vector<const json*>& leaves, const std::string& input) {
  switch (t.dtype()) {
    case DType::kFloat32: {
      float* p = t.data<float>();
      for (size_t i = 0; i < leaves.size(); ++i) p[i] = float(float_of(*leaves[i], i, t, input));
      break;
    }
    case DType::kFloat64: {
      double* p = t.data<double>();
      for (size_t i = 0; i < leaves.size(); ++i) p[i] = float_of(*leaves[i], i, t, input);
      break;
    }
    case DType::kFloat16: {
      uint16_t* p = t.data<uint16_t>();
      for (size_t i = 0; i < leaves.size(); ++i)
        p[i] = float_to_half_bits(float(float_of(*leaves[i], i, t, input)));
      break;
    }
    case DType::kBFloat16: {
      uint16_t* p = t.data<uint16_t>();
      for (size_t i = 0; i < leaves.size(); ++i)
        p[i] = float_to_bf16_bits(float(float_of(*leaves[i], i, t, input)));
      break;
    }
    case DType::kBool: {
      uint8_t* p = t.data<uint8_t>();
      for (size_t i = 0; i < leaves.size(); ++i) {
        const json& e = *leaves[i];
        if (e.is_boolean()) p[i] = e.get<bool>();
        else if (e.is_number_integer() && (e.get<int64_t>() == 0 || e.get<int64_t>() == 1))
          p[i] = uint8_t(e.get<int64_t>());
        else bad("input '", input, "': data element ", i, " is ", describe(e), ", expected true or false for BOOL");
      }
      break;
    }
    case DType::kInt8: fill_ints<int8_t>(t, leaves, input); break;
    case DType::kInt16: fill_ints<int16_t>(t, leaves, input); break;
    case DType::kInt32: fill_ints<int32_t>(t, leaves, input); break;
    case DType::kInt64: fill_ints<int64_t>(t, leaves, input); break;
    case DType::kUInt8: fill_ints<uint8_t>(t, leaves, input); break;
    case DType::kUInt16: fill_ints<uint16_t>(t, leaves, input); break;
    case DType::kUInt32: fill_ints<uint32_t>(t, leaves, input); break;
    case DType::kUInt64: fill_ints<uint64_t>(t, leaves, input); break;
    default: bad("input '", input, "': datatype ", dtype_name(t.dtype()), " cannot be sent as JSON");
  }
}

json data_json(const Tensor& t) {
  json a = json::array();
  const int64_t n = t.numel();
  auto& arr = a.get_ref<json::array_t&>();
  arr.reserve(size_t(n));
  switch (t.dtype()) {
    case DType::kFloat32: for (int64_t i = 0; i < n; ++i) arr.emplace_back(t.data<float>()[i]); break;
    case DType::kFloat64: for (int64_t i = 0; i < n; ++i) arr.emplace_back(t.data<double>()[i]); break;
    case DType::kFloat16:
      for (int64_t i = 0; i < n; ++i) arr.emplace_back(half_bits_to_float(t.data<uint16_t>()[i]));
      break;
    case DType::kBFloat16:
      for (int64_t i = 0; i < n; ++i) arr.emplace_back(bf16_bits_to_float(t.data<uint16_t>()[i]));
      break;
    case DType::kBool: for (int64_t i = 0; i < n; ++i) arr.emplace_back(bool(t.data<uint8_t>()[i])); break;
    case DType::kInt8: for (int64_t i = 0; i < n; ++i) arr.emplace_back(t.data<int8_t>()[i]); break;
    case DType::kInt16: for (int64_t i = 0; i < n; ++i) arr.emplace_back(t.data<int16_t>()[i]); break;
    case DType::kInt32: for (int64_t i = 0; i < n; ++i) arr.emplace_back(t.data<int32_t>()[i]); break;
    case DType::kInt64: for (int64_t i = 0; i < n; ++i) arr.emplace_back(t.data<int64_t>()[i]); break;
    case DType::kUInt8: for (int64_t i = 0; i < n; ++i) arr.emplace_back(t.data<uint8_t>()[i]); break;
    case DType::kUInt16: for (int64_t i = 0; i < n; ++i) arr.emplace_back(t.data<uint16_t>()[i]); break;
    case DType::kUInt32: for (int64_t i = 0; i < n; ++i) arr.emplace_back(t.data<uint32_t>()[i]); break;
    case DType::kUInt64: for (int64_t i = 0; i < n; ++i) arr.emplace_back(t.data<uint64_t>()[i]); break;
    default: throw Error(detail::concat("output dtype ", dtype_name(t.dtype()), " cannot be sent as JSON"));
  }
  return a;
}

bool bool_param(const json& params, const char* key, const std::string& where) {
  if (!params.is_object() || !params.contains(key)) return false;
  const json& v = params[key];
  if (!v.is_boolean()) bad(where, ": parameters.", key, " must be true or false, got ", describe(v));
  return v.get<bool>();
}
}  // namespace

std::string_view kserve_dtype(DType t) {
  for (const auto& m : kNames)
    if (m.t == t) return m.name;
  return "";
}

DType dtype_from_kserve(std::string_view name) {
  for (const auto& m : kNames)
    if (name == m.name) return m.t;
  return DType::kUndefined;
}

std::vector<int64_t> metadata_dims(const TensorInfo& t) {
  if (!t.has_shape) return {-1};
  return t.dims;
}

BatchSpec batch_spec(const Engine& engine) {
  BatchSpec b;
  std::string sym;
  auto check = [&](const TensorInfo& t, const char* kind) -> bool {
    if (!t.has_shape || t.dims.empty()) {
      b.why_not = detail::concat(kind, " '", t.name, "' has ", t.has_shape ? "rank 0" : "no declared shape");
      return false;
    }
    if (t.dims[0] >= 0 || t.symbols[0].empty()) {
      b.why_not = detail::concat(kind, " '", t.name, "' has shape ", t.shape_str(),
                                 ": dimension 0 is not symbolic");
      return false;
    }
    if (sym.empty()) sym = t.symbols[0];
    if (t.symbols[0] != sym) {
      b.why_not = detail::concat(kind, " '", t.name, "' has dimension 0 '", t.symbols[0],
                                 "', but another tensor has '", sym, "'");
      return false;
    }
    return true;
  };
  if (engine.inputs().empty()) {
    b.why_not = "the model has no inputs";
    return b;
  }
  for (const auto& t : engine.inputs())
    if (!check(t, "input")) return b;
  for (const auto& t : engine.outputs())
    if (!check(t, "output")) return b;
  b.batched = true;
  b.symbol = sym;
  return b;
}

NamedTensors validate_inputs(NamedTensors given, const std::vector<TensorInfo>& specs) {
  std::map<std::string, size_t> at;
  for (size_t i = 0; i < given.size(); ++i)
    if (!at.emplace(given[i].first, i).second) bad("input '", given[i].first, "' was given twice");
  std::string names;
  for (const auto& s : specs) names += (names.empty() ? "" : ", ") + s.name;
  NamedTensors out;
  std::map<std::string, int64_t> syms;
  for (const TensorInfo& spec : specs) {
    auto it = at.find(spec.name);
    if (it == at.end())
      bad("missing input '", spec.name, "' (", kserve_dtype(spec.dtype), spec.shape_str(),
          "); the model's inputs are: ", names);
    Tensor& t = given[it->second].second;
    if (spec.dtype != DType::kUndefined && t.dtype() != spec.dtype)
      bad("input '", spec.name, "': datatype ", kserve_dtype(t.dtype()), " does not match the model's ",
          kserve_dtype(spec.dtype));
    if (spec.has_shape) {
      if (t.rank() != int(spec.dims.size()))
        bad("input '", spec.name, "': shape ", shape_str(t.shape()), " has rank ", t.rank(),
            ", the model expects rank ", spec.dims.size(), " ", spec.shape_str());
      for (int i = 0; i < t.rank(); ++i) {
        if (spec.dims[i] >= 0 && spec.dims[i] != t.dim(i))
          bad("input '", spec.name, "': shape ", shape_str(t.shape()), " does not match the model's ",
              spec.shape_str(), " (dimension ", i, " must be ", spec.dims[i], ")");
        if (spec.dims[i] < 0 && !spec.symbols[i].empty()) {
          auto [s, fresh] = syms.emplace(spec.symbols[i], t.dim(i));
          if (!fresh && s->second != t.dim(i))
            bad("input '", spec.name, "': dimension ", i, " ('", spec.symbols[i], "') is ", t.dim(i),
                ", but another input set '", spec.symbols[i], "' to ", s->second);
        }
      }
    }
    out.emplace_back(spec.name, std::move(t));
    at.erase(it);
  }
  if (!at.empty()) bad("unknown input '", at.begin()->first, "'; the model's inputs are: ", names);
  return out;
}

InferRequest parse_infer_request(const std::string& body, std::optional<size_t> header_length,
                                 const Engine& engine, const BatchSpec& batch, int64_t max_batch) {
  size_t hlen = body.size();
  if (header_length) {
    if (*header_length > body.size())
      bad("Inference-Header-Content-Length is ", *header_length, " but the body has only ",
          body.size(), " bytes");
    hlen = *header_length;
  }
  json j;
  try {
    j = json::parse(std::string_view(body).substr(0, hlen));
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number past double's range
    bad("malformed JSON in the request: ", e.what());
  }
  if (!j.is_object()) bad("the request must be a JSON object, got ", describe(j));

  InferRequest req;
  if (j.contains("id")) {
    if (!j["id"].is_string()) bad("'id' must be a string");
    req.id = j["id"].get<std::string>();
  }
  const json* params = j.contains("parameters") ? &j["parameters"] : nullptr;
  if (params && !params->is_object()) bad("'parameters' must be an object");
  if (params) {
    req.binary_output = bool_param(*params, "binary_data_output", "request");
    if (params->contains("timeout_ms")) {
      const json& v = (*params)["timeout_ms"];
      if (!v.is_number() || v.get<double>() <= 0) bad("parameters.timeout_ms must be a positive number");
      req.timeout_ms = v.get<double>();
    } else if (params->contains("timeout")) {
      const json& v = (*params)["timeout"];  // Triton's spelling, in microseconds
      if (!v.is_number() || v.get<double>() <= 0) bad("parameters.timeout must be a positive number (microseconds)");
      req.timeout_ms = v.get<double>() / 1000.0;
    }
  }

  if (!j.contains("inputs")) bad("the request has no 'inputs'");
  const json& inputs = j["inputs"];
  if (!inputs.is_array() || inputs.empty()) bad("'inputs' must be a non-empty array");

  size_t binary_offset = hlen;
  NamedTensors given;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const json& in = inputs[k];
    if (!in.is_object()) bad("inputs[", k, "] must be an object");
    if (!in.contains("name") || !in["name"].is_string()) bad("inputs[", k, "] has no 'name' string");
    const std::string name = in["name"].get<std::string>();
    if (!in.contains("datatype") || !in["datatype"].is_string())
      bad("input '", name, "' has no 'datatype' string");
    const std::string dt_name = in["datatype"].get<std::string>();
    const DType dt = dtype_from_kserve(dt_name);
    if (dt == DType::kUndefined)
      bad("input '", name, "': datatype '", dt_name, "' is not supported (use BOOL, INT8..INT64, UINT8..UINT64, FP16, BF16, FP32 or FP64)");
    if (!in.contains("shape") || !in["shape"].is_array()) bad("input '", name, "' has no 'shape' array");
    Shape shape;
    for (const json& d : in["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0)
        bad("input '", name, "': shape ", describe(in["shape"]), " must list non-negative integers");
      shape.push_back(d.get<int64_t>());
    }
    if (shape.size() > 16) bad("input '", name, "': rank ", shape.size(), " is too large");
    // Overflow-safe element count.
    int64_t numel = 1;
    for (int64_t d : shape) {
      if (d != 0 && numel > (int64_t(1) << 40) / d) bad("input '", name, "': shape ", shape_str(shape), " is too large");
      numel *= d;
    }
    const size_t nbytes = size_t(numel) * dtype_size(dt);
    const json* ip = in.contains("parameters") ? &in["parameters"] : nullptr;
    if (ip && !ip->is_object()) bad("input '", name, "': 'parameters' must be an object");
    // The tensor is allocated only once its size is known to match the bytes
    // or elements actually sent, so a huge declared shape cannot allocate.
    Tensor t;
    if (ip && ip->contains("binary_data_size")) {
      const json& v = (*ip)["binary_data_size"];
      if (!v.is_number_integer() || v.get<int64_t>() < 0)
        bad("input '", name, "': parameters.binary_data_size must be a non-negative integer");
      const size_t size = size_t(v.get<int64_t>());
      if (!header_length)
        bad("input '", name, "' has binary data but the request has no Inference-Header-Content-Length header");
      if (in.contains("data")) bad("input '", name, "' has both 'data' and parameters.binary_data_size");
      if (size != nbytes)
        bad("input '", name, "': binary_data_size is ", size, " bytes but ", kserve_dtype(dt),
            shape_str(shape), " needs ", nbytes);
      if (size > body.size() - binary_offset)
        bad("input '", name, "': binary_data_size ", size, " runs past the end of the body (",
            body.size() - binary_offset, " binary bytes left)");
      t = Tensor(dt, shape);
      if (size) std::memcpy(t.raw(), body.data() + binary_offset, size);
      binary_offset += size;
    } else {
      if (!in.contains("data")) bad("input '", name, "' has neither 'data' nor parameters.binary_data_size");
      std::vector<const json*> leaves;
      flatten(in["data"], leaves, name, 0);
      if (int64_t(leaves.size()) != numel)
        bad("input '", name, "': 'data' has ", leaves.size(), " elements but shape ", shape_str(shape),
            " needs ", numel);
      t = Tensor(dt, shape);
      fill_json(t, leaves, name);
    }
    given.emplace_back(name, std::move(t));
  }
  if (binary_offset != body.size())
    bad("the body has ", body.size() - hlen, " bytes after the JSON header but the inputs' binary_data_size add up to ",
        binary_offset - hlen);

  req.inputs = validate_inputs(std::move(given), engine.inputs());
  if (batch.batched) {
    req.batch = req.inputs.front().second.dim(0);
    for (const auto& [n, t] : req.inputs)
      if (t.dim(0) != req.batch)
        bad("input '", n, "': batch dimension is ", t.dim(0), " but input '", req.inputs.front().first,
            "' has ", req.batch);
    if (req.batch > max_batch)
      bad("batch size ", req.batch, " exceeds the model's max_batch_size ", max_batch);
  }

  if (j.contains("outputs")) {
    const json& outs = j["outputs"];
    if (!outs.is_array()) bad("'outputs' must be an array");
    for (size_t k = 0; k < outs.size(); ++k) {
      const json& o = outs[k];
      if (!o.is_object() || !o.contains("name") || !o["name"].is_string())
        bad("outputs[", k, "] must be an object with a 'name' string");
      RequestedOutput r{o["name"].get<std::string>(), req.binary_output};
      bool known = false;
      for (const auto& mo : engine.outputs()) known |= mo.name == r.name;
      if (!known) {
        std::string names;
        for (const auto& mo : engine.outputs()) names += (names.empty() ? "" : ", ") + mo.name;
        bad("unknown output '", r.name, "'; the model's outputs are: ", names);
      }
      if (o.contains("parameters")) {
        const json& op = o["parameters"];
        if (!op.is_object()) bad("output '", r.name, "': 'parameters' must be an object");
        if (op.contains("binary_data")) r.binary = bool_param(op, "binary_data", "output '" + r.name + "'");
        if (op.contains("classification")) bad("output '", r.name, "': the classification extension is not supported");
      }
      req.outputs.push_back(std::move(r));
    }
  }
  return req;
}

EncodedResponse encode_infer_response(const std::string& model_name, const InferRequest& req,
                                      const NamedTensors& outputs) {
  std::vector<RequestedOutput> wanted = req.outputs;
  if (wanted.empty())
    for (const auto& [n, t] : outputs) wanted.push_back({n, req.binary_output});
  json r;
  r["model_name"] = model_name;
  r["model_version"] = "1";
  if (!req.id.empty()) r["id"] = req.id;
  json outs = json::array();
  std::string binary;
  for (const auto& w : wanted) {
    const Tensor* t = nullptr;
    for (const auto& [n, tt] : outputs)
      if (n == w.name) t = &tt;
    if (!t) throw Error(detail::concat("output '", w.name, "' was not produced"));
    std::string_view dt = kserve_dtype(t->dtype());
    if (dt.empty()) throw Error(detail::concat("output '", w.name, "' has dtype ", dtype_name(t->dtype()),
                                               ", which the protocol cannot carry"));
    json o;
    o["name"] = w.name;
    o["datatype"] = dt;
    o["shape"] = t->shape();
    if (w.binary) {
      o["parameters"]["binary_data_size"] = t->nbytes();
      binary.append(static_cast<const char*>(t->raw()), t->nbytes());
    } else {
      o["data"] = data_json(*t);
    }
    outs.push_back(std::move(o));
  }
  r["outputs"] = std::move(outs);
  EncodedResponse e;
  e.body = r.dump(-1, ' ', false, json::error_handler_t::replace);
  bool any_binary = false;
  for (const auto& w : wanted) any_binary |= w.binary;
  if (any_binary) {
    e.header_length = e.body.size();
    e.body += binary;
  }
  return e;
}

}  // namespace deepep::serve
