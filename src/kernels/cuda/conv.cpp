#include "kernels/cuda/conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/nhwc.h"
#include "ops/fused_epilogue.h"

namespace deepep::cuda {
namespace {

constexpr size_t kAlign = 256;
size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

struct ConvState {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t algo{};
  size_t workspace = 0;  // cuDNN's, at the start of the shared workspace
  bool epilogue = false;
  EpilogueArgs epi;
  // cudnnConvolutionBiasActivationForward: y = act(conv(x) + z + bias), act
  // identity or ReLU, z the residual (alpha2 = 1) or none (alpha2 = 0).
  bool fused = false;
  float alpha2 = 0;
  cudnnTensorDescriptor_t bias = nullptr;
  cudnnActivationDescriptor_t act = nullptr;
  // channels_last (NHWC X, Y, residual). W reordered to OHWI at upload, or
  // here each run into the workspace at w_off (W not a constant). via_nchw:
  // cuDNN has no NHWC algorithm for this geometry: X is transposed to NCHW
  // (x_off), the NCHW convolution writes y_off, W goes back to OIHW (w_off)
  // and Y is transposed to NHWC before the epilogue pass.
  bool nhwc = false, w_run_reorder = false, via_nchw = false;
  size_t w_off = 0, x_off = 0, y_off = 0, total = 0;
  int64_t N = 0, C = 0, HW = 0, M = 0, OHW = 0, Cg = 0, KHW = 0;
  ~ConvState() { reset(); }
  void reset() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (bias) cudnnDestroyTensorDescriptor(bias);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (act) cudnnDestroyActivationDescriptor(act);
    x = y = bias = nullptr;
    w = nullptr;
    conv = nullptr;
    act = nullptr;
    fused = false;
    alpha2 = 0;
  }
};

// DEEPEP_CUDA_CONV: comma-separated options, read per plan. "find": time
// cuDNN's algorithms once per geometry instead of taking its heuristic's
// first. "fuse": bias, ReLU and the residual inside cuDNN's convolution for
// NCHW convolutions too (channels-last ones do it by default; "nofuse" turns
// that off). "nchw": channels-last convolutions through the transposing
// fallback (tests; it is what runs when cuDNN has no NHWC algorithm).
// Measured on an H200 (fp16): in NCHW "find" picks the heuristic's kernels
// and "fuse" makes cuDNN transpose the residual too (resnet50 b128: 7.7 ms of
// 26.5, where the vectorized epilogue pass costs about 2 ms). In NHWC the
// fused call wins (resnet50 b1 0.52 ms vs 0.70 with "nofuse"; b128 GPU time
// 5.1 vs 7.3 ms: cuDNN runs the 1x1 convs as cuBLAS-style GEMMs with a
// bias+ReLU epilogue), and "find" picks the same kernels at b64 but, at
// batch 1, legacy implicit_convolve_sgemm kernels for the fused call (its
// timing is of the unfused convolution): 2.5 ms vs 0.52.
bool conv_option(const char* opt) {
  const char* v = std::getenv("DEEPEP_CUDA_CONV");
  if (!v) return false;
  const std::string s = std::string(",") + v + ",";
  return s.find(std::string(",") + opt + ",") != std::string::npos;
}

bool channels_last(const Node& n) { return n.attr_int("channels_last", 0) != 0; }

struct FoundAlgo {
  cudnnConvolutionFwdAlgo_t algo;
  size_t memory;
};
std::mutex g_find_mu;
std::map<std::string, FoundAlgo> g_found;  // geometry key -> fastest algorithm

struct Geo {
  std::vector<int> xd, yd, wd;  // logical N, C, H, W (1-D: H = 1)
  int ph = 0, pw = 0, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t group = 1;
  cudnnDataType_t dt{};
  cudnnMathType_t math{};
  bool fp32 = false;
};

// Whether cuDNN executes `algo` on s's descriptors. Its heuristic has offered
// algorithms that then fail with CUDNN_STATUS_BAD_PARAM (H200, cuDNN 9: an
// fp32 NHWC depthwise 3x3 on 4x4 maps, MobileNetV2), so each candidate runs
// once at plan time on the plan's own buffers (whose contents mean nothing
// yet and are overwritten by the first run). Same sizes in either layout.
bool runs(GpuContext& ctx, const ConvState& s, const GpuNode& n, cudnnConvolutionFwdAlgo_t algo, size_t ws_bytes) {
  if (n.out[0].numel() == 0) return true;
  void* ws = nullptr;
  if (ws_bytes && cudaMalloc(&ws, ws_bytes) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  const float one = 1.f, zero = 0.f;
  void* y = n.out[0].data;
  cudnnStatus_t st;
  if (s.fused) {
    const void* z = s.alpha2 != 0.f ? n.in[3].data : y;
    st = cudnnConvolutionBiasActivationForward(ctx.dnn, &one, s.x, n.in[0].data, s.w, n.in[1].data, s.conv, algo, ws,
                                               ws_bytes, &s.alpha2, s.y, z, s.bias, n.in[2].data, s.act, s.y, y);
  } else {
    st = cudnnConvolutionForward(ctx.dnn, &one, s.x, n.in[0].data, s.w, n.in[1].data, s.conv, algo, ws, ws_bytes, &zero,
                                 s.y, y);
  }
  if (ws) cudaFree(ws);
  cudaGetLastError();
  return st == CUDNN_STATUS_SUCCESS;
}

// Descriptors in `fmt` and an algorithm for them that runs (see runs());
// false (descriptors kept) when cuDNN offers none. s.fused set: the fused
// call's algorithm (identity: IMPLICIT_PRECOMP_GEMM only).
bool choose(GpuContext& ctx, ConvState& s, const Geo& g, cudnnTensorFormat_t fmt, bool relu, const GpuNode& n,
            const std::string& what) {
  DEEPEP_CUDA(cudnnCreateTensorDescriptor(&s.x), what);
  DEEPEP_CUDA(cudnnCreateTensorDescriptor(&s.y), what);
  DEEPEP_CUDA(cudnnCreateFilterDescriptor(&s.w), what);
  DEEPEP_CUDA(cudnnCreateConvolutionDescriptor(&s.conv), what);
  DEEPEP_CUDA(cudnnSetTensor4dDescriptor(s.x, fmt, g.dt, g.xd[0], g.xd[1], g.xd[2], g.xd[3]), what);
  DEEPEP_CUDA(cudnnSetTensor4dDescriptor(s.y, fmt, g.dt, g.yd[0], g.yd[1], g.yd[2], g.yd[3]), what);
  DEEPEP_CUDA(cudnnSetFilter4dDescriptor(s.w, g.dt, fmt, g.wd[0], g.wd[1], g.wd[2], g.wd[3]), what);
  DEEPEP_CUDA(cudnnSetConvolution2dDescriptor(s.conv, g.ph, g.pw, g.sh, g.sw, g.dh, g.dw, CUDNN_CROSS_CORRELATION,
                                              CUDNN_DATA_FLOAT),
              what);
  DEEPEP_CUDA(cudnnSetConvolutionGroupCount(s.conv, int(g.group)), what);
  DEEPEP_CUDA(cudnnSetConvolutionMathType(s.conv, g.math), what);
  int out_dims[4];
  DEEPEP_CUDA(cudnnGetConvolution2dForwardOutputDim(s.conv, s.x, s.w, &out_dims[0], &out_dims[1], &out_dims[2], &out_dims[3]),
              what);
  for (int i = 0; i < 4; ++i)
    DEEPEP_CHECK(out_dims[i] == g.yd[size_t(i)], what, ": cuDNN's output shape differs from the model's");
  if (s.fused) {
    DEEPEP_CUDA(cudnnCreateTensorDescriptor(&s.bias), what);
    DEEPEP_CUDA(cudnnSetTensor4dDescriptor(s.bias, fmt, g.dt, 1, g.yd[1], 1, 1), what);
    DEEPEP_CUDA(cudnnCreateActivationDescriptor(&s.act), what);
    DEEPEP_CUDA(cudnnSetActivationDescriptor(s.act, relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                             CUDNN_PROPAGATE_NAN, 0.0),
                what);
  }
  const bool identity_fused = s.fused && !relu;  // cuDNN: IMPLICIT_PRECOMP_GEMM only
  const bool strict = !ctx.allow_tf32 && g.fp32;
  if (conv_option("find") && !identity_fused) {
    const std::string key = detail::concat(int(fmt), ",", int(g.dt), ",", int(g.math), ",", g.xd[0], "x", g.xd[1], "x",
                                           g.xd[2], "x", g.xd[3], ",", g.wd[0], "x", g.wd[1], "x", g.wd[2], "x", g.wd[3],
                                           ",", g.ph, ",", g.pw, ",", g.sh, ",", g.sw, ",", g.dh, ",", g.dw, ",", g.group,
                                           ",", strict, ",", ctx.cc_major, ctx.cc_minor);
    std::lock_guard<std::mutex> lock(g_find_mu);
    auto it = g_found.find(key);
    if (it != g_found.end() && runs(ctx, s, n, it->second.algo, it->second.memory)) {
      s.algo = it->second.algo, s.workspace = it->second.memory;
      return true;
    }
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    DEEPEP_CUDA(cudnnFindConvolutionForwardAlgorithm(ctx.dnn, s.x, s.w, s.conv, s.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                     &got, perf),
                what);
    for (int i = 0; i < got; ++i) {  // sorted by time
      if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > (size_t(512) << 20)) continue;
      if (strict && perf[i].mathType == CUDNN_TENSOR_OP_MATH) continue;
      if (!runs(ctx, s, n, perf[i].algo, perf[i].memory)) continue;
      s.algo = perf[i].algo, s.workspace = perf[i].memory;
      g_found[key] = {s.algo, s.workspace};
      return true;
    }
  }
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int got = 0;
  DEEPEP_CUDA(cudnnGetConvolutionForwardAlgorithm_v7(ctx.dnn, s.x, s.w, s.conv, s.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                     &got, perf),
              what);
  for (int i = 0; i < got; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (perf[i].memory > (size_t(512) << 20)) continue;
    if (strict && perf[i].mathType == CUDNN_TENSOR_OP_MATH) continue;
    if (identity_fused && perf[i].algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) continue;
    if (!runs(ctx, s, n, perf[i].algo, perf[i].memory)) continue;
    s.algo = perf[i].algo;
    s.workspace = perf[i].memory;
    return true;
  }
  if (identity_fused) {
    s.algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    return cudnnGetConvolutionForwardWorkspaceSize(ctx.dnn, s.x, s.w, s.conv, s.y, s.algo, &s.workspace) ==
               CUDNN_STATUS_SUCCESS &&
           runs(ctx, s, n, s.algo, s.workspace);
  }
  return false;
}

size_t prepare_conv(GpuContext& ctx, GpuNode& n, bool fused) {
  const std::string what = n.node.describe();
  const GpuTensor &X = n.in[0], &W = n.in[1];
  GpuTensor& Y = n.out[0];
  DEEPEP_CHECK(X.dtype == W.dtype && X.dtype == Y.dtype && (X.dtype == DType::kFloat32 || X.dtype == DType::kFloat16),
               what, ": X, W and Y must share a float32 or float16 dtype on the CUDA backend");
  const bool nhwc = fused && channels_last(n.node);
  DEEPEP_CHECK(!fused || n.node.attr_int("channels_last", 0) != 2, what,
               ": channels_last = 2 (an NCHW X, made for the CPU's direct conv) does not run on the CUDA backend");
  if (nhwc)
    DEEPEP_CHECK(X.shape.size() == 4 && Y.shape.size() == 4 && W.shape.size() == 4, what,
                 ": channels_last needs a 2-D convolution, X [N, H, W, C]; got X ", shape_str(X.shape));
  DEEPEP_CHECK(X.shape.size() == 3 || X.shape.size() == 4, what,
               ": the CUDA backend runs 1-D and 2-D convolutions (N, C, ...), got X ", shape_str(X.shape));
  DEEPEP_CHECK(W.shape.size() == X.shape.size(), what, ": W rank does not match X");
  // Logical NCHW shapes (channels_last: permuted from NHWC).
  const auto to_nchw = [&](const Shape& s) { return nhwc ? Shape{s[0], s[3], s[1], s[2]} : s; };
  const Shape xs = to_nchw(X.shape), ys = to_nchw(Y.shape);
  const bool one_d = xs.size() == 3;
  const int nsp = int(xs.size()) - 2;
  const int64_t group = n.node.attr_int("group", 1);
  DEEPEP_CHECK(group >= 1 && xs[1] == W.shape[1] * group && W.shape[0] == ys[1] && W.shape[0] % group == 0, what,
               ": X ", shape_str(X.shape), ", W ", shape_str(W.shape), " and group ", group, " do not agree");
  auto ks = n.node.attr_ints("kernel_shape", {});
  if (ks.empty()) ks.assign(W.shape.begin() + 2, W.shape.end());
  auto st = n.node.attr_ints("strides", std::vector<int64_t>(size_t(nsp), 1));
  auto dl = n.node.attr_ints("dilations", std::vector<int64_t>(size_t(nsp), 1));
  auto pads = n.node.attr_ints("pads", std::vector<int64_t>(size_t(nsp) * 2, 0));
  DEEPEP_CHECK(int(ks.size()) == nsp && int(st.size()) == nsp && int(dl.size()) == nsp && int(pads.size()) == 2 * nsp,
               what, ": kernel_shape, strides, dilations or pads do not match the spatial rank ", nsp);
  const std::string ap = n.node.attr_string("auto_pad", "NOTSET");
  if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
    for (int i = 0; i < nsp; ++i) {
      const int64_t in = xs[size_t(2 + i)], out = ys[size_t(2 + i)];
      const int64_t total = std::max<int64_t>(0, (out - 1) * st[size_t(i)] + (ks[size_t(i)] - 1) * dl[size_t(i)] + 1 - in);
      pads[size_t(i)] = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
      pads[size_t(i + nsp)] = total - pads[size_t(i)];
    }
  } else if (ap == "VALID") {
    std::fill(pads.begin(), pads.end(), 0);
  }
  for (int i = 0; i < nsp; ++i)
    DEEPEP_CHECK(pads[size_t(i)] == pads[size_t(i + nsp)], what,
                 ": asymmetric padding is not supported by the CUDA backend's cuDNN path");
  auto s = std::make_shared<ConvState>();
  Geo g;
  g.fp32 = X.dtype == DType::kFloat32;
  g.dt = g.fp32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_HALF;
  auto dims4 = [&](const Shape& sh) {
    return one_d ? std::vector<int>{int(sh[0]), int(sh[1]), 1, int(sh[2])}
                 : std::vector<int>{int(sh[0]), int(sh[1]), int(sh[2]), int(sh[3])};
  };
  g.xd = dims4(xs), g.yd = dims4(ys), g.wd = dims4(W.shape);
  g.ph = one_d ? 0 : int(pads[0]), g.pw = int(pads[size_t(nsp - 1)]);
  g.sh = one_d ? 1 : int(st[0]), g.sw = int(st[size_t(nsp - 1)]);
  g.dh = one_d ? 1 : int(dl[0]), g.dw = int(dl[size_t(nsp - 1)]);
  g.group = group;
  g.math = !g.fp32 ? CUDNN_TENSOR_OP_MATH : ctx.allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  // Bias, activation and residual: inside cuDNN's call (ReLU or none, the
  // residual added before it: channels-last by default, NCHW with option
  // "fuse") or one pass after the convolution.
  const GpuTensor* bias = n.has_input(2) ? &n.in[2] : nullptr;
  const GpuTensor* res = fused && n.has_input(3) ? &n.in[3] : nullptr;
  ops::Epilogue ep;
  if (fused) ep = ops::read_epilogue(n.node);
  if (bias) DEEPEP_CHECK(bias->numel() == ys[1], what, ": B must hold one value per output channel");
  if (res) DEEPEP_CHECK(res->shape == Y.shape, what, ": residual must have Y's shape ", shape_str(Y.shape));
  const bool want_fuse = nhwc ? !conv_option("nofuse") : conv_option("fuse");
  const bool relu = ep.act == ops::Act::kRelu;
  const bool fusable = bias && bias->dtype == X.dtype && (ep.act == ops::Act::kNone || relu) &&
                       (!res || ((ep.residual_first || ep.act == ops::Act::kNone) && res->dtype == Y.dtype));
  const cudnnTensorFormat_t fmt = nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  bool found = false;
  if (nhwc && conv_option("nchw")) {
  } else if (want_fuse && fusable) {
    s->fused = true;
    s->alpha2 = res ? 1.f : 0.f;
    found = choose(ctx, *s, g, fmt, relu, n, what);
    if (!found) s->reset();  // unfused next
  }
  if (!found && !(nhwc && conv_option("nchw"))) found = choose(ctx, *s, g, fmt, false, n, what);
  if (nhwc) {
    s->nhwc = true;
    s->N = xs[0], s->C = xs[1], s->HW = xs[2] * xs[3], s->M = ys[1], s->OHW = ys[2] * ys[3];
    s->Cg = W.shape[1], s->KHW = W.shape[2] * W.shape[3];
    const size_t es = dtype_size(X.dtype);
    size_t off = align_up(s->workspace);
    if (!found) {  // no NHWC algorithm: NCHW between transposes
      s->reset();
      found = choose(ctx, *s, g, CUDNN_TENSOR_NCHW, false, n, what);
      s->via_nchw = true;
      off = align_up(s->workspace);
      s->x_off = off, off += align_up(size_t(X.numel()) * es);
      s->y_off = off, off += align_up(size_t(Y.numel()) * es);
      if (W.reordered) s->w_off = off, off += align_up(size_t(W.numel()) * es);
    } else if (!W.reordered) {
      s->w_run_reorder = true;
      s->w_off = off, off += align_up(size_t(W.numel()) * es);
    }
    s->total = off;
  }
  DEEPEP_CHECK(found, what, ": cuDNN offers no forward algorithm for X ", shape_str(X.shape), ", W ", shape_str(W.shape));
  if (!nhwc) s->total = s->workspace;
  if (!s->fused && (bias || res || ep.act != ops::Act::kNone)) {
    EpilogueArgs& e = s->epi;
    e.ty = int(Y.dtype);
    e.n = Y.numel();
    int64_t spatial = 1;
    for (size_t i = 2; i < ys.size(); ++i) spatial *= ys[i];
    if (bias) {
      e.bias = bias->data, e.tbias = int(bias->dtype);
      // NCHW: bias index (i / spatial) % M; NHWC: i % M.
      e.bias_div = nhwc ? 1 : spatial, e.bias_mod = ys[1];
    }
    if (res) {
      e.res = res->data, e.tres = int(res->dtype);
      e.res_ix.rank = 1;
      e.res_ix.dims[0] = Y.numel();
      e.res_ix.strides[0][0] = 1;
      e.res_first = ep.residual_first;
    }
    e.act = int(ep.act), e.p0 = ep.p0, e.p1 = ep.p1;
    if (nhwc) {
      e.cols = ys[1];  // rows are pixels (n, oh, ow): bias by column
      e.bias_per_row = false;
    } else {
      e.cols = spatial;  // rows are (n, c): bias by row % C
      e.bias_per_row = true;
    }
    e.bias_mod = ys[1];
    e.res_dense = true;  // checked: the residual has Y's shape
    s->epilogue = true;
  }
  n.state = s;
  return s->total;
}

