// Resize (opsets 10/11/13/18/19) and the deprecated Upsample (7/9).
//
// Resizing is separable: each resized axis maps output index j to a source
// coordinate x (coordinate_transformation_mode), and the output is a weighted
// sum of taps around x (nearest / linear / cubic, optionally antialiased).
// Nearest is a gather on the native type (exact for every dtype); linear and
// cubic run axis by axis in double and are cast back (integers are rounded
// half-to-even and saturated, like the ONNX reference).
#include <cmath>
#include <limits>
#include <string>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

enum class Mode { kNearest, kLinear, kCubic };
enum class Ctm { kHalfPixel, kPytorchHalfPixel, kAlignCorners, kAsymmetric, kTfCropAndResize, kHalfPixelSymmetric, kTfHalfPixelForNn };
enum class NearestMode { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil, kSimple };

struct Params {
  Mode mode = Mode::kNearest;
  Ctm ctm = Ctm::kHalfPixel;
  NearestMode nearest = NearestMode::kRoundPreferFloor;
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0.0;
  bool antialias = false;
  // The ONNX reference does roi arithmetic in the roi's own precision; a
  // float32 roi is computed in float so coordinates tie exactly like there.
  bool roi_single = false;
};

// The per-axis plan: output size, the scale used by the coordinate transform,
// the roi of that axis, and whether the axis is resized at all.
struct Plan {
  Shape out;
  std::vector<double> scale;
  std::vector<double> roi_start, roi_end;
  std::vector<int64_t> axes;  // processing order
};

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Params read_params(const Node& n, bool legacy) {
  Params p;
  std::string mode = lower(n.attr_string("mode", "nearest"));
  if (mode == "nearest") p.mode = Mode::kNearest;
  else if (mode == "linear" || mode == "bilinear") p.mode = Mode::kLinear;
  else if (mode == "cubic" || (mode == "bicubic" && !legacy)) p.mode = Mode::kCubic;
  else DEEPEP_FAIL(n.describe(), ": unsupported mode '", mode, "'");
  if (legacy) {
    p.ctm = Ctm::kAsymmetric;
    p.nearest = NearestMode::kSimple;
    return p;
  }
  std::string ctm = n.attr_string("coordinate_transformation_mode", "half_pixel");
  if (ctm == "half_pixel") p.ctm = Ctm::kHalfPixel;
  else if (ctm == "pytorch_half_pixel") p.ctm = Ctm::kPytorchHalfPixel;
  else if (ctm == "align_corners") p.ctm = Ctm::kAlignCorners;
  else if (ctm == "asymmetric") p.ctm = Ctm::kAsymmetric;
  else if (ctm == "tf_crop_and_resize") p.ctm = Ctm::kTfCropAndResize;
  else if (ctm == "half_pixel_symmetric") p.ctm = Ctm::kHalfPixelSymmetric;
  else if (ctm == "tf_half_pixel_for_nn") p.ctm = Ctm::kTfHalfPixelForNn;  // opset 11 only
  else DEEPEP_FAIL(n.describe(), ": unsupported coordinate_transformation_mode '", ctm, "'");
  std::string nm = n.attr_string("nearest_mode", "round_prefer_floor");
  if (nm == "round_prefer_floor") p.nearest = NearestMode::kRoundPreferFloor;
  else if (nm == "round_prefer_ceil") p.nearest = NearestMode::kRoundPreferCeil;
  else if (nm == "floor") p.nearest = NearestMode::kFloor;
  else if (nm == "ceil") p.nearest = NearestMode::kCeil;
  else DEEPEP_FAIL(n.describe(), ": unsupported nearest_mode '", nm, "'");
  p.cubic_a = n.attr_float("cubic_coeff_a", -0.75f);
  p.exclude_outside = n.attr_int("exclude_outside", 0) != 0;
  p.extrapolation = n.attr_float("extrapolation_value", 0.0f);
  p.antialias = n.attr_int("antialias", 0) != 0;
  DEEPEP_CHECK(!(p.antialias && p.mode == Mode::kNearest), n.describe(),
               ": antialias is not defined for mode 'nearest'");
  return p;
}

