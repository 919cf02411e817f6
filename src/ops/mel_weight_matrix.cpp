// MelWeightMatrix (opset 17): a (dft_length/2 + 1, num_mel_bins) matrix of
// triangular filters, evenly spaced on the mel scale between lower_edge_hertz
// and upper_edge_hertz, that maps a onesided magnitude spectrum to mel bins.
// Follows the ONNX reference: filter edges are spectrogram bins
// floor((dft_length + 1) * hz / sample_rate).
#include <cmath>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

void run_mel(KernelContext& ctx) {
  const Node& n = ctx.node;
  for (int i = 0; i < 5; ++i)
    DEEPEP_CHECK(ctx.input(i).numel() == 1, n.describe(), ": input ", i, " must be a scalar");
  const int64_t mel_bins = ctx.input(0).get_int(0);
  const int64_t dft_length = ctx.input(1).get_int(0);
  const int64_t sample_rate = ctx.input(2).get_int(0);
  const double lower = ctx.input(3).get_double(0);
  const double upper = ctx.input(4).get_double(0);
  DEEPEP_CHECK(mel_bins > 0 && dft_length > 0 && sample_rate > 0, n.describe(),
               ": num_mel_bins, dft_length and sample_rate must be positive");
  DEEPEP_CHECK(lower >= 0 && upper > lower, n.describe(), ": need 0 <= lower_edge_hertz < upper_edge_hertz, got ",
               lower, " and ", upper);
  const DType dt = DType(n.attr_int("output_datatype", int64_t(DType::kFloat32)));
  DEEPEP_CHECK(dtype_is_float(dt) || dtype_is_int(dt), n.describe(), ": unsupported output_datatype ", int(dt));
  const int64_t spec_bins = dft_length / 2 + 1;
  // The reference computes the mel edges in the float32 precision of its inputs.
  const float low_mel = 2595.0f * std::log10(1.0f + float(lower) / 700.0f);
  const float high_mel = 2595.0f * std::log10(1.0f + float(upper) / 700.0f);
  const float mel_step = (high_mel - low_mel) / float(mel_bins + 2);
  std::vector<int64_t> edges(static_cast<size_t>(mel_bins + 2));
  for (int64_t i = 0; i < mel_bins + 2; ++i) {
    double hz = double(i) * double(mel_step) + double(low_mel);
    hz = 700.0 * (std::pow(10.0, hz / 2595.0) - 1.0);
    edges[size_t(i)] = int64_t(std::floor(double(dft_length + 1) * hz / double(sample_rate)));
  }
  std::vector<double> w(static_cast<size_t>(spec_bins * mel_bins), 0.0);
  auto at = [&](int64_t j, int64_t i) -> double& {
    DEEPEP_CHECK(j >= 0 && j < spec_bins, n.describe(), ": filter edge ", j, " is outside the ", spec_bins,
                 " spectrogram bins (upper_edge_hertz above the Nyquist frequency?)");
    return w[size_t(j * mel_bins + i)];
  };
  for (int64_t i = 0; i < mel_bins; ++i) {
    const int64_t lo = edges[size_t(i)], center = edges[size_t(i + 1)], hi = edges[size_t(i + 2)];
    if (center == lo) {
      at(center, i) = 1;
    } else {
      for (int64_t j = lo; j <= center; ++j) at(j, i) = double(j - lo) / double(center - lo);
    }
    if (hi > center)
      for (int64_t j = center; j < hi; ++j) at(j, i) = double(hi - j) / double(hi - center);
  }
  Tensor& y = ctx.output(0, dt, {spec_bins, mel_bins});
  dispatch_numeric(dt, ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = y.data<T>();
    for (size_t i = 0; i < w.size(); ++i) p[i] = T(w[i]);
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(MelWeightMatrix) {
  def.infer = [](InferContext& ctx) {
    const DType dt = DType(ctx.node.attr_int("output_datatype", int64_t(DType::kFloat32)));
    Dim rows, cols;
    if (const Tensor* d = ctx.constant(1)) rows = Dim::known(d->get_int(0) / 2 + 1);
    if (const Tensor* m = ctx.constant(0)) cols = Dim::known(m->get_int(0));
    ctx.set(0, dt, SymShape{rows, cols});
  };
  def.reference = run_mel;
}
