#include "kernels/cpu/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/cpu_topology.h"

namespace deepep::cpu {

namespace {
thread_local bool t_in_region = false;

struct RegionGuard {
  bool old;
  RegionGuard() : old(t_in_region) { t_in_region = true; }
  ~RegionGuard() { t_in_region = old; }
};

// How long an idle worker (or a caller waiting for its loop) spins before it
// sleeps: one inference's loops come back to back, and a sleeping thread
// takes a scheduler wake-up (slow on a loaded machine) to start again.
constexpr int kSpinMicros = 50;
// The same while exactly one ThreadPool::RunScope lives: one inference at a
// time, whose serial stretches between loops (small ops, packing, the
// executor) outlast the short spin. With several runs at once the workers
// keep the short spin: long spins would take cores from the other runs'
// calling threads (and their loops keep the workers busy anyway). Measured
// with bench/cpu_vs_ort.py (2 threads, three alternating pairs of runs,
// ratios to onnxruntime in the same run): MobileNetV2 1.063 / 1.081 / 1.098
// with the short spin, 1.041 / 1.060 / 1.081 with this one; resnet50 within
// noise (0.928 / 0.969 / 1.028 vs 0.934 / 0.969 / 0.876).
constexpr int kRunSpinMicros = 2000;
std::atomic<int> g_active_runs{0};
std::atomic<uint64_t> g_loops_shared{0}, g_run_scopes{0};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

template <class Pred>
bool spin_until(Pred&& done, int micros) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= until) return done();
  }
}

// The CPUs this process may run on (its affinity mask), in order.
std::vector<int> allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

// Whether workers are pinned, one physical core each: by default when the
// pool spans every core the process may run on (as onnxruntime pins its
// default-sized pool); DEEPEP_PIN_THREADS=0 / 1 turns it off / on. The
// caller's thread is never pinned (it is the application's), and keeps the
// first core to itself. Why: on the 2-vCPU AMD EPYC guest, after 200 ms
// idle the scheduler woke the worker beside the caller, and a 2-thread
// MobileNetV2 run took 17 ms instead of 9-10; pinned, 11 ms.
bool pin_workers(int threads, size_t cores) {
  if (const char* e = std::getenv("DEEPEP_PIN_THREADS"); e && *e) return std::atoi(e) != 0;
  return threads > 1 && size_t(threads) == cores;
}

void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);  // best effort: unpinned still works
}

int threads_available() {
  if (const char* e = std::getenv("DEEPEP_NUM_THREADS")) {
    const int n = std::atoi(e);
    if (n >= 1) return std::min(n, 256);
  }
  // One thread per physical core (cpu_topology.h), not per hyperthread.
  if (const size_t n = physical_cores(allowed_cpus()).size(); n >= 1) return int(n);
  return std::max(1, int(std::thread::hardware_concurrency()));
}
}  // namespace

struct Job {
  const std::function<void(int64_t, int64_t)>* f = nullptr;
  int64_t n = 0, grain = 1, chunks = 0;
  int max_helpers = 0;                 // workers allowed besides the caller
  std::atomic<int64_t> next{0};        // next chunk index to take
  std::atomic<int64_t> finished{0};    // chunks done
  std::atomic<int> helpers{0};         // workers that joined
  std::mutex mu;
  std::condition_variable done_cv;
  std::exception_ptr err;
  // parallel_for_affine: chunk c has been claimed (chunks of grain 1).
  std::unique_ptr<std::atomic<bool>[]> taken;
  int homes = 0;  // threads with home ranges
  // The caller's float32 GEMM precision (cpu_features.h), which every
  // thread running a chunk takes on: results never depend on who ran it.
  bool bf16x3 = false;

  void run_chunk(int64_t c) {
    const int64_t b = c * grain, e = std::min(n, b + grain);
    try {
      (*f)(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!err) err = std::current_exception();
    }
    if (finished.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) {
      std::lock_guard<std::mutex> lock(mu);
      done_cv.notify_all();
    }
  }

  // Runs chunks until none is left; returns after its last one. `home`: the
  // thread's index for an affine loop (see parallel_for_affine).
  void work(int home) {
    RegionGuard guard;
    Fp32PrecisionScope precision(bf16x3);
    if (taken) return work_affine(home);
    for (;;) {
      const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= chunks) return;
      run_chunk(c);
    }
  }

  void work_affine(int home) {
    auto claim = [&](int64_t c) { return !taken[c].load(std::memory_order_relaxed) && !taken[c].exchange(true); };
    auto range = [&](int t, int64_t& b, int64_t& e) {
      b = chunks * t / homes;
      e = chunks * (t + 1) / homes;
    };
    int64_t b, e;
    if (home >= 0 && home < homes) {
      range(home, b, e);
      for (int64_t c = b; c < e; ++c)
        if (claim(c)) run_chunk(c);
    }
    for (int k = 1; k <= homes; ++k) {
      const int t = ((home < 0 ? 0 : home) + k) % homes;
      range(t, b, e);
      for (int64_t c = e - 1; c >= b; --c)
        if (claim(c)) run_chunk(c);
    }
    next.store(chunks, std::memory_order_relaxed);  // the queue may drop it
  }
};