// What the node's scales/sizes/roi/axes say, independent of the data layout.
struct Request {
  std::optional<std::vector<double>> scales;
  std::optional<std::vector<int64_t>> sizes;
  std::vector<double> roi;
  std::vector<int64_t> axes;  // empty: all
};

// Builds the plan for an input of shape `in` (all dims known).
Plan make_plan(const Node& n, const Shape& in, const Request& rq) {
  const int64_t r = int64_t(in.size());
  std::vector<int64_t> axes = rq.axes;
  if (axes.empty()) {
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  } else {
    std::vector<bool> seen(size_t(r), false);
    for (auto& a : axes) {
      a = normalize_axis(a, r, n);
      DEEPEP_CHECK(!seen[size_t(a)], n.describe(), ": axes has a repeated axis ", a);
      seen[size_t(a)] = true;
    }
  }
  const size_t na = axes.size();
  Plan p;
  p.out = in;
  p.scale.assign(size_t(r), 1.0);
  p.roi_start.assign(size_t(r), 0.0);
  p.roi_end.assign(size_t(r), 1.0);
  p.axes = axes;
  if (!rq.roi.empty()) {
    DEEPEP_CHECK(rq.roi.size() == 2 * na, n.describe(), ": roi has ", rq.roi.size(),
                 " values, expected ", 2 * na);
    for (size_t i = 0; i < na; ++i) {
      p.roi_start[size_t(axes[i])] = rq.roi[i];
      p.roi_end[size_t(axes[i])] = rq.roi[na + i];
    }
  }
  DEEPEP_CHECK(rq.scales.has_value() != rq.sizes.has_value(), n.describe(),
               ": exactly one of 'scales' and 'sizes' must be given");
  if (rq.sizes) {
    DEEPEP_CHECK(rq.sizes->size() == na, n.describe(), ": sizes has ", rq.sizes->size(),
                 " values, expected ", na);
    std::string policy = n.attr_string("keep_aspect_ratio_policy", "stretch");
    for (size_t i = 0; i < na; ++i)
      DEEPEP_CHECK((*rq.sizes)[i] >= 0, n.describe(), ": sizes must be non-negative");
    if (policy == "stretch") {
      for (size_t i = 0; i < na; ++i) {
        const int64_t a = axes[i];
        p.out[size_t(a)] = (*rq.sizes)[i];
        p.scale[size_t(a)] = in[size_t(a)] > 0 ? double((*rq.sizes)[i]) / double(in[size_t(a)]) : 1.0;
      }
    } else {
      DEEPEP_CHECK(policy == "not_larger" || policy == "not_smaller", n.describe(),
                   ": unsupported keep_aspect_ratio_policy '", policy, "'");
      double s = policy == "not_larger" ? std::numeric_limits<double>::infinity() : 0.0;
      for (size_t i = 0; i < na; ++i) {
        const int64_t a = axes[i];
        double si = in[size_t(a)] > 0 ? double((*rq.sizes)[i]) / double(in[size_t(a)]) : 1.0;
        s = policy == "not_larger" ? std::min(s, si) : std::max(s, si);
      }
      for (size_t i = 0; i < na; ++i) {
        const int64_t a = axes[i];
        p.scale[size_t(a)] = s;
        p.out[size_t(a)] = int64_t(s * double(in[size_t(a)]) + 0.5);
      }
    }
  } else {
    DEEPEP_CHECK(rq.scales->size() == na, n.describe(), ": scales has ", rq.scales->size(),
                 " values, expected ", na);
    for (size_t i = 0; i < na; ++i) {
      const int64_t a = axes[i];
      const double s = (*rq.scales)[i];
      DEEPEP_CHECK(s > 0, n.describe(), ": scales must be positive, got ", s);
      p.scale[size_t(a)] = s;
      p.out[size_t(a)] = int64_t(std::floor(s * double(in[size_t(a)])));
    }
  }
  return p;
}

bool is_close(double a, double b) { return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b)); }

