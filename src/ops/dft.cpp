// DFT (opsets 17 and 20) and STFT (opset 17). Signals carry a trailing
// complex axis of size 1 (real) or 2 (real, imaginary).
//   DFT: along `axis` (attribute in opset 17, default 1; input in opset 20,
//   default -2), zero-padded or truncated to dft_length; onesided keeps the
//   first L/2+1 bins; inverse divides by L, and inverse+onesided is the inverse
//   real FFT (Hermitian input, real output with trailing size 1).
//   STFT: windowed frames of frame_length every frame_step samples, each
//   transformed like a forward DFT; output (batch, frames, bins, 2).
// Computed in double with a twiddle table (O(L * bins) per line).
#include <cmath>
#include <complex>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

using cd = std::complex<double>;

std::vector<double> load(const Tensor& t, const char* what) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  dispatch_float(t.dtype(), what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) {
      if constexpr (std::is_same_v<T, double>) v[i] = p[i];
      else v[i] = double(float(p[i]));
    }
  });
  return v;
}

void store(Tensor& t, const std::vector<double>& v, const char* what) {
  dispatch_float(t.dtype(), what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = T(v[i]);
  });
}

// Twiddles e^{-2 pi i j / L}.
struct Twiddles {
  int64_t L;
  std::vector<cd> w;
  explicit Twiddles(int64_t len) : L(len), w(static_cast<size_t>(len)) {
    for (int64_t j = 0; j < L; ++j) {
      const double a = -2.0 * M_PI * double(j) / double(L);
      w[size_t(j)] = cd(std::cos(a), std::sin(a));
    }
  }
  // out[k] = sum_{m < in.size()} in[m] * e^{sign * 2 pi i k m / L}, k < out.size().
  void apply(const std::vector<cd>& in, std::vector<cd>& out, bool inverse) const {
    for (size_t k = 0; k < out.size(); ++k) {
      cd acc = 0;
      int64_t idx = 0;
      const int64_t step = int64_t(k) % L;
      for (size_t m = 0; m < in.size(); ++m) {
        const cd& tw = w[size_t(idx)];
        acc += in[m] * (inverse ? std::conj(tw) : tw);
        idx += step;
        if (idx >= L) idx -= L;
      }
      out[k] = acc;
    }
  }
};

void run_dft(KernelContext& ctx) {
  const Node& n = ctx.node;
  const Tensor& X = ctx.input(0);
  const int R = X.rank();
  DEEPEP_CHECK(R >= 2 && (X.dim(-1) == 1 || X.dim(-1) == 2), n.describe(),
               ": input must end in a complex axis of size 1 or 2, got ", shape_str(X.shape()));
  const bool opset20 = n.opset == 0 || n.opset >= 20;
  int64_t axis;
  if (opset20) axis = ctx.has_input(2) ? ctx.input(2).get_int(0) : -2;
  else axis = n.attr_int("axis", 1);
  axis = normalize_axis(axis, R, n);
  DEEPEP_CHECK(axis != R - 1, n.describe(), ": axis must not be the trailing complex axis");
  const bool inverse = n.attr_int("inverse", 0) != 0;
  const bool onesided = n.attr_int("onesided", 0) != 0;
  const int64_t n_in = X.dim(int(axis));
  int64_t L;
  if (ctx.has_input(1) && ctx.input(1).numel() > 0) {
    L = ctx.input(1).get_int(0);
    DEEPEP_CHECK(L > 0, n.describe(), ": dft_length must be positive, got ", L);
  } else {
    L = inverse && onesided ? 2 * (n_in - 1) : n_in;
    DEEPEP_CHECK(L > 0, n.describe(), ": the transform length would be ", L, " for an axis of ", n_in);
  }
  const int64_t c = X.dim(-1);
  const bool irfft = inverse && onesided;
  const int64_t nout = irfft ? L : (onesided ? L / 2 + 1 : L);
  Shape oshape = X.shape();
  oshape[size_t(axis)] = nout;
  oshape.back() = irfft ? 1 : 2;
  Tensor& Y = ctx.output(0, X.dtype(), oshape);
  if (Y.numel() == 0) return;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= X.dim(int(i));
  for (int64_t i = axis + 1; i < R - 1; ++i) inner *= X.dim(int(i));

  const std::vector<double> x = load(X, ctx.op());
  std::vector<double> y(static_cast<size_t>(Y.numel()));
  const Twiddles tw(L);
  std::vector<cd> line, res(static_cast<size_t>(nout));
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t m) {
        const size_t base = size_t(((o * n_in + m) * inner + i) * c);
        return cd(x[base], c == 2 ? x[base + 1] : 0.0);
      };
      if (irfft) {
        // Hermitian extension of bins 0..L/2 to the full spectrum.
        line.assign(size_t(L), cd(0));
        const int64_t half = L / 2;
        for (int64_t k = 0; k <= half && k < n_in; ++k) line[size_t(k)] = at(k);
        for (int64_t k = half + 1; k < L; ++k) line[size_t(k)] = std::conj(line[size_t(L - k)]);
      } else {
        line.resize(size_t(std::min(n_in, L)));
        for (size_t m = 0; m < line.size(); ++m) line[m] = at(int64_t(m));
      }
      tw.apply(line, res, inverse);
      for (int64_t k = 0; k < nout; ++k) {
        cd v = res[size_t(k)];
        if (inverse) v /= double(L);
        if (irfft) {
          y[size_t((o * nout + k) * inner + i)] = v.real();
        } else {
          const size_t base = size_t(((o * nout + k) * inner + i) * 2);
          y[base] = v.real();
          y[base + 1] = v.imag();
        }
      }
    }
  store(Y, y, ctx.op());
}

