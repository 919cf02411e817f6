// The GPU kernel table (gpu_kernels.h): per op, validation and geometry on
// the host, then the launchers of launch.h, cuBLASLt (gemm.h) or cuDNN.
// The CPU reference kernels (src/ops/*.cpp) define the semantics; the CUDA
// tests (tests/cuda) compare every entry here against them.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>

#include "kernels/cuda/conv.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gpu_kernels.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/nhwc.h"
#include "ops/slice_bounds.h"
#include "ops/fused_epilogue.h"

namespace deepep::cuda {
namespace {

std::string what_of(const GpuNode& n) { return n.node.describe(); }
int code(DType t) { return int(t); }

bool gpu_dtype_ok(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kFloat16: case DType::kBFloat16: case DType::kInt64: case DType::kInt32:
    case DType::kBool: case DType::kUInt8: case DType::kInt8: case DType::kFloat64: return true;
    default: return false;
  }
}
void check_dtypes(const GpuNode& n) {
  for (const auto* list : {&n.in, &n.out})
    for (const GpuTensor& t : *list)
      if (t.defined())
        DEEPEP_CHECK(gpu_dtype_ok(t.dtype), what_of(n), ": dtype ", dtype_name(t.dtype), " is not supported by the CUDA backend");
}
bool is_float(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16; }

std::vector<int64_t> dense_strides(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (size_t i = s.size(); i-- > 0;) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

// Indexer for operands broadcast (numpy rules) into `out`.
Indexer broadcast_indexer(const GpuNode& n, const Shape& out, const std::vector<const Shape*>& ops) {
  Indexer ix;
  DEEPEP_CHECK(out.size() <= size_t(kMaxDims), what_of(n), ": rank ", out.size(), " is above the CUDA backend's ", kMaxDims);
  ix.rank = int(out.size());
  for (size_t d = 0; d < out.size(); ++d) ix.dims[d] = out[d];
  for (size_t o = 0; o < ops.size(); ++o) {
    const Shape& s = *ops[o];
    DEEPEP_CHECK(s.size() <= out.size(), what_of(n), ": operand ", shape_str(s), " has a higher rank than the output ",
                 shape_str(out));
    const std::vector<int64_t> st = dense_strides(s);
    const size_t lead = out.size() - s.size();
    for (size_t d = 0; d < s.size(); ++d) {
      DEEPEP_CHECK(s[d] == out[lead + d] || s[d] == 1, what_of(n), ": operand ", shape_str(s),
                   " does not broadcast to ", shape_str(out));
      ix.strides[o][lead + d] = s[d] == 1 ? 0 : st[d];
    }
  }
  if (ix.rank == 0) {  // scalar: one element
    ix.rank = 1;
    ix.dims[0] = 1;
  }
  return ix;
}

void launched(const GpuNode& n) { DEEPEP_CUDA_LAUNCHED(what_of(n)); }

std::vector<int64_t> host_ints(const GpuNode& n, size_t i, const char* what) {
  DEEPEP_CHECK(n.has_input(i) && n.in[i].host, what_of(n), ": input ", i, " (", what,
               ") must be known on the host (a constant or computed from shapes) on the CUDA backend");
  return n.in[i].host->to_int_vector();
}
double host_scalar(const GpuNode& n, size_t i, const char* what) {
  DEEPEP_CHECK(n.has_input(i) && n.in[i].host && n.in[i].host->numel() == 1, what_of(n), ": input ", i, " (", what,
               ") must be a scalar known on the host on the CUDA backend");
  return n.in[i].host->get_double(0);
}

// ---------------------------------------------------------------- elementwise
GpuKernel binary_kernel(BinOp op) {
  GpuKernel k;
  k.run = [op](GpuContext& ctx, GpuNode& n) {
    DEEPEP_CHECK(n.in.size() == 2 && n.has_input(0) && n.has_input(1), what_of(n), ": expects two inputs");
    const GpuTensor &a = n.in[0], &b = n.in[1];
    GpuTensor& y = n.out[0];
    const Indexer ix = broadcast_indexer(n, y.shape, {&a.shape, &b.shape});
    binary(op, a.data, code(a.dtype), b.data, code(b.dtype), y.data, code(y.dtype), ix, y.numel(), ctx.stream);
    launched(n);
  };
  return k;
}

// Variadic Max/Min/Sum: pairwise into the output.
GpuKernel variadic_kernel(BinOp op) {
  GpuKernel k;
  k.run = [op](GpuContext& ctx, GpuNode& n) {
    GpuTensor& y = n.out[0];
    DEEPEP_CHECK(!n.in.empty() && n.has_input(0), what_of(n), ": needs at least one input");
    Shape ys = y.shape;
    const Indexer ix0 = broadcast_indexer(n, ys, {&n.in[0].shape});
    strided_copy(n.in[0].data, 0, y.data, int(dtype_size(y.dtype)), ix0, y.numel(), ctx.stream);
    launched(n);
    DEEPEP_CHECK(n.in[0].dtype == y.dtype, what_of(n), ": inputs and output dtypes differ");
    for (size_t i = 1; i < n.in.size(); ++i) {
      const Indexer ix = broadcast_indexer(n, ys, {&ys, &n.in[i].shape});
      binary(op, y.data, code(y.dtype), n.in[i].data, code(n.in[i].dtype), y.data, code(y.dtype), ix, y.numel(),
             ctx.stream);
      launched(n);
    }
  };
  return k;
}

GpuKernel unary_kernel(UnOp op, float p0 = 0, float p1 = 0, const char* a0 = nullptr, const char* a1 = nullptr) {
  GpuKernel k;
  k.run = [=](GpuContext& ctx, GpuNode& n) {
    float q0 = a0 ? n.node.attr_float(a0, p0) : p0;
    float q1 = a1 ? n.node.attr_float(a1, p1) : p1;
    UnOp o = op;
    if (op == UnOp::kGelu && n.node.attr_string("approximate", "none") == "tanh") o = UnOp::kGeluTanh;
    if (op == UnOp::kClip) {
      q0 = -std::numeric_limits<float>::infinity();
      q1 = std::numeric_limits<float>::infinity();
      const bool attr_form = (n.node.opset > 0 && n.node.opset < 11) ||
                             (n.in.size() == 1 && (n.node.has_attr("min") || n.node.has_attr("max")));
      if (attr_form) {
        q0 = n.node.attr_float("min", q0);
        q1 = n.node.attr_float("max", q1);
      } else {
        if (n.has_input(1)) q0 = float(host_scalar(n, 1, "min"));
        if (n.has_input(2)) q1 = float(host_scalar(n, 2, "max"));
      }
      if (!is_float(n.in[0].dtype)) {  // integer clip: bounds of the type when absent
        if (!n.has_input(1)) q0 = -3.0e38f;
        if (!n.has_input(2)) q1 = 3.0e38f;
      }
    }
    const GpuTensor& x = n.in[0];
    GpuTensor& y = n.out[0];
    unary(o, x.data, code(x.dtype), y.data, code(y.dtype), y.numel(), q0, q1, ctx.stream);
    launched(n);
  };
  return k;
}

GpuKernel cast_kernel() {
  GpuKernel k;
  k.run = [](GpuContext& ctx, GpuNode& n) {
    const GpuTensor& x = n.in[0];
    GpuTensor& y = n.out[0];
    convert(x.data, code(x.dtype), y.data, code(y.dtype), y.numel(), ctx.stream);
    launched(n);
  };
  return k;
}

GpuKernel where_kernel() {
  GpuKernel k;
  k.run = [](GpuContext& ctx, GpuNode& n) {
    const GpuTensor &c = n.in[0], &a = n.in[1], &b = n.in[2];
    DEEPEP_CHECK(c.dtype == DType::kBool, what_of(n), ": condition must be bool");
    DEEPEP_CHECK(a.dtype == b.dtype, what_of(n), ": X and Y dtypes differ (", dtype_name(a.dtype), ", ", dtype_name(b.dtype), ")");
    GpuTensor& y = n.out[0];
    const Indexer ix = broadcast_indexer(n, y.shape, {&c.shape, &a.shape, &b.shape});
    where(c.data, a.data, b.data, code(a.dtype), y.data, code(y.dtype), ix, y.numel(), ctx.stream);
    launched(n);
  };
  return k;
}

// ---------------------------------------------------------------- layout
GpuKernel view_kernel() {
  GpuKernel k;
  k.view = true;
  k.run = [](GpuContext&, GpuNode& n) {
    DEEPEP_CHECK(n.out[0].numel() == n.in[0].numel(), what_of(n), ": a view of ", shape_str(n.in[0].shape), " as ",
                 shape_str(n.out[0].shape), " changes the element count");
  };
  k.prepare = [](GpuContext&, GpuNode& n) -> size_t {
    DEEPEP_CHECK(n.out[0].numel() == n.in[0].numel(), what_of(n), ": a view of ", shape_str(n.in[0].shape), " as ",
                 shape_str(n.out[0].shape), " changes the element count");
    for (size_t i = 1; i < n.out.size(); ++i)
      DEEPEP_CHECK(!n.out[i].defined(), what_of(n), ": output ", i, " is not supported on the CUDA backend");
    return 0;
  };
  return k;
}

GpuKernel expand_kernel() {
  GpuKernel k;
  k.run = [](GpuContext& ctx, GpuNode& n) {
    GpuTensor& y = n.out[0];
    const Indexer ix = broadcast_indexer(n, y.shape, {&n.in[0].shape});
    strided_copy(n.in[0].data, 0, y.data, int(dtype_size(y.dtype)), ix, y.numel(), ctx.stream);
    launched(n);
  };
  return k;
}

// DEEPEP_CUDA_TRANSPOSE=generic: every Transpose through the strided copy (A/B, tests).
bool transpose_generic() {
  const char* v = std::getenv("DEEPEP_CUDA_TRANSPOSE");
  return v && std::strcmp(v, "generic") == 0;
}

GpuKernel transpose_kernel() {
  GpuKernel k;
  k.run = [](GpuContext& ctx, GpuNode& n) {
    const GpuTensor& x = n.in[0];
    GpuTensor& y = n.out[0];
    const int r = int(x.shape.size());
    std::vector<int64_t> perm = n.node.attr_ints("perm", {});
    if (perm.empty())
      for (int i = r - 1; i >= 0; --i) perm.push_back(i);
    DEEPEP_CHECK(int(perm.size()) == r && r <= kMaxDims, what_of(n), ": perm does not match rank ", r);
    // NCHW <-> NHWC and every perm that is a swap of two adjacent dim groups:
    // tiled through shared memory (coalesced both ways).
    int64_t batch = 0, rows = 0, cols = 0;
    if (y.numel() > 0 && as_batched_transpose(x.shape, perm, &batch, &rows, &cols) && !transpose_generic()) {
      transpose_batched(x.data, y.data, int(dtype_size(y.dtype)), batch, rows, cols, ctx.stream);
      launched(n);
      return;
    }
    const std::vector<int64_t> st = dense_strides(x.shape);
    Indexer ix;
    ix.rank = std::max(r, 1);
    ix.dims[0] = 1;
    for (int i = 0; i < r; ++i) {
      const int64_t p = perm[size_t(i)] < 0 ? perm[size_t(i)] + r : perm[size_t(i)];
      DEEPEP_CHECK(p >= 0 && p < r, what_of(n), ": perm entry out of range");
      ix.dims[i] = y.shape[size_t(i)];
      ix.strides[0][i] = st[size_t(p)];
    }
    strided_copy(x.data, 0, y.data, int(dtype_size(y.dtype)), ix, y.numel(), ctx.stream);
    launched(n);
  };
  return k;
}

int64_t norm_axis(const GpuNode& n, int64_t axis, int64_t rank) {
  if (axis < 0) axis += rank;
  DEEPEP_CHECK(axis >= 0 && axis < std::max<int64_t>(rank, 1), what_of(n), ": axis out of range for rank ", rank);
  return axis;
}

GpuKernel concat_kernel() {
  GpuKernel k;
  k.run = [](GpuContext& ctx, GpuNode& n) {
    GpuTensor& y = n.out[0];
    const int64_t r = int64_t(y.shape.size());
    const int64_t axis = norm_axis(n, n.node.attr_int("axis", 0), r);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= y.shape[size_t(d)];
    for (int64_t d = axis + 1; d < r; ++d) inner *= y.shape[size_t(d)];
    int64_t off = 0;
    for (const GpuTensor& x : n.in) {
      if (!x.defined()) continue;
      DEEPEP_CHECK(x.dtype == y.dtype, what_of(n), ": inputs must share a dtype");
      const int64_t len = x.shape.empty() ? 1 : x.shape[size_t(axis)];
      concat_part(x.data, y.data, int(dtype_size(y.dtype)), outer, len, y.shape[size_t(axis)], off, inner, ctx.stream);
      launched(n);
      off += len;
    }
    DEEPEP_CHECK(off == y.shape[size_t(axis)], what_of(n), ": inputs do not add up to the output along the axis");
  };
  return k;
}

GpuKernel slice_kernel() {
  GpuKernel k;
  k.run = [](GpuContext& ctx, GpuNode& n) {
    const GpuTensor& x = n.in[0];
    GpuTensor& y = n.out[0];
    const int64_t r = int64_t(x.shape.size());
    std::vector<int64_t> starts, ends, axes, steps;
    if ((n.node.opset > 0 && n.node.opset < 10) || n.in.size() == 1) {
      starts = n.node.attr_ints("starts");
      ends = n.node.attr_ints("ends");
      axes = n.node.attr_ints("axes");
    } else {
      starts = host_ints(n, 1, "starts");
      ends = host_ints(n, 2, "ends");
      if (n.has_input(3)) axes = host_ints(n, 3, "axes");
      if (n.has_input(4)) steps = host_ints(n, 4, "steps");
    }
    if (axes.empty())
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(int64_t(i));
    if (steps.empty()) steps.assign(starts.size(), 1);
    DEEPEP_CHECK(starts.size() == ends.size() && axes.size() == starts.size() && steps.size() == starts.size(),
                 what_of(n), ": starts, ends, axes and steps differ in length");
    const std::vector<int64_t> st = dense_strides(x.shape);
    std::vector<int64_t> begin(size_t(r), 0), step(size_t(r), 1);
    Shape len = x.shape;
    for (size_t i = 0; i < axes.size(); ++i) {
      const int64_t a = norm_axis(n, axes[i], r);
      DEEPEP_CHECK(steps[i] != 0, what_of(n), ": step 0");
      ops::resolve_slice_axis(starts[i], ends[i], steps[i], x.shape[size_t(a)], &begin[size_t(a)], &len[size_t(a)]);
      step[size_t(a)] = steps[i];
    }
    // The plan sized Y from the op's shape inference; a disagreement would
    // read outside X (and leave Y's tail unwritten): an error, never a copy.
    DEEPEP_CHECK(len == y.shape, what_of(n), ": the slice gives ", shape_str(len), " but the planned output is ",
                 shape_str(y.shape));
    Indexer ix;
    DEEPEP_CHECK(r <= kMaxDims, what_of(n), ": rank above ", kMaxDims);
    ix.rank = int(std::max<int64_t>(r, 1));
    ix.dims[0] = 1;
    int64_t offset = 0;
    for (int64_t d = 0; d < r; ++d) {
      ix.dims[d] = y.shape[size_t(d)];
      ix.strides[0][d] = st[size_t(d)] * step[size_t(d)];
      offset += begin[size_t(d)] * st[size_t(d)];
    }
    if (y.numel() == 0) return;
    strided_copy(x.data, offset, y.data, int(dtype_size(y.dtype)), ix, y.numel(), ctx.stream);
    launched(n);
  };
  return k;
}

GpuKernel gather_kernel() {
  GpuKernel k;
  k.run = [](GpuContext& ctx, GpuNode& n) {
    const GpuTensor &x = n.in[0], &idx = n.in[1];
    GpuTensor& y = n.out[0];
    DEEPEP_CHECK(idx.dtype == DType::kInt64 || idx.dtype == DType::kInt32, what_of(n), ": indices must be int64 or int32");
    const int64_t r = int64_t(x.shape.size());
    DEEPEP_CHECK(r >= 1, what_of(n), ": data must have rank >= 1");
    const int64_t axis = norm_axis(n, n.node.attr_int("axis", 0), r);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.shape[size_t(d)];
    for (int64_t d = axis + 1; d < r; ++d) inner *= x.shape[size_t(d)];
    gather(x.data, int(dtype_size(x.dtype)), idx.data, code(idx.dtype), y.data, outer, x.shape[size_t(axis)],
           idx.numel(), inner, ctx.error_flag + n.node.id, ctx.stream);
    launched(n);
  };
  // An embedding lookup (axis 0 of a 2-D table): rows [r0, r0 + count) come from those indices alone.
  k.row_block = [](const GpuNode& n, int64_t r0, int64_t count) -> std::optional<GpuNode> {
    const GpuTensor &x = n.in[0], &idx = n.in[1];
    if (x.shape.size() != 2 || !x.fixed || idx.host || norm_axis(n, n.node.attr_int("axis", 0), 2) != 0)
      return std::nullopt;
    const int64_t width = x.shape[1];
    if (n.out[0].numel() != idx.numel() * width || r0 < 0 || count < 0 || r0 + count > idx.numel()) return std::nullopt;
    GpuNode b = n;
    b.in[1].data = static_cast<char*>(idx.data) + size_t(r0) * dtype_size(idx.dtype);
    b.in[1].shape = {count};
    b.out[0].data = static_cast<char*>(n.out[0].data) + size_t(r0 * width) * dtype_size(n.out[0].dtype);
    b.out[0].shape = {count, width};
    return b;
  };
  return k;
}

GpuKernel range_kernel() {
  GpuKernel k;
  k.run = [](GpuContext& ctx, GpuNode& n) {
    const double start = host_scalar(n, 0, "start"), delta = host_scalar(n, 2, "delta");
    range(start, delta, n.out[0].data, code(n.out[0].dtype), n.out[0].numel(), ctx.stream);
    launched(n);
  };
  return k;
}

GpuKernel constant_of_shape_kernel() {
  GpuKernel k;
  k.run = [](GpuContext& ctx, GpuNode& n) {
    GpuTensor& y = n.out[0];
    uint64_t pattern = 0;
    if (const Attribute* a = n.node.attr("value"); a && a->t.defined()) {
      DEEPEP_CHECK(a->t.dtype() == y.dtype && a->t.numel() == 1, what_of(n), ": value attribute does not match the output");
      std::memcpy(&pattern, a->t.raw(), dtype_size(y.dtype));
    }
    fill_pattern(y.data, int(dtype_size(y.dtype)), pattern, y.numel(), ctx.stream);
    launched(n);
  };
  return k;
}

// ---------------------------------------------------------------- rows
GpuKernel softmax_kernel(bool log) {
  GpuKernel k;
  k.run = [log](GpuContext& ctx, GpuNode& n) {
    const GpuTensor& x = n.in[0];
    const int64_t r = int64_t(x.shape.size());
    const bool legacy = n.node.opset > 0 && n.node.opset < 13;
    const int64_t axis = norm_axis(n, n.node.attr_int("axis", legacy ? 1 : -1), r);
    int64_t rows = 1, cols = 1;
    for (int64_t d = 0; d < r; ++d) (d < axis ? rows : cols) *= x.shape[size_t(d)];
    // opset >= 13 normalizes over one axis; the trailing-axis case is a row.
    if (!legacy && axis != r - 1 && r > 0)
      DEEPEP_CHECK(false, what_of(n), ": Softmax over a non-last axis is not supported on the CUDA backend yet");
    DEEPEP_CHECK(is_float(x.dtype), what_of(n), ": input must be a float type");
    softmax(x.data, code(x.dtype), n.out[0].data, rows, cols, log, ctx.stream);
    launched(n);
  };
  return k;
}

// gamma/beta must hold exactly the normalized dims' values (after leading 1s).
void check_param(const GpuNode& n, size_t i, int64_t cols, const char* what) {
  if (!n.has_input(i)) return;
  DEEPEP_CHECK(n.in[i].numel() == cols, what_of(n), ": ", what, " of shape ", shape_str(n.in[i].shape),
               " must hold the ", cols, " values of the normalized dims on the CUDA backend");
}

GpuKernel layer_norm_kernel(bool rms) {
  GpuKernel k;
  k.run = [rms](GpuContext& ctx, GpuNode& n) {
    const GpuTensor& x = n.in[0];
    const int64_t r = int64_t(x.shape.size());
    const int64_t axis = norm_axis(n, n.node.attr_int("axis", -1), r);
    NormArgs a;
    a.rows = 1;
    a.cols = 1;
    for (int64_t d = 0; d < r; ++d) (d < axis ? a.rows : a.cols) *= x.shape[size_t(d)];
    check_param(n, 1, a.cols, "Scale");
    if (!rms) check_param(n, 2, a.cols, "B");
    for (size_t i = 1; i < n.out.size(); ++i)
      DEEPEP_CHECK(!n.out[i].defined(), what_of(n), ": output ", i, " (Mean/InvStdDev) is not supported on the CUDA backend");
    a.x = x.data, a.tx = code(x.dtype);
    a.gamma = n.in[1].data;
    a.beta = !rms && n.has_input(2) ? n.in[2].data : nullptr;
    a.tparam = code(n.in[1].dtype);
    a.params_fixed = n.in[1].fixed && (!a.beta || n.in[2].fixed);
    if (a.beta) DEEPEP_CHECK(n.in[2].dtype == n.in[1].dtype, what_of(n), ": Scale and B dtypes differ");
    a.y = n.out[0].data, a.ty = code(n.out[0].dtype);
    a.eps = n.node.attr_float("epsilon", 1e-5f);
    a.rms = rms;
    layer_norm(a, ctx.stream);
    launched(n);
  };
  k.row_inputs = [](const GpuNode& n) -> std::optional<std::vector<size_t>> {
    const int64_t r = int64_t(n.in[0].shape.size());
    if (r == 0 || n.in[0].host || norm_axis(n, n.node.attr_int("axis", -1), r) != r - 1) return std::nullopt;
    for (size_t i = 1; i < n.out.size(); ++i)
      if (n.out[i].defined()) return std::nullopt;
    return std::vector<size_t>{0};
  };
  return k;
}

GpuKernel skip_layer_norm_kernel() {
  GpuKernel k;
  k.run = [](GpuContext& ctx, GpuNode& n) {
    const GpuTensor &x0 = n.in[0], &x1 = n.in[1];
    GpuTensor& y = n.out[0];
    const int64_t r = int64_t(y.shape.size());
    const int64_t axis = norm_axis(n, n.node.attr_int("axis", -1), r);
    NormArgs a;
    a.rows = 1;
    a.cols = 1;
    for (int64_t d = 0; d < r; ++d) (d < axis ? a.rows : a.cols) *= y.shape[size_t(d)];
    // One operand has the sum's shape; the other must be its trailing dims
    // (leading 1s allowed): it repeats every skip_rows rows.
    const GpuTensor* full = x0.shape == y.shape ? &x0 : (x1.shape == y.shape ? &x1 : nullptr);
    DEEPEP_CHECK(full, what_of(n), ": neither input has the output's shape ", shape_str(y.shape),
                 " (general broadcasting is not supported on the CUDA backend)");
    const GpuTensor* other = full == &x0 ? &x1 : &x0;
    Shape os = other->shape;
    while (!os.empty() && os.front() == 1 && os.size() > 0) os.erase(os.begin());
    const Shape tail(y.shape.end() - int64_t(os.size()), y.shape.end());
    DEEPEP_CHECK(os.size() <= y.shape.size() && os == tail && other->numel() % a.cols == 0, what_of(n), ": skip of shape ",
                 shape_str(other->shape), " is not a trailing block of ", shape_str(y.shape),
                 " (general broadcasting is not supported on the CUDA backend)");
    a.x = full->data, a.tx = code(full->dtype);
    a.skip = other->data, a.tskip = code(other->dtype);
    a.skip_rows = std::max<int64_t>(1, other->numel() / a.cols);
    check_param(n, 2, a.cols, "gamma");
    check_param(n, 3, a.cols, "beta");
    a.gamma = n.in[2].data;
    a.tparam = code(n.in[2].dtype);
    a.beta = n.has_input(3) ? n.in[3].data : nullptr;
    a.params_fixed = n.in[2].fixed && (!a.beta || n.in[3].fixed);
    if (a.beta) DEEPEP_CHECK(n.in[3].dtype == n.in[2].dtype, what_of(n), ": gamma and beta dtypes differ");
    a.y = y.data, a.ty = code(y.dtype);
    if (n.out.size() > 1 && n.out[1].defined()) {
      DEEPEP_CHECK(n.out[1].dtype == y.dtype, what_of(n), ": the sum output's dtype differs from Y's");
      a.sum_out = n.out[1].data;
    }
    a.eps = n.node.attr_float("epsilon", 1e-5f);
    layer_norm(a, ctx.stream);
    launched(n);
  };
  // Rows [r0, r0 + count) over the last axis: the input of the sum's shape is sliced, the other too when it
  // has that shape; a block of rows repeated along the sum (position embeddings over a batch) is read whole
  // when the window holds whole repeats.
  k.row_block = [](const GpuNode& n, int64_t r0, int64_t count) -> std::optional<GpuNode> {
    const GpuTensor& y = n.out[0];
    const int64_t r = int64_t(y.shape.size());
    if (r == 0 || n.in.size() < 2 || norm_axis(n, n.node.attr_int("axis", -1), r) != r - 1) return std::nullopt;
    const int64_t cols = y.shape.back();
    const int full = n.in[0].shape == y.shape ? 0 : n.in[1].shape == y.shape ? 1 : -1;
    if (cols == 0 || full < 0 || n.in[size_t(full)].host || r0 < 0 || count < 0 || r0 + count > y.numel() / cols)
      return std::nullopt;
    const GpuTensor& other = n.in[size_t(1 - full)];
    const int64_t period = other.numel() / cols;
    const bool sliced = other.shape == y.shape;
    if (!sliced && (!other.fixed || period <= 0 || r0 % period || count % period)) return std::nullopt;
    const Shape shape = sliced ? Shape{count, cols} : Shape{count / period, period, cols};
    GpuNode b = n;
    auto slice = [&](GpuTensor& t) {
      t.data = static_cast<char*>(t.data) + size_t(r0 * cols) * dtype_size(t.dtype);
      t.shape = shape;
    };
    slice(b.in[size_t(full)]);
    if (sliced) slice(b.in[size_t(1 - full)]);
    for (GpuTensor& o : b.out)
      if (o.defined()) slice(o);
    return b;
  };
  return k;
}

// True when the boolean mask (rows Sq, columns Sk; Sk >= Sq) keeps exactly the keys k <= q + (Sk - Sq) of
// each query q (`keep`; else it drops exactly the others): causal attention aligned to the last key.
bool is_causal(const Tensor& mask, int64_t Sq, int64_t Sk, bool keep) {
  if (mask.dtype() != DType::kBool || Sk < Sq || mask.numel() != Sq * Sk) return false;
  const uint8_t* m = static_cast<const uint8_t*>(mask.raw());
  for (int64_t q = 0; q < Sq; ++q)
    for (int64_t k = 0; k < Sk; ++k)
      if ((m[q * Sk + k] != 0) != ((k <= q + Sk - Sq) == keep)) return false;
  return true;
}

// Narrows `a` (3-D inputs) to rows [window_begin, + window_rows) of the output, over batch x query: whole
// sequences, or rows inside one sequence of causal attention with the keys up to the window's last row
// (bottom-right aligned: row q sees keys up to q + Sk - Sq, the window's offset in its sequence).
void apply_row_window(const GpuNode& n, AttnArgs& a) {
  const int64_t S = a.Sq, r0 = n.window_begin, c = n.window_rows;
  DEEPEP_CHECK(n.in[0].shape.size() == 3 && S > 0 && r0 >= 0 && c >= 0 && r0 + c <= a.B * S, what_of(n),
               ": row window [", r0, ", ", r0 + c, ") does not fit the ", a.B, " x ", S, " query rows");
  const size_t es = dtype_size(n.in[0].dtype), ey = dtype_size(n.out[0].dtype);
  const size_t em = n.has_input(3) ? dtype_size(n.in[3].dtype) : 0;
  auto move = [](const void* p, int64_t elems, size_t size) {
    return p ? static_cast<const char*>(p) + elems * int64_t(size) : p;
  };
  const int64_t b = r0 / S, s0 = r0 % S;
  if (s0 == 0 && c % S == 0) {  // whole sequences
    a.B = c / S;
  } else {
    DEEPEP_CHECK(a.causal && a.Sk == S && (r0 + c - 1) / S == b, what_of(n), ": row window [", r0, ", ", r0 + c,
                 ") splits a sequence, which only causal self-attention allows");
    a.B = 1, a.Sq = c, a.Sk = s0 + c;
  }
  a.q = move(a.q, b * a.q_sb + s0 * a.q_ld, es);
  a.k = move(a.k, b * a.k_sb, es);
  a.v = move(a.v, b * a.v_sb, es);
  a.mask = move(a.mask, b * a.m_sb + s0 * a.m_sq, em);
  a.y = static_cast<char*>(a.y) + (b * a.y_sb + s0 * a.y_ld) * int64_t(ey);
}

// The kernel arguments of a deepep.Attention node (checked).
AttnArgs attention_args(GpuNode& n) {
  const GpuTensor& Q = n.in[0];
  const bool packed = !n.has_input(1) && !n.has_input(2);
  DEEPEP_CHECK(packed || (n.has_input(1) && n.has_input(2)), what_of(n), ": K and V must be given together");
  AttnArgs a;
  a.t = code(Q.dtype);
  DEEPEP_CHECK(is_float(Q.dtype), what_of(n), ": Q must be a float type");
  if (Q.shape.size() == 3) {
    a.H = n.node.attr_int("num_heads", 0);
    DEEPEP_CHECK(a.H > 0, what_of(n), ": 3-D inputs need a positive num_heads");
    a.B = Q.shape[0], a.Sq = Q.shape[1];
    int64_t nq, nk, nv;
    if (packed) {
      const auto sz = n.node.attr_ints("qkv_hidden_sizes", {});
      DEEPEP_CHECK(sz.size() == 3 && sz[0] + sz[1] + sz[2] == Q.shape[2], what_of(n), ": qkv_hidden_sizes do not match Q");
      nq = sz[0], nk = sz[1], nv = sz[2];
      a.Sk = a.Sq;
      a.q = Q.data;
      a.k = static_cast<const char*>(Q.data) + nq * dtype_size(Q.dtype);
      a.v = static_cast<const char*>(Q.data) + (nq + nk) * dtype_size(Q.dtype);
      a.q_ld = a.k_ld = a.v_ld = Q.shape[2];
      a.q_sb = a.k_sb = a.v_sb = a.Sq * Q.shape[2];
    } else {
      const GpuTensor &K = n.in[1], &V = n.in[2];
      DEEPEP_CHECK(K.shape.size() == 3 && V.shape.size() == 3 && K.shape[0] == a.B && V.shape[0] == a.B &&
                       K.shape[1] == V.shape[1],
                   what_of(n), ": Q, K and V shapes disagree");
      DEEPEP_CHECK(K.dtype == Q.dtype && V.dtype == Q.dtype, what_of(n), ": Q, K and V dtypes differ");
      nq = Q.shape[2], nk = K.shape[2], nv = V.shape[2];
      a.Sk = K.shape[1];
      a.q = Q.data, a.k = K.data, a.v = V.data;
      a.q_ld = nq, a.k_ld = nk, a.v_ld = nv;
      a.q_sb = a.Sq * nq, a.k_sb = a.Sk * nk, a.v_sb = a.Sk * nv;
    }
    DEEPEP_CHECK(nq % a.H == 0 && nk % a.H == 0 && nv % a.H == 0 && nq == nk, what_of(n),
                 ": hidden sizes do not split into ", a.H, " heads");
    a.D = nq / a.H, a.Dv = nv / a.H;
    a.q_sh = a.k_sh = a.D;
    a.v_sh = a.Dv;
    a.y_sb = a.Sq * nv, a.y_sh = a.Dv, a.y_ld = nv;
  } else {
    DEEPEP_CHECK(Q.shape.size() == 4 && !packed, what_of(n), ": Q must be 3-D or 4-D");
    const GpuTensor &K = n.in[1], &V = n.in[2];
    DEEPEP_CHECK(K.dtype == Q.dtype && V.dtype == Q.dtype, what_of(n), ": Q, K and V dtypes differ");
    a.k_t = n.node.attr_int("k_transposed", 0) != 0;
    a.B = Q.shape[0], a.H = Q.shape[1], a.Sq = Q.shape[2], a.D = Q.shape[3];
    a.Sk = V.shape[2], a.Dv = V.shape[3];
    const Shape kw = a.k_t ? Shape{a.B, a.H, a.D, a.Sk} : Shape{a.B, a.H, a.Sk, a.D};
    DEEPEP_CHECK(K.shape == kw && V.shape[0] == a.B && V.shape[1] == a.H, what_of(n), ": Q, K and V do not match");
    a.q = Q.data, a.k = K.data, a.v = V.data;
    a.q_sb = a.H * a.Sq * a.D, a.q_sh = a.Sq * a.D, a.q_ld = a.D;
    a.k_sb = a.H * a.Sk * a.D, a.k_sh = a.Sk * a.D, a.k_ld = a.k_t ? a.Sk : a.D;
    a.v_sb = a.H * a.Sk * a.Dv, a.v_sh = a.Sk * a.Dv, a.v_ld = a.Dv;
    a.y_sb = a.H * a.Sq * a.Dv, a.y_sh = a.Sq * a.Dv, a.y_ld = a.Dv;
  }
  DEEPEP_CHECK(n.node.has_attr("scale"), what_of(n), ": the scale attribute is required");
  a.scale = n.node.attr_float("scale", 1.f);
  const std::string mode = n.node.attr_string("mask_mode", "add");
  a.mask_mode = mode == "add" ? 0 : mode == "keep" ? 1 : mode == "drop" ? 2 : -1;
  DEEPEP_CHECK(a.mask_mode >= 0, what_of(n), ": mask_mode must be add, keep or drop");
  a.mask_fill = n.node.attr_float("mask_fill", -std::numeric_limits<float>::infinity());
  if (n.has_input(3)) {
    const GpuTensor& m = n.in[3];
    DEEPEP_CHECK(a.mask_mode == 0 ? is_float(m.dtype) : m.dtype == DType::kBool, what_of(n), ": mask dtype ",
                 dtype_name(m.dtype), " does not suit mask_mode '", mode, "'");
    DEEPEP_CHECK(m.shape.size() <= 4, what_of(n), ": mask rank above 4");
    Shape m4(4, 1);
    for (size_t i = 0; i < m.shape.size(); ++i) m4[4 - m.shape.size() + i] = m.shape[i];
    const Shape target{a.B, a.H, a.Sq, a.Sk};
    const std::vector<int64_t> st = dense_strides(m4);
    int64_t ms[4];
    for (int i = 0; i < 4; ++i) {
      DEEPEP_CHECK(m4[size_t(i)] == 1 || m4[size_t(i)] == target[size_t(i)], what_of(n), ": mask ", shape_str(m.shape),
                   " does not broadcast to ", shape_str(target));
      ms[i] = m4[size_t(i)] == 1 ? 0 : st[size_t(i)];
    }
    a.mask = m.data, a.tmask = code(m.dtype);
    a.m_sb = ms[0], a.m_sh = ms[1], a.m_sq = ms[2], a.m_sk = ms[3];
    if (m.host && a.mask_mode != 0 && a.m_sb == 0 && a.m_sh == 0 && a.m_sk == 1 && a.m_sq == a.Sk) {
      // A constant causal mask (GPT-2's tril buffer): the tensor-core kernel then skips the key tiles
      // past the diagonal and reads no mask. Checked once per signature (the node state).
      if (!n.state) n.state = std::make_shared<bool>(is_causal(*m.host, a.Sq, a.Sk, a.mask_mode == 1));
      a.causal = *static_cast<const bool*>(n.state.get());
    }
  }
  a.y = n.out[0].data, a.ty = code(n.out[0].dtype);
  if (n.window_rows >= 0) apply_row_window(n, a);
  return a;
}

GpuKernel attention_kernel() {
  GpuKernel k;
  // The workspace holds the key-split partial results (attention_workspace_bytes).
  k.prepare = [](GpuContext&, GpuNode& n) { return attention_workspace_bytes(attention_args(n)); };
  k.row_block = [](const GpuNode& n, int64_t r0, int64_t count) -> std::optional<GpuNode> {
    if (n.in[0].shape.size() != 3 || n.out[0].shape.size() != 3) return std::nullopt;
    GpuNode b = n;
    b.window_begin = r0, b.window_rows = count;
    try {
      attention_args(b);
    } catch (const Error&) {
      return std::nullopt;
    }
    return b;
  };
  k.reads_earlier_rows = true;
  k.run = [](GpuContext& ctx, GpuNode& n) {
    AttnArgs a = attention_args(n);
    a.work = ctx.workspace, a.work_bytes = ctx.workspace_bytes;
    GpuTensor& y = n.out[0];
    if (y.numel() == 0) return;
    if (a.Sk == 0) {
      fill_pattern(y.data, int(dtype_size(y.dtype)), 0, y.numel(), ctx.stream);
      launched(n);
      return;
    }
    DEEPEP_CHECK(attention_smem_bytes(a) <= 200 * 1024, what_of(n), ": key length ", a.Sk,
                 " is above what the CUDA attention kernel holds in shared memory");
    attention(a, ctx.stream);
    launched(n);
  };
  return k;
}

// ---------------------------------------------------------------- GEMM
struct MatMulState {
  std::vector<std::shared_ptr<GemmPlan>> plans;  // one, or one per broadcast batch
  std::vector<int64_t> a_off, b_off, c_off;      // element offsets per plan call
  bool epilogue_kernel = false;                  // bias/activation/residual by our kernel
  bool zero_k = false;
  // Y^T = B^T A^T into workspace scratch, then a transpose into Y: for float16 Y whose row length N is
  // not a multiple of 8 (GPT-2's 50257-word logits), where cuBLASLt has only alignment-1 kernels for Y
  // itself (gpt2 b8 s512 lm-head: 3.07 ms; the product and the transpose take a fraction of that).
  size_t scratch = 0;  // bytes at the workspace's start; cuBLASLt's workspace follows
  int64_t rows_t = 0, cols_t = 0;  // Y^T's shape: N x M
  EpilogueArgs epi;
};

namespace {
constexpr size_t kScratchAlign = 256;
// Row-major Y[M,N] = A B computed as Y^T[N,M] = B^T A^T (the roles of A and B swap).
GemmShape transposed_product(const GemmShape& g) {
  GemmShape t = g;
  t.M = g.N, t.N = g.M;
  t.ta = !g.tb, t.tb = !g.ta;
  t.lda = g.ldb, t.ldb = g.lda;
  t.ldc = g.M;
  return t;
}
}  // namespace

struct Mm {
  bool ta = false, tb = false;
  float alpha = 1.f;
  const GpuTensor* A = nullptr;
  const GpuTensor* B = nullptr;
  const GpuTensor* bias = nullptr;  // N values
  const GpuTensor* res = nullptr;
  ops::Epilogue ep;
  float beta_c = 0.f;  // Gemm's C when not a bias vector: residual scaled by beta (1 only)
};

size_t prepare_matmul(GpuContext& ctx, GpuNode& n, const Mm& m) {
  const GpuTensor &A = *m.A, &B = *m.B;
  GpuTensor& Y = n.out[0];
  DEEPEP_CHECK(A.dtype == B.dtype && A.dtype == Y.dtype, what_of(n), ": A, B and Y must share a dtype on the CUDA backend (",
               dtype_name(A.dtype), ", ", dtype_name(B.dtype), ", ", dtype_name(Y.dtype), ")");
  DEEPEP_CHECK(A.dtype == DType::kFloat32 || A.dtype == DType::kFloat16, what_of(n), ": GEMM takes float32 or float16, got ",
               dtype_name(A.dtype));
  auto st = std::make_shared<MatMulState>();
  Shape as = A.shape, bs = B.shape;
  DEEPEP_CHECK(!as.empty() && !bs.empty(), what_of(n), ": scalar operands");
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t M = m.ta ? as[as.size() - 1] : as[as.size() - 2];
  const int64_t K = m.ta ? as[as.size() - 2] : as[as.size() - 1];
  const int64_t kb = m.tb ? bs[bs.size() - 1] : bs[bs.size() - 2];
  const int64_t N = m.tb ? bs[bs.size() - 2] : bs[bs.size() - 1];
  DEEPEP_CHECK(K == kb, what_of(n), ": A ", shape_str(A.shape), " and B ", shape_str(B.shape), " are not aligned");
  const Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
  const int64_t yb = Y.numel() / std::max<int64_t>(1, M * N);
  GemmShape g;
  g.dtype = A.dtype;
  g.ta = m.ta, g.tb = m.tb;
  g.K = K, g.N = N;
  g.lda = m.ta ? M : K;
  g.ldb = m.tb ? K : N;
  g.ldc = N;
  g.alpha = m.alpha;
  const bool b_shared = shape_numel(bbatch) == 1;
  if (b_shared && !m.ta) {
    g.M = M * shape_numel(abatch);  // fold A's batch into rows
  } else {
    g.M = M;
    if (abatch.size() == bbatch.size() && abatch == bbatch) {
      g.batch = yb;
      g.stride_a = M * K, g.stride_b = K * N, g.stride_c = M * N;
    } else if (shape_numel(abatch) == 1) {
      g.batch = yb;
      g.stride_a = 0, g.stride_b = K * N, g.stride_c = M * N;
    } else if (b_shared) {
      g.batch = yb;
      g.stride_a = M * K, g.stride_b = 0, g.stride_c = M * N;
    } else {
      // General broadcast: one GEMM per output batch.
      Shape ybatch(Y.shape.begin(), Y.shape.end() - (A.shape.size() == 1 || B.shape.size() == 1 ? 1 : 2));
      const Indexer ix = broadcast_indexer(n, ybatch, {&abatch, &bbatch});
      for (int64_t i = 0; i < yb; ++i) {
        int64_t rem = i, ao = 0, bo = 0;
        for (int d = ix.rank - 1; d >= 0; --d) {
          const int64_t c = rem % ix.dims[d];
          rem /= ix.dims[d];
          ao += c * ix.strides[0][d];
          bo += c * ix.strides[1][d];
        }
        st->a_off.push_back(ao * M * K);
        st->b_off.push_back(bo * K * N);
        st->c_off.push_back(i * M * N);
      }
    }
  }
  // Epilogue: cuBLASLt for bias (+ReLU / GELU) when nothing else follows; otherwise our kernel. cuBLASLt's
  // GELU is the tanh form: exact for Gelu<approximate=tanh>; taken for erf GELU in float16 only, where the
  // forms' gap (at most 4.8e-4, at x = 2.7) is under float16's rounding step there (2e-3): one pass over
  // [M, N] saved.
  GemmShape::Act lt_act = GemmShape::Act::kNone;
  if (m.ep.act == ops::Act::kRelu) lt_act = GemmShape::Act::kRelu;
  if (m.ep.act == ops::Act::kGeluTanh || (m.ep.act == ops::Act::kGelu && A.dtype == DType::kFloat16))
    lt_act = GemmShape::Act::kGelu;
  const bool simple_act = m.ep.act == ops::Act::kNone || lt_act != GemmShape::Act::kNone;
  const bool lt_bias = m.bias && m.bias->dtype == A.dtype && m.bias->numel() == N && !m.res && simple_act &&
                       st->a_off.empty() && g.batch == 1;
  const bool lt_epilogue_act = lt_act != GemmShape::Act::kNone && !m.res && (lt_bias || !m.bias) && st->a_off.empty();
  if (lt_bias) g.bias = true;
  if (lt_epilogue_act) g.act = lt_act;
  const bool need_kernel = (m.bias && !lt_bias) || (m.ep.act != ops::Act::kNone && !lt_epilogue_act) || m.res;
  if (need_kernel) {
    EpilogueArgs& e = st->epi;
    e.y = Y.data, e.ty = code(Y.dtype), e.n = Y.numel();
    if (m.bias) {
      DEEPEP_CHECK(m.bias->numel() == N, what_of(n), ": bias must hold N = ", N, " values, got ", shape_str(m.bias->shape));
      e.bias = m.bias->data, e.tbias = code(m.bias->dtype), e.bias_div = 1, e.bias_mod = N;
    }
    if (m.res) {
      ops::check_residual(n.node, m.res->shape, Y.shape);
      e.res = m.res->data, e.tres = code(m.res->dtype);
      e.res_ix = broadcast_indexer(n, Y.shape, {&m.res->shape});
      e.res_first = m.ep.residual_first;
    }
    e.act = int(m.ep.act), e.p0 = m.ep.p0, e.p1 = m.ep.p1;
    e.cols = N;  // rows of N columns; bias by column
    e.res_dense = m.res && m.res->shape == Y.shape;
    st->epilogue_kernel = true;
  }
  size_t ws = 0;
  const bool transposed_out = A.dtype == DType::kFloat16 && N % 8 != 0 && g.M % 8 == 0 && g.batch == 1 &&
                              st->a_off.empty() && !need_kernel && !g.bias && g.act == GemmShape::Act::kNone &&
                              g.lda % 8 == 0 && g.ldb % 8 == 0 && Y.numel() >= (int64_t(1) << 20);
  if (Y.numel() == 0) {
  } else if (K == 0) {
    st->zero_k = true;
  } else if (transposed_out) {
    // Timed on Y's bytes (the scratch does not exist yet): the same size, M being a multiple of 8.
    st->plans.push_back(gemm_prepare(ctx, transposed_product(g), B.data, A.data, Y.data, nullptr, what_of(n)));
    st->scratch = (size_t(Y.numel()) * 2 + kScratchAlign - 1) / kScratchAlign * kScratchAlign;
    st->rows_t = N, st->cols_t = g.M;
    ws = st->scratch + gemm_workspace(*st->plans[0]);
  } else if (st->a_off.empty()) {
    st->plans.push_back(gemm_prepare(ctx, g, A.data, B.data, Y.data, m.bias ? m.bias->data : nullptr, what_of(n)));
    ws = gemm_workspace(*st->plans[0]);
  } else {
    auto p = gemm_prepare(ctx, g, A.data, B.data, Y.data, nullptr, what_of(n));
    st->plans.push_back(p);
    ws = gemm_workspace(*p);
  }
  n.state = st;
  return ws;
}

void run_matmul(GpuContext& ctx, GpuNode& n, const Mm& m) {
  auto* st = static_cast<MatMulState*>(n.state.get());
  GpuTensor& Y = n.out[0];
  if (Y.numel() == 0) return;
  const size_t es = dtype_size(Y.dtype);
  if (st->zero_k) {
    fill_pattern(Y.data, int(es), 0, Y.numel(), ctx.stream);
    launched(n);
  } else if (st->scratch) {
    GpuContext after = ctx;  // cuBLASLt's workspace follows the scratch
    after.workspace = static_cast<char*>(ctx.workspace) + st->scratch;
    after.workspace_bytes = ctx.workspace_bytes - st->scratch;
    gemm_run(after, *st->plans[0], m.B->data, m.A->data, ctx.workspace, nullptr, what_of(n));
    transpose_batched(ctx.workspace, Y.data, 2, 1, st->rows_t, st->cols_t, ctx.stream);
    launched(n);
  } else if (st->a_off.empty()) {
    gemm_run(ctx, *st->plans[0], m.A->data, m.B->data, Y.data, m.bias ? m.bias->data : nullptr, what_of(n));
  } else {
    for (size_t i = 0; i < st->a_off.size(); ++i)
      gemm_run(ctx, *st->plans[0], static_cast<const char*>(m.A->data) + st->a_off[i] * es,
               static_cast<const char*>(m.B->data) + st->b_off[i] * es, static_cast<char*>(Y.data) + st->c_off[i] * es,
               nullptr, what_of(n));
  }
  if (st->epilogue_kernel) {
    EpilogueArgs e = st->epi;
    e.y = Y.data;
    epilogue(e, ctx.stream);
    launched(n);
  }
}

Mm matmul_args(const GpuNode& n) {
  Mm m;
  m.A = &n.in[0];
  m.B = &n.in[1];
  return m;
}

Mm gemm_args(const GpuNode& n) {
  Mm m;
  m.A = &n.in[0];
  m.B = &n.in[1];
  m.ta = n.node.attr_int("transA", 0) != 0;
  m.tb = n.node.attr_int("transB", 0) != 0;
  m.alpha = n.node.attr_float("alpha", 1.f);
  DEEPEP_CHECK(n.in[0].shape.size() == 2 && n.in[1].shape.size() == 2, what_of(n), ": Gemm takes 2-D A and B");
  if (n.has_input(2)) {
    const float beta = n.node.attr_float("beta", 1.f);
    DEEPEP_CHECK(beta == 1.f, what_of(n), ": Gemm with beta != 1 is not supported on the CUDA backend");
    const GpuTensor& c = n.in[2];
    const int64_t N = n.out[0].shape.back();
    const bool row_vec = c.numel() == N && (c.shape.size() == 1 || (c.shape.size() == 2 && c.shape[0] == 1));
    if (row_vec) m.bias = &n.in[2];
    else m.res = &n.in[2];
  }
  return m;
}

Mm fused_matmul_args(const GpuNode& n) {
  Mm m;
  m.A = &n.in[0];
  m.B = &n.in[1];
  m.tb = n.node.attr_int("trans_b", 0) != 0;
  m.alpha = n.node.attr_float("alpha", 1.f);
  DEEPEP_CHECK(n.in[1].shape.size() == 2, what_of(n), ": B must be 2-D");
  if (n.has_input(2)) m.bias = &n.in[2];
  if (n.has_input(3)) m.res = &n.in[3];
  m.ep = ops::read_epilogue(n.node);
  return m;
}

// Y's rows come from A's rows alone when B is one shared 2-D matrix and A is not transposed (a residual
// of Y's shape is sliced with them).
std::optional<std::vector<size_t>> gemm_row_inputs(const GpuNode& n, const Mm& m) {
  if (m.ta || m.B->shape.size() != 2 || m.A->shape.size() < 2 || n.out.size() != 1 || m.A->host) return std::nullopt;
  if (m.bias && m.bias->numel() != n.out[0].shape.back()) return std::nullopt;
  std::vector<size_t> rows{0};
  if (m.res) {
    if (m.res->shape != n.out[0].shape || m.res->host) return std::nullopt;
    rows.push_back(size_t(m.res - n.in.data()));
  }
  return rows;
}

template <Mm (*Args)(const GpuNode&)>
GpuKernel gemm_kernel() {
  GpuKernel k;
  k.prepare = [](GpuContext& ctx, GpuNode& n) { return prepare_matmul(ctx, n, Args(n)); };
  k.run = [](GpuContext& ctx, GpuNode& n) { run_matmul(ctx, n, Args(n)); };
  k.row_inputs = [](const GpuNode& n) { return gemm_row_inputs(n, Args(n)); };
  return k;
}

// ---------------------------------------------------------------- pooling
struct PoolState {
  PoolArgs a;
};

void pool_geometry(const GpuNode& n, PoolArgs& a, bool global) {
  const GpuTensor& x = n.in[0];
  const GpuTensor& y = n.out[0];
  DEEPEP_CHECK(x.shape.size() == 3 || x.shape.size() == 4, what_of(n), ": the CUDA backend pools 1-D and 2-D inputs (N, C, ...), got ",
               shape_str(x.shape));
  const bool one_d = x.shape.size() == 3;
  a.nhwc = !global && n.node.attr_int("channels_last", 0) != 0;
  DEEPEP_CHECK(!a.nhwc || !one_d, what_of(n), ": channels_last pools 2-D inputs [N, H, W, C], got ", shape_str(x.shape));
  if (a.nhwc) {
    a.N = x.shape[0], a.H = x.shape[1], a.W = x.shape[2], a.C = x.shape[3];
    a.OH = y.shape[1], a.OW = y.shape[2];
  } else {
    a.N = x.shape[0], a.C = x.shape[1];
    a.H = one_d ? 1 : x.shape[2];
    a.W = x.shape.back();
    a.OH = one_d ? 1 : y.shape[2];
    a.OW = y.shape.back();
  }
  if (global) {
    a.kh = int(a.H), a.kw = int(a.W);
    return;
  }
  const auto ks = n.node.attr_ints("kernel_shape");
  DEEPEP_CHECK(ks.size() == x.shape.size() - 2, what_of(n), ": kernel_shape does not match the input rank");
  auto st = n.node.attr_ints("strides", std::vector<int64_t>(ks.size(), 1));
  auto dl = n.node.attr_ints("dilations", std::vector<int64_t>(ks.size(), 1));
  auto pads = n.node.attr_ints("pads", std::vector<int64_t>(ks.size() * 2, 0));
  const std::string ap = n.node.attr_string("auto_pad", "NOTSET");
  const std::vector<int64_t> in{one_d ? 1 : a.H, a.W}, out{a.OH, a.OW};
  if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
    for (size_t i = 0; i < ks.size(); ++i) {
      const size_t d = one_d ? 1 : i;
      const int64_t total = std::max<int64_t>(0, (out[d] - 1) * st[i] + (ks[i] - 1) * dl[i] + 1 - in[d]);
      pads[i] = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
    }
  } else if (ap == "VALID") {
    std::fill(pads.begin(), pads.end(), 0);
  }
  if (one_d) {
    a.kw = int(ks[0]), a.sw = int(st[0]), a.dw = int(dl[0]), a.pw = int(pads[0]);
  } else {
    a.kh = int(ks[0]), a.kw = int(ks[1]), a.sh = int(st[0]), a.sw = int(st[1]);
    a.dh = int(dl[0]), a.dw = int(dl[1]), a.ph = int(pads[0]), a.pw = int(pads[1]);
  }
  a.count_include_pad = n.node.attr_int("count_include_pad", 0) != 0;
}

GpuKernel pool_kernel(bool max, bool global) {
  GpuKernel k;
  k.run = [max, global](GpuContext& ctx, GpuNode& n) {
    for (size_t i = 1; i < n.out.size(); ++i)
      DEEPEP_CHECK(!n.out[i].defined(), what_of(n), ": the Indices output is not supported on the CUDA backend");
    DEEPEP_CHECK(is_float(n.in[0].dtype), what_of(n), ": input must be a float type");
    if (global && !max) {
      const GpuTensor& x = n.in[0];
      DEEPEP_CHECK(x.shape.size() >= 2, what_of(n), ": input must be (N, C, ...)");
      const int64_t rows = x.shape[0] * x.shape[1];
      row_mean(x.data, n.out[0].data, code(x.dtype), rows, rows ? x.numel() / rows : 0, ctx.stream);
      launched(n);
      return;
    }
    PoolArgs a;
    pool_geometry(n, a, global);
    a.x = n.in[0].data, a.y = n.out[0].data, a.t = code(n.in[0].dtype), a.max = max;
    pool2d(a, ctx.stream);
    launched(n);
  };
  return k;
}

// ---------------------------------------------------------------- table
std::map<std::string, GpuKernel> build_table() {
  std::map<std::string, GpuKernel> t;
  for (const char* v : {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}) t[v] = view_kernel();
  const std::pair<const char*, BinOp> bins[] = {
      {"Add", BinOp::kAdd},         {"Sub", BinOp::kSub},         {"Mul", BinOp::kMul},
      {"Div", BinOp::kDiv},         {"Pow", BinOp::kPow},         {"Equal", BinOp::kEqual},
      {"Less", BinOp::kLess},       {"LessOrEqual", BinOp::kLessEq}, {"Greater", BinOp::kGreater},
      {"GreaterOrEqual", BinOp::kGreaterEq}, {"And", BinOp::kAnd}, {"Or", BinOp::kOr},
      {"Xor", BinOp::kXor},         {"PRelu", BinOp::kPRelu},     {"BitwiseAnd", BinOp::kBitAnd},
      {"BitwiseOr", BinOp::kBitOr}};
  for (const auto& [name, op] : bins) t[name] = binary_kernel(op);
  t["Max"] = variadic_kernel(BinOp::kMax);
  t["Min"] = variadic_kernel(BinOp::kMin);
  t["Sum"] = variadic_kernel(BinOp::kAdd);
  t["Mod"] = GpuKernel{};
  t["Mod"].run = [](GpuContext& ctx, GpuNode& n) {
    const bool fmod = n.node.attr_int("fmod", 0) != 0;
    binary_kernel(fmod ? BinOp::kFmod : BinOp::kMod).run(ctx, n);
  };
  const std::pair<const char*, UnOp> uns[] = {
      {"Relu", UnOp::kRelu},     {"Sigmoid", UnOp::kSigmoid}, {"Tanh", UnOp::kTanh},   {"Exp", UnOp::kExp},
      {"Log", UnOp::kLog},       {"Sqrt", UnOp::kSqrt},       {"Neg", UnOp::kNeg},     {"Abs", UnOp::kAbs},
      {"Erf", UnOp::kErf},       {"Gelu", UnOp::kGelu},       {"Reciprocal", UnOp::kReciprocal},
      {"Sin", UnOp::kSin},       {"Cos", UnOp::kCos},         {"Floor", UnOp::kFloor}, {"Ceil", UnOp::kCeil},
      {"Round", UnOp::kRound},   {"HardSwish", UnOp::kHardSwish}, {"Softplus", UnOp::kSoftplus},
      {"Not", UnOp::kNot},       {"Sign", UnOp::kSign},       {"Mish", UnOp::kMish},   {"Softsign", UnOp::kSoftsign},
      {"IsNaN", UnOp::kIsNaN},   {"Clip", UnOp::kClip}};
  for (const auto& [name, op] : uns) t[name] = unary_kernel(op);
  t["LeakyRelu"] = unary_kernel(UnOp::kLeakyRelu, 0.01f, 0, "alpha");
  t["Elu"] = unary_kernel(UnOp::kElu, 1.f, 0, "alpha");
  t["Celu"] = unary_kernel(UnOp::kCelu, 1.f, 0, "alpha");
  t["Selu"] = unary_kernel(UnOp::kSelu, 1.67326319217681884765625f, 1.05070102214813232421875f, "alpha", "gamma");
  t["HardSigmoid"] = unary_kernel(UnOp::kHardSigmoid, 0.2f, 0.5f, "alpha", "beta");
  t["ThresholdedRelu"] = unary_kernel(UnOp::kThresholdedRelu, 1.f, 0, "alpha");
  t["Cast"] = cast_kernel();
  t["Where"] = where_kernel();
  t["Expand"] = expand_kernel();
  t["Transpose"] = transpose_kernel();
  t["Concat"] = concat_kernel();
  t["Slice"] = slice_kernel();
  t["Gather"] = gather_kernel();
  t["Range"] = range_kernel();
  t["ConstantOfShape"] = constant_of_shape_kernel();
  t["Softmax"] = softmax_kernel(false);
  t["LogSoftmax"] = softmax_kernel(true);
  t["LayerNormalization"] = layer_norm_kernel(false);
  t["RMSNormalization"] = layer_norm_kernel(true);
  t["deepep.SkipLayerNorm"] = skip_layer_norm_kernel();
  t["deepep.Attention"] = attention_kernel();
  t["MatMul"] = gemm_kernel<matmul_args>();
  t["Gemm"] = gemm_kernel<gemm_args>();
  t["deepep.FusedMatMul"] = gemm_kernel<fused_matmul_args>();
  t["MaxPool"] = pool_kernel(true, false);
  t["deepep.MaxPool"] = pool_kernel(true, false);  // channels_last: NHWC
  t["AveragePool"] = pool_kernel(false, false);
  t["GlobalAveragePool"] = pool_kernel(false, true);
  t["GlobalMaxPool"] = pool_kernel(true, true);
  t["Conv"] = conv_kernel(false);
  t["deepep.FusedConv"] = conv_kernel(true);
  // Every kernel checks its dtypes first.
  for (auto& [name, k] : t) {
    auto prep = k.prepare;
    k.prepare = [prep](GpuContext& ctx, GpuNode& n) -> size_t {
      check_dtypes(n);
      return prep ? prep(ctx, n) : 0;
    };
  }
  return t;
}

const std::map<std::string, GpuKernel>& table() {
  static const std::map<std::string, GpuKernel> t = build_table();
  return t;
}

}  // namespace

const GpuKernel* find_gpu_kernel(const std::string& domain, const std::string& op_type) {
  const std::string key = domain.empty() || domain == "ai.onnx" ? op_type : domain + "." + op_type;
  auto it = table().find(key);
  return it == table().end() ? nullptr : &it->second;
}

std::vector<std::string> gpu_kernel_names() {
  std::vector<std::string> names;
  for (const auto& [k, v] : table()) names.push_back(k);
  return names;
}

bool gpu_op_is_elementwise(const std::string& domain, const std::string& op_type) {
  if (!domain.empty() && domain != "ai.onnx") return false;
  static const char* kNames[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mod", "Where", "Expand",
                                 "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Neg", "Abs", "Erf", "Gelu",
                                 "Reciprocal", "Clip", "LeakyRelu", "Concat", "Slice", "Transpose", "Gather",
                                 "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "PRelu"};
  for (const char* n : kNames)
    if (op_type == n) return true;
  return false;
}

}  // namespace deepep::cuda
