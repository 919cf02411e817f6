// libFuzzer target: deepep-serve's request codec. Whatever a client sends as
// an infer request body (JSON, or a JSON header and binary tensors) must be
// refused with BadRequest naming the problem, or accepted as tensors the
// model takes; never a crash, a hang, another exception (which the server
// would answer 500) or memory it does not own. Accepted requests are run and
// their answer encoded, as the server does.
// Input layout: byte 0 = mode (bit 0: an Inference-Header-Content-Length is
// sent, its value in bytes 1-2, little-endian; bit 1: the model is served
// unbatched; bits 2-4: max batch size - 1); the body follows.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "deepep/engine.h"
#include "deepep/error.h"
#include "frontend/onnx_writer.h"
#include "ir/graph_text_parser.h"
#include "serve/protocol.h"

namespace {

using namespace deepep;

// Two inputs of different dtypes sharing the batch symbol, two outputs.
const char* kModel = R"(graph main(%x: float32[batch,3], %k: int64[batch,3]) {
  %c: float32[batch,3] = Cast<to=1>(%k)
  %y: float32[batch,3] = Add(%x, %c)
  %z: float32[batch,3] = Tanh(%y)
  return %y, %z
})";

const Engine& engine() {
  static std::shared_ptr<Engine> e = [] {
    const auto path = std::filesystem::temp_directory_path() /
                      ("deepep_fuzz_infer_" + std::to_string(::getpid()) + ".onnx");
    std::ofstream(path, std::ios::binary) << write_onnx_bytes(*parse_graph_text(kModel), {});
    auto loaded = Engine::load(path.string());
    std::filesystem::remove(path);
    return loaded;
  }();
  return *e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t mode = data[0];
  const std::string body(reinterpret_cast<const char*>(data + 3), size - 3);
  std::optional<size_t> header_length;
  if (mode & 1) header_length = size_t(data[1]) | size_t(data[2]) << 8;
  const Engine& e = engine();
  const serve::BatchSpec spec = mode & 2 ? serve::BatchSpec{} : serve::batch_spec(e);
  const int64_t max_batch = ((mode >> 2) & 7) + 1;
  serve::InferRequest req;
  try {
    req = serve::parse_infer_request(body, header_length, e, spec, max_batch);
  } catch (const serve::BadRequest&) {
    return 0;
  }
  // Accepted: the tensors must be what the model takes (validated), and the
  // answer must encode.
  NamedTensors outputs = e.run(req.inputs);
  const serve::EncodedResponse r = serve::encode_infer_response("fuzz", req, outputs);
  if (r.header_length && *r.header_length > r.body.size()) {
    std::fprintf(stderr, "response header length %zu past its body (%zu bytes)\n", *r.header_length, r.body.size());
    std::abort();
  }
  return 0;
}
