// The Winograd conv driver (conv_winograd.h): weight transform and packing,
// the input transform, the a*a GEMMs and the output transform, each phase
// spread over the thread pool.
#include "kernels/cpu/conv_winograd.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "deepep/error.h"
#include "kernels/cpu/thread_pool.h"

namespace deepep::cpu {

namespace {

const WinogradKernels* winograd_kernels_of(Isa isa) {
  return DEEPEP_ISA_TABLE(isa, winograd_avx512_kernels, winograd_avx2_kernels);
}

// cached_derived_pack layouts of a conv weight (ops_conv_nhwc.cpp uses 1-4).
constexpr int kLayoutWinograd2 = 5;
constexpr int kLayoutWinograd4 = 6;

std::atomic<int> g_override{-1};

// Read per call (a getenv is nothing next to a conv), so a process can A/B
// the choice by changing the environment between runs.
int env_choice() {
  const char* e = std::getenv("DEEPEP_CONV_WINOGRAD");
  if (!e || !*e) return -1;
  const int m = std::atoi(e);
  return m == 0 || m == 2 || m == 4 ? m : -1;
}

// G of F(2,3) and F(4,3): U = G g G^T.
constexpr double kG2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
constexpr double kG4[6][3] = {{1.0 / 4, 0, 0},
                              {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                              {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                              {1.0 / 24, 1.0 / 12, 1.0 / 6},
                              {1.0 / 24, -1.0 / 12, 1.0 / 6},
                              {0, 0, 1}};

// The a*a transformed weights U_e [C x M], each packed as the GEMM's B, one
// after another in one buffer (len M, K C; strips() * C * NR floats each).
std::shared_ptr<const Packed> pack_weight(Isa isa, int m, const ConvPlan& p, const float* W) {
  const int a = m + 2, E = a * a;
  const double* G = m == 2 ? &kG2[0][0] : &kG4[0][0];
  std::vector<float> u(size_t(E) * size_t(p.C * p.M));
  // By input channel, output channels innermost: each U_e row [c][0..M) is
  // written in order (this was most of a first run's time in resnet50).
  ThreadPool::global().parallel_for(p.C, 1, threads_for(double(p.C) * double(p.M) * 200), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t o = 0; o < p.M; ++o) {
        const float* g = W + (o * p.C + c) * 9;
        double gg[6][3];  // G g
        for (int i = 0; i < a; ++i)
          for (int j = 0; j < 3; ++j)
            gg[i][j] = G[i * 3] * g[j] + G[i * 3 + 1] * g[3 + j] + G[i * 3 + 2] * g[6 + j];
        for (int i = 0; i < a; ++i)
          for (int j = 0; j < a; ++j) {
            const double v = gg[i][0] * G[j * 3] + gg[i][1] * G[j * 3 + 1] + gg[i][2] * G[j * 3 + 2];
            u[size_t((i * a + j) * p.C * p.M + c * p.M + o)] = float(v);
          }
      }
  });
  auto all = std::make_shared<Packed>();
  std::shared_ptr<const Packed> first = pack_b(isa, p.C, p.M, u.data(), p.M, false);
  *all = *first;
  const int64_t per = first->strips() * p.C * first->R;
  all->data = std::shared_ptr<float>(static_cast<float*>(std::aligned_alloc(64, size_t(E * per) * sizeof(float))),
                                     [](float* q) { std::free(q); });
  DEEPEP_CHECK(all->data, "Winograd conv: out of memory packing the weight");
  std::memcpy(all->data.get(), first->data.get(), size_t(per) * sizeof(float));
  for (int e = 1; e < E; ++e) {
    std::shared_ptr<const Packed> pe = pack_b(isa, p.C, p.M, u.data() + size_t(e) * size_t(p.C * p.M), p.M, false);
    std::memcpy(all->data.get() + e * per, pe->data.get(), size_t(per) * sizeof(float));
  }
  for (int e = 0; e < E; ++e) {
    auto view = std::make_shared<Packed>(*first);
    view->data = std::shared_ptr<float>(all->data, all->data.get() + e * per);
    all->parts.push_back(std::move(view));
  }
  return all;
}

// Tiles per block of the fused schedule: at least a few register strips
// (the GEMMs' rows), at most what keeps V and Mt in L2.
constexpr int64_t kMinBlockTiles = 32;
// Fewest tiles for F(4,3) and F(2,3) by default (see winograd_tile).
constexpr int64_t kMinTilesF4 = 32;
constexpr int64_t kMinTilesF2 = 8;
constexpr int64_t kMaxBlockTiles = 96;

// n floats of a thread's scratch v, 64-byte aligned (vector rows of C floats
// then start on cache lines), kept for its next call.
float* scratch(std::vector<float>& v, int64_t n) {
  if (int64_t(v.size()) < n + 16) v.resize(size_t(n + 16));
  const uintptr_t p = reinterpret_cast<uintptr_t>(v.data());
  return reinterpret_cast<float*>((p + 63) / 64 * 64);
}

}  // namespace

int set_winograd_override(int m) { return g_override.exchange(m); }

int winograd_tile(Isa isa, const ConvPlan& p) {
  const Tile tl = tile_of(isa);
  if (!winograd_kernels_of(isa) || tl.VW <= 0) return 0;
  if (p.group != 1 || p.KH != 3 || p.KW != 3 || p.sh != 1 || p.sw != 1 || p.dh != 1 || p.dw != 1) return 0;
  if (p.C % tl.VW != 0 || p.M % tl.VW != 0 || p.C == 0 || p.M == 0) return 0;
  const int forced = g_override.load() >= 0 ? g_override.load() : env_choice();
  if (forced >= 0) return forced;
  // Measured on resnet-like shapes (2-vCPU Sapphire Rapids, docs/CPU.md):
  // F(4,3) is fastest while its GEMMs keep enough rows (28x28 and larger at
  // batch 1), F(2,3) below that (14x14, 7x7: F(4,3)'s 36 weight matrices
  // then stream from memory for few rows), the implicit GEMM when even
  // F(2,3) has under one register strip of tiles (4x4 maps).
  auto tiles = [&](int64_t m) { return p.N * ((p.OH + m - 1) / m) * ((p.OW + m - 1) / m); };
  if (tiles(4) >= kMinTilesF4) return 4;
  if (tiles(2) >= kMinTilesF2) return 2;
  return 0;
}

void winograd_conv(Isa isa, int m, const ConvPlan& p, const float* X, const Tensor& w, bool w_const,
                   const GemmEpi& epi, float* Y) {
  const WinogradKernels* wk = winograd_kernels_of(isa);
  DEEPEP_CHECK(wk && (m == 2 || m == 4), "Winograd conv: no kernels for ISA ", isa_name(isa), " and m = ", m);
  const int a = m + 2, E = a * a, fi = m == 2 ? 0 : 1;
  const float* Wt = w.data<float>();
  std::shared_ptr<const Packed> wp;
  if (w_const)
    wp = cached_derived_pack(isa, w, Wt, m == 2 ? kLayoutWinograd2 : kLayoutWinograd4, false, p.C * E, p.M,
                             [&] { return pack_weight(isa, m, p, Wt); });
  if (!wp) wp = pack_weight(isa, m, p, Wt);

  WinoGeom g;
  g.m = m;
  g.N = p.N, g.H = p.H, g.W = p.W, g.C = p.C, g.M = p.M, g.OH = p.OH, g.OW = p.OW, g.ph = p.ph, g.pw = p.pw;
  g.tiles_y = (p.OH + m - 1) / m;
  g.tiles_x = (p.OW + m - 1) / m;
  g.T = p.N * g.tiles_y * g.tiles_x;
  const int64_t T = g.T, C = p.C, M = p.M;
  if (T == 0) return;
  const int MR = tile_of(isa).MR;

  // Mt_e[rows] = V_e[rows] x U_e on this thread; V_e rows of C floats (read in
  // place by the micro-kernel: measured 2-3 % faster in resnet50 than packing
  // them through the conv's transposes), Mt_e rows of M.
  auto gemm_e = [&](int64_t e, const float* ve, int64_t rows, float* mte) {
    gemm(isa, rows, M, C, Operand{ve, C, false}, Operand{nullptr, 0, false, wp->parts[size_t(e)].get()}, mte, M,
         GemmEpi{}, 1);
  };

  ThreadPool& pool = ThreadPool::global();
  const int threads = threads_for(double(T) * double(E) * double(C) * double(M) * 2);
  const int64_t block = ((T + 2 * threads - 1) / (2 * threads) + MR - 1) / MR * MR;
  if (block >= kMinBlockTiles || threads == 1) {
    // Many tiles: each task takes a block of them through all three steps
    // while its V and Mt stay in L2 (at least two blocks per thread for
    // balance); every block streams all of U.
    // (Tiles run in row order, so the blocks split the image's rows the way
    // the ops around split them: parallel_for_affine.)
    const int64_t tb = std::min(block, kMaxBlockTiles), nblk = (T + tb - 1) / tb;
    pool.parallel_for_affine(nblk, threads, [&](int64_t b0, int64_t b1) {
      thread_local std::vector<float> vbuf, mbuf;
      float* const V = scratch(vbuf, E * tb * C);
      float* const Mt = scratch(mbuf, E * tb * M);
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t t0 = b * tb, t1 = std::min(T, t0 + tb), n = t1 - t0;
        wk->input[fi](g, X, t0, t1, V, n * C);
        for (int64_t e = 0; e < E; ++e) gemm_e(e, V + e * n * C, n, Mt + e * n * M);
        wk->output[fi](g, epi, Mt, n * M, t0, t1, Y);
      }
    });
    return;
  }
  // Few tiles: the threads split the a*a GEMMs (each streams its share of U)
  // between two transforms over all tiles.
  thread_local std::vector<float> vbuf, mbuf;
  float* const V = scratch(vbuf, E * T * C);  // (a worker's vbuf is another)
  float* const Mt = scratch(mbuf, E * T * M);
  const int64_t parts = std::min<int64_t>(T, 4 * threads);
  auto tiles = [&](int64_t q) { return T * q / parts; };
  pool.parallel_for_affine(parts, threads, [&](int64_t q0, int64_t q1) {
    wk->input[fi](g, X, tiles(q0), tiles(q1), V + tiles(q0) * C, T * C);
  });
  pool.parallel_for(E, 1, threads, [&](int64_t e0, int64_t e1) {
    for (int64_t e = e0; e < e1; ++e) gemm_e(e, V + e * T * C, T, Mt + e * T * M);
  });
  pool.parallel_for_affine(parts, threads, [&](int64_t q0, int64_t q1) {
    wk->output[fi](g, epi, Mt + tiles(q0) * M, T * M, tiles(q0), tiles(q1), Y);
  });
}

}  // namespace deepep::cpu
