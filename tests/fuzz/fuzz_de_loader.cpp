// libFuzzer target: load_de_file must reject any file with deepep::Error,
// never crash or read outside the mapping.
//
// Checksums guard every section, so random bytes rarely get past them. The
// first input byte picks a mode: even, the file is loaded as it is (header,
// table and checksum checks); odd, the harness first repairs the header's
// file size and every checksum, so the fuzzer reaches the graph section
// (ONNX protobuf) and the weight references behind them.
#include <fcntl.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "deepep/error.h"
#include "format/de_file.h"

namespace {

uint64_t get64(const std::string& s, size_t at) {
  uint64_t v;
  std::memcpy(&v, s.data() + at, 8);
  return v;
}
void put64(std::string& s, size_t at, uint64_t v) { std::memcpy(s.data() + at, &v, 8); }

// Header: file size at 16, table offset at 24, section count (u32) at 32,
// table checksum at 40. Table entries (32 bytes): offset at 8, size at 16,
// checksum at 24. See docs/FORMAT.md.
void repair(std::string& f) {
  if (f.size() < 64) return;
  put64(f, 16, f.size());
  const uint64_t table = get64(f, 24);
  uint32_t count;
  std::memcpy(&count, f.data() + 32, 4);
  if (count > 64 || table > f.size() || uint64_t(count) * 32 > f.size() - table) return;
  for (uint32_t i = 0; i < count; ++i) {
    const size_t e = size_t(table) + 32 * i;
    const uint64_t off = get64(f, e + 8), len = get64(f, e + 16);
    if (off <= f.size() && len <= f.size() - off) put64(f, e + 24, XXH64(f.data() + off, len, 0));
  }
  put64(f, 40, XXH64(f.data() + table, size_t(count) * 32, 0));
}

// One scratch file per process, removed at exit (never destroyed, so the
// exit handler can still read it).
const std::string& temp_path() {
  static const std::string* path = [] {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    auto* p = new std::string(std::string(dir) + "/deepep_fuzz_de_" + std::to_string(getpid()) + ".de");
    std::atexit([] { ::unlink(temp_path().c_str()); });
    return p;
  }();
  return *path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) repair(file);
  const std::string& path = temp_path();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) __builtin_trap();
  for (size_t done = 0; done < file.size();) {
    const ssize_t n = ::write(fd, file.data() + done, file.size() - done);
    if (n <= 0) __builtin_trap();
    done += size_t(n);
  }
  ::close(fd);
  try {
    deepep::DeFile df = deepep::load_de_file(path);
    (void)df.model.graph->to_text();
    // Weights are views into the mapping: touch each one's bytes.
    uint64_t sum = 0;
    for (const auto& v : df.model.graph->values())
      if (v->data && v->data->nbytes()) {
        const auto* p = static_cast<const uint8_t*>(v->data->raw());
        sum += p[0] + p[v->data->nbytes() - 1];
      }
    (void)sum;
  } catch (const deepep::Error&) {
  }
  return 0;
}
