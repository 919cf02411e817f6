// HannWindow, HammingWindow, BlackmanWindow (opset 17): a window of `size`
// points (scalar input), periodic (N = size) or symmetric (N = size - 1),
// in output_datatype (default float32). Computed in double.
#include <cmath>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

template <class F>
void run_window(KernelContext& ctx, F f) {
  const Node& n = ctx.node;
  const Tensor& s = ctx.input(0);
  DEEPEP_CHECK(s.numel() == 1 && dtype_is_int(s.dtype()), n.describe(), ": size must be an integer scalar");
  const int64_t size = s.get_int(0);
  DEEPEP_CHECK(size >= 0, n.describe(), ": size must be non-negative, got ", size);
  const DType dt = DType(n.attr_int("output_datatype", int64_t(DType::kFloat32)));
  DEEPEP_CHECK(dtype_is_float(dt) || dtype_is_int(dt), n.describe(), ": unsupported output_datatype ",
               int(dt));
  const bool periodic = n.attr_int("periodic", 1) != 0;
  const double N = double(periodic ? size : size - 1);
  Tensor& y = ctx.output(0, dt, {size});
  dispatch_numeric(dt, ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = y.data<T>();
    for (int64_t i = 0; i < size; ++i) p[i] = T(f(double(i), N));
  });
}

void infer_window(InferContext& ctx) {
  const DType dt = DType(ctx.node.attr_int("output_datatype", int64_t(DType::kFloat32)));
  std::optional<SymShape> shape = SymShape{Dim{}};
  if (const Tensor* s = ctx.constant(0)) shape = SymShape{Dim::known(s->get_int(0))};
  ctx.set(0, dt, shape);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(HannWindow) {
  def.infer = infer_window;
  def.reference = [](KernelContext& ctx) {
    run_window(ctx, [](double i, double N) {
      const double s = std::sin(M_PI * i / N);
      return s * s;
    });
  };
}

DEEPEP_DEFINE_OP(HammingWindow) {
  def.infer = infer_window;
  def.reference = [](KernelContext& ctx) {
    run_window(ctx, [](double i, double N) {
      constexpr double alpha = 25.0 / 46.0;
      return alpha - (1 - alpha) * std::cos(2 * M_PI * i / N);
    });
  };
}

DEEPEP_DEFINE_OP(BlackmanWindow) {
  def.infer = infer_window;
  def.reference = [](KernelContext& ctx) {
    run_window(ctx, [](double i, double N) {
      return 0.42 - 0.5 * std::cos(2 * M_PI * i / N) + 0.08 * std::cos(4 * M_PI * i / N);
    });
  };
}
