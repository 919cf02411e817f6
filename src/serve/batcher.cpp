#include "serve/batcher.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace deepep::serve {

namespace {
double secs(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

// ---------------------------------------------------------------- LatencyModel

LatencyModel::LatencyModel(int max_batch, double alpha)
    : max_(std::max(1, max_batch)), alpha_(alpha), est_(size_t(max_) + 1, -1.0) {}

void LatencyModel::observe(int b, double s) {
  if (b < 1 || b > max_ || !(s >= 0) || !std::isfinite(s)) return;
  // A run the OS preempted can take many times longer: one sample moves the
  // estimate by at most alpha x (2 x estimate), so spikes do not stall batching.
  if (est_[b] >= 0) s = std::min(s, 2 * est_[b]);
  est_[b] = est_[b] < 0 ? s : (1 - alpha_) * est_[b] + alpha_ * s;
}

double LatencyModel::predict(int b) const {
  b = std::clamp(b, 1, max_);
  // A batch is never slower than a larger one: a noisy estimate for a small
  // size is capped by the measured larger sizes.
  double v = raw_predict(b);
  for (int h = b + 1; h <= max_; ++h)
    if (est_[h] >= 0) v = std::min(v, est_[h]);
  return v;
}

double LatencyModel::raw_predict(int b) const {
  if (est_[b] >= 0) return est_[b];
  int lo = b - 1, hi = b + 1;
  while (lo >= 1 && est_[lo] < 0) --lo;
  while (hi <= max_ && est_[hi] < 0) ++hi;
  const bool has_lo = lo >= 1, has_hi = hi <= max_;
  if (has_lo && has_hi) return est_[lo] + (est_[hi] - est_[lo]) * double(b - lo) / double(hi - lo);
  if (has_lo) {
    // Above the largest measured size: grow like the last measured segment
    // (or proportionally), whichever is larger.
    double prop = est_[lo] * double(b) / double(lo);
    int lo2 = lo - 1;
    while (lo2 >= 1 && est_[lo2] < 0) --lo2;
    double seg = lo2 >= 1 ? est_[lo] + (est_[lo] - est_[lo2]) * double(b - lo) / double(lo - lo2) : prop;
    return std::max(prop, seg);
  }
  if (has_hi) return est_[hi];  // below the smallest: no faster than it (conservative)
  return 0;
}

std::vector<std::pair<int, double>> LatencyModel::points() const {
  std::vector<std::pair<int, double>> p;
  for (int b = 1; b <= max_; ++b)
    if (est_[b] >= 0) p.emplace_back(b, est_[b]);
  return p;
}

BatchPolicy choose_policy(const LatencyModel& m, int max_batch, double target_s, bool realtime, int workers) {
  BatchPolicy p;
  max_batch = std::max(1, max_batch);
  if (target_s <= 0) {
    p.max_batch = max_batch;
    return p;
  }
  // A request can wait for one batch already running (spread over the
  // workers) and then its own: keep both under the target, with a margin.
  const double ahead = 1.0 + 1.0 / std::max(1, workers);
  p.max_batch = 1;
  for (int b = 1; b <= max_batch; ++b)
    if (kLatencySafety * m.predict(b) * ahead <= target_s) p.max_batch = b;
  if (!realtime) p.max_wait_s = std::max(0.0, 0.5 * (target_s - kLatencySafety * m.predict(p.max_batch) * ahead));
  return p;
}

// ---------------------------------------------------------------- Batcher

Batcher::Batcher(std::shared_ptr<Engine> engine, BatchSpec spec, BatcherOptions options, Metrics* metrics)
    : engine_(std::move(engine)),
      spec_(std::move(spec)),
      opt_(options),
      metrics_(metrics),
      model_(spec_.batched ? std::max(1, options.max_batch) : 1) {
  if (!spec_.batched) opt_.max_batch = 1;
  opt_.max_batch = std::max(1, opt_.max_batch);
  opt_.workers = std::max(1, opt_.workers);
  policy_ = choose_policy(model_, opt_.max_batch, opt_.latency_target_ms / 1000.0, opt_.realtime, opt_.workers);
}

double Batcher::effective_target() const { return opt_.latency_target_ms / 1000.0 * headroom_; }

Batcher::~Batcher() { stop(); }

NamedTensors Batcher::zero_inputs(int64_t rows) const {
  NamedTensors in;
  for (const TensorInfo& t : engine_->inputs()) {
    Shape s;
    for (size_t i = 0; i < t.dims.size(); ++i) s.push_back(t.dims[i] >= 0 ? t.dims[i] : 1);
    if (spec_.batched) s[0] = rows;
    in.emplace_back(t.name, Tensor::zeros(t.dtype == DType::kUndefined ? DType::kFloat32 : t.dtype, s));
  }
  return in;
}

NamedTensors Batcher::run_on(Worker& w, const NamedTensors& in, int64_t rows, bool* planned) {
  auto& s = w.sessions[rows];
  if (planned) *planned = !s;
  if (!s) s = engine_->create_session();
  return s->run(in);
}

void Batcher::start() {
  workers_.clear();
  for (int i = 0; i < opt_.workers; ++i) workers_.push_back(std::make_unique<Worker>());
  // Profile: batch sizes 1, 2, 4, ... and the maximum, on worker 0's sessions
  // (which makes their plans); the median of a few timed runs each.
  std::vector<int64_t> sizes;
  for (int64_t b = 1; b < opt_.max_batch; b *= 2) sizes.push_back(b);
  sizes.push_back(opt_.max_batch);
  const auto t_start = Clock::now();
  std::vector<int64_t> profiled;
  for (int64_t b : sizes) {
    NamedTensors in = zero_inputs(b);
    auto t0 = Clock::now();
    run_on(*workers_[0], in, b);  // plans
    double first = secs(Clock::now() - t0);
    std::vector<double> ts;
    const int reps = first > 0.5 ? 1 : first > 0.05 ? 3 : 7;
    for (int r = 0; r < reps; ++r) {
      auto t1 = Clock::now();
      run_on(*workers_[0], in, b);
      ts.push_back(secs(Clock::now() - t1));
    }
    // The fastest run: noise only ever adds time, and an optimistic start is
    // corrected by the first real batches of that size (the EWMA).
    model_.observe(int(b), *std::min_element(ts.begin(), ts.end()));
    profiled.push_back(b);
    if (secs(Clock::now() - t_start) > opt_.profile_budget_s) break;
  }
  // The other workers get the same plans; realtime mode, and a GPU, plan
  // every size: on a GPU the second run of a shape captures its CUDA graph,
  // which costs tens of milliseconds a request would otherwise wait for.
  const bool gpu = engine_->device() != "cpu";
  std::vector<int64_t> warm = profiled;
  if (opt_.realtime || gpu)
    for (int64_t b = 1; b <= opt_.max_batch; ++b)
      if (!std::count(warm.begin(), warm.end(), b)) warm.push_back(b);
  size_t planned = 0;
  for (auto& w : workers_)
    for (int64_t b : warm) {
      if (w->sessions.count(b)) continue;
      if (secs(Clock::now() - t_start) > 3 * opt_.profile_budget_s) break;
      for (int r = 0; r < (gpu ? 2 : 1); ++r) run_on(*w, zero_inputs(b), b);
      ++planned;
    }
  {
    std::lock_guard<std::mutex> l(mu_);
    policy_ = choose_policy(model_, opt_.max_batch, opt_.latency_target_ms / 1000.0, opt_.realtime, opt_.workers);
    if (metrics_) {
      metrics_->set_estimates(model_.points());
      metrics_->batch_limit = policy_.max_batch;
      metrics_->max_wait_seconds = policy_.max_wait_s;
    }
  }
  if (opt_.log) {
    std::string s;
    for (auto [b, t] : model_.points()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s%d: %.2f ms", s.empty() ? "" : ", ", b, t * 1e3);
      s += buf;
    }
    std::fprintf(stderr, "deepep-serve: profiled compute latency per batch size: %s (%.1f s)\n", s.c_str(),
                 secs(Clock::now() - t_start));
    if (opt_.latency_target_ms > 0)
      std::fprintf(stderr, "deepep-serve: latency target %.1f ms -> batch cap %d, max wait %.2f ms%s\n",
                   opt_.latency_target_ms, policy_.max_batch, policy_.max_wait_s * 1e3,
                   opt_.realtime ? " (realtime: no waiting)" : "");
    else
      std::fprintf(stderr, "deepep-serve: no latency target: batches take what is queued, up to %d, without waiting\n",
                   policy_.max_batch);
    std::fprintf(stderr, "deepep-serve: %d worker(s), plans made for %zu batch size(s) per worker\n",
                 opt_.workers, workers_[0]->sessions.size());
  }
  for (auto& w : workers_) {
    Worker* wp = w.get();
    w->thread = std::thread([this, wp] { loop(*wp); });
  }
}

std::shared_ptr<Job> Batcher::make_job(NamedTensors inputs, int64_t rows) const {
  auto j = std::make_shared<Job>();
  j->rows = spec_.batched ? rows : 1;
  std::string key;
  for (const auto& [n, t] : inputs) {
    key += std::to_string(int(t.dtype()));
    for (int i = spec_.batched ? 1 : 0; i < t.rank(); ++i) {
      key += ',';
      key += std::to_string(t.dim(i));
    }
    key += ";";
  }
  j->key = std::move(key);
  j->inputs = std::move(inputs);
  return j;
}

double Batcher::arrival_rate(Clock::time_point now) const {
  if (arrivals_.size() < 2) return 0;
  int64_t rows = 0;
  for (size_t i = 1; i < arrivals_.size(); ++i) rows += arrivals_[i].second;
  const double span = secs(now - arrivals_.front().first);
  return span > 0 ? double(rows) / span : 0;
}

Rejection Batcher::admit(int64_t rows, Clock::time_point arrival) const {
  if (draining_ || stop_) return {"shutting_down", "the server is shutting down"};
  if (queue_.size() >= opt_.max_queue)
    return {"queue_full", detail::concat("the queue is full (", queue_.size(), " requests waiting, --max-queue ",
                                         opt_.max_queue, ")")};
  const double target = effective_target();
  if (target > 0 && model_.predict(1) > 0) {
    // Batches ahead of this request (its own included), spread over the
    // workers, plus one running batch when every worker is busy.
    const int64_t B = policy_.max_batch;
    const int64_t batches = (queue_rows_ + rows + B - 1) / B;
    const int64_t rounds = (batches + opt_.workers - 1) / opt_.workers;
    const double est = model_.predict(int(std::min<int64_t>(B, queue_rows_ + rows))) *
                       double(rounds + (busy_ >= opt_.workers ? 1 : 0));
    if (est > target)
      return {"overloaded", detail::concat("overloaded: the estimated latency ", int(est * 1e3 + 0.5),
                                           " ms exceeds the target ", opt_.latency_target_ms, " ms (",
                                           queue_.size(), " requests queued)")};
    // What the model cannot see (a starved CPU): the oldest queued request
    // has already waited most of the target.
    if (!queue_.empty()) {
      const double waited = secs(arrival - queue_.front()->arrival);
      if (waited + model_.predict(int(std::min<int64_t>(B, queue_rows_))) > target)
        return {"overloaded", detail::concat("overloaded: the oldest queued request has waited ",
                                             int(waited * 1e3 + 0.5), " ms of the ", opt_.latency_target_ms,
                                             " ms target")};
    }
  }
  return {};
}

Rejection Batcher::precheck(Clock::time_point arrival) const {
  std::lock_guard<std::mutex> l(mu_);
  return admit(1, arrival);
}

Rejection Batcher::submit(const std::shared_ptr<Job>& job) {
  std::lock_guard<std::mutex> l(mu_);
  Rejection r = admit(job->rows, job->arrival);
  if (!r.reason.empty()) return r;
  arrivals_.emplace_back(job->arrival, job->rows);
  if (arrivals_.size() > 64) arrivals_.pop_front();
  queue_.push_back(job);
  queue_rows_ += job->rows;
  if (metrics_) metrics_->queue_depth = int64_t(queue_.size());
  cv_.notify_all();
  return {};
}

void Batcher::finish(Job& j, JobResult r) {
  try {
    j.promise.set_value(std::move(r));
  } catch (const std::future_error&) {
  }
}

void Batcher::loop(Worker& w) {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stop_) return;
      continue;
    }
    const auto now = Clock::now();
    // Requests whose client gave up or whose deadline passed leave now.
    for (auto it = queue_.begin(); it != queue_.end();) {
      Job& j = **it;
      if (j.abandoned || now >= j.deadline) {
        JobResult r;
        r.status = 503;
        r.reason = "timeout";
        r.error = "the request timed out in the queue";
        queue_rows_ -= j.rows;
        finish(j, std::move(r));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    if (metrics_) metrics_->queue_depth = int64_t(queue_.size());
    if (queue_.empty()) continue;

    BatchPolicy pol = policy_;
    // Exploration: with a backlog beyond the cap, every 32nd batch may take a
    // quarter more rows than the cap, so a size whose estimate is stale (too
    // pessimistic after noise) gets measured again and the cap can grow back.
    if (spec_.batched && pol.max_batch < opt_.max_batch && queue_rows_ > pol.max_batch && ++explore_tick_ % 32 == 0)
      pol.max_batch = std::min(opt_.max_batch, pol.max_batch + std::max(1, pol.max_batch / 4));
    std::vector<std::shared_ptr<Job>> pick;
    int64_t rows = 0;
    Clock::time_point deadline = Clock::time_point::max();
    const std::string key = queue_.front()->key;
    for (auto& j : queue_) {
      if (j->key != key) continue;
      if (!pick.empty() && (!spec_.batched || rows + j->rows > pol.max_batch)) break;
      pick.push_back(j);
      rows += j->rows;
      deadline = std::min(deadline, j->deadline);
    }
    // Wait for the batch to fill only as far as the load needs: to the
    // smallest batch size whose throughput keeps up with the measured arrival
    // rate (25% margin), within the policy's wait and the requests' deadlines.
    if (spec_.batched && !stop_ && !draining_ && !opt_.realtime && rows < pol.max_batch && pol.max_wait_s > 0) {
      const double rate = arrival_rate(now);
      int need = pol.max_batch;
      for (int b = 1; b <= pol.max_batch; ++b) {
        const double l = model_.predict(b);
        if (l <= 0 || double(b) * double(opt_.workers) / l >= 1.25 * rate) {
          need = b;
          break;
        }
      }
      double remaining = pol.max_wait_s - secs(now - pick.front()->arrival);
      if (deadline != Clock::time_point::max())
        remaining = std::min(remaining, secs(deadline - now) - kLatencySafety * model_.predict(pol.max_batch));
      if (rows < need && remaining > 0 && rate > 0) {
        const double wait = std::min(remaining, double(need - rows) / rate);
        if (rate * wait >= 1.0) {
          cv_.wait_until(lk, now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait)));
          continue;
        }
      }
    }
    // Take the picked jobs out of the queue.
    size_t k = 0;
    for (auto it = queue_.begin(); it != queue_.end() && k < pick.size();) {
      if (*it == pick[k]) {
        it = queue_.erase(it);
        ++k;
      } else {
        ++it;
      }
    }
    queue_rows_ -= rows;
    if (metrics_) metrics_->queue_depth = int64_t(queue_.size());
    ++busy_;
    lk.unlock();
    run_batch(w, pick, rows);
    lk.lock();
    --busy_;
    if (queue_.empty() && busy_ == 0) idle_cv_.notify_all();
  }
}

