// DFT (opsets 17 and 20) and STFT (opset 17). Signals carry a trailing
// complex axis of size 1 (real) or 2 (real, imaginary).
//   DFT: along `axis` (attribute in opset 17, default 1; input in opset 20,
//   default -2), zero-padded or truncated to dft_length; onesided keeps the
//   first L/2+1 bins; inverse divides by L, and inverse+onesided is the inverse
//   real FFT (Hermitian input, real output with trailing size 1).
//   STFT: windowed frames of frame_length every frame_step samples, each
//   transformed like a forward DFT; output (batch, frames, bins, 2).
// Complex transforms use a mixed-radix FFT with numpy's operation order, in the
// precision numpy uses for the reference; the inverse real FFT is a direct
// double-precision sum.
#include <cmath>
#include <complex>

#include "ops/float_io.h"
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

using cd = std::complex<double>;




// A mixed-radix complex FFT (radix 2, 3, 4, 5, 7, 8, 11 butterflies and a
// generic odd-prime pass) that performs its additions and multiplications in
// the same order as pocketfft, the FFT behind numpy and hence behind the ONNX
// reference results. In float32 that reproduces the reference bit for bit,
// including the rounding noise of outputs that are mathematically zero (which
// the conformance tolerance of 1e-7 would otherwise reject).
template <class R>
class MixedRadixFft {
 public:
  struct C {
    R r, i;
  };

  explicit MixedRadixFft(size_t n) : n_(n) {
    if (n_ <= 1) return;
    factorize();
    twiddles();
  }

  // In place on n values; fwd: e^{-i...}, else e^{+i...}; the result is scaled by fct.
  void exec(C* c, R fct, bool fwd) const { fwd ? run<true>(c, fct) : run<false>(c, fct); }

 private:
  static C add(C a, C b) { return {a.r + b.r, a.i + b.i}; }
  static C sub(C a, C b) { return {a.r - b.r, a.i - b.i}; }
  static C scl(C a, R s) { return {a.r * s, a.i * s}; }
  template <bool fwd>
  static C twm(C a, C w) {  // a * conj(w) forward, a * w backward
    return fwd ? C{a.r * w.r + a.i * w.i, a.i * w.r - a.r * w.i} : C{a.r * w.r - a.i * w.i, a.r * w.i + a.i * w.r};
  }
  template <bool fwd>
  static C rot90(C a) { return fwd ? C{a.i, -a.r} : C{-a.i, a.r}; }
  static R hsqt2() { return R(0.707106781186547524400844362104849L); }
  template <bool fwd>
  static C rot45(C a) {
    return fwd ? C{hsqt2() * (a.r + a.i), hsqt2() * (a.i - a.r)} : C{hsqt2() * (a.r - a.i), hsqt2() * (a.i + a.r)};
  }
  template <bool fwd>
  static C rot135(C a) {
    return fwd ? C{hsqt2() * (a.i - a.r), hsqt2() * (-a.r - a.i)} : C{hsqt2() * (-a.r - a.i), hsqt2() * (a.r - a.i)};
  }

  void factorize() {
    size_t len = n_;
    while ((len & 7) == 0) { fct_.push_back(8); len >>= 3; }
    while ((len & 3) == 0) { fct_.push_back(4); len >>= 2; }
    if ((len & 1) == 0) {
      len >>= 1;
      fct_.push_back(2);
      std::swap(fct_.front(), fct_.back());
    }
    for (size_t d = 3; d * d <= len; d += 2)
      while (len % d == 0) { fct_.push_back(d); len /= d; }
    if (len > 1) fct_.push_back(len);
  }

