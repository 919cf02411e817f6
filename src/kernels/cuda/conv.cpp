#include "kernels/cuda/conv.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/launch.h"
#include "ops/fused_epilogue.h"

namespace deepep::cuda {
namespace {

struct ConvState {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t algo{};
  size_t workspace = 0;
  bool epilogue = false;
  EpilogueArgs epi;
  // cudnnConvolutionBiasActivationForward: y = act(conv(x) + z + bias), act
  // identity or ReLU, z the residual (alpha2 = 1) or none (alpha2 = 0).
  bool fused = false;
  float alpha2 = 0;
  cudnnTensorDescriptor_t bias = nullptr;
  cudnnActivationDescriptor_t act = nullptr;
  ~ConvState() {
    if (x) cudnnDestroyTensorDescriptor(x);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (bias) cudnnDestroyTensorDescriptor(bias);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (act) cudnnDestroyActivationDescriptor(act);
  }
};

// DEEPEP_CUDA_CONV: comma-separated opt-in options, "find" (time cuDNN's
// algorithms once per geometry instead of taking its heuristic's first),
// "fuse" (bias, ReLU and the residual inside cuDNN's convolution where it
// can). Read per plan. Measured on an H200 (resnet50 b128 fp16, NCHW), neither
// pays: "find" picks the heuristic's kernels, and "fuse" makes cuDNN transpose
// the residual too (NCHW<->NHWC: 7.7 ms of 26.5) where the vectorized
// epilogue pass costs about 2 ms; they stay for an NHWC path.
bool conv_option(const char* opt) {
  const char* v = std::getenv("DEEPEP_CUDA_CONV");
  if (!v) return false;
  const std::string s = std::string(",") + v + ",";
  return s.find(std::string(",") + opt + ",") != std::string::npos;
}

struct FoundAlgo {
  cudnnConvolutionFwdAlgo_t algo;
  size_t memory;
};
std::mutex g_find_mu;
std::map<std::string, FoundAlgo> g_found;  // geometry key -> fastest algorithm

size_t prepare_conv(GpuContext& ctx, GpuNode& n, bool fused) {
  const std::string what = n.node.describe();
  const GpuTensor &X = n.in[0], &W = n.in[1];
  GpuTensor& Y = n.out[0];
  DEEPEP_CHECK(X.dtype == W.dtype && X.dtype == Y.dtype && (X.dtype == DType::kFloat32 || X.dtype == DType::kFloat16),
               what, ": X, W and Y must share a float32 or float16 dtype on the CUDA backend");
  DEEPEP_CHECK(X.shape.size() == 3 || X.shape.size() == 4, what,
               ": the CUDA backend runs 1-D and 2-D convolutions (N, C, ...), got X ", shape_str(X.shape));
  DEEPEP_CHECK(W.shape.size() == X.shape.size(), what, ": W rank does not match X");
  DEEPEP_CHECK(n.node.attr_int("channels_last", 0) == 0, what,
               ": the CUDA backend has no channels-last convolution yet (load with layout='nchw')");
  const bool one_d = X.shape.size() == 3;
  const int nsp = int(X.shape.size()) - 2;
  const int64_t group = n.node.attr_int("group", 1);
  auto ks = n.node.attr_ints("kernel_shape", {});
  if (ks.empty()) ks.assign(W.shape.begin() + 2, W.shape.end());
  auto st = n.node.attr_ints("strides", std::vector<int64_t>(size_t(nsp), 1));
  auto dl = n.node.attr_ints("dilations", std::vector<int64_t>(size_t(nsp), 1));
  auto pads = n.node.attr_ints("pads", std::vector<int64_t>(size_t(nsp) * 2, 0));
  const std::string ap = n.node.attr_string("auto_pad", "NOTSET");
  if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
    for (int i = 0; i < nsp; ++i) {
      const int64_t in = X.shape[size_t(2 + i)], out = Y.shape[size_t(2 + i)];
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
  const cudnnDataType_t dt = X.dtype == DType::kFloat16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  auto dims4 = [&](const Shape& sh) {
    return one_d ? std::vector<int>{int(sh[0]), int(sh[1]), 1, int(sh[2])}
                 : std::vector<int>{int(sh[0]), int(sh[1]), int(sh[2]), int(sh[3])};
  };
  const auto xd = dims4(X.shape), yd = dims4(Y.shape), wd = dims4(W.shape);
  DEEPEP_CUDA(cudnnCreateTensorDescriptor(&s->x), what);
  DEEPEP_CUDA(cudnnCreateTensorDescriptor(&s->y), what);
  DEEPEP_CUDA(cudnnCreateFilterDescriptor(&s->w), what);
  DEEPEP_CUDA(cudnnCreateConvolutionDescriptor(&s->conv), what);
  DEEPEP_CUDA(cudnnSetTensor4dDescriptor(s->x, CUDNN_TENSOR_NCHW, dt, xd[0], xd[1], xd[2], xd[3]), what);
  DEEPEP_CUDA(cudnnSetTensor4dDescriptor(s->y, CUDNN_TENSOR_NCHW, dt, yd[0], yd[1], yd[2], yd[3]), what);
  DEEPEP_CUDA(cudnnSetFilter4dDescriptor(s->w, dt, CUDNN_TENSOR_NCHW, wd[0], wd[1], wd[2], wd[3]), what);
  const int ph = one_d ? 0 : int(pads[0]), pw = int(pads[size_t(nsp - 1)]);
  const int sh = one_d ? 1 : int(st[0]), sw = int(st[size_t(nsp - 1)]);
  const int dh = one_d ? 1 : int(dl[0]), dw = int(dl[size_t(nsp - 1)]);
  DEEPEP_CUDA(cudnnSetConvolution2dDescriptor(s->conv, ph, pw, sh, sw, dh, dw, CUDNN_CROSS_CORRELATION,
                                              X.dtype == DType::kFloat16 ? CUDNN_DATA_FLOAT : CUDNN_DATA_FLOAT),
              what);
  DEEPEP_CUDA(cudnnSetConvolutionGroupCount(s->conv, int(group)), what);
  const cudnnMathType_t math = X.dtype == DType::kFloat16 ? CUDNN_TENSOR_OP_MATH
                               : ctx.allow_tf32            ? CUDNN_DEFAULT_MATH
                                                           : CUDNN_FMA_MATH;
  DEEPEP_CUDA(cudnnSetConvolutionMathType(s->conv, math), what);
  int out_dims[4];
  DEEPEP_CUDA(cudnnGetConvolution2dForwardOutputDim(s->conv, s->x, s->w, &out_dims[0], &out_dims[1], &out_dims[2], &out_dims[3]),
              what);
  for (int i = 0; i < 4; ++i)
    DEEPEP_CHECK(out_dims[i] == yd[size_t(i)], what, ": cuDNN's output shape differs from the model's ", shape_str(Y.shape));
  // Bias, activation and residual: inside cuDNN's call (option "fuse": ReLU or
  // none, the residual added before it) or one pass after the convolution.
  const GpuTensor* bias = n.has_input(2) ? &n.in[2] : nullptr;
  const GpuTensor* res = fused && n.has_input(3) ? &n.in[3] : nullptr;
  ops::Epilogue ep;
  if (fused) ep = ops::read_epilogue(n.node);
  if (conv_option("fuse") && bias && bias->numel() == Y.shape[1] && bias->dtype == X.dtype &&
      (ep.act == ops::Act::kNone || ep.act == ops::Act::kRelu) && (!res || (ep.residual_first && res->shape == Y.shape && res->dtype == Y.dtype))) {
    s->fused = true;
    s->alpha2 = res ? 1.f : 0.f;
    DEEPEP_CUDA(cudnnCreateTensorDescriptor(&s->bias), what);
    DEEPEP_CUDA(cudnnSetTensor4dDescriptor(s->bias, CUDNN_TENSOR_NCHW, dt, 1, yd[1], 1, 1), what);
    DEEPEP_CUDA(cudnnCreateActivationDescriptor(&s->act), what);
    DEEPEP_CUDA(cudnnSetActivationDescriptor(s->act, ep.act == ops::Act::kRelu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY,
                                             CUDNN_PROPAGATE_NAN, 0.0),
                what);
  }
  const bool identity_fused = s->fused && ep.act == ops::Act::kNone;  // cuDNN: IMPLICIT_PRECOMP_GEMM only
  bool found = false;
  std::string key;
  if (conv_option("find") && !identity_fused) {
    key = detail::concat(int(dt), ",", int(math), ",", shape_str(X.shape), shape_str(W.shape), ",", ph, ",", pw, ",", sh,
                         ",", sw, ",", dh, ",", dw, ",", group, ",", ctx.cc_major, ctx.cc_minor);
    std::lock_guard<std::mutex> lock(g_find_mu);
    auto it = g_found.find(key);
    if (it != g_found.end()) {
      s->algo = it->second.algo, s->workspace = it->second.memory, found = true;
    } else {
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      int got = 0;
      DEEPEP_CUDA(cudnnFindConvolutionForwardAlgorithm(ctx.dnn, s->x, s->w, s->conv, s->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                       &got, perf),
                  what);
      for (int i = 0; i < got && !found; ++i) {  // sorted by time
        if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > (size_t(512) << 20)) continue;
        if (!ctx.allow_tf32 && X.dtype == DType::kFloat32 && perf[i].mathType == CUDNN_TENSOR_OP_MATH) continue;
        s->algo = perf[i].algo, s->workspace = perf[i].memory, found = true;
      }
      if (found) g_found[key] = {s->algo, s->workspace};
    }
  }
  if (!found) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0;
    DEEPEP_CUDA(cudnnGetConvolutionForwardAlgorithm_v7(ctx.dnn, s->x, s->w, s->conv, s->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                       &got, perf),
                what);
    for (int i = 0; i < got && !found; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
      if (perf[i].memory > (size_t(512) << 20)) continue;
      if (!ctx.allow_tf32 && X.dtype == DType::kFloat32 && perf[i].mathType == CUDNN_TENSOR_OP_MATH) continue;
      if (identity_fused && perf[i].algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) continue;
      s->algo = perf[i].algo;
      s->workspace = perf[i].memory;
      found = true;
    }
  }
  if (!found && identity_fused) {
    s->algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
    DEEPEP_CUDA(cudnnGetConvolutionForwardWorkspaceSize(ctx.dnn, s->x, s->w, s->conv, s->y, s->algo, &s->workspace), what);
    found = true;
  }
  DEEPEP_CHECK(found, what, ": cuDNN offers no forward algorithm for X ", shape_str(X.shape), ", W ", shape_str(W.shape));
  if (!s->fused && (bias || res || ep.act != ops::Act::kNone)) {
    EpilogueArgs& e = s->epi;
    e.ty = int(Y.dtype);
    e.n = Y.numel();
    if (bias) {
      DEEPEP_CHECK(bias->numel() == Y.shape[1], what, ": B must hold one value per output channel");
      e.bias = bias->data, e.tbias = int(bias->dtype);
      int64_t spatial = 1;
      for (size_t i = 2; i < Y.shape.size(); ++i) spatial *= Y.shape[i];
      e.bias_div = spatial, e.bias_mod = Y.shape[1];
    }
    if (res) {
      DEEPEP_CHECK(res->shape == Y.shape, what, ": residual must have Y's shape ", shape_str(Y.shape));
      e.res = res->data, e.tres = int(res->dtype);
      e.res_ix.rank = 1;
      e.res_ix.dims[0] = Y.numel();
      e.res_ix.strides[0][0] = 1;
      e.res_first = ep.residual_first;
    }
    e.act = int(ep.act), e.p0 = ep.p0, e.p1 = ep.p1;
    int64_t spatial = 1;
    for (size_t i = 2; i < Y.shape.size(); ++i) spatial *= Y.shape[i];
    e.cols = spatial;  // rows are (n, c): bias by row % C
    e.bias_per_row = true;
    e.bias_mod = Y.shape[1];
    e.res_dense = true;  // checked: the residual has Y's shape
    s->epilogue = true;
  }
  n.state = s;
  return s->workspace;
}

void run_conv(GpuContext& ctx, GpuNode& n) {
  auto* s = static_cast<ConvState*>(n.state.get());
  const std::string what = n.node.describe();
  GpuTensor& Y = n.out[0];
  if (Y.numel() == 0) return;
  const float one = 1.f, zero = 0.f;
  if (s->fused) {
    const void* z = s->alpha2 != 0.f ? n.in[3].data : Y.data;
    DEEPEP_CUDA(cudnnConvolutionBiasActivationForward(ctx.dnn, &one, s->x, n.in[0].data, s->w, n.in[1].data, s->conv,
                                                      s->algo, ctx.workspace, s->workspace, &s->alpha2, s->y, z, s->bias,
                                                      n.in[2].data, s->act, s->y, Y.data),
                what);
    return;
  }
  DEEPEP_CUDA(cudnnConvolutionForward(ctx.dnn, &one, s->x, n.in[0].data, s->w, n.in[1].data, s->conv, s->algo,
                                      ctx.workspace, s->workspace, &zero, s->y, Y.data),
              what);
  if (s->epilogue) {
    EpilogueArgs e = s->epi;
    e.y = Y.data;
    if (e.bias) e.bias = n.in[2].data;
    if (e.res) e.res = n.in[3].data;
    epilogue(e, ctx.stream);
    DEEPEP_CUDA_LAUNCHED(what);
  }
}

}  // namespace

GpuKernel conv_kernel(bool fused) {
  GpuKernel k;
  k.prepare = [fused](GpuContext& ctx, GpuNode& n) { return prepare_conv(ctx, n, fused); };
  k.run = [](GpuContext& ctx, GpuNode& n) { run_conv(ctx, n); };
  return k;
}

}  // namespace deepep::cuda
