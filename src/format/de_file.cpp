// Reader and writer of the .de format (docs/FORMAT.md).
//
// Invariants the reader enforces before touching any section: the header is
// complete, the magic matches, the major version is one we read, the file
// size equals the header's, every section lies inside the file, and every
// section's xxh64 matches. Weight pages are hashed in chunks and released
// (MADV_DONTNEED) as they go, so verifying does not keep the weights resident:
// only what inference touches is.
#include "format/de_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_INLINE_ALL  // header-only xxHash: no shared-library dependency for the wheel
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "deepep/error.h"
#include "frontend/onnx_writer.h"

namespace deepep {

namespace {

struct Header {
  char magic[8];
  uint16_t major;
  uint16_t minor;
  uint32_t header_bytes;
  uint64_t file_bytes;
  uint64_t table_offset;
  uint32_t section_count;
  uint32_t flags;
  uint64_t table_checksum;  // xxh64 of the section table
  uint8_t reserved[16];
};
static_assert(sizeof(Header) == 64);

struct SectionEntry {
  uint32_t kind;
  uint32_t flags;
  uint64_t offset;
  uint64_t bytes;
  uint64_t checksum;  // xxh64 of the section's bytes
};
static_assert(sizeof(SectionEntry) == 32);

const char* section_name(uint32_t k) {
  switch (DeSection(k)) {
    case DeSection::kMetadata: return "metadata";
    case DeSection::kGraph: return "graph";
    case DeSection::kWeights: return "weights";
  }
  return "unknown";
}

uint64_t align_up(uint64_t v) { return (v + kDeAlign - 1) / kDeAlign * kDeAlign; }

constexpr const char* kWeightsLocation = "@weights";

class Mapping {
 public:
  Mapping(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    DEEPEP_CHECK(fd_ >= 0, "cannot open engine file '", path, "': ", std::strerror(errno));
    struct stat st {};
    ::fstat(fd_, &st);
    DEEPEP_CHECK(S_ISREG(st.st_mode), "'", path, "' is not a regular file");
    size_ = uint64_t(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      DEEPEP_CHECK(p != MAP_FAILED, "cannot map '", path, "': ", std::strerror(errno));
      data_ = static_cast<const uint8_t*>(p);
    }
  }
  ~Mapping() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  // Drops pages from this process's resident set; they reload from the file on use.
  void release(uint64_t off, uint64_t len) const {
    const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
    uint64_t start = (off + page - 1) / page * page;
    uint64_t end = (off + len) / page * page;
    if (end > start) ::madvise(const_cast<uint8_t*>(data_) + start, end - start, MADV_DONTNEED);
  }

