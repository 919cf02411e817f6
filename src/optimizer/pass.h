// The shape every optimizer pass has: a name, the fusion level it belongs to,
// and `run(graph, context) -> changed`. A pass rewrites one graph (the pass
// manager also hands it every subgraph), keeps the graph's outputs
// numerically the same within the requested precision, and leaves the graph
// valid (ir/graph_edit.h's verify checks this after every pass in debug
// builds). One pass per file in src/optimizer/; pipeline.cpp orders them.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "ir/graph.h"

namespace deepep {

// The numeric precision the user asked for. Passes of levels 1-2 are exact
// up to float rounding of folded weights; level 3 may lower to it.
enum class Precision { kFloat32, kFloat16, kBFloat16, kInt8 };
const char* precision_name(Precision p);

struct PassContext {
  int level = 2;
  Precision precision = Precision::kFloat32;
  // The running pass's counters ("folded", "removed", ...), for the fusion report.
  std::map<std::string, int64_t>* stats = nullptr;

  void count(const std::string& what, int64_t n = 1) {
    if (stats && n) (*stats)[what] += n;
  }
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual const char* name() const = 0;
  virtual int level() const = 0;
  // Rewrites `g`; returns whether anything changed.
  virtual bool run(Graph& g, PassContext& ctx) = 0;
};

// Most passes are one function: this wraps it.
class FunctionPass : public Pass {
 public:
  using Fn = bool (*)(Graph&, PassContext&);
  FunctionPass(const char* name, int level, Fn fn) : name_(name), level_(level), fn_(fn) {}
  const char* name() const override { return name_; }
  int level() const override { return level_; }
  bool run(Graph& g, PassContext& ctx) override { return fn_(g, ctx); }

 private:
  const char* name_;
  int level_;
  Fn fn_;
};

// The passes, one file each (src/optimizer/<name>.cpp).
// Level 1: clean-up.
std::unique_ptr<Pass> make_shape_folding();
std::unique_ptr<Pass> make_constant_folding();
std::unique_ptr<Pass> make_noop_elimination();
std::unique_ptr<Pass> make_common_subexpression_elimination();
std::unique_ptr<Pass> make_dead_code_elimination();
// Level 2: pattern fusions.
std::unique_ptr<Pass> make_transpose_cancellation();
std::unique_ptr<Pass> make_conv_batchnorm_fold();
std::unique_ptr<Pass> make_matmul_add_to_gemm();
std::unique_ptr<Pass> make_gelu_fusion();
std::unique_ptr<Pass> make_layer_norm_fusion();
std::unique_ptr<Pass> make_skip_layer_norm_fusion();
std::unique_ptr<Pass> make_attention_fusion();
std::unique_ptr<Pass> make_matmul_bias_activation_fusion();
std::unique_ptr<Pass> make_conv_activation_fusion();
// Level 3: aggressive.
std::unique_ptr<Pass> make_precision_lowering();
std::unique_ptr<Pass> make_elementwise_fusion();
// Load time, per device (not in default_pipeline; see convert_to_channels_last
// and fuse_for_cpu).
std::unique_ptr<Pass> make_channels_last();
std::unique_ptr<Pass> make_pointwise_depthwise_fusion();
std::unique_ptr<Pass> make_nchw_input_conv();

}  // namespace deepep
