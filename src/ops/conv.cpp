// Conv, ConvInteger and QLinearConv: im2col (skipped for 1x1 stride-1
// unpadded kernels, whose input already is the column matrix) and one GEMM per
// (image, group). Float32/16 and bfloat16 run the float GEMM; float64 and the
// integer forms run the plain GEMM. Also the spatial geometry, im2col and
// col2im shared with ConvTranspose, Col2Im, DeformConv and the pools.
#include <cmath>
#include <cstring>

#include "ops/gemm_util.h"

namespace deepep::ops {

int64_t SpatialGeom::in_size() const { return shape_numel(in); }
int64_t SpatialGeom::out_size() const { return shape_numel(out); }
int64_t SpatialGeom::k_size() const { return shape_numel(k); }

namespace {
std::vector<int64_t> attr_or(const Node& node, const char* name, size_t n, int64_t dflt) {
  std::vector<int64_t> v = node.attr_ints(name, {});
  if (v.empty()) v.assign(n, dflt);
  return v;
}
}  // namespace

SpatialGeom conv_geometry(const Node& node, const Shape& in_spatial, const std::vector<int64_t>& kernel,
                          bool ceil_mode) {
  SpatialGeom g;
  g.nd = int(in_spatial.size());
  const size_t nd = in_spatial.size();
  DEEPEP_CHECK(nd >= 1, node.describe(), ": input needs at least one spatial dimension");
  g.in = in_spatial;
  g.k = kernel;
  DEEPEP_CHECK(g.k.size() == nd, node.describe(), ": kernel has ", g.k.size(),
               " spatial dims, input has ", nd);
  g.s = attr_or(node, "strides", nd, 1);
  g.d = attr_or(node, "dilations", nd, 1);
  std::vector<int64_t> pads = attr_or(node, "pads", 2 * nd, 0);
  DEEPEP_CHECK(g.s.size() == nd && g.d.size() == nd && pads.size() == 2 * nd, node.describe(),
               ": strides/dilations need ", nd, " values and pads ", 2 * nd);
  for (size_t i = 0; i < nd; ++i) {
    DEEPEP_CHECK(g.s[i] >= 1 && g.d[i] >= 1 && g.k[i] >= 1, node.describe(),
                 ": kernel, strides and dilations must be positive");
    DEEPEP_CHECK(pads[i] >= 0 && pads[i + nd] >= 0, node.describe(), ": pads must be >= 0");
  }
  std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  g.pb.assign(nd, 0);
  g.pe.assign(nd, 0);
  g.out.assign(nd, 0);
  for (size_t i = 0; i < nd; ++i) {
    const int64_t eff = (g.k[i] - 1) * g.d[i] + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      g.out[i] = (g.in[i] + g.s[i] - 1) / g.s[i];
      const int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * g.s[i] + eff - g.in[i]);
      g.pb[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pe[i] = total - g.pb[i];
    } else if (auto_pad == "VALID") {
      g.out[i] = g.in[i] >= eff ? (g.in[i] - eff) / g.s[i] + 1 : 0;
    } else {
      DEEPEP_CHECK(auto_pad == "NOTSET" || auto_pad.empty(), node.describe(), ": unknown auto_pad '",
                   auto_pad, "'");
      g.pb[i] = pads[i];
      g.pe[i] = pads[i + nd];
      const int64_t span = g.in[i] + g.pb[i] + g.pe[i] - eff;
      if (span < 0) {
        g.out[i] = 0;
      } else if (ceil_mode) {
        g.out[i] = (span + g.s[i] - 1) / g.s[i] + 1;
        // The last window must start inside the input or the begin pad.
        if ((g.out[i] - 1) * g.s[i] >= g.in[i] + g.pb[i]) --g.out[i];
      } else {
        g.out[i] = span / g.s[i] + 1;
      }
    }
  }
  return g;
}

std::optional<SymShape> conv_like_shape(const InferContext& ctx, const Dim& channels,
                                        const std::vector<int64_t>& kernel, bool ceil_mode) {
  if (!ctx.has_input(0) || !ctx.input(0).shape) return std::nullopt;
  const SymShape& xs = *ctx.input(0).shape;
  if (xs.size() < 3) return std::nullopt;
  SymShape out{xs[0], channels};
  Shape in;
  bool known = !kernel.empty();
  for (size_t i = 2; i < xs.size(); ++i) {
    known = known && xs[i].is_known();
    in.push_back(xs[i].value);
  }
  if (known && kernel.size() == in.size()) {
    SpatialGeom g = conv_geometry(ctx.node, in, kernel, ceil_mode);
    for (int64_t o : g.out) out.push_back(Dim::known(o));
  } else {
    for (size_t i = 2; i < xs.size(); ++i) out.push_back(Dim{});
  }
  return out;
}

