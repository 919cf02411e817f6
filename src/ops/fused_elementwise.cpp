// deepep.FusedElementwise: see fused_elementwise.h for the program format.
// The kernel walks the output in tiles of kTile elements; per tile it loads
// each input's slice (converted to float, broadcast by strides), runs the
// instructions as tight loops over tile-sized registers (register slots are
// reused once a value is dead, so a tile's working set stays in L1/L2), and
// stores the outputs. Tiles run in parallel for large outputs.
#include "ops/fused_elementwise.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "ops/gemm_util.h"
#include "ops/op_util.h"

namespace deepep::fused {

const EwOpInfo kEwOps[size_t(EwOp::kCount)] = {
    {EwOp::kAdd, "Add", 2},           {EwOp::kSub, "Sub", 2},
    {EwOp::kMul, "Mul", 2},           {EwOp::kDiv, "Div", 2},
    {EwOp::kPow, "Pow", 2},           {EwOp::kPowF64, "PowF64", 2},
    {EwOp::kMax, "Max", 2},           {EwOp::kMin, "Min", 2},
    {EwOp::kNeg, "Neg", 1},           {EwOp::kAbs, "Abs", 1},
    {EwOp::kReciprocal, "Reciprocal", 1}, {EwOp::kRelu, "Relu", 1},
    {EwOp::kSigmoid, "Sigmoid", 1},   {EwOp::kTanh, "Tanh", 1},
    {EwOp::kErf, "Erf", 1},           {EwOp::kExp, "Exp", 1},
    {EwOp::kLog, "Log", 1},           {EwOp::kSqrt, "Sqrt", 1},
    {EwOp::kFloor, "Floor", 1},       {EwOp::kCeil, "Ceil", 1},
    {EwOp::kSin, "Sin", 1},           {EwOp::kCos, "Cos", 1},
    {EwOp::kSoftplus, "Softplus", 1}, {EwOp::kSoftsign, "Softsign", 1},
    {EwOp::kHardSwish, "HardSwish", 1}, {EwOp::kGelu, "Gelu", 1},
    {EwOp::kGeluTanh, "GeluTanh", 1}, {EwOp::kToFloat16, "ToFloat16", 1},
    {EwOp::kToBFloat16, "ToBFloat16", 1}, {EwOp::kLeakyRelu, "LeakyRelu", 2},
    {EwOp::kElu, "Elu", 2},           {EwOp::kHardSigmoid, "HardSigmoid", 3},
    {EwOp::kClip, "Clip", 3},         {EwOp::kWhere, "Where", 3},
};

std::optional<EwOp> ew_op_from_name(std::string_view name) {
  for (const EwOpInfo& i : kEwOps)
    if (name == i.name) return i.op;
  return std::nullopt;
}

namespace {
bool is_float_out(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16; }
}  // namespace

EwProgram EwProgram::from_node(const Node& n) {
  const std::string who = n.describe();
  for (size_t i = 0; i < size_t(EwOp::kCount); ++i)
    DEEPEP_CHECK(size_t(kEwOps[i].op) == i, "FusedElementwise: op table out of order at ", i);
  EwProgram p;
  p.num_inputs = int(n.inputs.size());
  for (size_t i = 0; i < n.inputs.size(); ++i)
    DEEPEP_CHECK(n.inputs[i], who, ": input ", i, " is omitted; every input is an operand");
  const Attribute* ops = n.attr("ops");
  DEEPEP_CHECK(ops && ops->kind == Attribute::Kind::kStrings, who, ": attribute 'ops' (strings) is missing");
  const std::vector<int64_t> args = n.attr_ints("args");
  p.consts = n.attr_floats("consts");
  const std::vector<int64_t> outs = n.attr_ints("outputs");
  const std::vector<int64_t> dts = n.attr_ints("out_dtypes");
  size_t a = 0;
  for (size_t k = 0; k < ops->strings.size(); ++k) {
    const auto op = ew_op_from_name(ops->strings[k]);
    DEEPEP_CHECK(op, who, ": unknown instruction '", ops->strings[k], "' at ", k);
    EwInstr ins;
    ins.op = *op;
    const int arity = ew_info(*op).arity;
    DEEPEP_CHECK(a + size_t(arity) <= args.size(), who, ": 'args' ends inside instruction ", k, " (",
                 ops->strings[k], ")");
    for (int j = 0; j < arity; ++j) {
      const int64_t r = args[a++];
      const int64_t defined = p.num_inputs + int64_t(k);
      DEEPEP_CHECK(r < defined, who, ": instruction ", k, " (", ops->strings[k], ") reads register ", r,
                   ", defined are 0..", defined - 1);
      DEEPEP_CHECK(r >= 0 || -1 - r < int64_t(p.consts.size()), who, ": instruction ", k, " reads constant ",
                   -1 - r, " of ", p.consts.size());
      ins.args[size_t(j)] = int(r);
    }
    p.code.push_back(ins);
  }
  DEEPEP_CHECK(a == args.size(), who, ": 'args' has ", args.size() - a, " operands beyond the last instruction");
  DEEPEP_CHECK(outs.size() == n.outputs.size() && dts.size() == n.outputs.size(), who, ": 'outputs' (",
               outs.size(), ") and 'out_dtypes' (", dts.size(), ") must name each of the ", n.outputs.size(),
               " outputs");
  DEEPEP_CHECK(p.num_inputs > 0, who, ": needs at least one input");
  for (size_t i = 0; i < outs.size(); ++i) {
    DEEPEP_CHECK(outs[i] >= 0 && outs[i] < p.num_registers(), who, ": output ", i, " names register ", outs[i],
                 " of 0..", p.num_registers() - 1);
    const DType t = DType(uint8_t(dts[i]));
    DEEPEP_CHECK(dts[i] >= 0 && dts[i] < 256 && is_float_out(t), who, ": output ", i, " has dtype code ", dts[i],
                 "; expected float32, float16 or bfloat16");
    p.outputs.push_back(int(outs[i]));
    p.out_dtypes.push_back(t);
  }
  return p;
}

void EwProgram::to_node(Node& n) const {
  Attribute ops;
  ops.kind = Attribute::Kind::kStrings;
  Attribute args;
  args.kind = Attribute::Kind::kInts;
  for (const EwInstr& ins : code) {
    ops.strings.push_back(ew_info(ins.op).name);
    for (int j = 0; j < ew_info(ins.op).arity; ++j) args.ints.push_back(ins.args[size_t(j)]);
  }
  Attribute cs;
  cs.kind = Attribute::Kind::kFloats;
  cs.floats = consts;
  Attribute outs;
  outs.kind = Attribute::Kind::kInts;
  for (int r : outputs) outs.ints.push_back(r);
  Attribute dts;
  dts.kind = Attribute::Kind::kInts;
  for (DType t : out_dtypes) dts.ints.push_back(int64_t(t));
  n.attrs["ops"] = std::move(ops);
  n.attrs["args"] = std::move(args);
  n.attrs["consts"] = std::move(cs);
  n.attrs["outputs"] = std::move(outs);
  n.attrs["out_dtypes"] = std::move(dts);
}

std::string EwProgram::str() const {
  std::ostringstream os;
  auto operand = [&](int r) { return r >= 0 ? "r" + std::to_string(r) : "c" + std::to_string(-1 - r); };
  for (size_t k = 0; k < code.size(); ++k) {
    os << (k ? "; " : "") << "r" << num_inputs + int(k) << " = " << ew_info(code[k].op).name << "(";
    for (int j = 0; j < ew_info(code[k].op).arity; ++j) os << (j ? ", " : "") << operand(code[k].args[size_t(j)]);
    os << ")";
  }
  os << " ->";
  for (int r : outputs) os << " r" << r;
  return os.str();
}

}  // namespace deepep::fused

