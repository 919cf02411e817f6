import json
import os
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import deepep
from deepep import Converter, zoo
from deepep.converter import ConversionResult, fusion_level_of


@pytest.fixture(scope="module")
def bert_small(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / "bert_small.onnx"
    zoo.save(zoo.build("bert-base", small=True), path)
    return path


@pytest.fixture(scope="module")
def resnet_small(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / "resnet_small.onnx"
    zoo.save(zoo.build("resnet50", small=True), path)
    return path


def _feeds(engine, dims, seed=0):
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in engine.inputs:
        shape = [d if isinstance(d, int) else dims[d] for d in spec["shape"]]
        if spec["dtype"] == "float32":
            feeds[spec["name"]] = rng.standard_normal(shape).astype(np.float32)
        else:
            feeds[spec["name"]] = rng.integers(0, 2, size=shape).astype(spec["dtype"])
    return feeds


@pytest.mark.parametrize("model,dims", [("bert_small", {"batch": 2, "seq": 7}), ("resnet_small", {"batch": 2})])
def test_round_trip_matches_onnx(model, dims, request, tmp_path):
    src = request.getfixturevalue(model)
    c = Converter(input_model=str(src))
    c.optimize(precision="fp32", fusion_strategy="aggressive")
    result = c.export(tmp_path / "deepep_model.de")
    assert isinstance(result, ConversionResult)
    assert result.file_bytes == os.path.getsize(tmp_path / "deepep_model.de")
    assert result.metadata["precision"] == "fp32" and result.metadata["fusion_level"] == 3
    assert result.nodes_before >= result.nodes_after > 0
    assert 0 < result.weights_bytes < result.file_bytes

    de = deepep.Engine(tmp_path / "deepep_model.de")
    ref = deepep.Engine(src, fusion_level=0)  # the unoptimized source graph
    feeds = _feeds(ref, dims)
    want, got = ref.run(feeds), de.run(feeds)
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_seed_article_usage(resnet_small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = Converter(input_model=str(resnet_small))
    c.optimize(precision="tf32", fusion_strategy="aggressive")
    r = c.export("deepep_model.de")
    assert os.path.exists("deepep_model.de") and r.path == "deepep_model.de"
    assert deepep.Engine("deepep_model.de").metadata["precision"] == "tf32"


def test_export_before_optimize_uses_defaults(resnet_small, tmp_path):
    r = Converter(resnet_small).export(tmp_path / "m.de")
    assert r.metadata["precision"] == "fp32" and r.metadata["fusion_level"] == 2


@pytest.mark.parametrize("strategy,level", [("none", 0), ("basic", 1), ("standard", 2), ("aggressive", 3),
                                            ("Aggressive", 3), (0, 0), (3, 3)])
def test_fusion_strategies_map_to_levels(strategy, level, resnet_small, tmp_path):
    assert fusion_level_of(strategy) == level
    r = Converter(resnet_small).optimize(fusion_strategy=strategy).export(tmp_path / "m.de")
    assert r.metadata["fusion_level"] == level
    assert r.metadata["fusion"]["level"] == level


def test_level_zero_keeps_every_node(resnet_small, tmp_path):
    r0 = Converter(resnet_small).optimize(fusion_strategy="none").export(tmp_path / "a.de")
    r2 = Converter(resnet_small).optimize(fusion_strategy="standard").export(tmp_path / "b.de")
    assert r0.nodes_after == r0.nodes_before == len(onnx.load(resnet_small).graph.node)
    assert r2.nodes_after < r0.nodes_after  # Conv+BN folding at least


def test_progress_reports_stages(resnet_small, tmp_path):
    seen = []
    Converter(resnet_small).export(tmp_path / "m.de", progress=lambda s, f: seen.append((s, f)))
    stages = [s for s, _ in seen]
    assert stages[0] == "load" and stages[-1] == "write"
    assert {"load", "optimize", "write"} <= set(stages)
    assert all(0.0 <= f <= 1.0 for _, f in seen) and seen[-1][1] == 1.0


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_low_precision_error_is_the_converters(precision, resnet_small, tmp_path):
    c = Converter(resnet_small).optimize(precision=precision)  # accepted: lowering is the converter's call
    with pytest.raises(deepep.Error, match="precision lowering"):
        c.export(tmp_path / "m.de")
    assert not (tmp_path / "m.de").exists()


def test_bad_arguments(resnet_small, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Converter(tmp_path / "nope.onnx")
    (tmp_path / "model.tflite").write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown extension '.tflite'"):
        Converter(tmp_path / "model.tflite")
    (tmp_path / "m.de").write_bytes(b"x")
    with pytest.raises(ValueError, match="already a DeepEP engine file"):
        Converter(tmp_path / "m.de")
    with pytest.raises(TypeError, match="file path or a torch.nn.Module"):
        Converter(42)
    c = Converter(resnet_small)
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        c.optimize(precision="fp8")
    with pytest.raises(ValueError, match="unknown fusion strategy 'extreme'"):
        c.optimize(fusion_strategy="extreme")
    with pytest.raises(ValueError, match="out of range"):
        c.optimize(fusion_strategy=4)
    with pytest.raises(ValueError, match="should end in .de"):
        c.export(tmp_path / "m.onnx")
    with pytest.raises(FileNotFoundError, match="output directory"):
        c.export(tmp_path / "no" / "such" / "m.de")
    with pytest.raises(ValueError, match="input_shapes applies to PyTorch models"):
        Converter(resnet_small, input_shapes={"input": [1, 3, 64, 64]})


def test_corrupt_onnx_is_a_deepep_error(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(deepep.Error):
        Converter(tmp_path / "bad.onnx").export(tmp_path / "m.de")


def test_unsupported_op_named(tmp_path):
    g = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], domain="")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(m, tmp_path / "m.onnx", )
    with pytest.raises(deepep.Error, match="NoSuchOp"):
        Converter(tmp_path / "m.onnx").export(tmp_path / "m.de")


@pytest.mark.parametrize("ext", [".pt", ".pth"])
def test_pytorch_model_without_torch(ext, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    (tmp_path / f"bert_base{ext}").write_bytes(b"PK\x03\x04")
    with pytest.raises(ImportError, match=r"needs PyTorch, which is not installed.*export the model to ONNX"):
        Converter(input_model=str(tmp_path / f"bert_base{ext}"), input_shapes={"input_ids": ["batch", "seq"]})


# ---- PyTorch models (run where torch is installed) ---------------------------------

def _torch_mlp(torch):
    import torch_mlp  # tests/python/torch_mlp.py: importable, so torch.save can pickle the module

    return torch_mlp.make()


@pytest.mark.parametrize("how", ["torchscript", "pickle", "module"])
def test_pytorch_round_trip(how, tmp_path):
    torch = pytest.importorskip("torch")
    model = _torch_mlp(torch)
    if how == "torchscript":
        src = tmp_path / "mlp.pt"
        torch.jit.save(torch.jit.trace(model, torch.randn(2, 8)), str(src))
    elif how == "pickle":
        src = tmp_path / "mlp.pth"
        torch.save(model, str(src))
    else:
        src = model
    c = Converter(input_model=src if how == "module" else str(src), input_shapes={"x": ["batch", 8]})
    c.optimize(precision="fp32", fusion_strategy="standard")
    r = c.export(tmp_path / "mlp.de")
    engine = deepep.Engine(tmp_path / "mlp.de")
    assert [i["name"] for i in engine.inputs] == ["x"]
    assert engine.inputs[0]["shape"][1] == 8 and isinstance(engine.inputs[0]["shape"][0], str)
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)  # not the example batch
    got = next(iter(engine.run({"x": x}).values()))
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert r.metadata["inputs"][0]["name"] == "x"


def test_pytorch_state_dict_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(_torch_mlp(torch).state_dict(), str(tmp_path / "w.pt"))
    c = Converter(str(tmp_path / "w.pt"), input_shapes={"x": [2, 8]})
    with pytest.raises(ValueError, match="state_dict"):
        c.export(tmp_path / "w.de")


def test_pytorch_needs_input_shapes(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save(_torch_mlp(torch), str(tmp_path / "m.pt"))
    with pytest.raises(ValueError, match="input_shapes is required"):
        Converter(str(tmp_path / "m.pt"))
    with pytest.raises(ValueError, match="must be a non-negative int or a symbol name"):
        Converter(str(tmp_path / "m.pt"), input_shapes={"x": [-1, 8]})
    with pytest.raises(ValueError, match="unknown dtype 'float33'"):
        Converter(str(tmp_path / "m.pt"), input_shapes={"x": [2, 8]}, input_dtypes={"x": "float33"})
    with pytest.raises(ValueError, match="input_shapes does not have"):
        Converter(str(tmp_path / "m.pt"), input_shapes={"x": [2, 8]}, input_dtypes={"y": "int64"})


def test_pytorch_module_keeps_its_training_mode(tmp_path):
    torch = pytest.importorskip("torch")
    model = _torch_mlp(torch).train()
    Converter(model, input_shapes={"x": [3, 8]}).export(tmp_path / "m.de")
    assert model.training