namespace {
int status_of(const std::exception& e) { return dynamic_cast<const InputError*>(&e) ? 400 : 500; }
}  // namespace

void Batcher::run_batch(Worker& w, std::vector<std::shared_ptr<Job>>& jobs, int64_t rows) {
  const auto t0 = Clock::now();
  for (auto& j : jobs)
    if (metrics_) metrics_->queue_seconds.observe(secs(t0 - j->arrival));
  NamedTensors in;
  if (jobs.size() == 1) {
    in = jobs[0]->inputs;
  } else {
    for (size_t i = 0; i < jobs[0]->inputs.size(); ++i) {
      const Tensor& first = jobs[0]->inputs[i].second;
      Shape s = first.shape();
      s[0] = rows;
      Tensor t(first.dtype(), s);
      uint8_t* p = static_cast<uint8_t*>(t.raw());
      for (auto& j : jobs) {
        const Tensor& src = j->inputs[i].second;
        if (src.nbytes()) std::memcpy(p, src.raw(), src.nbytes());
        p += src.nbytes();
      }
      in.emplace_back(jobs[0]->inputs[i].first, std::move(t));
    }
  }
  NamedTensors out;
  bool planned = false;  // the first run of a size makes its plan: not a timing sample
  try {
    out = run_on(w, in, rows, &planned);
  } catch (const std::exception& e) {
    if (jobs.size() > 1) {
      // One request may be at fault: run each alone so the others still succeed.
      for (auto& j : jobs) {
        std::vector<std::shared_ptr<Job>> one{j};
        run_batch(w, one, j->rows);
      }
      return;
    }
    JobResult r;
    r.status = status_of(e);
    r.reason = r.status == 400 ? "bad_request" : "internal";
    r.error = e.what();
    finish(*jobs[0], std::move(r));
    return;
  }
  const double compute = secs(Clock::now() - t0);
  if (metrics_) {
    metrics_->compute_seconds.observe(compute);
    metrics_->batch_size.observe(double(rows));
  }
  if (!planned) {
    std::lock_guard<std::mutex> l(mu_);
    observe(rows, compute);
  }
  // Hand each request its rows (views of the batch's outputs).
  int64_t off = 0;
  for (auto& j : jobs) {
    JobResult r;
    r.queue_s = secs(t0 - j->arrival);
    r.compute_s = compute;
    r.batch_rows = rows;
    if (jobs.size() == 1) {
      r.outputs = out;
    } else {
      for (const auto& [name, t] : out) {
        if (t.rank() == 0 || t.dim(0) != rows) {
          r.status = 500;
          r.reason = "internal";
          r.error = detail::concat("output '", name, "' has shape ", shape_str(t.shape()),
                                   ", whose dimension 0 is not the batch of ", rows);
          break;
        }
        const size_t row_bytes = rows ? t.nbytes() / size_t(rows) : 0;
        Shape s = t.shape();
        s[0] = j->rows;
        auto hold = std::make_shared<Tensor>(t);
        uint8_t* base = static_cast<uint8_t*>(const_cast<void*>(t.raw()));
        r.outputs.emplace_back(name, Tensor::wrap(t.dtype(), s, base + size_t(off) * row_bytes, hold));
      }
      if (r.status != 200) r.outputs.clear();
    }
    off += j->rows;
    finish(*j, std::move(r));
  }
  if (opt_.latency_target_ms > 0) {
    const auto done = Clock::now();
    std::lock_guard<std::mutex> l(mu_);
    for (auto& j : jobs) feedback(secs(done - j->arrival));
  }
}

