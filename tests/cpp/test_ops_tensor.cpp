// Reference kernels and shape inference of the tensor family (shape and data
// movement ops), against hand-computed values or independent loops.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "ir/dtype_dispatch.h"
#include "ir/graph.h"
#include "ir/op_registry.h"

using namespace deepep;

namespace {

template <class T>
Tensor mk(DType dt, Shape shape, std::vector<T> v) {
  Tensor t(dt, shape);
  EXPECT_EQ(int64_t(v.size()), t.numel());
  for (size_t i = 0; i < v.size(); ++i) t.data<T>()[i] = v[i];
  return t;
}
Tensor f32(Shape s, std::vector<float> v) { return mk<float>(DType::kFloat32, s, v); }
Tensor i64(Shape s, std::vector<int64_t> v) { return mk<int64_t>(DType::kInt64, s, v); }
Tensor i64v(std::vector<int64_t> v) { return i64({int64_t(v.size())}, v); }
Tensor i64s(int64_t v) { return i64({}, {v}); }
// 0, 1, 2, ... as float32.
Tensor iota_f(Shape s) {
  Tensor t(DType::kFloat32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float(i);
  return t;
}
template <class T = float>
std::vector<T> vals(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

Attribute ai(int64_t v) { Attribute a; a.kind = Attribute::Kind::kInt; a.i = v; return a; }
Attribute af(float v) { Attribute a; a.kind = Attribute::Kind::kFloat; a.f = v; return a; }
Attribute ais(std::vector<int64_t> v) { Attribute a; a.kind = Attribute::Kind::kInts; a.ints = v; return a; }
Attribute as(std::string v) { Attribute a; a.kind = Attribute::Kind::kString; a.s = v; return a; }
Attribute at(Tensor t) { Attribute a; a.kind = Attribute::Kind::kTensor; a.t = t; return a; }

struct Run {
  Node node;
  std::vector<Tensor> out;
};

// Runs op's reference kernel; absent optional inputs are undefined Tensors.
std::vector<Tensor> run(const std::string& op, const std::vector<Tensor>& in,
                        AttrMap attrs = {}, int n_out = 1, int opset = 18) {
  Node n;
  n.op_type = op;
  n.name = "t";
  n.opset = opset;
  n.attrs = std::move(attrs);
  const OpDef* def = find_op(op);
  EXPECT_NE(def, nullptr) << op;
  KernelContext ctx{n, {}, {}};
  for (const Tensor& t : in) ctx.inputs.push_back(t.defined() ? &t : nullptr);
  ctx.outputs.resize(size_t(n_out));
  def->reference(ctx);
  return ctx.outputs;
}
Tensor run1(const std::string& op, const std::vector<Tensor>& in,
            AttrMap attrs = {}, int opset = 18) {
  return run(op, in, std::move(attrs), 1, opset)[0];
}

// Shape inference on values with the given symbolic shapes; `data` marks constants.
struct InferIn {
  DType dt;
  SymShape shape;
  std::optional<Tensor> data;
};
std::vector<InferContext::Out> infer(const std::string& op, std::vector<InferIn> in,
                                     AttrMap attrs = {}, int n_out = 1,
                                     int opset = 18) {
  Node n;
  n.op_type = op;
  n.opset = opset;
  n.attrs = std::move(attrs);
  std::vector<Value> vs(in.size());
  InferContext ctx{n, {}, {}};
  for (size_t i = 0; i < in.size(); ++i) {
    vs[i].dtype = in[i].dt;
    vs[i].shape = in[i].shape;
    vs[i].data = in[i].data;
    ctx.inputs.push_back(&vs[i]);
  }
  ctx.outputs.resize(size_t(n_out));
  find_op(op)->infer(ctx);
  return ctx.outputs;
}
InferIn cin(Tensor t) { return {t.dtype(), to_sym_shape(t.shape()), t}; }
SymShape sym(std::initializer_list<Dim> d) { return SymShape(d); }
Dim S(const char* s) { return Dim::sym(s); }
Dim K(int64_t v) { return Dim::known(v); }

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

}  // namespace

TEST(TensorOps, ReshapeZeroMinusOneAllowzero) {
  Tensor x = iota_f({2, 3, 5});
  Tensor y = run1("Reshape", {x, i64v({0, -1})});
  EXPECT_EQ(y.shape(), (Shape{2, 15}));
  EXPECT_EQ(vals(y), vals(x));
  EXPECT_EQ(run1("Reshape", {x, i64v({-1, 1, 3})}).shape(), (Shape{10, 1, 3}));
  // allowzero: 0 is a real zero dim.
  Tensor e = run1("Reshape", {f32({0, 3}, {}), i64v({3, 0})}, {{"allowzero", ai(1)}});
  EXPECT_EQ(e.shape(), (Shape{3, 0}));
  EXPECT_THROW(run1("Reshape", {x, i64v({-1, -1})}), Error);
  EXPECT_THROW(run1("Reshape", {x, i64v({4, -1})}), Error);
  EXPECT_THROW(run1("Reshape", {x, i64v({7})}), Error);
}

TEST(TensorOps, ReshapeInferenceIsSymbolic) {
  auto o = infer("Reshape", {{DType::kFloat16, sym({S("b"), S("s"), K(64)}), {}}, cin(i64v({0, 0, 8, -1}))});
  EXPECT_EQ(o[0].dtype, DType::kFloat16);
  EXPECT_EQ(*o[0].shape, sym({S("b"), S("s"), K(8), K(8)}));
  // [b, 6] -> [3, -1]: -1 = 2b is not expressible.
  o = infer("Reshape", {{DType::kFloat32, sym({S("b"), K(6)}), {}}, cin(i64v({3, -1}))});
  EXPECT_EQ(*o[0].shape, sym({K(3), Dim{}}));
  // [b, 2, 3] -> [6, -1] keeps b.
  o = infer("Reshape", {{DType::kFloat32, sym({S("b"), K(2), K(3)}), {}}, cin(i64v({6, -1}))});
  EXPECT_EQ(*o[0].shape, sym({K(6), S("b")}));
  // Non-constant shape of static length 3: rank only.
  o = infer("Reshape", {{DType::kFloat32, sym({S("b")}), {}}, {DType::kInt64, sym({K(3)}), {}}});
  EXPECT_EQ(o[0].shape->size(), 3u);
}

TEST(TensorOps, TransposeMatchesLoopsForEveryWidth) {
  const Shape s{2, 3, 5};
  for (DType dt : {DType::kFloat32, DType::kInt8, DType::kFloat16, DType::kFloat64, DType::kBool}) {
    Tensor x(dt, s);
    auto* b = static_cast<uint8_t*>(x.raw());
    for (size_t i = 0; i < x.nbytes(); ++i) b[i] = dt == DType::kBool ? uint8_t(i % 2) : uint8_t(i * 7 + 1);
    Tensor y = run1("Transpose", {x}, {{"perm", ais({2, 0, 1})}});
    ASSERT_EQ(y.shape(), (Shape{5, 2, 3}));
    const size_t es = dtype_size(dt);
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t k = 0; k < 5; ++k)
          EXPECT_EQ(0, std::memcmp(static_cast<const uint8_t*>(y.raw()) + ((k * 2 + i) * 3 + j) * es,
                                   b + ((i * 3 + j) * 5 + k) * es, es));
  }
  Tensor d = run1("Transpose", {iota_f({2, 3})});  // default perm reverses
  EXPECT_EQ(d.shape(), (Shape{3, 2}));
  EXPECT_EQ(vals(d), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_THROW(run1("Transpose", {iota_f({2, 3})}, {{"perm", ais({0, 0})}}), Error);
}

TEST(TensorOps, ConcatAndInference) {
  Tensor a = mk<int8_t>(DType::kInt8, {2, 1}, {1, 2});
  Tensor b = mk<int8_t>(DType::kInt8, {2, 3}, {3, 4, 5, 6, 7, 8});
  Tensor e = mk<int8_t>(DType::kInt8, {2, 0}, {});
  Tensor y = run1("Concat", {a, e, b}, {{"axis", ai(-1)}});
  EXPECT_EQ(y.shape(), (Shape{2, 4}));
  EXPECT_EQ(vals<int8_t>(y), (std::vector<int8_t>{1, 3, 4, 5, 2, 6, 7, 8}));
  EXPECT_THROW(run1("Concat", {a, iota_f({3, 1})}, {{"axis", ai(1)}}), Error);
  EXPECT_THROW(run1("Concat", {a, mk<int8_t>(DType::kInt8, {3, 1}, {0, 0, 0})}, {{"axis", ai(1)}}), Error);
  auto o = infer("Concat", {{DType::kFloat32, sym({S("b"), K(3)}), {}}, {DType::kFloat32, sym({Dim{}, K(5)}), {}}},
                 {{"axis", ai(1)}});
  EXPECT_EQ(*o[0].shape, sym({S("b"), K(8)}));
  o = infer("Concat", {{DType::kFloat32, sym({S("b"), K(3)}), {}}, {DType::kFloat32, sym({K(0), K(3)}), {}}},
            {{"axis", ai(0)}});
  EXPECT_EQ(*o[0].shape, sym({S("b"), K(3)}));
}

TEST(TensorOps, SplitFormsAcrossOpsets) {
  Tensor x = iota_f({7, 2});
  auto p = run("Split", {x}, {{"num_outputs", ai(3)}}, 3, 18);  // ceil(7/3) = 3: 3, 3, 1
  EXPECT_EQ(p[0].shape(), (Shape{3, 2}));
  EXPECT_EQ(p[2].shape(), (Shape{1, 2}));
  EXPECT_EQ(vals(p[2]), (std::vector<float>{12, 13}));
  p = run("Split", {x, i64v({2, 0, 5})}, {}, 3, 13);
  EXPECT_EQ(p[1].shape(), (Shape{0, 2}));
  EXPECT_EQ(vals(p[2])[0], 4.f);
  p = run("Split", {x}, {{"split", ais({1, 1})}, {"axis", ai(1)}}, 2, 11);
  EXPECT_EQ(vals(p[1]), (std::vector<float>{1, 3, 5, 7, 9, 11, 13}));
  EXPECT_THROW(run("Split", {x, i64v({3, 3})}, {}, 2, 13), Error);
  EXPECT_THROW(run("Split", {x}, {}, 2, 13), Error);  // 7 is not divisible by 2
  auto o = infer("Split", {{DType::kFloat32, sym({S("b"), K(7)}), {}}}, {{"axis", ai(1)}, {"num_outputs", ai(2)}}, 2);
  EXPECT_EQ(*o[0].shape, sym({S("b"), K(4)}));
  EXPECT_EQ(*o[1].shape, sym({S("b"), K(3)}));
}

TEST(TensorOps, SliceClampsAndStepsBackwards) {
  Tensor x = iota_f({5});
  auto sl = [&](std::vector<int64_t> s, std::vector<int64_t> e, std::vector<int64_t> st) {
    return vals(run1("Slice", {x, i64v(s), i64v(e), i64v({0}), i64v(st)}));
  };
  EXPECT_EQ(sl({-1}, {kMin}, {-1}), (std::vector<float>{4, 3, 2, 1, 0}));
  EXPECT_EQ(sl({kMax}, {0}, {-2}), (std::vector<float>{4, 2}));
  EXPECT_EQ(sl({-100}, {100}, {3}), (std::vector<float>{0, 3}));
  EXPECT_EQ(sl({3}, {1}, {1}), (std::vector<float>{}));
  EXPECT_EQ(sl({1}, {kMax}, {kMax}), (std::vector<float>{1}));
  EXPECT_EQ(sl({4}, {kMin}, {kMin}), (std::vector<float>{4}));
  Tensor m = iota_f({3, 4});
  Tensor y = run1("Slice", {m, i64v({0, -1}), i64v({kMax, 0}), i64v({-2, 1}), i64v({2, -2})});
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_EQ(vals(y), (std::vector<float>{3, 1, 11, 9}));
  // opset < 10: attributes, no steps.
  y = run1("Slice", {m}, {{"starts", ais({1})}, {"ends", ais({kMax})}, {"axes", ais({1})}}, 9);
  EXPECT_EQ(y.shape(), (Shape{3, 3}));
  EXPECT_THROW(run1("Slice", {x, i64v({0}), i64v({2}), i64v({0}), i64v({0})}), Error);
  EXPECT_THROW(run1("Slice", {x, i64v({0}), i64v({2}), i64v({1})}), Error);
  auto o = infer("Slice", {{DType::kFloat32, sym({S("b"), K(10)}), {}}, cin(i64v({0, 2})), cin(i64v({kMax, -1})),
                           cin(i64v({0, 1})), cin(i64v({1, 3}))});
  EXPECT_EQ(*o[0].shape, sym({S("b"), K(3)}));
}

TEST(TensorOps, GatherFamily) {
  Tensor x = iota_f({3, 4});
  Tensor y = run1("Gather", {x, i64({2, 2}, {-1, 0, 3, 1})}, {{"axis", ai(1)}});
  EXPECT_EQ(y.shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(vals(y), (std::vector<float>{3, 0, 3, 1, 7, 4, 7, 5, 11, 8, 11, 9}));
  EXPECT_EQ(run1("Gather", {x, i64s(-1)}).shape(), (Shape{4}));
  EXPECT_EQ(run1("Gather", {x, i64({0}, {})}, {{"axis", ai(1)}}).shape(), (Shape{3, 0}));
  EXPECT_THROW(run1("Gather", {x, i64v({3})}), Error);
  EXPECT_THROW(run1("Gather", {x, i64v({-4})}), Error);
  // GatherElements along axis 0, int32 indices.
  Tensor ge = run1("GatherElements", {x, mk<int32_t>(DType::kInt32, {2, 3}, {2, 0, -1, 1, 1, 0})});
  EXPECT_EQ(vals(ge), (std::vector<float>{8, 1, 10, 4, 5, 2}));
  EXPECT_THROW(run1("GatherElements", {x, i64({1, 1}, {3})}), Error);
  // GatherND with batch_dims = 1: per batch, pick rows.
  Tensor d = iota_f({2, 3, 2});
  Tensor g = run1("GatherND", {d, i64({2, 2, 1}, {2, 0, 1, -1})}, {{"batch_dims", ai(1)}});
  EXPECT_EQ(g.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(vals(g), (std::vector<float>{4, 5, 0, 1, 8, 9, 10, 11}));
  Tensor g0 = run1("GatherND", {d, i64({2, 3}, {1, 2, 1, 0, 0, 0})});
  EXPECT_EQ(vals(g0), (std::vector<float>{11, 0}));
  EXPECT_THROW(run1("GatherND", {d, i64({1, 2}, {2, 0})}), Error);
}

TEST(TensorOps, ScatterReductions) {
  Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor idx = i64({2, 2}, {0, 0, -1, 1});
  Tensor upd = f32({2, 2}, {10, 20, 30, 40});
  EXPECT_EQ(vals(run1("ScatterElements", {x, idx, upd}, {{"axis", ai(1)}})),
            (std::vector<float>{20, 2, 3, 4, 40, 30}));  // duplicates: last wins
  EXPECT_EQ(vals(run1("ScatterElements", {x, idx, upd}, {{"axis", ai(1)}, {"reduction", as("add")}})),
            (std::vector<float>{31, 2, 3, 4, 45, 36}));
  EXPECT_EQ(vals(run1("ScatterElements", {x, idx, upd}, {{"axis", ai(1)}, {"reduction", as("min")}})),
            (std::vector<float>{1, 2, 3, 4, 5, 6}));
  Tensor s = run1("Scatter", {x, i64({1, 2}, {1, 0}), f32({1, 2}, {7, 8})}, {}, 9);
  EXPECT_EQ(vals(s), (std::vector<float>{1, 8, 3, 7, 5, 6}));
  EXPECT_THROW(run1("ScatterElements", {x, i64({1, 1}, {3}), f32({1, 1}, {0})}, {{"axis", ai(1)}}), Error);
  // ScatterND: rows, with mul and duplicates.
  Tensor n = run1("ScatterND", {x, i64({2, 1}, {1, -1}), f32({2, 3}, {2, 2, 2, 3, 3, 3})}, {{"reduction", as("mul")}});
  EXPECT_EQ(vals(n), (std::vector<float>{1, 2, 3, 24, 30, 36}));
  Tensor bx = mk<bool>(DType::kBool, {3}, {false, false, true});
  Tensor bn = run1("ScatterND", {bx, i64({1, 1}, {0}), mk<bool>(DType::kBool, {1}, {true})});
  EXPECT_EQ(vals<bool>(bn), (std::vector<bool>{true, false, true}));
  EXPECT_THROW(run1("ScatterND", {x, i64({1, 2}, {0, 3}), f32({1}, {0})}), Error);
  EXPECT_THROW(run1("ScatterND", {x, i64({1, 1}, {0}), f32({2}, {0, 0})}), Error);
}

TEST(TensorOps, ExpandAndTile) {
  Tensor x = f32({3, 1}, {1, 2, 3});
  Tensor y = run1("Expand", {x, i64v({2, 1, 2})});
  EXPECT_EQ(y.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(vals(y), (std::vector<float>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}));
  EXPECT_EQ(run1("Expand", {x, i64v({1})}).shape(), (Shape{3, 1}));
  EXPECT_THROW(run1("Expand", {x, i64v({2, 2})}), Error);
  auto o = infer("Expand", {{DType::kFloat32, sym({S("n"), K(1)}), {}}, cin(i64v({1, 4}))});
  EXPECT_EQ(*o[0].shape, sym({S("n"), K(4)}));
  Tensor t = mk<uint16_t>(DType::kUInt16, {2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor ty = run1("Tile", {t, i64v({2, 2})});
  EXPECT_EQ(ty.shape(), (Shape{4, 6}));
  std::vector<uint16_t> want;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 6; ++j) want.push_back(uint16_t((i % 2) * 3 + j % 3 + 1));
  EXPECT_EQ(vals<uint16_t>(ty), want);
  EXPECT_EQ(run1("Tile", {t, i64v({0, 5})}).shape(), (Shape{0, 15}));
  EXPECT_THROW(run1("Tile", {t, i64v({2})}), Error);
}

TEST(TensorOps, SqueezeUnsqueezeFlattenAcrossOpsets) {
  Tensor x = iota_f({1, 3, 1});
  EXPECT_EQ(run1("Squeeze", {x}, {}, 13).shape(), (Shape{3}));
  EXPECT_EQ(run1("Squeeze", {x, i64v({-1})}, {}, 13).shape(), (Shape{1, 3}));
  EXPECT_EQ(run1("Squeeze", {x}, {{"axes", ais({0})}}, 11).shape(), (Shape{3, 1}));
  EXPECT_THROW(run1("Squeeze", {x, i64v({1})}, {}, 13), Error);
  EXPECT_EQ(run1("Unsqueeze", {x, i64v({-1, 0})}, {}, 13).shape(), (Shape{1, 1, 3, 1, 1}));
  EXPECT_EQ(run1("Unsqueeze", {x}, {{"axes", ais({2})}}, 11).shape(), (Shape{1, 3, 1, 1}));
  EXPECT_THROW(run1("Unsqueeze", {x, i64v({5})}, {}, 13), Error);
  EXPECT_THROW(run1("Unsqueeze", {x, i64v({1, 1})}, {}, 13), Error);
  Tensor f = iota_f({2, 3, 5});
  EXPECT_EQ(run1("Flatten", {f}, {{"axis", ai(0)}}).shape(), (Shape{1, 30}));
  EXPECT_EQ(run1("Flatten", {f}, {{"axis", ai(-1)}}).shape(), (Shape{6, 5}));
  EXPECT_THROW(run1("Flatten", {f}, {{"axis", ai(4)}}), Error);
  auto o = infer("Unsqueeze", {{DType::kInt32, sym({S("b"), K(3)}), {}}, cin(i64v({1}))}, {}, 1, 13);
  EXPECT_EQ(*o[0].shape, sym({S("b"), K(1), K(3)}));
}

TEST(TensorOps, ViewsDoNotAliasUnownedBuffers) {
  float buf[4] = {1, 2, 3, 4};
  Tensor w = Tensor::wrap(DType::kFloat32, {4}, buf, nullptr);
  Tensor y = run1("Identity", {w});
  EXPECT_NE(y.raw(), static_cast<void*>(buf));
  EXPECT_EQ(vals(y), (std::vector<float>{1, 2, 3, 4}));
  Tensor own = iota_f({4});
  EXPECT_EQ(run1("Reshape", {own, i64v({2, 2})}).raw(), own.raw());
}

TEST(TensorOps, ShapeSizeConstantOfShapeRange) {
  Tensor x = iota_f({2, 3, 5});
  EXPECT_EQ(vals<int64_t>(run1("Shape", {x})), (std::vector<int64_t>{2, 3, 5}));
  EXPECT_EQ(vals<int64_t>(run1("Shape", {x}, {{"start", ai(-2)}})), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(vals<int64_t>(run1("Shape", {x}, {{"start", ai(1)}, {"end", ai(-1)}})), (std::vector<int64_t>{3}));
  EXPECT_EQ(run1("Shape", {x}, {{"start", ai(2)}, {"end", ai(1)}}).numel(), 0);
  EXPECT_EQ(vals<int64_t>(run1("Shape", {x}, {{"start", ai(-10)}, {"end", ai(10)}})).size(), 3u);
  Tensor sz = run1("Size", {x});
  EXPECT_EQ(sz.rank(), 0);
  EXPECT_EQ(vals<int64_t>(sz)[0], 30);
  auto o = infer("Shape", {{DType::kFloat32, sym({S("b"), Dim{}, K(4)}), {}}}, {{"start", ai(1)}});
  EXPECT_EQ(o[0].dtype, DType::kInt64);
  EXPECT_EQ(*o[0].shape, sym({K(2)}));

  Tensor c = run1("ConstantOfShape", {i64v({2, 3})}, {{"value", at(mk<int32_t>(DType::kInt32, {1}, {7}))}});
  EXPECT_EQ(c.dtype(), DType::kInt32);
  EXPECT_EQ(vals<int32_t>(c), std::vector<int32_t>(6, 7));
  Tensor z = run1("ConstantOfShape", {i64v({})});
  EXPECT_EQ(z.rank(), 0);
  EXPECT_EQ(vals(z), (std::vector<float>{0}));
  EXPECT_THROW(run1("ConstantOfShape", {i64v({-1})}), Error);

  auto i32 = [](int32_t v) { return mk<int32_t>(DType::kInt32, {}, {v}); };
  EXPECT_EQ(vals<int32_t>(run1("Range", {i32(10), i32(-1), i32(-4)})), (std::vector<int32_t>{10, 6, 2}));
  EXPECT_EQ(run1("Range", {i32(1), i32(1), i32(1)}).numel(), 0);
  Tensor r = run1("Range", {f32({}, {0.5f}), f32({}, {2.0f}), f32({}, {0.4f})});
  ASSERT_EQ(r.numel(), 4);
  EXPECT_NEAR(vals(r)[3], 1.7f, 1e-6);
  EXPECT_THROW(run1("Range", {i32(0), i32(3), i32(0)}), Error);
  o = infer("Range", {cin(i64s(0)), cin(i64s(10)), cin(i64s(3))});
  EXPECT_EQ(*o[0].shape, sym({K(4)}));
}

TEST(TensorOps, OneHotNonZeroTriluCompress) {
  // OneHot, axis 0, depth 3: -1 wraps to 2; 3 is out of range (all off).
  Tensor oh = run1("OneHot", {i64v({0, -1, 3}), i64s(3), f32({2}, {-1, 5})}, {{"axis", ai(0)}});
  EXPECT_EQ(oh.shape(), (Shape{3, 3}));
  EXPECT_EQ(vals(oh), (std::vector<float>{5, -1, -1, -1, -1, -1, -1, 5, -1}));
  EXPECT_THROW(run1("OneHot", {i64v({0}), i64s(3), f32({3}, {0, 1, 2})}), Error);

  Tensor nz = run1("NonZero", {f32({2, 3}, {0, 1, -0.f, 2, 0, 3})});
  EXPECT_EQ(nz.shape(), (Shape{2, 3}));
  EXPECT_EQ(vals<int64_t>(nz), (std::vector<int64_t>{0, 1, 1, 1, 0, 2}));
  EXPECT_EQ(run1("NonZero", {f32({0, 2}, {})}).shape(), (Shape{2, 0}));

  Tensor m = iota_f({3, 4});
  EXPECT_EQ(vals(run1("Trilu", {m, i64s(1)})), (std::vector<float>{0, 1, 2, 3, 0, 0, 6, 7, 0, 0, 0, 11}));
  EXPECT_EQ(vals(run1("Trilu", {m, i64s(-1)}, {{"upper", ai(0)}})),
            (std::vector<float>{0, 0, 0, 0, 4, 0, 0, 0, 8, 9, 0, 0}));
  EXPECT_THROW(run1("Trilu", {iota_f({3})}), Error);

  Tensor cond = mk<bool>(DType::kBool, {2}, {false, true});
  Tensor c1 = run1("Compress", {m, cond}, {{"axis", ai(1)}});
  EXPECT_EQ(c1.shape(), (Shape{3, 1}));
  EXPECT_EQ(vals(c1), (std::vector<float>{1, 5, 9}));
  EXPECT_EQ(vals(run1("Compress", {m, mk<bool>(DType::kBool, {3}, {true, false, true})})),
            (std::vector<float>{0, 2}));
  EXPECT_THROW(run1("Compress", {m, mk<bool>(DType::kBool, {4}, {0, 0, 0, 1})}, {{"axis", ai(0)}}), Error);
}

TEST(TensorOps, ReverseSequenceUniqueEyeLike) {
  Tensor x = iota_f({3, 4});  // batch 3 x time 4
  Tensor r = run1("ReverseSequence", {x, i64v({1, 4, 2})}, {{"time_axis", ai(1)}, {"batch_axis", ai(0)}});
  EXPECT_EQ(vals(r), (std::vector<float>{0, 1, 2, 3, 7, 6, 5, 4, 9, 8, 10, 11}));
  EXPECT_THROW(run1("ReverseSequence", {x, i64v({1, 5, 2})}, {{"time_axis", ai(1)}, {"batch_axis", ai(0)}}), Error);

  Tensor u = f32({6}, {2, 1, 1, 3, 4, 3});
  auto s = run("Unique", {u}, {}, 4);
  EXPECT_EQ(vals(s[0]), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(vals<int64_t>(s[1]), (std::vector<int64_t>{1, 0, 3, 4}));
  EXPECT_EQ(vals<int64_t>(s[2]), (std::vector<int64_t>{1, 0, 0, 2, 3, 2}));
  EXPECT_EQ(vals<int64_t>(s[3]), (std::vector<int64_t>{2, 1, 2, 1}));
  s = run("Unique", {u}, {{"sorted", ai(0)}}, 4);
  EXPECT_EQ(vals(s[0]), (std::vector<float>{2, 1, 3, 4}));
  EXPECT_EQ(vals<int64_t>(s[1]), (std::vector<int64_t>{0, 1, 3, 4}));
  EXPECT_EQ(vals<int64_t>(s[2]), (std::vector<int64_t>{0, 1, 1, 2, 3, 2}));
  EXPECT_EQ(vals<int64_t>(s[3]), (std::vector<int64_t>{1, 2, 2, 1}));
  // Unique columns (axis 1) of [[1, 0, 1], [2, 5, 2]] -> columns (0,5) and (1,2).
  s = run("Unique", {f32({2, 3}, {1, 0, 1, 2, 5, 2})}, {{"axis", ai(-1)}}, 4);
  EXPECT_EQ(s[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(vals(s[0]), (std::vector<float>{0, 1, 5, 2}));
  EXPECT_EQ(vals<int64_t>(s[2]), (std::vector<int64_t>{1, 0, 1}));
  s = run("Unique", {f32({3}, {NAN, 1, NAN})}, {}, 4);
  EXPECT_EQ(s[0].numel(), 2);
  EXPECT_EQ(vals<int64_t>(s[3]), (std::vector<int64_t>{1, 2}));

  Tensor e = run1("EyeLike", {iota_f({3, 4})}, {{"k", ai(1)}, {"dtype", ai(int64_t(DType::kInt32))}});
  EXPECT_EQ(e.dtype(), DType::kInt32);
  EXPECT_EQ(vals<int32_t>(e), (std::vector<int32_t>{0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}));
  EXPECT_THROW(run1("EyeLike", {iota_f({3})}), Error);
}

TEST(TensorOps, DepthSpaceRoundTrip) {
  const int64_t b = 2, n = 1, c = 3, h = 3, w = 5;
  Tensor x = iota_f({n, c * b * b, h, w});
  for (const char* mode : {"DCR", "CRD"}) {
    Tensor y = run1("DepthToSpace", {x}, {{"blocksize", ai(b)}, {"mode", as(mode)}});
    ASSERT_EQ(y.shape(), (Shape{n, c, h * b, w * b}));
    const bool crd = std::string(mode) == "CRD";
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t yy = 0; yy < h * b; ++yy)
        for (int64_t xx = 0; xx < w * b; ++xx) {
          const int64_t bi = yy % b, bj = xx % b;
          const int64_t src_c = crd ? ci * b * b + bi * b + bj : (bi * b + bj) * c + ci;
          EXPECT_EQ(y.data<float>()[(ci * h * b + yy) * w * b + xx],
                    x.data<float>()[(src_c * h + yy / b) * w + xx / b]);
        }
    if (!crd) {
      Tensor back = run1("SpaceToDepth", {y}, {{"blocksize", ai(b)}});
      EXPECT_EQ(vals(back), vals(x));
    }
  }
  EXPECT_THROW(run1("DepthToSpace", {iota_f({1, 3, 2, 2})}, {{"blocksize", ai(2)}}), Error);
  EXPECT_THROW(run1("SpaceToDepth", {iota_f({1, 1, 3, 2})}, {{"blocksize", ai(2)}}), Error);
}

TEST(TensorOps, PadModesAndOpsets) {
  Tensor x = f32({3}, {1, 2, 3});
  auto pad = [&](const char* mode) {
    return vals(run1("Pad", {x, i64v({2, 3}), f32({}, {9})}, {{"mode", as(mode)}}, 19));
  };
  EXPECT_EQ(pad("constant"), (std::vector<float>{9, 9, 1, 2, 3, 9, 9, 9}));
  EXPECT_EQ(pad("reflect"), (std::vector<float>{3, 2, 1, 2, 3, 2, 1, 2}));
  EXPECT_EQ(pad("edge"), (std::vector<float>{1, 1, 1, 2, 3, 3, 3, 3}));
  EXPECT_EQ(pad("wrap"), (std::vector<float>{2, 3, 1, 2, 3, 1, 2, 3}));
  // Negative pads crop; opset-2 attribute form with `value`.
  EXPECT_EQ(vals(run1("Pad", {x, i64v({-1, 1})}, {}, 18)), (std::vector<float>{2, 3, 0}));
  Tensor m = iota_f({2, 2});
  Tensor y = run1("Pad", {m}, {{"pads", ais({0, 1, 1, 0})}, {"value", af(-1)}}, 7);
  EXPECT_EQ(vals(y), (std::vector<float>{-1, 0, 1, -1, 2, 3, -1, -1, -1}));
  // axes input (opset 18): pad only the last axis.
  y = run1("Pad", {m, i64v({1, 0}), Tensor(), i64v({-1})}, {{"mode", as("edge")}}, 18);
  EXPECT_EQ(vals(y), (std::vector<float>{0, 0, 1, 2, 2, 3}));
  Tensor b = run1("Pad", {mk<bool>(DType::kBool, {1}, {true}), i64v({1, 1})}, {}, 18);
  EXPECT_EQ(vals<bool>(b), (std::vector<bool>{false, true, false}));
  EXPECT_THROW(run1("Pad", {x, i64v({1})}, {}, 18), Error);
  EXPECT_THROW(run1("Pad", {x, i64v({-2, -2})}, {}, 18), Error);
  EXPECT_THROW(run1("Pad", {f32({0}, {}), i64v({1, 1})}, {{"mode", as("reflect")}}, 18), Error);
  auto o = infer("Pad", {{DType::kFloat32, sym({S("b"), K(3)}), {}}, cin(i64v({0, 1, 0, 2}))});
  EXPECT_EQ(*o[0].shape, sym({S("b"), K(6)}));
}

TEST(TensorOps, CenterCropPadAndTensorScatter) {
  Tensor x = iota_f({3, 4});
  // Rows 3 -> 2 crops from (3-2)/2 = 0; cols 4 -> 7 pads (7-4)/2 = 1 before.
  Tensor y = run1("CenterCropPad", {x, i64v({2, 7})});
  EXPECT_EQ(y.shape(), (Shape{2, 7}));
  EXPECT_EQ(vals(y), (std::vector<float>{0, 0, 1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 0, 0}));
  y = run1("CenterCropPad", {x, i64v({2})}, {{"axes", ais({-1})}});
  EXPECT_EQ(vals(y), (std::vector<float>{1, 2, 5, 6, 9, 10}));
  EXPECT_THROW(run1("CenterCropPad", {x, i64v({2})}), Error);

  Tensor cache = Tensor::zeros(DType::kFloat32, {2, 4, 1});
  Tensor upd = f32({2, 2, 1}, {1, 2, 3, 4});
  Tensor lin = run1("TensorScatter", {cache, upd, i64v({1, 2})}, {}, 24);
  EXPECT_EQ(vals(lin), (std::vector<float>{0, 1, 2, 0, 0, 0, 3, 4}));
  Tensor circ = run1("TensorScatter", {cache, upd, i64v({3, 0})}, {{"mode", as("circular")}}, 24);
  EXPECT_EQ(vals(circ), (std::vector<float>{2, 0, 0, 1, 3, 4, 0, 0}));
  EXPECT_EQ(vals(run1("TensorScatter", {cache, upd}, {}, 24)), (std::vector<float>{1, 2, 0, 0, 3, 4, 0, 0}));
  EXPECT_THROW(run1("TensorScatter", {cache, upd, i64v({3, 0})}, {}, 24), Error);
}
