// A node's NodeCache (what a Session's executor keeps per node): select_kernel
// keeps its choice there and the conv kernels their plan, made again when an
// input's type or shape or the kernel environment changes, and only then.
#include <gtest/gtest.h>

#include <filesystem>

#include "cpu_kernel_test_util.h"
#include "deepep/engine.h"
#include "kernels/cpu/conv_plan.h"

using namespace deepep;
using namespace deepep::cputest;
using deepep::cpu::ConvPlan;

namespace {

std::unique_ptr<Graph> two_convs() {
  // Two convs over the same tensors: stride 1 and stride 2.
  return parse_graph_text(
      "graph main(%x: float32[1, 9, 9, 8], %w: float32[16, 8, 3, 3]) {\n"
      " %a = deepep.FusedConv<pads=[1,1,1,1], channels_last=1>(%x, %w)\n"
      " %b = deepep.FusedConv<pads=[1,1,1,1], strides=[2,2], channels_last=1>(%x, %w)\n"
      " return %a, %b\n}");
}

ConvPlan plan_of(const Node& n, const std::vector<const Tensor*>& in, NodeCache* cache, bool& ok) {
  KernelContext ctx{n, in, {}, nullptr, nullptr, cache};
  ConvPlan p{};
  ok = cpu::make_conv_plan(ctx, true, true, p);
  return p;
}

const KernelFn& pick(const Node& n, const std::vector<const Tensor*>& in, NodeCache& cache) {
  KernelContext ctx{n, in, {}, nullptr, nullptr, &cache};
  return select_kernel(*n.def, ctx);
}

TEST(NodeCache, WithoutOneEveryCallPlansItsOwnNode) {
  auto g = two_convs();
  const Tensor x = rnd({1, 9, 9, 8}, 1), w = rnd({16, 8, 3, 3}, 2);
  bool ok = false;
  EXPECT_EQ(plan_of(*g->nodes().at(0), {&x, &w}, nullptr, ok).OH, 9);
  EXPECT_TRUE(ok);
  EXPECT_EQ(plan_of(*g->nodes().at(1), {&x, &w}, nullptr, ok).OH, 5);
  EXPECT_TRUE(ok);
  const Tensor w_bad = rnd({16, 4, 3, 3}, 4);  // C 8 is not 4 per group
  plan_of(*g->nodes().at(1), {&x, &w_bad}, nullptr, ok);
  EXPECT_FALSE(ok);
}

TEST(NodeCache, KeepsKernelAndPlanWhileTypesAndShapesStay) {
  if (cpu::active_isa() == cpu::Isa::kNone) GTEST_SKIP() << "no fast CPU kernels on this CPU";
  auto g = two_convs();
  Node& b = *g->nodes().at(1);
  Tensor x = rnd({1, 9, 9, 8}, 1);
  const Tensor w = rnd({16, 8, 3, 3}, 2);
  NodeCache cache;
  const KernelFn* fast = &pick(b, {&x, &w}, cache);
  EXPECT_NE(fast, &b.def->reference);
  bool ok = false;
  EXPECT_EQ(plan_of(b, {&x, &w}, &cache, ok).OH, 5);
  EXPECT_TRUE(ok);

  // Kept: the plan is the cache's, not re-read from the node (a node changed
  // behind the cache's back, which a Session's graph never is, still gets it).
  b.attrs["strides"].ints = {1, 1};
  EXPECT_EQ(&pick(b, {&x, &w}, cache), fast);
  EXPECT_EQ(plan_of(b, {&x, &w}, &cache, ok).OH, 5);
  // Another tensor of the same type and shape: still kept.
  const Tensor x2 = rnd({1, 9, 9, 8}, 5);
  pick(b, {&x2, &w}, cache);
  EXPECT_EQ(plan_of(b, {&x2, &w}, &cache, ok).OH, 5);

  // Another shape: chosen and planned again (now with stride 1).
  x = rnd({1, 13, 11, 8}, 3);
  EXPECT_EQ(&pick(b, {&x, &w}, cache), fast);
  ConvPlan p = plan_of(b, {&x, &w}, &cache, ok);
  EXPECT_TRUE(ok);
  EXPECT_EQ(p.OH, 13);
  EXPECT_EQ(p.OW, 11);
  EXPECT_EQ(p.sh, 1);

  // Another dtype: the fast kernel declines, the reference runs.
  b.attrs["strides"].ints = {2, 2};
  Tensor x16(DType::kFloat16, {1, 13, 11, 8});
  EXPECT_EQ(&pick(b, {&x16, &w}, cache), &b.def->reference);
  // An omitted input counts as part of the signature too.
  EXPECT_EQ(&pick(b, {&x, &w, nullptr}, cache), fast);
  EXPECT_EQ(plan_of(b, {&x, &w, nullptr}, &cache, ok).OH, 7);

  // Another kernel environment (no ISA): the reference, then the fast kernel again.
  const int old = cpu::set_isa_override(int(cpu::Isa::kNone));
  EXPECT_EQ(&pick(b, {&x, &w, nullptr}, cache), &b.def->reference);
  cpu::set_isa_override(old);
  EXPECT_EQ(&pick(b, {&x, &w, nullptr}, cache), fast);
}

TEST(NodeCache, SignatureComparesEveryInput) {
  const Tensor a = rnd({2, 3}, 1), b = rnd({3, 2}, 2), c = rnd({2, 3, 1}, 3);
  Tensor i64(DType::kInt64, {2, 3});
  NodeCache cache;
  cache.reset({&a, &b}, 7);
  EXPECT_TRUE(cache.matches({&a, &b}, 7));
  EXPECT_FALSE(cache.matches({&a, &b}, 6));
  EXPECT_FALSE(cache.matches({&b, &a}, 7));
  EXPECT_FALSE(cache.matches({&a}, 7));
  EXPECT_FALSE(cache.matches({&a, &b, &a}, 7));
  EXPECT_FALSE(cache.matches({&a, nullptr}, 7));
  EXPECT_FALSE(cache.matches({&i64, &b}, 7));
  EXPECT_FALSE(cache.matches({&c, &b}, 7));
  EXPECT_FALSE(NodeCache{}.matches({}, 0));
  cache.reset({}, 0);
  EXPECT_TRUE(cache.matches({}, 0));
  cache.reset({nullptr, &a}, 1);
  EXPECT_TRUE(cache.matches({nullptr, &a}, 1));
  EXPECT_FALSE(cache.matches({&a, nullptr}, 1));
}

// Conv 3x3 + Relu, a 1x1 conv with a residual, and a MatMul + bias + Relu
// over the last axis, on an input of symbolic batch and height (the fusions
// make FusedConv / FusedMatMul nodes, whose kernels keep plans in the cache).
std::string dynamic_model(const std::string& name) {
  auto g = parse_graph_text(
      "graph main(%x: float32[n, 8, h, 5]) {\n"
      " %w1: float32[16, 8, 3, 3] = const[0]\n"
      " %w2: float32[8, 16, 1, 1] = const[0]\n"
      " %b2: float32[8] = const[0]\n"
      " %m: float32[5, 6] = const[0]\n"
      " %c: float32[6] = const[0]\n"
      " %a = Conv<pads=[1,1,1,1]>(%x, %w1)\n"
      " %r = Relu(%a)\n"
      " %p = Conv(%r, %w2, %b2)\n"
      " %s = Add(%p, %x)\n"
      " %t = MatMul(%s, %m)\n"
      " %u = Add(%t, %c)\n"
      " %y = Relu(%u)\n"
      " return %y\n}");
  uint32_t seed = 10;
  for (const auto& v : g->values())
    if (v->name == "w1") v->data = rnd({16, 8, 3, 3}, seed++);
    else if (v->name == "w2") v->data = rnd({8, 16, 1, 1}, seed++);
    else if (v->name == "b2") v->data = rnd({8}, seed++);
    else if (v->name == "m") v->data = rnd({5, 6}, seed++);
    else if (v->name == "c") v->data = rnd({6}, seed++);
  return write_model_file(*g, name);
}

TEST(NodeCache, SessionRunsAcrossShapesMatchFreshSessions) {
  // Batch and height change run to run, back and forth: each run must
  // equal a fresh Session's (one with no cache history).
  const std::string path = dynamic_model("deepep_node_cache_dynamic");
  auto engine = Engine::load(path);
  auto session = engine->create_session();
  const Shape shapes[] = {{1, 8, 9, 5}, {2, 8, 4, 5}, {1, 8, 9, 5}, {3, 8, 1, 5}, {2, 8, 4, 5}};
  uint32_t seed = 100;
  for (const Shape& s : shapes) {
    const NamedTensors in = {{"x", rnd(s, seed++)}};
    const Tensor got = session->run(in).at(0).second;
    const Tensor want = engine->create_session()->run(in).at(0).second;
    ASSERT_EQ(got.shape(), want.shape()) << shape_str(s);
    EXPECT_EQ(rel_err(got, want), 0.0) << "input " << shape_str(s);
  }
  std::filesystem::remove(path);
}

}  // namespace
