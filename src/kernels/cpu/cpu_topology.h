// Which of the CPUs this process may use are hyperthreads of one physical
// core (Linux sysfs: cpuN/topology/thread_siblings_list). The intra-op pool
// is sized to physical cores, as onnxruntime sizes its default pool: two
// FMA-bound GEMM threads on one core's hyperthreads share its FMA units and
// caches, and only contend.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deepep::cpu {

// "0-3,8,10-11" -> {0, 1, 2, 3, 8, 10, 11}; nullopt for anything malformed.
std::optional<std::vector<int>> parse_cpu_list(std::string_view text);

// `cpus` grouped by physical core: each group holds the CPUs of `cpus` whose
// sibling lists (siblings_of(cpu): the file's text, nullopt when unreadable)
// are the same set; groups in the order of their first CPU, CPUs in the
// order given. A CPU whose list is unreadable or malformed is a core of its own.
std::vector<std::vector<int>> group_by_core(const std::vector<int>& cpus,
                                            const std::function<std::optional<std::string>(int)>& siblings_of);

// The same from this machine's sysfs.
std::vector<std::vector<int>> physical_cores(const std::vector<int>& cpus);

}  // namespace deepep::cpu
