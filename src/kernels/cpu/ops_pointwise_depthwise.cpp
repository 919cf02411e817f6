// Fast CPU kernel of deepep.PointwiseDepthwiseConv (channels_last = 1,
// float32): Y = depthwise(pointwise(X)), the expanded map E never whole.
// Each thread takes one band of output rows and walks it a chunk of rows at
// a time: the pointwise conv (the fast GEMM over X's rows, read in place;
// bias and activation in its epilogue) makes the E rows the chunk's taps
// read into a per-thread buffer of kBufferFloats, and the depthwise loop of
// the plain channels-last conv (ops_conv_nhwc_isa.h) reads them there. The
// rows a chunk shares with the next stay in the buffer (moved to its front),
// so within a band each E row is made once; only the rows where two bands
// meet are made twice. Anything else declines to the reference.
#include <algorithm>
#include <cstring>
#include <vector>

#include "deepep/error.h"
#include "kernels/cpu/conv_plan.h"
#include "kernels/cpu/ops_conv_nhwc.h"
#include "kernels/cpu/register.h"
#include "kernels/cpu/scratch.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/cpu/thread_pool.h"
#include "ops/fused_epilogue.h"
#include "ops/gemm_util.h"

namespace deepep::cpu {
namespace {

// A chunk's E rows: 384 KiB, a fifth of a core's L2 on the machines measured
// (the GEMM's packed weight and the output rows share it).
constexpr int64_t kBufferFloats = 96 * 1024;

bool is_f32(const Tensor* t) { return t && t->dtype() == DType::kFloat32; }

bool known_epilogue(const Node& n, const char* act_key, const char* params_key, ops::Epilogue& e) {
  if (!ops::act_from_name(n.attr_string(act_key, ""), e.act)) return false;
  const std::vector<float> p = n.attr_floats(params_key, {});
  if (int(p.size()) != ops::act_param_count(e.act)) return false;
  if (p.size() > 0) e.p0 = p[0];
  if (p.size() > 1) e.p1 = p[1];
  return true;
}

// The depthwise stage's plan (its input: X's pixels with E channels), X's
// channels C and both stages' epilogues, or false for anything the kernel
// does not take.
bool make_plan(const KernelContext& ctx, ConvPlan& p, int64_t& C, ops::Epilogue& pe, ops::Epilogue& de) {
  const Node& node = ctx.node;
  if (node.attr_int("channels_last", 0) != 1 || ctx.num_inputs() < 4 || ctx.num_inputs() > 5) return false;
  if (!is_f32(ctx.inputs[0]) || !is_f32(ctx.inputs[1]) || !is_f32(ctx.inputs[3])) return false;
  const Tensor& x = *ctx.inputs[0];
  const Tensor& w1 = *ctx.inputs[1];
  const Tensor& w2 = *ctx.inputs[3];
  if (x.rank() != 4 || w1.rank() != 4 || w2.rank() != 4) return false;
  const int64_t E = w1.dim(0);
  C = x.dim(3);
  if (w1.dim(1) != C || w1.dim(2) != 1 || w1.dim(3) != 1 || w2.dim(0) != E || w2.dim(1) != 1) return false;
  for (int i : {2, 4})
    if (ctx.has_input(i) && (!is_f32(ctx.inputs[i]) || ctx.inputs[i]->numel() != E)) return false;
  p.N = x.dim(0), p.H = x.dim(1), p.W = x.dim(2), p.C = E, p.M = E;
  p.group = node.attr_int("group", 1);
  p.Cg = p.Mg = 1;
  p.KH = w2.dim(2), p.KW = w2.dim(3);
  if (p.group != E || E < 1 || p.KH < 1 || p.KW < 1) return false;
  if (node.has_attr("kernel_shape") && node.attr_ints("kernel_shape") != std::vector<int64_t>{p.KH, p.KW}) return false;
  ops::SpatialGeom g;
  try {
    g = ops::conv_geometry(node, Shape{p.H, p.W}, {p.KH, p.KW});
  } catch (const Error&) {
    return false;
  }
  p.OH = g.out[0], p.OW = g.out[1];
  p.sh = g.s[0], p.sw = g.s[1], p.ph = g.pb[0], p.pw = g.pb[1], p.dh = g.d[0], p.dw = g.d[1];
  return p.OH >= 0 && p.OW >= 0 && known_epilogue(node, "activation", "activation_params", de) &&
         known_epilogue(node, "pointwise_activation", "pointwise_activation_params", pe);
}

// make_plan's result, made once per NodeCache.
struct Plan {
  bool ok = false;
  ConvPlan p{};
  int64_t C = 0;
  ops::Epilogue pe, de;
};
Plan plan_of(const KernelContext& ctx) {
  return cached_plan<Plan>(ctx, [&] {
    Plan r;
    r.ok = make_plan(ctx, r.p, r.C, r.pe, r.de);
    return r;
  });
}

bool supports(const KernelContext& ctx) { return nhwc_kernels_of(active_isa()) && plan_of(ctx).ok; }

void run(KernelContext& ctx) {
  const Isa isa = active_isa();
  const NhwcKernels* nk = nhwc_kernels_of(isa);
  const Plan plan = plan_of(ctx);
  DEEPEP_CHECK(nk && plan.ok, ctx.node.describe(), ": fast pointwise-depthwise conv called on an unsupported node");
  const ConvPlan& p = plan.p;
  const int64_t C = plan.C;
  Tensor& y = ctx.output(0, DType::kFloat32, Shape{p.N, p.OH, p.OW, p.M});
  if (y.numel() == 0) return;
  const Node& node = ctx.node;
  const int64_t E = p.C, H = p.H, W = p.W;
  const Tensor& w1 = ctx.input(1);
  const Tensor& w2 = ctx.input(3);
  auto is_const = [&](int i) { return node.inputs.size() > size_t(i) && node.inputs[i] && node.inputs[i]->data; };
  // The 1x1 weight [E, C] is op(B)^T as it stands (as the plain pointwise conv packs it).
  const std::shared_ptr<const Packed> w1p = is_const(1) ? cached_pack_b(isa, w1, C, E, w1.data<float>(), C, true)
                                                        : pack_b(isa, C, E, w1.data<float>(), C, true);
  const std::shared_ptr<const Packed> w2p = nhwc_depthwise_weight(isa, p, w2, is_const(3));

  const ops::Epilogue& pe = plan.pe;
  const ops::Epilogue& de = plan.de;
  GemmEpi pointwise;
  pointwise.bias = ctx.has_input(2) ? ctx.input(2).data<float>() : nullptr;
  pointwise.act = pe.act, pointwise.p0 = pe.p0, pointwise.p1 = pe.p1;
  NhwcDwArgs base;
  fill_direct_args(base, p, de, nullptr, w2p->data.get(), ctx.has_input(4) ? ctx.input(4).data<float>() : nullptr,
                   nullptr, y.data<float>());

  const float* X = ctx.input(0).data<float>();
  const int64_t span = (p.KH - 1) * p.dh + 1;  // E rows one output row reads
  const int64_t row_floats = W * E;
  const int64_t fit = std::max<int64_t>(span, kBufferFloats / std::max<int64_t>(row_floats, 1));
  const int64_t chunk = std::max<int64_t>(1, (fit - span) / p.sh + 1);  // output rows per chunk
  const int64_t cap_rows = (chunk - 1) * p.sh + span;
  const int64_t rows = p.N * p.OH;

  // Output rows [r0, r1) of the N*OH rows (n, oy).
  auto band = [&](int64_t r0, int64_t r1) {
    // (Aligned: an unaligned buffer splits the depthwise loop's vector loads
    // across cache lines, ~2x slower.)
    thread_local Scratch buf;
    float* const b = buf.get(cap_rows * row_floats);
    int64_t have_n = -1, lo = 0, hi = 0;  // b holds E rows [lo, hi) of image have_n
    NhwcDwArgs a = base;
    a.x = b;
    for (int64_t r = r0; r < r1;) {
      const int64_t n = r / p.OH, oy = r % p.OH;
      const int64_t count = std::min({chunk, p.OH - oy, r1 - r});
      const int64_t need_lo = std::clamp<int64_t>(oy * p.sh - p.ph, 0, H);
      const int64_t need_hi = std::clamp<int64_t>((oy + count - 1) * p.sh - p.ph + span, need_lo, H);
      int64_t start = need_lo;
      if (have_n == n && lo <= need_lo && need_lo < hi) {
        start = std::min(hi, need_hi);
        if (need_lo > lo) std::memmove(b, b + (need_lo - lo) * row_floats, size_t((start - need_lo) * row_floats) * 4);
      }
      if (start < need_hi)
        gemm(isa, (need_hi - start) * W, E, C, Operand{X + (n * H + start) * W * C, C, false},
             Operand{nullptr, 0, false, w1p.get()}, b + (start - need_lo) * row_floats, E, pointwise, 1);
      have_n = n, lo = need_lo, hi = need_hi;
      a.x_row0 = n * H + need_lo;
      nk->depthwise(a, r, r + count);
      r += count;
    }
  };
  const double work = double(p.N) * double(H * W) * double(C * E) + double(y.numel()) * double(p.KH * p.KW);
  const int threads = threads_for(work);
  // One band per thread (more would make more shared rows twice), split as
  // the convs before and after split their rows (parallel_for_affine).
  const int64_t parts = std::min<int64_t>(rows, threads);
  ThreadPool::global().parallel_for_affine(parts, threads, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) band(rows * q / parts, rows * (q + 1) / parts);
  });
}

}  // namespace

void register_pointwise_depthwise_kernels(OpTable& table) {
  add_fast_kernel(table, "deepep.PointwiseDepthwiseConv", "cpu.pointwise_depthwise_nhwc", supports, run);
}

}  // namespace deepep::cpu