  // e^{2 pi i idx / n}: two tables of double-precision roots whose product is
  // rounded to R once.
  void twiddles() {
    using H = double;
    const H ang = H(0.25L * 3.141592653589793238462643383279502884197L / (long double)n_);
    auto calc = [&](size_t x) -> std::pair<H, H> {
      const size_t n = n_;
      x <<= 3;
      if (x < 4 * n) {
        if (x < 2 * n) {
          if (x < n) return {std::cos(H(x) * ang), std::sin(H(x) * ang)};
          return {std::sin(H(2 * n - x) * ang), std::cos(H(2 * n - x) * ang)};
        }
        x -= 2 * n;
        if (x < n) return {-std::sin(H(x) * ang), std::cos(H(x) * ang)};
        return {-std::cos(H(2 * n - x) * ang), std::sin(H(2 * n - x) * ang)};
      }
      x = 8 * n - x;
      if (x < 2 * n) {
        if (x < n) return {std::cos(H(x) * ang), -std::sin(H(x) * ang)};
        return {std::sin(H(2 * n - x) * ang), -std::cos(H(2 * n - x) * ang)};
      }
      x -= 2 * n;
      if (x < n) return {-std::sin(H(x) * ang), -std::cos(H(x) * ang)};
      return {-std::cos(H(2 * n - x) * ang), -std::sin(H(2 * n - x) * ang)};
    };
    const size_t nval = (n_ + 2) / 2;
    size_t shift = 1;
    while ((size_t(1) << shift) * (size_t(1) << shift) < nval) ++shift;
    const size_t mask = (size_t(1) << shift) - 1;
    std::vector<std::pair<H, H>> v1(mask + 1), v2((nval + mask) / (mask + 1));
    v1[0] = {1, 0};
    for (size_t i = 1; i < v1.size(); ++i) v1[i] = calc(i);
    v2[0] = {1, 0};
    for (size_t i = 1; i < v2.size(); ++i) v2[i] = calc(i * (mask + 1));
    auto root = [&](size_t idx) -> C {
      const bool flip = 2 * idx > n_;
      if (flip) idx = n_ - idx;
      const auto& a = v1[idx & mask];
      const auto& b = v2[idx >> shift];
      const R re = R(a.first * b.first - a.second * b.second);
      const R im = R(a.first * b.second + a.second * b.first);
      return {re, flip ? -im : im};
    };
    size_t l1 = 1;
    tw_.resize(fct_.size());
    tws_.resize(fct_.size());
    for (size_t k = 0; k < fct_.size(); ++k) {
      const size_t ip = fct_[k], ido = n_ / (l1 * ip);
      for (size_t j = 1; j < ip; ++j)
        for (size_t i = 1; i < ido; ++i) tw_[k].push_back(root(j * l1 * i));
      if (ip > 11)
        for (size_t j = 0; j < ip; ++j) tws_[k].push_back(root(j * l1 * ido));
      l1 *= ip;
    }
  }

  // Butterfly of an odd prime p (5, 7, 11): pairs (u, p-u) from sums t[j] and
  // differences d[j] of inputs (j, p-j), with cos/sin of 2 pi u j / p.
  template <bool fwd>
  static void odd_prime(size_t p, const C* in, C* out, const R* cr, const R* ci) {
    const size_t h = (p - 1) / 2;
    C t[6], d[6];
    const C t0 = in[0];
    for (size_t j = 1; j <= h; ++j) {
      t[j] = add(in[j], in[p - j]);
      d[j] = sub(in[j], in[p - j]);
    }
    C s0 = t0;
    for (size_t j = 1; j <= h; ++j) s0.r = s0.r + t[j].r;
    for (size_t j = 1; j <= h; ++j) s0.i = s0.i + t[j].i;
    out[0] = s0;
    for (size_t u = 1; u <= h; ++u) {
      C ca = t0, cb{0, 0};
      R bi = 0, br = 0;
      for (size_t j = 1; j <= h; ++j) {
        const size_t m = (u * j) % p;
        const R x = m <= h ? cr[m] : cr[p - m];
        const R y = m <= h ? ci[m] : -ci[p - m];
        ca.r = ca.r + x * t[j].r;
        ca.i = ca.i + x * t[j].i;
        bi = j == 1 ? y * d[j].r : bi + y * d[j].r;
        br = j == 1 ? y * d[j].i : br + y * d[j].i;
      }
      cb.i = bi;
      cb.r = -br;
      out[u] = add(ca, cb);
      out[p - u] = sub(ca, cb);
    }
  }

