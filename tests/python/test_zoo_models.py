"""Every zoo model matches onnxruntime on the same random inputs (fp32, 1e-4 relative).

Small variants run always; the full-size models (what benchmarks and acceptance use)
run too unless DEEPEP_SKIP_FULL_ZOO=1, one pytest case each so they spread over workers.
"""
import os

import numpy as np
import onnxruntime as ort
import pytest

import deepep
from deepep import zoo

MODELS = ["resnet50", "resnet152", "mobilenetv2", "bert-base", "gpt2"]
TEXT = {"bert-base", "gpt2"}


def random_feeds(model_path, batch, seq, seed=0):
    rng = np.random.default_rng(seed)
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    feeds = {}
    for i in sess.get_inputs():
        shape = [batch if d in ("batch", None) else seq if d == "seq" else d for d in i.shape]
        if i.type == "tensor(float)":
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
        elif "mask" in i.name:
            m = np.ones(shape, np.int64)
            m[..., -max(1, shape[-1] // 4):] = 0  # some padding, so masking is exercised
            feeds[i.name] = m
        elif "token_type" in i.name:
            feeds[i.name] = rng.integers(0, 2, size=shape).astype(np.int64)
        else:
            feeds[i.name] = rng.integers(0, 1000, size=shape).astype(np.int64)
    return sess, feeds


def max_relative_error(got, ref):
    scale = max(float(np.abs(ref).max()), 1e-30)
    return float(np.abs(got.astype(np.float64) - ref).max()) / scale


def check_against_ort(path, batch, seq):
    sess, feeds = random_feeds(path, batch, seq)
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    got = deepep.Engine(path).run(feeds)
    assert list(got) == list(ref)
    for name in ref:
        assert got[name].shape == ref[name].shape, name
        assert np.isfinite(got[name]).all(), name
        err = max_relative_error(got[name], ref[name])
        assert err <= 1e-4, f"{name}: max relative error {err:.2e}"


@pytest.mark.parametrize("name", MODELS)
def test_small_variant_matches_onnxruntime(name, tmp_path):
    path = tmp_path / f"{name}.onnx"
    zoo.save(zoo.build(name, small=True), str(path))
    check_against_ort(path, batch=2, seq=16)


@pytest.mark.skipif(os.environ.get("DEEPEP_SKIP_FULL_ZOO") == "1", reason="DEEPEP_SKIP_FULL_ZOO=1")
@pytest.mark.parametrize("name", MODELS)
def test_full_model_matches_onnxruntime(name, tmp_path):
    path = tmp_path / f"{name}.onnx"
    zoo.save(zoo.build(name), str(path))
    check_against_ort(path, batch=1, seq=128)
