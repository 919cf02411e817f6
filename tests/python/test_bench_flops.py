"""bench/model_flops.py: the FLOP count cpu_vs_ort.py reports against the FMA peak."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from model_flops import model_flops  # noqa: E402


def test_counts_conv_matmul_gemm_from_run_shapes(tmp_path):
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((6, 2, 3, 3)).astype(np.float32), "w"),  # 2 groups of 2 -> 3
        numpy_helper.from_array(rng.standard_normal((5, 7)).astype(np.float32), "g"),  # Gemm B, transB
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], group=2, strides=[2, 2], pads=[1, 1, 1, 1]),
        # Shapes only a run knows (a symbolic batch): Reshape to [batch * 6, 25].
        helper.make_node("Constant", [], ["tail"], value=numpy_helper.from_array(np.array([-1, 25], np.int64))),
        helper.make_node("Reshape", ["c", "tail"], ["r"]),
        helper.make_node("Transpose", ["r"], ["rt"]),  # [25, 6]
        helper.make_node("MatMul", ["r", "rt"], ["m"]),  # [6, 25] x [25, 6] -> [6, 6]
        helper.make_node("Slice", ["m", "s0", "s1", "ax"], ["ms"]),  # [6, 6] -> [6, 6]
        helper.make_node("Gemm", ["a", "g"], ["y"], transA=1, transB=1),  # A [7, 3]^T x B [5, 7]^T -> [3, 5]
    ]
    inits += [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in (("s0", [0]), ("s1", [6]), ("ax", [1]))]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 9, 9]),
         helper.make_tensor_value_info("a", TensorProto.FLOAT, [7, 3])],
        [helper.make_tensor_value_info("ms", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = str(tmp_path / "m.onnx")
    onnx.save(model, path)
    feeds = {"x": np.zeros((1, 4, 9, 9), np.float32), "a": np.zeros((7, 3), np.float32)}
    conv = 2 * (1 * 6 * 5 * 5) * (2 * 3 * 3)  # outputs x (C / group) x kernel
    matmul = 2 * (6 * 6) * 25
    gemm = 2 * (3 * 5) * 7
    assert model_flops(path, feeds) == conv + matmul + gemm
    # The count follows the feeds' batch.
    feeds["x"] = np.zeros((3, 4, 9, 9), np.float32)
    assert model_flops(path, feeds) == 3 * conv + 2 * (18 * 18) * 25 + gemm


def test_cpu_vs_ort_json_on_the_small_models(tmp_path):
    # The whole benchmark on its two overhead models (a few runs, no pause):
    # --json prints the issue's fields, the ratio being the two medians'.
    import json
    import subprocess

    script = os.path.join(os.path.dirname(__file__), "..", "..", "bench", "cpu_vs_ort.py")
    out = subprocess.run([sys.executable, script, "--models", "mlp-small", "conv-small", "--iterations", "3",
                          "--warmup", "1", "--gap-ms", "0", "--threads", "1", "--cache-dir", str(tmp_path),
                          "--json", "--no-write"], capture_output=True, text=True, check=True).stdout
    rows = json.loads(out.strip().splitlines()[-1])
    assert [r["model"] for r in rows] == ["mlp-small", "conv-small"]
    for r in rows:
        assert set(r) == {"model", "deepep_ms", "ort_ms", "ratio"}
        assert r["deepep_ms"] > 0 and r["ort_ms"] > 0
        assert abs(r["ratio"] - r["deepep_ms"] / r["ort_ms"]) < 0.01 * r["ratio"]