namespace {
// Geometry padded to 3 spatial dims (leading 1s) for the im2col loops.
struct Geom3 {
  int64_t in[3], k[3], s[3], d[3], p[3], out[3];
  explicit Geom3(const SpatialGeom& g) {
    const int off = 3 - g.nd;
    for (int i = 0; i < 3; ++i) {
      const int j = i - off;
      const bool real = j >= 0;
      in[i] = real ? g.in[j] : 1;
      k[i] = real ? g.k[j] : 1;
      s[i] = real ? g.s[j] : 1;
      d[i] = real ? g.d[j] : 1;
      p[i] = real ? g.pb[j] : 0;
      out[i] = real ? g.out[j] : 1;
    }
  }
};

// Walks the (channel, kernel offset) rows of the column matrix and, within
// each, the output rows r0..r1 (a row: one (od, oh) pair, OW columns); calls
// f(col_row_ptr, src_row_ptr_or_null, lo, hi, iw0, stride, OW) where output
// columns [lo, hi) read input column iw0 + ow * stride.
template <class T, class C, class F>
void walk_cols(T* x, int64_t channels, const SpatialGeom& sg, int64_t r0, int64_t r1, C* col, F&& f) {
  const Geom3 g(sg);
  const int64_t OW = g.out[2], OH = g.out[1], ncols = (r1 - r0) * OW;
  const int64_t W = g.in[2], H = g.in[1], D = g.in[0];
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t kd = 0; kd < g.k[0]; ++kd)
      for (int64_t kh = 0; kh < g.k[1]; ++kh)
        for (int64_t kw = 0; kw < g.k[2]; ++kw) {
          C* row = col + (((c * g.k[0] + kd) * g.k[1] + kh) * g.k[2] + kw) * ncols;
          const int64_t iw0 = kw * g.d[2] - g.p[2];
          // Output columns whose input column lies in [0, W).
          int64_t lo = iw0 >= 0 ? 0 : (-iw0 + g.s[2] - 1) / g.s[2];
          int64_t hi = W - iw0 <= 0 ? 0 : (W - iw0 + g.s[2] - 1) / g.s[2];
          lo = std::min(lo, OW);
          hi = std::clamp(hi, lo, OW);
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t od = r / OH, oh = r % OH;
            const int64_t id = od * g.s[0] - g.p[0] + kd * g.d[0];
            const int64_t ih = oh * g.s[1] - g.p[1] + kh * g.d[1];
            C* dst = row + (r - r0) * OW;
            const bool inside = id >= 0 && id < D && ih >= 0 && ih < H;
            f(dst, inside ? x + ((c * D + id) * H + ih) * W : nullptr, lo, hi, iw0, g.s[2], OW);
          }
        }
}

// im2col of output rows [r0, r1) only: a [channels*k, (r1-r0)*OW] block.
template <class T>
void im2col_rows(const T* x, int64_t channels, const SpatialGeom& g, int64_t r0, int64_t r1, T* col) {
  walk_cols(x, channels, g, r0, r1, col,
            [](T* dst, const T* src, int64_t lo, int64_t hi, int64_t iw0, int64_t sw, int64_t OW) {
              if (!src) {
                std::fill(dst, dst + OW, T(0));
                return;
              }
              std::fill(dst, dst + lo, T(0));
              if (sw == 1) std::copy(src + iw0 + lo, src + iw0 + hi, dst + lo);
              else
                for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[iw0 + ow * sw];
              std::fill(dst + hi, dst + OW, T(0));
            });
}

int64_t out_rows(const SpatialGeom& g) {
  int64_t r = 1;
  for (int i = 0; i + 1 < g.nd; ++i) r *= g.out[i];
  return r;
}
}  // namespace

template <class T>
void im2col(const T* x, int64_t channels, const SpatialGeom& g, T* col) {
  im2col_rows(x, channels, g, 0, out_rows(g), col);
}

template <class T>
void col2im(const T* col, int64_t channels, const SpatialGeom& g, T* y) {
  walk_cols(y, channels, g, 0, out_rows(g), col,
            [](const T* src, T* dst, int64_t lo, int64_t hi, int64_t iw0, int64_t sw, int64_t) {
              if (!dst) return;
              for (int64_t ow = lo; ow < hi; ++ow) dst[iw0 + ow * sw] = T(dst[iw0 + ow * sw] + src[ow]);
            });
}

