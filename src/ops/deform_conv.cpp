// DeformConv (2-D): each kernel tap samples X bilinearly (zero outside) at its
// regular position plus a learned offset, scaled by an optional mask; the
// sampled column matrix then goes through one GEMM per (image, group).
#include <cmath>

#include "ops/gemm_util.h"

using namespace deepep;
using namespace deepep::ops;

namespace {

struct DeformShapes {
  int64_t N, C, H, W, M, group, Cg, Mg, og, KH, KW, OH, OW;
  int64_t sh, sw, dh, dw, ph, pw;
};

DeformShapes deform_shapes(const Node& node, const Shape& xs, const Shape& ws, const Shape& os) {
  DEEPEP_CHECK(xs.size() == 4, node.describe(), ": only 2-D DeformConv is supported; X is ", shape_str(xs));
  DEEPEP_CHECK(ws.size() == 4 && os.size() == 4, node.describe(), ": W and offset must be 4-D");
  DeformShapes s;
  s.N = xs[0], s.C = xs[1], s.H = xs[2], s.W = xs[3];
  s.M = ws[0];
  s.group = node.attr_int("group", 1);
  s.og = node.attr_int("offset_group", 1);
  DEEPEP_CHECK(s.group >= 1 && s.C % s.group == 0 && s.M % s.group == 0 && ws[1] == s.C / s.group,
               node.describe(), ": W ", shape_str(ws), " does not fit X ", shape_str(xs), " and group ", s.group);
  DEEPEP_CHECK(s.og >= 1 && s.C % s.og == 0, node.describe(), ": offset_group ", s.og,
               " must divide the channels ", s.C);
  s.Cg = s.C / s.group, s.Mg = s.M / s.group;
  s.KH = ws[2], s.KW = ws[3];
  if (node.has_attr("kernel_shape"))
    DEEPEP_CHECK(node.attr_ints("kernel_shape") == std::vector<int64_t>({s.KH, s.KW}), node.describe(),
                 ": kernel_shape does not match W");
  auto get = [&](const char* name, size_t n, int64_t dflt) {
    auto v = node.attr_ints(name, {});
    if (v.empty()) v.assign(n, dflt);
    DEEPEP_CHECK(v.size() == n, node.describe(), ": ", name, " needs ", n, " values");
    return v;
  };
  const auto st = get("strides", 2, 1), di = get("dilations", 2, 1), pa = get("pads", 4, 0);
  s.sh = st[0], s.sw = st[1], s.dh = di[0], s.dw = di[1], s.ph = pa[0], s.pw = pa[1];
  DEEPEP_CHECK(s.sh >= 1 && s.sw >= 1 && s.dh >= 1 && s.dw >= 1, node.describe(),
               ": strides and dilations must be positive");
  s.OH = (s.H + pa[0] + pa[2] - (s.KH - 1) * s.dh - 1) / s.sh + 1;
  s.OW = (s.W + pa[1] + pa[3] - (s.KW - 1) * s.dw - 1) / s.sw + 1;
  DEEPEP_CHECK(os[0] == s.N && os[1] == s.og * s.KH * s.KW * 2 && os[2] == s.OH && os[3] == s.OW,
               node.describe(), ": offset must be [", s.N, ", ", s.og * s.KH * s.KW * 2, ", ", s.OH, ", ",
               s.OW, "], got ", shape_str(os));
  return s;
}

template <class C>
C bilinear(const C* img, int64_t H, int64_t W, C y, C x) {
  const C yf = std::floor(y), xf = std::floor(x);
  const int64_t y0 = int64_t(yf), x0 = int64_t(xf);
  const C ly = y - yf, lx = x - xf;
  auto at = [&](int64_t yy, int64_t xx) -> C {
    return yy >= 0 && yy < H && xx >= 0 && xx < W ? img[yy * W + xx] : C(0);
  };
  return (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x0 + 1)) +
         ly * ((1 - lx) * at(y0 + 1, x0) + lx * at(y0 + 1, x0 + 1));
}

