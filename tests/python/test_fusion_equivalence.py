"""Fusion keeps the numbers: every small zoo model gives the same outputs at fusion levels
0, 1, 2 and 3 (as level 0, and as onnxruntime, within 1e-4 relative), and levels 2 and 3 really fuse
(the fused ops appear, the ops they replace are gone). The transformers also run at opset 16,
where LayerNorm is exported decomposed, so layer_norm_fusion has work. The onnx package's
light models (CNNs) go through every level too."""
import glob
import os

import numpy as np
import pytest

import deepep
from deepep import zoo
from deepep.conformance import onnx_test_data

from test_zoo_models import max_relative_error, random_feeds

CASES = [("resnet50", 17), ("resnet152", 17), ("mobilenetv2", 17), ("bert-base", 17), ("bert-base", 16),
         ("gpt2", 17), ("gpt2", 16)]

# What level 2 must leave (ops, as printed in graph_text) and must make.
GONE = {
    "resnet50": ["BatchNormalization", "Relu(", "Add("],
    "resnet152": ["BatchNormalization", "Relu(", "Add("],
    "mobilenetv2": ["BatchNormalization", "Clip(", "Add("],
    "bert-base": ["Softmax", "Erf(", "ReduceMean", "Transpose"],
    "gpt2": ["Softmax", "Tanh(", "ReduceMean", "Transpose", "Split("],
}
MADE = {
    "resnet50": ["deepep.FusedConv"],
    "resnet152": ["deepep.FusedConv"],
    "mobilenetv2": ["deepep.FusedConv"],
    "bert-base": ["deepep.Attention", "deepep.FusedMatMul", "deepep.SkipLayerNorm"],
    "gpt2": ["deepep.Attention", "deepep.FusedMatMul", "deepep.SkipLayerNorm"],
}


@pytest.mark.parametrize("name,opset", CASES)
def test_fusion_levels_agree(name, opset, tmp_path):
    path = tmp_path / f"{name}-{opset}.onnx"
    zoo.save(zoo.build(name, small=True, opset=opset), str(path))
    sess, feeds = random_feeds(path, batch=2, seq=16)
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    base = None
    for level in (0, 1, 2, 3):
        engine = deepep.Engine(path, fusion_level=level)
        got = engine.run(feeds)
        assert list(got) == list(ref)
        for out in ref:
            assert got[out].shape == ref[out].shape, (level, out)
            err = max_relative_error(got[out], ref[out])
            assert err <= 1e-4, f"level {level} {out}: {err:.2e} vs onnxruntime"
            if base is not None:
                err = max_relative_error(got[out], base[out])
                assert err <= 1e-4, f"level {level} {out}: {err:.2e} vs level 0"
        if level == 0:
            base = got
        if level >= 2:
            text = engine.graph_text()
            for op in GONE[name]:
                assert f"= {op}" not in text, f"{op} left at level {level}"
            for op in MADE[name]:
                assert f"= {op}" in text, f"no {op} at level {level}"


LIGHT = sorted(os.path.basename(p)[len("light_"):-len(".onnx")]
               for p in glob.glob(os.path.join(onnx_test_data(), "light", "light_*.onnx")))


@pytest.mark.parametrize("name", LIGHT)
def test_light_models_agree_at_every_level(name):
    """The onnx package's light models (CNNs with their reference outputs) at levels
    0-3: each level matches level 0 and onnxruntime within 1e-4 relative."""
    import onnxruntime as ort

    path = os.path.join(onnx_test_data(), "light", f"light_{name}.onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {i.name: rng.standard_normal([d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
             for i in sess.get_inputs()}
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    base = None
    for level in (0, 1, 2, 3):
        got = deepep.Engine(path, fusion_level=level).run(feeds)
        for out in ref:
            err = max_relative_error(got[out], ref[out])
            assert err <= 1e-4, f"{name} level {level} {out}: {err:.2e} vs onnxruntime"
            if base is not None:
                err = max_relative_error(got[out], base[out])
                assert err <= 1e-4, f"{name} level {level} {out}: {err:.2e} vs level 0"
        if level == 0:
            base = got