template void im2col<float>(const float*, int64_t, const SpatialGeom&, float*);
template void im2col<double>(const double*, int64_t, const SpatialGeom&, double*);
template void im2col<int32_t>(const int32_t*, int64_t, const SpatialGeom&, int32_t*);
template void col2im<float>(const float*, int64_t, const SpatialGeom&, float*);
template void col2im<double>(const double*, int64_t, const SpatialGeom&, double*);

namespace {

// Shapes of a conv node on concrete inputs.
struct ConvShapes {
  int64_t N, C, M, group, Cg, Mg;
  SpatialGeom g;
  Shape y;
};

ConvShapes conv_shapes(const Node& node, const Shape& xs, const Shape& ws) {
  DEEPEP_CHECK(xs.size() >= 3, node.describe(), ": X must be [N, C, spatial...], got ", shape_str(xs));
  DEEPEP_CHECK(ws.size() == xs.size(), node.describe(), ": W ", shape_str(ws),
               " must have the rank of X ", shape_str(xs));
  DEEPEP_CHECK(xs.size() <= 5, node.describe(), ": at most 3 spatial dimensions are supported, got ",
               xs.size() - 2);
  ConvShapes s;
  s.N = xs[0];
  s.C = xs[1];
  s.M = ws[0];
  s.group = node.attr_int("group", 1);
  DEEPEP_CHECK(s.group >= 1 && s.C % s.group == 0 && s.M % s.group == 0, node.describe(), ": group ",
               s.group, " must divide the input channels ", s.C, " and output channels ", s.M);
  s.Cg = s.C / s.group;
  s.Mg = s.M / s.group;
  DEEPEP_CHECK(ws[1] == s.Cg, node.describe(), ": W ", shape_str(ws), " needs ", s.Cg,
               " input channels per group (X ", shape_str(xs), ", group ", s.group, ")");
  std::vector<int64_t> kernel(ws.begin() + 2, ws.end());
  if (node.has_attr("kernel_shape")) {
    auto ks = node.attr_ints("kernel_shape");
    DEEPEP_CHECK(ks == kernel, node.describe(), ": kernel_shape attribute does not match W ",
                 shape_str(ws));
  }
  s.g = conv_geometry(node, Shape(xs.begin() + 2, xs.end()), kernel);
  s.y = {s.N, s.M};
  for (int64_t o : s.g.out) s.y.push_back(o);
  return s;
}

bool is_pointwise(const SpatialGeom& g) {
  for (int i = 0; i < g.nd; ++i)
    if (g.k[i] != 1 || g.s[i] != 1 || g.pb[i] != 0 || g.pe[i] != 0) return false;
  return true;
}

// y[n, m, :] = sum W[m] * im2col(x[n, group]) for every image and group;
// C is the compute type (float, double or int32 with int64 accumulation).
// The column matrix is built in chunks of output rows small enough to stay
// in cache; (image, group, chunk) jobs run one per thread when there are
// enough of them, else in turn with a threaded GEMM each.
// Depthwise-style convs (one input channel per group): each output plane is
// a sum of shifted, scaled input rows; no column matrix.
template <class C>
void conv_depthwise(const ConvShapes& s, const C* x, const C* w, C* y) {
  const SpatialGeom& sg = s.g;
  const Geom3 g(sg);
  const int64_t isz = sg.in_size(), osz = sg.out_size(), ksz = sg.k_size();
  const int64_t OW = g.out[2], OH = g.out[1], W = g.in[2], H = g.in[1], D = g.in[0];
  const int64_t planes = s.N * s.M;
  const double work = double(planes) * double(osz) * double(ksz);
  parallel_for(planes, threads_for_work(work), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      const int64_t n = pl / s.M, m = pl % s.M, gi = m / s.Mg;
      const C* xp = x + (n * s.C + gi) * isz;
      C* yp = y + pl * osz;
      std::fill(yp, yp + osz, C(0));
      for (int64_t kd = 0; kd < g.k[0]; ++kd)
        for (int64_t kh = 0; kh < g.k[1]; ++kh)
          for (int64_t kw = 0; kw < g.k[2]; ++kw) {
            const C wv = w[m * ksz + (kd * g.k[1] + kh) * g.k[2] + kw];
            const int64_t iw0 = kw * g.d[2] - g.p[2], sw = g.s[2];
            int64_t lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
            int64_t hi = W - iw0 <= 0 ? 0 : (W - iw0 + sw - 1) / sw;
            lo = std::min(lo, OW);
            hi = std::clamp(hi, lo, OW);
            for (int64_t od = 0; od < g.out[0]; ++od) {
              const int64_t id = od * g.s[0] - g.p[0] + kd * g.d[0];
              if (id < 0 || id >= D) continue;
              for (int64_t oh = 0; oh < OH; ++oh) {
                const int64_t ih = oh * g.s[1] - g.p[1] + kh * g.d[1];
                if (ih < 0 || ih >= H) continue;
                const C* __restrict src = xp + (id * H + ih) * W;
                C* __restrict dst = yp + (od * OH + oh) * OW;
                if (sw == 1)
                  for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += wv * src[iw0 + ow];
                else
                  for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += wv * src[iw0 + ow * sw];
              }
            }
          }
    }
  });
}

