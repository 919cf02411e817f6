// Pooling: MaxPool (with Indices), AveragePool, LpPool, their Global forms,
// and MaxUnpool. Windows follow the conv geometry (strides, dilations, pads,
// auto_pad, ceil_mode); padding never contributes a value, and AveragePool
// with count_include_pad divides by the window's size within the padded input.
#include <cmath>
#include <limits>

#include "ops/gemm_util.h"

namespace deepep::ops {
namespace {

enum class PoolKind { kMax, kAvg, kLp };

// Geometry padded to 3 spatial dims (leading 1s).
struct Pool3 {
  int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
  explicit Pool3(const SpatialGeom& g) {
    const int off = 3 - g.nd;
    for (int i = 0; i < 3; ++i) {
      const int j = i - off;
      const bool real = j >= 0;
      in[i] = real ? g.in[j] : 1;
      k[i] = real ? g.k[j] : 1;
      s[i] = real ? g.s[j] : 1;
      d[i] = real ? g.d[j] : 1;
      pb[i] = real ? g.pb[j] : 0;
      pe[i] = real ? g.pe[j] : 0;
      out[i] = real ? g.out[j] : 1;
    }
  }
};

// Kernel positions of window `o` along one dim that fall in [lo, hi).
struct Taps {
  int64_t first = 0, count = 0;  // first tap index, number of taps
};
Taps taps(int64_t o, int64_t s, int64_t p, int64_t k, int64_t d, int64_t lo, int64_t hi) {
  const int64_t start = o * s - p;
  // tap t is at start + t*d; need lo <= pos < hi.
  int64_t t0 = start >= lo ? 0 : (lo - start + d - 1) / d;
  int64_t t1 = start >= hi ? 0 : std::min(k, (hi - start + d - 1) / d);
  return {t0, std::max<int64_t>(0, t1 - t0)};
}

SpatialGeom pool_geometry(const Node& node, const Shape& xs, bool allow_ceil) {
  DEEPEP_CHECK(xs.size() >= 3 && xs.size() <= 5, node.describe(),
               ": X must be [N, C, spatial...] with 1 to 3 spatial dims, got ", shape_str(xs));
  DEEPEP_CHECK(node.has_attr("kernel_shape"), node.describe(), ": kernel_shape is required");
  const bool ceil_mode = allow_ceil && node.attr_int("ceil_mode", 0) != 0;
  return conv_geometry(node, Shape(xs.begin() + 2, xs.end()), node.attr_ints("kernel_shape"), ceil_mode);
}

Shape pool_out_shape(const Shape& xs, const SpatialGeom& g) {
  Shape y{xs[0], xs[1]};
  for (int64_t o : g.out) y.push_back(o);
  return y;
}

template <class T>
void pool_plane(PoolKind kind, const Pool3& g, const T* x, T* y, int64_t* idx, int64_t plane_base,
                bool count_pad, double p, bool col_major, int nd) {
  using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const int64_t H = g.in[1], W = g.in[2], D = g.in[0];
  for (int64_t od = 0; od < g.out[0]; ++od) {
    const Taps td = taps(od, g.s[0], g.pb[0], g.k[0], g.d[0], 0, D);
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
      const Taps th = taps(oh, g.s[1], g.pb[1], g.k[1], g.d[1], 0, H);
      for (int64_t ow = 0; ow < g.out[2]; ++ow) {
        const Taps tw = taps(ow, g.s[2], g.pb[2], g.k[2], g.d[2], 0, W);
        const int64_t o = (od * g.out[1] + oh) * g.out[2] + ow;
        if (kind == PoolKind::kMax) {
          bool any = false;
          T best = std::numeric_limits<T>::lowest();
          int64_t bi = -1, bd = 0, bh = 0, bw = 0;
          for (int64_t a = td.first; a < td.first + td.count; ++a) {
            const int64_t id = od * g.s[0] - g.pb[0] + a * g.d[0];
            for (int64_t b = th.first; b < th.first + th.count; ++b) {
              const int64_t ih = oh * g.s[1] - g.pb[1] + b * g.d[1];
              const T* row = x + (id * H + ih) * W;
              for (int64_t c = tw.first; c < tw.first + tw.count; ++c) {
                const int64_t iw = ow * g.s[2] - g.pb[2] + c * g.d[2];
                const T v = row[iw];
                if (!any || v > best) {
                  any = true;
                  best = v;
                  bd = id, bh = ih, bw = iw;
                }
              }
            }
          }
          y[o] = best;
          if (idx) {
            if (any) {
              // Spatial coordinates in the node's own rank, row- or column-major.
              const int64_t coord[3] = {bd, bh, bw};
              const int off = 3 - nd;
              int64_t flat = 0;
              if (!col_major) {
                for (int i = off; i < 3; ++i) flat = flat * g.in[i] + coord[i];
              } else {
                for (int i = 2; i >= off; --i) flat = flat * g.in[i] + coord[i];
              }
              bi = plane_base + flat;
            }
            idx[o] = bi;
          }
        } else {
          C sum = 0;
          for (int64_t a = td.first; a < td.first + td.count; ++a) {
            const int64_t id = od * g.s[0] - g.pb[0] + a * g.d[0];
            for (int64_t b = th.first; b < th.first + th.count; ++b) {
              const int64_t ih = oh * g.s[1] - g.pb[1] + b * g.d[1];
              const T* row = x + (id * H + ih) * W;
              for (int64_t c = tw.first; c < tw.first + tw.count; ++c) {
                const C v = C(row[ow * g.s[2] - g.pb[2] + c * g.d[2]]);
                if (kind == PoolKind::kAvg) sum += v;
                else if (p == 2) sum += v * v;
                else if (p == 1) sum += std::fabs(v);
                else sum += C(std::pow(std::fabs(double(v)), p));
              }
            }
          }
          if (kind == PoolKind::kAvg) {
            int64_t n = td.count * th.count * tw.count;
            if (count_pad) {
              // Taps inside the padded input [-pb, in + pe).
              n = taps(od, g.s[0], g.pb[0], g.k[0], g.d[0], -g.pb[0], D + g.pe[0]).count *
                  taps(oh, g.s[1], g.pb[1], g.k[1], g.d[1], -g.pb[1], H + g.pe[1]).count *
                  taps(ow, g.s[2], g.pb[2], g.k[2], g.d[2], -g.pb[2], W + g.pe[2]).count;
            }
            y[o] = T(n > 0 ? sum / C(n) : C(NAN));
          } else {
            y[o] = T(p == 2 ? std::sqrt(sum) : p == 1 ? sum : C(std::pow(double(sum), 1.0 / p)));
          }
        }
      }
    }
  }
}

double lp_p(const Node& node) {
  const Attribute* a = node.attr("p");
  if (!a) return 2.0;
  return a->kind == Attribute::Kind::kFloat ? double(a->f) : double(a->i);
}

void pool_kernel(KernelContext& ctx, PoolKind kind, bool global) {
  const Node& node = ctx.node;
  const Tensor& x = ctx.input(0);
  const Shape& xs = x.shape();
  SpatialGeom g;
  if (global) {
    DEEPEP_CHECK(xs.size() >= 3 && xs.size() <= 5, node.describe(),
                 ": X must be [N, C, spatial...] with 1 to 3 spatial dims, got ", shape_str(xs));
    g.nd = int(xs.size()) - 2;
    g.in.assign(xs.begin() + 2, xs.end());
    g.k = g.in;
    g.s.assign(size_t(g.nd), 1);
    g.d.assign(size_t(g.nd), 1);
    g.pb.assign(size_t(g.nd), 0);
    g.pe.assign(size_t(g.nd), 0);
    g.out.assign(size_t(g.nd), 1);
  } else {
    g = pool_geometry(node, xs, true);
  }
  const Shape ys = pool_out_shape(xs, g);
  const bool count_pad = node.attr_int("count_include_pad", 0) != 0;
  const bool col_major = node.attr_int("storage_order", 0) != 0;
  const double p = lp_p(node);
  DEEPEP_CHECK(kind != PoolKind::kLp || p > 0, node.describe(), ": p must be positive");
  Tensor& y = ctx.output(0, x.dtype(), ys);
  int64_t* idx = nullptr;
  if (kind == PoolKind::kMax && ctx.output_requested(1))
    idx = ctx.output(1, DType::kInt64, ys).data<int64_t>();
  if (y.numel() == 0) return;
  const Pool3 g3(g);
  const int64_t planes = xs[0] * xs[1], isz = g.in_size(), osz = g.out_size();
  auto run = [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const double work = double(planes) * double(osz) * double(g.k_size());
    parallel_for(planes, threads_for_work(work), [&](int64_t b, int64_t e) {
      for (int64_t pl = b; pl < e; ++pl)
        pool_plane<T>(kind, g3, px + pl * isz, py + pl * osz, idx ? idx + pl * osz : nullptr, pl * isz,
                      count_pad, p, col_major, g.nd);
    });
  };
  if (kind == PoolKind::kMax) {
    switch (x.dtype()) {
      case DType::kInt8: return run(TypeTag<int8_t>{});
      case DType::kUInt8: return run(TypeTag<uint8_t>{});
      default: break;
    }
  }
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) {
      // Pool in float, store once.
      std::vector<float> fx = to_float_vec(x.data<T>(), x.numel());
      Tensor fy(DType::kFloat32, ys);
      const float* px = fx.data();
      parallel_for(planes, threads_for_work(double(planes) * double(osz) * double(g.k_size())),
                   [&](int64_t b, int64_t e) {
                     for (int64_t pl = b; pl < e; ++pl)
                       pool_plane<float>(kind, g3, px + pl * isz, fy.data<float>() + pl * osz,
                                         idx ? idx + pl * osz : nullptr, pl * isz, count_pad, p,
                                         col_major, g.nd);
                   });
      T* py = y.data<T>();
      for (int64_t i = 0; i < y.numel(); ++i) py[i] = T(fy.data<float>()[i]);
    } else {
      run(tag);
    }
  });
}

