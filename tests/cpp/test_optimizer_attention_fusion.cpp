#include "optimizer_test_util.h"

using namespace deepep;

namespace {
const std::vector<std::unique_ptr<Pass> (*)()> kAtt = {make_attention_fusion};

// Exported eager attention over %q, %k, %v [b,s,8] with 2 heads of 4: head
// split, K^T by Transpose<0,2,3,1>, `score_lines` (reading %mm, writing %ms:
// the scale and the mask), Softmax, merge. Extra inputs in `ins`.
std::string exported(const std::string& ins, const std::string& score_lines, const std::string& pre = "",
                     const std::string& softmax_axis = "-1", const std::string& ret = "%y") {
  return "graph main(" + ins + R"() {
      %shp: int64[4] = const[0, 0, 2, 4]
      %mrg: int64[3] = const[0, 0, 8]
      %c: float32[] = const[2]
      )" + pre + R"(
      %qr: float32[b,s,2,4] = Reshape(%q, %shp)
      %qh: float32[b,2,s,4] = Transpose<perm=[0,2,1,3]>(%qr)
      %kr: float32[b,s,2,4] = Reshape(%k, %shp)
      %kt: float32[b,2,4,s] = Transpose<perm=[0,2,3,1]>(%kr)
      %vr: float32[b,s,2,4] = Reshape(%v, %shp)
      %vh: float32[b,2,s,4] = Transpose<perm=[0,2,1,3]>(%vr)
      %mm: float32[b,2,s,s] = MatMul(%qh, %kt)
      )" + score_lines + R"(
      %p: float32[b,2,s,s] = Softmax<axis=)" + softmax_axis + R"(>(%ms)
      %o: float32[b,2,s,4] = MatMul(%p, %vh)
      %ot: float32[b,s,2,4] = Transpose<perm=[0,2,1,3]>(%o)
      %y: float32[b,s,8] = Reshape(%ot, %mrg)
      return )" + ret + "\n}";
}
const std::string kQKV = "%q: float32[b,s,8], %k: float32[b,s,8], %v: float32[b,s,8]";
const std::string kDivMask =
    "%sc: float32[b,2,s,s] = Div(%mm, %c)\n %ms: float32[b,2,s,s] = Add(%sc, %mask)";
}  // namespace

TEST(AttentionFusion, BertAttentionWithAdditiveMask) {
  EXPECT_REWRITE(kAtt, exported(kQKV + ", %mask: float32[b,1,1,s]", kDivMask),
                 R"(graph main(%q: float32[b,s,8], %k: float32[b,s,8], %v: float32[b,s,8], %mask: float32[b,1,1,s]) {
      %y: float32[b,s,8] = deepep.Attention<num_heads=2, scale=0.5>(%q, %k, %v, %mask)
      return %y
    })");
  // Without a mask, scaled by Mul (the constant first).
  EXPECT_REWRITE(kAtt, exported(kQKV, "%ms: float32[b,2,s,s] = Mul(%c, %mm)"),
                 R"(graph main(%q: float32[b,s,8], %k: float32[b,s,8], %v: float32[b,s,8]) {
      %y: float32[b,s,8] = deepep.Attention<num_heads=2, scale=2.0>(%q, %k, %v)
      return %y
    })");
}

TEST(AttentionFusion, Gpt2CausalWhereAndPackedSplit) {
  // q, k, v from one Split of c_attn's output; Where(mask, scores, min).
  const std::string pre = R"(%sizes: int64[3] = const[8, 8, 8]
      %fill: float32[] = const[-3.4028234663852886e+38]
      %q: float32[b,s,8], %k: float32[b,s,8], %v: float32[b,s,8] = Split<axis=2>(%qkv, %sizes))";
  EXPECT_REWRITE(kAtt,
                 exported("%qkv: float32[b,s,24], %mask: bool[1,1,s,s]",
                          "%sc: float32[b,2,s,s] = Div(%mm, %c)\n %ms: float32[b,2,s,s] = Where(%mask, %sc, %fill)",
                          pre),
                 R"(graph main(%qkv: float32[b,s,24], %mask: bool[1,1,s,s]) {
      %y: float32[b,s,8] = deepep.Attention<mask_fill=-3.4028234663852886e+38, mask_mode="keep", num_heads=2, qkv_hidden_sizes=[8,8,8], scale=0.5>(%qkv, _, _, %mask)
      return %y
    })");
}

