// The arena on real graphs: every plan the runtime records passes check_plan,
// and running with the plan (in-place reuse included) gives bit-identical
// outputs to running with planning off — for random DAGs of elementwise,
// Concat, MatMul, Reshape (views) and If nodes, across runs with the same and
// with different input shapes (the plan cache), data-dependent If branches and
// data-dependent shapes. Also: every op flagged kInplace has a reference
// kernel that is safe when its output 0 is its input 0's buffer.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>

#include "deepep/engine.h"
#include "cpu_kernel_test_util.h"
#include "ir/dtype_dispatch.h"
#include "ir/graph_text_parser.h"
#include "ir/op_registry.h"
#include "runtime/session_debug.h"

using namespace deepep;

namespace {

// ---------------------------------------------------------------------------
// In-place safety of the kernels of ops flagged kInplace.

Attribute attr_int(int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = v;
  return a;
}
Attribute attr_str(std::string v) {
  Attribute a;
  a.kind = Attribute::Kind::kString;
  a.s = std::move(v);
  return a;
}

struct OpCase {
  std::string op;
  DType dtype;
  std::vector<Shape> inputs;  // input 0 first: the output's shape
  AttrMap attrs;
};

Tensor random_tensor(DType dt, const Shape& shape, std::mt19937& rng, bool small_ints) {
  Tensor t(dt, shape);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  dispatch_all(dt, "random", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if constexpr (std::is_same_v<T, bool>) p[i] = rng() & 1;
      else if constexpr (is_floating_v<T>) p[i] = T(u(rng));
      else p[i] = T(small_ints ? int64_t(rng() % 6) : int64_t(rng() % 200) - 100);
    }
  });
  return t;
}

// Hands out input 0's buffer as output 0, like the arena does for in-place values.
struct AliasInput0 : OutputAllocator {
  Tensor in0;
  Tensor allocate(const Node&, int output, DType dt, const Shape& s) override {
    if (output != 0) return Tensor(dt, s);
    EXPECT_EQ(dt, in0.dtype());
    EXPECT_EQ(shape_numel(s), in0.numel());
    return Tensor::wrap(dt, s, in0.raw(), in0.owner());
  }
};

Tensor run_kernel(const OpCase& c, const std::vector<Tensor>& ins, OutputAllocator* alloc) {
  static Value out_value;
  Node node;
  node.op_type = c.op;
  node.name = "n";
  node.opset = 17;
  node.attrs = c.attrs;
  node.outputs = {&out_value};
  node.def = find_op(c.op);
  KernelContext ctx{node, {}, {}, nullptr, alloc};
  for (const Tensor& t : ins) ctx.inputs.push_back(&t);
  ctx.outputs.resize(1);
  node.def->reference(ctx);
  return ctx.outputs[0];
}

std::vector<OpCase> inplace_cases() {
  const DType f = DType::kFloat32, i32 = DType::kInt32, b = DType::kBool;
  const Shape s = {3, 4, 5};
  std::vector<OpCase> cases;
  for (const char* op : {"Exp", "Log", "Sqrt", "Reciprocal", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan",
                         "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Tanh", "Erf", "Ceil", "Floor", "Round",
                         "Sigmoid", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Mish", "Gelu",
                         "Swish", "ThresholdedRelu", "Shrink", "LeakyRelu", "Elu", "Selu", "Celu", "Identity"})
    cases.push_back({op, f, {s}, {}});
  cases.push_back({"Gelu", f, {s}, {{"approximate", attr_str("tanh")}}});
  for (const char* op : {"Abs", "Neg", "Sign", "Relu", "Erf"}) {
    cases.push_back({op, f, {s}, {}});
    cases.push_back({op, i32, {s}, {}});
  }
  cases.push_back({"Not", b, {s}, {}});
  cases.push_back({"BitwiseNot", i32, {s}, {}});
  cases.push_back({"PRelu", f, {s, {5}}, {}});
  cases.push_back({"PRelu", f, {s, s}, {}});
  cases.push_back({"Clip", f, {s, {}, {}}, {}});
  // Binary ops: same shape, a broadcast right operand, a scalar.
  auto binary = [&](const char* op, DType dt, AttrMap attrs = {}) {
    for (const Shape& rhs : std::vector<Shape>{s, {4, 1}, {}, {5}}) cases.push_back({op, dt, {s, rhs}, attrs});
  };
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow"}) {
    binary(op, f);
    binary(op, i32);
  }
  binary("Mod", f, {{"fmod", attr_int(1)}});
  binary("Mod", i32);
  binary("BitShift", i32, {{"direction", attr_str("LEFT")}});
  binary("BitShift", i32, {{"direction", attr_str("RIGHT")}});
  for (const char* op : {"BitwiseAnd", "BitwiseOr", "BitwiseXor"}) binary(op, i32);
  for (const char* op : {"And", "Or", "Xor"}) binary(op, b);
  for (const char* op : {"Max", "Min", "Sum", "Mean"}) {
    cases.push_back({op, f, {s}, {}});
    cases.push_back({op, f, {s, {4, 5}, {1}}, {}});
    cases.push_back({op, f, {s, s, s, s}, {}});
  }
  cases.push_back({"Max", i32, {s, {5}}, {}});
  cases.push_back({"Min", i32, {s, {5}}, {}});
  return cases;
}

