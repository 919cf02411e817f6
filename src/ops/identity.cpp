// Identity, and Dropout. Dropout in inference mode (the default) is the
// identity with an all-true mask; in training mode (training_mode input true,
// ratio > 0) it zeroes elements with probability `ratio` and scales the rest by
// 1 / (1 - ratio). Its random stream is numpy's legacy RandomState: MT19937
// seeded with the `seed` attribute and 53-bit uniform doubles, so a seeded node
// reproduces numpy.random.seed(seed); numpy.random.uniform(size=x.shape).
#include <random>

#include "ops/op_util.h"

using namespace deepep;
using namespace deepep::ops;

namespace {

// The output may share the input's storage when that storage is reference
// counted; a tensor without an owner views a caller's buffer that is only
// guaranteed to live for the call, so it is copied.
Tensor share_or_copy(const Tensor& t) { return t.owner() ? t : t.clone(); }

}  // namespace

DEEPEP_DEFINE_OP(Identity) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) { ctx.set_output(0, share_or_copy(ctx.input(0))); };
}

namespace {

// Dropout-7/Dropout-9 return the mask in the data type; Dropout-10+ return bool.
DType mask_dtype(const Node& node, DType x) {
  return node.opset > 0 && node.opset < 10 ? x : DType::kBool;
}

}  // namespace

DEEPEP_DEFINE_OP(Dropout) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    ctx.set(0, ctx.input(0).dtype, ctx.input(0).shape);
    if (ctx.outputs.size() > 1) ctx.set(1, mask_dtype(ctx.node, ctx.input(0).dtype), ctx.input(0).shape);
  };
  def.reference = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const bool inputs_form = ctx.node.opset == 0 || ctx.node.opset >= 12;
    double ratio = ctx.node.attr_float("ratio", 0.5f);
    bool training = false;
    if (inputs_form) {
      ratio = 0.5;
      if (ctx.has_input(1)) {
        DEEPEP_CHECK(ctx.input(1).numel() == 1, ctx.node.describe(), ": ratio must be a scalar");
        ratio = ctx.input(1).get_double(0);
      }
      if (ctx.has_input(2)) {
        DEEPEP_CHECK(ctx.input(2).numel() == 1 && ctx.input(2).dtype() == DType::kBool, ctx.node.describe(),
                     ": training_mode must be a bool scalar");
        training = ctx.input(2).data<bool>()[0];
      }
    }
    DEEPEP_CHECK(ratio >= 0 && ratio < 1, ctx.node.describe(), ": ratio must be in [0, 1), got ", ratio);
    const bool want_mask = ctx.output_requested(1);
    const DType mdt = mask_dtype(ctx.node, x.dtype());
    if (!training || ratio == 0) {
      ctx.set_output(0, share_or_copy(x));
      if (want_mask) {
        Tensor& m = ctx.output(1, mdt, x.shape());
        dispatch_all(mdt, ctx.op(), [&](auto tag) {
          using M = typename decltype(tag)::type;
          M* pm = m.data<M>();
          for (int64_t i = 0, n = m.numel(); i < n; ++i) pm[i] = M(1);
        });
      }
      return;
    }
    // Training mode.
    std::mt19937 gen(ctx.node.has_attr("seed") ? uint32_t(ctx.node.attr_int("seed", 0))
                                               : std::random_device{}());
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    Tensor m = Tensor(DType::kBool, x.shape());
    bool* pm = m.data<bool>();
    dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using C = std::conditional_t<std::is_same_v<T, double>, double, float>;
      const C scale = C(1) / (C(1) - C(ratio));
      const T* px = x.data<T>();
      T* py = y.data<T>();
      for (int64_t i = 0, n = x.numel(); i < n; ++i) {
        const uint32_t a = gen() >> 5, b = gen() >> 6;
        const double u = (a * 67108864.0 + b) / 9007199254740992.0;
        pm[i] = u >= ratio;
        py[i] = pm[i] ? T(C(px[i]) * scale) : T(0);
      }
    });
    if (want_mask) ctx.set_output(1, std::move(m));
  };
}
