// Model conversion: ONNX in, optimized .de engine file out.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace deepep {

struct ConvertOptions {
  // fp32 | tf32 (a GPU math mode: the graph stays float32, the metadata says
  // "math_mode": "tf32") | fp16 | bf16 (lowered by the level-3 optimizer:
  // needs fusion_level 3; inputs and outputs stay float32).
  std::string precision = "fp32";
  int fusion_level = 2;            // 0 none, 1 clean-up, 2 pattern fusions, 3 aggressive
  // Progress: (stage, fraction done in [0, 1]).
  std::function<void(const std::string&, double)> progress;
};

struct ConvertResult {
  std::string metadata_json;  // what the .de file's metadata section holds
  uint64_t file_bytes = 0;
  uint64_t weights_bytes = 0;
};

// Loads `input_path` (ONNX), optimizes it and writes the engine to `output_path`.
// Throws deepep::Error naming the problem (unsupported op, bad option, I/O).
ConvertResult convert_model(const std::string& input_path, const std::string& output_path,
                            const ConvertOptions& options);

}  // namespace deepep
