#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kNoop = {make_noop_elimination};

// One node `node` (reading %r, writing %y) between a Relu and the output.
std::string around(const std::string& consts, const std::string& node, const std::string& type = "float32[batch,4]") {
  return "graph main(%x: " + type + ") {\n" + consts + "\n  %r: " + type + " = Relu(%x)\n  " + node +
         "\n  return %y\n}\n";
}
// What a removed node leaves: the Relu, now named %y.
std::string removed(const std::string& type = "float32[batch,4]") {
  return "graph main(%x: " + type + ") {\n  %y: " + type + " = Relu(%x)\n  return %y\n}\n";
}
}  // namespace

TEST(NoopElimination, IdentityGoesAndTheOutputKeepsItsName) {
  EXPECT_REWRITE(kNoop, around("", "%y: float32[batch,4] = Identity(%r)"), removed());
  // Identity(Identity(r)) goes in one sweep.
  EXPECT_REWRITE(kNoop, around("", "%i: float32[batch,4] = Identity(%r)  %y: float32[batch,4] = Identity(%i)"),
                 removed());
}

TEST(NoopElimination, IdentityFromAGraphInputToAnOutputStays) {
  // Removing it would need the input renamed to the output: it stays.
  EXPECT_UNCHANGED(kNoop, "graph main(%x: float32[2]) { %y: float32[2] = Identity(%x) return %y }");
}

TEST(NoopElimination, DropoutInInferenceOnlyWhenTheMaskIsUnread) {
  EXPECT_REWRITE(kNoop, around("", "%y: float32[batch,4], _ = Dropout(%r)"), removed());
  EXPECT_REWRITE(kNoop, around("%ratio: float32[] = const[0.5]\n  %train: bool[] = const[false]",
                               "%y: float32[batch,4] = Dropout(%r, %ratio, %train)"),
                 removed());
  // Read mask, or training on: stays.
  EXPECT_UNCHANGED(kNoop, R"(graph main(%x: float32[2]) {
      %r: float32[2] = Relu(%x)
      %y: float32[2], %m: bool[2] = Dropout(%r)
      return %y, %m
    })");
  EXPECT_UNCHANGED(kNoop, around("%ratio: float32[] = const[0.5]\n  %train: bool[] = const[true]",
                                 "%y: float32[batch,4] = Dropout(%r, %ratio, %train)"));
}

TEST(NoopElimination, CastOnlyToTheSameType) {
  EXPECT_REWRITE(kNoop, around("", "%y: float32[batch,4] = Cast<to=1>(%r)"), removed());
  EXPECT_UNCHANGED(kNoop, R"(graph main(%x: float32[2]) {
      %r: float32[2] = Relu(%x)
      %y: float16[2] = Cast<to=10>(%r)
      return %y
    })");
}

TEST(NoopElimination, ReshapeExpandFlattenThatKeepTheShape) {
  const std::string shape = "%s: int64[2] = const[0, 4]";
  EXPECT_REWRITE(kNoop, around(shape, "%y: float32[batch,4] = Reshape(%r, %s)"), removed());
  EXPECT_REWRITE(kNoop, around("%s: int64[2] = const[1, 4]", "%y: float32[batch,4] = Expand(%r, %s)"), removed());
  // Inference left the output unknown, but the target [0, -1] copies both dims.
  EXPECT_REWRITE(kNoop, around("%s: int64[2] = const[0, -1]", "%y: float32[*] = Reshape(%r, %s)"),
                 R"(graph main(%x: float32[batch,4]) {
                      %y: float32[batch,4] = Relu(%x)
                      return %y
                    })");
  EXPECT_REWRITE(kNoop, around("", "%y: float32[3,4] = Flatten<axis=1>(%r)", "float32[3,4]"), removed("float32[3,4]"));
  // [?,4] -> [-1,4]: all other dims match, so -1 is the unknown one.
  EXPECT_REWRITE(kNoop, around("%s: int64[2] = const[-1, 4]", "%y: float32[?,4] = Reshape(%r, %s)", "float32[?,4]"),
                 removed("float32[?,4]"));
}

