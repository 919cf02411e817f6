"""deepep.zoo: the small variants are valid ONNX, run in onnxruntime, and are seeded."""
import importlib
import importlib.util
import pathlib
import sys

import numpy as np
import onnx
import pytest

ort = pytest.importorskip("onnxruntime")

ZOO_DIR = pathlib.Path(__file__).resolve().parents[2] / "python" / "deepep" / "zoo"
try:
    import deepep.zoo as zoo
except ImportError:  # deepep's native extension isn't built: load the pure-python zoo alone
    _spec = importlib.util.spec_from_file_location(
        "_deepep_zoo", ZOO_DIR / "__init__.py", submodule_search_locations=[str(ZOO_DIR)])
    zoo = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = zoo
    _spec.loader.exec_module(zoo)
cli_main = importlib.import_module(zoo.__name__ + ".__main__").main

# name -> (ops the exporter pattern must contain, a node name it must contain)
PATTERNS = {
    "resnet50": ({"Conv", "BatchNormalization", "Relu", "MaxPool", "Add", "GlobalAveragePool",
                  "Flatten", "Gemm"}, "/layer1/layer1.0/conv1/Conv"),
    "resnet152": ({"Conv", "BatchNormalization", "Relu", "Add", "Gemm"},
                  "/layer3/layer3.2/relu_2/Relu"),
    "mobilenetv2": ({"Conv", "BatchNormalization", "Clip", "Add", "GlobalAveragePool", "Gemm"},
                    "/features/features.2/conv/conv.1/conv.1.0/Conv"),
    "bert-base": ({"Gather", "Slice", "LayerNormalization", "Unsqueeze", "Cast", "Sub", "Shape",
                   "Concat", "Reshape", "Transpose", "MatMul", "Div", "Softmax", "Erf", "Tanh",
                   "Gemm"}, "/encoder/layer.1/attention/self/query/MatMul"),
    "gpt2": ({"Range", "Split", "Slice", "Where", "Pow", "Tanh", "Softmax", "LayerNormalization",
              "Transpose"}, "/transformer/h.1/attn/c_attn/MatMul"),
}
B, S = 2, 16


def session(model):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def feeds(name, model, seed=0, batch=B, seq=S):
    rng = np.random.default_rng(seed)
    if name in ("resnet50", "resnet152", "mobilenetv2"):
        size = model.graph.input[0].type.tensor_type.shape.dim[2].dim_value
        return {"input": rng.standard_normal((batch, 3, size, size), dtype=np.float32)}
    out = {"input_ids": rng.integers(0, 1000, (batch, seq), dtype=np.int64)}
    if name == "bert-base":
        out["attention_mask"] = np.ones((batch, seq), np.int64)
        out["token_type_ids"] = (np.arange(seq) >= seq // 2).astype(np.int64)[None].repeat(batch, 0)
    return out


def expected_shapes(name):
    return {"bert-base": {"last_hidden_state": (B, S, 64), "pooler_output": (B, 64)},
            "gpt2": {"logits": (B, S, 1000)}}.get(name, {"output": (B, 1000)})


@pytest.fixture(scope="module")
def small():
    return {name: zoo.build(name, small=True) for name in zoo.MODELS}


def test_registry():
    assert list(zoo.MODELS) == ["resnet50", "resnet152", "mobilenetv2", "bert-base", "gpt2"]


@pytest.mark.parametrize("name", list(PATTERNS))
def test_small_model_checks_and_runs(small, name):
    model = small[name]
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17 and model.ir_version == 8
    ops = {n.op_type for n in model.graph.node}
    want_ops, want_node = PATTERNS[name]
    assert want_ops <= ops, want_ops - ops
    assert want_node in {n.name for n in model.graph.node}
    names = [n.name for n in model.graph.node]
    assert len(names) == len(set(names))
    sess = session(model)
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds(name, model))))
    shapes = expected_shapes(name)
    assert {k: v.shape for k, v in outs.items()} == shapes
    for v in outs.values():
        assert v.dtype == np.float32 and np.isfinite(v).all()
        # varied, not saturated: rows differ and the values spread
        assert 0.05 < v.std() < 50, v.std()
        assert not np.allclose(v[0], v[1])


def test_symbolic_and_fixed_dims(small):
    dims = lambda vi: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
    assert dims(small["bert-base"].graph.input[0]) == ["batch", "seq"]
    assert dims(small["resnet50"].graph.input[0]) == ["batch", 3, 64, 64]
    assert [i.type.tensor_type.elem_type for i in small["bert-base"].graph.input] == [7, 7, 7]
    m = zoo.build("gpt2", small=True, batch=3, seq=5)
    assert dims(m.graph.input[0]) == [3, 5] and dims(m.graph.output[0]) == [3, 5, 1000]