namespace deepep::ops {
namespace {

using fused::EwInstr;
using fused::EwOp;
using fused::EwProgram;

constexpr int64_t kTile = 1024;  // elements: a register is 4 KB

// The same formulas as the ops' reference kernels (activation.cpp).
inline float sigmoid(float v) {
  if (v >= 0) return 1.0f / (1.0f + std::exp(-v));
  const float e = std::exp(v);
  return e / (1.0f + e);
}
inline float softplus(float v) { return std::max(v, 0.0f) + std::log1p(std::exp(-std::fabs(v))); }

// How one input is read for a tile.
struct InputPlan {
  enum Kind { kDirect, kContiguous, kScalar, kStrided } kind = kDirect;
  DType dtype = DType::kFloat32;
  const void* data = nullptr;
  // kStrided: the output dims and this input's strides, adjacent dims merged
  // where the input is contiguous (or broadcast) across them.
  Shape dims;
  std::vector<int64_t> strides;
};

template <class T>
inline float to_f(T v) {
  if constexpr (std::is_same_v<T, bool>) return v ? 1.0f : 0.0f;
  else return float(v);
}

template <class T>
void load_strided(const InputPlan& in, int64_t start, int64_t len, float* dst) {
  const T* src = static_cast<const T*>(in.data);
  const Shape& dims = in.dims;
  const auto& st = in.strides;
  const size_t rank = dims.size();
  std::array<int64_t, 16> idx_small{};
  std::vector<int64_t> idx_big;
  int64_t* idx = idx_small.data();
  if (rank > idx_small.size()) {
    idx_big.assign(rank, 0);
    idx = idx_big.data();
  }
  int64_t off = 0, rem = start;
  for (size_t d = rank; d-- > 0;) {
    idx[d] = rem % dims[d];
    rem /= dims[d];
    off += idx[d] * st[d];
  }
  const size_t last = rank - 1;
  const int64_t s = st[last];
  for (int64_t k = 0; k < len;) {
    const int64_t run = std::min(dims[last] - idx[last], len - k);
    if (s == 0) {
      const float v = to_f(src[off]);
      for (int64_t j = 0; j < run; ++j) dst[k + j] = v;
    } else if (s == 1) {
      for (int64_t j = 0; j < run; ++j) dst[k + j] = to_f(src[off + j]);
    } else {
      for (int64_t j = 0; j < run; ++j) dst[k + j] = to_f(src[off + j * s]);
    }
    k += run;
    idx[last] += run;
    off += run * s;
    for (size_t d = last; d > 0 && idx[d] == dims[d]; --d) {
      off -= idx[d] * st[d];
      idx[d] = 0;
      ++idx[d - 1];
      off += st[d - 1];
    }
  }
}

template <class T>
void load_tile(const InputPlan& in, int64_t start, int64_t len, float* dst) {
  const T* src = static_cast<const T*>(in.data);
  switch (in.kind) {
    case InputPlan::kScalar: {
      const float v = to_f(src[0]);
      for (int64_t j = 0; j < len; ++j) dst[j] = v;
      break;
    }
    case InputPlan::kContiguous:
    case InputPlan::kDirect:
      for (int64_t j = 0; j < len; ++j) dst[j] = to_f(src[start + j]);
      break;
    case InputPlan::kStrided: load_strided<T>(in, start, len, dst); break;
  }
}

void load(const InputPlan& in, int64_t start, int64_t len, float* dst) {
  switch (in.dtype) {
    case DType::kFloat32: return load_tile<float>(in, start, len, dst);
    case DType::kFloat16: return load_tile<float16>(in, start, len, dst);
    case DType::kBFloat16: return load_tile<bfloat16>(in, start, len, dst);
    case DType::kBool: return load_tile<bool>(in, start, len, dst);
    default: break;
  }
}

void store(DType t, const float* src, void* out, int64_t start, int64_t len) {
  switch (t) {
    case DType::kFloat32: std::memcpy(static_cast<float*>(out) + start, src, size_t(len) * 4); break;
    case DType::kFloat16: {
      float16* o = static_cast<float16*>(out) + start;
      for (int64_t j = 0; j < len; ++j) o[j] = float16(src[j]);
      break;
    }
    default: {
      bfloat16* o = static_cast<bfloat16*>(out) + start;
      for (int64_t j = 0; j < len; ++j) o[j] = bfloat16(src[j]);
      break;
    }
  }
}

template <class F>
inline void un(float* o, const float* a, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
}
template <class F>
inline void bin(float* o, const float* a, const float* b, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
}
template <class F>
inline void ter(float* o, const float* a, const float* b, const float* c, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i], c[i]);
}

