// Sessions of one engine run on several threads at once, from a fresh engine
// (so their first runs race to pack the same constant weights into the
// shared cache and to plan their memory), and every answer matches a serial
// run. Threads sharing one pool: each caller's loops and the workers'
// stealing interleave. scripts/tsan-test runs this under ThreadSanitizer.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "cpu_kernel_test_util.h"
#include "deepep/engine.h"

using namespace deepep;
using namespace deepep::cputest;

namespace {

// A small CNN (3x3 and 1x1 convs, a depthwise conv, a pool and a classifier)
// and a transformer-like MatMul / Softmax branch: the GEMM, the channels-last
// convs and the row kernels all run, most over the pool.
std::string model_file() {
  auto g = parse_graph_text(R"(graph main(%x: float32[1,3,19,23], %t: float32[37,48]) {
  %w1: float32[16,3,3,3] = const[0]
  %w2: float32[32,16,1,1] = const[1]
  %w3: float32[32,1,3,3] = const[2]
  %wf: float32[10,32] = const[3]
  %wm: float32[48,64] = const[4]
  %c1 = Conv<pads=[1,1,1,1]>(%x, %w1)
  %r1 = Relu(%c1)
  %c2 = Conv(%r1, %w2)
  %r2 = Relu(%c2)
  %c3 = Conv<pads=[1,1,1,1], group=32, strides=[2,2]>(%r2, %w3)
  %p = GlobalAveragePool(%c3)
  %f = Flatten(%p)
  %y = Gemm<transB=1>(%f, %wf)
  %m = MatMul(%t, %wm)
  %s = Softmax<axis=-1>(%m)
  return %y, %s
})");
  const std::pair<const char*, Shape> consts[] = {
      {"w1", {16, 3, 3, 3}}, {"w2", {32, 16, 1, 1}}, {"w3", {32, 1, 3, 3}}, {"wf", {10, 32}}, {"wm", {48, 64}}};
  uint32_t seed = 10;
  for (const auto& [name, shape] : consts)
    for (const auto& v : g->values())
      if (v->name == name) v->data = rnd(shape, seed++);
  return write_model_file(*g, "deepep_engine_concurrency");
}

NamedTensors inputs_for(uint32_t seed) {
  return {{"x", rnd({1, 3, 19, 23}, seed)}, {"t", rnd({37, 48}, seed + 1000)}};
}

TEST(EngineConcurrency, SessionsOnThreadsMatchSerialRuns) {
  const std::string path = model_file();
  constexpr int kThreads = 4, kRuns = 3;
  // The answers, from an engine of its own, one run at a time.
  std::vector<NamedTensors> want;
  {
    auto serial = Engine::load(path)->create_session();
    for (int i = 0; i < kThreads * kRuns; ++i) want.push_back(serial->run(inputs_for(uint32_t(i))));
  }
  auto engine = Engine::load(path);
  std::vector<std::vector<NamedTensors>> got(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      try {
        auto session = engine->create_session();
        for (int r = 0; r < kRuns; ++r) got[t].push_back(session->run(inputs_for(uint32_t(t * kRuns + r))));
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  for (auto& th : threads) th.join();
  std::filesystem::remove(path);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(errors[t], "") << "thread " << t;
    ASSERT_EQ(got[t].size(), size_t(kRuns));
    for (int r = 0; r < kRuns; ++r) {
      const NamedTensors& w = want[size_t(t * kRuns + r)];
      ASSERT_EQ(got[t][r].size(), w.size());
      for (size_t o = 0; o < w.size(); ++o)
        EXPECT_LE(rel_err(got[t][r][o].second, w[o].second), 1e-5) << "thread " << t << " run " << r << " output "
                                                                     << w[o].first;
    }
  }
}

}  // namespace
