// Times the CUDA attention kernel alone (float16, packed QKV as BERT / GPT-2
// feed it) for a few shapes, with CUDA events over 200 launches; prints us per
// call and the achieved TFLOP/s (4 * B * H * Sq * Sk * D, halved when causal).
//   deepep_cuda_attention_bench            # the zoo's shapes
//   DEEPEP_CUDA_ATTENTION=tiled deepep_cuda_attention_bench   # the fallback kernel
//   deepep_cuda_attention_bench "gpt2 b1" [ITERS]   # cases whose name contains this (e.g. under ncu)
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cuda/launch.h"

using deepep::cuda::AttnArgs;

namespace {
struct Case {
  const char* name;
  int64_t B, H, S, D;
  bool causal;
  bool key_mask = false;  // BERT's additive float32 mask over keys, [B, 1, 1, S]
};

bool check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
  return e == cudaSuccess;
}
}  // namespace

int main(int argc, char** argv) {
  const char* only = argc > 1 ? argv[1] : nullptr;
  const int iters = argc > 2 ? std::atoi(argv[2]) : 200;
  const std::vector<Case> cases = {{"bert b1 s128", 1, 12, 128, 64, false},  {"bert b32 s128", 32, 12, 128, 64, false},
                                   {"bert b32 s128 mask", 32, 12, 128, 64, false, true},
                                   {"gpt2 b1 s512", 1, 12, 512, 64, true},    {"gpt2 b8 s512", 8, 12, 512, 64, true},
                                   {"gpt2 b1 s512 full", 1, 12, 512, 64, false}, {"gpt2 b1 s2048", 1, 12, 2048, 64, true}};
  cudaStream_t s;
  if (!check(cudaStreamCreate(&s), "stream")) return 1;
  std::printf("%-20s %10s %10s\n", "case", "us/call", "TFLOP/s");
  for (const Case& c : cases) {
    if (only && !std::strstr(c.name, only)) continue;
    const int64_t n = c.H * c.D, rows = c.B * c.S;
    void *qkv = nullptr, *y = nullptr, *mask = nullptr;
    if (!check(cudaMalloc(&qkv, rows * 3 * n * 2), "qkv") || !check(cudaMalloc(&y, rows * n * 2), "y") ||
        !check(cudaMalloc(&mask, c.S * c.S), "mask"))
      return 1;
    std::vector<__half> h(size_t(rows * 3 * n));
    for (size_t i = 0; i < h.size(); ++i) h[i] = __float2half(float(int(i * 2654435761u % 2001) - 1000) / 1000.f);
    cudaMemcpy(qkv, h.data(), h.size() * 2, cudaMemcpyHostToDevice);
    std::vector<uint8_t> m(size_t(c.S * c.S));
    for (int64_t q = 0; q < c.S; ++q)
      for (int64_t k = 0; k < c.S; ++k) m[size_t(q * c.S + k)] = k <= q;
    cudaMemcpy(mask, m.data(), m.size(), cudaMemcpyHostToDevice);
    AttnArgs a;
    a.t = 10, a.ty = 10;  // float16
    a.B = c.B, a.H = c.H, a.Sq = a.Sk = c.S, a.D = a.Dv = c.D;
    a.q = qkv, a.k = static_cast<__half*>(qkv) + n, a.v = static_cast<__half*>(qkv) + 2 * n;
    a.q_ld = a.k_ld = a.v_ld = 3 * n;
    a.q_sb = a.k_sb = a.v_sb = c.S * 3 * n;
    a.q_sh = a.k_sh = a.v_sh = c.D;
    a.y = y, a.y_sb = c.S * n, a.y_sh = c.D, a.y_ld = n;
    a.scale = 0.125f;
    std::vector<float> km(size_t(c.B * c.S));
    for (size_t i = 0; i < km.size(); ++i) km[i] = i % 7 == 6 ? -10000.f : 0.f;
    void* kmask = nullptr;
    if (!check(cudaMalloc(&kmask, km.size() * 4), "key mask")) return 1;
    cudaMemcpy(kmask, km.data(), km.size() * 4, cudaMemcpyHostToDevice);
    if (c.key_mask) a.mask = kmask, a.tmask = 1, a.m_sb = c.S, a.m_sk = 1;
    if (c.causal) {
      a.mask = mask, a.tmask = 9, a.mask_mode = 1, a.mask_fill = -3.4e38f, a.m_sq = c.S, a.m_sk = 1, a.causal = true;
    }
    a.work_bytes = deepep::cuda::attention_workspace_bytes(a);  // key splits for small grids
    if (a.work_bytes && !check(cudaMalloc(&a.work, a.work_bytes), "workspace")) return 1;
    deepep::cuda::attention(a, s);  // first use: shared-memory opt-in outside the timing
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    cudaEventRecord(e0, s);
    for (int i = 0; i < iters; ++i) deepep::cuda::attention(a, s);
    cudaEventRecord(e1, s);
    if (!check(cudaEventSynchronize(e1), c.name)) return 1;
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    const double us = ms * 1e3 / iters;
    const double flops = 4.0 * c.B * c.H * c.S * c.S * c.D * (c.causal ? 0.5 : 1.0);
    std::printf("%-20s %10.1f %10.1f\n", c.name, us, flops / us / 1e6);
    cudaFree(qkv), cudaFree(y), cudaFree(mask), cudaFree(kmask), cudaFree(a.work);
  }
  return 0;
}