// Closes the loop on what the model does not see (HTTP work, other load on
// the machine): every 100 ms, when the p99 of the last second's requests is
// over the target, admission plans for 15% less of it (down to half); under
// 80% of the target, 10% more, back up to the real target. Time-based, so a
// trickle of admitted requests cannot hold the server in a tight setting long
// after a transient. Only admission: a smaller batch cap would cut throughput
// exactly when the queue needs it most.
void Batcher::feedback(double latency_s) {
  const auto now = Clock::now();
  recent_.emplace_back(now, latency_s);
  while (!recent_.empty() && now - recent_.front().first > std::chrono::seconds(1)) recent_.pop_front();
  if (now - last_adjust_ < std::chrono::milliseconds(100) || recent_.size() < 16) return;
  last_adjust_ = now;
  const double target = opt_.latency_target_ms / 1000.0;
  std::vector<double> v;
  v.reserve(recent_.size());
  for (const auto& [t, l] : recent_) v.push_back(l);
  const size_t k = std::min(v.size() - 1, size_t(double(v.size()) * 0.99));
  std::nth_element(v.begin(), v.begin() + ptrdiff_t(k), v.end());
  const double p99 = v[k];
  if (p99 > target) headroom_ = std::max(0.5, headroom_ * 0.85);
  else if (p99 < 0.8 * target) headroom_ = std::min(1.0, headroom_ * 1.1);
  if (metrics_) metrics_->target_headroom = headroom_;
}

