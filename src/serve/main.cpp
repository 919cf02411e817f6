// deepep-serve: a KServe v2 / Open Inference Protocol HTTP server for one
// DeepEP model, with adaptive batching. See docs/SERVE.md.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "deepep/engine.h"
#include "serve/batcher.h"
#include "serve/metrics.h"
#include "serve/protocol.h"
#include "serve/server.h"

using namespace deepep;
using namespace deepep::serve;

namespace {

// "8G", "512M", "64k", "1.5G", "1048576" → bytes (binary multiples).
uint64_t parse_bytes(const std::string& s) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(s, &pos);
  } catch (const std::exception&) {
    throw CLI::ValidationError("'" + s + "' is not a size (use e.g. 8G, 512M, 1048576)");
  }
  std::string unit = s.substr(pos);
  double mul = 1;
  if (unit == "" || unit == "B" || unit == "b") mul = 1;
  else if (unit == "k" || unit == "K" || unit == "KB" || unit == "KiB") mul = 1024.0;
  else if (unit == "m" || unit == "M" || unit == "MB" || unit == "MiB") mul = 1024.0 * 1024;
  else if (unit == "g" || unit == "G" || unit == "GB" || unit == "GiB") mul = 1024.0 * 1024 * 1024;
  else if (unit == "t" || unit == "T" || unit == "TB" || unit == "TiB") mul = 1024.0 * 1024 * 1024 * 1024;
  else throw CLI::ValidationError("'" + s + "': unknown size unit '" + unit + "' (use K, M, G or T)");
  if (!(v >= 0) || !std::isfinite(v)) throw CLI::ValidationError("'" + s + "' is not a size");
  return uint64_t(v * mul);
}

std::string kname(const TensorInfo& t) {
  std::string_view k = kserve_dtype(t.dtype);
  return k.empty() ? std::string(dtype_name(t.dtype)) : std::string(k);
}

}  // namespace

