// ONNX Slice bounds of one axis: the one home of this arithmetic, shared by the
// CPU reference (src/ops/slice.cpp) and the CUDA kernel (kernels/cuda/gpu_ops.cpp),
// so that the two cannot disagree on a shape.
#pragma once
#include <algorithm>
#include <cstdint>

namespace deepep::ops {

// The clamped start and the output length of an axis of size `dim` sliced by
// [start, end) with `step` (non-zero), negative indices counting from the end.
inline void resolve_slice_axis(int64_t start, int64_t end, int64_t step, int64_t dim, int64_t* start_out,
                               int64_t* len_out) {
  if (start < 0) start = start < -dim ? -dim - 1 : start;  // avoid overflow near INT64_MIN
  if (end < 0) end = end < -dim ? -dim - 1 : end;
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  if (dim == 0) {
    *start_out = 0;
    *len_out = 0;
    return;
  }
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    *len_out = end > start ? (end - start - 1) / step + 1 : 0;
  } else {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    const int64_t mag = step < -dim ? dim + 1 : -step;  // no overflow for INT64_MIN
    *len_out = start > end ? (start - end - 1) / mag + 1 : 0;
  }
  *start_out = start;
}

}  // namespace deepep::ops