  template <bool fwd>
  void pass_small(size_t ip, size_t ido, size_t l1, const C* cc, C* ch, const C* wa) const {
    auto CC = [&](size_t a, size_t b, size_t c) -> const C& { return cc[a + ido * (b + ip * c)]; };
    auto CH = [&](size_t a, size_t b, size_t c) -> C& { return ch[a + ido * (b + l1 * c)]; };
    auto WA = [&](size_t x, size_t i) -> const C& { return wa[i - 1 + x * (ido - 1)]; };
    const R sgn = fwd ? R(-1) : R(1);
    R cr[6] = {1, 0, 0, 0, 0, 0}, ci[6] = {0, 0, 0, 0, 0, 0};
    if (ip == 5 || ip == 7 || ip == 11) {
      static const long double pi = 3.141592653589793238462643383279502884197L;
      for (size_t m = 1; m <= (ip - 1) / 2; ++m) {
        cr[m] = R(std::cos(2 * pi * (long double)m / (long double)ip));
        ci[m] = sgn * R(std::sin(2 * pi * (long double)m / (long double)ip));
      }
    }
    const R tw3r = R(-0.5), tw3i = sgn * R(0.8660254037844386467637231707529362L);
    C in[11], out[11];
    for (size_t k = 0; k < l1; ++k)
      for (size_t i = 0; i < ido; ++i) {
        switch (ip) {
          case 2:
            out[0] = add(CC(i, 0, k), CC(i, 1, k));
            out[1] = sub(CC(i, 0, k), CC(i, 1, k));
            break;
          case 3: {
            const C t0 = CC(i, 0, k), t1 = add(CC(i, 1, k), CC(i, 2, k)), t2 = sub(CC(i, 1, k), CC(i, 2, k));
            out[0] = add(t0, t1);
            const C ca = add(t0, scl(t1, tw3r));
            const C cb{-(t2.i * tw3i), t2.r * tw3i};
            out[1] = add(ca, cb);
            out[2] = sub(ca, cb);
            break;
          }
          case 4: {
            const C t2 = add(CC(i, 0, k), CC(i, 2, k)), t1 = sub(CC(i, 0, k), CC(i, 2, k));
            const C t3 = add(CC(i, 1, k), CC(i, 3, k));
            const C t4 = rot90<fwd>(sub(CC(i, 1, k), CC(i, 3, k)));
            out[0] = add(t2, t3);
            out[2] = sub(t2, t3);
            out[1] = add(t1, t4);
            out[3] = sub(t1, t4);
            break;
          }
          case 8: {
            C a1 = add(CC(i, 1, k), CC(i, 5, k)), a5 = sub(CC(i, 1, k), CC(i, 5, k));
            C a3 = add(CC(i, 3, k), CC(i, 7, k)), a7 = sub(CC(i, 3, k), CC(i, 7, k));
            C t = a1;
            a1 = add(a1, a3);
            a3 = rot90<fwd>(sub(t, a3));
            a7 = rot90<fwd>(a7);
            t = a5;
            a5 = rot45<fwd>(add(a5, a7));
            a7 = rot135<fwd>(sub(t, a7));
            C a0 = add(CC(i, 0, k), CC(i, 4, k)), a4 = sub(CC(i, 0, k), CC(i, 4, k));
            C a2 = add(CC(i, 2, k), CC(i, 6, k)), a6 = sub(CC(i, 2, k), CC(i, 6, k));
            t = a0;
            a0 = add(a0, a2);
            a2 = sub(t, a2);
            out[0] = add(a0, a1);
            out[4] = sub(a0, a1);
            out[2] = add(a2, a3);
            out[6] = sub(a2, a3);
            a6 = rot90<fwd>(a6);
            t = a4;
            a4 = add(a4, a6);
            a6 = sub(t, a6);
            out[1] = add(a4, a5);
            out[5] = sub(a4, a5);
            out[3] = add(a6, a7);
            out[7] = sub(a6, a7);
            break;
          }
          default:
            for (size_t j = 0; j < ip; ++j) in[j] = CC(i, j, k);
            odd_prime<fwd>(ip, in, out, cr, ci);
        }
        CH(i, k, 0) = out[0];
        for (size_t j = 1; j < ip; ++j) CH(i, k, j) = i == 0 ? out[j] : twm<fwd>(out[j], WA(j - 1, i));
      }
  }

