// Fast CPU kernels of deepep.SkipLayerNorm and LayerNormalization
// (references: src/ops/fused_skip_layer_norm.cpp, layer_norm.cpp): one
// vectorized kernel per row (row_kernels.h: residual add, mean, variance,
// scale and shift; the row stays in L1 between its passes), rows spread over
// the pool. `supports` admits float32 with gamma / beta equal to the
// normalized dims (behind leading 1s) and, for SkipLayerNorm, one operand of
// the sum's shape and the other repeating whole rows (same shape, [d],
// [1, seq, d] position embeddings); anything else runs the reference (which
// also reports the errors). LayerNormalization's Mean / InvStdDev outputs are
// left to the reference.
#include <algorithm>

#include "deepep/error.h"
#include "kernels/cpu/register.h"
#include "kernels/cpu/row_kernels.h"
#include "kernels/cpu/thread_pool.h"
#include "ops/op_util.h"

namespace deepep::cpu {
namespace {

bool is_f32(const Tensor* t) { return t && t->dtype() == DType::kFloat32; }

Shape strip_ones(const Shape& s) {
  size_t i = 0;
  while (i < s.size() && s[i] == 1) ++i;
  return Shape(s.begin() + int64_t(i), s.end());
}

// The parameter's values are those of the normalized dims, in order.
bool param_matches(const Tensor* p, const Shape& norm) { return is_f32(p) && strip_ones(p->shape()) == strip_ones(norm); }


// rows x cols split of `shape` at the node's axis attribute; false when the
// axis is out of range.
bool split_rows(const Node& n, const Shape& shape, int64_t& rows, int64_t& cols) {
  const int64_t rank = int64_t(shape.size());
  if (rank < 1) return false;
  int64_t axis = n.attr_int("axis", -1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return false;
  rows = 1, cols = 1;
  for (int64_t d = 0; d < rank; ++d) (d < axis ? rows : cols) *= shape[size_t(d)];
  return true;
}

Shape norm_dims(const Node& n, const Shape& shape) {
  int64_t axis = n.attr_int("axis", -1);
  if (axis < 0) axis += int64_t(shape.size());
  return Shape(shape.begin() + axis, shape.end());
}

// Rows [0, rows) through the row kernel, spread over the pool.
template <class RowFn>
void for_rows(int64_t rows, int64_t cols, RowFn&& fn) {
  const int threads = threads_for(double(rows) * double(cols) * 4);
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(cols, 1));
  ThreadPool::global().parallel_for(rows, grain, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) fn(r);
  });
}

// ---- SkipLayerNorm --------------------------------------------------------

// X (the full shape) and Skip (repeating whole rows), swapped when needed.
bool skip_operands(const KernelContext& ctx, const Tensor*& x, const Tensor*& skip, int64_t& rows, int64_t& cols) {
  if (ctx.num_inputs() < 3 || !is_f32(ctx.inputs[0]) || !is_f32(ctx.inputs[1]) || !ctx.has_input(2)) return false;
  x = ctx.inputs[0], skip = ctx.inputs[1];
  const Shape out = ops::broadcast_shapes(x->shape(), skip->shape(), ctx.node);  // throws: no broadcast
  if (x->shape() != out) std::swap(x, skip);
  if (x->shape() != out) return false;
  if (!ops::periodic(skip->shape(), x->shape())) return false;
  if (!split_rows(ctx.node, x->shape(), rows, cols)) return false;
  if (cols > 0 && skip->numel() % cols != 0) return false;
  const Shape norm = norm_dims(ctx.node, x->shape());
  if (!param_matches(ctx.inputs[2], norm)) return false;
  if (ctx.has_input(3) && !param_matches(ctx.inputs[3], norm)) return false;
  return true;
}

bool skip_layer_norm_supports(const KernelContext& ctx) {
  try {
    const Tensor *x, *skip;
    int64_t rows, cols;
    return skip_operands(ctx, x, skip, rows, cols);
  } catch (const Error&) {
    return false;
  }
}

void skip_layer_norm_run(KernelContext& ctx) {
  const RowKernels* rk = row_kernels_of(active_isa());
  const Tensor *x = nullptr, *skip = nullptr;
  int64_t rows = 0, cols = 0;
  DEEPEP_CHECK(rk && skip_operands(ctx, x, skip, rows, cols), ctx.node.describe(),
               ": fast SkipLayerNorm kernel called on unsupported input");
  const double eps = ctx.node.attr_float("epsilon", 1e-5f);
  const Shape out = x->shape();
  Tensor& y = ctx.output(0, DType::kFloat32, out);
  float* sum = ctx.output_requested(1) ? ctx.output(1, DType::kFloat32, out).data<float>() : nullptr;
  if (y.numel() == 0) return;
  const float* px = x->data<float>();
  const float* pk = skip->data<float>();
  const float* gamma = ctx.input(2).data<float>();
  const float* beta = ctx.has_input(3) ? ctx.input(3).data<float>() : nullptr;
  const int64_t period = skip->numel();
  float* py = y.data<float>();
  for_rows(rows, cols, [&](int64_t r) {
    const int64_t o = r * cols;
    rk->layer_norm_row(px + o, pk + o % period, nullptr, gamma, beta, py + o, sum ? sum + o : nullptr, cols, eps);
  });
}

// ---- LayerNormalization ---------------------------------------------------

bool layer_norm_ok(const KernelContext& ctx, int64_t& rows, int64_t& cols) {
  if (ctx.num_inputs() < 2 || !is_f32(ctx.inputs[0]) || !ctx.has_input(1)) return false;
  if (ctx.output_requested(1) || ctx.output_requested(2)) return false;
  const Shape& xs = ctx.inputs[0]->shape();
  if (!split_rows(ctx.node, xs, rows, cols)) return false;
  const Shape norm = norm_dims(ctx.node, xs);
  if (!param_matches(ctx.inputs[1], norm)) return false;
  if (ctx.has_input(2) && !param_matches(ctx.inputs[2], norm)) return false;
  return true;
}

bool layer_norm_supports(const KernelContext& ctx) {
  try {
    int64_t rows, cols;
    return layer_norm_ok(ctx, rows, cols);
  } catch (const Error&) {
    return false;
  }
}

void layer_norm_run(KernelContext& ctx) {
  const RowKernels* rk = row_kernels_of(active_isa());
  int64_t rows = 0, cols = 0;
  DEEPEP_CHECK(rk && layer_norm_ok(ctx, rows, cols), ctx.node.describe(),
               ": fast LayerNormalization kernel called on unsupported input");
  const Tensor& x = ctx.input(0);
  const double eps = ctx.node.attr_float("epsilon", 1e-5f);
  Tensor& y = ctx.output(0, DType::kFloat32, x.shape());
  if (y.numel() == 0) return;
  const float* px = x.data<float>();
  const float* gamma = ctx.input(1).data<float>();
  const float* beta = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
  float* py = y.data<float>();
  for_rows(rows, cols, [&](int64_t r) {
    const int64_t o = r * cols;
    rk->layer_norm_row(px + o, nullptr, nullptr, gamma, beta, py + o, nullptr, cols, eps);
  });
}

}  // namespace

void register_norm_kernels(OpTable& table) {
  add_fast_kernel(table, "deepep.SkipLayerNorm", "cpu.layer_norm", skip_layer_norm_supports, skip_layer_norm_run);
  add_fast_kernel(table, "LayerNormalization", "cpu.layer_norm", layer_norm_supports, layer_norm_run);
}

}  // namespace deepep::cpu