template <class C>
void conv_core(const ConvShapes& s, const C* x, const C* w, C* y) {
  const SpatialGeom& g = s.g;
  const int64_t isz = g.in_size(), osz = g.out_size(), ksz = g.k_size();
  const int64_t kdim = s.Cg * ksz;
  const bool direct = is_pointwise(g);
  if constexpr (is_floating_v<C>) {
    if (s.Cg == 1 && s.group > 1 && !direct) return conv_depthwise(s, x, w, y);
  }
  const int64_t OW = g.out.back(), rows = out_rows(g);
  int64_t chunk_rows = rows;
  if (!direct && OW > 0) {
    const int64_t target_cols = std::max<int64_t>(256, (int64_t(1) << 18) / std::max<int64_t>(kdim, 1));
    chunk_rows = std::clamp<int64_t>(target_cols / OW, 1, std::max<int64_t>(rows, 1));
  }
  const int64_t nchunks = rows > 0 ? (rows + chunk_rows - 1) / chunk_rows : 1;
  const int64_t jobs = s.N * s.group * nchunks;
  const double total_work = double(s.N * s.group) * double(s.Mg) * double(osz) * double(kdim);
  const int threads = threads_for_work(total_work);
  const bool split_jobs = threads > 1 && jobs >= 2 * threads;
  parallel_for(jobs, split_jobs ? threads : 1, [&](int64_t b, int64_t e) {
    std::vector<C> col(direct ? 0 : static_cast<size_t>(kdim * std::min(chunk_rows, rows) * OW));
    for (int64_t job = b; job < e; ++job) {
      const int64_t ch = job % nchunks, ng = job / nchunks;
      const int64_t n = ng / s.group, gi = ng % s.group;
      const int64_t r0 = ch * chunk_rows, r1 = std::min(rows, r0 + chunk_rows);
      const int64_t c0 = direct ? 0 : r0 * OW, ncols = direct ? osz : (r1 - r0) * OW;
      const C* xg = x + (n * s.C + gi * s.Cg) * isz;
      const C* cols = xg;
      if (!direct) {
        im2col_rows(xg, s.Cg, g, r0, r1, col.data());
        cols = col.data();
      }
      const C* wg = w + gi * s.Mg * kdim;
      C* yg = y + (n * s.M + gi * s.Mg) * osz + c0;
      if constexpr (std::is_same_v<C, float>) {
        sgemm(false, false, s.Mg, ncols, kdim, 1.f, wg, kdim, cols, ncols, 0.f, yg, osz,
              split_jobs ? 1 : 0);
      } else {
        gemm_generic<acc_t<C>>(false, false, s.Mg, ncols, kdim, wg, kdim, cols, ncols,
                               [&](int64_t i, int64_t j, auto acc) { yg[i * osz + j] = C(acc); });
      }
    }
  });
}

