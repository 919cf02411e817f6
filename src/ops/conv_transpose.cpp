// ConvTranspose: per (image, group) one GEMM W_g^T x X_g into a column
// matrix, then col2im scatters it into the output (the transpose of Conv's
// im2col + GEMM). Output size from output_shape, or from strides, pads,
// output_padding and dilations; auto_pad SAME_* derives the pads.
#include "ops/gemm_util.h"

namespace deepep::ops {
namespace {

struct TransposeShapes {
  int64_t N, C, M, group, Cg, Mg;
  SpatialGeom g;  // forward-conv view: g.in = output image, g.out = X's spatial dims
  Shape y;
};

TransposeShapes transpose_shapes(const Node& node, const Shape& xs, const Shape& ws) {
  DEEPEP_CHECK(xs.size() >= 3 && xs.size() <= 5, node.describe(),
               ": X must be [N, C, spatial...] with 1 to 3 spatial dims, got ", shape_str(xs));
  DEEPEP_CHECK(ws.size() == xs.size(), node.describe(), ": W ", shape_str(ws), " must have the rank of X ",
               shape_str(xs));
  const size_t nd = xs.size() - 2;
  TransposeShapes s;
  s.N = xs[0];
  s.C = xs[1];
  s.group = node.attr_int("group", 1);
  DEEPEP_CHECK(s.group >= 1 && s.C % s.group == 0 && ws[0] == s.C, node.describe(), ": W ", shape_str(ws),
               " must be [C, M/group, k...] for X ", shape_str(xs), " and group ", s.group);
  s.Cg = s.C / s.group;
  s.Mg = ws[1];
  s.M = s.Mg * s.group;
  SpatialGeom& g = s.g;
  g.nd = int(nd);
  g.k.assign(ws.begin() + 2, ws.end());
  if (node.has_attr("kernel_shape"))
    DEEPEP_CHECK(node.attr_ints("kernel_shape") == g.k, node.describe(),
                 ": kernel_shape does not match W ", shape_str(ws));
  auto get = [&](const char* name, size_t n, int64_t dflt) {
    auto v = node.attr_ints(name, {});
    if (v.empty()) v.assign(n, dflt);
    DEEPEP_CHECK(v.size() == n, node.describe(), ": ", name, " needs ", n, " values");
    return v;
  };
  g.s = get("strides", nd, 1);
  g.d = get("dilations", nd, 1);
  const auto op = get("output_padding", nd, 0);
  g.out.assign(xs.begin() + 2, xs.end());
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  std::vector<int64_t> out_shape = node.attr_ints("output_shape", {});
  if (out_shape.size() == nd + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  DEEPEP_CHECK(out_shape.empty() || out_shape.size() == nd, node.describe(), ": output_shape needs ", nd,
               " values");
  g.pb.assign(nd, 0);
  g.pe.assign(nd, 0);
  g.in.assign(nd, 0);
  const bool same = auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER";
  if (same && !node.has_attr("pads")) {
    for (size_t i = 0; i < nd; ++i) {
      const int64_t out = out_shape.empty() ? g.out[i] * g.s[i] : out_shape[i];
      const int64_t total = g.s[i] * (g.out[i] - 1) + op[i] + (g.k[i] - 1) * g.d[i] + 1 - out;
      const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);  // floor, like Python
      g.pb[i] = auto_pad == "SAME_UPPER" ? half : total - half;
      g.pe[i] = total - g.pb[i];
      g.in[i] = out;
    }
  } else {
    const auto pads = get("pads", 2 * nd, 0);
    for (size_t i = 0; i < nd; ++i) {
      g.pb[i] = pads[i];
      g.pe[i] = pads[i + nd];
      g.in[i] = !out_shape.empty() ? out_shape[i]
                                   : g.s[i] * (g.out[i] - 1) + op[i] + (g.k[i] - 1) * g.d[i] + 1 -
                                         g.pb[i] - g.pe[i];
    }
  }
  for (size_t i = 0; i < nd; ++i) {
    DEEPEP_CHECK(g.s[i] >= 1 && g.d[i] >= 1 && g.k[i] >= 1, node.describe(),
                 ": kernel, strides and dilations must be positive");
    DEEPEP_CHECK(g.in[i] >= 0, node.describe(), ": output size ", g.in[i], " is negative");
  }
  s.y = {s.N, s.M};
  for (int64_t v : g.in) s.y.push_back(v);
  return s;
}

template <class C>
void conv_transpose_core(const TransposeShapes& s, const C* x, const C* w, C* y) {
  const SpatialGeom& g = s.g;
  const int64_t isz = g.out_size(), osz = g.in_size(), ksz = g.k_size();
  const int64_t rows = s.Mg * ksz;
  std::fill(y, y + s.N * s.M * osz, C(0));
  std::vector<C> col(static_cast<size_t>(rows * isz));
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t gi = 0; gi < s.group; ++gi) {
      const C* xg = x + (n * s.C + gi * s.Cg) * isz;
      const C* wg = w + gi * s.Cg * rows;  // [Cg, Mg * k]
      if constexpr (std::is_same_v<C, float>) {
        sgemm(true, false, rows, isz, s.Cg, 1.f, wg, rows, xg, isz, 0.f, col.data(), isz);
      } else {
        gemm_generic<C>(true, false, rows, isz, s.Cg, wg, rows, xg, isz,
                        [&](int64_t i, int64_t j, C v) { col[i * isz + j] = v; });
      }
      col2im(col.data(), s.Mg, g, y + (n * s.M + gi * s.Mg) * osz);
    }
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(ConvTranspose) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    std::optional<SymShape> shape;
    if (x.shape && ctx.has_input(1) && ctx.input(1).shape) {
      const SymShape& xs = *x.shape;
      const SymShape& ws = *ctx.input(1).shape;
      Shape xc, wc;
      bool known = xs.size() == ws.size();
      for (const Dim& d : xs) known = known && d.is_known(), xc.push_back(d.value);
      for (const Dim& d : ws) known = known && d.is_known(), wc.push_back(d.value);
      if (known) shape = to_sym_shape(transpose_shapes(ctx.node, xc, wc).y);
    }
    ctx.set(0, x.dtype, shape);
  };
  def.cost = [](const Node&, const std::vector<Shape>& in, const std::vector<Shape>& out) {
    Cost c;
    c.bytes = bytes_moved(in, out);
    if (in.size() >= 2 && !in[1].empty() && in[1][0] > 0)
      c.flops = 2.0 * double(shape_numel(in[0])) * double(shape_numel(in[1]) / in[1][0]);
    return c;
  };
  def.reference = [](KernelContext& ctx) {
    const Node& node = ctx.node;
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    DEEPEP_CHECK(x.dtype() == w.dtype(), node.describe(), ": X and W dtypes differ");
    const TransposeShapes s = transpose_shapes(node, x.shape(), w.shape());
    if (bias)
      DEEPEP_CHECK(bias->dtype() == x.dtype() && bias->numel() == s.M, node.describe(), ": B must be ",
                   dtype_name(x.dtype()), "[", s.M, "]");
    Tensor& y = ctx.output(0, x.dtype(), s.y);
    if (y.numel() == 0) return;
    const int64_t osz = s.g.in_size();
    dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using Cmp = std::conditional_t<std::is_same_v<T, double>, double, float>;
      std::vector<Cmp> fx, fw, fy;
      const Cmp *px, *pw;
      Cmp* py;
      if constexpr (std::is_same_v<T, Cmp>) {
        px = x.data<T>(), pw = w.data<T>(), py = y.data<T>();
      } else {
        fx = to_float_vec(x.data<T>(), x.numel());
        fw = to_float_vec(w.data<T>(), w.numel());
        fy.resize(size_t(y.numel()));
        px = fx.data(), pw = fw.data(), py = fy.data();
      }
      conv_transpose_core<Cmp>(s, px, pw, py);
      T* out = y.data<T>();
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t m = 0; m < s.M; ++m) {
          const Cmp b = bias ? Cmp(bias->data<T>()[m]) : Cmp(0);
          const int64_t off = (n * s.M + m) * osz;
          for (int64_t i = 0; i < osz; ++i) out[off + i] = T(py[off + i] + b);
        }
    });
  };
}