template <bool kMax>
inline float extremum(float a, float v) {
  if (std::isnan(a) || std::isnan(v)) return std::isnan(a) ? a : v;
  return kMax ? (v > a ? v : a) : (v < a ? v : a);
}

void exec(const EwInstr& ins, float* o, const float* a, const float* b, const float* c, int64_t n) {
  switch (ins.op) {
    case EwOp::kAdd: return bin(o, a, b, n, [](float x, float y) { return x + y; });
    case EwOp::kSub: return bin(o, a, b, n, [](float x, float y) { return x - y; });
    case EwOp::kMul: return bin(o, a, b, n, [](float x, float y) { return x * y; });
    case EwOp::kDiv: return bin(o, a, b, n, [](float x, float y) { return x / y; });
    case EwOp::kPow: return bin(o, a, b, n, [](float x, float y) { return std::pow(x, y); });
    case EwOp::kPowF64:
      return bin(o, a, b, n, [](float x, float y) { return float(std::pow(double(x), double(y))); });
    case EwOp::kMax: return bin(o, a, b, n, extremum<true>);
    case EwOp::kMin: return bin(o, a, b, n, extremum<false>);
    case EwOp::kNeg: return un(o, a, n, [](float v) { return -v; });
    case EwOp::kAbs: return un(o, a, n, [](float v) { return std::fabs(v); });
    case EwOp::kReciprocal: return un(o, a, n, [](float v) { return 1.0f / v; });
    case EwOp::kRelu: return un(o, a, n, [](float v) { return v < 0.0f ? 0.0f : v; });
    case EwOp::kSigmoid: return un(o, a, n, sigmoid);
    case EwOp::kTanh: return un(o, a, n, [](float v) { return std::tanh(v); });
    case EwOp::kErf: return un(o, a, n, [](float v) { return std::erf(v); });
    case EwOp::kExp: return un(o, a, n, [](float v) { return std::exp(v); });
    case EwOp::kLog: return un(o, a, n, [](float v) { return std::log(v); });
    case EwOp::kSqrt: return un(o, a, n, [](float v) { return std::sqrt(v); });
    case EwOp::kFloor: return un(o, a, n, [](float v) { return std::floor(v); });
    case EwOp::kCeil: return un(o, a, n, [](float v) { return std::ceil(v); });
    case EwOp::kSin: return un(o, a, n, [](float v) { return std::sin(v); });
    case EwOp::kCos: return un(o, a, n, [](float v) { return std::cos(v); });
    case EwOp::kSoftplus: return un(o, a, n, softplus);
    case EwOp::kSoftsign: return un(o, a, n, [](float v) { return v / (1.0f + std::fabs(v)); });
    case EwOp::kHardSwish:
      return un(o, a, n, [](float v) { return v * std::max(0.0f, std::min(1.0f, v / 6.0f + 0.5f)); });
    case EwOp::kGelu:
      return un(o, a, n, [](float v) { return 0.5f * v * (1.0f + std::erf(v * float(M_SQRT1_2))); });
    case EwOp::kGeluTanh:
      return un(o, a, n, [](float v) {
        const float k = float(0.79788456080286535588);  // sqrt(2 / pi)
        return 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
      });
    case EwOp::kToFloat16: return un(o, a, n, [](float v) { return float(float16(v)); });
    case EwOp::kToBFloat16: return un(o, a, n, [](float v) { return float(bfloat16(v)); });
    case EwOp::kLeakyRelu: return bin(o, a, b, n, [](float v, float al) { return v < 0 ? al * v : v; });
    case EwOp::kElu:
      return bin(o, a, b, n, [](float v, float al) { return v < 0 ? al * (std::exp(v) - 1.0f) : v; });
    case EwOp::kHardSigmoid:
      return ter(o, a, b, c, n,
                 [](float v, float al, float be) { return std::max(0.0f, std::min(1.0f, al * v + be)); });
    case EwOp::kClip:
      return ter(o, a, b, c, n, [](float v, float lo, float hi) {
        if (v < lo) v = lo;
        if (v > hi) v = hi;
        return v;
      });
    case EwOp::kWhere: return ter(o, a, b, c, n, [](float m, float x, float y) { return m != 0.0f ? x : y; });
    case EwOp::kCount: break;
  }
}