  template <bool fwd>
  void pass_generic(size_t ip, size_t ido, size_t l1, C* cc, C* ch, const C* wa, const C* csarr) const {
    const size_t ipph = (ip + 1) / 2, idl1 = ido * l1;
    auto CH = [&](size_t a, size_t b, size_t c) -> C& { return ch[a + ido * (b + l1 * c)]; };
    auto CC = [&](size_t a, size_t b, size_t c) -> C& { return cc[a + ido * (b + ip * c)]; };
    auto CX = [&](size_t a, size_t b, size_t c) -> C& { return cc[a + ido * (b + l1 * c)]; };
    auto CX2 = [&](size_t a, size_t b) -> C& { return cc[a + idl1 * b]; };
    auto CH2 = [&](size_t a, size_t b) -> const C& { return ch[a + idl1 * b]; };
    std::vector<C> wal(ip);
    wal[0] = {1, 0};
    for (size_t i = 1; i < ip; ++i) wal[i] = {csarr[i].r, fwd ? -csarr[i].i : csarr[i].i};
    for (size_t k = 0; k < l1; ++k)
      for (size_t i = 0; i < ido; ++i) CH(i, k, 0) = CC(i, 0, k);
    for (size_t j = 1, jc = ip - 1; j < ipph; ++j, --jc)
      for (size_t k = 0; k < l1; ++k)
        for (size_t i = 0; i < ido; ++i) {
          const C a = CC(i, j, k), b = CC(i, jc, k);
          CH(i, k, j) = add(a, b);
          CH(i, k, jc) = sub(a, b);
        }
    for (size_t k = 0; k < l1; ++k)
      for (size_t i = 0; i < ido; ++i) {
        C tmp = CH(i, k, 0);
        for (size_t j = 1; j < ipph; ++j) tmp = add(tmp, CH(i, k, j));
        CX(i, k, 0) = tmp;
      }
    for (size_t l = 1, lc = ip - 1; l < ipph; ++l, --lc) {
      for (size_t ik = 0; ik < idl1; ++ik) {
        CX2(ik, l).r = CH2(ik, 0).r + wal[l].r * CH2(ik, 1).r + wal[2 * l].r * CH2(ik, 2).r;
        CX2(ik, l).i = CH2(ik, 0).i + wal[l].r * CH2(ik, 1).i + wal[2 * l].r * CH2(ik, 2).i;
        CX2(ik, lc).r = -wal[l].i * CH2(ik, ip - 1).i - wal[2 * l].i * CH2(ik, ip - 2).i;
        CX2(ik, lc).i = wal[l].i * CH2(ik, ip - 1).r + wal[2 * l].i * CH2(ik, ip - 2).r;
      }
      size_t iwal = 2 * l;
      size_t j = 3, jc = ip - 3;
      for (; j < ipph - 1; j += 2, jc -= 2) {
        iwal += l;
        if (iwal > ip) iwal -= ip;
        const C xw = wal[iwal];
        iwal += l;
        if (iwal > ip) iwal -= ip;
        const C xw2 = wal[iwal];
        for (size_t ik = 0; ik < idl1; ++ik) {
          CX2(ik, l).r += CH2(ik, j).r * xw.r + CH2(ik, j + 1).r * xw2.r;
          CX2(ik, l).i += CH2(ik, j).i * xw.r + CH2(ik, j + 1).i * xw2.r;
          CX2(ik, lc).r -= CH2(ik, jc).i * xw.i + CH2(ik, jc - 1).i * xw2.i;
          CX2(ik, lc).i += CH2(ik, jc).r * xw.i + CH2(ik, jc - 1).r * xw2.i;
        }
      }
      for (; j < ipph; ++j, --jc) {
        iwal += l;
        if (iwal > ip) iwal -= ip;
        const C xw = wal[iwal];
        for (size_t ik = 0; ik < idl1; ++ik) {
          CX2(ik, l).r += CH2(ik, j).r * xw.r;
          CX2(ik, l).i += CH2(ik, j).i * xw.r;
          CX2(ik, lc).r -= CH2(ik, jc).i * xw.i;
          CX2(ik, lc).i += CH2(ik, jc).r * xw.i;
        }
      }
    }
    for (size_t j = 1, jc = ip - 1; j < ipph; ++j, --jc)
      for (size_t k = 0; k < l1; ++k)
        for (size_t i = 0; i < ido; ++i) {
          const C x1 = add(CX(i, k, j), CX(i, k, jc)), x2 = sub(CX(i, k, j), CX(i, k, jc));
          if (i == 0) {
            CX(i, k, j) = x1;
            CX(i, k, jc) = x2;
          } else {
            CX(i, k, j) = twm<fwd>(x1, wa[(j - 1) * (ido - 1) + i - 1]);
            CX(i, k, jc) = twm<fwd>(x2, wa[(jc - 1) * (ido - 1) + i - 1]);
          }
        }
  }

  template <bool fwd>
  void run(C* c, R fct) const {
    if (n_ == 1) {
      c[0] = scl(c[0], fct);
      return;
    }
    std::vector<C> buf(n_);
    C* p1 = c;
    C* p2 = buf.data();
    size_t l1 = 1;
    for (size_t k = 0; k < fct_.size(); ++k) {
      const size_t ip = fct_[k], ido = n_ / (ip * l1);
      if (ip <= 11 && ip != 9) {
        pass_small<fwd>(ip, ido, l1, p1, p2, tw_[k].data());
      } else {
        pass_generic<fwd>(ip, ido, l1, p1, p2, tw_[k].data(), tws_[k].data());
        std::swap(p1, p2);
      }
      std::swap(p1, p2);
      l1 *= ip;
    }
    if (p1 != c) {
      for (size_t i = 0; i < n_; ++i) c[i] = fct != R(1) ? scl(p1[i], fct) : p1[i];
    } else if (fct != R(1)) {
      for (size_t i = 0; i < n_; ++i) c[i] = scl(c[i], fct);
    }
  }