struct ThreadPool::Impl {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Job>> queue;
  std::atomic<uint64_t> epoch{0};  // bumped on every push: spinning workers watch it
  bool stop = false;
  std::vector<std::thread> threads;

  std::shared_ptr<Job> take() {
    // Drops finished or full jobs from the front; returns one to help with.
    while (!queue.empty()) {
      std::shared_ptr<Job> j = queue.front();
      if (j->next.load(std::memory_order_relaxed) >= j->chunks ||
          j->helpers.load(std::memory_order_relaxed) >= j->max_helpers) {
        queue.pop_front();
        continue;
      }
      j->helpers.fetch_add(1, std::memory_order_relaxed);
      return j;
    }
    return nullptr;
  }

  void worker(int index) {
    uint64_t seen = epoch.load();
    for (;;) {
      // Spin briefly for new work (loops of one inference come back to back),
      // then sleep.
      // (Longer inside a lone RunScope; its end cuts the spin short.)
      const auto start = std::chrono::steady_clock::now();
      for (;;) {
        if (spin_until([&] { return epoch.load(std::memory_order_acquire) != seen; }, kSpinMicros)) break;
        if (g_active_runs.load(std::memory_order_relaxed) != 1 ||
            std::chrono::steady_clock::now() - start >= std::chrono::microseconds(kRunSpinMicros))
          break;
      }
      std::shared_ptr<Job> j;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || !queue.empty() || epoch.load() != seen; });
        if (stop) return;
        seen = epoch.load();
        j = take();
      }
      if (j) j->work(index);
    }
  }

  void run(const std::shared_ptr<Job>& job, int max_threads);
};

namespace {
// When workers are pinned (set once, by the pool's constructor): every CPU
// of their cores (their hyperthreads too), which a lone run's caller avoids.
std::vector<int> g_pinned;
// A lone run's caller, moved off the workers' CPUs for the run: its mask before.
thread_local bool t_caller_moved = false;
thread_local cpu_set_t t_caller_mask;
thread_local int t_scopes = 0;  // RunScopes alive on this thread: the outermost restores

// With pinned workers, the caller of a lone run (loop thread 0) runs on the
// CPUs left to it for the run, then gets its own mask back: otherwise, woken
// after an idle spell, it could stay on a worker's CPU and the two shared one
// core (MobileNetV2 interleaved with onnxruntime, 2 vCPUs: 18-22 ms a run
// instead of 6.5-10). Left alone when its mask has no CPU outside the workers'.
void move_caller_off_workers() {
  if (g_pinned.empty() || t_caller_moved) return;
  cpu_set_t mask;
  if (pthread_getaffinity_np(pthread_self(), sizeof(mask), &mask) != 0) return;
  cpu_set_t rest = mask;
  for (int c : g_pinned) CPU_CLR(c, &rest);
  if (CPU_COUNT(&rest) == 0 || CPU_EQUAL(&rest, &mask)) return;
  if (pthread_setaffinity_np(pthread_self(), sizeof(rest), &rest) != 0) return;
  t_caller_mask = mask;
  t_caller_moved = true;
}
void restore_caller() {
  if (!t_caller_moved) return;
  pthread_setaffinity_np(pthread_self(), sizeof(t_caller_mask), &t_caller_mask);
  t_caller_moved = false;
}
}  // namespace

uint64_t ThreadPool::loops_shared() { return g_loops_shared.load(std::memory_order_relaxed); }
uint64_t ThreadPool::run_scopes() { return g_run_scopes.load(std::memory_order_relaxed); }

ThreadPool::RunScope::RunScope() {
  g_run_scopes.fetch_add(1, std::memory_order_relaxed);
  ++t_scopes;
  if (g_active_runs.fetch_add(1, std::memory_order_relaxed) > 0) return;
  Impl& p = *global().impl_;  // (made first: it decides the pinning)
  move_caller_off_workers();
  // Wake sleeping workers now, so they are spinning by the first loop.
  {
    std::lock_guard<std::mutex> lock(p.mu);
    p.epoch.fetch_add(1, std::memory_order_release);
  }
  p.cv.notify_all();
}

