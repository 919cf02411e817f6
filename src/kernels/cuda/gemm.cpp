#include "kernels/cuda/gemm.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "kernels/cuda/cuda_check.h"

namespace deepep::cuda {

namespace {
// Process-wide: geometry -> chosen algorithm (a cublasLtMatmulAlgo_t is plain data).
using Key = std::tuple<int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, bool, int, bool, int>;
std::mutex g_mu;
std::map<Key, std::pair<cublasLtMatmulAlgo_t, size_t>> g_algos;

Key key_of(const GemmShape& s, bool tf32, int device) {
  return Key{int(s.dtype), s.ta, s.tb, s.M, s.N, s.K, s.lda, s.ldb, s.ldc, s.stride_a, s.stride_b, s.stride_c,
             s.batch, s.bias, int(s.act), tf32, device};
}

constexpr size_t kMaxWorkspace = size_t(32) << 20;
}  // namespace

void clear_gemm_cache() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_algos.clear();
}

struct GemmPlan {
  GemmShape s;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulAlgo_t algo{};
  size_t workspace = 0;
  float beta = 0.f;
  ~GemmPlan() {
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (desc) cublasLtMatmulDescDestroy(desc);
  }
};

size_t gemm_workspace(const GemmPlan& p) { return p.workspace; }

