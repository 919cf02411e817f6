# HuggingFace GPT2LMHeadModel (eager attention, eval, no past) as torch.onnx.export(opset 17) writes
# it: wte/wpe Gather with Range position ids, pre-LN blocks, Conv1D c_attn MatMul+Add then Split
# into q,k,v, head Reshape/Transpose, Div by sqrt(d), causal mask = lower-triangular bool buffer
# Sliced to [seq, seq] + Where(mask, scores, finfo.min), Softmax, tanh-GELU ("gelu_new", with Pow),
# final LayerNormalization, lm_head MatMul with the tied wte transposed.
import math

import numpy as np

from ._builder import FLOAT, INT64, GraphBuilder, config

FULL = dict(layers=12, hidden=768, heads=12, vocab=50257, positions=1024)
SMALL = dict(layers=2, hidden=64, heads=4, vocab=1000, positions=128)


def _gelu_new(g, x):
    """0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x ** 3)))"""
    inner = g.op("Add", x, g.op("Mul", g.op("Pow", x, g.const(3.0)), g.const(0.044715)))
    t = g.op("Tanh", g.op("Mul", inner, g.const(math.sqrt(2 / math.pi))))
    return g.op("Mul", g.op("Mul", x, g.const(0.5)), g.op("Add", t, g.const(1.0)))


def _causal(g, positions):
    """Where(bias[:, :, k_len - q_len:k_len, :k_len], scores, finfo.min); bias is a buffer."""
    tril = np.tril(np.ones((positions, positions), dtype=bool))[None, None]
    bias = g.buffer("bias", tril)

    def mask(scores, q, k):
        q_len, k_len = g.dim_of(q, 2), g.dim_of(k, 3)  # k is already [b, h, d, s]
        start, end = g.unsqueeze(g.op("Sub", k_len, q_len), [0]), g.unsqueeze(k_len, [0])
        m = g.op("Slice", bias, start, end, g.const([2]), g.const([1]))
        m = g.op("Slice", m, g.const([0]), end, g.const([3]), g.const([1]))
        return g.op("Where", m, scores, g.const(np.finfo(np.float32).min))
    return mask


def _block(g, h, c):
    d = c["hidden"]
    a = g.layer_norm(h, "ln_1", d, 1e-5)
    with g.scope("attn"):
        q, k, v = g.split(g.linear(a, "c_attn", d, 3 * d, conv1d=True), [d] * 3, axis=2)
        a = g.attention(q, k, v, c["heads"], d, _causal(g, c["positions"]))
        h = g.op("Add", g.linear(a, "c_proj", d, d, conv1d=True), h)
    m = g.layer_norm(h, "ln_2", d, 1e-5)
    with g.scope("mlp"):
        m = g.linear(m, "c_fc", d, 4 * d, conv1d=True)
        with g.scope("act"):
            m = _gelu_new(g, m)
        m = g.linear(m, "c_proj", 4 * d, d, conv1d=True)
    return g.op("Add", h, m)


def gpt2(batch=None, seq=None, small=False, seed=0, opset=17, **overrides):
    """small: 2 layers, hidden 64, 4 heads, vocab 1000, 128 positions."""
    c = config(SMALL if small else FULL, overrides, seq)
    d, batch, seq = c["hidden"], batch or "batch", seq or "seq"
    g = GraphBuilder(seed, opset)
    ids = g.input("input_ids", INT64, [batch, seq])
    with g.scope("transformer"):
        pos = g.unsqueeze(g.op("Range", g.const(0), g.dim_of(ids, 1), g.const(1)), [0])
        with g.scope("wte"):
            wte = g.param("weight", g.normal((c["vocab"], d), 0.02))
            tokens = g.op("Gather", wte, ids, axis=0)
        with g.scope("wpe"):
            positions = g.op("Gather", g.param("weight", g.normal((c["positions"], d), 0.01)),
                             pos, axis=0)
        h = g.op("Add", tokens, positions)
        for i in range(c["layers"]):
            with g.scope(f"h.{i}"):
                h = _block(g, h, c)
        h = g.layer_norm(h, "ln_f", d, 1e-5)
    with g.scope("lm_head"):  # tied: lm_head.weight is transformer.wte.weight
        logits = g.op("MatMul", h, g.op("Transpose", wte, perm=[1, 0]))
    g.output("logits", logits, FLOAT, [batch, seq, c["vocab"]])
    return g
