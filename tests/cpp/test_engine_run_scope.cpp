// A Session's CPU run holds a ThreadPool::RunScope (caller moved off the
// workers' CPUs, workers woken to spin through the run) only while its runs
// hand loops to the workers: after a run that gave them none (a small
// model, every op on the caller's thread) the next run goes without, and a
// run that does share loops brings the scope back for the one after.
#include <gtest/gtest.h>

#include <filesystem>

#include "cpu_kernel_test_util.h"
#include "deepep/engine.h"
#include "kernels/cpu/thread_pool.h"

using namespace deepep;
using namespace deepep::cputest;
using deepep::cpu::ThreadPool;

namespace {

// y = x @ w, x [rows, k], w [k, n] a constant.
std::string matmul_model(int64_t rows, int64_t k, int64_t n, const std::string& name) {
  auto g = parse_graph_text("graph main(%x: float32[" + std::to_string(rows) + ", " + std::to_string(k) +
                            "]) {\n %w: float32[" + std::to_string(k) + ", " + std::to_string(n) +
                            "] = const[0]\n %y = MatMul(%x, %w)\n return %y\n}");
  for (const auto& v : g->values())
    if (v->name == "w") v->data = rnd({k, n}, 3);
  return write_model_file(*g, name);
}

TEST(EngineRunScope, SerialRunsStopWakingThePoolParallelOnesKeepIt) {
  const std::string small = matmul_model(2, 8, 8, "deepep_run_scope_small");
  auto engine = Engine::load(small);
  auto session = engine->create_session();
  const NamedTensors in = {{"x", rnd({2, 8}, 1)}};
  const Tensor want = session->run(in).at(0).second;
  for (int r = 0; r < 2; ++r) session->run(in);  // settled: any first-run packing is past
  const uint64_t before = ThreadPool::run_scopes();
  for (int r = 0; r < 3; ++r) {
    const Tensor got = session->run(in).at(0).second;
    EXPECT_EQ(rel_err(got, want), 0.0) << "small model, run " << r;
  }
  EXPECT_EQ(ThreadPool::run_scopes(), before) << "a model whose runs share no loop still took run scopes";
  std::filesystem::remove(small);

  if (ThreadPool::global().size() < 2) GTEST_SKIP() << "one CPU: no loop is ever shared";
  const std::string large = matmul_model(256, 512, 512, "deepep_run_scope_large");
  auto big = Engine::load(large)->create_session();
  const NamedTensors big_in = {{"x", rnd({256, 512}, 2)}};
  for (int r = 0; r < 2; ++r) big->run(big_in);
  const uint64_t loops = ThreadPool::loops_shared(), scopes = ThreadPool::run_scopes();
  for (int r = 0; r < 3; ++r) big->run(big_in);
  EXPECT_GT(ThreadPool::loops_shared(), loops) << "a 256 x 512 x 512 GEMM ran on one thread";
  EXPECT_EQ(ThreadPool::run_scopes(), scopes + 3) << "runs that share loops must keep their run scopes";
  std::filesystem::remove(large);
}

}  // namespace