TEST(InplaceKernels, EveryFlaggedOpIsSafeWithItsOutputOverItsInput) {
  const auto cases = inplace_cases();
  std::set<std::string> covered;
  for (const auto& c : cases) covered.insert(c.op);
  // A newly flagged op must be added here (and its kernel made in-place safe).
  for (const auto& [name, def] : all_ops())
    if (def.flags & kInplace) {
      EXPECT_TRUE(covered.count(def.name)) << def.name << " is flagged kInplace but has no in-place test case";
      EXPECT_TRUE(def.kind == FusionKind::kElementwise || def.kind == FusionKind::kBroadcast)
          << def.name << ": only elementwise/broadcast ops may be kInplace";
    }
  std::mt19937 rng(11);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.op + " " + std::string(dtype_name(c.dtype)) + " " + std::to_string(c.inputs.size()) + " inputs, rhs " +
                 (c.inputs.size() > 1 ? shape_str(c.inputs[1]) : ""));
    const OpDef* def = find_op(c.op);
    ASSERT_NE(def, nullptr);
    ASSERT_TRUE(def->flags & kInplace) << "case for an op that is not flagged";
    const bool small = c.op == "BitShift" || c.op == "Pow";
    std::vector<Tensor> ins;
    for (const Shape& sh : c.inputs) ins.push_back(random_tensor(c.dtype, sh, rng, small));
    const Tensor want = run_kernel(c, ins, nullptr);
    std::vector<Tensor> aliased;
    for (const Tensor& t : ins) aliased.push_back(t.clone());
    AliasInput0 alloc;
    alloc.in0 = aliased[0];
    const Tensor got = run_kernel(c, aliased, &alloc);
    ASSERT_EQ(got.raw(), aliased[0].raw()) << "the kernel did not write into the buffer it was given";
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_EQ(std::memcmp(got.raw(), want.raw(), want.nbytes()), 0) << "in-place result differs";
  }
}

// ---------------------------------------------------------------------------
// Random DAGs through the Engine, planned vs unplanned.

struct RandomDag {
  std::string text;
  int width = 8;  // of the input x: float32[batch, width]
};

