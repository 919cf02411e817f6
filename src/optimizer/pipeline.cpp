// The pass manager. For each level 1..L it runs, in rounds, every pass of that
// level or below in the order of default_pipeline(), over the graph and all its
// subgraphs, until a whole round changes nothing (a fixed point) or
// max_iterations rounds ran. Level 1 settles first, so level-2 matchers see a
// clean graph; level-1 passes keep running at level 2 to sweep up after fusions.
#include "optimizer/pipeline.h"

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "deepep/error.h"
#include "ir/graph_edit.h"

namespace deepep {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFloat32: return "float32";
    case Precision::kFloat16: return "float16";
    case Precision::kBFloat16: return "bfloat16";
    case Precision::kInt8: return "int8";
  }
  return "?";
}

// Why this order (one round runs the passes of the current level or below):
//  1. shape_folding first: it turns Shape-of-known-dims subgraphs into
//     constants, which everything after can then fold or match.
//  2. constant_folding next: folds what shape folding exposed and every
//     all-constant node (weight transposes, casts, reshapes of weights), so
//     later matchers see weights as constants.
//  3. noop_elimination after folding: whether a Reshape/Slice/Cast changes
//     nothing is provable once their shape inputs are constants.
//  4. transpose_cancellation (level 2) before the GEMM fusion: a transposed
//     constant weight becomes a plain constant MatMul can take.
//  5. conv_batchnorm_fold and 6. matmul_add_to_gemm: the pattern fusions; they
//     need constant parameters, which 1-4 provide.
//  7. gelu_fusion and 8. layer_norm_fusion: turn decomposed formulas into
//     ONNX Gelu / LayerNormalization / RMSNormalization, which 9-12 match.
//  9. skip_layer_norm_fusion: takes the residual Add before a LayerNorm, so
//     that 11 leaves it there (both would fuse it; in the norm the sum is
//     also written once for the next residual).
// 10. attention_fusion: Q K^T -> Softmax -> V with the head split/merge; in a
//     later round it packs the Q/K/V FusedMatMuls that 11 made into one.
// 11. matmul_bias_activation_fusion and 12. conv_activation_fusion: grow
//     GEMM/conv epilogues (bias, then activation and residual); after 6 (a
//     2-D MatMul+Add is a Gemm by then) and 7 (Gelu exists to be taken), and
//     12 after the BatchNorm fold 5 (BN and per-channel affines go into the
//     weights, not the epilogue).
// 13. precision_lowering (level 3) after the pattern fusions, which match
//     float32 weights, and before elementwise fusion, so the Casts it puts
//     around float32-kept ops (LayerNorm, Softmax, reductions) are fused
//     into the neighbouring elementwise chains.
// 14. elementwise_fusion (level 3) last of the fusions: it takes the
//     elementwise/broadcast ops the pattern fusions left (a bias Add that
//     became part of a Gemm epilogue is not an elementwise op any more).
// 15. common_subexpression_elimination near the end: after no-ops are gone,
//     x and Identity(x) are one value, and fused nodes can merge too.
// 16. dead_code_elimination last: sweeps every node and constant the passes
//     before it left unused.
std::vector<std::unique_ptr<Pass>> default_pipeline() {
  std::vector<std::unique_ptr<Pass>> p;
  p.push_back(make_shape_folding());
  p.push_back(make_constant_folding());
  p.push_back(make_noop_elimination());
  p.push_back(make_transpose_cancellation());
  p.push_back(make_conv_batchnorm_fold());
  p.push_back(make_matmul_add_to_gemm());
  p.push_back(make_gelu_fusion());
  p.push_back(make_layer_norm_fusion());
  p.push_back(make_skip_layer_norm_fusion());
  p.push_back(make_attention_fusion());
  p.push_back(make_matmul_bias_activation_fusion());
  p.push_back(make_conv_activation_fusion());
  p.push_back(make_precision_lowering());
  p.push_back(make_elementwise_fusion());
  p.push_back(make_common_subexpression_elimination());
  p.push_back(make_dead_code_elimination());
  return p;
}

namespace {

int64_t count_nodes(const Graph& g) {
  int64_t n = 0;
  for (const auto& node : g.nodes()) {
    ++n;
    for (const auto& [k, a] : node->attrs)
      for (const auto& sg : a.graphs) n += count_nodes(*sg);
  }
  return n;
}

// Sums the absorbed source ops of g's fused nodes (and its subgraphs').
void count_fused(const Graph& g, FusionReport& r) {
  for (const auto& node : g.nodes()) {
    int64_t n = 0;
    for (const auto& [op, count] : node->absorbed) n += count;
    if (n >= 2) {
      ++r.fused_nodes;
      for (const auto& [op, count] : node->absorbed) r.fused_ops[op] += count;
    }
    for (const auto& [k, a] : node->attrs)
      for (const auto& sg : a.graphs) count_fused(*sg, r);
  }
}

// Runs `pass` on g, then on the subgraphs of the nodes g has afterwards.
bool run_everywhere(Pass& pass, Graph& g, PassContext& ctx) {
  bool changed = pass.run(g, ctx);
  for (const auto& node : g.nodes())
    for (const auto& [k, a] : node->attrs)
      for (const auto& sg : a.graphs) changed = run_everywhere(pass, *sg, ctx) || changed;
  return changed;
}

bool verify_by_default() {
#ifndef NDEBUG
  return true;
#else
  const char* env = std::getenv("DEEPEP_VERIFY_PASSES");
  return env && std::string(env) == "1";
#endif
}

}  // namespace

