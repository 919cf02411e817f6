// RNN, GRU and LSTM (opsets 7/14/22): forward, reverse and bidirectional
// recurrences with configurable activations (alpha/beta consumed in order by
// the functions that take them), clip, sequence_lens, initial states, LSTM
// peepholes and input_forget, GRU linear_before_reset, and layout 0
// (sequence-major) or 1 (batch-major). Outputs Y, Y_h (and Y_c for LSTM) are
// all optional. Steps past a batch entry's sequence length write zeros to Y
// and leave the state unchanged. Computed in double.
#include <cmath>
#include <string>

#include "ops/float_io.h"
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

enum class Kind { kRnn, kGru, kLstm };

struct Activation {
  enum Fn { kRelu, kTanh, kSigmoid, kAffine, kLeakyRelu, kThresholdedRelu, kScaledTanh, kHardSigmoid, kElu,
            kSoftsign, kSoftplus } fn = kTanh;
  double alpha = 0, beta = 0;
  double operator()(double x) const {
    switch (fn) {
      case kRelu: return x > 0 ? x : 0.0;
      case kTanh: return std::tanh(x);
      case kSigmoid: return 1.0 / (1.0 + std::exp(-x));
      case kAffine: return alpha * x + beta;
      case kLeakyRelu: return x >= 0 ? x : alpha * x;
      case kThresholdedRelu: return x > alpha ? x : 0.0;
      case kScaledTanh: return alpha * std::tanh(beta * x);
      case kHardSigmoid: return std::max(0.0, std::min(1.0, alpha * x + beta));
      case kElu: return x >= 0 ? x : alpha * (std::exp(x) - 1);
      case kSoftsign: return x / (1 + std::fabs(x));
      case kSoftplus: return x > 30 ? x : std::log1p(std::exp(x));
    }
    return x;
  }
};