// Dims of `out` merged where `strides` (this input's, 0 on broadcast dims)
// continue across them: d and d+1 merge when strides[d] == strides[d+1] * out[d+1].
void coalesce(const Shape& out, const std::vector<int64_t>& strides, InputPlan& p) {
  p.dims.clear();
  p.strides.clear();
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1) continue;  // a size-1 dim moves nothing
    if (!p.dims.empty() && p.strides.back() == strides[d] * out[d]) {
      p.dims.back() *= out[d];
      p.strides.back() = strides[d];
    } else {
      p.dims.push_back(out[d]);
      p.strides.push_back(strides[d]);
    }
  }
  if (p.dims.empty()) {
    p.dims.push_back(1);
    p.strides.push_back(0);
  }
}

void fused_elementwise_kernel(KernelContext& ctx) {
  const EwProgram p = EwProgram::from_node(ctx.node);
  const std::string who = ctx.node.describe();
  DEEPEP_CHECK(ctx.num_inputs() == p.num_inputs, who, ": expected ", p.num_inputs, " inputs, got ",
               ctx.num_inputs());
  Shape shape = ctx.input(0).shape();
  for (int i = 1; i < p.num_inputs; ++i) shape = broadcast_shapes(shape, ctx.input(i).shape(), ctx.node);
  std::vector<InputPlan> plans(size_t(p.num_inputs));
  for (int i = 0; i < p.num_inputs; ++i) {
    const Tensor& x = ctx.input(i);
    const DType t = x.dtype();
    DEEPEP_CHECK(t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16 || t == DType::kBool, who,
                 ": input ", i, " has dtype ", dtype_name(t), "; expected float32, float16, bfloat16 or bool");
    InputPlan& ip = plans[size_t(i)];
    ip.dtype = t;
    ip.data = x.raw();
    if (x.shape() == shape) ip.kind = t == DType::kFloat32 ? InputPlan::kDirect : InputPlan::kContiguous;
    else if (x.numel() == 1) ip.kind = InputPlan::kScalar;
    else {
      ip.kind = InputPlan::kStrided;
      coalesce(shape, broadcast_strides(x.shape(), shape), ip);
    }
  }
  std::vector<void*> outs;
  for (size_t j = 0; j < p.outputs.size(); ++j) outs.push_back(ctx.output(int(j), p.out_dtypes[j], shape).raw());
  const int64_t n = shape_numel(shape);
  if (n == 0) return;

  // Register slots: inputs read directly (float32 of the output's shape) need
  // none; constants get one filled slot each; instruction results reuse slots
  // of values no longer read. Outputs stay live to the end of the tile.
  const int nreg = p.num_registers();
  std::vector<int> last_use(size_t(nreg), -1);
  for (size_t k = 0; k < p.code.size(); ++k)
    for (int j = 0; j < fused::ew_info(p.code[k].op).arity; ++j) {
      const int r = p.code[k].args[size_t(j)];
      if (r >= 0) last_use[size_t(r)] = int(k);
    }
  for (int r : p.outputs) last_use[size_t(r)] = int(p.code.size());
  std::vector<int> slot(size_t(nreg), -1);
  int nslots = 0;
  std::vector<int> free_slots;
  auto take = [&] {
    if (free_slots.empty()) return nslots++;
    const int s = free_slots.back();
    free_slots.pop_back();
    return s;
  };
  for (int i = 0; i < p.num_inputs; ++i)
    if (plans[size_t(i)].kind != InputPlan::kDirect && last_use[size_t(i)] >= 0) slot[size_t(i)] = take();
  const int nconst = int(p.consts.size());
  const int const_base = nslots;
  nslots += nconst;
  for (size_t k = 0; k < p.code.size(); ++k) {
    // Free operands that die here before taking the result's slot: an
    // instruction may write over an operand it reads (each loop reads
    // element i before writing it).
    for (int j = 0; j < fused::ew_info(p.code[k].op).arity; ++j) {
      const int r = p.code[k].args[size_t(j)];
      if (r >= 0 && last_use[size_t(r)] == int(k) && slot[size_t(r)] >= 0) {
        free_slots.push_back(slot[size_t(r)]);
        last_use[size_t(r)] = -2;  // freed once even if read twice
      }
    }
    slot[size_t(p.num_inputs) + k] = take();
  }

  // Pow by a constant 2 is a multiply (the exact square, rounded once: what
  // a correctly rounded pow returns); other exponents go through pow.
  std::vector<char> square(p.code.size(), 0);
  for (size_t k = 0; k < p.code.size(); ++k) {
    const EwInstr& ins = p.code[k];
    square[k] = ins.op == EwOp::kPow && ins.args[1] < 0 && p.consts[size_t(-1 - ins.args[1])] == 2.0f;
  }

  const int64_t tiles = (n + kTile - 1) / kTile;
  const int threads = threads_for_work(double(n) * double(std::max<size_t>(p.code.size(), 1)) * 4);
  parallel_for(tiles, threads, [&](int64_t t0, int64_t t1) {
    std::vector<float> scratch(size_t(nslots) * size_t(kTile));
    auto slot_ptr = [&](int s) { return scratch.data() + size_t(s) * size_t(kTile); };
    for (int c = 0; c < nconst; ++c) std::fill_n(slot_ptr(const_base + c), kTile, p.consts[size_t(c)]);
    std::vector<const float*> reg(size_t(nreg), nullptr);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t start = t * kTile, len = std::min(kTile, n - start);
      for (int i = 0; i < p.num_inputs; ++i) {
        const InputPlan& ip = plans[size_t(i)];
        if (ip.kind == InputPlan::kDirect) {
          reg[size_t(i)] = static_cast<const float*>(ip.data) + start;
        } else if (slot[size_t(i)] >= 0) {
          load(ip, start, len, slot_ptr(slot[size_t(i)]));
          reg[size_t(i)] = slot_ptr(slot[size_t(i)]);
        }
      }
      auto operand = [&](int r) { return r >= 0 ? reg[size_t(r)] : slot_ptr(const_base + (-1 - r)); };
      for (size_t k = 0; k < p.code.size(); ++k) {
        const EwInstr& ins = p.code[k];
        const int arity = fused::ew_info(ins.op).arity;
        float* o = slot_ptr(slot[size_t(p.num_inputs) + k]);
        if (square[k]) {  // x ** 2: one correctly rounded product, as pow gives
          const float* a = operand(ins.args[0]);
          for (int64_t i = 0; i < len; ++i) o[i] = a[i] * a[i];
          reg[size_t(p.num_inputs) + k] = o;
          continue;
        }
        exec(ins, o, operand(ins.args[0]), arity > 1 ? operand(ins.args[1]) : nullptr,
             arity > 2 ? operand(ins.args[2]) : nullptr, len);
        reg[size_t(p.num_inputs) + k] = o;
      }
      for (size_t j = 0; j < p.outputs.size(); ++j) store(p.out_dtypes[j], reg[size_t(p.outputs[j])], outs[j], start, len);
    }
  });
}

void infer_fused_elementwise(InferContext& ctx) {
  const std::vector<int64_t> dts = ctx.node.attr_ints("out_dtypes");
  std::optional<SymShape> s = SymShape{};
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    if (!ctx.has_input(int(i)) || !ctx.input(int(i)).shape) {
      s.reset();
      break;
    }
    s = broadcast_sym(*s, *ctx.input(int(i)).shape);
  }
  for (size_t j = 0; j < ctx.outputs.size() && j < dts.size(); ++j) ctx.set(int(j), DType(uint8_t(dts[j])), s);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_FUSED_OP(FusedElementwise) {
  def.infer = infer_fused_elementwise;
  def.reference = fused_elementwise_kernel;
  def.cost = [](const Node& n, const std::vector<Shape>& in, const std::vector<Shape>& out) {
    const Attribute* ops = n.attr("ops");
    const double len = ops ? double(ops->strings.size()) : 1.0;
    Cost c;
    const double elems = out.empty() ? 0 : double(shape_numel(out[0]));
    c.flops = elems * len;
    for (const Shape& s : in) c.bytes += double(shape_numel(s)) * 4;
    c.bytes += elems * 4 * double(out.size());
    return c;
  };
}