bool identity_axis(const Plan& p, const Shape& in, int64_t a) {
  const size_t i = size_t(a);
  return is_close(p.scale[i], 1.0) && p.out[i] == in[i] && std::fabs(p.roi_start[i]) <= 1e-9 &&
         is_close(p.roi_end[i], 1.0);
}

// Source coordinate of output index j; sets `extrapolate` for tf_crop_and_resize
// coordinates outside the input.
double source_coord(const Params& prm, double j, double scale, int64_t in, int64_t out_int,
                    double roi0, double roi1, bool& extrapolate) {
  const double out_w = scale * double(in);
  extrapolate = false;
  switch (prm.ctm) {
    case Ctm::kAlignCorners: return out_w == 1 ? 0.0 : j * double(in - 1) / (out_w - 1);
    case Ctm::kAsymmetric: return j / scale;
    case Ctm::kTfCropAndResize: {
      double x;
      if (prm.roi_single) {
        const float span = float(roi1) - float(roi0);
        x = out_w == 1 ? double(span * float(in - 1) / 2.0f) : j * double(span) * double(in - 1) / (out_w - 1);
        x += double(float(roi0) * float(in - 1));
      } else {
        x = out_w == 1 ? (roi1 - roi0) * double(in - 1) / 2 : j * (roi1 - roi0) * double(in - 1) / (out_w - 1);
        x += roi0 * double(in - 1);
      }
      extrapolate = x < 0 || x > double(in - 1);
      return x;
    }
    case Ctm::kPytorchHalfPixel: return out_w == 1 ? -0.5 : (j + 0.5) / scale - 0.5;
    case Ctm::kHalfPixel: return (j + 0.5) / scale - 0.5;
    case Ctm::kTfHalfPixelForNn: return (j + 0.5) / scale;
    case Ctm::kHalfPixelSymmetric: {
      const double adjustment = double(out_int) / out_w;
      const double center = double(in) / 2;
      const double offset = center * (1 - adjustment);
      return offset + (j + 0.5) / scale - 0.5;
    }
  }
  return 0;
}

