// Helpers of the CUDA test suite: run a graph (IR text) on the CPU reference
// executor and on the GPU, and compare. Each GPU run poisons the arena with
// NaN bytes first, runs twice (eager, then the captured CUDA graph) and
// checks both runs agree bit for bit.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "deepep/error.h"
#include "deepep/half.h"
#include "ir/graph_text_parser.h"
#include "runtime/cuda_runtime.h"
#include "runtime/executor.h"

namespace deepep::cuda_test {

inline bool have_gpu() {
  static const bool yes = !cuda_devices().empty();
  return yes;
}

#define REQUIRE_GPU() \
  if (!::deepep::cuda_test::have_gpu()) GTEST_SKIP() << "no CUDA device"

inline Tensor rnd(const Shape& s, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor t(DType::kFloat32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}
inline Tensor ints(const Shape& s, uint32_t seed, int64_t lo, int64_t hi) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> d(lo, hi);
  Tensor t(DType::kInt64, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = d(rng);
  return t;
}
inline Tensor bools(const Shape& s, uint32_t seed) {
  std::mt19937 rng(seed);
  Tensor t(DType::kBool, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<bool>()[i] = (rng() % 4) != 0;
  return t;
}
// Rounds float32 data through float16 (inputs of fp16 comparisons).
inline Tensor through_half(const Tensor& t) {
  Tensor r = t.clone();
  if (t.dtype() != DType::kFloat32) return r;
  for (int64_t i = 0; i < r.numel(); ++i) r.data<float>()[i] = half_bits_to_float(float_to_half_bits(r.data<float>()[i]));
  return r;
}

struct Graphed {
  std::unique_ptr<Graph> g;
  std::vector<Tensor> inputs;  // for the graph inputs left
};

// Parses `text` and turns the inputs named in `consts` into constants
// (weights) holding the given tensors; `inputs` feeds the rest in order.
inline Graphed make(const std::string& text, const std::vector<std::pair<std::string, Tensor>>& consts = {}) {
  Graphed r;
  r.g = parse_graph_text(text);
  for (const auto& [name, t] : consts) {
    Value* v = r.g->find(name);
    EXPECT_TRUE(v) << name;
    if (!v) continue;
    v->data = t;
    auto& in = r.g->inputs;
    in.erase(std::remove(in.begin(), in.end(), v), in.end());
  }
  return r;
}

inline std::vector<Tensor> run_cpu(const Graph& g, const std::vector<Tensor>& in) {
  Executor ex;
  return ex.run_graph(g, in, nullptr);
}

struct GpuOpts {
  bool fp16 = false;
  bool strict = true;
};

inline std::vector<Tensor> run_gpu(const Graph& g, const std::vector<Tensor>& in, GpuOpts o = {}) {
  CudaOptions co;
  co.fp16 = o.fp16;
  co.strict_fp32 = o.strict;
  co.poison = true;
  auto model = cuda_load(g, co);
  auto session = cuda_session(model);
  std::vector<Tensor> first = session->run(in);
  std::vector<Tensor> second = session->run(in);  // replays the captured graph
  EXPECT_EQ(first.size(), second.size());
  for (size_t i = 0; i < first.size() && i < second.size(); ++i) {
    EXPECT_EQ(first[i].shape(), second[i].shape());
    if (first[i].nbytes() == second[i].nbytes() && first[i].nbytes())
      EXPECT_EQ(0, std::memcmp(first[i].raw(), second[i].raw(), first[i].nbytes())) << "output " << i
                                                                                    << " differs between eager run and graph replay";
  }
  return second;
}

// ||got - want|| / ||want|| (L2), with NaN where the reference has none an error.
inline double rel_err(const Tensor& got, const Tensor& want, std::string* why) {
  if (got.shape() != want.shape() || got.dtype() != want.dtype()) {
    *why = "shape/dtype " + std::string(dtype_name(got.dtype())) + shape_str(got.shape()) + " vs " +
           std::string(dtype_name(want.dtype())) + shape_str(want.shape());
    return 1e30;
  }
  double num = 0, den = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double g = got.get_double(i), w = want.get_double(i);
    if (std::isnan(w) && std::isnan(g)) continue;
    if (std::isnan(g) != std::isnan(w) || std::isinf(g) != std::isinf(w)) {
      *why = "element " + std::to_string(i) + ": got " + std::to_string(g) + ", want " + std::to_string(w);
      return 1e30;
    }
    if (std::isinf(w)) {
      if (g != w) {
        *why = "element " + std::to_string(i) + " infinity sign";
        return 1e30;
      }
      continue;
    }
    num += (g - w) * (g - w);
    den += w * w;
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

// Runs on both and expects every output within `tol` (relative L2).
inline void expect_match(const Graphed& c, double tol, GpuOpts o = {}) {
  std::vector<Tensor> cpu_in = c.inputs;
  if (o.fp16)
    for (Tensor& t : cpu_in) t = through_half(t);
  const std::vector<Tensor> want = run_cpu(*c.g, cpu_in);
  const std::vector<Tensor> got = run_gpu(*c.g, c.inputs, o);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    std::string why;
    const double e = rel_err(got[i], want[i], &why);
    EXPECT_LE(e, tol) << "output " << i << " " << why << "\n" << c.g->to_text();
  }
}

}  // namespace deepep::cuda_test
