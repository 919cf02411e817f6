// convert_model: the one place that turns a source model into a .de file.
#include "deepep/converter.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "deepep/error.h"
#include "format/de_file.h"
#include "ir/op_registry.h"
#include "frontend/onnx_loader.h"
#include "optimizer/pipeline.h"

namespace deepep {

namespace {
nlohmann::json io_spec(const Value* v) {
  nlohmann::json shape = nlohmann::json::array();
  if (v->shape)
    for (const Dim& d : *v->shape) {
      if (d.is_known()) shape.push_back(d.value);
      else if (d.is_symbol()) shape.push_back(d.symbol);
      else shape.push_back(nullptr);
    }
  return {{"name", v->name}, {"dtype", std::string(dtype_name(v->dtype))},
          {"shape", v->shape ? shape : nlohmann::json(nullptr)}};
}

void check_options(const ConvertOptions& o) {
  const std::string& p = o.precision;
  DEEPEP_CHECK(p == "fp32" || p == "tf32" || p == "fp16" || p == "bf16", "unknown precision '", p,
               "': choose fp32, tf32, fp16 or bf16");
  DEEPEP_CHECK(o.fusion_level >= 0 && o.fusion_level <= 3, "fusion level ", o.fusion_level,
               " is out of range: choose 0 (none) to 3 (aggressive)");
  DEEPEP_CHECK(p == "fp32" || p == "tf32" || o.fusion_level == 3, "precision '", p,
               "' is applied by the level-3 optimizer (precision lowering): use fusion level 3, not ",
               o.fusion_level);
}

// The optimizer's precision for a precision option. tf32 is a GPU math mode
// for float32 matrix products: the graph stays float32 and the metadata says so.
Precision optimizer_precision(const std::string& p) {
  if (p == "fp16") return Precision::kFloat16;
  if (p == "bf16") return Precision::kBFloat16;
  return Precision::kFloat32;
}
}  // namespace

ConvertResult convert_model(const std::string& input_path, const std::string& output_path,
                            const ConvertOptions& options) {
  check_options(options);
  auto progress = [&](const std::string& stage, double f) {
    if (options.progress) options.progress(stage, f);
  };
  progress("load", 0);
  OnnxModel m = load_onnx_file(input_path);
  progress("load", 1);
  progress("optimize", 0);
  OptimizeOptions oo;
  oo.level = options.fusion_level;
  oo.precision = optimizer_precision(options.precision);
  const FusionReport report = optimize(*m.graph, oo);
  progress("optimize", 1);

  nlohmann::json meta;
  meta["producer"] = "deepep 0.1.0";
  meta["source"] = {{"path", std::filesystem::path(input_path).filename().string()},
                    {"producer", m.producer},
                    {"opset", m.opset}};
  meta["precision"] = options.precision;
  meta["math_mode"] = options.precision == "tf32" ? "tf32" : "ieee";
  meta["fusion_level"] = options.fusion_level;
  meta["nodes"] = m.graph->nodes().size();
  meta["fusion"] = nlohmann::json::parse(report.to_json(-1, false));
  meta["inputs"] = nlohmann::json::array();
  meta["outputs"] = nlohmann::json::array();
  for (const Value* v : m.graph->inputs) meta["inputs"].push_back(io_spec(v));
  for (const Value* v : m.graph->outputs) meta["outputs"].push_back(io_spec(v));

  DeWriteOptions w;
  w.metadata_json = meta.dump();
  w.opset = m.opset > 0 ? m.opset : 17;
  w.extra_opsets[kDeepepDomain] = 1;
  w.progress = [&](uint64_t done, uint64_t total) {
    progress("write", total ? double(done) / double(total) : 1.0);
  };
  write_de_file(output_path, *m.graph, w);
  progress("write", 1);

  ConvertResult r;
  r.metadata_json = w.metadata_json;
  r.file_bytes = std::filesystem::file_size(output_path);
  for (const auto& v : m.graph->values())
    if (v->data) r.weights_bytes += v->data->nbytes();
  return r;
}

}  // namespace deepep
