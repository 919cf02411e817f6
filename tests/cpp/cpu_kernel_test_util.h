// Helpers shared by the CPU fast-kernel tests (test_kernels_cpu_ops.cpp,
// test_kernels_cpu_nhwc.cpp, test_kernels_cpu_tx.cpp): random tensors, the
// ISA paths this CPU can force, and a one-node graph runner that reports
// which fast kernel (if any) takes the node, so that each test compares the
// fast kernel with the reference kernel (the oracle).
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "frontend/onnx_writer.h"
#include "ir/graph_text_parser.h"
#include "kernels/cpu/cpu_features.h"
#include "runtime/executor.h"

namespace deepep::cputest {

// g as an ONNX file in the temp directory (name + this process's id, so
// parallel test processes never share one); returns its path.
inline std::string write_model_file(const Graph& g, const std::string& name) {
  const auto path = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()) + ".onnx");
  std::ofstream(path, std::ios::binary) << write_onnx_bytes(g, {});
  return path.string();
}

// Uniform random float32 tensor in [lo, hi).
inline Tensor rnd(const Shape& s, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor t(DType::kFloat32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

// n uniform random floats in [-1, 1) (GEMM operands).
inline std::vector<float> rnd_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (float& x : v) x = d(rng);
  return v;
}

// The graph-text type of a float32 tensor of shape s: "float32[2,3]".
inline std::string shp(const Shape& s) {
  std::string o = "float32[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? "," : "") + std::to_string(s[i]);
  return o + "]";
}

// The graph-text type of t (float32 or bool).
inline std::string type_text(const Tensor& t) {
  std::string o = t.dtype() == DType::kBool ? "bool[" : "float32[";
  for (int i = 0; i < t.rank(); ++i) o += (i ? "," : "") + std::to_string(t.dim(i));
  return o + "]";
}

// The ISA paths this CPU can force (AVX2, then AVX-512); empty without AVX2.
inline std::vector<cpu::Isa> isas() {
  std::vector<cpu::Isa> out;
  if (int(cpu::cpu_best_isa()) >= int(cpu::Isa::kAvx2)) out.push_back(cpu::Isa::kAvx2);
  if (int(cpu::cpu_best_isa()) >= int(cpu::Isa::kAvx512)) out.push_back(cpu::Isa::kAvx512);
  return out;
}

// Forces an ISA path (Isa::kNone: the reference kernels) for its lifetime.
struct IsaScope {
  int old;
  explicit IsaScope(cpu::Isa isa) : old(cpu::set_isa_override(int(isa))) {}
  ~IsaScope() { cpu::set_isa_override(old); }
  IsaScope(const IsaScope&) = delete;
  IsaScope& operator=(const IsaScope&) = delete;
};

struct Input {
  std::string name;  // "_": omitted optional input
  Tensor t;
  bool constant = false;  // a graph constant (the packed-weight path)
};

// One node `y0, .., y{n_out-1} = op<attrs>(inputs)`; constants become graph
// constants. Returns its outputs. Once the graph is parsed, and before it runs
// (so also when the run throws), sets `*kernel` to the name of the fast kernel
// that takes the node by select_kernel's rule ("" = the reference kernel) and
// `*fast` to whether one does (either may be null).
inline std::vector<Tensor> run_node_impl(const std::string& op, const std::string& attrs,
                                         const std::vector<Input>& ins, int n_out, std::string* kernel, bool* fast) {
  std::string sig, body, args, outs;
  std::vector<Tensor> feeds;
  for (const Input& in : ins) {
    args += std::string(args.empty() ? "" : ", ") + (in.name == "_" ? "_" : "%" + in.name);
    if (in.name == "_") continue;
    if (in.constant)
      body += " %" + in.name + ": " + type_text(in.t) + (in.t.numel() ? " = const[0]\n" : " = const[]\n");
    else {
      sig += std::string(sig.empty() ? "" : ", ") + "%" + in.name + ": " + type_text(in.t);
      feeds.push_back(in.t);
    }
  }
  for (int i = 0; i < n_out; ++i) outs += std::string(i ? ", " : "") + "%y" + std::to_string(i);
  const std::string text = "graph main(" + sig + ") {\n" + body + " " + outs + " = " + op +
                           (attrs.empty() ? "" : "<" + attrs + ">") + "(" + args + ")\n return " + outs + "\n}";
  auto g = parse_graph_text(text);
  for (const auto& v : g->values())
    for (const Input& in : ins)
      if (in.constant && v->name == in.name) v->data = in.t;
  const Node& n = *g->nodes().at(0);
  KernelContext ctx{n, {}, {}, nullptr, nullptr};
  ctx.outputs.resize(size_t(n_out));
  size_t fi = 0;
  for (const Input& in : ins) ctx.inputs.push_back(in.name == "_" ? nullptr : (in.constant ? &in.t : &feeds[fi++]));
  std::string taken;
  for (const FastKernel& k : n.def->cpu)
    if (!k.supports || k.supports(ctx)) {
      taken = k.name;
      break;
    }
  if (kernel) *kernel = taken;
  if (fast) *fast = !n.def->cpu.empty() && &select_kernel(*n.def, ctx) != &n.def->reference;
  Executor ex;
  return ex.run_graph(*g, feeds, nullptr);
}

// n_out outputs; `fast`: whether a fast kernel takes the node.
inline std::vector<Tensor> run_node(const std::string& op, const std::string& attrs, const std::vector<Input>& ins,
                                    int n_out, bool& fast) {
  return run_node_impl(op, attrs, ins, n_out, nullptr, &fast);
}

// One output; `fast`: whether a fast kernel takes the node.
inline Tensor run_node(const std::string& op, const std::string& attrs, const std::vector<Input>& ins, bool& fast) {
  return run_node_impl(op, attrs, ins, 1, nullptr, &fast).at(0);
}

// One output; `kernel`: the fast kernel that takes the node ("" = the reference).
inline Tensor run_node(const std::string& op, const std::string& attrs, const std::vector<Input>& ins,
                       std::string& kernel) {
  return run_node_impl(op, attrs, ins, 1, &kernel, nullptr).at(0);
}

// Largest |got - want| over max(1, max |want|); NaNs must match.
inline double rel_err(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  if (got.shape() != want.shape()) return 1e9;
  double scale = 1.0, err = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    const double w = want.data<float>()[i], g = got.data<float>()[i];
    if (std::isnan(w) != std::isnan(g)) return 1e9;
    scale = std::max(scale, std::fabs(w));
    if (!std::isnan(w)) err = std::max(err, std::fabs(g - w));
  }
  return err / scale;
}

// The attributes of every epilogue activation of deepep.FusedMatMul / FusedConv.
inline const char* const kActAttrs[] = {"",
                                        "activation=\"Relu\"",
                                        "activation=\"LeakyRelu\", activation_params=[0.1]",
                                        "activation=\"Sigmoid\"",
                                        "activation=\"Tanh\"",
                                        "activation=\"SiLU\"",
                                        "activation=\"Gelu\"",
                                        "activation=\"GeluTanh\"",
                                        "activation=\"Clip\", activation_params=[-0.3, 0.4]",
                                        "activation=\"HardSigmoid\", activation_params=[0.2, 0.5]",
                                        "activation=\"HardSwish\""};

}  // namespace deepep::cputest
