"""The CPU's load-time fusion of a 1x1 conv into the depthwise conv that alone reads its output
(deepep.PointwiseDepthwiseConv, src/optimizer/pointwise_depthwise_fusion.cpp): MobileNet-style blocks give
onnxruntime's numbers fused or not; the pair is fused where the expanded map is large (>= 512 KiB) and left
alone where it is small, read by another node, or run in the NCHW layout."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import deepep

from test_zoo_models import max_relative_error


def inverted_residual(path, h, w, c, e, stride, extra_reader=False, seed=0, batch=1):
    """x -> 1x1 conv (c -> e) -> ReLU6 -> 3x3 depthwise (stride) -> ReLU6 -> 1x1 conv (e -> c) -> y."""
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in [
        ("w1", rng.standard_normal((e, c, 1, 1)) / np.sqrt(c)), ("b1", rng.standard_normal(e) * 0.1),
        ("w2", rng.standard_normal((e, 1, 3, 3)) / 3), ("b2", rng.standard_normal(e) * 0.1),
        ("w3", rng.standard_normal((c, e, 1, 1)) / np.sqrt(e)), ("lo", np.array(0.0)), ("hi", np.array(6.0))]]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"]),
             helper.make_node("Clip", ["c1", "lo", "hi"], ["e"]),
             helper.make_node("Conv", ["e", "w2", "b2"], ["c2"], group=e, pads=[1, 1, 1, 1], strides=[stride] * 2),
             helper.make_node("Clip", ["c2", "lo", "hi"], ["d"]),
             helper.make_node("Conv", ["d", "w3"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if extra_reader:
        nodes.append(helper.make_node("ReduceMax", ["e"], ["emax"], keepdims=0))
        outputs.append(helper.make_tensor_value_info("emax", TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, c, h, w])],
                              outputs, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("h, w, fused", [(64, 48, True), (16, 16, False)])
@pytest.mark.parametrize("batch", [1, "n"])
def test_block_matches_onnxruntime_fused_when_large(tmp_path, h, w, stride, fused, batch):
    path = tmp_path / "block.onnx"
    # Expanded map 64x48x48 floats: 576 KiB an image (a symbolic batch fuses alike).
    inverted_residual(path, h, w, c=8, e=48, stride=stride, batch=batch)
    x = np.random.default_rng(1).standard_normal((1 if batch == 1 else 2, 8, h, w)).astype(np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    for layout in ("nhwc", "nchw"):
        engine = deepep.Engine(path, device="cpu", layout=layout)
        got = engine.run({"x": x})["y"]
        assert max_relative_error(got, ref) <= 1e-5, layout
        count = engine.graph_text().count("deepep.PointwiseDepthwiseConv")
        assert count == (1 if fused and layout == "nhwc" else 0), engine.graph_text()


def test_expanded_map_read_twice_is_left_alone(tmp_path):
    path = tmp_path / "block.onnx"
    inverted_residual(path, 64, 48, c=8, e=48, stride=1, extra_reader=True)
    x = np.random.default_rng(2).standard_normal((1, 8, 64, 48)).astype(np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    engine = deepep.Engine(path, device="cpu", layout="nhwc")
    got = engine.run({"x": x})
    assert "deepep.PointwiseDepthwiseConv" not in engine.graph_text()
    assert max_relative_error(got["y"], ref[0]) <= 1e-5
    assert max_relative_error(got["emax"], ref[1]) <= 1e-6