RandomDag random_dag(unsigned seed, int nodes) {
  std::mt19937 rng(seed);
  std::ostringstream consts, body;
  std::vector<std::pair<std::string, int>> pool = {{"x", 8}};  // value, width
  int next = 0, next_const = 0;
  auto fresh = [&] { return "v" + std::to_string(next++); };
  auto pick = [&]() -> std::pair<std::string, int> {
    if (rng() % 10 < 7) return pool[pool.size() - 1 - rng() % std::min<size_t>(pool.size(), 3)];
    return pool[rng() % pool.size()];
  };
  auto floats = [&](int n, double scale) {
    std::uniform_real_distribution<double> u(-scale, scale);
    std::ostringstream s;
    for (int i = 0; i < n; ++i) s << (i ? ", " : "") << u(rng);
    return s.str();
  };
  auto type = [](int w) { return "float32[batch," + std::to_string(w) + "]"; };
  for (int k = 0; k < nodes; ++k) {
    const auto [a, w] = pick();
    const std::string y = fresh();
    switch (rng() % 7) {
      case 0: {
        static const char* unary[] = {"Relu", "Sigmoid", "Tanh", "Neg", "Abs"};
        body << "%" << y << ": " << type(w) << " = " << unary[rng() % 5] << "(%" << a << ")\n";
        pool.push_back({y, w});
        break;
      }
      case 1:
      case 2: {
        static const char* binary[] = {"Add", "Mul", "Sub"};
        std::string b;
        const unsigned r = rng() % 4;
        if (r == 0) {
          b = a;  // Add(%v, %v): both operands in one buffer
        } else if (r == 1) {
          b = "c" + std::to_string(next_const++);
          consts << "%" << b << ": float32[" << w << "] = const[" << floats(w, 1.0) << "]\n";
        } else {
          std::vector<std::string> same;
          for (const auto& [n, pw] : pool)
            if (pw == w) same.push_back(n);
          b = same[rng() % same.size()];
        }
        body << "%" << y << ": " << type(w) << " = " << binary[rng() % 3] << "(%" << a << ", %" << b << ")\n";
        pool.push_back({y, w});
        break;
      }
      case 3: {
        const auto [b, wb] = pick();
        if (w + wb > 32) {
          body << "%" << y << ": " << type(w) << " = Tanh(%" << a << ")\n";
          pool.push_back({y, w});
        } else {
          body << "%" << y << ": " << type(w + wb) << " = Concat<axis=1>(%" << a << ", %" << b << ")\n";
          pool.push_back({y, w + wb});
        }
        break;
      }
      case 4: {
        const int w2 = 4 * (1 + int(rng() % 4));
        const std::string m = "c" + std::to_string(next_const++);
        consts << "%" << m << ": float32[" << w << "," << w2 << "] = const["
               << floats(w * w2, 1.0 / std::sqrt(double(w))) << "]\n";
        body << "%" << y << ": " << type(w2) << " = MatMul(%" << a << ", %" << m << ")\n";
        pool.push_back({y, w2});
        break;
      }
      case 5: {
        // Views: Reshape to [batch, w/2, 2], an elementwise op on the view
        // (in-place through a view), Reshape back.
        const std::string s3 = "c" + std::to_string(next_const++), s2 = "c" + std::to_string(next_const++);
        consts << "%" << s3 << ": int64[3] = const[0, -1, 2]\n";
        consts << "%" << s2 << ": int64[2] = const[0, " << w << "]\n";
        const std::string r1 = fresh(), r2 = fresh();
        body << "%" << r1 << ": float32[batch," << w / 2 << ",2] = Reshape(%" << a << ", %" << s3 << ")\n";
        body << "%" << r2 << ": float32[batch," << w / 2 << ",2] = Sigmoid(%" << r1 << ")\n";
        body << "%" << y << ": " << type(w) << " = Reshape(%" << r2 << ", %" << s2 << ")\n";
        pool.push_back({y, w});
        break;
      }
      case 6: {
        // If: the then branch returns the outer value itself (a view of its
        // buffer), the else branch a fresh one; which depends on the data %c.
        body << "%" << y << ": " << type(w) << " = If<then_branch=graph t" << y << "() {\n  return %" << a
             << "\n}, else_branch=graph e" << y << "() {\n  %k" << y << ": float32[1] = const[0.5]\n  %s" << y
             << ": " << type(w) << " = Add(%" << a << ", %k" << y << ")\n  return %s" << y << "\n}>(%c)\n";
        pool.push_back({y, w});
        break;
      }
    }
  }
  // Outputs: the last value, a couple of earlier ones, and a Reshape view of an intermediate.
  std::set<std::string> outs = {pool.back().first};
  for (int k = 0; k < 2; ++k) {
    const std::string& n = pool[1 + rng() % (pool.size() - 1)].first;
    outs.insert(n);
  }
  const std::string viewed = pool[1 + rng() % (pool.size() - 1)].first;
  consts << "%flat: int64[1] = const[-1]\n";
  body << "%view: float32[?] = Reshape(%" << viewed << ", %flat)\n";
  std::ostringstream text;
  text << "graph main(%x: float32[batch,8], %c: bool[]) {\n" << consts.str() << body.str() << "return %view";
  for (const auto& o : outs) text << ", %" << o;
  text << "\n}\n";
  return {text.str(), 8};
}