 private:
  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

uint64_t hash_and_release(const Mapping& m, uint64_t off, uint64_t len) {
  XXH64_state_t* st = XXH64_createState();
  XXH64_reset(st, 0);
  constexpr uint64_t kChunk = 8u << 20;
  for (uint64_t done = 0; done < len; done += kChunk) {
    const uint64_t n = std::min(kChunk, len - done);
    XXH64_update(st, m.data() + off + done, n);
    m.release(off + done, n);
  }
  uint64_t h = XXH64_digest(st);
  XXH64_freeState(st);
  return h;
}

}  // namespace

bool is_de_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  f.read(magic, 8);
  return f.gcount() == 8 && std::memcmp(magic, kDeMagic, 8) == 0;
}

void write_de_file(const std::string& path, const Graph& g, const DeWriteOptions& options) {
  // Weights: each tensor at a 64-byte aligned offset within the weights section.
  std::vector<const Value*> weights;
  std::map<const Value*, uint64_t> offsets;
  uint64_t wbytes = 0;
  std::function<void(const Graph&)> collect = [&](const Graph& gr) {
    for (const auto& v : gr.values())
      if (v->data) {
        weights.push_back(v.get());
        offsets[v.get()] = wbytes;
        wbytes = align_up(wbytes + v->data->nbytes());
      }
    for (const auto& n : gr.nodes())
      for (const auto& [k, a] : n->attrs)
        for (const auto& sg : a.graphs) collect(*sg);
  };
  collect(g);

  OnnxWriteOptions wo;
  wo.opset = options.opset;
  wo.extra_opsets = options.extra_opsets;
  wo.place_weight = [&](const Value& v) {
    return std::make_pair(std::string(kWeightsLocation), int64_t(offsets.at(&v)));
  };
  const std::string graph = write_onnx_bytes(g, wo);
  const std::string& meta = options.metadata_json;

  std::vector<SectionEntry> table(3);
  uint64_t pos = align_up(sizeof(Header) + table.size() * sizeof(SectionEntry));
  table[0] = {uint32_t(DeSection::kMetadata), 0, pos, meta.size(), XXH64(meta.data(), meta.size(), 0)};
  pos = align_up(pos + meta.size());
  table[1] = {uint32_t(DeSection::kGraph), 0, pos, graph.size(), XXH64(graph.data(), graph.size(), 0)};
  pos = align_up(pos + graph.size());
  table[2] = {uint32_t(DeSection::kWeights), 0, pos, wbytes, 0};

  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  DEEPEP_CHECK(f, "cannot write '", tmp, "': ", std::strerror(errno));
  auto put = [&](const void* p, uint64_t n) {
    if (n && std::fwrite(p, 1, n, f) != n) {
      std::fclose(f);
      std::remove(tmp.c_str());
      DEEPEP_FAIL("failed writing '", path, "' (disk full?)");
    }
  };
  // Zeros up to `target` (at the start, the header and table's space: more
  // than one alignment unit, so in pieces).
  auto pad_to = [&](uint64_t target) {
    static const char zeros[kDeAlign] = {};
    for (uint64_t cur = uint64_t(std::ftell(f)); cur < target;) {
      const uint64_t n = std::min<uint64_t>(target - cur, kDeAlign);
      put(zeros, n);
      cur += n;
    }
  };
  // Header and table are written last, once the weights' checksum is known.
  Header h{};
  pad_to(table[0].offset);
  put(meta.data(), meta.size());
  pad_to(table[1].offset);
  put(graph.data(), graph.size());
  pad_to(table[2].offset);
  XXH64_state_t* st = XXH64_createState();
  XXH64_reset(st, 0);
  static const char zeros[kDeAlign] = {};
  uint64_t written = 0;
  for (const Value* v : weights) {
    const uint64_t gap = offsets[v] - written;
    put(zeros, gap);
    XXH64_update(st, zeros, gap);
    put(v->data->raw(), v->data->nbytes());
    XXH64_update(st, v->data->raw(), v->data->nbytes());
    written = offsets[v] + v->data->nbytes();
    if (options.progress) options.progress(written, wbytes);
  }
  put(zeros, wbytes - written);
  XXH64_update(st, zeros, wbytes - written);
  table[2].checksum = XXH64_digest(st);
  XXH64_freeState(st);

  std::memcpy(h.magic, kDeMagic, 8);
  h.major = kDeMajor;
  h.minor = kDeMinor;
  h.header_bytes = sizeof(Header);
  h.file_bytes = table[2].offset + wbytes;
  h.table_offset = sizeof(Header);
  h.section_count = uint32_t(table.size());
  h.table_checksum = XXH64(table.data(), table.size() * sizeof(SectionEntry), 0);
  std::fseek(f, 0, SEEK_SET);
  put(&h, sizeof h);
  put(table.data(), table.size() * sizeof(SectionEntry));
  DEEPEP_CHECK(std::fclose(f) == 0, "failed writing '", path, "'");
  std::filesystem::rename(tmp, path);
}

DeFile load_de_file(const std::string& path) {
  DEEPEP_CHECK(std::filesystem::exists(path), "engine file '", path, "' does not exist");
  auto map = std::make_shared<Mapping>(path);
  const uint64_t size = map->size();
  DEEPEP_CHECK(size >= sizeof(Header), "'", path, "' is truncated: ", size,
               " bytes, smaller than the 64-byte .de header");
  Header h;
  std::memcpy(&h, map->data(), sizeof h);
  DEEPEP_CHECK(std::memcmp(h.magic, kDeMagic, 8) == 0, "'", path,
               "' is not a DeepEP engine file (bad magic); convert an ONNX model with `deepep convert`");
  DEEPEP_CHECK(h.major <= kDeMajor, "'", path, "' has .de format version ", h.major, ".", h.minor,
               ", newer than this DeepEP reads (", kDeMajor, ".x); upgrade DeepEP or re-convert");
  DEEPEP_CHECK(h.major == kDeMajor, "'", path, "' has unsupported .de format version ", h.major, ".", h.minor);
  DEEPEP_CHECK(h.file_bytes == size, "'", path, "' is truncated or padded: the header says ",
               h.file_bytes, " bytes, the file has ", size);
  const uint64_t table_bytes = uint64_t(h.section_count) * sizeof(SectionEntry);
  DEEPEP_CHECK(h.section_count <= 64 && h.table_offset >= sizeof(Header) && h.table_offset <= size &&
                   table_bytes <= size - h.table_offset,
               "'", path, "' is corrupt: the section table (", h.section_count,
               " entries at offset ", h.table_offset, ") lies outside the file");
  std::vector<SectionEntry> table(h.section_count);
  std::memcpy(table.data(), map->data() + h.table_offset, table_bytes);
  DEEPEP_CHECK(XXH64(table.data(), table_bytes, 0) == h.table_checksum, "'", path,
               "' is corrupt: section table checksum mismatch");
  const SectionEntry* sec[4] = {};
  for (const auto& e : table) {
    DEEPEP_CHECK(e.offset <= size && e.bytes <= size - e.offset, "'", path, "' is corrupt: section ",
                 section_name(e.kind), " [", e.offset, ", +", e.bytes, ") lies outside the file (",
                 size, " bytes)");
    if (e.kind >= 1 && e.kind <= 3) sec[e.kind] = &e;
  }
  for (uint32_t k = 1; k <= 3; ++k)
    DEEPEP_CHECK(sec[k], "'", path, "' is corrupt: the ", section_name(k), " section is missing");
  for (uint32_t k = 1; k <= 2; ++k)
    DEEPEP_CHECK(XXH64(map->data() + sec[k]->offset, sec[k]->bytes, 0) == sec[k]->checksum, "'",
                 path, "' is corrupt: checksum mismatch in the ", section_name(k), " section");
  const SectionEntry& w = *sec[3];
  DEEPEP_CHECK(w.offset % kDeAlign == 0, "'", path, "' is corrupt: weights are not 64-byte aligned");
  DEEPEP_CHECK(hash_and_release(*map, w.offset, w.bytes) == w.checksum, "'", path,
               "' is corrupt: checksum mismatch in the weights section");

  DeFile df;
  df.major = h.major;
  df.minor = h.minor;
  df.file_bytes = size;
  df.weight_bytes = w.bytes;
  df.metadata_json.assign(reinterpret_cast<const char*>(map->data() + sec[1]->offset), sec[1]->bytes);
  const std::string graph(reinterpret_cast<const char*>(map->data() + sec[2]->offset), sec[2]->bytes);
  std::shared_ptr<void> owner = map;
  ExternalResolver resolve = [&](const std::string& loc, int64_t off, int64_t len, DType dt,
                                 const Shape& shape) -> Tensor {
    DEEPEP_CHECK(loc == kWeightsLocation, "'", path, "' is corrupt: a weight refers to '", loc,
                 "' instead of the weights section");
    const int64_t need = shape_numel(shape) * int64_t(dtype_size(dt));
    DEEPEP_CHECK(off >= 0 && (len < 0 || len == need) && uint64_t(off) <= w.bytes &&
                     uint64_t(need) <= w.bytes - uint64_t(off),
                 "'", path, "' is corrupt: a weight at offset ", off, " (", need,
                 " bytes) lies outside the weights section (", w.bytes, " bytes)");
    DEEPEP_CHECK(off % int64_t(dtype_size(dt)) == 0, "'", path, "' is corrupt: misaligned weight");
    auto* p = const_cast<uint8_t*>(map->data() + w.offset + uint64_t(off));
    return Tensor::wrap(dt, shape, p, owner);
  };
  df.model = load_onnx_bytes(graph, ".", path, resolve);
  df.mapping = owner;
  return df;
}

}  // namespace deepep
