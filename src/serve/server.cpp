#include "serve/server.h"

#include <httplib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <nlohmann/json.hpp>
#include <thread>

namespace deepep::serve {

using json = nlohmann::json;

namespace {
constexpr const char* kJson = "application/json";
// A timeout this long (~115 days) is no deadline: past it the clock's
// nanoseconds would overflow (a Timeout-Ms of 1e300 or inf expired at once).
constexpr double kNoDeadlineMs = 1e10;

void send_error(httplib::Response& res, int status, const std::string& msg) {
  res.status = status;
  json j;
  j["error"] = msg;
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), kJson);
  if (status == 503) res.set_header("Retry-After", "1");
}

json tensor_meta(const TensorInfo& t) {
  json j;
  j["name"] = t.name;
  std::string_view dt = kserve_dtype(t.dtype);
  j["datatype"] = dt.empty() ? std::string(dtype_name(t.dtype)) : std::string(dt);
  j["shape"] = metadata_dims(t);
  return j;
}

json tensor_config(const TensorInfo& t, bool batched) {
  json j;
  j["name"] = t.name;
  std::string_view dt = kserve_dtype(t.dtype);
  j["data_type"] = "TYPE_" + std::string(dt.empty() ? dtype_name(t.dtype) : dt);
  std::vector<int64_t> dims = metadata_dims(t);
  if (batched && !dims.empty()) dims.erase(dims.begin());
  j["dims"] = dims;
  return j;
}

double secs_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// httplib's ThreadPool, with each connection thread's nice value raised by
// `nice`: when the CPU is short, the compute workers (the bottleneck) run
// first and handling connections, answering 503s included, waits.
class NicePool : public httplib::TaskQueue {
 public:
  NicePool(size_t n, int nice) {
    for (size_t i = 0; i < n; ++i)
      threads_.emplace_back([this, nice] {
        if (nice > 0) setpriority(PRIO_PROCESS, pid_t(syscall(SYS_gettid)), std::min(19, getpriority(PRIO_PROCESS, 0) + nice));
        for (;;) {
          std::function<void()> fn;
          {
            std::unique_lock<std::mutex> l(mu_);
            cv_.wait(l, [&] { return stop_ || !jobs_.empty(); });
            if (stop_ && jobs_.empty()) return;
            fn = std::move(jobs_.front());
            jobs_.pop_front();
          }
          fn();
        }
      });
  }
  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> l(mu_);
      jobs_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  std::vector<std::thread> threads_;
  std::deque<std::function<void()>> jobs_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};
}  // namespace

HttpServer::HttpServer(std::shared_ptr<Engine> engine, Batcher& batcher, Metrics& metrics, ServerOptions options)
    : engine_(std::move(engine)), batcher_(batcher), metrics_(metrics), opt_(std::move(options)),
      http_(std::make_unique<httplib::Server>()) {
  const int threads = std::max(2, opt_.http_threads);
  const int nice = opt_.http_nice;
  http_->new_task_queue = [threads, nice] { return new NicePool(size_t(threads), nice); };
  http_->set_payload_max_length(opt_.max_request_bytes);
  http_->set_keep_alive_max_count(100000);
  http_->set_keep_alive_timeout(5);
  http_->set_read_timeout(10, 0);
  http_->set_write_timeout(10, 0);
  http_->set_tcp_nodelay(true);
  routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  if (opt_.port == 0) return http_->bind_to_any_port(opt_.host);
  return http_->bind_to_port(opt_.host, opt_.port) ? opt_.port : -1;
}

bool HttpServer::listen() { return http_->listen_after_bind(); }
void HttpServer::stop() { http_->stop(); }
int64_t HttpServer::inflight() const { return metrics_.inflight.load(); }

