// Prometheus text-format metrics: counters, gauges and histograms with
// labels, thread-safe, rendered by GET /metrics.
#pragma once
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace deepep::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1) {}
  void observe(double v);
  // Appends NAME_bucket/_sum/_count lines with `labels` ("model=\"m\"").
  void render(std::string& out, const std::string& name, const std::string& labels) const;
  uint64_t count() const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last is +Inf
  double sum_ = 0;
  uint64_t n_ = 0;
};

// Seconds: 0.5 ms .. 10 s.
std::vector<double> latency_buckets();

class Metrics {
 public:
  explicit Metrics(std::string model, int max_batch);

  Histogram request_seconds, queue_seconds, compute_seconds, batch_size;
  std::atomic<int64_t> queue_depth{0};      // requests waiting for a batch
  std::atomic<int64_t> inflight{0};         // infer requests being handled
  std::atomic<int64_t> batch_limit{0};      // current adaptive batch cap
  std::atomic<double> max_wait_seconds{0};  // current adaptive wait
  std::atomic<double> target_headroom{1};   // share of the latency target planned for

  void success();
  // reason: bad_request, not_found, queue_full, overloaded, timeout, shutting_down, internal
  void failure(const std::string& reason);
  uint64_t failures(const std::string& reason) const;
  // The batcher's compute-latency estimates per batch size (seconds).
  void set_estimates(std::vector<std::pair<int, double>> est);

  std::string render() const;

 private:
  std::string model_;
  std::atomic<uint64_t> success_{0};
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> failures_;
  std::vector<std::pair<int, double>> estimates_;
};

}  // namespace deepep::serve
