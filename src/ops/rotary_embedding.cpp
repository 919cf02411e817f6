// RotaryEmbedding (opset 23): rotates pairs of features of each head by the
// angles whose cos/sin are given in caches, indexed by position_ids (caches of
// shape (max_position, rotary_dim/2)) or per (batch, seq) (caches of shape
// (batch, seq, rotary_dim/2)). Input (B, H, S, D) or (B, S, H*D) with
// num_heads; pairs are (k, k + rotary_dim/2) or, interleaved, (2k, 2k+1);
// features past rotary_embedding_dim pass through.
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

void run_rotary(KernelContext& ctx) {
  const Node& n = ctx.node;
  const Tensor& X = ctx.input(0);
  const Tensor& cosc = ctx.input(1);
  const Tensor& sinc = ctx.input(2);
  DEEPEP_CHECK(X.rank() == 3 || X.rank() == 4, n.describe(), ": input must be 3-D or 4-D, got ",
               shape_str(X.shape()));
  DEEPEP_CHECK(cosc.dtype() == X.dtype() && sinc.dtype() == X.dtype(), n.describe(),
               ": cos_cache/sin_cache dtype must match the input");
  const int64_t B = X.dim(0);
  int64_t H, S, D;
  if (X.rank() == 4) {
    H = X.dim(1);
    S = X.dim(2);
    D = X.dim(3);
  } else {
    H = n.attr_int("num_heads", 0);
    DEEPEP_CHECK(H > 0, n.describe(), ": a 3-D input needs a positive num_heads attribute");
    S = X.dim(1);
    DEEPEP_CHECK(X.dim(2) % H == 0, n.describe(), ": hidden size ", X.dim(2), " is not divisible by num_heads ", H);
    D = X.dim(2) / H;
  }
  int64_t rd = n.attr_int("rotary_embedding_dim", 0);
  if (rd == 0) rd = D;
  DEEPEP_CHECK(rd > 0 && rd <= D && rd % 2 == 0, n.describe(), ": rotary_embedding_dim ", rd,
               " must be even and at most the head size ", D);
  const int64_t half = rd / 2;
  const bool interleaved = n.attr_int("interleaved", 0) != 0;
  std::vector<int64_t> pos;
  if (ctx.has_input(3)) {
    const Tensor& p = ctx.input(3);
    DEEPEP_CHECK(p.rank() == 2 && p.dim(0) == B && p.dim(1) == S, n.describe(), ": position_ids ",
                 shape_str(p.shape()), " must be (batch, seq) = (", B, ", ", S, ")");
    DEEPEP_CHECK(cosc.rank() == 2 && sinc.shape() == cosc.shape() && cosc.dim(1) == half, n.describe(),
                 ": with position_ids the caches must be (max_position, ", half, "), got ", shape_str(cosc.shape()),
                 " and ", shape_str(sinc.shape()));
    pos = p.to_int_vector();
    for (int64_t v : pos)
      DEEPEP_CHECK(v >= 0 && v < cosc.dim(0), n.describe(), ": position id ", v, " is outside the cache of ",
                   cosc.dim(0), " positions");
  } else {
    DEEPEP_CHECK(cosc.rank() == 3 && sinc.shape() == cosc.shape() && cosc.dim(0) == B && cosc.dim(1) == S &&
                     cosc.dim(2) == half,
                 n.describe(), ": without position_ids the caches must be (", B, ", ", S, ", ", half, "), got ",
                 shape_str(cosc.shape()), " and ", shape_str(sinc.shape()));
  }
  Tensor& Y = ctx.output(0, X.dtype(), X.shape());
  dispatch_float(X.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using Cp = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const T* x = X.data<T>();
    const T* cs = cosc.data<T>();
    const T* sn = sinc.data<T>();
    T* y = Y.data<T>();
    const bool is4d = X.rank() == 4;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t row = pos.empty() ? b * S + s : pos[size_t(b * S + s)];
        const T* c = cs + row * half;
        const T* si = sn + row * half;
        for (int64_t h = 0; h < H; ++h) {
          const int64_t off = is4d ? ((b * H + h) * S + s) * D : (b * S + s) * H * D + h * D;
          const T* xi = x + off;
          T* yi = y + off;
          for (int64_t k = 0; k < half; ++k) {
            const int64_t i1 = interleaved ? 2 * k : k;
            const int64_t i2 = interleaved ? 2 * k + 1 : k + half;
            const Cp x1 = Cp(xi[i1]), x2 = Cp(xi[i2]), cv = Cp(c[k]), sv = Cp(si[k]);
            yi[i1] = T(cv * x1 - sv * x2);
            yi[i2] = T(sv * x1 + cv * x2);
          }
          for (int64_t k = rd; k < D; ++k) yi[k] = xi[k];
        }
      }
  });
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(RotaryEmbedding) {
  def.infer = infer_same_as_input;
  def.reference = run_rotary;
}
