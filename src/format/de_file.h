// The .de engine file: an optimized graph, its metadata and its weights in one
// versioned, checksummed file whose weights are memory-mapped at load.
// Layout and error cases: docs/FORMAT.md.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "frontend/onnx_loader.h"

namespace deepep {

inline constexpr char kDeMagic[8] = {'D', 'E', 'E', 'P', 'E', 'P', '\x1a', '\n'};
inline constexpr uint16_t kDeMajor = 1;
inline constexpr uint16_t kDeMinor = 0;
inline constexpr size_t kDeAlign = 64;

enum class DeSection : uint32_t { kMetadata = 1, kGraph = 2, kWeights = 3 };

struct DeWriteOptions {
  std::string metadata_json = "{}";  // producer, precision, fusion level and report, I/O specs
  int64_t opset = 17;
  std::map<std::string, int64_t> extra_opsets;
  // Called as bytes of weights are written: (done, total).
  std::function<void(uint64_t, uint64_t)> progress;
};

// Writes `g` (weights included) to `path` atomically (temp file + rename).
void write_de_file(const std::string& path, const Graph& g, const DeWriteOptions& options);

struct DeFile {
  OnnxModel model;            // weights are views into the mapping
  std::string metadata_json;
  uint16_t major = 0, minor = 0;
  uint64_t file_bytes = 0, weight_bytes = 0;
  std::shared_ptr<void> mapping;  // keeps the mapped file alive
};

// Maps and validates `path`: magic, version, sizes, section bounds, checksums.
DeFile load_de_file(const std::string& path);

// Whether the file starts with the .de magic (cheap; reads 8 bytes).
bool is_de_file(const std::string& path);

}  // namespace deepep
