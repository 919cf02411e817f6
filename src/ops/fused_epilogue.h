// The epilogue of deepep.FusedMatMul and deepep.FusedConv: what happens to
// each output element after the GEMM, in one pass over the output block
// while it is still warm:
//   v = acc + bias[channel]
//   v += residual            (residual_before_activation = 1)
//   v = activation(v)
//   v += residual            (residual_before_activation = 0, the default)
// Attributes: activation (string, "" none; Relu, LeakyRelu(alpha), Sigmoid,
// Tanh, SiLU (x*sigmoid(x)), Gelu (erf), GeluTanh, Clip(min, max),
// HardSigmoid(alpha, beta), HardSwish), activation_params (floats, as
// listed), residual_before_activation (int). The functions are the ones of
// the ONNX kernels (src/ops/activation.cpp, unary.cpp, clip.cpp), in float.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/op_util.h"

namespace deepep::ops {

enum class Act { kNone, kRelu, kLeakyRelu, kSigmoid, kTanh, kSiLU, kGelu, kGeluTanh, kClip, kHardSigmoid, kHardSwish };

struct Epilogue {
  Act act = Act::kNone;
  float p0 = 0, p1 = 0;  // alpha / min, beta / max
  bool residual_first = false;
};

// Number of activation_params each activation takes.
inline int act_param_count(Act a) {
  switch (a) {
    case Act::kLeakyRelu: return 1;
    case Act::kClip:
    case Act::kHardSigmoid: return 2;
    default: return 0;
  }
}

// nullopt-like: returns false for an unknown name.
inline bool act_from_name(const std::string& s, Act& out) {
  static const std::pair<const char*, Act> kNames[] = {
      {"", Act::kNone},           {"Relu", Act::kRelu},         {"LeakyRelu", Act::kLeakyRelu},
      {"Sigmoid", Act::kSigmoid}, {"Tanh", Act::kTanh},         {"SiLU", Act::kSiLU},
      {"Gelu", Act::kGelu},       {"GeluTanh", Act::kGeluTanh}, {"Clip", Act::kClip},
      {"HardSigmoid", Act::kHardSigmoid}, {"HardSwish", Act::kHardSwish}};
  for (const auto& [n, a] : kNames)
    if (s == n) {
      out = a;
      return true;
    }
  return false;
}

inline Epilogue read_epilogue(const Node& node) {
  Epilogue e;
  const std::string name = node.attr_string("activation", "");
  DEEPEP_CHECK(act_from_name(name, e.act), node.describe(), ": unknown activation '", name, "'");
  const std::vector<float> p = node.attr_floats("activation_params", {});
  DEEPEP_CHECK(int(p.size()) == act_param_count(e.act), node.describe(), ": activation '", name, "' takes ",
               act_param_count(e.act), " activation_params, got ", p.size());
  if (p.size() > 0) e.p0 = p[0];
  if (p.size() > 1) e.p1 = p[1];
  e.residual_first = node.attr_int("residual_before_activation", 0) != 0;
  return e;
}

inline float sigmoid_f(float v) {
  if (v >= 0) return 1.f / (1.f + std::exp(-v));
  const float e = std::exp(v);
  return e / (1.f + e);
}

template <Act A>
inline float activate(float v, float p0, float p1) {
  if constexpr (A == Act::kRelu) return v > 0.f ? v : (v == v ? 0.f : v);
  else if constexpr (A == Act::kLeakyRelu) return v >= 0.f ? v : p0 * v;
  else if constexpr (A == Act::kSigmoid) return sigmoid_f(v);
  else if constexpr (A == Act::kTanh) return std::tanh(v);
  else if constexpr (A == Act::kSiLU) return v * sigmoid_f(v);
  else if constexpr (A == Act::kGelu) return 0.5f * v * (1.f + std::erf(v * float(M_SQRT1_2)));
  else if constexpr (A == Act::kGeluTanh)
    return 0.5f * v * (1.f + std::tanh(0.79788456080286535588f * (v + 0.044715f * v * v * v)));
  else if constexpr (A == Act::kClip) return v < p0 ? p0 : (v > p1 ? p1 : v);
  else if constexpr (A == Act::kHardSigmoid) return std::max(0.f, std::min(1.f, p0 * v + p1));
  else if constexpr (A == Act::kHardSwish) return v * std::max(0.f, std::min(1.f, v / 6.f + 0.5f));
  else return v;
}

// One row segment: out[j] = epilogue(out[j] + bias[j*bias_step] ...) with the
// residual read at res[j*res_step] (res may be null).
template <Act A>
inline void epilogue_row(float* out, int64_t n, const float* bias, int64_t bias_step, const float* res,
                         int64_t res_step, bool res_first, float p0, float p1) {
  for (int64_t j = 0; j < n; ++j) {
    float v = out[j];
    if (bias) v += bias[j * bias_step];
    if (res && res_first) v += res[j * res_step];
    v = activate<A>(v, p0, p1);
    if (res && !res_first) v += res[j * res_step];
    out[j] = v;
  }
}

// Calls f.template operator()<A>() with the epilogue's activation as a
// template argument, so each activation gets its own inner loop.
template <class F>
inline void with_activation(Act a, F&& f) {
  switch (a) {
    case Act::kNone: return f.template operator()<Act::kNone>();
    case Act::kRelu: return f.template operator()<Act::kRelu>();
    case Act::kLeakyRelu: return f.template operator()<Act::kLeakyRelu>();
    case Act::kSigmoid: return f.template operator()<Act::kSigmoid>();
    case Act::kTanh: return f.template operator()<Act::kTanh>();
    case Act::kSiLU: return f.template operator()<Act::kSiLU>();
    case Act::kGelu: return f.template operator()<Act::kGelu>();
    case Act::kGeluTanh: return f.template operator()<Act::kGeluTanh>();
    case Act::kClip: return f.template operator()<Act::kClip>();
    case Act::kHardSigmoid: return f.template operator()<Act::kHardSigmoid>();
    case Act::kHardSwish: return f.template operator()<Act::kHardSwish>();
  }
}

// Rough cost of one epilogue element in multiply-adds, for threading.
inline double epilogue_work(Act a) {
  switch (a) {
    case Act::kNone:
    case Act::kRelu:
    case Act::kLeakyRelu:
    case Act::kClip:
    case Act::kHardSigmoid:
    case Act::kHardSwish: return 2;
    default: return 24;
  }
}

// Output shape of an op whose epilogue adds `residual`: it must broadcast
// into `out` without enlarging it.
inline void check_residual(const Node& node, const Shape& res, const Shape& out) {
  bool ok = res.size() <= out.size();
  for (size_t i = 0; ok && i < res.size(); ++i) {
    const int64_t d = res[res.size() - 1 - i], o = out[out.size() - 1 - i];
    ok = d == o || d == 1;
  }
  DEEPEP_CHECK(ok, node.describe(), ": residual of shape ", shape_str(res), " does not broadcast into the output ",
               shape_str(out));
}

// Per-row offsets of a residual broadcast into out [..., M, N] with the leading
// dims folded into M rows: element (i, j) reads residual[row_off[i] + j * col_step].
inline std::vector<int64_t> residual_row_offsets(const Shape& res, const Shape& out, int64_t M,
                                                 int64_t& col_step) {
  const std::vector<int64_t> st = broadcast_strides(res, out);
  col_step = st.back();
  std::vector<int64_t> row_off(size_t(M), 0);
  const Shape lead(out.begin(), out.end() - 1);
  std::vector<int64_t> idx(lead.size(), 0);
  int64_t off = 0;
  for (int64_t i = 0; i < M; ++i) {
    row_off[size_t(i)] = off;
    for (size_t d = lead.size(); d-- > 0;) {
      if (++idx[d] < lead[d]) {
        off += st[d];
        break;
      }
      off -= st[d] * (lead[d] - 1);
      idx[d] = 0;
    }
  }
  return row_off;
}

}  // namespace deepep::ops
