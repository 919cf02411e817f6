// Adaptive batching for one model (see docs/SERVE.md, "Batching").
//
// Requests wait in one bounded FIFO queue; compute workers (each with its own
// Sessions, one per batch size so every plan stays cached) merge queued
// requests whose non-batch dimensions agree along dimension 0, run them as
// one batch, and hand each request its rows of the outputs.
//
// How large a batch may grow and how long a worker waits for it to fill come
// from a LatencyModel: compute time per batch size, profiled at start-up and
// updated online (EWMA). The cap is the largest batch whose compute, plus a
// batch already running ahead of it, fits the latency target with a safety
// margin; half the slack that remains is the most a request waits for others.
// A worker waits only for as many rows as the load needs: the smallest batch
// whose throughput keeps up with the measured arrival rate. With a
// backlog, every 32nd batch may take a quarter more rows than the cap, to
// re-measure sizes the model may misjudge after noise. Admission refuses
// (503) a request whose estimated latency (batches queued ahead of it)
// already exceeds the target. Feedback: the measured p99 of the last second's
// requests (queue + compute) scales the target admission plans for (every
// 100 ms: down 15% when over, up 10% when under 80%), covering what the model
// does not see.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "deepep/engine.h"
#include "serve/metrics.h"
#include "serve/protocol.h"

namespace deepep::serve {

using Clock = std::chrono::steady_clock;

// Compute seconds per batch size: measured points (EWMA), linear
// interpolation between them, proportional extrapolation above the largest;
// never more than a measured larger size.
class LatencyModel {
 public:
  explicit LatencyModel(int max_batch, double alpha = 0.2);
  void observe(int batch, double seconds);  // EWMA update (first point: taken as is)
  bool known(int batch) const { return batch >= 1 && batch <= max_ && est_[batch] >= 0; }
  double predict(int batch) const;  // 0 when nothing is known
  std::vector<std::pair<int, double>> points() const;
  int max_batch() const { return max_; }

 private:
  double raw_predict(int batch) const;
  int max_;
  double alpha_;
  std::vector<double> est_;  // by batch size; < 0: not measured
};

struct BatchPolicy {
  int max_batch = 1;
  double max_wait_s = 0;
};
// Kept in the header for unit tests.
constexpr double kLatencySafety = 1.25;
BatchPolicy choose_policy(const LatencyModel& m, int max_batch, double target_s, bool realtime, int workers);

struct BatcherOptions {
  int max_batch = 32;           // --batch-size (1: no batching)
  double latency_target_ms = 0; // 0: no target (greedy batching, no latency admission)
  bool realtime = false;        // never wait for a batch to fill; every batch size planned at start-up
  size_t max_queue = 1024;      // requests waiting; more → 503
  int workers = 1;              // concurrent batches (each single-threaded)
  double profile_budget_s = 20; // start-up profiling time limit
  bool log = true;              // start-up profile to stderr
};

struct JobResult {
  NamedTensors outputs;
  int status = 200;     // 200, 400, 500, 503
  std::string reason;   // metrics reason for failures
  std::string error;
  double queue_s = 0, compute_s = 0;
  int64_t batch_rows = 0;
};

struct Job {
  NamedTensors inputs;
  int64_t rows = 1;
  std::string key;  // dtypes and non-batch dims: only equal keys share a batch
  Clock::time_point arrival = Clock::now();
  Clock::time_point deadline = Clock::time_point::max();
  std::atomic<bool> abandoned{false};  // the handler gave up (timeout)
  std::promise<JobResult> promise;
};

struct Rejection {
  std::string reason;  // "" when accepted; else queue_full, overloaded, shutting_down
  std::string message;
};

class Batcher {
 public:
  Batcher(std::shared_ptr<Engine> engine, BatchSpec spec, BatcherOptions options, Metrics* metrics);
  ~Batcher();
  // Profiles batch sizes, pre-makes plans and starts the workers.
  void start();
  // Builds a job for validated inputs.
  std::shared_ptr<Job> make_job(NamedTensors inputs, int64_t rows) const;
  // Queues the job, or says why not (the caller answers 503).
  Rejection submit(const std::shared_ptr<Job>& job);
  // Whether a one-row request arriving now would be refused: lets the server
  // answer 503 before parsing the body when overloaded.
  Rejection precheck(Clock::time_point arrival) const;
  // Refuse new jobs from now on; queued and running ones complete.
  void begin_drain();
  bool draining() const { return draining_.load(); }
  // Waits until nothing is queued or running; false on timeout.
  bool wait_idle(std::chrono::milliseconds timeout);
  // Stops the workers; anything still queued gets 503.
  void stop();

  BatchPolicy policy() const;
  int64_t queued_rows() const;
  const BatchSpec& spec() const { return spec_; }
  const BatcherOptions& options() const { return opt_; }

 private:
  struct Worker {
    std::thread thread;
    std::map<int64_t, std::unique_ptr<Session>> sessions;  // by batch size
  };
  void loop(Worker& w);
  void run_batch(Worker& w, std::vector<std::shared_ptr<Job>>& jobs, int64_t rows);
  NamedTensors run_on(Worker& w, const NamedTensors& in, int64_t rows, bool* planned = nullptr);
  NamedTensors zero_inputs(int64_t rows) const;
  Rejection admit(int64_t rows, Clock::time_point arrival) const;  // needs mu_
  void observe(int64_t rows, double seconds);  // needs mu_
  void feedback(double latency_s);             // needs mu_
  double effective_target() const;             // seconds; needs mu_
  double arrival_rate(Clock::time_point now) const;  // rows/s, needs mu_
  static void finish(Job& j, JobResult r);

  std::shared_ptr<Engine> engine_;
  BatchSpec spec_;
  BatcherOptions opt_;
  Metrics* metrics_;
  std::vector<std::unique_ptr<Worker>> workers_;

  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  int64_t queue_rows_ = 0;
  int busy_ = 0;
  uint64_t explore_tick_ = 0;
  std::deque<std::pair<Clock::time_point, double>> recent_;  // (done, queue + compute seconds), last second
  Clock::time_point last_adjust_{};
  double headroom_ = 1.0;      // the share of the target the policy plans for
  bool stop_ = false;
  std::atomic<bool> draining_{false};
  LatencyModel model_;
  BatchPolicy policy_;
  std::deque<std::pair<Clock::time_point, int64_t>> arrivals_;  // recent, for the rate
};

}  // namespace deepep::serve