std::string write_model(const std::string& text, const std::string& name) {
  return cputest::write_model_file(*parse_graph_text(text), name);
}

NamedTensors feeds(int batch, bool cond, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  Tensor x(DType::kFloat32, {batch, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = u(rng);
  Tensor c(DType::kBool, {});
  c.data<bool>()[0] = cond;
  return {{"x", x}, {"c", c}};
}

void expect_same(const NamedTensors& got, const NamedTensors& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].first, want[i].first) << what;
    ASSERT_EQ(got[i].second.shape(), want[i].second.shape()) << what << " " << got[i].first;
    ASSERT_EQ(std::memcmp(got[i].second.raw(), want[i].second.raw(), want[i].second.nbytes()), 0)
        << what << ": output " << got[i].first << " differs from the unplanned run";
  }
}

NamedTensors deep_copy(const NamedTensors& t) {
  NamedTensors c;
  for (const auto& [n, v] : t) c.emplace_back(n, v.clone());
  return c;
}

struct Totals {
  size_t inplace = 0, plans = 0, hits = 0, copied = 0;
  uint64_t planned = 0, naive = 0;
};

// Runs `path` planned and unplanned over a schedule of (batch, cond) inputs
// that records, replays, switches shapes and branches, and comes back.
void check_model(const std::string& path, int fusion, Totals& totals, const std::string& what) {
  EngineOptions on, off;
  on.fusion_level = off.fusion_level = fusion;
  off.plan_memory = false;
  auto planned = Engine::load(path, on);
  auto plain = Engine::load(path, off);
  auto session = planned->create_session();
  auto reference = plain->create_session();
  EXPECT_EQ(SessionDebug::last_plan(*session), nullptr);
  const std::vector<std::pair<int, bool>> schedule = {{3, false}, {3, true}, {3, false}, {5, true},
                                                      {5, false}, {1, true}, {3, true}};
  std::set<int> seen;
  std::vector<std::pair<NamedTensors, NamedTensors>> kept;  // earlier results must stay intact
  for (size_t k = 0; k < schedule.size(); ++k) {
    const auto [batch, cond] = schedule[k];
    const std::string step = what + " step " + std::to_string(k) + " (batch " + std::to_string(batch) +
                             (cond ? ", then" : ", else") + ")";
    const NamedTensors in = feeds(batch, cond, unsigned(k));
    const NamedTensors want = reference->run(in);
    const NamedTensors got = session->run(in);
    expect_same(got, want, step);
    const ArenaPlan* plan = SessionDebug::last_plan(*session);
    ASSERT_NE(plan, nullptr);
    ASSERT_EQ(check_plan(plan->buffers, plan->memory), "") << step;
    EXPECT_LE(plan->memory.arena_bytes, plan->memory.naive_bytes) << step;
    EXPECT_GE(plan->memory.arena_bytes, plan->memory.lower_bound_bytes) << step;
    const MemoryReport r = session->memory_report();
    EXPECT_EQ(r.planned_bytes, plan->memory.arena_bytes);
    EXPECT_EQ(r.inplace_reuses, plan->inplace_reuses);
    if (!seen.insert(batch).second) {  // a replay: every planned value got its slot
      EXPECT_EQ(SessionDebug::last_fallbacks(*session), 0u) << step;
      // In place where input 0 sits in its slot (not after an If branch that
      // returned fresh storage instead of the recorded outer value).
      EXPECT_LE(SessionDebug::last_inplace_hits(*session), plan->inplace_reuses) << step;
      totals.hits += SessionDebug::last_inplace_hits(*session);
      totals.copied += SessionDebug::last_copied_views(*session);
    } else {
      totals.inplace += plan->inplace_reuses;
      totals.plans += 1;
      totals.planned += plan->memory.arena_bytes;
      totals.naive += plan->memory.naive_bytes;
    }
    kept.emplace_back(got, deep_copy(got));
  }
  EXPECT_EQ(SessionDebug::cached_plans(*session), 3u);
  for (size_t k = 0; k < kept.size(); ++k) expect_same(kept[k].first, kept[k].second, what + " kept result " + std::to_string(k));
}

