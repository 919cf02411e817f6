// TensorScatter (opset 24): writes `update` into a copy of the KV cache
// `past_cache` along `axis` (default -2) at per-batch offsets write_indices
// (default 0); "circular" mode wraps offsets modulo the cache length.
#include "ops/tensor_util.h"

using namespace deepep;
using namespace deepep::ops;
using namespace deepep::ops::tensor_detail;

DEEPEP_DEFINE_OP(TensorScatter) {
  def.infer = infer_same_as_input;
  def.reference = [](KernelContext& ctx) {
    const Tensor& cache = ctx.input(0);
    const Tensor& upd = ctx.input(1);
    const std::string mode = ctx.node.attr_string("mode", "linear");
    DEEPEP_CHECK(mode == "linear" || mode == "circular", ctx.node.describe(), ": unknown mode '",
                 mode, "' (expected linear or circular)");
    const int64_t r = cache.rank();
    DEEPEP_CHECK(r >= 2 && upd.rank() == r, ctx.node.describe(), ": past_cache ",
                 shape_str(cache.shape()), " and update ", shape_str(upd.shape()),
                 " must have the same rank >= 2");
    DEEPEP_CHECK(upd.dtype() == cache.dtype(), ctx.node.describe(), ": update dtype differs");
    const int64_t axis = axis_in(ctx.node.attr_int("axis", -2), r, ctx.node);
    DEEPEP_CHECK(axis > 0, ctx.node.describe(), ": axis must not be the batch axis 0");
    for (int64_t d = 0; d < r; ++d)
      DEEPEP_CHECK(d == axis ? upd.dim(int(d)) <= cache.dim(int(d)) : upd.dim(int(d)) == cache.dim(int(d)),
                   ctx.node.describe(), ": update ", shape_str(upd.shape()),
                   " does not fit past_cache ", shape_str(cache.shape()), " on axis ", d);
    const int64_t batch = cache.dim(0), max_len = cache.dim(int(axis)), len = upd.dim(int(axis));
    std::vector<int64_t> wi(size_t(batch), 0);
    if (ctx.has_input(2)) {
      const Tensor& w = ctx.input(2);
      DEEPEP_CHECK(w.rank() == 1 && w.dim(0) == batch, ctx.node.describe(), ": write_indices ",
                   shape_str(w.shape()), " must have one entry per batch (", batch, ")");
      wi = index_values(w, ctx.node, "write_indices");
    }
    ctx.set_output(0, cache.clone());
    Tensor& y = ctx.outputs[0];
    int64_t prefix = 1, per_batch = 1, inner = int64_t(dtype_size(cache.dtype()));
    for (int64_t d = 0; d < axis; ++d) prefix *= cache.dim(int(d));
    for (int64_t d = 1; d < axis; ++d) per_batch *= cache.dim(int(d));
    for (int64_t d = axis + 1; d < r; ++d) inner *= cache.dim(int(d));
    const auto* src = static_cast<const uint8_t*>(upd.raw());
    auto* dst = static_cast<uint8_t*>(y.raw());
    if (inner == 0 || len == 0) return;
    for (int64_t p = 0; p < prefix; ++p) {
      const int64_t b = p / per_batch;
      for (int64_t s = 0; s < len; ++s) {
        int64_t pos = wi[size_t(b)] + s;
        if (mode == "circular") pos = ((pos % max_len) + max_len) % max_len;
        DEEPEP_CHECK(pos >= 0 && pos < max_len, ctx.node.describe(), ": write index ",
                     wi[size_t(b)], " + ", s, " is out of range for a cache of length ", max_len);
        std::memcpy(dst + (p * max_len + pos) * inner, src + (p * len + s) * inner, size_t(inner));
      }
    }
  };
}