void run_conv(GpuContext& ctx, GpuNode& n) {
  auto* s = static_cast<ConvState*>(n.state.get());
  const std::string& what = n.node.describe();
  GpuTensor& Y = n.out[0];
  if (Y.numel() == 0) return;
  const float one = 1.f, zero = 0.f;
  const int es = int(dtype_size(Y.dtype));
  char* ws = static_cast<char*>(ctx.workspace);
  const void* x = n.in[0].data;
  const void* w = n.in[1].data;
  void* y = Y.data;
  if (s->via_nchw) {
    transpose_batched(x, ws + s->x_off, es, s->N, s->HW, s->C, ctx.stream);  // [N, HW, C] -> [N, C, HW]
    DEEPEP_CUDA_LAUNCHED(what);
    x = ws + s->x_off;
    if (n.in[1].reordered) {  // [M, KHW, C/g] -> [M, C/g, KHW]
      transpose_batched(w, ws + s->w_off, es, s->M, s->KHW, s->Cg, ctx.stream);
      DEEPEP_CUDA_LAUNCHED(what);
      w = ws + s->w_off;
    }
    y = ws + s->y_off;
  } else if (s->w_run_reorder) {  // W not a constant: OIHW -> OHWI here
    transpose_batched(w, ws + s->w_off, es, s->M, s->Cg, s->KHW, ctx.stream);
    DEEPEP_CUDA_LAUNCHED(what);
    w = ws + s->w_off;
  }
  if (s->fused) {
    const void* z = s->alpha2 != 0.f ? n.in[3].data : y;
    DEEPEP_CUDA(cudnnConvolutionBiasActivationForward(ctx.dnn, &one, s->x, x, s->w, w, s->conv, s->algo, ctx.workspace,
                                                      s->workspace, &s->alpha2, s->y, z, s->bias, n.in[2].data, s->act,
                                                      s->y, y),
                what);
    return;
  }
  DEEPEP_CUDA(cudnnConvolutionForward(ctx.dnn, &one, s->x, x, s->w, w, s->conv, s->algo, ctx.workspace, s->workspace,
                                      &zero, s->y, y),
              what);
  if (s->via_nchw) {  // [N, M, OHW] -> [N, OHW, M]
    transpose_batched(y, Y.data, es, s->N, s->M, s->OHW, ctx.stream);
    DEEPEP_CUDA_LAUNCHED(what);
  }
  if (s->epilogue) {
    EpilogueArgs e = s->epi;
    e.y = Y.data;
    if (e.bias) e.bias = n.in[2].data;
    if (e.res) e.res = n.in[3].data;
    epilogue(e, ctx.stream);
    DEEPEP_CUDA_LAUNCHED(what);
  }
}

