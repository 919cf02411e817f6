import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper


@pytest.fixture
def relu_add_model(tmp_path):
    """y = Relu(x) + b with a symbolic batch dim; b is an initializer."""
    b = helper.make_tensor("b", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Add", ["r", "b"], ["y"], name="add")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [b],
    )
    path = tmp_path / "relu_add.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def reference_relu_add(x):
    return np.maximum(x, 0) + np.array([1, 2, 3], np.float32)
