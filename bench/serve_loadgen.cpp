// Open-loop HTTP load generator for deepep-serve (driven by bench/serve_load.py).
//
// Requests are scheduled as a Poisson process at --rate for --duration
// seconds; each one's latency runs from its scheduled send time, so a slow
// server cannot slow the client down and hide queueing. Worker threads (each
// with one keep-alive connection) take the next scheduled request, sleep
// until its time and send it. The client is C++ on purpose: a Python client
// sharing a small machine with the server spends the CPU the server needs
// and adds its own scheduling delay to every latency.
//
//   deepep_serve_loadgen --port P --model NAME --payloads DIR --rate R --duration S [--seed N]
//
// DIR/manifest.json: [{"body": FILE, "header_length": N, "expected": FILE}, ...]: each request body
// (binary tensor extension: a JSON header of N bytes, then the tensors), and the float32 bytes its
// answer must carry after the response's JSON header (all outputs, in order), compared within
// --atol + --rtol * |expected|. Prints one JSON object: sent, ok, rejected (503), errors, wrong,
// wall_s, latencies of the answered requests in ms, and a few error messages.
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Payload {
  std::string body;
  size_t header_length = 0;
  std::vector<float> expected;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::vector<Payload> load_payloads(const std::string& dir) {
  const auto manifest = nlohmann::json::parse(read_file(dir + "/manifest.json"));
  std::vector<Payload> out;
  for (const auto& m : manifest) {
    Payload p;
    p.body = read_file(dir + "/" + m.at("body").get<std::string>());
    p.header_length = m.at("header_length").get<size_t>();
    const std::string e = read_file(dir + "/" + m.at("expected").get<std::string>());
    p.expected.resize(e.size() / sizeof(float));
    std::memcpy(p.expected.data(), e.data(), p.expected.size() * sizeof(float));
    out.push_back(std::move(p));
  }
  if (out.empty()) throw std::runtime_error(dir + "/manifest.json lists no payloads");
  return out;
}

// Whether the answer's tensor bytes (after its JSON header) match.
bool matches(const httplib::Result& res, const Payload& p, double rtol, double atol) {
  const std::string h = res->get_header_value("Inference-Header-Content-Length");
  if (h.empty()) return false;
  const size_t hl = std::stoul(h);
  if (res->body.size() != hl + p.expected.size() * sizeof(float)) return false;
  const char* data = res->body.data() + hl;
  for (size_t i = 0; i < p.expected.size(); ++i) {
    float y;
    std::memcpy(&y, data + i * sizeof(float), sizeof(float));
    const double e = p.expected[i];
    if (!(std::fabs(double(y) - e) <= atol + rtol * std::fabs(e))) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"deepep_serve_loadgen: open-loop Poisson load against deepep-serve"};
  std::string host = "127.0.0.1", model, dir;
  int port = 0, threads = 256;
  double rate = 10, duration = 5, rtol = 1e-3, atol = 1e-3, timeout_s = 60;
  uint64_t seed = 0;
  app.add_option("--host", host);
  app.add_option("--port", port)->required();
  app.add_option("--model", model, "served model name")->required();
  app.add_option("--payloads", dir, "folder with manifest.json")->required();
  app.add_option("--rate", rate, "requests per second")->required()->check(CLI::PositiveNumber);
  app.add_option("--duration", duration, "seconds")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "connections (one thread each)")->check(CLI::Range(1, 4096));
  app.add_option("--seed", seed);
  app.add_option("--rtol", rtol);
  app.add_option("--atol", atol);
  app.add_option("--timeout", timeout_s, "seconds a request may take");
  CLI11_PARSE(app, argc, argv);

  std::vector<Payload> payloads;
  try {
    payloads = load_payloads(dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deepep_serve_loadgen: %s\n", e.what());
    return 2;
  }
  const size_t n = std::max<size_t>(1, size_t(rate * duration));
  std::vector<double> arrival(n);
  std::mt19937_64 rng(seed);
  std::exponential_distribution<double> gap(rate);
  double t = 0;
  for (auto& a : arrival) a = (t += gap(rng));

  const std::string path = "/v2/models/" + model + "/infer";
  std::vector<double> latency_ms(n, -1);
  std::atomic<size_t> next{0};
  std::atomic<int64_t> rejected{0}, errors{0}, wrong{0};
  std::mutex msg_mu;
  std::vector<std::string> messages;
  auto note = [&](std::string m) {
    std::lock_guard<std::mutex> l(msg_mu);
    if (messages.size() < 5) messages.push_back(std::move(m));
  };
  // Every connection is opened (one health check each) before the clock
  // starts: a burst of connects overflows the server's accept backlog and
  // would be measured as latency or lost as errors.
  const int nthreads = std::min<int>(threads, int(n));
  std::atomic<int> connected{0};
  std::atomic<bool> go{false};
  Clock::time_point t0;
  auto worker = [&] {
    httplib::Client cli(host, port);
    cli.set_keep_alive(true);
    cli.set_tcp_nodelay(true);  // header and body go out as two writes: no Nagle wait on the second
    cli.set_read_timeout(std::chrono::milliseconds(int64_t(timeout_s * 1e3)));
    cli.set_connection_timeout(std::chrono::seconds(10));
    for (int attempt = 0; attempt < 3; ++attempt)
      if (auto r = cli.Get("/v2/health/live"); r && r->status == 200) break;
    ++connected;
    while (!go.load()) std::this_thread::sleep_for(std::chrono::microseconds(200));
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      const auto sched = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(arrival[i]));
      std::this_thread::sleep_until(sched);
      const Payload& p = payloads[i % payloads.size()];
      httplib::Headers h{{"Inference-Header-Content-Length", std::to_string(p.header_length)}};
      auto res = cli.Post(path, h, p.body, "application/octet-stream");
      const auto done = Clock::now();
      if (!res) {
        ++errors;
        note("transport: " + httplib::to_string(res.error()));
        continue;
      }
      if (res->status == 503) {
        ++rejected;
        continue;
      }
      if (res->status != 200) {
        ++errors;
        note("HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 200));
        continue;
      }
      if (!matches(res, p, rtol, atol)) ++wrong;
      latency_ms[i] = std::chrono::duration<double, std::milli>(done - sched).count();
    }
  };
  std::vector<std::thread> pool;
  for (int i = 0; i < nthreads; ++i) pool.emplace_back(worker);
  while (connected.load() < nthreads) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  t0 = Clock::now() + std::chrono::milliseconds(20);
  go = true;
  for (auto& th : pool) th.join();
  const double wall = std::max(std::chrono::duration<double>(Clock::now() - t0).count(), arrival.back());

  nlohmann::json out;
  out["sent"] = n;
  out["rejected"] = rejected.load();
  out["errors"] = errors.load();
  out["wrong"] = wrong.load();
  out["wall_s"] = wall;
  auto& lat = out["latency_ms"] = nlohmann::json::array();
  for (double l : latency_ms)
    if (l >= 0) lat.push_back(std::round(l * 1000) / 1000);
  out["ok"] = lat.size();
  out["messages"] = messages;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