void conv_kernel(KernelContext& ctx) {
  const Node& node = ctx.node;
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  DEEPEP_CHECK(x.dtype() == w.dtype(), node.describe(), ": X and W dtypes differ (",
               dtype_name(x.dtype()), " vs ", dtype_name(w.dtype()), ")");
  ConvShapes s = conv_shapes(node, x.shape(), w.shape());
  if (bias) {
    DEEPEP_CHECK(bias->dtype() == x.dtype() && bias->numel() == s.M, node.describe(), ": B must be ",
                 dtype_name(x.dtype()), "[", s.M, "], got ", dtype_name(bias->dtype()),
                 shape_str(bias->shape()));
  }
  Tensor& y = ctx.output(0, x.dtype(), s.y);
  const int64_t osz = s.g.out_size();
  if (y.numel() == 0) return;
  dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Cmp = std::conditional_t<std::is_same_v<T, double>, double, float>;
    T* py = y.data<T>();
    if constexpr (std::is_same_v<T, Cmp>) {
      conv_core<Cmp>(s, x.data<T>(), w.data<T>(), py);
      if (bias)
        for (int64_t n = 0; n < s.N; ++n)
          for (int64_t m = 0; m < s.M; ++m) {
            const T b = bias->data<T>()[m];
            T* p = py + (n * s.M + m) * osz;
            for (int64_t i = 0; i < osz; ++i) p[i] += b;
          }
    } else {
      std::vector<float> fx = to_float_vec(x.data<T>(), x.numel());
      std::vector<float> fw = to_float_vec(w.data<T>(), w.numel());
      std::vector<float> fy(static_cast<size_t>(y.numel()));
      conv_core<float>(s, fx.data(), fw.data(), fy.data());
      for (int64_t n = 0; n < s.N; ++n)
        for (int64_t m = 0; m < s.M; ++m) {
          const float b = bias ? float(bias->data<T>()[m]) : 0.f;
          const int64_t off = (n * s.M + m) * osz;
          for (int64_t i = 0; i < osz; ++i) py[off + i] = T(fy[off + i] + b);
        }
    }
  });
}

std::vector<int64_t> kernel_from_w(const InferContext& ctx, int wi) {
  if (ctx.node.has_attr("kernel_shape")) return ctx.node.attr_ints("kernel_shape");
  if (!ctx.has_input(wi) || !ctx.input(wi).shape) return {};
  std::vector<int64_t> k;
  const SymShape& ws = *ctx.input(wi).shape;
  for (size_t i = 2; i < ws.size(); ++i) {
    if (!ws[i].is_known()) return {};
    k.push_back(ws[i].value);
  }
  return k;
}

Dim out_channels(const InferContext& ctx, int wi) {
  if (!ctx.has_input(wi) || !ctx.input(wi).shape || ctx.input(wi).shape->empty()) return Dim{};
  return (*ctx.input(wi).shape)[0];
}

// Integer input (uint8/int8) minus a zero point (scalar, or per output
// channel for weights), as int32.
std::vector<int32_t> centered(const Tensor& t, const Tensor* zp, int64_t per_axis0, const Node& node,
                              const char* what) {
  std::vector<int32_t> out(static_cast<size_t>(t.numel()));
  const int64_t n = t.numel();
  const int64_t inner = per_axis0 > 0 && t.rank() > 0 && t.dim(0) > 0 ? n / t.dim(0) : n;
  if (zp) {
    DEEPEP_CHECK(zp->dtype() == t.dtype(), node.describe(), ": ", what, " zero point has dtype ",
                 dtype_name(zp->dtype()), ", expected ", dtype_name(t.dtype()));
    DEEPEP_CHECK(zp->numel() == 1 || (per_axis0 > 0 && zp->numel() == per_axis0), node.describe(),
                 ": ", what, " zero point must be a scalar", per_axis0 > 0 ? " or per output channel" : "",
                 ", got ", shape_str(zp->shape()));
  }
  dispatch_int(t.dtype(), node.op_type.c_str(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (sizeof(T) == 1) {
      const T* p = t.data<T>();
      const T* z = zp ? zp->data<T>() : nullptr;
      for (int64_t i = 0; i < n; ++i) {
        const int32_t zv = !z ? 0 : zp->numel() == 1 ? int32_t(z[0]) : int32_t(z[i / inner]);
        out[i] = int32_t(p[i]) - zv;
      }
    } else {
      DEEPEP_FAIL(node.describe(), ": ", what, " must be int8 or uint8, got ", dtype_name(t.dtype()));
    }
  });
  return out;
}

