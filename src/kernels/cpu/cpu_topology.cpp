#include "kernels/cpu/cpu_topology.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <sstream>

namespace deepep::cpu {

std::optional<std::vector<int>> parse_cpu_list(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  std::vector<int> out;
  auto number = [](std::string_view s, int& v) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && end == s.data() + s.size() && v >= 0;
  };
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t dash = item.find('-');
    int lo = 0, hi = 0;
    if (dash == std::string_view::npos) {
      if (!number(item, lo)) return std::nullopt;
      hi = lo;
    } else if (!number(item.substr(0, dash), lo) || !number(item.substr(dash + 1), hi) || hi < lo ||
               hi - lo > 65536) {
      return std::nullopt;
    }
    for (int c = lo; c <= hi; ++c) out.push_back(c);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::vector<int>> group_by_core(const std::vector<int>& cpus,
                                            const std::function<std::optional<std::string>(int)>& siblings_of) {
  std::vector<std::vector<int>> cores;
  std::map<std::vector<int>, size_t> core_of;  // sibling set -> index in cores
  for (int cpu : cpus) {
    std::optional<std::vector<int>> set;
    if (const std::optional<std::string> text = siblings_of(cpu)) set = parse_cpu_list(*text);
    if (!set || std::find(set->begin(), set->end(), cpu) == set->end()) {
      cores.push_back({cpu});  // unknown: a core of its own
      continue;
    }
    const auto [it, fresh] = core_of.emplace(*set, cores.size());
    if (fresh) cores.emplace_back();
    cores[it->second].push_back(cpu);
  }
  return cores;
}

std::vector<std::vector<int>> physical_cores(const std::vector<int>& cpus) {
  return group_by_core(cpus, [](int cpu) -> std::optional<std::string> {
    std::ifstream f("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/thread_siblings_list");
    if (!f) return std::nullopt;
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  });
}

}  // namespace deepep::cpu
