// The pool's size comes from the physical cores among the process's CPUs:
// sysfs sibling lists parsed and grouped, hyperthreads of a core together.
#include <gtest/gtest.h>

#include <map>
#include <sched.h>

#include "kernels/cpu/cpu_topology.h"
#include "kernels/cpu/thread_pool.h"

using namespace deepep::cpu;

namespace {

using Groups = std::vector<std::vector<int>>;

TEST(CpuTopology, ParsesCpuLists) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11\n"), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_cpu_list("5"), (std::vector<int>{5}));
  EXPECT_EQ(parse_cpu_list("8,0"), (std::vector<int>{0, 8}));
  for (const char* bad : {"", "\n", "a", "1-", "-1", "3-1", "1,,2", "1-2-3", "0-999999999", "1 2"})
    EXPECT_FALSE(parse_cpu_list(bad).has_value()) << "'" << bad << "'";
}

Groups group(const std::vector<int>& cpus, const std::map<int, std::string>& files) {
  return group_by_core(cpus, [&](int c) -> std::optional<std::string> {
    auto it = files.find(c);
    if (it == files.end()) return std::nullopt;
    return it->second;
  });
}

TEST(CpuTopology, GroupsHyperthreadsByCore) {
  // Two-way SMT, siblings numbered n and n + 4 (the usual Intel layout).
  const std::map<int, std::string> smt = {{0, "0,4"}, {1, "1,5"}, {2, "2,6"}, {3, "3,7"},
                                          {4, "0,4"}, {5, "1,5"}, {6, "2,6"}, {7, "3,7"}};
  EXPECT_EQ(group({0, 1, 2, 3, 4, 5, 6, 7}, smt), (Groups{{0, 4}, {1, 5}, {2, 6}, {3, 7}}));
  // An affinity mask holding one hyperthread of some cores: still one group a core.
  EXPECT_EQ(group({1, 4, 5, 6}, smt), (Groups{{1, 5}, {4}, {6}}));
  // Siblings adjacent ("0-1"), as AMD numbers them.
  EXPECT_EQ(group({0, 1, 2, 3}, {{0, "0-1"}, {1, "0-1"}, {2, "2-3"}, {3, "2-3"}}), (Groups{{0, 1}, {2, 3}}));
  // No SMT (this development machine): every CPU its own core.
  EXPECT_EQ(group({0, 1}, {{0, "0"}, {1, "1"}}), (Groups{{0}, {1}}));
  // Unreadable, malformed or inconsistent lists: a core of their own, never merged.
  EXPECT_EQ(group({0, 1, 2, 3}, {{0, "junk"}, {2, "1"}, {3, "1,3"}}), (Groups{{0}, {1}, {2}, {3}}));
  EXPECT_EQ(group({}, {}), Groups{});
}

TEST(CpuTopology, PoolHasOneThreadPerCoreByDefault) {
  if (std::getenv("DEEPEP_NUM_THREADS")) GTEST_SKIP() << "DEEPEP_NUM_THREADS sets the pool's size";
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  EXPECT_EQ(ThreadPool::global().size(), int(physical_cores(cpus).size()));
  EXPECT_LE(ThreadPool::global().size(), int(cpus.size()));
}

}  // namespace