int main(int argc, char** argv) {
  // SIGTERM/SIGINT are taken by one thread with sigwait; block them before any
  // other thread exists so every thread inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  CLI::App app{"deepep-serve: serve a DeepEP model over HTTP (KServe v2 / Open Inference Protocol) with adaptive batching"};
  std::string model_path, host = "127.0.0.1", model_name, device = "cpu", pool = "0", max_req = "64M";
  std::string precision = "fp32", layout = "auto";
  int port = 8080, batch_size = 32, fusion_level = 2, threads = 1, http_threads = 64, http_nice = 5;
  double latency_target_ms = 0, drain_timeout_s = 30;
  bool realtime = false;
  size_t max_queue = 1024;
  app.add_option("--model,-m", model_path, "model file (.de or .onnx)")->required()->check(CLI::ExistingFile);
  app.add_option("--port,-p", port, "TCP port (0: any free port, printed at start-up)")->check(CLI::Range(0, 65535))->capture_default_str();
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--model-name", model_name, "name the model is served under (default: the file's stem)");
  app.add_option("--batch-size", batch_size, "largest batch (rows along the batch dimension); 1 turns batching off")
      ->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--latency-target-ms", latency_target_ms,
                 "p99 latency target: sizes batches and waits to meet it, refuses requests that cannot (0: none)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--realtime-mode", realtime, "never wait for a batch to fill; plan every batch size at start-up");
  app.add_option("--max-queue", max_queue, "requests that may wait; more are refused with 503")
      ->check(CLI::Range(size_t(1), size_t(1) << 24))->capture_default_str();
  app.add_option("--threads", threads, "compute workers (batches run concurrently, one thread each)")
      ->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--http-threads", http_threads, "HTTP connection threads (each keep-alive connection holds one)")
      ->check(CLI::Range(2, 4096))->capture_default_str();
  app.add_option("--http-nice", http_nice, "connection threads run this much nicer than the compute workers (0: same)")
      ->check(CLI::Range(0, 19))->capture_default_str();
  app.add_option("--fusion-level", fusion_level, "graph optimization for .onnx models: 0 none .. 3 aggressive")
      ->check(CLI::Range(0, 3))->capture_default_str();
  app.add_option("--memory-pool-size", pool, "cap on each session's activation arena (e.g. 8G; 0: none)");
  app.add_option("--max-request-size", max_req, "largest request body (e.g. 64M); larger gets 413")->capture_default_str();
  app.add_option("--device", device, "cpu, or cuda:N (needs a CUDA build)")->capture_default_str();
  app.add_option("--precision", precision,
                 "execution precision: fp32 (TF32 on GPUs, bf16x3 on CPUs with AMX tiles allowed), fp32-strict or "
                 "fp16 (GPU)")
      ->check(CLI::IsMember({"fp32", "fp32-strict", "fp16"}))->capture_default_str();
  app.add_option("--layout", layout, "convolution layout: auto (the device's faster), nchw or nhwc")
      ->check(CLI::IsMember({"auto", "nchw", "nhwc"}))->capture_default_str();
  app.add_option("--drain-timeout", drain_timeout_s, "seconds SIGTERM waits for in-flight requests")->capture_default_str();
  uint64_t pool_bytes = 0, max_req_bytes = 0;
  try {
    app.parse(argc, argv);
    pool_bytes = parse_bytes(pool);
    max_req_bytes = parse_bytes(max_req);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (model_name.empty()) model_name = std::filesystem::path(model_path).stem().string();
  if (model_name.empty() || model_name.find('/') != std::string::npos) {
    std::fprintf(stderr, "deepep-serve: error: model name '%s' is not usable in a URL\n", model_name.c_str());
    return 2;
  }

  std::shared_ptr<Engine> engine;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    EngineOptions eo;
    eo.device = device;
    eo.precision = precision;
    eo.layout = layout;
    eo.fusion_level = fusion_level;
    eo.memory_pool_bytes = pool_bytes;
    engine = Engine::load(model_path, eo);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepep-serve: error: cannot load %s on %s: %s\n", model_path.c_str(), device.c_str(),
                 e.what());
    return 1;
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "deepep-serve: loaded %s as '%s' in %.2f s (device %s, %zu nodes)\n", model_path.c_str(),
               model_name.c_str(), load_s, engine->device().c_str(), engine->node_count());
  for (const auto& t : engine->inputs())
    std::fprintf(stderr, "  input  %s: %s %s\n", t.name.c_str(), kname(t).c_str(), t.shape_str().c_str());
  for (const auto& t : engine->outputs())
    std::fprintf(stderr, "  output %s: %s %s\n", t.name.c_str(), kname(t).c_str(), t.shape_str().c_str());
  for (const auto& t : engine->inputs())
    if (kserve_dtype(t.dtype).empty()) {
      std::fprintf(stderr, "deepep-serve: error: input '%s' has dtype %s, which the KServe v2 protocol cannot carry\n",
                   t.name.c_str(), std::string(dtype_name(t.dtype)).c_str());
      return 1;
    }

  BatchSpec spec = batch_spec(*engine);
  if (spec.batched && batch_size > 1)
    std::fprintf(stderr, "deepep-serve: batching along dimension 0 ('%s'), up to %d rows per batch\n",
                 spec.symbol.c_str(), batch_size);
  else if (!spec.batched)
    std::fprintf(stderr, "deepep-serve: serving without batching: %s\n", spec.why_not.c_str());
  else
    std::fprintf(stderr, "deepep-serve: batching off (--batch-size 1)\n");

  Metrics metrics(model_name, spec.batched ? batch_size : 1);
  BatcherOptions bo;
  bo.max_batch = batch_size;
  bo.latency_target_ms = latency_target_ms;
  bo.realtime = realtime;
  bo.max_queue = max_queue;
  bo.workers = threads;
  Batcher batcher(engine, spec, bo, &metrics);
  try {
    batcher.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepep-serve: error: the model failed its start-up runs: %s\n", e.what());
    return 1;
  }

  ServerOptions so;
  so.host = host;
  so.port = port;
  so.model_name = model_name;
  so.max_request_bytes = size_t(max_req_bytes);
  so.http_threads = http_threads;
  so.http_nice = http_nice;
  HttpServer server(engine, batcher, metrics, so);
  const int bound = server.bind();
  if (bound <= 0) {
    std::fprintf(stderr, "deepep-serve: error: cannot listen on %s:%d (address in use or not available)\n",
                 host.c_str(), port);
    batcher.stop();
    return 1;
  }

  // SIGTERM / SIGINT: refuse new requests (readiness goes 503), let the queued
  // and running ones finish, then stop.
  std::thread sig_thread([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == 0) return;
    std::fprintf(stderr, "deepep-serve: %s: draining (%lld in flight)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                 (long long)server.inflight());
    batcher.begin_drain();
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(drain_timeout_s);
    while (std::chrono::steady_clock::now() < until) {
      if (batcher.wait_idle(std::chrono::milliseconds(20)) && server.inflight() == 0) break;
    }
    server.stop();
  });

  std::fprintf(stderr, "deepep-serve: listening on http://%s:%d (KServe v2; model '%s')\n", host.c_str(), bound,
               model_name.c_str());
  std::fflush(stderr);
  const bool ok = server.listen();
  // listen() also returns when the socket fails; wake the signal thread.
  pthread_kill(sig_thread.native_handle(), SIGTERM);
  sig_thread.join();
  batcher.stop();
  std::fprintf(stderr, "deepep-serve: stopped\n");
  return ok ? 0 : 1;
}