const PassReport* FusionReport::pass(const std::string& name) const {
  for (const auto& p : passes)
    if (p.name == name) return &p;
  return nullptr;
}

std::string FusionReport::to_json(int indent, bool timings) const {
  nlohmann::ordered_json j;
  j["level"] = level;
  j["precision"] = precision;
  j["nodes_before"] = nodes_before;
  j["nodes_after"] = nodes_after;
  j["rounds"] = rounds;
  j["fixed_point"] = fixed_point;
  j["passes"] = nlohmann::ordered_json::array();
  for (const auto& p : passes) {
    nlohmann::ordered_json q;
    q["name"] = p.name;
    q["level"] = p.level;
    q["runs"] = p.runs;
    q["changes"] = p.changes;
    if (timings) q["ms"] = double(int64_t(p.ms * 1000 + 0.5)) / 1000;
    q["counters"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : p.counters) q["counters"][k] = v;
    j["passes"].push_back(std::move(q));
  }
  j["fused_nodes"] = fused_nodes;
  j["fused_ops"] = nlohmann::ordered_json::object();
  for (const auto& [k, v] : fused_ops) j["fused_ops"][k] = v;
  return j.dump(indent);
}

FusionReport optimize_with(Graph& g, const std::vector<std::unique_ptr<Pass>>& passes,
                           const OptimizeOptions& options) {
  const int level = std::clamp(options.level, 0, 3);
  const bool check = options.verify.value_or(verify_by_default());
  FusionReport report;
  report.level = level;
  report.precision = precision_name(options.precision);
  report.nodes_before = count_nodes(g);
  for (const auto& p : passes) report.passes.push_back({p->name(), p->level(), 0, 0, 0, {}});
  if (check) {
    try {
      verify(g);
    } catch (const Error& e) {
      DEEPEP_FAIL("optimizer: the input graph is invalid: ", e.what());
    }
  }
  PassContext ctx;
  ctx.level = level;
  ctx.precision = options.precision;
  for (int l = 1; l <= level; ++l) {
    int round = 0;
    bool changed = true;
    while (changed && round < options.max_iterations) {
      changed = false;
      ++round;
      for (size_t i = 0; i < passes.size(); ++i) {
        if (passes[i]->level() > l) continue;
        PassReport& r = report.passes[i];
        ctx.stats = &r.counters;
        const auto t0 = std::chrono::steady_clock::now();
        const bool c = run_everywhere(*passes[i], g, ctx);
        r.ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        ++r.runs;
        r.changes += c;
        changed = changed || c;
        if (check) {
          try {
            verify(g);
          } catch (const Error& e) {
            DEEPEP_FAIL("optimizer: pass '", r.name, "' left an invalid graph: ", e.what());
          }
        }
      }
    }
    report.rounds.push_back(round);
    if (changed) report.fixed_point = false;
  }
  report.nodes_after = count_nodes(g);
  count_fused(g, report);
  return report;
}

FusionReport optimize(Graph& g, const OptimizeOptions& options) {
  return optimize_with(g, default_pipeline(), options);
}

namespace {

// Runs a load-time pass list at level 2; returns the first pass's `counter`.
int run_load_time(Graph& g, std::vector<std::unique_ptr<Pass>> passes, const char* counter) {
  OptimizeOptions o;
  o.level = 2;
  const FusionReport r = optimize_with(g, passes, o);
  const auto it = r.passes[0].counters.find(counter);
  return it == r.passes[0].counters.end() ? 0 : int(it->second);
}

}  // namespace

int convert_to_channels_last(Graph& g) {
  std::vector<std::unique_ptr<Pass>> passes;
  passes.push_back(make_channels_last());
  passes.push_back(make_transpose_cancellation());
  passes.push_back(make_common_subexpression_elimination());  // one transpose per value read by two convs
  passes.push_back(make_dead_code_elimination());
  return run_load_time(g, std::move(passes), "channels_last.conv");
}

int fuse_for_cpu(Graph& g) {
  std::vector<std::unique_ptr<Pass>> passes;
  passes.push_back(make_pointwise_depthwise_fusion());
  passes.push_back(make_nchw_input_conv());
  passes.push_back(make_dead_code_elimination());
  return run_load_time(g, std::move(passes), "fused.pointwise_depthwise");
}

}  // namespace deepep
