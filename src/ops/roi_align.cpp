// RoiAlign: average or max of bilinear samples over a regular grid in each
// output bin of each region of interest (the ONNX reference algorithm,
// including its max mode, which takes the largest weighted corner).
#include <cmath>

#include "ops/gemm_util.h"

using namespace deepep;
using namespace deepep::ops;

namespace {

struct Sample {
  int64_t pos[4];
  double w[4];
};

}  // namespace

DEEPEP_DEFINE_OP(RoiAlign) {
  def.infer = [](InferContext& ctx) {
    if (!ctx.has_input(0)) return;
    std::optional<SymShape> shape;
    const Value& x = ctx.input(0);
    if (x.shape && x.shape->size() == 4 && ctx.has_input(1) && ctx.input(1).shape &&
        !ctx.input(1).shape->empty())
      shape = SymShape{(*ctx.input(1).shape)[0], (*x.shape)[1],
                       Dim::known(ctx.node.attr_int("output_height", 1)),
                       Dim::known(ctx.node.attr_int("output_width", 1))};
    ctx.set(0, x.dtype, shape);
  };
  def.reference = [](KernelContext& ctx) {
    const Node& node = ctx.node;
    const Tensor& x = ctx.input(0);
    const Tensor& rois = ctx.input(1);
    const Tensor& bi = ctx.input(2);
    DEEPEP_CHECK(x.rank() == 4, node.describe(), ": X must be [N, C, H, W], got ", shape_str(x.shape()));
    DEEPEP_CHECK(rois.rank() == 2 && rois.dim(1) == 4 && rois.dtype() == x.dtype(), node.describe(),
                 ": rois must be ", dtype_name(x.dtype()), "[num_rois, 4], got ",
                 dtype_name(rois.dtype()), shape_str(rois.shape()));
    DEEPEP_CHECK(bi.rank() == 1 && bi.dim(0) == rois.dim(0) && dtype_is_int(bi.dtype()), node.describe(),
                 ": batch_indices must be an integer [", rois.dim(0), "] tensor");
    const int64_t PH = node.attr_int("output_height", 1), PW = node.attr_int("output_width", 1);
    DEEPEP_CHECK(PH >= 1 && PW >= 1, node.describe(), ": output_height/width must be positive");
    const int64_t sampling = node.attr_int("sampling_ratio", 0);
    const double scale = node.attr_float("spatial_scale", 1.f);
    const bool max_mode = node.attr_string("mode", "avg") == "max";
    const std::string ctm = node.attr_string("coordinate_transformation_mode",
                                             node.opset >= 16 || node.opset == 0 ? "half_pixel"
                                                                                  : "output_half_pixel");
    DEEPEP_CHECK(ctm == "half_pixel" || ctm == "output_half_pixel", node.describe(),
                 ": unknown coordinate_transformation_mode '", ctm, "'");
    const bool half_pixel = ctm == "half_pixel";
    const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), R = rois.dim(0);
    DEEPEP_CHECK((H > 0 && W > 0) || R == 0 || C == 0, node.describe(), ": X has an empty image");
    Tensor& y = ctx.output(0, x.dtype(), {R, C, PH, PW});
    dispatch_float(x.dtype(), ctx.op(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* px = x.data<T>();
      const T* pr = rois.data<T>();
      T* py = y.data<T>();
      std::vector<Sample> samples;
      for (int64_t r = 0; r < R; ++r) {
        const int64_t b = bi.get_int(r);
        DEEPEP_CHECK(b >= 0 && b < N, node.describe(), ": batch index ", b, " is out of range [0, ", N, ")");
        const double off = half_pixel ? 0.5 : 0.0;
        const double x0 = double(pr[r * 4 + 0]) * scale - off, y0 = double(pr[r * 4 + 1]) * scale - off;
        const double x1 = double(pr[r * 4 + 2]) * scale - off, y1 = double(pr[r * 4 + 3]) * scale - off;
        double rw = x1 - x0, rh = y1 - y0;
        if (!half_pixel) rw = std::max(rw, 1.0), rh = std::max(rh, 1.0);
        const double bh = rh / double(PH), bw = rw / double(PW);
        const int64_t gh = sampling > 0 ? sampling : int64_t(std::ceil(rh / double(PH)));
        const int64_t gw = sampling > 0 ? sampling : int64_t(std::ceil(rw / double(PW)));
        const double count = double(std::max<int64_t>(gh * gw, 1));
        // Sample positions and weights, shared by all channels.
        samples.clear();
        for (int64_t ph = 0; ph < PH; ++ph)
          for (int64_t pw = 0; pw < PW; ++pw)
            for (int64_t iy = 0; iy < gh; ++iy) {
              const double yy = y0 + double(ph) * bh + (double(iy) + 0.5) * bh / double(gh);
              for (int64_t ix = 0; ix < gw; ++ix) {
                double xx = x0 + double(pw) * bw + (double(ix) + 0.5) * bw / double(gw);
                double yv = yy;
                Sample s{};
                if (yv < -1.0 || yv > double(H) || xx < -1.0 || xx > double(W)) {
                  samples.push_back(s);
                  continue;
                }
                yv = std::max(yv, 0.0);
                xx = std::max(xx, 0.0);
                int64_t yl = int64_t(yv), xl = int64_t(xx), yh, xh;
                if (yl >= H - 1) yh = yl = H - 1, yv = double(yl);
                else yh = yl + 1;
                if (xl >= W - 1) xh = xl = W - 1, xx = double(xl);
                else xh = xl + 1;
                const double ly = yv - double(yl), lx = xx - double(xl), hy = 1 - ly, hx = 1 - lx;
                s.pos[0] = yl * W + xl, s.pos[1] = yl * W + xh, s.pos[2] = yh * W + xl, s.pos[3] = yh * W + xh;
                s.w[0] = hy * hx, s.w[1] = hy * lx, s.w[2] = ly * hx, s.w[3] = ly * lx;
                samples.push_back(s);
              }
            }
        for (int64_t c = 0; c < C; ++c) {
          const T* plane = px + (b * C + c) * H * W;
          const Sample* sp = samples.data();
          for (int64_t o = 0; o < PH * PW; ++o) {
            double acc = 0;
            bool first = true;
            for (int64_t k = 0; k < gh * gw; ++k, ++sp) {
              if (max_mode) {
                double v = sp->w[0] * double(plane[sp->pos[0]]);
                for (int q = 1; q < 4; ++q) v = std::max(v, sp->w[q] * double(plane[sp->pos[q]]));
                acc = first ? v : std::max(acc, v);
                first = false;
              } else {
                for (int q = 0; q < 4; ++q) acc += sp->w[q] * double(plane[sp->pos[q]]);
              }
            }
            py[((r * C + c) * PH) * PW + o] = T(max_mode ? acc : acc / count);
          }
        }
      }
    });
  };
}