TEST(NoopElimination, ReshapesThatChangeOrMayChangeTheShapeStay) {
  EXPECT_UNCHANGED(kNoop, around("%s: int64[2] = const[4, -1]", "%y: float32[4,?] = Reshape(%r, %s)"));
  // Unknown dims are equal to nothing: [?,4] -> [?,4] by a computed target is not provably a no-op.
  EXPECT_UNCHANGED(kNoop, R"(graph main(%x: float32[?,4], %s: int64[2]) {
      %r: float32[?,4] = Relu(%x)
      %y: float32[?,4] = Reshape(%r, %s)
      return %y
    })");
  // Under allowzero=1 a 0 is a zero, not a copy.
  EXPECT_UNCHANGED(kNoop, around("%s: int64[2] = const[0, 4]", "%y: float32[*] = Reshape<allowzero=1>(%r, %s)"));
}

TEST(NoopElimination, TransposeOnlyWithTheIdentityPerm) {
  EXPECT_REWRITE(kNoop, around("", "%y: float32[batch,4] = Transpose<perm=[0,1]>(%r)"), removed());
  EXPECT_UNCHANGED(kNoop, around("", "%y: float32[4,batch] = Transpose<perm=[1,0]>(%r)"));
  EXPECT_UNCHANGED(kNoop, around("", "%y: float32[4,batch] = Transpose(%r)"));  // default: reversed
}

TEST(NoopElimination, SliceOverTheWholeRange) {
  const std::string args =
      "%b: int64[1] = const[0]\n  %e: int64[1] = const[9223372036854775807]\n  %a: int64[1] = const[1]\n"
      "  %one: int64[1] = const[1]\n  %back: int64[1] = const[-1]";
  EXPECT_REWRITE(kNoop, around(args, "%y: float32[*] = Slice(%r, %b, %e, %a)"),
                 "graph main(%x: float32[batch,4]) { %y: float32[batch,4] = Relu(%x) return %y }");
  EXPECT_REWRITE(kNoop, around(args, "%y: float32[batch,4] = Slice(%r, %b, %e, %a, %one)"), removed());
  // A negative step reverses: same shape, different data.
  EXPECT_UNCHANGED(kNoop, around(args, "%y: float32[batch,4] = Slice(%r, %e, %b, %a, %back)"));
  // Starting at 1 drops a row.
  EXPECT_UNCHANGED(kNoop, around(args, "%y: float32[batch,3] = Slice(%r, %one, %e, %a)"));
}

TEST(NoopElimination, SqueezeUnsqueezePairsOnTheSameAxes) {
  EXPECT_REWRITE(kNoop, R"(graph main(%x: float32[batch,1,4]) {
      %r: float32[batch,1,4] = Relu(%x)
      %ax: int64[1] = const[1]
      %s: float32[batch,4] = Squeeze(%r, %ax)
      %y: float32[batch,1,4] = Unsqueeze(%s, %ax)
      return %y, %s
    })",
                 R"(graph main(%x: float32[batch,1,4]) {
      %ax: int64[1] = const[1]
      %y: float32[batch,1,4] = Relu(%x)
      %s: float32[batch,4] = Squeeze(%y, %ax)
      return %y, %s
    })");
  // Opset-11 attribute axes, negative in one of them.
  EXPECT_REWRITE(kNoop, R"(graph main(%x: float32[3,4]) {
      %r: float32[3,4] = Relu(%x)
      %u: float32[1,3,4] = Unsqueeze<axes=[0]>(%r)
      %y: float32[3,4] = Squeeze<axes=[-3]>(%u)
      return %y
    })",
                 R"(graph main(%x: float32[3,4]) {
      %y: float32[3,4] = Relu(%x)
      %u: float32[1,3,4] = Unsqueeze<axes=[0]>(%y)
      return %y
    })");
  // Different axes: [1,4,1] -> [4,1] -> [4,1,1] stays.
  EXPECT_UNCHANGED(kNoop, R"(graph main(%x: float32[1,4,1]) {
      %r: float32[1,4,1] = Relu(%x)
      %s: float32[4,1] = Squeeze<axes=[0]>(%r)
      %y: float32[4,1,1] = Unsqueeze<axes=[2]>(%s)
      return %y
    })");
}
