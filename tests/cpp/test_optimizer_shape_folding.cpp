#include "optimizer_test_util.h"

using namespace deepep;

namespace {
// Shape folding leaves the computing chain unused; DCE sweeps it.
const std::vector<std::unique_ptr<Pass> (*)()> kShape = {make_shape_folding, make_dead_code_elimination};
}

TEST(ShapeFolding, ShapeOfAStaticShapeIsAConstant) {
  EXPECT_REWRITE(kShape, R"(graph main(%x: float32[2,3,5]) {
      %s: int64[3] = Shape(%x)
      %t: int64[2] = Shape<start=-2>(%x)
      %n: int64[] = Size(%x)
      return %s, %t, %n
    })",
                 R"(graph main(%x: float32[2,3,5]) {
      %s: int64[3] = const[2, 3, 5]
      %t: int64[2] = const[3, 5]
      %n: int64[] = const[30]
      return %s, %t, %n
    })");
}

TEST(ShapeFolding, GatherOfAKnownDimInASymbolicShape) {
  EXPECT_REWRITE(kShape, R"(graph main(%x: float32[batch,seq,768]) {
      %s: int64[3] = Shape(%x)
      %i2: int64[] = const[2]
      %i0: int64[] = const[0]
      %hidden: int64[] = Gather(%s, %i2)
      %b: int64[] = Gather(%s, %i0)
      return %hidden, %b
    })",
                 // The hidden size is known; the batch is a symbol and stays computed.
                 R"(graph main(%x: float32[batch,seq,768]) {
      %i0: int64[] = const[0]
      %hidden: int64[] = const[768]
      %s: int64[3] = Shape(%x)
      %b: int64[] = Gather(%s, %i0)
      return %hidden, %b
    })");
}

TEST(ShapeFolding, ExporterReshapeChainBecomesAConstantTarget) {
  // x: [batch, seq, 768] -> [batch, seq, 12, 64], as torch.onnx.export writes it.
  EXPECT_REWRITE(kShape, R"(graph main(%x: float32[batch,seq,768]) {
      %s: int64[3] = Shape(%x)
      %i0: int64[] = const[0]
      %i1: int64[] = const[1]
      %ax: int64[1] = const[0]
      %heads: int64[2] = const[12, 64]
      %d0: int64[] = Gather(%s, %i0)
      %d1: int64[] = Gather(%s, %i1)
      %u0: int64[1] = Unsqueeze(%d0, %ax)
      %u1: int64[1] = Unsqueeze(%d1, %ax)
      %target: int64[4] = Concat<axis=0>(%u0, %u1, %heads)
      %y: float32[batch,seq,12,64] = Reshape(%x, %target)
      return %y
    })",
                 R"(graph main(%x: float32[batch,seq,768]) {
      %target_folded: int64[4] = const[0, 0, 12, 64]
      %y: float32[batch,seq,12,64] = Reshape(%x, %target_folded)
      return %y
    })");
}

TEST(ShapeFolding, OneUnknownEntryBecomesMinusOne) {
  // An unknown ("?") batch dim: the one entry neither known nor a copy is -1.
  EXPECT_REWRITE(kShape, R"(graph main(%x: float32[?,8]) {
      %s: int64[2] = Shape(%x)
      %i0: int64[1] = const[0]
      %rest: int64[2] = const[2, 4]
      %d0: int64[1] = Gather(%s, %i0)
      %target: int64[3] = Concat<axis=0>(%d0, %rest)
      %y: float32[?,2,4] = Reshape(%x, %target)
      return %y
    })",
                 R"(graph main(%x: float32[?,8]) {
      %target_folded: int64[3] = const[-1, 2, 4]
      %y: float32[?,2,4] = Reshape(%x, %target_folded)
      return %y
    })");
}

TEST(ShapeFolding, TwoUnknownEntriesOrAllowzeroStay) {
  // [batch, seq] swapped: two entries are neither known nor copies.
  EXPECT_UNCHANGED(kShape, R"(graph main(%x: float32[batch,seq]) {
      %s: int64[2] = Shape(%x)
      %i: int64[2] = const[1, 0]
      %target: int64[2] = Gather(%s, %i)
      %y: float32[seq,batch] = Reshape(%x, %target)
      return %y
    })");
  // Under allowzero=1 no entry may be written 0: batch and seq both unknown.
  EXPECT_UNCHANGED(kShape, R"(graph main(%x: float32[batch,seq]) {
      %target: int64[2] = Shape(%x)
      %y: float32[batch,seq] = Reshape<allowzero=1>(%x, %target)
      return %y
    })");
  // Unknown dims ("?") are not copies of each other.
  EXPECT_UNCHANGED(kShape, R"(graph main(%x: float32[?,?]) {
      %target: int64[2] = Shape(%x)
      %y: float32[?,?] = Reshape(%x, %target)
      return %y
    })");
}

TEST(ShapeFolding, SliceAndCastOfShapes) {
  EXPECT_REWRITE(kShape, R"(graph main(%x: float32[batch,3,224,224]) {
      %s: int64[4] = Shape(%x)
      %b: int64[1] = const[-2]
      %e: int64[1] = const[9223372036854775807]
      %hw: int64[2] = Slice(%s, %b, %e)
      %hw32: int32[2] = Cast<to=6>(%hw)
      %hw64: int64[2] = Cast<to=7>(%hw32)
      return %hw64
    })",
                 R"(graph main(%x: float32[batch,3,224,224]) {
      %hw64: int64[2] = const[224, 224]
      return %hw64
    })");
}
