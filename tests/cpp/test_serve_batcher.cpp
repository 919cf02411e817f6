// deepep-serve: the latency model, the batching policy, the protocol codec,
// and the batcher merging concurrent requests (answers checked row by row).
#ifndef DEEPEP_NO_SERVE
#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <thread>

#include "deepep/engine.h"
#include "cpu_kernel_test_util.h"
#include "ir/graph_text_parser.h"
#include "serve/batcher.h"
#include "serve/protocol.h"

namespace deepep::serve {
namespace {

std::string write_model(const std::string& text, const std::string& name) {
  return cputest::write_model_file(*parse_graph_text(text), name);
}

const char* kBatched = R"(graph main(%x: float32[batch,4]) {
  %y: float32[batch,4] = Tanh(%x)
  %z: float32[batch,4] = Mul(%y, %x)
  return %z
})";

TEST(ServeLatencyModel, InterpolatesAndExtrapolates) {
  LatencyModel m(32);
  EXPECT_EQ(m.predict(4), 0);
  m.observe(1, 1.0);
  m.observe(8, 8.0);
  EXPECT_DOUBLE_EQ(m.predict(1), 1.0);
  EXPECT_DOUBLE_EQ(m.predict(4), 4.0);   // linear between 1 and 8
  EXPECT_DOUBLE_EQ(m.predict(16), 16.0); // proportional above 8
  m.observe(8, 10.0);                    // EWMA, alpha 0.2
  EXPECT_DOUBLE_EQ(m.predict(8), 8.4);
  m.observe(8, 1000.0);                  // a preempted run: clipped to 2x the estimate
  EXPECT_DOUBLE_EQ(m.predict(8), 0.8 * 8.4 + 0.2 * 16.8);
  // A small size measured slower than a larger one is capped by it.
  m.observe(2, 50.0);
  EXPECT_DOUBLE_EQ(m.predict(2), m.predict(8));
  EXPECT_EQ(m.points().size(), 3u);
  m.observe(0, 5.0);   // out of range: ignored
  m.observe(33, 5.0);
  m.observe(2, -1.0);
  EXPECT_EQ(m.points().size(), 3u);
}

TEST(ServeLatencyModel, PolicyMeetsTarget) {
  LatencyModel m(32);
  for (int b : {1, 2, 4, 8, 16, 32}) m.observe(b, 0.001 + 0.0005 * b);  // seconds
  // No target: everything queued, no waiting.
  BatchPolicy p = choose_policy(m, 32, 0, false, 1);
  EXPECT_EQ(p.max_batch, 32);
  EXPECT_EQ(p.max_wait_s, 0);
  // 21 ms target, one worker: 1.25 * L(b) * 2 <= 0.021 → L(b) <= 8.4 ms → b <= 14;
  // half the remaining 1 ms is the wait.
  p = choose_policy(m, 32, 0.021, false, 1);
  EXPECT_EQ(p.max_batch, 14);
  EXPECT_NEAR(p.max_wait_s, 0.0005, 1e-9);
  EXPECT_LE(p.max_wait_s + kLatencySafety * 2 * m.predict(p.max_batch), 0.021 + 1e-12);
  // Realtime: never waits.
  EXPECT_EQ(choose_policy(m, 32, 0.020, true, 1).max_wait_s, 0);
  // A target below one batch-1 run still allows batch 1.
  EXPECT_EQ(choose_policy(m, 32, 0.0001, false, 1).max_batch, 1);
  // More workers: less waiting for a running batch, larger batches fit.
  EXPECT_GT(choose_policy(m, 32, 0.020, false, 4).max_batch, 14);
}

