#include "serve/metrics.h"

#include <cstdio>

namespace deepep::serve {

namespace {
std::string num(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}
}  // namespace

void Histogram::observe(double v) {
  std::lock_guard<std::mutex> l(mu_);
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++n_;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> l(mu_);
  return n_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t cum = 0;
  const std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + num(bounds_[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  cum += counts_.back();
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(cum) + "\n";
  out += name + "_sum{" + labels + "} " + num(sum_) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(n_) + "\n";
}

std::vector<double> latency_buckets() {
  return {0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05,
          0.075,  0.1,   0.15,  0.2,   0.3,   0.5,    0.75, 1,     2,    5,    10};
}

namespace {
std::vector<double> batch_buckets(int max_batch) {
  std::vector<double> b;
  for (int v = 1; v < max_batch; v *= 2) b.push_back(v);
  b.push_back(max_batch);
  return b;
}
}  // namespace

Metrics::Metrics(std::string model, int max_batch)
    : request_seconds(latency_buckets()),
      queue_seconds(latency_buckets()),
      compute_seconds(latency_buckets()),
      batch_size(batch_buckets(std::max(1, max_batch))),
      model_(std::move(model)) {}

void Metrics::success() { ++success_; }

void Metrics::failure(const std::string& reason) {
  std::lock_guard<std::mutex> l(mu_);
  ++failures_[reason];
}

uint64_t Metrics::failures(const std::string& reason) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = failures_.find(reason);
  return it == failures_.end() ? 0 : it->second;
}

void Metrics::set_estimates(std::vector<std::pair<int, double>> est) {
  std::lock_guard<std::mutex> l(mu_);
  estimates_ = std::move(est);
}

std::string Metrics::render() const {
  const std::string m = "model=\"" + model_ + "\"";
  std::string o;
  o += "# HELP deepep_inference_requests_total Inference requests answered successfully.\n";
  o += "# TYPE deepep_inference_requests_total counter\n";
  o += "deepep_inference_requests_total{" + m + "} " + std::to_string(success_.load()) + "\n";
  o += "# HELP deepep_inference_failures_total Inference requests that failed, by reason.\n";
  o += "# TYPE deepep_inference_failures_total counter\n";
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const char* r : {"bad_request", "not_found", "queue_full", "overloaded", "timeout", "shutting_down", "internal"}) {
      auto it = failures_.find(r);
      o += "deepep_inference_failures_total{" + m + ",reason=\"" + r + "\"} " +
           std::to_string(it == failures_.end() ? 0 : it->second) + "\n";
    }
  }
  o += "# HELP deepep_request_duration_seconds Time from request arrival to response, successful inferences.\n";
  o += "# TYPE deepep_request_duration_seconds histogram\n";
  request_seconds.render(o, "deepep_request_duration_seconds", m);
  o += "# HELP deepep_queue_duration_seconds Time a request waited in the batching queue.\n";
  o += "# TYPE deepep_queue_duration_seconds histogram\n";
  queue_seconds.render(o, "deepep_queue_duration_seconds", m);
  o += "# HELP deepep_compute_duration_seconds Time to run one batch.\n";
  o += "# TYPE deepep_compute_duration_seconds histogram\n";
  compute_seconds.render(o, "deepep_compute_duration_seconds", m);
  o += "# HELP deepep_batch_size Rows (batch-dimension entries) per executed batch.\n";
  o += "# TYPE deepep_batch_size histogram\n";
  batch_size.render(o, "deepep_batch_size", m);
  o += "# HELP deepep_queue_depth Requests waiting for a batch.\n# TYPE deepep_queue_depth gauge\n";
  o += "deepep_queue_depth{" + m + "} " + std::to_string(queue_depth.load()) + "\n";
  o += "# HELP deepep_inflight_requests Inference requests being handled.\n# TYPE deepep_inflight_requests gauge\n";
  o += "deepep_inflight_requests{" + m + "} " + std::to_string(inflight.load()) + "\n";
  o += "# HELP deepep_batch_limit Current adaptive cap on the batch size.\n# TYPE deepep_batch_limit gauge\n";
  o += "deepep_batch_limit{" + m + "} " + std::to_string(batch_limit.load()) + "\n";
  o += "# HELP deepep_batch_max_wait_seconds Current adaptive wait for a batch to fill.\n# TYPE deepep_batch_max_wait_seconds gauge\n";
  o += "deepep_batch_max_wait_seconds{" + m + "} " + num(max_wait_seconds.load()) + "\n";
  o += "# HELP deepep_latency_target_headroom Share of the latency target the batcher plans for (feedback from measured p99).\n# TYPE deepep_latency_target_headroom gauge\n";
  o += "deepep_latency_target_headroom{" + m + "} " + num(target_headroom.load()) + "\n";
  o += "# HELP deepep_batch_compute_estimate_seconds Estimated compute time per batch size (EWMA of measurements).\n";
  o += "# TYPE deepep_batch_compute_estimate_seconds gauge\n";
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [b, s] : estimates_)
      o += "deepep_batch_compute_estimate_seconds{" + m + ",batch_size=\"" + std::to_string(b) + "\"} " + num(s) + "\n";
  }
  return o;
}

}  // namespace deepep::serve
