import numpy as np
import pytest

import deepep
from conftest import reference_relu_add


def test_run_returns_numpy_outputs_by_name(relu_add_model):
    engine = deepep.Engine(relu_add_model)
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    out = engine.run({"x": x})
    assert list(out) == ["y"]
    np.testing.assert_array_equal(out["y"], reference_relu_add(x))


def test_symbolic_batch_accepts_any_size_including_zero(relu_add_model):
    engine = deepep.Engine(relu_add_model)
    for n in (0, 1, 7):
        x = np.ones((n, 3), np.float32)
        assert engine.run({"x": x})["y"].shape == (n, 3)


def test_model_metadata(relu_add_model):
    engine = deepep.Engine(relu_add_model)
    assert engine.inputs == [{"name": "x", "dtype": "float32", "shape": ["batch", 3]}]
    assert engine.outputs[0]["name"] == "y"
    assert "Relu" in engine.graph_text() and "%y" in engine.graph_text()


def test_non_contiguous_input_is_handled(relu_add_model):
    engine = deepep.Engine(relu_add_model)
    x = np.arange(18, dtype=np.float32).reshape(3, 6)[:, ::2]
    np.testing.assert_array_equal(engine.run({"x": x})["y"], reference_relu_add(x))


def test_big_endian_input_is_read_by_value(relu_add_model):
    engine = deepep.Engine(relu_add_model)
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(">f4")
    np.testing.assert_array_equal(engine.run({"x": x})["y"], reference_relu_add(x.astype(np.float32)))


def test_unknown_device_is_a_clear_error(relu_add_model):
    with pytest.raises(deepep.Error, match="device 'tpu:0'"):
        deepep.Engine(relu_add_model, device="tpu:0")


def test_run_needs_a_mapping(relu_add_model):
    with pytest.raises(TypeError):
        deepep.Engine(relu_add_model).run([np.zeros((1, 3), np.float32)])


def test_cpu_precision_fp32_and_strict(tmp_path):
    """On the CPU "fp32" (default) may run float32 GEMMs as bf16x3 on AMX
    tiles (~1e-5 relative error); "fp32-strict" keeps float32 multiply-adds
    (matches numpy to float rounding); "fp16" is a GPU precision."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = rng.standard_normal((768, 512)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 768])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 512])],
        [numpy_helper.from_array(w, "w")])
    path = str(tmp_path / "mm.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    x = rng.standard_normal((64, 768)).astype(np.float32)
    want = x.astype(np.float64) @ w.astype(np.float64)
    scale = np.abs(want).max()
    strict = deepep.Engine(path, precision="fp32-strict").run({"x": x})["y"]
    fast = deepep.Engine(path).run({"x": x})["y"]
    assert np.abs(strict - want).max() / scale < 2e-6
    assert np.abs(fast - want).max() / scale < 1e-4
    with pytest.raises(deepep.Error, match="applies to GPU devices"):
        deepep.Engine(path, precision="fp16")