void pool_infer(InferContext& ctx, bool global, bool has_indices) {
  if (!ctx.has_input(0)) return;
  const Value& x = ctx.input(0);
  std::optional<SymShape> shape;
  if (x.shape && x.shape->size() >= 3) {
    if (global) {
      shape = SymShape{(*x.shape)[0], (*x.shape)[1]};
      for (size_t i = 2; i < x.shape->size(); ++i) shape->push_back(Dim::known(1));
    } else {
      shape = conv_like_shape(ctx, (*x.shape)[1], ctx.node.attr_ints("kernel_shape"),
                              ctx.node.attr_int("ceil_mode", 0) != 0);
    }
  }
  ctx.set(0, x.dtype, shape);
  if (has_indices && ctx.outputs.size() > 1) ctx.set(1, DType::kInt64, shape);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(MaxPool) {
  def.infer = [](InferContext& ctx) { pool_infer(ctx, false, true); };
  def.reference = [](KernelContext& ctx) { pool_kernel(ctx, PoolKind::kMax, false); };
}
DEEPEP_DEFINE_OP(AveragePool) {
  def.infer = [](InferContext& ctx) { pool_infer(ctx, false, false); };
  def.reference = [](KernelContext& ctx) { pool_kernel(ctx, PoolKind::kAvg, false); };
}
DEEPEP_DEFINE_OP(LpPool) {
  def.infer = [](InferContext& ctx) { pool_infer(ctx, false, false); };
  def.reference = [](KernelContext& ctx) { pool_kernel(ctx, PoolKind::kLp, false); };
}
DEEPEP_DEFINE_OP(GlobalMaxPool) {
  def.infer = [](InferContext& ctx) { pool_infer(ctx, true, false); };
  def.reference = [](KernelContext& ctx) { pool_kernel(ctx, PoolKind::kMax, true); };
}
DEEPEP_DEFINE_OP(GlobalAveragePool) {
  def.infer = [](InferContext& ctx) { pool_infer(ctx, true, false); };
  def.reference = [](KernelContext& ctx) { pool_kernel(ctx, PoolKind::kAvg, true); };
}
DEEPEP_DEFINE_OP(GlobalLpPool) {
  def.infer = [](InferContext& ctx) { pool_infer(ctx, true, false); };
  def.reference = [](KernelContext& ctx) { pool_kernel(ctx, PoolKind::kLp, true); };
}

namespace {
// MaxUnpool's natural output: (in - 1) * stride - pads + kernel per dim.
Shape unpool_shape(const Node& node, const Shape& xs) {
  DEEPEP_CHECK(xs.size() >= 3, node.describe(), ": X must be [N, C, spatial...], got ", shape_str(xs));
  const size_t nd = xs.size() - 2;
  auto k = node.attr_ints("kernel_shape");
  DEEPEP_CHECK(k.size() == nd, node.describe(), ": kernel_shape needs ", nd, " values");
  auto s = node.attr_ints("strides", std::vector<int64_t>(nd, 1));
  auto p = node.attr_ints("pads", std::vector<int64_t>(2 * nd, 0));
  DEEPEP_CHECK(s.size() == nd && p.size() == 2 * nd, node.describe(), ": strides/pads sizes do not match");
  Shape out{xs[0], xs[1]};
  for (size_t i = 0; i < nd; ++i) out.push_back((xs[i + 2] - 1) * s[i] - p[i] - p[i + nd] + k[i]);
  return out;
}
}  // namespace

DEEPEP_DEFINE_OP(MaxUnpool) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    std::optional<SymShape> shape;
    if (const Tensor* os = ctx.constant(2)) {
      shape = to_sym_shape(os->to_int_vector());
    } else if (!ctx.has_input(2) && ctx.input(0).shape) {
      Shape xs;
      bool known = true;
      for (const Dim& d : *ctx.input(0).shape) {
        known = known && d.is_known();
        xs.push_back(d.value);
      }
      if (known) shape = to_sym_shape(unpool_shape(ctx.node, xs));
    }
    ctx.set(0, ctx.input(0).dtype, shape);
  };
  def.reference = [](KernelContext& ctx) {
    const Node& node = ctx.node;
    const Tensor& x = ctx.input(0);
    const Tensor& ind = ctx.input(1);
    DEEPEP_CHECK(ind.dtype() == DType::kInt64 && ind.shape() == x.shape(), node.describe(),
                 ": I must be int64 with X's shape ", shape_str(x.shape()));
    const Shape natural = unpool_shape(node, x.shape());
    Shape out = natural;
    if (ctx.has_input(2)) {
      out = ctx.input(2).to_int_vector();
      DEEPEP_CHECK(out.size() == natural.size(), node.describe(), ": output_shape ", shape_str(out),
                   " must have rank ", natural.size());
      for (int64_t d : out) DEEPEP_CHECK(d >= 0, node.describe(), ": negative output_shape");
    }
    dispatch_by_size(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      // Scatter into the natural shape, then place it at the origin of `out`.
      std::vector<T> buf(static_cast<size_t>(shape_numel(natural)), T(0));
      const int64_t total = int64_t(buf.size());
      const T* px = x.data<T>();
      const int64_t* pi = ind.data<int64_t>();
      for (int64_t i = 0, n = x.numel(); i < n; ++i) {
        DEEPEP_CHECK(pi[i] >= 0 && pi[i] < total, node.describe(), ": index ", pi[i],
                     " is out of range for output of ", total, " elements");
        buf[pi[i]] = px[i];
      }
      Tensor& y = ctx.output(0, x.dtype(), out);
      T* py = y.data<T>();
      std::fill(py, py + y.numel(), T(0));
      if (y.numel() == 0) return;
      const auto ost = strides_of(out), nst = strides_of(natural);
      for (int64_t i = 0; i < total; ++i) {
        int64_t rem = i, o = 0;
        bool inside = true;
        for (size_t dd = 0; dd < natural.size(); ++dd) {
          const int64_t c = rem / nst[dd];
          rem %= nst[dd];
          if (c >= out[dd]) inside = false;
          o += c * ost[dd];
        }
        if (inside) py[o] = buf[i];
      }
    });
  };
}
