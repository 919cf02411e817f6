# HuggingFace BertModel (eager attention, eval) as torch.onnx.export(opset 17) writes it:
# Gather embeddings (position ids Sliced from the position_ids buffer), LayerNormalization, the
# extended mask Unsqueeze/Cast/Sub(1, m)/Mul(finfo.min), Q/K/V MatMul+Add, Shape->Gather->Unsqueeze
# ->Concat->Reshape head split + Transpose, Div by sqrt(d), Add mask, Softmax, erf-GELU,
# pooler Gather(0)/Gemm/Tanh.
import numpy as np

from ._builder import FLOAT, INT64, GraphBuilder, config

FULL = dict(layers=12, hidden=768, heads=12, ff=3072, vocab=30522, positions=512, type_vocab=2)
SMALL = dict(layers=2, hidden=64, heads=4, ff=256, vocab=1000, positions=128, type_vocab=2)


def _embedding(g, ids, name, rows, d):
    with g.scope(name):
        return g.op("Gather", g.param("weight", g.normal((rows, d), 0.02)), ids, axis=0)


def _gelu_erf(g, x):
    """nn.GELU(): x * 0.5 * (1 + erf(x / sqrt(2))) as exported: Div, Erf, Add, Mul, Mul."""
    erf = g.op("Erf", g.op("Div", x, g.const(1.4142135381698608)))
    return g.op("Mul", g.op("Mul", x, g.op("Add", erf, g.const(1.0))), g.const(0.5))


def _layer(g, h, mask, c):
    d = c["hidden"]
    with g.scope("attention"):
        with g.scope("self"):
            q, k, v = (g.linear(h, n, d, d) for n in ("query", "key", "value"))
            ctx = g.attention(q, k, v, c["heads"], d, lambda s, q, k: g.op("Add", s, mask))
        with g.scope("output"):
            h = g.op("Add", g.linear(ctx, "dense", d, d), h)
            h = g.layer_norm(h, "LayerNorm", d, 1e-12)
    with g.scope("intermediate"):
        x = g.linear(h, "dense", d, c["ff"])
        with g.scope("intermediate_act_fn"):
            x = _gelu_erf(g, x)
    with g.scope("output"):
        h = g.op("Add", g.linear(x, "dense", c["ff"], d), h)
        return g.layer_norm(h, "LayerNorm", d, 1e-12)


def bert(batch=None, seq=None, small=False, seed=0, opset=17, **overrides):
    """small: 2 layers, hidden 64, 4 heads, ff 256, vocab 1000, 128 positions."""
    c = config(SMALL if small else FULL, overrides, seq)
    d, batch, seq = c["hidden"], batch or "batch", seq or "seq"
    g = GraphBuilder(seed, opset)
    ids, attn_mask, types = (g.input(n, INT64, [batch, seq])
                             for n in ("input_ids", "attention_mask", "token_type_ids"))
    # get_extended_attention_mask: (1.0 - mask[:, None, None, :].float()) * finfo(float32).min
    m = g.op("Cast", g.unsqueeze(g.unsqueeze(attn_mask, [1]), [2]), to=FLOAT)
    m = g.op("Mul", g.op("Sub", g.const(1.0), m), g.const(np.finfo(np.float32).min))
    with g.scope("embeddings"):
        pos_buf = g.buffer("position_ids", np.arange(c["positions"], dtype=np.int64)[None])
        seq_len = g.unsqueeze(g.dim_of(ids, 1), [0])
        pos = g.op("Slice", pos_buf, g.const([0]), seq_len, g.const([1]), g.const([1]))
        h = g.op("Add", _embedding(g, ids, "word_embeddings", c["vocab"], d),
                 _embedding(g, types, "token_type_embeddings", c["type_vocab"], d))
        h = g.op("Add", h, _embedding(g, pos, "position_embeddings", c["positions"], d))
        h = g.layer_norm(h, "LayerNorm", d, 1e-12)
    with g.scope("encoder"):
        for i in range(c["layers"]):
            with g.scope(f"layer.{i}"):
                h = _layer(g, h, m, c)
    with g.scope("pooler"):
        pooled = g.gemm(g.op("Gather", h, g.const(0), axis=1), "dense", d, d, 0.02)  # h[:, 0]
        with g.scope("activation"):
            pooled = g.op("Tanh", pooled)
    g.output("last_hidden_state", h, FLOAT, [batch, seq, d])
    g.output("pooler_output", pooled, FLOAT, [batch, d])
    return g