// FusedConv channels_last: W [M, C/g, kH, kW] -> [M, kH, kW, C/g] (cuDNN's
// NHWC filter, "KRSC") once at upload.
Tensor reorder_filter(const Node& node, size_t input, const Tensor& w) {
  if (input != 1 || !channels_last(node) || w.rank() != 4) return {};
  const size_t es = dtype_size(w.dtype());
  if (es != 4 && es != 2) return {};
  const int64_t M = w.dim(0), Cg = w.dim(1), KHW = w.dim(2) * w.dim(3);
  Tensor t(w.dtype(), Shape{M, w.dim(2), w.dim(3), Cg});
  const char* src = static_cast<const char*>(w.raw());
  char* dst = static_cast<char*>(t.raw());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t k = 0; k < KHW; ++k)
        std::memcpy(dst + size_t((m * KHW + k) * Cg + c) * es, src + size_t((m * Cg + c) * KHW + k) * es, es);
  return t;
}

}  // namespace

GpuKernel conv_kernel(bool fused) {
  GpuKernel k;
  k.prepare = [fused](GpuContext& ctx, GpuNode& n) { return prepare_conv(ctx, n, fused); };
  k.run = [](GpuContext& ctx, GpuNode& n) { run_conv(ctx, n); };
  if (fused) k.upload = reorder_filter;
  return k;
}

}  // namespace deepep::cuda