// Row-major C[M,N] = op(A) op(B) is column-major C^T[N,M] = op(B)^T op(A)^T:
// cuBLASLt's first operand is our B, its second our A.
std::shared_ptr<GemmPlan> gemm_prepare(GpuContext& ctx, const GemmShape& s, const void* a, const void* b, void* c,
                                       const void* bias, const std::string& what) {
  DEEPEP_CHECK(s.dtype == DType::kFloat32 || s.dtype == DType::kFloat16, what, ": GEMM on the GPU takes float32 or float16, got ",
               dtype_name(s.dtype));
  auto p = std::make_shared<GemmPlan>();
  p->s = s;
  const bool f16 = s.dtype == DType::kFloat16;
  const cudaDataType_t dt = f16 ? CUDA_R_16F : CUDA_R_32F;
  const bool tf32 = !f16 && ctx.allow_tf32;
  const cublasComputeType_t ct = tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  DEEPEP_CUDA(cublasLtMatmulDescCreate(&p->desc, ct, CUDA_R_32F), what);
  const cublasOperation_t opB = s.tb ? CUBLAS_OP_T : CUBLAS_OP_N;  // cuBLAS A := our B
  const cublasOperation_t opA = s.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  DEEPEP_CUDA(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opB, sizeof(opB)), what);
  DEEPEP_CUDA(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opA, sizeof(opA)), what);
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  switch (s.act) {
    case GemmShape::Act::kNone: epi = s.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT; break;
    case GemmShape::Act::kRelu: epi = s.bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU; break;
    case GemmShape::Act::kGelu: epi = s.bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU; break;
  }
  DEEPEP_CUDA(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)), what);
  if (s.bias) {
    DEEPEP_CUDA(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)), what);
    DEEPEP_CUDA(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &dt, sizeof(dt)), what);
  }
  // Column-major layouts of the stored matrices.
  const uint64_t b_rows = s.tb ? s.K : s.N, b_cols = s.tb ? s.N : s.K;  // B^T stored col-major
  const uint64_t a_rows = s.ta ? s.M : s.K, a_cols = s.ta ? s.K : s.M;
  DEEPEP_CUDA(cublasLtMatrixLayoutCreate(&p->lb, dt, b_rows, b_cols, s.ldb), what);
  DEEPEP_CUDA(cublasLtMatrixLayoutCreate(&p->la, dt, a_rows, a_cols, s.lda), what);
  DEEPEP_CUDA(cublasLtMatrixLayoutCreate(&p->lc, dt, s.N, s.M, s.ldc), what);
  if (s.batch > 1) {
    const int32_t count = int32_t(s.batch);
    for (auto [l, st] : {std::pair{p->la, s.stride_a}, std::pair{p->lb, s.stride_b}, std::pair{p->lc, s.stride_c}}) {
      DEEPEP_CUDA(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)), what);
      DEEPEP_CUDA(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &st, sizeof(st)), what);
    }
  }
  int device = 0;
  DEEPEP_CUDA(cudaGetDevice(&device), what);
  const Key key = key_of(s, tf32, device);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_algos.find(key);
    if (it != g_algos.end()) {
      p->algo = it->second.first;
      p->workspace = it->second.second;
      return p;
    }
  }
  cublasLtMatmulPreference_t pref = nullptr;
  DEEPEP_CUDA(cublasLtMatmulPreferenceCreate(&pref), what);
  std::unique_ptr<void, void (*)(void*)> pref_guard(pref, [](void* q) {
    cublasLtMatmulPreferenceDestroy(static_cast<cublasLtMatmulPreference_t>(q));
  });
  const size_t ws_cap = kMaxWorkspace;
  DEEPEP_CUDA(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_cap, sizeof(ws_cap)),
              what);
  // Up to 16 candidates, every one timed when the product is large: the heuristic's first is often not the
  // fastest on Hopper (its pick for bert-base's b32 GEMMs ran at about 300 TFLOP/s).
  constexpr int kCandidates = 16;
  cublasLtMatmulHeuristicResult_t res[kCandidates];
  int got = 0;
  DEEPEP_CUDA(cublasLtMatmulAlgoGetHeuristic(ctx.lt, p->desc, p->lb, p->la, p->lc, p->lc, pref, kCandidates, res, &got),
              what);
  DEEPEP_CHECK(got > 0, what, ": cuBLASLt has no algorithm for this GEMM (", dtype_name(s.dtype), " M=", s.M, " N=", s.N,
               " K=", s.K, ")");
  int best = 0;
  const double flops = 2.0 * double(s.M) * double(s.N) * double(s.K) * double(s.batch);
  if (got > 1 && flops >= 1e8 && ctx.workspace && ctx.workspace_bytes >= ws_cap) {
    // Time the candidates once on the real buffers (outside capture).
    cudaEvent_t e0, e1;
    DEEPEP_CUDA(cudaEventCreate(&e0), what);
    DEEPEP_CUDA(cudaEventCreate(&e1), what);
    float best_ms = 1e30f;
    const float alpha = s.alpha, beta = 0.f;
    // The best of 3 rounds of 5 back-to-back launches per candidate (after one to warm up): single launches
    // timed alone jitter by about as much as the candidates differ, and picked different kernels for the same
    // bert-base b32 GEMMs from process to process.
    const auto launch = [&](int i) {
      return cublasLtMatmul(ctx.lt, p->desc, &alpha, b, p->lb, a, p->la, &beta, c, p->lc, c, p->lc, &res[i].algo,
                            ctx.workspace, ctx.workspace_bytes, ctx.stream) == CUBLAS_STATUS_SUCCESS;
    };
    constexpr int kRounds = 3, kLaunches = 5;
    for (int i = 0; i < got; ++i) {
      bool ok = launch(i);
      float round_best = 1e30f;
      for (int r = 0; r < kRounds && ok; ++r) {
        DEEPEP_CUDA(cudaEventRecord(e0, ctx.stream), what);
        for (int l = 0; l < kLaunches && ok; ++l) ok = launch(i);
        DEEPEP_CUDA(cudaEventRecord(e1, ctx.stream), what);
        DEEPEP_CUDA(cudaEventSynchronize(e1), what);
        float ms = 0;
        DEEPEP_CUDA(cudaEventElapsedTime(&ms, e0, e1), what);
        round_best = std::min(round_best, ms);
      }
      if (ok && round_best < best_ms) best_ms = round_best, best = i;
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
  }
  p->algo = res[best].algo;
  p->workspace = res[best].workspaceSize;
  std::lock_guard<std::mutex> lock(g_mu);
  g_algos[key] = {p->algo, p->workspace};
  return p;
}

void gemm_run(GpuContext& ctx, const GemmPlan& p, const void* a, const void* b, void* c, const void* bias,
              const std::string& what) {
  if (p.s.bias)
    DEEPEP_CUDA(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)), what);
  const float alpha = p.s.alpha, beta = 0.f;
  DEEPEP_CUDA(cublasLtMatmul(ctx.lt, p.desc, &alpha, b, p.lb, a, p.la, &beta, c, p.lc, c, p.lc, &p.algo, ctx.workspace,
                             ctx.workspace_bytes, ctx.stream),
              what);
}

}  // namespace deepep::cuda