void Batcher::observe(int64_t rows, double seconds) {
  if (rows < 1 || rows > model_.max_batch()) return;
  model_.observe(int(rows), seconds);
  policy_ = choose_policy(model_, opt_.max_batch, opt_.latency_target_ms / 1000.0, opt_.realtime, opt_.workers);
  if (metrics_) {
    metrics_->set_estimates(model_.points());
    metrics_->batch_limit = policy_.max_batch;
    metrics_->max_wait_seconds = policy_.max_wait_s;
  }
}

void Batcher::begin_drain() {
  std::lock_guard<std::mutex> l(mu_);
  draining_ = true;
  cv_.notify_all();  // waiting workers dispatch now
}

bool Batcher::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> l(mu_);
  return idle_cv_.wait_for(l, timeout, [&] { return queue_.empty() && busy_ == 0; });
}

void Batcher::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stop_ && workers_.empty()) return;
    stop_ = true;
    draining_ = true;
    cv_.notify_all();
  }
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  workers_.clear();
  std::lock_guard<std::mutex> l(mu_);
  for (auto& j : queue_) {
    JobResult r;
    r.status = 503;
    r.reason = "shutting_down";
    r.error = "the server is shutting down";
    finish(*j, std::move(r));
  }
  queue_.clear();
  queue_rows_ = 0;
}

BatchPolicy Batcher::policy() const {
  std::lock_guard<std::mutex> l(mu_);
  return policy_;
}

int64_t Batcher::queued_rows() const {
  std::lock_guard<std::mutex> l(mu_);
  return queue_rows_;
}

}  // namespace deepep::serve