ThreadPool::RunScope::~RunScope() {
  if (--t_scopes == 0) restore_caller();
  g_active_runs.fetch_sub(1, std::memory_order_relaxed);
}

ThreadPool::ThreadPool(int workers) : impl_(new Impl), workers_(workers) {
  const std::vector<std::vector<int>> cores = physical_cores(allowed_cpus());
  const bool pin = !cores.empty() && pin_workers(workers + 1, cores.size());
  // Worker i on the first CPU of core i + 1 (core 0 is the caller's).
  auto core_of = [&](int i) -> const std::vector<int>& { return cores[size_t(i + 1) % cores.size()]; };
  if (pin)
    for (int i = 0; i < workers; ++i)
      for (int c : core_of(i)) g_pinned.push_back(c);
  for (int i = 0; i < workers; ++i)
    impl_->threads.emplace_back([this, i, pin, cpu = pin ? core_of(i).front() : -1] {
      if (pin) pin_to_cpu(cpu);
      impl_->worker(i + 1);
    });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->threads) t.join();
  delete impl_;
}

ThreadPool& ThreadPool::global() {
  // Leaked on purpose: workers must outlive every static that may use them.
  static ThreadPool* pool = new ThreadPool(threads_available() - 1);
  return *pool;
}

bool ThreadPool::in_parallel_region() { return t_in_region; }

void ThreadPool::parallel_for(int64_t n, int64_t grain, int max_threads,
                              const std::function<void(int64_t, int64_t)>& f) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t chunks = (n + grain - 1) / grain;
  if (max_threads <= 0) max_threads = size();
  max_threads = int(std::min<int64_t>({int64_t(max_threads), int64_t(size()), chunks}));
  if (max_threads <= 1 || t_in_region) {
    RegionGuard guard;
    f(0, n);
    return;
  }
  auto job = std::make_shared<Job>();
  job->f = &f;
  job->bf16x3 = fp32_bf16x3_allowed();
  job->n = n;
  job->grain = grain;
  job->chunks = chunks;
  impl_->run(job, max_threads);
}

void ThreadPool::parallel_for_affine(int64_t n, int max_threads, const std::function<void(int64_t, int64_t)>& f) {
  if (n <= 0) return;
  if (max_threads <= 0) max_threads = size();
  max_threads = int(std::min<int64_t>({int64_t(max_threads), int64_t(size()), n}));
  if (max_threads <= 1 || t_in_region) {
    RegionGuard guard;
    for (int64_t i = 0; i < n; ++i) f(i, i + 1);
    return;
  }
  auto job = std::make_shared<Job>();
  job->f = &f;
  job->bf16x3 = fp32_bf16x3_allowed();
  job->n = n;
  job->grain = 1;
  job->chunks = n;
  job->taken.reset(new std::atomic<bool>[size_t(n)]);
  for (int64_t i = 0; i < n; ++i) job->taken[i].store(false, std::memory_order_relaxed);
  job->homes = max_threads;
  impl_->run(job, max_threads);
}

// Queues the job for up to max_threads - 1 workers, works on it as thread 0,
// waits for the chunks others started, rethrows the first exception.
void ThreadPool::Impl::run(const std::shared_ptr<Job>& job, int max_threads) {
  g_loops_shared.fetch_add(1, std::memory_order_relaxed);
  job->max_helpers = max_threads - 1;
  {
    std::lock_guard<std::mutex> lock(mu);
    queue.push_back(job);
    epoch.fetch_add(1, std::memory_order_release);
  }
  if (job->max_helpers == 1) cv.notify_one();
  else cv.notify_all();
  job->work(0);
  const int64_t chunks = job->chunks;
  if (job->finished.load(std::memory_order_acquire) < chunks) {
    // Others still run chunks: spin a little, then sleep.
    spin_until([&] { return job->finished.load(std::memory_order_acquire) >= chunks; }, kSpinMicros);
    std::unique_lock<std::mutex> lock(job->mu);
    job->done_cv.wait(lock, [&] { return job->finished.load(std::memory_order_acquire) >= chunks; });
  }
  {
    // Leave no stale entry behind (workers drop finished jobs too).
    std::lock_guard<std::mutex> lock(mu);
    queue.erase(std::remove(queue.begin(), queue.end(), job), queue.end());
  }
  if (job->err) std::rethrow_exception(job->err);
}

int threads_for(double work) {
  const int hw = ThreadPool::global().size();
  if (work < double(1 << 20)) return 1;
  return int(std::clamp(work / double(1 << 19), 1.0, double(hw)));
}

}  // namespace deepep::cpu