void HttpServer::routes() {
  auto& s = *http_;
  const std::string name = opt_.model_name;
  const BatchSpec& spec = batcher_.spec();
  const int max_batch = spec.batched ? batcher_.options().max_batch : 0;

  // {model}[/versions/{v}]: the model must be ours and the version "1" (or absent).
  auto model_ok = [name](const httplib::Request& req, httplib::Response& res) -> bool {
    const std::string m = req.matches[1];
    const std::string v = req.matches.size() > 2 ? std::string(req.matches[2]) : "";
    if (m != name) {
      send_error(res, 404, "unknown model '" + m + "'; this server serves '" + name + "'");
      return false;
    }
    if (!v.empty() && v != "1") {
      send_error(res, 404, "model '" + m + "' has no version '" + v + "' (only version 1)");
      return false;
    }
    return true;
  };
  const std::string M = R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)";

  s.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"live\":true}", kJson);
  });
  s.Get("/v2/health/ready", [this](const httplib::Request&, httplib::Response& res) {
    if (batcher_.draining()) return send_error(res, 503, "the server is shutting down");
    res.set_content("{\"ready\":true}", kJson);
  });
  s.Get("/v2", [](const httplib::Request&, httplib::Response& res) {
    json j;
    j["name"] = "deepep";
    j["version"] = "0.1.0";
    j["extensions"] = {"binary_tensor_data", "model_configuration", "statistics_metrics"};
    res.set_content(j.dump(), kJson);
  });
  s.Get(M, [this, model_ok](const httplib::Request& req, httplib::Response& res) {
    if (!model_ok(req, res)) return;
    json j;
    j["name"] = opt_.model_name;
    j["versions"] = {"1"};
    j["platform"] = "deepep";
    j["inputs"] = json::array();
    for (const auto& t : engine_->inputs()) j["inputs"].push_back(tensor_meta(t));
    j["outputs"] = json::array();
    for (const auto& t : engine_->outputs()) j["outputs"].push_back(tensor_meta(t));
    res.set_content(j.dump(), kJson);
  });
  s.Get(M + "/ready", [this, model_ok](const httplib::Request& req, httplib::Response& res) {
    if (!model_ok(req, res)) return;
    if (batcher_.draining()) return send_error(res, 503, "the server is shutting down");
    json j;
    j["name"] = opt_.model_name;
    j["ready"] = true;
    res.set_content(j.dump(), kJson);
  });
  s.Get(M + "/config", [this, model_ok, max_batch, &spec](const httplib::Request& req, httplib::Response& res) {
    if (!model_ok(req, res)) return;
    json j;
    j["name"] = opt_.model_name;
    j["platform"] = "deepep";
    j["backend"] = "deepep";
    j["max_batch_size"] = max_batch;
    j["input"] = json::array();
    for (const auto& t : engine_->inputs()) j["input"].push_back(tensor_config(t, spec.batched));
    j["output"] = json::array();
    for (const auto& t : engine_->outputs()) j["output"].push_back(tensor_config(t, spec.batched));
    if (spec.batched) {
      const BatchPolicy p = batcher_.policy();
      const BatcherOptions& o = batcher_.options();
      j["dynamic_batching"] = {{"adaptive", o.latency_target_ms > 0},
                               {"latency_target_ms", o.latency_target_ms},
                               {"current_max_batch", p.max_batch},
                               {"current_max_queue_delay_microseconds", int64_t(p.max_wait_s * 1e6)},
                               {"realtime", o.realtime},
                               {"max_queue_size", o.max_queue},
                               {"batch_dimension", spec.symbol}};
    }
    j["instance_group"] = {{{"kind", engine_->device() == "cpu" ? "KIND_CPU" : "KIND_GPU"},
                            {"count", batcher_.options().workers}}};
    res.set_content(j.dump(), kJson);
  });
  s.Post(M + "/infer", [this, model_ok, max_batch](const httplib::Request& req, httplib::Response& res) {
    const auto arrival = Clock::now();
    struct Inflight {
      Metrics& m;
      explicit Inflight(Metrics& mm) : m(mm) { ++m.inflight; }
      ~Inflight() { --m.inflight; }
    } inflight(metrics_);
    if (!model_ok(req, res)) return metrics_.failure("not_found");
    if (Rejection pre = batcher_.precheck(arrival); !pre.reason.empty()) {
      // Overloaded (or shutting down): refuse before spending CPU on the body.
      metrics_.failure(pre.reason);
      return send_error(res, 503, pre.message);
    }
    InferRequest ir;
    try {
      std::optional<size_t> hlen;
      if (req.has_header("Inference-Header-Content-Length")) {
        const std::string v = req.get_header_value("Inference-Header-Content-Length");
        size_t pos = 0;
        unsigned long long n = 0;
        try {
          n = std::stoull(v, &pos);
        } catch (const std::exception&) {
          pos = 0;
        }
        // (stoull takes "-1" as 2^64 - 1: a sign is refused here.)
        if (pos == 0 || pos != v.size() || v.find_first_of("+-") != std::string::npos)
          throw BadRequest("Inference-Header-Content-Length '" + v + "' is not a byte count");
        hlen = size_t(n);
      }
      ir = parse_infer_request(req.body, hlen, *engine_, batcher_.spec(), max_batch > 0 ? max_batch : 1);
      if (req.has_header("Timeout-Ms")) {
        const std::string v = req.get_header_value("Timeout-Ms");
        double t = 0;
        size_t pos = 0;
        try {
          t = std::stod(v, &pos);
        } catch (const std::exception&) {
        }
        if (!(t > 0) || pos != v.size()) throw BadRequest("header Timeout-Ms '" + v + "' must be a positive number of milliseconds");
        ir.timeout_ms = t;
      }
      if (ir.timeout_ms && *ir.timeout_ms >= kNoDeadlineMs) ir.timeout_ms.reset();
    } catch (const BadRequest& e) {
      metrics_.failure("bad_request");
      return send_error(res, 400, e.what());
    }
    auto job = batcher_.make_job(std::move(ir.inputs), ir.batch);
    job->arrival = arrival;
    if (ir.timeout_ms)
      job->deadline = arrival + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(*ir.timeout_ms));
    auto fut = job->promise.get_future();
    Rejection rej = batcher_.submit(job);
    if (!rej.reason.empty()) {
      metrics_.failure(rej.reason);
      return send_error(res, 503, rej.message);
    }
    if (ir.timeout_ms) {
      if (fut.wait_until(job->deadline) != std::future_status::ready) {
        job->abandoned = true;
        metrics_.failure("timeout");
        char buf[96];
        std::snprintf(buf, sizeof buf, "the request timed out after %.1f ms", *ir.timeout_ms);
        return send_error(res, 503, buf);
      }
    }
    JobResult r = fut.get();
    if (r.status != 200) {
      metrics_.failure(r.reason.empty() ? "internal" : r.reason);
      return send_error(res, r.status, r.error);
    }
    try {
      EncodedResponse e = encode_infer_response(opt_.model_name, ir, r.outputs);
      if (e.header_length) {
        res.set_header("Inference-Header-Content-Length", std::to_string(*e.header_length));
        res.set_content(std::move(e.body), "application/octet-stream");
      } else {
        res.set_content(std::move(e.body), kJson);
      }
    } catch (const std::exception& ex) {
      metrics_.failure("internal");
      return send_error(res, 500, ex.what());
    }
    metrics_.success();
    metrics_.request_seconds.observe(secs_since(arrival));
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(), "text/plain; version=0.0.4");
  });

  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    send_error(res, 500, msg);
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a handler already explained itself
    if (res.status == 404) send_error(res, 404, "no route for " + req.method + " " + req.path);
    else if (res.status == 413) send_error(res, 413, "the request is larger than --max-request-size");
    else if (res.status == 400) send_error(res, 400, "malformed HTTP request");
    else {
      const int st = res.status;
      send_error(res, st, "HTTP error " + std::to_string(st));
    }
  });
}

}  // namespace deepep::serve