def test_bn_and_clip_forms(small):
    nodes = small["mobilenetv2"].graph.node
    assert all(len(n.input) == 3 for n in nodes if n.op_type == "Clip")
    groups = [a.i for n in nodes if n.op_type == "Conv" for a in n.attribute if a.name == "group"]
    assert max(groups) > 1  # depthwise
    nodes = small["resnet50"].graph.node
    gemm = next(n for n in nodes if n.op_type == "Gemm")
    assert {a.name: onnx.helper.get_attribute_value(a) for a in gemm.attribute}["transB"] == 1
    assert all(len(n.input) == 3 for n in nodes if n.op_type == "Conv")  # with bias
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in small["resnet50"].graph.initializer}
    assert (inits["layer1.0.bn1.running_var"] > 0).all()


def test_determinism(small):
    again = zoo.build("gpt2", small=True)
    assert again.SerializeToString() == small["gpt2"].SerializeToString()
    other = zoo.build("gpt2", small=True, seed=1)
    w0, w1 = (onnx.numpy_helper.to_array(m.graph.initializer[0]) for m in (again, other))
    assert w0.shape == w1.shape and not np.array_equal(w0, w1)


def test_gpt2_is_causal(small):
    sess, x = session(small["gpt2"]), feeds("gpt2", small["gpt2"])["input_ids"]
    y = x.copy()
    y[:, 10:] = (y[:, 10:] + 1) % 1000
    a, b = sess.run(None, {"input_ids": x})[0], sess.run(None, {"input_ids": y})[0]
    np.testing.assert_allclose(a[:, :10], b[:, :10], rtol=1e-5, atol=1e-5)
    assert not np.allclose(a[:, 10:], b[:, 10:])


def test_bert_attention_mask(small):
    model = small["bert-base"]
    sess, f = session(model), feeds("bert-base", model)
    f["attention_mask"][:, 12:] = 0
    g = {k: v.copy() for k, v in f.items()}
    g["input_ids"][:, 12:] = (g["input_ids"][:, 12:] + 7) % 1000  # masked tokens: no influence
    a, b = sess.run(None, f)[0], sess.run(None, g)[0]
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a[:, :12], b[:, :12], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,opset", [("bert-base", 11), ("bert-base", 13), ("bert-base", 18),
                                        ("gpt2", 11), ("gpt2", 13), ("gpt2", 18),
                                        ("mobilenetv2", 11)])
def test_other_opsets_match(small, name, opset):
    model = zoo.build(name, small=True, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    x = feeds(name, model)
    if opset < 17 and name != "mobilenetv2":
        assert "LayerNormalization" not in {n.op_type for n in model.graph.node}
    np.testing.assert_allclose(session(model).run(None, x)[0], session(small[name]).run(None, x)[0],
                               rtol=1e-4, atol=1e-4)


def test_bad_options():
    with pytest.raises(KeyError):
        zoo.build("resnet18")
    with pytest.raises(TypeError):
        zoo.build("resnet50", seq=8)
    with pytest.raises(TypeError):
        zoo.build("bert-base", small=True, hiden=32)
    with pytest.raises(ValueError):
        zoo.build("gpt2", small=True, seq=4096)
    with pytest.raises(ValueError):
        zoo.build("gpt2", small=True, opset=7)


def test_cli(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert cli_main(["bert-base", "--small", "-o", str(out), "--seq", "8", "--seed", "3"]) == 0
    line = capsys.readouterr().out
    assert "params" in line and "nodes" in line and "MiB" in line
    model = onnx.load(str(out))
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][1] == 8
    assert cli_main(["--list"]) == 0
    assert "gpt2" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        cli_main(["nosuchnet", "-o", str(out)])
    assert e.value.code == 2 and "unknown model" in capsys.readouterr().err


def test_external_data(small, tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "EXTERNAL_DATA_BYTES", 0)
    path = tmp_path / "g.onnx"
    size = zoo.save(small["gpt2"], str(path))
    assert (tmp_path / "g.onnx.data").exists() and size > path.stat().st_size
    x = feeds("gpt2", small["gpt2"])
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, x)[0]
    np.testing.assert_array_equal(out, session(small["gpt2"]).run(None, x)[0])  # model unchanged


def test_import_is_light():
    import subprocess
    code = ("import sys, importlib.util as u; s = u.spec_from_file_location('z', %r, "
            "submodule_search_locations=[%r]); m = u.module_from_spec(s); s.loader.exec_module(m);"
            " assert 'onnx' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules)"
            % (str(ZOO_DIR / "__init__.py"), str(ZOO_DIR)))
    subprocess.run([sys.executable, "-c", code], check=True)