void infer_dft(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Node& n = ctx.node;
  const Value& x = ctx.input(0);
  ctx.set(0, x.dtype, std::nullopt);
  if (!x.shape || x.shape->size() < 2) return;
  SymShape out = *x.shape;
  const int64_t R = int64_t(out.size());
  const bool opset20 = n.opset == 0 || n.opset >= 20;
  int64_t axis;
  if (opset20) {
    if (ctx.has_input(2)) {
      const Tensor* a = ctx.constant(2);
      if (!a) {
        ctx.set(0, x.dtype, SymShape(out.size()));
        return;
      }
      axis = a->get_int(0);
    } else {
      axis = -2;
    }
  } else {
    axis = n.attr_int("axis", 1);
  }
  axis = normalize_axis(axis, R, n);
  const bool inverse = n.attr_int("inverse", 0) != 0;
  const bool onesided = n.attr_int("onesided", 0) != 0;
  std::optional<int64_t> L;
  if (ctx.has_input(1)) {
    if (const Tensor* l = ctx.constant(1)) L = l->get_int(0);
  } else if (out[size_t(axis)].is_known()) {
    const int64_t n_in = out[size_t(axis)].value;
    L = inverse && onesided ? 2 * (n_in - 1) : n_in;
  }
  if (L) out[size_t(axis)] = Dim::known(inverse && onesided ? *L : (onesided ? *L / 2 + 1 : *L));
  else if (ctx.has_input(1) || onesided) out[size_t(axis)] = Dim{};  // else the length is unchanged
  out.back() = Dim::known(inverse && onesided ? 1 : 2);
  ctx.set(0, x.dtype, out);
}

void run_stft(KernelContext& ctx) {
  const Node& n = ctx.node;
  const Tensor& X = ctx.input(0);
  DEEPEP_CHECK(X.rank() == 3 && (X.dim(2) == 1 || X.dim(2) == 2), n.describe(),
               ": signal must be (batch, length, 1 or 2), got ", shape_str(X.shape()));
  const int64_t step = ctx.input(1).get_int(0);
  DEEPEP_CHECK(step > 0, n.describe(), ": frame_step must be positive, got ", step);
  const Tensor* window = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  int64_t flen;
  if (ctx.has_input(3)) {
    flen = ctx.input(3).get_int(0);
    if (window)
      DEEPEP_CHECK(window->rank() == 1 && window->dim(0) == flen, n.describe(), ": window ",
                   shape_str(window->shape()), " does not match frame_length ", flen);
  } else if (window) {
    DEEPEP_CHECK(window->rank() == 1, n.describe(), ": window must be 1-D");
    flen = window->dim(0);
  } else {
    flen = X.dim(1);
  }
  const int64_t B = X.dim(0), len = X.dim(1), c = X.dim(2);
  DEEPEP_CHECK(flen > 0 && flen <= len, n.describe(), ": frame_length ", flen, " must be in [1, ", len, "]");
  const bool onesided = n.attr_int("onesided", 1) != 0;
  const int64_t frames = 1 + (len - flen) / step;
  const int64_t bins = onesided ? flen / 2 + 1 : flen;
  Tensor& Y = ctx.output(0, X.dtype(), {B, frames, bins, 2});
  const std::vector<double> x = load(X, ctx.op());
  std::vector<double> w(static_cast<size_t>(flen), 1.0);
  if (window) {
    DEEPEP_CHECK(window->dtype() == X.dtype(), n.describe(), ": window dtype differs from the signal");
    w = load(*window, ctx.op());
  }
  std::vector<double> y(static_cast<size_t>(Y.numel()));
  const Twiddles tw(flen);
  std::vector<cd> line(static_cast<size_t>(flen)), res(static_cast<size_t>(bins));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t f = 0; f < frames; ++f) {
      for (int64_t m = 0; m < flen; ++m) {
        const size_t base = size_t((b * len + f * step + m) * c);
        line[size_t(m)] = cd(x[base], c == 2 ? x[base + 1] : 0.0) * w[size_t(m)];
      }
      tw.apply(line, res, false);
      for (int64_t k = 0; k < bins; ++k) {
        const size_t base = size_t(((b * frames + f) * bins + k) * 2);
        y[base] = res[size_t(k)].real();
        y[base + 1] = res[size_t(k)].imag();
      }
    }
  store(Y, y, ctx.op());
}

void infer_stft(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Value& x = ctx.input(0);
  ctx.set(0, x.dtype, std::nullopt);
  if (!x.shape || x.shape->size() != 3) return;
  const Dim B = (*x.shape)[0], len = (*x.shape)[1];
  std::optional<int64_t> flen, step;
  if (const Tensor* s = ctx.constant(1)) step = s->get_int(0);
  if (ctx.has_input(3)) {
    if (const Tensor* l = ctx.constant(3)) flen = l->get_int(0);
  } else if (ctx.has_input(2) && ctx.input(2).shape && ctx.input(2).shape->size() == 1 &&
             (*ctx.input(2).shape)[0].is_known()) {
    flen = (*ctx.input(2).shape)[0].value;
  }
  const bool onesided = ctx.node.attr_int("onesided", 1) != 0;
  Dim frames, bins;
  if (flen && *flen > 0) bins = Dim::known(onesided ? *flen / 2 + 1 : *flen);
  if (flen && step && *step > 0 && len.is_known() && len.value >= *flen)
    frames = Dim::known(1 + (len.value - *flen) / *step);
  ctx.set(0, x.dtype, SymShape{B, frames, bins, Dim::known(2)});
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(DFT) {
  def.infer = infer_dft;
  def.reference = run_dft;
}

DEEPEP_DEFINE_OP(STFT) {
  def.infer = infer_stft;
  def.reference = run_stft;
}