TEST(AttentionFusion, LengthsReadFromTheHeadsMoveToTheInputs) {
  // GPT-2 takes the causal window from Shape(K^T)[3]: that read goes to K.
  EXPECT_REWRITE(kAtt,
                 exported(kQKV + ", %mask: float32[b,1,1,s]",
                          "%i3: int64[] = const[3]\n %shk: int64[4] = Shape(%kt)\n"
                          " %kl: int64[] = Gather<axis=0>(%shk, %i3)\n" + kDivMask,
                          "", "-1", "%y, %kl"),
                 R"(graph main(%q: float32[b,s,8], %k: float32[b,s,8], %v: float32[b,s,8], %mask: float32[b,1,1,s]) {
      %i3_x: int64[] = const[1]
      %shk: int64[3] = Shape(%k)
      %kl: int64[] = Gather<axis=0>(%shk, %i3_x)
      %y: float32[b,s,8] = deepep.Attention<num_heads=2, scale=0.5>(%q, %k, %v, %mask)
      return %y, %kl
    })");
  // A head dim (H or D) read that way has no 3-D counterpart: the split stays.
  const std::string head_read = exported(kQKV + ", %mask: float32[b,1,1,s]",
                                         "%i1: int64[] = const[1]\n %shk: int64[4] = Shape(%kt)\n"
                                         " %kh: int64[] = Gather<axis=0>(%shk, %i1)\n" + kDivMask,
                                         "", "-1", "%y, %kh");
  EXPECT_EQ(optest::run_passes(kAtt, head_read).find("num_heads"), std::string::npos);
}

TEST(AttentionFusion, LengthsReadFromSplitOutputsMoveToThePackedInput) {
  // GPT-2 as exported: lengths of Q and K^T feed the causal window; after
  // fusion they are read from the packed c_attn output (dim 1 of [b,s,24]).
  const std::string pre = R"(%sizes: int64[3] = const[8, 8, 8]
      %fill: float32[] = const[-100]
      %q: float32[b,s,8], %k: float32[b,s,8], %v: float32[b,s,8] = Split<axis=2>(%qkv, %sizes))";
  const std::string after = optest::run_passes(
      kAtt, exported("%qkv: float32[b,s,24], %mask: bool[1,1,s,s]",
                     "%i2: int64[] = const[2]\n %i3: int64[] = const[3]\n"
                     " %shq: int64[4] = Shape(%qh)\n %ql: int64[] = Gather<axis=0>(%shq, %i2)\n"
                     " %shk: int64[4] = Shape(%kt)\n %kl: int64[] = Gather<axis=0>(%shk, %i3)\n"
                     " %sc: float32[b,2,s,s] = Div(%mm, %c)\n %ms: float32[b,2,s,s] = Where(%mask, %sc, %fill)",
                     pre, "-1", "%y, %ql, %kl"));
  EXPECT_NE(after.find("%shq: int64[3] = Shape(%qkv)"), std::string::npos) << after;
  EXPECT_NE(after.find("%shk: int64[3] = Shape(%qkv)"), std::string::npos) << after;
  EXPECT_NE(after.find("qkv_hidden_sizes=[8,8,8]"), std::string::npos) << after;
  EXPECT_EQ(after.find("Split"), std::string::npos) << after;
  EXPECT_EQ(after.find("Transpose"), std::string::npos) << after;
  // Both Gathers read dim 1 (the sequence) of the packed input.
  auto g = parse_graph_text(after);
  int gathers = 0;
  for (const auto& n : g->nodes())
    if (n->op_type == "Gather") {
      ++gathers;
      ASSERT_TRUE(n->inputs[1]->data);
      EXPECT_EQ(n->inputs[1]->data->get_int(0), 1);
    }
  EXPECT_EQ(gathers, 2);
}

TEST(AttentionFusion, FourDimensionalInputsKeepTheirLayout) {
  EXPECT_REWRITE(kAtt, R"(graph main(%q: float32[b,h,s,4], %k: float32[b,h,t,4], %v: float32[b,h,t,6]) {
      %c: float32[] = const[0.5]
      %kt: float32[b,h,4,t] = Transpose<perm=[0,1,3,2]>(%k)
      %mm: float32[b,h,s,t] = MatMul(%q, %kt)
      %sc: float32[b,h,s,t] = Mul(%mm, %c)
      %p: float32[b,h,s,t] = Softmax<axis=3>(%sc)
      %y: float32[b,h,s,6] = MatMul(%p, %v)
      return %y
    })", R"(graph main(%q: float32[b,h,s,4], %k: float32[b,h,t,4], %v: float32[b,h,t,6]) {
      %y: float32[b,h,s,6] = deepep.Attention<scale=0.5>(%q, %k, %v)
      return %y
    })");
  // K given transposed.
  EXPECT_REWRITE(kAtt, R"(graph main(%q: float32[b,h,s,4], %kt: float32[b,h,4,t], %v: float32[b,h,t,6]) {
      %mm: float32[b,h,s,t] = MatMul(%q, %kt)
      %p: float32[b,h,s,t] = Softmax<axis=-1>(%mm)
      %y: float32[b,h,s,6] = MatMul(%p, %v)
      return %y
    })", R"(graph main(%q: float32[b,h,s,4], %kt: float32[b,h,4,t], %v: float32[b,h,t,6]) {
      %y: float32[b,h,s,6] = deepep.Attention<k_transposed=1, scale=1.0>(%q, %kt, %v)
      return %y
    })");
}