TEST(ArenaOnGraphs, RandomDagsMatchUnplannedRunsAndPassCheckPlan) {
  Totals totals;
  for (unsigned seed = 1; seed <= 24; ++seed) {
    const RandomDag dag = random_dag(seed, 12 + int(seed % 5) * 6);
    const std::string path = write_model(dag.text, "arena_dag" + std::to_string(seed));
    SCOPED_TRACE(dag.text);
    check_model(path, seed % 3 == 0 ? 2 : 0, totals, "dag " + std::to_string(seed));
    std::filesystem::remove(path);
    if (HasFatalFailure()) return;
  }
  // The graphs exercise what they are meant to.
  EXPECT_GT(totals.inplace, 20u);
  EXPECT_GT(totals.hits, 20u);
  EXPECT_LT(totals.planned, totals.naive);
  EXPECT_EQ(totals.copied, 0u) << "every view was recorded: nothing to copy out";
}

TEST(ArenaOnGraphs, IfBranchReturningAnOuterValueKeepsItAlive) {
  // Recorded with the else branch (fresh storage), replayed with the then
  // branch, which returns %a itself: %a's buffer must outlive %o, which is
  // read after several other buffers were written.
  const std::string text = R"(graph main(%x: float32[batch,8], %c: bool[]) {
  %a: float32[batch,8] = Sigmoid(%x)
  %o: float32[batch,8] = If<then_branch=graph t() { return %a }, else_branch=graph e() {
    %k: float32[1] = const[2]
    %s: float32[batch,8] = Mul(%a, %k)
    return %s
  }>(%c)
  %p: float32[batch,8] = Neg(%x)
  %q: float32[batch,8] = Tanh(%p)
  %r: float32[batch,8] = Relu(%q)
  %flat: int64[1] = const[-1]
  %v: float32[?] = Reshape(%o, %flat)
  %w: float32[?] = Neg(%v)
  %y: float32[batch,8] = Add(%r, %x)
  return %w, %y
})";
  const std::string path = write_model(text, "arena_if");
  Totals totals;
  check_model(path, 0, totals, "if");
  std::filesystem::remove(path);
}

TEST(ArenaOnGraphs, AliasingThePlanDidNotRecordIsCopiedOut) {
  // Dropout in training mode (%c true) writes fresh storage; in inference mode
  // it returns its input's storage. Recorded one way and replayed the other,
  // %d would view %a's slot, which the plan gives to %p once %a is dead.
  const std::string text = R"(graph main(%x: float32[batch,8], %c: bool[]) {
  %a: float32[batch,8] = Sigmoid(%x)
  %ratio: float32[] = const[0.5]
  %d: float32[batch,8] = Dropout<seed=7>(%a, %ratio, %c)
  %p: float32[batch,8] = Neg(%x)
  %q: float32[batch,8] = Tanh(%p)
  %r: float32[batch,8] = Mul(%q, %q)
  %y: float32[batch,8] = Add(%d, %r)
  return %y
})";
  const std::string path = write_model(text, "arena_dropout");
  Totals totals;
  check_model(path, 0, totals, "dropout");
  std::filesystem::remove(path);
  EXPECT_GT(totals.copied, 0u);
}

TEST(ArenaOnGraphs, GraphOutputThatViewsAnIntermediateIsNotOverwritten) {
  const std::string text = R"(graph main(%x: float32[batch,8], %c: bool[]) {
  %a: float32[batch,8] = Relu(%x)
  %flat: int64[1] = const[-1]
  %v: float32[?] = Reshape(%a, %flat)
  %b: float32[batch,8] = Sigmoid(%a)
  %d: float32[batch,8] = Tanh(%b)
  %e: float32[batch,8] = Neg(%d)
  return %v, %e
})";
  const std::string path = write_model(text, "arena_view");
  Totals totals;
  check_model(path, 0, totals, "view");
  std::filesystem::remove(path);
  // %a escapes through its view (so %b may not overwrite it), %e is a graph
  // output: only %d runs in place, over %b.
  EXPECT_EQ(totals.inplace, totals.plans);
  EXPECT_EQ(totals.hits, 4u);  // 4 replays
}