std::vector<Activation> parse_activations(const Node& n, Kind kind, int dirs) {
  const int per_dir = kind == Kind::kRnn ? 1 : kind == Kind::kGru ? 2 : 3;
  std::vector<std::string> names;
  if (const Attribute* a = n.attr("activations")) names = a->strings;
  if (names.empty()) {
    if (kind == Kind::kRnn) names = {"Tanh"};
    else if (kind == Kind::kGru) names = {"Sigmoid", "Tanh"};
    else names = {"Sigmoid", "Tanh", "Tanh"};
  }
  if (int(names.size()) == per_dir && dirs == 2) {
    const std::vector<std::string> one = names;
    names.insert(names.end(), one.begin(), one.end());
  }
  DEEPEP_CHECK(int(names.size()) == per_dir * dirs, n.describe(), ": activations has ", names.size(),
               " entries, expected ", per_dir * dirs);
  const std::vector<float> alphas = n.attr_floats("activation_alpha");
  const std::vector<float> betas = n.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  std::vector<Activation> out;
  for (const std::string& raw : names) {
    std::string s = raw;
    for (auto& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    Activation a;
    bool uses_alpha = false, uses_beta = false;
    double da = 0, db = 0;
    if (s == "relu") a.fn = Activation::kRelu;
    else if (s == "tanh") a.fn = Activation::kTanh;
    else if (s == "sigmoid") a.fn = Activation::kSigmoid;
    else if (s == "affine") { a.fn = Activation::kAffine; uses_alpha = uses_beta = true; da = 1; db = 0; }
    else if (s == "leakyrelu") { a.fn = Activation::kLeakyRelu; uses_alpha = true; da = 0.01; }
    else if (s == "thresholdedrelu") { a.fn = Activation::kThresholdedRelu; uses_alpha = true; da = 1; }
    else if (s == "scaledtanh") { a.fn = Activation::kScaledTanh; uses_alpha = uses_beta = true; da = 1; db = 1; }
    else if (s == "hardsigmoid") { a.fn = Activation::kHardSigmoid; uses_alpha = uses_beta = true; da = 0.2; db = 0.5; }
    else if (s == "elu") { a.fn = Activation::kElu; uses_alpha = true; da = 1; }
    else if (s == "softsign") a.fn = Activation::kSoftsign;
    else if (s == "softplus") a.fn = Activation::kSoftplus;
    else DEEPEP_FAIL(n.describe(), ": unsupported activation '", raw, "'");
    if (uses_alpha) a.alpha = ai < alphas.size() ? double(alphas[ai++]) : da;
    if (uses_beta) a.beta = bi < betas.size() ? double(betas[bi++]) : db;
    out.push_back(a);
  }
  return out;
}



void run_recurrent(KernelContext& ctx, Kind kind) {
  const Node& n = ctx.node;
  const int G = kind == Kind::kRnn ? 1 : kind == Kind::kGru ? 3 : 4;
  const Tensor& X = ctx.input(0);
  const Tensor& W = ctx.input(1);
  const Tensor& R = ctx.input(2);
  const DType dt = X.dtype();
  DEEPEP_CHECK(W.dtype() == dt && R.dtype() == dt, n.describe(), ": X, W and R dtypes differ");
  DEEPEP_CHECK(X.rank() == 3 && W.rank() == 3 && R.rank() == 3, n.describe(), ": X, W and R must be 3-D, got ",
               shape_str(X.shape()), ", ", shape_str(W.shape()), ", ", shape_str(R.shape()));
  const std::string direction = n.attr_string("direction", "forward");
  DEEPEP_CHECK(direction == "forward" || direction == "reverse" || direction == "bidirectional", n.describe(),
               ": unsupported direction '", direction, "'");
  const int D = direction == "bidirectional" ? 2 : 1;
  const int64_t layout = n.attr_int("layout", 0);
  DEEPEP_CHECK(layout == 0 || layout == 1, n.describe(), ": layout must be 0 or 1");
  const int64_t S = layout == 0 ? X.dim(0) : X.dim(1);
  const int64_t B = layout == 0 ? X.dim(1) : X.dim(0);
  const int64_t I = X.dim(2);
  const int64_t H = R.dim(2);
  if (n.has_attr("hidden_size"))
    DEEPEP_CHECK(n.attr_int("hidden_size", 0) == H, n.describe(), ": hidden_size ", n.attr_int("hidden_size", 0),
                 " does not match R ", shape_str(R.shape()));
  DEEPEP_CHECK(W.dim(0) == D && W.dim(1) == G * H && W.dim(2) == I, n.describe(), ": W ", shape_str(W.shape()),
               " must be (", D, ", ", G * H, ", ", I, ")");
  DEEPEP_CHECK(R.dim(0) == D && R.dim(1) == G * H, n.describe(), ": R ", shape_str(R.shape()), " must be (", D,
               ", ", G * H, ", ", H, ")");
  const std::vector<Activation> acts = parse_activations(n, kind, D);
  const int per_dir = int(acts.size()) / D;
  const double clip = n.has_attr("clip") ? double(n.attr_float("clip", 0)) : 0.0;
  const bool lbr = kind == Kind::kGru && n.attr_int("linear_before_reset", 0) != 0;
  const bool input_forget = kind == Kind::kLstm && n.attr_int("input_forget", 0) != 0;

  const std::vector<double> x = as_doubles(X, ctx.op());
  const std::vector<double> w = as_doubles(W, ctx.op());
  const std::vector<double> r = as_doubles(R, ctx.op());
  std::vector<double> bias(static_cast<size_t>(D * 2 * G * H), 0.0);
  if (ctx.has_input(3)) {
    const Tensor& Bt = ctx.input(3);
    DEEPEP_CHECK(Bt.dtype() == dt && Bt.rank() == 2 && Bt.dim(0) == D && Bt.dim(1) == 2 * G * H, n.describe(),
                 ": B ", shape_str(Bt.shape()), " must be (", D, ", ", 2 * G * H, ")");
    bias = as_doubles(Bt, ctx.op());
  }
  std::vector<int64_t> lens(static_cast<size_t>(B), S);
  if (ctx.has_input(4)) {
    lens = ctx.input(4).to_int_vector();
    DEEPEP_CHECK(int64_t(lens.size()) == B, n.describe(), ": sequence_lens has ", lens.size(),
                 " entries, expected batch size ", B);
    for (int64_t l : lens)
      DEEPEP_CHECK(l >= 0 && l <= S, n.describe(), ": sequence length ", l, " is outside [0, ", S, "]");
  }
  // States are kept as [D][B][H].
  auto load_state = [&](int idx, const char* name) {
    std::vector<double> s(static_cast<size_t>(D * B * H), 0.0);
    if (!ctx.has_input(idx)) return s;
    const Tensor& t = ctx.input(idx);
    const Shape want = layout == 0 ? Shape{D, B, H} : Shape{B, D, H};
    DEEPEP_CHECK(t.dtype() == dt && t.shape() == want, n.describe(), ": ", name, " ", shape_str(t.shape()),
                 " must be ", shape_str(want));
    std::vector<double> v = as_doubles(t, ctx.op());
    for (int d = 0; d < D; ++d)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t h = 0; h < H; ++h)
          s[size_t((d * B + b) * H + h)] = layout == 0 ? v[size_t((d * B + b) * H + h)] : v[size_t((b * D + d) * H + h)];
    return s;
  };
  std::vector<double> hstate = load_state(5, "initial_h");
  std::vector<double> cstate = kind == Kind::kLstm ? load_state(6, "initial_c") : std::vector<double>();
  std::vector<double> peep(static_cast<size_t>(D * 3 * H), 0.0);
  if (kind == Kind::kLstm && ctx.has_input(7)) {
    const Tensor& P = ctx.input(7);
    DEEPEP_CHECK(P.dtype() == dt && P.rank() == 2 && P.dim(0) == D && P.dim(1) == 3 * H, n.describe(), ": P ",
                 shape_str(P.shape()), " must be (", D, ", ", 3 * H, ")");
    peep = as_doubles(P, ctx.op());
  }

  // Y as [S][D][B][H]; reordered for layout 1 at the end.
  std::vector<double> y(static_cast<size_t>(S * D * B * H), 0.0);
  std::vector<double> gx(static_cast<size_t>(G * H)), gh(static_cast<size_t>(G * H));
  std::vector<double> zg(static_cast<size_t>(H)), rg(static_cast<size_t>(H));
  auto cl = [clip](double v) { return clip > 0 ? std::clamp(v, -clip, clip) : v; };
  for (int d = 0; d < D; ++d) {
    const bool reverse = direction == "reverse" || d == 1;
    const double* Wd = &w[size_t(d * G * H * I)];
    const double* Rd = &r[size_t(d * G * H * H)];
    const double* Wb = &bias[size_t(d * 2 * G * H)];
    const double* Rb = Wb + G * H;
    const double* Pd = &peep[size_t(d * 3 * H)];
    const Activation* f = &acts[size_t(d * per_dir)];
    for (int64_t b = 0; b < B; ++b) {
      double* hs = &hstate[size_t((d * B + b) * H)];
      double* cs = kind == Kind::kLstm ? &cstate[size_t((d * B + b) * H)] : nullptr;
      const int64_t L = lens[size_t(b)];
      for (int64_t step = 0; step < L; ++step) {
        const int64_t t = reverse ? L - 1 - step : step;
        const double* xt = &x[size_t(layout == 0 ? (t * B + b) * I : (b * S + t) * I)];
        // gx = W xt + Wb, gh = R h + Rb, per gate row.
        for (int64_t g = 0; g < G * H; ++g) {
          double a = Wb[g];
          const double* wr = Wd + g * I;
          for (int64_t k = 0; k < I; ++k) a += wr[k] * xt[k];
          gx[size_t(g)] = a;
          double c = Rb[g];
          const double* rr = Rd + g * H;
          for (int64_t k = 0; k < H; ++k) c += rr[k] * hs[k];
          gh[size_t(g)] = c;
        }
        double* yt = &y[size_t(((t * D + d) * B + b) * H)];
        if (kind == Kind::kRnn) {
          for (int64_t h = 0; h < H; ++h) yt[h] = f[0](cl(gx[size_t(h)] + gh[size_t(h)]));
        } else if (kind == Kind::kGru) {
          for (int64_t h = 0; h < H; ++h) {
            zg[size_t(h)] = f[0](cl(gx[size_t(h)] + gh[size_t(h)]));
            rg[size_t(h)] = f[0](cl(gx[size_t(H + h)] + gh[size_t(H + h)]));
          }
          for (int64_t h = 0; h < H; ++h) {
            double pre;
            if (lbr) {
              // W_h x + Wb_h + r (.) (R_h h + Rb_h)
              pre = gx[size_t(2 * H + h)] + rg[size_t(h)] * gh[size_t(2 * H + h)];
            } else {
              // W_h x + Wb_h + R_h (r (.) h) + Rb_h
              pre = gx[size_t(2 * H + h)] + Rb[2 * H + h];
              const double* rr = Rd + (2 * H + h) * H;
              for (int64_t k = 0; k < H; ++k) pre += rr[k] * rg[size_t(k)] * hs[k];
            }
            const double z = zg[size_t(h)];
            yt[h] = (1 - z) * f[1](cl(pre)) + z * hs[h];
          }
        } else {
          for (int64_t h = 0; h < H; ++h) {
            const double pi = gx[size_t(h)] + gh[size_t(h)] + Pd[h] * cs[h];
            const double pf = gx[size_t(2 * H + h)] + gh[size_t(2 * H + h)] + Pd[2 * H + h] * cs[h];
            const double pc = gx[size_t(3 * H + h)] + gh[size_t(3 * H + h)];
            const double ig = f[0](cl(pi));
            const double fg = input_forget ? 1 - ig : f[0](cl(pf));
            const double cg = f[1](cl(pc));
            const double cn = fg * cs[h] + ig * cg;
            const double po = gx[size_t(H + h)] + gh[size_t(H + h)] + Pd[H + h] * cn;
            const double og = f[0](cl(po));
            yt[h] = og * f[2](cn);
            cs[h] = cn;
          }
        }
        std::copy(yt, yt + H, hs);
      }
    }
  }

  if (ctx.output_requested(0)) {
    if (layout == 0) {
      store_doubles(ctx.output(0, dt, {S, D, B, H}), y, ctx.op());
    } else {
      std::vector<double> yl(y.size());
      for (int64_t t = 0; t < S; ++t)
        for (int d = 0; d < D; ++d)
          for (int64_t b = 0; b < B; ++b)
            std::copy_n(&y[size_t(((t * D + d) * B + b) * H)], H, &yl[size_t(((b * S + t) * D + d) * H)]);
      store_doubles(ctx.output(0, dt, {B, S, D, H}), yl, ctx.op());
    }
  }
  auto store_state = [&](int idx, const std::vector<double>& s) {
    if (!ctx.output_requested(idx)) return;
    if (layout == 0) {
      store_doubles(ctx.output(idx, dt, {D, B, H}), s, ctx.op());
      return;
    }
    std::vector<double> v(s.size());
    for (int d = 0; d < D; ++d)
      for (int64_t b = 0; b < B; ++b)
        std::copy_n(&s[size_t((d * B + b) * H)], H, &v[size_t((b * D + d) * H)]);
    store_doubles(ctx.output(idx, dt, {B, D, H}), v, ctx.op());
  };
  store_state(1, hstate);
  if (kind == Kind::kLstm) store_state(2, cstate);
}

