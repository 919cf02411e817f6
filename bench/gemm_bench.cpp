// GEMM micro-benchmark: the fast CPU sgemm (src/kernels/cpu/sgemm.h) on each
// ISA path of this CPU against that ISA's measured FMA peak, and the old
// reference sgemm (src/ops/gemm_util.h) for scale.
//
//   build/dev/deepep_gemm_bench [--reps N] [--threads T] [--markdown] [--cold]
//                               [--isa avx2|avx512|amx-bf16x3] [--shape MxNxK]
//
// Peak: a loop of independent FMAs (16 zmm / 12 ymm accumulators, fully
// unrolled, no loads) per ISA, run on one thread and on all pool threads at
// once; peak GFLOP/s = 2 * lanes * FMAs / time. GEMM: C[M,N] = A[M,K] x B[K,N]
// with B a constant weight packed once (the inference case: packing is not
// timed) and A packed per call (timed); GFLOP/s = 2*M*N*K / time. Both the
// peak and the GEMM report the best of their runs (a shared machine only ever
// slows a run down), and the peak is re-measured next to each GEMM so both
// see the same machine state.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/sgemm.h"
#include "kernels/cpu/thread_pool.h"
#include "ops/gemm_util.h"

using namespace deepep;
using namespace deepep::cpu;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int64_t kPeakIters = 20'000'000;

__attribute__((target("avx512f,fma"))) float fma_loop_avx512(int64_t iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(float(i) * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t k = 0; k < iters; ++k)
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iters) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(float(i) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t k = 0; k < iters; ++k)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  alignas(32) float t[8];
  _mm256_store_ps(t, s);
  return t[0] + t[7];
}

volatile float g_sink;

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// GFLOP per CPU-second of the FMA loop on one thread: one core's peak,
// unaffected by other processes taking the CPU away.
double core_peak_per_cpu_s(Isa isa) {
  const int64_t iters = kPeakIters / (isa == Isa::kAvx512 ? 2 : 1);
  const double flops = double(iters) * (isa == Isa::kAvx512 ? 16 * 16 : 12 * 8) * 2;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const double c0 = cpu_seconds();
    g_sink = isa == Isa::kAvx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
    best = std::max(best, flops / (cpu_seconds() - c0) / 1e9);
  }
  return best;
}

// GFLOP/s of the FMA loop on `threads` threads at once.
double peak_gflops(Isa isa, int threads) {
  const int64_t iters = kPeakIters / (isa == Isa::kAvx512 ? 2 : 1);
  const double flops_per_thread = double(iters) * (isa == Isa::kAvx512 ? 16 * 16 : 12 * 8) * 2;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    ThreadPool::global().parallel_for(threads, 1, threads, [&](int64_t, int64_t) {
      g_sink = isa == Isa::kAvx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
    });
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, flops_per_thread * threads / s / 1e9);
  }
  return best;
}

double best(std::vector<double> v) { return *std::min_element(v.begin(), v.end()); }

// Best wall-clock ms of `reps` runs; cpu_ms: the process CPU time of that run.
// --cold: before each timed run, a 256 MiB buffer is read, so the packed B
// comes from memory as a model's weights do (each weight is used once per
// inference), not from the L3 where the previous run left it.
bool g_cold = false;
void evict_caches() {
  static std::vector<float> junk(size_t(64) << 20, 1.f);
  float s = 0;
  for (size_t i = 0; i < junk.size(); i += 16) s += junk[i];
  g_sink = s;
}