NamedTensors vector_input(const std::vector<float>& v) {
  Tensor x(DType::kFloat32, {int64_t(v.size())});
  std::copy(v.begin(), v.end(), x.data<float>());
  return {{"x", x}};
}

// Runs `text` planned and unplanned on each input; returns the fallbacks seen.
size_t check_data_dependent(const std::string& text, const std::string& name,
                            const std::vector<std::vector<float>>& inputs) {
  const std::string path = write_model(text, name);
  EngineOptions off;
  off.plan_memory = false;
  off.fusion_level = 0;
  EngineOptions on = off;
  on.plan_memory = true;
  auto planned = Engine::load(path, on)->create_session();
  auto plain = Engine::load(path, off)->create_session();
  size_t fallbacks = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const NamedTensors in = vector_input(inputs[k]);
    expect_same(planned->run(in), plain->run(in), name + " input " + std::to_string(k));
    const ArenaPlan* plan = SessionDebug::last_plan(*planned);
    EXPECT_EQ(check_plan(plan->buffers, plan->memory), "");
    if (k) fallbacks += SessionDebug::last_fallbacks(*planned);
  }
  std::filesystem::remove(path);
  return fallbacks;
}

TEST(ArenaOnGraphs, DataDependentSizesFallBackToFreshStorage) {
  // NonZero's size depends on the data, not on the input shape: a replay with
  // more nonzeros than the recording must not write past its planned slot.
  const std::string text = R"(graph main(%x: float32[8]) {
  %z: float32[] = const[0]
  %g: bool[8] = Greater(%x, %z)
  %nz: int64[1,?] = NonZero(%g)
  %f: float32[1,?] = Cast<to=1>(%nz)
  %h: float32[1,?] = Neg(%f)
  %s: float32[1,?] = Sigmoid(%h)
  %t: float32[1,?] = Add(%s, %s)
  %y: float32[] = ReduceSum<keepdims=0>(%t)
  %u: float32[8] = Relu(%x)
  %y2: float32[8] = Add(%u, %x)
  return %y, %y2
})";
  auto positives = [](int n) {
    std::vector<float> x(8);
    for (int i = 0; i < 8; ++i) x[size_t(i)] = i < n ? 1.5f + float(i) : -1.0f - float(i);
    return x;
  };
  EXPECT_GT(check_data_dependent(text, "arena_nz", {positives(2), positives(7), positives(0), positives(8), positives(3)}), 0u)
      << "more nonzeros than recorded should fall back";
}

TEST(ArenaOnGraphs, InPlaceNeedsInputZeroToFillTheOutput) {
  // Recorded with 2 positives and 1 negative: %s = Add(%h1 [1,2], %h2 [1,1])
  // runs in place over %h1. Replayed with 1 positive and 2 negatives, %h1 is
  // [1,1] and broadcasts: writing %s over it would clobber what later
  // elements read, so %s must get other storage.
  const std::string text = R"(graph main(%x: float32[8]) {
  %z: float32[] = const[0]
  %g1: bool[8] = Greater(%x, %z)
  %n1: int64[1,?] = NonZero(%g1)
  %f1: float32[1,?] = Cast<to=1>(%n1)
  %h1: float32[1,?] = Neg(%f1)
  %g2: bool[8] = Less(%x, %z)
  %n2: int64[1,?] = NonZero(%g2)
  %f2: float32[1,?] = Cast<to=1>(%n2)
  %h2: float32[1,?] = Exp(%f2)
  %s: float32[1,?] = Add(%h1, %h2)
  %t: float32[1,?] = Mul(%s, %s)
  return %t
})";
  check_data_dependent(text, "arena_bcast", {{0, 3, 0, 5, -1, 0, 0, 0}, {0, 0, 4, 0, -1, -2, 0, 0},
                                             {0, 3, 0, 5, -1, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 7, -1}});
}

}  // namespace