TEST(ServeProtocol, ParsesJsonAndBinaryAndNamesProblems) {
  const std::string path = write_model(kBatched, "serve_proto");
  auto e = Engine::load(path);
  std::filesystem::remove(path);
  BatchSpec spec = batch_spec(*e);
  ASSERT_TRUE(spec.batched) << spec.why_not;
  EXPECT_EQ(spec.symbol, "batch");

  // Nested JSON data.
  InferRequest r = parse_infer_request(
      R"({"id":"a","inputs":[{"name":"x","datatype":"FP32","shape":[2,4],"data":[[1,2,3,4],[5,6,7,8]]}]})", {}, *e,
      spec, 8);
  EXPECT_EQ(r.id, "a");
  EXPECT_EQ(r.batch, 2);
  ASSERT_EQ(r.inputs.size(), 1u);
  EXPECT_EQ(r.inputs[0].second.data<float>()[7], 8.0f);

  // Binary: JSON header then raw bytes.
  std::string hdr = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"parameters":{"binary_data_size":16}}],)"
                    R"("parameters":{"binary_data_output":true}})";
  float vals[4] = {1.5f, -2.f, 3.f, 0.25f};
  std::string body = hdr + std::string(reinterpret_cast<const char*>(vals), 16);
  r = parse_infer_request(body, hdr.size(), *e, spec, 8);
  EXPECT_TRUE(r.binary_output);
  EXPECT_EQ(r.inputs[0].second.data<float>()[3], 0.25f);

  // Response: binary output follows the JSON.
  Tensor out(DType::kFloat32, {1, 4});
  for (int i = 0; i < 4; ++i) out.data<float>()[i] = float(i);
  EncodedResponse enc = encode_infer_response("m", r, {{"z", out}});
  ASSERT_TRUE(enc.header_length.has_value());
  EXPECT_EQ(enc.body.size(), *enc.header_length + 16);
  EXPECT_NE(enc.body.find("\"binary_data_size\":16"), std::string::npos);

  auto expect_bad = [&](const std::string& b, std::optional<size_t> h, const std::string& needle) {
    try {
      parse_infer_request(b, h, *e, spec, 8);
      ADD_FAILURE() << "accepted: " << b;
    } catch (const BadRequest& ex) {
      EXPECT_NE(std::string(ex.what()).find(needle), std::string::npos) << ex.what();
    }
  };
  expect_bad("{not json", {}, "malformed JSON");
  {
    // Values nested far deeper than the stack allows recursion: named, not a crash.
    const std::string open(300000, '['), close(300000, ']');
    expect_bad(R"({"inputs":[{"name":"x","datatype":"FP32","shape":)" + open + close + R"(,"data":[1]}]})", {},
               "shape [[[[[[[[[...]]]]]]]]] must list non-negative integers");
    expect_bad(open + close, {}, "must be a JSON object, got [[[[[[[[[...]]]]]]]]]");
    expect_bad(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":)" + open + close + "}]}", {},
               "nested too deeply");
    expect_bad(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[{"a":[1,2],"b":"c"}],"data":[1]}]})", {},
               R"(shape [{"a":[1,2],"b":"c"}] must list)");
  }
  expect_bad(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,1e430]}]})", {}, "number overflow");
  expect_bad(R"({"inputs":[]})", {}, "non-empty");
  expect_bad(R"({"inputs":[{"name":"q","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]})", {}, "missing input 'x'");
  expect_bad(R"({"inputs":[{"name":"x","datatype":"FP64","shape":[1,4],"data":[1,2,3,4]}]})", {}, "FP64");
  expect_bad(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,5],"data":[1,2,3,4,5]}]})", {}, "dimension 1 must be 4");
  expect_bad(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3]}]})", {}, "has 3 elements");
  expect_bad(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,"a",4]}]})", {}, "element 2");
  expect_bad(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[9,4],"data":[]}]})", {}, "has 0 elements");
  expect_bad(R"({"inputs":[{"name":"x","datatype":"BYTES","shape":[1,4],"data":[1,2,3,4]}]})", {}, "not supported");
  // Huge declared shapes are refused before anything is allocated.
  expect_bad(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1000000000,4],"data":[1]}]})", {}, "has 1 elements");
  expect_bad(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1099511627776,4],"data":[1]}]})", {}, "too large");
  {
    std::string h = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1000000000,4],"parameters":{"binary_data_size":16}}]})";
    expect_bad(h + std::string(16, '\0'), h.size(), "needs 16000000000");
  }
  expect_bad(body, hdr.size() + 4, "binary_data_size");       // header claims more JSON than there is
  expect_bad(body + "xx", hdr.size(), "add up to 16");         // stray bytes after the tensors
  expect_bad(body.substr(0, body.size() - 4), hdr.size(), "runs past the end");
  expect_bad(body, std::nullopt, "Inference-Header-Content-Length");  // binary without the header
  std::string big = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[16,4],"parameters":{"binary_data_size":256}}]})";
  expect_bad(big + std::string(256, '\0'), big.size(), "exceeds the model's max_batch_size 8");
}

