// Ops flagged kInplaceResidual (deepep.FusedConv) run with their output over
// their residual's buffer when the arena plans it. Every kernel of such an op
// (the reference and each fast kernel that takes the case, on each ISA path,
// float32 FMAs and bf16x3 tiles) must then give bit for bit what it gives
// into a fresh buffer: per path, the residual is read where Y is written
// (1x1 convs with K in one block, depthwise, direct) or read from a copy
// (K blocks, epilogue passes after the store, Winograd, the AMX tiles).
// Also: the GEMM itself with C over its residual, and whole models through
// the Engine (ResNet-style blocks) planned in place vs unplanned.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>

#include "cpu_kernel_test_util.h"
#include "deepep/engine.h"
#include "ir/op_registry.h"
#include "kernels/cpu/sgemm.h"

using namespace deepep;
using namespace deepep::cputest;

namespace {

// Hands out input 3's buffer (the residual) as output 0, as the arena does.
struct AliasResidual : OutputAllocator {
  Tensor res;
  bool handed_out = false;
  Tensor allocate(const Node&, int output, DType dt, const Shape& s) override {
    if (output != 0 || dt != res.dtype() || shape_numel(s) != res.numel()) return Tensor(dt, s);
    handed_out = true;
    return Tensor::wrap(dt, s, res.raw(), res.owner());
  }
};

struct ConvCase {
  std::string name;
  Shape x, w;  // x in the layout of the node (NHWC when channels_last)
  std::string attrs;
};

// Runs `kernel` (null: the reference) of the one FusedConv node of g on x, w,
// bias and a copy of res; with `alias`, Y is that copy's buffer.
Tensor run_conv(const Graph& g, const FastKernel* kernel, const Tensor& x, const Tensor& w, const Tensor& b,
                const Tensor& res, bool alias) {
  const Node& n = *g.nodes().at(0);
  const Tensor r = res.clone();
  AliasResidual alloc;
  alloc.res = r;
  KernelContext ctx{n, {&x, &w, &b, &r}, {}, nullptr, alias ? &alloc : nullptr};
  ctx.outputs.resize(1);
  if (kernel) kernel->run(ctx);
  else n.def->reference(ctx);
  if (alias) {
    EXPECT_TRUE(alloc.handed_out);
    EXPECT_EQ(ctx.outputs[0].raw(), r.raw()) << "the kernel did not write into the buffer it was given";
  }
  return ctx.outputs[0].clone();
}

void expect_same(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  EXPECT_EQ(std::memcmp(got.raw(), want.raw(), want.nbytes()), 0) << what << ": in-place result differs";
}

std::vector<ConvCase> conv_cases() {
  const std::string relu_first = "activation=\"Relu\", residual_before_activation=1";
  std::vector<ConvCase> c;
  // Channels last (cpu.conv_nhwc): x [N, H, W, C].
  c.push_back({"1x1 K=64 (one K block, fused)", {1, 7, 9, 64}, {96, 64, 1, 1}, relu_first + ", channels_last=1"});
  c.push_back({"1x1 K=600 (K blocks)", {1, 5, 6, 600}, {48, 600, 1, 1}, relu_first + ", channels_last=1"});
  c.push_back({"1x1 K=520 N=272 (AMX-sized)", {2, 5, 7, 520}, {272, 520, 1, 1}, relu_first + ", channels_last=1"});
  c.push_back({"1x1 Sigmoid (epilogue pass)", {1, 6, 6, 40}, {64, 40, 1, 1}, "activation=\"Sigmoid\", channels_last=1"});
  c.push_back({"1x1 residual after Relu", {1, 6, 5, 48}, {80, 48, 1, 1}, "activation=\"Relu\", channels_last=1"});
  c.push_back({"1x1 few channels (transposed GEMM)", {1, 9, 9, 40}, {24, 40, 1, 1}, relu_first + ", channels_last=1"});
  c.push_back({"1x1 grouped", {1, 6, 7, 32}, {64, 16, 1, 1}, relu_first + ", group=2, channels_last=1"});
  c.push_back({"3x3 Winograd", {1, 12, 12, 32}, {32, 32, 3, 3}, relu_first + ", pads=[1,1,1,1], channels_last=1"});
  c.push_back({"3x3 stride 2 (implicit GEMM)", {1, 11, 11, 32}, {64, 32, 3, 3},
               relu_first + ", pads=[1,1,1,1], strides=[2,2], channels_last=1"});
  c.push_back({"3x3 depthwise", {1, 10, 9, 48}, {48, 1, 3, 3}, relu_first + ", pads=[1,1,1,1], group=48, channels_last=1"});
  c.push_back({"7x7 stride 2, 3 channels (direct)", {1, 20, 20, 3}, {32, 3, 7, 7},
               relu_first + ", pads=[3,3,3,3], strides=[2,2], channels_last=1"});
  // NCHW (cpu.conv_gemm): x [N, C, H, W].
  c.push_back({"NCHW 1x1", {1, 64, 7, 9}, {96, 64, 1, 1}, relu_first});
  c.push_back({"NCHW 3x3", {1, 16, 8, 8}, {24, 16, 3, 3}, relu_first + ", pads=[1,1,1,1]"});
  c.push_back({"NCHW depthwise", {1, 24, 8, 7}, {24, 1, 3, 3}, relu_first + ", pads=[1,1,1,1], group=24"});
  return c;
}

TEST(InplaceResidual, OnlyFusedConvIsFlagged) {
  // A newly flagged op needs cases here and in-place-safe kernels.
  for (const auto& [name, def] : all_ops())
    if (def.flags & kInplaceResidual) EXPECT_EQ(def.name, "FusedConv") << def.name << " has no in-place residual test";
}

TEST(InplaceResidual, EveryFusedConvKernelGivesTheSameResultOverItsResidual) {
  uint32_t seed = 1;
  for (const ConvCase& c : conv_cases()) {
    SCOPED_TRACE(c.name);
    const bool nhwc = c.attrs.find("channels_last=1") != std::string::npos;
    const Tensor x = rnd(c.x, seed++), w = rnd(c.w, seed++), b = rnd({c.w[0]}, seed++);
    const std::string text = "graph main(%x: " + shp(c.x) + ", %r: float32[1]) {\n %w: " + shp(c.w) +
                             " = const[0]\n %b: " + shp({c.w[0]}) + " = const[1]\n %y = deepep.FusedConv<" + c.attrs +
                             ">(%x, %w, %b, %r)\n return %y\n}";
    auto g = parse_graph_text(text);
    for (const auto& v : g->values()) {
      if (v->name == "w") v->data = w;
      if (v->name == "b") v->data = b;
    }
    // The residual has Y's shape: the reference's output on a zero residual.
    Tensor res;
    {
      IsaScope s(cpu::Isa::kNone);
      const Tensor zero(DType::kFloat32, Shape{1});
      const Node& n = *g->nodes().at(0);
      KernelContext ctx{n, {&x, &w, &b, nullptr}, {}, nullptr, nullptr};
      ctx.outputs.resize(1);
      n.def->reference(ctx);
      res = rnd(ctx.outputs[0].shape(), seed++);
    }
    {
      IsaScope s(cpu::Isa::kNone);
      expect_same(run_conv(*g, nullptr, x, w, b, res, true), run_conv(*g, nullptr, x, w, b, res, false), "reference");
    }
    int fast_runs = 0;
    for (const cpu::Isa isa : isas()) {
      IsaScope s(isa);
      for (const bool bf16x3 : {false, true}) {
        cpu::Fp32PrecisionScope precision(bf16x3);
        const Node& n = *g->nodes().at(0);
        const Tensor r = res.clone();
        KernelContext probe{n, {&x, &w, &b, &r}, {}, nullptr, nullptr};
        for (const FastKernel& k : n.def->cpu) {
          if (k.supports && !k.supports(probe)) continue;
          ++fast_runs;
          const std::string what = k.name + " on " + cpu::isa_name(isa) + (bf16x3 ? " (fp32, bf16x3 allowed)" : "");
          expect_same(run_conv(*g, &k, x, w, b, res, true), run_conv(*g, &k, x, w, b, res, false), what);
        }
      }
    }
    if (!isas().empty()) EXPECT_GT(fast_runs, 0) << "no fast kernel took the case (nhwc=" << nhwc << ")";
  }
}

// The GEMM with C over its residual (same ld) vs into a fresh C: K in one
// block and over several, fused and pass epilogues, row and column schedules.
TEST(InplaceResidual, GemmWithCOverItsResidual) {
  for (const cpu::Isa isa : isas()) {
    IsaScope s(isa);
    for (const bool bf16x3 : {false, true}) {
      cpu::Fp32PrecisionScope precision(bf16x3);
      struct Shape3 {
        int64_t M, N, K;
      };
      for (const Shape3 sh : {Shape3{37, 45, 64}, {200, 96, 512}, {130, 70, 700}, {64, 300, 600}, {3, 5, 0}}) {
        for (const ops::Act act : {ops::Act::kRelu, ops::Act::kSigmoid}) {
          SCOPED_TRACE(std::string(cpu::isa_name(isa)) + " M=" + std::to_string(sh.M) + " N=" + std::to_string(sh.N) +
                       " K=" + std::to_string(sh.K) + " act=" + std::to_string(int(act)) + " bf16x3=" +
                       std::to_string(bf16x3));
          const std::vector<float> a = rnd_floats(sh.M * sh.K, 3), bm = rnd_floats(sh.K * sh.N, 4),
                                   bias = rnd_floats(sh.N, 5), res = rnd_floats(sh.M * sh.N, 6);
          const auto packed = cpu::pack_b(isa, sh.K, sh.N, bm.data(), sh.N, false);
          cpu::GemmEpi epi;
          epi.bias = bias.data();
          epi.act = act;
          epi.res_first = true;
          epi.res_ld = sh.N;
          const cpu::Operand A{a.data(), sh.K, false}, B{nullptr, 0, false, packed.get()};
          std::vector<float> want(size_t(sh.M * sh.N)), got = res;
          epi.res = res.data();
          cpu::gemm(isa, sh.M, sh.N, sh.K, A, B, want.data(), sh.N, epi);
          epi.res = got.data();
          cpu::gemm(isa, sh.M, sh.N, sh.K, A, B, got.data(), sh.N, epi);
          EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0);
        }
      }
    }
  }
}

