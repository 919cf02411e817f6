// NonMaxSuppression (opsets 10/11): per batch and class, greedily keeps the
// highest-scoring boxes (ties: lower index first) whose IoU with every kept box
// of that class is at most iou_threshold, up to max_output_boxes_per_class,
// after dropping scores not above score_threshold. Output (num_selected, 3)
// int64 rows of (batch, class, box).
#include <algorithm>
#include <cmath>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

struct Box {
  double x_min, y_min, x_max, y_max;
};

Box corners(const double* b, bool center) {
  if (center) {
    const double hw = b[2] / 2, hh = b[3] / 2;
    return {b[0] - hw, b[1] - hh, b[0] + hw, b[1] + hh};
  }
  // [y1, x1, y2, x2], corners in either order.
  return {std::min(b[1], b[3]), std::min(b[0], b[2]), std::max(b[1], b[3]), std::max(b[0], b[2])};
}

bool suppressed(const Box& a, const Box& b, double iou_threshold) {
  const double ix_min = std::max(a.x_min, b.x_min), ix_max = std::min(a.x_max, b.x_max);
  if (ix_max <= ix_min) return false;
  const double iy_min = std::max(a.y_min, b.y_min), iy_max = std::min(a.y_max, b.y_max);
  if (iy_max <= iy_min) return false;
  const double inter = (ix_max - ix_min) * (iy_max - iy_min);
  const double area_a = (a.x_max - a.x_min) * (a.y_max - a.y_min);
  const double area_b = (b.x_max - b.x_min) * (b.y_max - b.y_min);
  const double uni = area_a + area_b - inter;
  if (inter <= 0 || area_a <= 0 || area_b <= 0 || uni <= 0) return false;
  return inter / uni > iou_threshold;
}

std::vector<double> doubles(const Tensor& t, const char* what) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  dispatch_float(t.dtype(), what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) {
      if constexpr (std::is_same_v<T, double>) v[i] = p[i];
      else v[i] = double(float(p[i]));
    }
  });
  return v;
}

void run_nms(KernelContext& ctx) {
  const Node& n = ctx.node;
  const Tensor& boxes = ctx.input(0);
  const Tensor& scores = ctx.input(1);
  DEEPEP_CHECK(boxes.rank() == 3 && boxes.dim(2) == 4, n.describe(), ": boxes must be (batch, boxes, 4), got ",
               shape_str(boxes.shape()));
  DEEPEP_CHECK(scores.rank() == 3 && scores.dim(0) == boxes.dim(0) && scores.dim(2) == boxes.dim(1),
               n.describe(), ": scores ", shape_str(scores.shape()), " must be (batch, classes, boxes) for boxes ",
               shape_str(boxes.shape()));
  const int64_t center = n.attr_int("center_point_box", 0);
  DEEPEP_CHECK(center == 0 || center == 1, n.describe(), ": center_point_box must be 0 or 1");
  int64_t max_out = 0;
  if (ctx.has_input(2) && ctx.input(2).numel() > 0) max_out = std::max<int64_t>(ctx.input(2).get_int(0), 0);
  double iou_th = 0;
  if (ctx.has_input(3) && ctx.input(3).numel() > 0) iou_th = ctx.input(3).get_double(0);
  std::optional<double> score_th;
  if (ctx.has_input(4) && ctx.input(4).numel() > 0) score_th = ctx.input(4).get_double(0);
  DEEPEP_CHECK(iou_th >= 0 && iou_th <= 1, n.describe(), ": iou_threshold must be in [0, 1], got ", iou_th);

  const int64_t B = boxes.dim(0), NB = boxes.dim(1), NC = scores.dim(1);
  const std::vector<double> bx = doubles(boxes, ctx.op());
  const std::vector<double> sc = doubles(scores, ctx.op());
  std::vector<int64_t> sel;
  std::vector<Box> all(static_cast<size_t>(NB));
  std::vector<int64_t> order;
  std::vector<int64_t> kept;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < NB; ++i) all[size_t(i)] = corners(&bx[size_t((b * NB + i) * 4)], center == 1);
    for (int64_t c = 0; c < NC; ++c) {
      const double* s = &sc[size_t((b * NC + c) * NB)];
      order.clear();
      for (int64_t i = 0; i < NB; ++i)
        if (!score_th || s[i] > *score_th) order.push_back(i);
      std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return s[x] > s[y]; });
      kept.clear();
      for (int64_t i : order) {
        if (int64_t(kept.size()) >= max_out) break;
        bool keep = true;
        for (int64_t k : kept)
          if (suppressed(all[size_t(i)], all[size_t(k)], iou_th)) {
            keep = false;
            break;
          }
        if (!keep) continue;
        kept.push_back(i);
        sel.insert(sel.end(), {b, c, i});
      }
    }
  }
  Tensor& out = ctx.output(0, DType::kInt64, {int64_t(sel.size() / 3), 3});
  std::copy(sel.begin(), sel.end(), out.data<int64_t>());
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(NonMaxSuppression) {
  def.infer = [](InferContext& ctx) { ctx.set(0, DType::kInt64, SymShape{Dim{}, Dim::known(3)}); };
  def.reference = run_nms;
}