void infer_recurrent(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const Node& n = ctx.node;
  const DType dt = ctx.input(0).dtype;
  const int64_t layout = n.attr_int("layout", 0);
  const int64_t D = n.attr_string("direction", "forward") == "bidirectional" ? 2 : 1;
  Dim S, B, H;
  if (const auto& xs = ctx.input(0).shape; xs && xs->size() == 3) {
    S = (*xs)[layout == 0 ? 0 : 1];
    B = (*xs)[layout == 0 ? 1 : 0];
  }
  if (n.has_attr("hidden_size")) H = Dim::known(n.attr_int("hidden_size", 0));
  else if (ctx.has_input(2) && ctx.input(2).shape && ctx.input(2).shape->size() == 3) H = (*ctx.input(2).shape)[2];
  const Dim Dd = Dim::known(D);
  for (size_t i = 0; i < ctx.outputs.size(); ++i) {
    if (i == 0) ctx.set(0, dt, layout == 0 ? SymShape{S, Dd, B, H} : SymShape{B, S, Dd, H});
    else ctx.set(int(i), dt, layout == 0 ? SymShape{Dd, B, H} : SymShape{B, Dd, H});
  }
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(RNN) {
  def.infer = infer_recurrent;
  def.reference = [](KernelContext& ctx) { run_recurrent(ctx, Kind::kRnn); };
}

DEEPEP_DEFINE_OP(GRU) {
  def.infer = infer_recurrent;
  def.reference = [](KernelContext& ctx) { run_recurrent(ctx, Kind::kGru); };
}

DEEPEP_DEFINE_OP(LSTM) {
  def.infer = infer_recurrent;
  def.reference = [](KernelContext& ctx) { run_recurrent(ctx, Kind::kLstm); };
}