template <class C>
void deform_core(const DeformShapes& s, const C* x, const C* w, const C* off, const C* mask, C* y) {
  const int64_t ksz = s.KH * s.KW, osz = s.OH * s.OW, kdim = s.Cg * ksz;
  std::vector<C> col(static_cast<size_t>(s.C * ksz * osz));
  const int64_t cpo = s.C / s.og;  // channels per offset group
  for (int64_t n = 0; n < s.N; ++n) {
    for (int64_t c = 0; c < s.C; ++c) {
      const int64_t g = c / cpo;
      const C* img = x + (n * s.C + c) * s.H * s.W;
      for (int64_t i = 0; i < s.KH; ++i)
        for (int64_t j = 0; j < s.KW; ++j) {
          const int64_t tap = (g * s.KH + i) * s.KW + j;
          const C* oh_ptr = off + ((n * s.og * ksz + tap) * 2 + 0) * osz;
          const C* ow_ptr = off + ((n * s.og * ksz + tap) * 2 + 1) * osz;
          const C* m_ptr = mask ? mask + (n * s.og * ksz + tap) * osz : nullptr;
          C* dst = col.data() + ((c * s.KH + i) * s.KW + j) * osz;
          for (int64_t oh = 0; oh < s.OH; ++oh)
            for (int64_t ow = 0; ow < s.OW; ++ow) {
              const int64_t o = oh * s.OW + ow;
              const C yy = C(oh * s.sh - s.ph + i * s.dh) + oh_ptr[o];
              const C xx = C(ow * s.sw - s.pw + j * s.dw) + ow_ptr[o];
              C v = bilinear(img, s.H, s.W, yy, xx);
              if (m_ptr) v *= m_ptr[o];
              dst[o] = v;
            }
        }
    }
    for (int64_t gi = 0; gi < s.group; ++gi) {
      const C* cols = col.data() + gi * kdim * osz;
      const C* wg = w + gi * s.Mg * kdim;
      C* yg = y + (n * s.M + gi * s.Mg) * osz;
      if constexpr (std::is_same_v<C, float>)
        sgemm(false, false, s.Mg, osz, kdim, 1.f, wg, kdim, cols, osz, 0.f, yg, osz);
      else
        gemm_generic<C>(false, false, s.Mg, osz, kdim, wg, kdim, cols, osz,
                        [&](int64_t r, int64_t q, C v) { yg[r * osz + q] = v; });
    }
  }
}

}  // namespace

DEEPEP_DEFINE_OP(DeformConv) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    std::optional<SymShape> shape;
    if (ctx.has_input(2) && ctx.input(2).shape && ctx.input(2).shape->size() == 4 && ctx.has_input(1) &&
        ctx.input(1).shape && !ctx.input(1).shape->empty()) {
      const SymShape& os = *ctx.input(2).shape;
      shape = SymShape{os[0], (*ctx.input(1).shape)[0], os[2], os[3]};
    }
    ctx.set(0, ctx.input(0).dtype, shape);
  };
  def.reference = [](KernelContext& ctx) {
    const Node& node = ctx.node;
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    const Tensor& off = ctx.input(2);
    const Tensor* bias = ctx.has_input(3) ? &ctx.input(3) : nullptr;
    const Tensor* mask = ctx.has_input(4) ? &ctx.input(4) : nullptr;
    const DeformShapes s = deform_shapes(node, x.shape(), w.shape(), off.shape());
    for (const Tensor* t : {&w, &off, bias, mask})
      if (t) DEEPEP_CHECK(t->dtype() == x.dtype(), node.describe(), ": all inputs must be ",
                          dtype_name(x.dtype()));
    if (bias) DEEPEP_CHECK(bias->numel() == s.M, node.describe(), ": B must have ", s.M, " values");
    if (mask)
      DEEPEP_CHECK(mask->shape() == Shape({s.N, s.og * s.KH * s.KW, s.OH, s.OW}), node.describe(),
                   ": mask must be [", s.N, ", ", s.og * s.KH * s.KW, ", ", s.OH, ", ", s.OW, "], got ",
                   shape_str(mask->shape()));
    Tensor& y = ctx.output(0, x.dtype(), {s.N, s.M, s.OH, s.OW});
    if (y.numel() == 0) return;
    dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using Cmp = std::conditional_t<std::is_same_v<T, double>, double, float>;
      auto conv = [](const Tensor* t) {
        std::vector<Cmp> v;
        if (t) {
          v.resize(size_t(t->numel()));
          for (int64_t i = 0; i < t->numel(); ++i) v[i] = Cmp(t->data<T>()[i]);
        }
        return v;
      };
      const auto fx = conv(&x), fw = conv(&w), fo = conv(&off), fm = conv(mask);
      std::vector<Cmp> fy(static_cast<size_t>(y.numel()));
      deform_core<Cmp>(s, fx.data(), fw.data(), fo.data(), mask ? fm.data() : nullptr, fy.data());
      const int64_t osz = s.OH * s.OW;
      T* py = y.data<T>();
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t m = 0; m < s.M; ++m) {
          const Cmp b = bias ? Cmp(bias->data<T>()[m]) : Cmp(0);
          for (int64_t i = 0; i < osz; ++i) py[(n * s.M + m) * osz + i] = T(fy[(n * s.M + m) * osz + i] + b);
        }
    });
  };
}