// ResNet-style blocks through the Engine, in both layouts: the residual an
// intermediate that dies at the add. Planned (in place) and unplanned runs
// agree bit for bit, and the plan runs the adds in place.
TEST(InplaceResidual, ResidualBlocksThroughTheEngine) {
  // Each block: a 1x1 conv of the block input, then a conv of that (1x1,
  // 3x3, depthwise 3x3) plus the block input.
  const std::string text = R"(graph main(%x: float32[1,16,10,10]) {
 %w0: float32[32,16,1,1] = const[0]
 %v1: float32[32,32,1,1] = const[1]
 %w1: float32[32,32,1,1] = const[2]
 %v2: float32[32,32,1,1] = const[3]
 %w2: float32[32,32,3,3] = const[4]
 %v3: float32[32,32,1,1] = const[5]
 %w3: float32[32,1,3,3] = const[6]
 %h = Conv(%x, %w0)
 %a = Relu(%h)
 %e1 = Conv(%a, %v1)
 %b1 = Relu(%e1)
 %c1 = Conv(%b1, %w1)
 %s1 = Add(%c1, %a)
 %r1 = Relu(%s1)
 %e2 = Conv(%r1, %v2)
 %b2 = Relu(%e2)
 %c2 = Conv<pads=[1,1,1,1]>(%b2, %w2)
 %s2 = Add(%r1, %c2)
 %r2 = Relu(%s2)
 %e3 = Conv(%r2, %v3)
 %b3 = Relu(%e3)
 %c3 = Conv<pads=[1,1,1,1], group=32>(%b3, %w3)
 %s3 = Add(%c3, %r2)
 %r3 = Relu(%s3)
 %y = Sigmoid(%r3)
 return %y
})";
  auto g = parse_graph_text(text);
  const std::map<std::string, Shape> shapes = {{"w0", {32, 16, 1, 1}}, {"v1", {32, 32, 1, 1}}, {"w1", {32, 32, 1, 1}},
                                               {"v2", {32, 32, 1, 1}}, {"w2", {32, 32, 3, 3}}, {"v3", {32, 32, 1, 1}},
                                               {"w3", {32, 1, 3, 3}}};
  uint32_t seed = 40;
  for (const auto& v : g->values())
    if (auto it = shapes.find(v->name); it != shapes.end()) v->data = rnd(it->second, seed++, -0.3f, 0.3f);
  const std::string path = write_model_file(*g, "deepep_inplace_residual");
  const NamedTensors in = {{"x", rnd({1, 16, 10, 10}, 7)}};
  for (const std::string layout : {"nhwc", "nchw"}) {
    SCOPED_TRACE(layout);
    EngineOptions planned, unplanned;
    planned.layout = unplanned.layout = layout;
    unplanned.plan_memory = false;
    auto ep = Engine::load(path, planned);
    auto eu = Engine::load(path, unplanned);
    auto sp = ep->create_session();
    const Tensor want = eu->run(in).at(0).second;
    for (int run = 0; run < 3; ++run) {  // the first run records the plan; later ones use it
      const Tensor got = sp->run(in).at(0).second;
      ASSERT_EQ(got.shape(), want.shape());
      EXPECT_EQ(std::memcmp(got.raw(), want.raw(), want.nbytes()), 0) << "run " << run;
    }
    // The three adds (and perhaps the Sigmoid, which alone would make one).
    EXPECT_GE(sp->memory_report().inplace_reuses, 3u);
  }
  std::filesystem::remove(path);
}

}  // namespace