TEST(ServeBatcher, MergesConcurrentRequestsWithRightAnswers) {
  const std::string path = write_model(kBatched, "serve_batcher");
  auto e = Engine::load(path);
  std::filesystem::remove(path);
  BatcherOptions o;
  o.max_batch = 8;
  o.latency_target_ms = 50;
  o.log = false;
  Metrics metrics("m", 8);
  Batcher b(e, batch_spec(*e), o, &metrics);
  b.start();
  constexpr int kClients = 24;
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int c = 0; c < kClients; ++c)
    ts.emplace_back([&, c] {
      const int64_t rows = 1 + c % 3;
      Tensor x(DType::kFloat32, {rows, 4});
      std::mt19937 rng(c);
      std::uniform_real_distribution<float> u(-2, 2);
      for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = u(rng);
      auto job = b.make_job({{"x", x}}, rows);
      auto fut = job->promise.get_future();
      Rejection rej = b.submit(job);
      ASSERT_TRUE(rej.reason.empty()) << rej.message;
      JobResult r = fut.get();
      ASSERT_EQ(r.status, 200) << r.error;
      const Tensor& z = r.outputs.at(0).second;
      ASSERT_EQ(z.shape(), (Shape{rows, 4}));
      for (int64_t i = 0; i < x.numel(); ++i) {
        float v = x.data<float>()[i];
        ASSERT_NEAR(z.data<float>()[i], std::tanh(v) * v, 1e-5f) << "client " << c << " element " << i;
      }
      ++ok;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), kClients);
  EXPECT_GE(metrics.batch_size.count(), 1u);
  b.begin_drain();
  EXPECT_TRUE(b.wait_idle(std::chrono::seconds(5)));
  auto late = b.make_job({{"x", Tensor::zeros(DType::kFloat32, {1, 4})}}, 1);
  EXPECT_EQ(b.submit(late).reason, "shutting_down");
  b.stop();
}

TEST(ServeBatcher, BoundedQueueRefusesAndNonBatchedModelsRunAlone) {
  const std::string path = write_model(R"(graph main(%x: float32[2,3]) {
  %y: float32[2,3] = Relu(%x)
  return %y
})", "serve_fixed");
  auto e = Engine::load(path);
  std::filesystem::remove(path);
  BatchSpec spec = batch_spec(*e);
  EXPECT_FALSE(spec.batched);
  EXPECT_NE(spec.why_not.find("not symbolic"), std::string::npos) << spec.why_not;
  BatcherOptions o;
  o.max_queue = 2;
  o.log = false;
  Batcher b(e, spec, o, nullptr);
  // Not started: nothing drains the queue, so the third request is refused.
  Tensor x = Tensor::zeros(DType::kFloat32, {2, 3});
  EXPECT_TRUE(b.submit(b.make_job({{"x", x}}, -1)).reason.empty());
  EXPECT_TRUE(b.submit(b.make_job({{"x", x}}, -1)).reason.empty());
  EXPECT_EQ(b.submit(b.make_job({{"x", x}}, -1)).reason, "queue_full");
  b.stop();  // queued jobs are answered 503
}

}  // namespace
}  // namespace deepep::serve
#endif
