// The KServe v2 / Open Inference Protocol request and response codec: JSON
// tensors (nested or flat "data") and the binary tensor extension
// (Inference-Header-Content-Length, parameters.binary_data_size,
// binary_data, binary_data_output). No HTTP here, so it is unit-testable.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "deepep/engine.h"

namespace deepep::serve {

// A request the client got wrong: answered 400 with this message.
class BadRequest : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "FP32", "FP16", "BF16", "INT64", "BOOL", ... ("" for a type the protocol lacks).
std::string_view kserve_dtype(DType t);
// Inverse; kUndefined for unknown names (BYTES included: no kernel takes strings).
DType dtype_from_kserve(std::string_view name);

struct RequestedOutput {
  std::string name;
  bool binary = false;
};

struct InferRequest {
  std::string id;
  NamedTensors inputs;                  // in model input order, validated
  std::vector<RequestedOutput> outputs; // empty: every model output
  bool binary_output = false;           // parameters.binary_data_output
  std::optional<double> timeout_ms;     // parameters.timeout_ms, or parameters.timeout (us, Triton)
  int64_t batch = -1;                   // size of the batch dimension (-1: model not batched)
};

// How the server batches a model: the symbol shared by dimension 0 of every
// input and output, or none.
struct BatchSpec {
  bool batched = false;
  std::string symbol;  // "batch", "N", ...
  std::string why_not; // reason when !batched
};
BatchSpec batch_spec(const Engine& engine);

// Parses and validates an infer request. `header_length` is the value of the
// Inference-Header-Content-Length header when present (the JSON is then the
// first header_length bytes of `body` and the binary tensors follow).
// Throws BadRequest naming the problem.
InferRequest parse_infer_request(const std::string& body, std::optional<size_t> header_length,
                                 const Engine& engine, const BatchSpec& batch, int64_t max_batch);

// Checks named tensors against the model's inputs (names, dtypes, ranks, fixed
// dims, consistent symbols); returns them in model order. Throws BadRequest.
NamedTensors validate_inputs(NamedTensors given, const std::vector<TensorInfo>& specs);

struct EncodedResponse {
  std::string body;
  std::optional<size_t> header_length;  // set when binary tensors follow the JSON
};
EncodedResponse encode_infer_response(const std::string& model_name, const InferRequest& req,
                                      const NamedTensors& outputs);

// "[-1, 3, 224, 224]"-style dims for metadata (-1 where symbolic or unknown).
std::vector<int64_t> metadata_dims(const TensorInfo& t);

}  // namespace deepep::serve