TEST(AttentionFusion, PacksThreeProjectionsIntoOneGemm) {
  // BERT's query/key/value: three FusedMatMuls of one input.
  const std::vector<std::unique_ptr<Pass> (*)()> passes = {make_attention_fusion, make_matmul_bias_activation_fusion};
  EXPECT_REWRITE(passes, exported("%h: float32[b,s,2], %mask: float32[b,1,1,s]", kDivMask, R"(
      %wq: float32[2,8] = const[1]
      %wk: float32[2,8] = const[2]
      %wv: float32[2,8] = const[3]
      %bq: float32[8] = const[0.5]
      %bv: float32[8] = const[-1]
      %mq: float32[b,s,8] = MatMul(%h, %wq)
      %q: float32[b,s,8] = Add(%bq, %mq)
      %k: float32[b,s,8] = MatMul(%h, %wk)
      %mv: float32[b,s,8] = MatMul(%h, %wv)
      %v: float32[b,s,8] = Add(%mv, %bv))"),
                 R"(graph main(%h: float32[b,s,2], %mask: float32[b,1,1,s]) {
      %wq_qkv: float32[2,24] = const[1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3]
      %bq_qkv_bias: float32[24] = const[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1]
      %q_qkv: float32[b,s,24] = deepep.FusedMatMul(%h, %wq_qkv, %bq_qkv_bias)
      %y: float32[b,s,8] = deepep.Attention<num_heads=2, qkv_hidden_sizes=[8,8,8], scale=0.5>(%q_qkv, _, _, %mask)
      return %y
    })");
}

TEST(AttentionFusion, MustNotFuse) {
  // The mask's third dim is 3, not the query length: no broadcast to [b, heads, q, k].
  EXPECT_UNCHANGED(kAtt, exported(kQKV + ", %mask: float32[b,1,3,s]", kDivMask));
  // A mask with 5 heads for 2.
  EXPECT_UNCHANGED(kAtt, exported(kQKV + ", %mask: float32[1,5,1,1]", kDivMask));
  // Softmax over the query axis.
  EXPECT_UNCHANGED(kAtt, exported(kQKV + ", %mask: float32[b,1,1,s]", kDivMask, "", "2"));
  // The probabilities are read elsewhere.
  EXPECT_UNCHANGED(kAtt, exported(kQKV + ", %mask: float32[b,1,1,s]", kDivMask, "", "-1", "%y, %p"));
  // A scale that is not a constant.
  EXPECT_UNCHANGED(kAtt, exported(kQKV + ", %mask: float32[b,1,1,s], %t: float32[]",
                                  "%sc: float32[b,2,s,s] = Div(%mm, %t)\n %ms: float32[b,2,s,s] = Add(%sc, %mask)"));
  // 4-D inputs whose batch may broadcast (a batch of 1 for K): MatMul would broadcast it.
  EXPECT_UNCHANGED(kAtt, R"(graph main(%q: float32[b,h,s,4], %kt: float32[1,h,4,t], %v: float32[b,h,t,6]) {
      %mm: float32[b,h,s,t] = MatMul(%q, %kt)
      %p: float32[b,h,s,t] = Softmax<axis=-1>(%mm)
      %y: float32[b,h,s,6] = MatMul(%p, %v)
      return %y
    })");
}

TEST(AttentionFusion, HeadsReadElsewhereKeepTheSplit) {
  // K's heads are also returned (a KV cache): the splits stay, attention runs on the 4-D heads.
  EXPECT_REWRITE(kAtt, exported(kQKV + ", %mask: float32[b,1,1,s]", kDivMask, "", "-1", "%y, %kt"),
                 R"(graph main(%q: float32[b,s,8], %k: float32[b,s,8], %v: float32[b,s,8], %mask: float32[b,1,1,s]) {
      %shp: int64[4] = const[0, 0, 2, 4]
      %mrg: int64[3] = const[0, 0, 8]
      %qr: float32[b,s,2,4] = Reshape(%q, %shp)
      %qh: float32[b,2,s,4] = Transpose<perm=[0,2,1,3]>(%qr)
      %kr: float32[b,s,2,4] = Reshape(%k, %shp)
      %kt: float32[b,2,4,s] = Transpose<perm=[0,2,3,1]>(%kr)
      %vr: float32[b,s,2,4] = Reshape(%v, %shp)
      %vh: float32[b,2,s,4] = Transpose<perm=[0,2,1,3]>(%vr)
      %o: float32[b,2,s,4] = deepep.Attention<k_transposed=1, scale=0.5>(%qh, %kt, %vh, %mask)
      %ot: float32[b,s,2,4] = Transpose<perm=[0,2,1,3]>(%o)
      %y: float32[b,s,8] = Reshape(%ot, %mrg)
      return %y, %kt
    })");
}