template <class F>
double time_ms(F&& f, int reps, double* cpu_ms = nullptr) {
  f();  // warm-up
  double bw = 1e300, bc = 0;
  for (int r = 0; r < reps; ++r) {
    if (g_cold) evict_caches();
    const double c0 = cpu_seconds();
    const auto t0 = Clock::now();
    f();
    const double w = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    const double c = (cpu_seconds() - c0) * 1e3;
    if (w < bw) bw = w, bc = c;
  }
  if (cpu_ms) *cpu_ms = bc;
  return bw;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 7, max_threads = ThreadPool::global().size();
  bool markdown = false;
  std::string only_isa;
  std::vector<int64_t> only_shape;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--threads" && i + 1 < argc) max_threads = std::max(1, std::atoi(argv[++i]));
    else if (a == "--markdown") markdown = true;
    else if (a == "--cold") g_cold = true;
    else if (a == "--isa" && i + 1 < argc) only_isa = argv[++i];
    else if (a == "--shape" && i + 1 < argc) {
      long m, n, k;
      if (std::sscanf(argv[++i], "%ldx%ldx%ld", &m, &n, &k) != 3) return 2;
      only_shape = {m, n, k};
    }
    else {
      std::fprintf(stderr, "usage: %s [--reps N] [--threads T] [--markdown] [--cold] [--isa avx2|avx512|amx-bf16x3] [--shape MxNxK]\n",
                   argv[0]);
      return 2;
    }
  }
  max_threads = std::min(max_threads, ThreadPool::global().size());
  // "amx-bf16x3": the AVX-512 GEMM with float32 products as bf16x3 on AMX
  // tiles (gemm_amx.h), what an Engine with precision "fp32" runs there.
  struct Path {
    Isa isa;
    const char* name;
    bool bf16x3;
  };
  std::vector<Path> isas;
  if (int(cpu_best_isa()) >= int(Isa::kAvx512)) isas.push_back({Isa::kAvx512, "avx512", false});
  if (int(cpu_best_isa()) >= int(Isa::kAvx512) && amx_usable()) isas.push_back({Isa::kAvx512, "amx-bf16x3", true});
  if (int(cpu_best_isa()) >= int(Isa::kAvx2)) isas.push_back({Isa::kAvx2, "avx2", false});
  if (isas.empty()) {
    std::printf("no AVX2/AVX-512 on this CPU: nothing to measure\n");
    return 0;
  }
  // M x N x K. "512x768x3072" is BERT's FFN down-projection (N 768, K 3072); its up-projection (N 3072, K 768)
  // runs too: the shape reads either way, and the two differ (A of 6 MB vs 1.5 MB, from L3 vs L2).
  std::vector<std::array<int64_t, 3>> shapes = {{128, 768, 768}, {512, 768, 3072}, {512, 3072, 768}, {4096, 4096, 4096}};
  if (!only_shape.empty()) shapes = {{only_shape[0], only_shape[1], only_shape[2]}};
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  if (markdown) {
    std::printf("| ISA | threads | M x N x K | GFLOP/s (wall) | FMA peak GFLOP/s (wall) | %% of peak (wall) | "
                "%% of core peak per CPU-second | reference sgemm GFLOP/s | max rel err vs float64 |\n");
    std::printf("|---|---:|---|---:|---:|---:|---:|---:|---:|\n");
  }
  for (const Path& path : isas) {
    if (!only_isa.empty() && only_isa != path.name) continue;
    const Isa isa = path.isa;
    const Fp32PrecisionScope precision(path.bf16x3);
    for (int threads : {1, max_threads}) {
      if (!markdown) std::printf("%s, %d thread(s):\n", path.name, threads);
      for (const auto& s : shapes) {
        const double peak = peak_gflops(isa, threads);
        const int64_t M = s[0], N = s[1], K = s[2];
        std::vector<float> A(size_t(M * K)), B(size_t(K * N)), C(size_t(M * N));
        for (float& x : A) x = d(rng);
        for (float& x : B) x = d(rng);
        auto pb = pack_b(isa, K, N, B.data(), N, false);
        const int r = M * N * K > (int64_t(1) << 32) ? std::max(2, reps / 3) : reps;
        double cpu_ms = 0;
        const double ms = time_ms(
            [&] {
              gemm(isa, M, N, K, Operand{A.data(), K, false, nullptr}, Operand{nullptr, 0, false, pb.get()}, C.data(),
                   N, GemmEpi{}, threads);
            },
            r, &cpu_ms);
        const double core_peak = core_peak_per_cpu_s(isa);
        const double cpu_eff = 2.0 * double(M) * double(N) * double(K) / (cpu_ms * 1e6) / core_peak;
        double ref_ms = 0;
        // Error against a float64 product on a sample of entries, relative to the largest.
        double err = 0, scale = 0;
        for (int64_t i = 0; i < M; i += 1 + M / 16)
          for (int64_t j = 0; j < N; j += 1 + N / 16) {
            double ref = 0;
            for (int64_t k = 0; k < K; ++k) ref += double(A[size_t(i * K + k)]) * double(B[size_t(k * N + j)]);
            err = std::max(err, std::abs(ref - double(C[size_t(i * N + j)])));
            scale = std::max(scale, std::abs(ref));
          }
        const double rel_err = err / std::max(scale, 1e-30);
        if (&path == &isas.front())
          ref_ms = time_ms(
              [&] {
                // The pre-existing portable sgemm (no ISA active: it would route here otherwise).
                const int old = set_isa_override(int(Isa::kNone));
                ops::sgemm(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C.data(), N, threads);
                set_isa_override(old);
              },
              std::max(2, r / 2));
        const double gf = 2.0 * double(M) * double(N) * double(K) / ms / 1e6;
        const double rgf = ref_ms > 0 ? 2.0 * double(M) * double(N) * double(K) / ref_ms / 1e6 : 0;
        if (markdown)
          std::printf("| %s | %d | %ldx%ldx%ld | %.1f | %.1f | %.0f%% | %.0f%% | %s | %.1e |\n", path.name, threads,
                      long(M), long(N), long(K), gf, peak, 100 * gf / peak, 100 * cpu_eff,
                      rgf > 0 ? std::to_string(int(rgf + 0.5)).c_str() : "-", rel_err);
        else
          std::printf("  %5ldx%5ldx%5ld: %8.2f ms  %7.1f GFLOP/s  %5.1f%% of FMA peak %.1f; per CPU-second %5.1f%% of "
                      "core peak %.1f; max rel err %.1e%s\n",
                      long(M), long(N), long(K), ms, gf, 100 * gf / peak, peak, 100 * cpu_eff, core_peak, rel_err,
                      rgf > 0 ? ("  (reference sgemm " + std::to_string(int(rgf + 0.5)) + " GFLOP/s)").c_str() : "");
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
