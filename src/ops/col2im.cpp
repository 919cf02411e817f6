// Col2Im: sums the sliding blocks of a column matrix [N, C*prod(block), L]
// back into images [N, C, image_shape...] (the inverse layout of im2col).
#include "ops/gemm_util.h"

using namespace deepep;
using namespace deepep::ops;

namespace {

// Geometry of the blocks: SpatialGeom with in = image, k = block, out = blocks.
SpatialGeom col2im_geometry(const Node& node, const std::vector<int64_t>& image,
                            const std::vector<int64_t>& block) {
  const size_t nd = image.size();
  DEEPEP_CHECK(nd >= 1 && nd <= 3, node.describe(), ": image_shape must have 1 to 3 dims, got ", nd);
  DEEPEP_CHECK(block.size() == nd, node.describe(), ": block_shape has ", block.size(),
               " dims, image_shape has ", nd);
  SpatialGeom g;
  g.nd = int(nd);
  g.in = image;
  g.k = block;
  auto get = [&](const char* name, size_t n, int64_t dflt) {
    auto v = node.attr_ints(name, {});
    if (v.empty()) v.assign(n, dflt);
    DEEPEP_CHECK(v.size() == n, node.describe(), ": ", name, " needs ", n, " values");
    return v;
  };
  g.s = get("strides", nd, 1);
  g.d = get("dilations", nd, 1);
  const auto pads = get("pads", 2 * nd, 0);
  for (size_t i = 0; i < nd; ++i) {
    DEEPEP_CHECK(g.s[i] >= 1 && g.d[i] >= 1 && g.k[i] >= 1 && g.in[i] >= 0, node.describe(),
                 ": block, strides and dilations must be positive");
    g.pb.push_back(pads[i]);
    g.pe.push_back(pads[i + nd]);
    const int64_t span = g.in[i] + pads[i] + pads[i + nd] - (g.k[i] - 1) * g.d[i] - 1;
    DEEPEP_CHECK(span >= 0, node.describe(), ": block does not fit the padded image along dim ", i);
    g.out.push_back(span / g.s[i] + 1);
  }
  return g;
}

}  // namespace

DEEPEP_DEFINE_OP(Col2Im) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    const Value& x = ctx.input(0);
    std::optional<SymShape> shape;
    const Tensor* image = ctx.constant(1);
    const Tensor* block = ctx.constant(2);
    if (x.shape && x.shape->size() == 3 && image && block) {
      const auto bl = block->to_int_vector();
      const Dim& cd = (*x.shape)[1];
      Dim c = cd.is_known() ? Dim::known(cd.value / std::max<int64_t>(1, shape_numel(bl))) : Dim{};
      shape = SymShape{(*x.shape)[0], c};
      for (int64_t v : image->to_int_vector()) shape->push_back(Dim::known(v));
    }
    ctx.set(0, x.dtype, shape);
  };
  def.reference = [](KernelContext& ctx) {
    const Node& node = ctx.node;
    const Tensor& x = ctx.input(0);
    const auto image = ctx.input(1).to_int_vector();
    const auto block = ctx.input(2).to_int_vector();
    DEEPEP_CHECK(x.rank() == 3, node.describe(), ": input must be [N, C*prod(block), L], got ",
                 shape_str(x.shape()));
    const SpatialGeom g = col2im_geometry(node, image, block);
    const int64_t ksz = g.k_size();
    DEEPEP_CHECK(ksz > 0 && x.dim(1) % ksz == 0, node.describe(), ": dim 1 (", x.dim(1),
                 ") must be a multiple of prod(block_shape) = ", ksz);
    DEEPEP_CHECK(x.dim(2) == g.out_size(), node.describe(), ": dim 2 (", x.dim(2), ") must equal the ",
                 g.out_size(), " sliding blocks");
    const int64_t N = x.dim(0), C = x.dim(1) / ksz;
    Shape ys{N, C};
    for (int64_t v : image) ys.push_back(v);
    Tensor& y = ctx.output(0, x.dtype(), ys);
    if (y.numel() == 0) return;
    dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      using Cmp = std::conditional_t<std::is_same_v<T, double>, double, float>;
      std::vector<Cmp> col(static_cast<size_t>(x.numel())), img(static_cast<size_t>(y.numel()), Cmp(0));
      for (int64_t i = 0; i < x.numel(); ++i) col[i] = Cmp(x.data<T>()[i]);
      const int64_t isz = g.in_size();
      for (int64_t n = 0; n < N; ++n)
        col2im(col.data() + n * C * ksz * x.dim(2), C, g, img.data() + n * C * isz);
      for (int64_t i = 0; i < y.numel(); ++i) y.data<T>()[i] = T(img[i]);
    });
  };
}
