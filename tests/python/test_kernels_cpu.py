"""The fast CPU kernels through the Python API: several Sessions of one Engine
running at once (shared packed-weight cache, shared thread pool) give exactly
what one Session gives alone, and the outputs match the reference kernels
(DEEPEP_CPU_ISA=none, in a child process) on a small conv + matmul model."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import deepep  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def small_model(path):
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8, 17, 15])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    inits = [
        numpy_helper.from_array(rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.2, "w1"),
        numpy_helper.from_array(rng.standard_normal(16).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.standard_normal((16, 1, 3, 3)).astype(np.float32) * 0.2, "w2"),
        # MaxPool makes the last dim (15 + 2 - 3) // 2 + 1 = 8.
        numpy_helper.from_array(rng.standard_normal((8, 33)).astype(np.float32) * 0.2, "wm"),
        numpy_helper.from_array(rng.standard_normal(33).astype(np.float32), "bm"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=16),
        helper.make_node("Add", ["c2", "r1"], ["s"]),
        helper.make_node("MaxPool", ["s"], ["p"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("MatMul", ["p", "wm"], ["m"]),
        helper.make_node("Add", ["m", "bm"], ["a"]),
        helper.make_node("Tanh", ["a"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_concurrent_sessions_match_one_session(tmp_path):
    path = tmp_path / "m.onnx"
    small_model(path)
    engine = deepep.Engine(str(path))
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((b, 8, 17, 15)).astype(np.float32) for b in (1, 2, 3, 1)]
    want = [engine.run({"x": x})["y"].copy() for x in xs]
    errors = []

    def worker(k):
        try:
            sess = engine.create_session()
            for r in range(6):
                i = (k + r) % len(xs)
                got = sess.run({"x": xs[i]})["y"]
                if not np.array_equal(got, want[i]):
                    errors.append(f"thread {k} run {r}: max diff {np.max(np.abs(got - want[i]))}")
        except Exception as e:  # noqa: BLE001
            errors.append(f"thread {k}: {e!r}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


@pytest.mark.parametrize("isa", ["avx2", "avx512"])
def test_fast_kernels_match_reference_kernels(tmp_path, isa):
    path = tmp_path / "m.onnx"
    small_model(path)
    x = np.random.default_rng(2).standard_normal((2, 8, 17, 15)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code = ("import numpy as np, deepep, sys; e = deepep.Engine(sys.argv[1]); "
            "np.save(sys.argv[3], e.run({'x': np.load(sys.argv[2])})['y'])")
    outs = {}
    for mode in ("none", isa):
        # The deepep this test imported (a dev tree's python/ or the installed one).
        env = dict(os.environ, DEEPEP_CPU_ISA=mode, PYTHONPATH=os.path.dirname(os.path.dirname(deepep.__file__)))
        out = tmp_path / f"y_{mode}.npy"
        subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "x.npy"), str(out)], env=env,
                       check=True)
        outs[mode] = np.load(out)
    # An ISA the CPU lacks falls back to the best one it has: still a fast path.
    np.testing.assert_allclose(outs[isa], outs["none"], rtol=1e-4, atol=1e-5)
