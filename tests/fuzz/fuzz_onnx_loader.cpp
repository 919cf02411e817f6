// libFuzzer target: the ONNX loader (protobuf parsing, graph building, shape
// inference over every op's infer function) must reject any byte string with
// deepep::Error, never crash, hang, leak or touch memory it does not own.
// Build: configure with -DCMAKE_CXX_COMPILER=clang++ -DDEEPEP_BUILD_FUZZERS=ON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "deepep/error.h"
#include "frontend/onnx_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    // A base directory that does not exist: external-data references must
    // fail cleanly rather than read files.
    deepep::OnnxModel m = deepep::load_onnx_bytes(bytes, "/nonexistent-deepep-fuzz", "fuzz.onnx");
    (void)m.graph->to_text();  // the printer walks everything the loader built
  } catch (const deepep::Error&) {
  }
  return 0;
}