// The int32 convolution of zero-point-centered X and W.
Tensor int_conv(const KernelContext& ctx, const Tensor& x, const Tensor* xzp, const Tensor& w,
                const Tensor* wzp, ConvShapes& s) {
  s = conv_shapes(ctx.node, x.shape(), w.shape());
  std::vector<int32_t> xi = centered(x, xzp, 0, ctx.node, "X");
  std::vector<int32_t> wi = centered(w, wzp, s.M, ctx.node, "W");
  Tensor y(DType::kInt32, s.y);
  if (y.numel() > 0) conv_core<int32_t>(s, xi.data(), wi.data(), y.data<int32_t>());
  return y;
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Conv) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    ctx.set(0, ctx.input(0).dtype, conv_like_shape(ctx, out_channels(ctx, 1), kernel_from_w(ctx, 1)));
  };
  def.reference = conv_kernel;
  def.cost = [](const Node& n, const std::vector<Shape>& in, const std::vector<Shape>& out) {
    Cost c;
    c.bytes = bytes_moved(in, out);
    if (in.size() >= 2 && !out.empty()) c.flops = 2.0 * double(shape_numel(out[0])) *
                                                   double(shape_numel(in[1]) / std::max<int64_t>(1, in[1][0]));
    return c;
  };
}

DEEPEP_DEFINE_OP(ConvInteger) {
  def.infer = [](InferContext& ctx) {
    ctx.set(0, DType::kInt32, conv_like_shape(ctx, out_channels(ctx, 1), kernel_from_w(ctx, 1)));
  };
  def.reference = [](KernelContext& ctx) {
    ConvShapes s;
    Tensor y = int_conv(ctx, ctx.input(0), ctx.has_input(2) ? &ctx.input(2) : nullptr, ctx.input(1),
                        ctx.has_input(3) ? &ctx.input(3) : nullptr, s);
    ctx.set_output(0, std::move(y));
  };
}

DEEPEP_DEFINE_OP(QLinearConv) {
  def.infer = [](InferContext& ctx) {
    DType dt = ctx.has_input(7) ? ctx.input(7).dtype : ctx.has_input(0) ? ctx.input(0).dtype : DType::kUndefined;
    ctx.set(0, dt, conv_like_shape(ctx, out_channels(ctx, 3), kernel_from_w(ctx, 3)));
  };
  def.reference = [](KernelContext& ctx) {
    const Node& node = ctx.node;
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(3);
    const Tensor& xs = ctx.input(1);
    const Tensor& ws = ctx.input(4);
    const Tensor& ys = ctx.input(6);
    const Tensor* yzp = ctx.has_input(7) ? &ctx.input(7) : nullptr;
    const Tensor* bias = ctx.has_input(8) ? &ctx.input(8) : nullptr;
    for (const Tensor* sc : {&xs, &ws, &ys})
      DEEPEP_CHECK(sc->dtype() == DType::kFloat32, node.describe(), ": scales must be float32, got ",
                   dtype_name(sc->dtype()));
    ConvShapes s;
    Tensor acc = int_conv(ctx, x, &ctx.input(2), w, ctx.has_input(5) ? &ctx.input(5) : nullptr, s);
    DEEPEP_CHECK(xs.numel() == 1 && ys.numel() == 1, node.describe(),
                 ": x_scale and y_scale must be scalars");
    DEEPEP_CHECK(ws.numel() == 1 || ws.numel() == s.M, node.describe(),
                 ": w_scale must be a scalar or have one value per output channel (", s.M, ")");
    if (bias)
      DEEPEP_CHECK(bias->dtype() == DType::kInt32 && bias->numel() == s.M, node.describe(),
                   ": B must be int32[", s.M, "]");
    const DType out_dt = yzp ? yzp->dtype() : x.dtype();
    DEEPEP_CHECK(out_dt == DType::kUInt8 || out_dt == DType::kInt8, node.describe(),
                 ": output must be int8 or uint8, got ", dtype_name(out_dt));
    const double zp = yzp ? yzp->get_double(0) : 0.0;
    const double lo = out_dt == DType::kInt8 ? -128 : 0, hi = out_dt == DType::kInt8 ? 127 : 255;
    Tensor& y = ctx.output(0, out_dt, s.y);
    const int64_t osz = s.g.out_size();
    const float xsv = xs.data<float>()[0], ysv = ys.data<float>()[0];
    const int32_t* a = acc.data<int32_t>();
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t m = 0; m < s.M; ++m) {
        const float scale = xsv * ws.data<float>()[ws.numel() == 1 ? 0 : m] / ysv;
        const int32_t b = bias ? bias->data<int32_t>()[m] : 0;
        const int64_t off = (n * s.M + m) * osz;
        for (int64_t i = 0; i < osz; ++i) {
          const double r = std::nearbyint(std::clamp(double(a[off + i] + b) * scale + zp, lo, hi));
          if (out_dt == DType::kInt8) y.data<int8_t>()[off + i] = int8_t(r);
          else y.data<uint8_t>()[off + i] = uint8_t(r);
        }
      }
  };
}
