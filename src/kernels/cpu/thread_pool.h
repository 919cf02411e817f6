// One intra-op thread pool for the whole process (src/kernels/cpu). Sized to
// the physical cores this process may run on, one thread a core however
// many hyperthreads it has (cpu_topology.h; DEEPEP_NUM_THREADS overrides), it runs
// parallel loops with chunked dynamic scheduling: the caller takes chunks too,
// so a loop needs no hand-off to finish, and idle workers pick chunks of
// whichever loop is queued first. Several Sessions calling at once share the
// same workers (each caller works on its own loop), so the process never runs
// more compute threads than workers + callers. A loop started from inside a
// chunk runs serially on its thread (no nested fan-out, no deadlock).
#pragma once
#include <cstdint>
#include <functional>

namespace deepep::cpu {

class ThreadPool {
 public:
  // The process-wide pool.
  static ThreadPool& global();
  // Threads a loop may use: the workers plus the calling thread.
  int size() const { return workers_ + 1; }
  // Runs f(begin, end) over [0, n) in chunks of `grain` (>= 1) on up to
  // `max_threads` threads (<= 0: all). Exceptions of a chunk are rethrown
  // (the first one) after every started chunk has finished.
  void parallel_for(int64_t n, int64_t grain, int max_threads, const std::function<void(int64_t, int64_t)>& f);
  // Like parallel_for with grain 1, but each of the n parts has a home
  // thread that runs it first: of the loop's T threads (the caller is 0,
  // pool worker w is w), thread t runs parts [t*n/T, (t+1)*n/T) in order,
  // then takes what the others have not started, from the back of their
  // ranges. Loops that split their data alike (the same rows of a feature
  // map for the same thread, op after op) thus read what their own core
  // just wrote, from its own cache; a late thread still loses only the
  // parts it had not begun.
  void parallel_for_affine(int64_t n, int max_threads, const std::function<void(int64_t, int64_t)>& f);
  // True on a thread that is running a chunk of a loop.
  static bool in_parallel_region();

  // Marks a CPU Session::run. While exactly one lives, idle workers wait for
  // the next loop spinning for up to 2 ms instead of 50 us (an inference's
  // loops come back to back, but serial stretches between them outlast the
  // short spin, and each sleep costs a wake-up), and the first one wakes
  // sleeping workers so they spin by the first loop. With several at once
  // (a server's concurrent requests) the short spin stays.
  class RunScope {
   public:
    RunScope();
    ~RunScope();
    RunScope(const RunScope&) = delete;
    RunScope& operator=(const RunScope&) = delete;
  };
  // Loops handed to the workers so far (all callers; monotonic): a Session
  // whose run left it unchanged ran serially and skips the next RunScope
  // (no caller move, no worker woken to spin through a run it has no share
  // in).
  static uint64_t loops_shared();
  // RunScopes made so far (tests).
  static uint64_t run_scopes();

  ~ThreadPool();

 private:
  explicit ThreadPool(int workers);
  struct Impl;
  Impl* impl_;
  int workers_;
};

// Threads for a loop of `work` multiply-adds (1 below ~1 M, up to the pool).
int threads_for(double work);

}  // namespace deepep::cpu