// Interpolation weights for taps at base + start + k (k = 0..n-1), where the
// source coordinate is base + ratio with ratio in (0, 1].
int64_t coeffs(const Params& prm, double ratio, double scale, std::vector<double>& c) {
  c.clear();
  if (prm.mode == Mode::kLinear) {
    if (!prm.antialias) {
      c = {1 - ratio, ratio};
      return 0;
    }
    const double s = std::min(scale, 1.0);
    const int64_t start = int64_t(std::floor(-1 / s) + 1);
    const int64_t n = 2 - 2 * start;
    double sum = 0;
    for (int64_t k = 0; k < n; ++k) {
      double v = 1 - std::fabs((double(start + k) - ratio) * s);
      v = std::clamp(v, 0.0, 1.0);
      c.push_back(v);
      sum += v;
    }
    for (auto& v : c) v /= sum;
    return start;
  }
  // cubic
  const double A = prm.cubic_a;
  if (!prm.antialias) {
    const double r = ratio;
    c = {((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
         ((A + 2) * r - (A + 3)) * r * r + 1,
         ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1,
         ((A * ((1 - r) + 1) - 5 * A) * ((1 - r) + 1) + 8 * A) * ((1 - r) + 1) - 4 * A};
    return -1;
  }
  const double s = std::min(scale, 1.0);
  const int64_t start = int64_t(std::floor(-2 / s) + 1);
  const int64_t end = 2 - start;
  double sum = 0;
  for (int64_t i = start; i < end; ++i) {
    double x = std::fabs(s * (double(i) - ratio));
    double v = 0;
    if (x <= 1) v = (A + 2) * x * x * x - (A + 3) * x * x + 1;
    else if (x < 2) v = A * x * x * x - 5 * A * x * x + 8 * A * x - 4 * A;
    c.push_back(v);
    sum += v;
  }
  for (auto& v : c) v /= sum;
  return start;
}

// Splits x into base + ratio with ratio in (0, 1] (an integer x gives ratio 1).
void split_coord(double x, int64_t& base, double& ratio) {
  const double f = std::floor(x);
  base = int64_t(f);
  ratio = x - f;
  if (ratio == 0) {
    ratio = 1;
    base -= 1;
  }
}

// Nearest: the source index of output j along one axis (-1: extrapolate).
int64_t nearest_index(const Params& prm, double x, double scale, int64_t in) {
  int64_t base;
  double ratio;
  split_coord(x, base, ratio);
  bool upper = false;
  if (ratio == 1) {
    upper = true;
  } else {
    switch (prm.nearest) {
      case NearestMode::kRoundPreferFloor: upper = ratio > 0.5; break;
      case NearestMode::kRoundPreferCeil: upper = ratio >= 0.5; break;
      case NearestMode::kFloor: upper = false; break;
      case NearestMode::kCeil: upper = true; break;
      case NearestMode::kSimple: upper = scale < 1; break;
    }
  }
  return std::clamp<int64_t>(upper ? base + 1 : base, 0, in - 1);
}

template <class T>
T saturate_from_double(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (is_floating_v<T>) {
    return T(v);
  } else {
    if (std::isnan(v)) return T(0);
    v = std::nearbyint(v);
    const double lo = double(std::numeric_limits<T>::lowest());
    const double hi = double(std::numeric_limits<T>::max());
    if (v <= lo) return std::numeric_limits<T>::lowest();
    if (v >= hi) return std::numeric_limits<T>::max();
    return T(v);
  }
}

void run_resize(KernelContext& ctx, const Params& prm, const Request& rq) {
  const Node& n = ctx.node;
  const Tensor& X = ctx.input(0);
  const Shape& in = X.shape();
  const int64_t r = X.rank();
  Plan plan = make_plan(n, in, rq);
  for (int64_t a = 0; a < r; ++a)
    DEEPEP_CHECK(in[size_t(a)] > 0 || plan.out[size_t(a)] == 0, n.describe(),
                 ": cannot resize an empty axis ", a, " to size ", plan.out[size_t(a)]);
  Tensor& Y = ctx.output(0, X.dtype(), plan.out);
  if (Y.numel() == 0) return;

  if (prm.mode == Mode::kNearest) {
    // Per-axis source index maps, then one gather.
    std::vector<std::vector<int64_t>> map(static_cast<size_t>(r));
    for (int64_t a = 0; a < r; ++a) {
      auto& m = map[size_t(a)];
      m.resize(size_t(plan.out[size_t(a)]));
      const bool ident = identity_axis(plan, in, a);
      for (int64_t j = 0; j < plan.out[size_t(a)]; ++j) {
        if (ident) {
          m[size_t(j)] = j;
          continue;
        }
        bool ext;
        double x = source_coord(prm, double(j), plan.scale[size_t(a)], in[size_t(a)], plan.out[size_t(a)],
                                plan.roi_start[size_t(a)], plan.roi_end[size_t(a)], ext);
        m[size_t(j)] = ext ? -1 : nearest_index(prm, x, plan.scale[size_t(a)], in[size_t(a)]);
      }
    }
    const auto ist = strides_of(in);
    dispatch_all(X.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* src = X.data<T>();
      T* dst = Y.data<T>();
      const T ext_val = saturate_from_double<T>(prm.extrapolation);
      std::vector<int64_t> idx(size_t(r), 0);
      for (int64_t o = 0, total = Y.numel(); o < total; ++o) {
        int64_t off = 0;
        bool ext = false;
        for (int64_t a = 0; a < r; ++a) {
          int64_t s = map[size_t(a)][size_t(idx[size_t(a)])];
          if (s < 0) ext = true;
          off += s * ist[size_t(a)];
        }
        dst[o] = ext ? ext_val : src[off];
        for (int64_t a = r - 1; a >= 0; --a) {
          if (++idx[size_t(a)] < plan.out[size_t(a)]) break;
          idx[size_t(a)] = 0;
        }
      }
    });
    return;
  }

  // Linear / cubic: separable passes in double.
  DEEPEP_CHECK(X.dtype() != DType::kBool, n.describe(), ": linear and cubic modes need a numeric input, got bool");
  std::vector<double> buf(size_t(X.numel()));
  dispatch_numeric(X.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = X.data<T>();
    for (size_t i = 0; i < buf.size(); ++i) {
      if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) buf[i] = double(float(p[i]));
      else buf[i] = double(p[i]);
    }
  });
  Shape cur = in;
  std::vector<double> c;
  for (int64_t a : plan.axes) {
    if (identity_axis(plan, in, a)) continue;
    const int64_t iw = cur[size_t(a)], ow = plan.out[size_t(a)];
    const double scale = plan.scale[size_t(a)];
    // Taps of every output position along this axis.
    std::vector<std::vector<std::pair<int64_t, double>>> taps(static_cast<size_t>(ow));
    std::vector<bool> ext(size_t(ow), false);
    for (int64_t j = 0; j < ow; ++j) {
      bool e;
      double x = source_coord(prm, double(j), scale, iw, ow, plan.roi_start[size_t(a)],
                              plan.roi_end[size_t(a)], e);
      if (e) {
        ext[size_t(j)] = true;
        continue;
      }
      int64_t base;
      double ratio;
      split_coord(x, base, ratio);
      int64_t start = coeffs(prm, ratio, scale, c);
      if (prm.exclude_outside) {
        double sum = 0;
        for (size_t k = 0; k < c.size(); ++k) {
          int64_t t = base + start + int64_t(k);
          if (t < 0 || t >= iw) c[k] = 0;
          sum += c[k];
        }
        if (sum != 0)
          for (auto& v : c) v /= sum;
      }
      auto& tj = taps[size_t(j)];
      for (size_t k = 0; k < c.size(); ++k) {
        int64_t t = std::clamp<int64_t>(base + start + int64_t(k), 0, iw - 1);
        if (c[k] != 0) tj.emplace_back(t, c[k]);
      }
    }
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < a; ++i) outer *= cur[size_t(i)];
    for (int64_t i = a + 1; i < r; ++i) inner *= cur[size_t(i)];
    std::vector<double> nb(size_t(outer * ow * inner), 0.0);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < ow; ++j) {
        double* dst = &nb[size_t((o * ow + j) * inner)];
        if (ext[size_t(j)]) {
          std::fill(dst, dst + inner, prm.extrapolation);
          continue;
        }
        for (const auto& [t, w] : taps[size_t(j)]) {
          const double* src = &buf[size_t((o * iw + t) * inner)];
          for (int64_t i = 0; i < inner; ++i) dst[i] += w * src[i];
        }
      }
    buf.swap(nb);
    cur[size_t(a)] = ow;
  }
  dispatch_numeric(X.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = Y.data<T>();
    for (size_t i = 0; i < buf.size(); ++i) p[i] = saturate_from_double<T>(buf[i]);
  });
}