  size_t n_;
  std::vector<size_t> fct_;
  std::vector<std::vector<C>> tw_, tws_;
};

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

  const std::vector<double> x = as_doubles(X, ctx.op());
  std::vector<double> y(static_cast<size_t>(Y.numel()));
  auto at = [&](int64_t o, int64_t i, int64_t m) {
    const size_t base = size_t(((o * n_in + m) * inner + i) * c);
    return cd(x[base], c == 2 ? x[base + 1] : 0.0);
  };
  if (irfft) {
    // Hermitian extension of bins 0..L/2 to the full spectrum, then the real part.
    const Twiddles tw(L);
    std::vector<cd> line(static_cast<size_t>(L)), res(static_cast<size_t>(L));
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        std::fill(line.begin(), line.end(), cd(0));
        const int64_t half = L / 2;
        for (int64_t k = 0; k <= half && k < n_in; ++k) line[size_t(k)] = at(o, i, k);
        for (int64_t k = half + 1; k < L; ++k) line[size_t(k)] = std::conj(line[size_t(L - k)]);
        tw.apply(line, res, true);
        for (int64_t k = 0; k < L; ++k) y[size_t((o * nout + k) * inner + i)] = res[size_t(k)].real() / double(L);
      }
  } else {
    auto transform = [&](auto rtag, double scale) {
      using R = decltype(rtag);
      using Fft = MixedRadixFft<R>;
      const Fft fft(static_cast<size_t>(L));
      std::vector<typename Fft::C> buf(static_cast<size_t>(L));
      const R fct = R(scale);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          for (int64_t m = 0; m < L; ++m) {
            const cd v = m < n_in ? at(o, i, m) : cd(0);
            buf[size_t(m)] = {R(v.real()), R(v.imag())};
          }
          fft.exec(buf.data(), fct, !inverse);
          for (int64_t k = 0; k < nout; ++k) {
            const size_t base = size_t(((o * nout + k) * inner + i) * 2);
            y[base] = double(buf[size_t(k)].r);
            y[base + 1] = double(buf[size_t(k)].i);
          }
        }
    };
    // The ONNX reference calls numpy, which runs a complex64 input with a float32
    // scale factor (the inverse of complex data) in float and everything else
    // (forward transforms, real input) in double; its inverse scale 1/L is
    // rounded to the input's real type first.
    double scale = 1.0;
    if (inverse) {
      if (X.dtype() == DType::kFloat64) scale = 1.0 / double(L);
      else if (X.dtype() == DType::kFloat16 && c == 1) scale = double(float(float16(1.0f / float(L))));
      else scale = double(1.0f / float(L));
    }
    if (inverse && c == 2 && X.dtype() != DType::kFloat64) transform(float{}, scale);
    else transform(double{}, scale);
  }
  store_doubles(Y, y, ctx.op());
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
  const std::vector<double> x = as_doubles(X, ctx.op());
  std::vector<double> w(static_cast<size_t>(flen), 1.0);
  if (window) {
    DEEPEP_CHECK(window->dtype() == X.dtype(), n.describe(), ": window dtype differs from the signal");
    w = as_doubles(*window, ctx.op());
  }
  std::vector<double> y(static_cast<size_t>(Y.numel()));
  auto transform = [&](auto rtag) {
    using R = decltype(rtag);
    using Fft = MixedRadixFft<R>;
    const Fft fft(static_cast<size_t>(flen));
    std::vector<typename Fft::C> buf(static_cast<size_t>(flen));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t f = 0; f < frames; ++f) {
        for (int64_t m = 0; m < flen; ++m) {
          const size_t base = size_t((b * len + f * step + m) * c);
          const R wm = R(w[size_t(m)]);
          buf[size_t(m)] = {R(x[base]) * wm, (c == 2 ? R(x[base + 1]) : R(0)) * wm};
        }
        fft.exec(buf.data(), R(1), true);
        for (int64_t k = 0; k < bins; ++k) {
          const size_t base = size_t(((b * frames + f) * bins + k) * 2);
          y[base] = double(buf[size_t(k)].r);
          y[base + 1] = double(buf[size_t(k)].i);
        }
      }
  };
  transform(double{});  // forward transforms run in double, like numpy's for the reference
  store_doubles(Y, y, ctx.op());
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
