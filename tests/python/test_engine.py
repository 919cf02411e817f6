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


def test_unknown_device_is_a_clear_error(relu_add_model):
    with pytest.raises(deepep.Error, match="device 'tpu:0'"):
        deepep.Engine(relu_add_model, device="tpu:0")


def test_run_needs_a_mapping(relu_add_model):
    with pytest.raises(TypeError):
        deepep.Engine(relu_add_model).run([np.zeros((1, 3), np.float32)])