std::vector<double> doubles_of(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.get_double(i);
  return v;
}

// Reads scales/sizes/roi/axes for Resize from inputs or constants.
// `get(i)` returns input i's tensor or nullptr.
template <class Get>
std::optional<Request> resize_request(const Node& n, Get get) {
  Request rq;
  bool known = true;
  rq.axes = n.attr_ints("axes");
  if (n.opset > 0 && n.opset < 11) {
    const Tensor* s = get(1);
    if (!s) return std::nullopt;
    rq.scales = doubles_of(*s);
    return rq;
  }
  auto present = [&](int i) { return n.inputs.size() > size_t(i) && n.inputs[size_t(i)] != nullptr; };
  if (present(1)) {
    // roi does not affect shapes: a non-constant roi leaves it empty here.
    if (const Tensor* roi = get(1)) rq.roi = doubles_of(*roi);
  }
  if (present(2)) {
    const Tensor* s = get(2);
    if (!s) known = false;
    else if (s->numel() > 0) rq.scales = doubles_of(*s);
  }
  if (present(3)) {
    const Tensor* s = get(3);
    if (!s) known = false;
    else if (s->numel() > 0) rq.sizes = s->to_int_vector();
  }
  if (!known) return std::nullopt;
  return rq;
}

void infer_resampled(InferContext& ctx, const std::optional<Request>& rq) {
  if (!ctx.has_input(0)) return;
  const Value& x = ctx.input(0);
  ctx.set(0, x.dtype, std::nullopt);
  if (!x.shape) return;
  const SymShape& xs = *x.shape;
  const int64_t r = int64_t(xs.size());
  if (!rq) {
    ctx.set(0, x.dtype, SymShape(size_t(r)));  // rank is known
    return;
  }
  // Dims not resized keep their symbol; resized ones need known input dims
  // (or sizes with the stretch policy).
  std::vector<int64_t> axes = rq->axes;
  if (axes.empty())
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  for (auto& a : axes) a = normalize_axis(a, r, ctx.node);
  SymShape out = xs;
  bool all_known = true;
  Shape concrete(size_t(r), 1);
  for (int64_t i = 0; i < r; ++i) {
    if (xs[size_t(i)].is_known()) concrete[size_t(i)] = xs[size_t(i)].value;
    else all_known = false;
  }
  if (all_known) {
    Plan p = make_plan(ctx.node, concrete, *rq);
    ctx.set(0, x.dtype, to_sym_shape(p.out));
    return;
  }
  const bool stretch = ctx.node.attr_string("keep_aspect_ratio_policy", "stretch") == "stretch";
  for (size_t i = 0; i < axes.size(); ++i) {
    const size_t a = size_t(axes[i]);
    if (rq->sizes && stretch && i < rq->sizes->size()) {
      out[a] = Dim::known((*rq->sizes)[i]);
    } else if (rq->scales && i < rq->scales->size() && (*rq->scales)[i] == 1.0) {
      // unchanged
    } else if (rq->scales && i < rq->scales->size() && xs[a].is_known()) {
      out[a] = Dim::known(int64_t(std::floor((*rq->scales)[i] * double(xs[a].value))));
    } else {
      out[a] = Dim{};
    }
  }
  ctx.set(0, x.dtype, out);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Resize) {
  def.infer = [](InferContext& ctx) {
    std::optional<Request> rq;
    try {
      rq = resize_request(ctx.node, [&](int i) { return ctx.constant(i); });
    } catch (const Error&) {
      rq.reset();
    }
    infer_resampled(ctx, rq);
  };
  def.reference = [](KernelContext& ctx) {
    const Node& n = ctx.node;
    const bool legacy = n.opset > 0 && n.opset < 11;
    Params prm = read_params(n, legacy);
    auto rq = resize_request(n, [&](int i) -> const Tensor* { return ctx.has_input(i) ? &ctx.input(i) : nullptr; });
    DEEPEP_CHECK(rq.has_value(), n.describe(), ": missing scales input");
    if (prm.ctm != Ctm::kTfCropAndResize) rq->roi.clear();
    prm.roi_single = ctx.has_input(1) && ctx.input(1).dtype() != DType::kFloat64;
    run_resize(ctx, prm, *rq);
  };
}

DEEPEP_DEFINE_OP(Upsample) {
  auto request = [](const Node& n, const Tensor* scales_input) -> std::optional<Request> {
    Request rq;
    if (n.has_attr("scales")) {
      rq.scales = std::vector<double>();
      for (float f : n.attr_floats("scales")) rq.scales->push_back(f);
      return rq;
    }
    if (!scales_input) return std::nullopt;
    rq.scales = doubles_of(*scales_input);
    return rq;
  };
  def.infer = [request](InferContext& ctx) {
    std::optional<Request> rq;
    try {
      rq = request(ctx.node, ctx.constant(1));
    } catch (const Error&) {
      rq.reset();
    }
    infer_resampled(ctx, rq);
  };
  def.reference = [request](KernelContext& ctx) {
    const Node& n = ctx.node;
    Params prm = read_params(n, /*legacy=*/true);
    DEEPEP_CHECK(prm.mode != Mode::kCubic, n.describe(), ": Upsample supports nearest and linear only");
    auto rq = request(n, ctx.has_input(1) ? &ctx.input(1) : nullptr);
    DEEPEP_CHECK(rq.has_value(), n.describe(), ": missing scales (attribute or input)");
    run_resize(ctx, prm, *rq);
  };
}
