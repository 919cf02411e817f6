import subprocess
import sys

import numpy as np

from conftest import reference_relu_add


def deepep_cli(*args):
    return subprocess.run([sys.executable, "-m", "deepep", *map(str, args)], capture_output=True, text=True)


def test_run_with_npy_inputs_writes_outputs(relu_add_model, tmp_path):
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = deepep_cli("run", relu_add_model, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert "output y: float32[4, 3]" in r.stdout and "latency" in r.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "y.npy"), reference_relu_add(x))


def test_run_output_dtype_float16(relu_add_model, tmp_path):
    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = deepep_cli("run", relu_add_model, "--input", f"x={tmp_path / 'x.npy'}", "--output-dtype", "float16",
                   "--output-dir", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert "output y: float16[4, 3]" in r.stdout
    y = np.load(tmp_path / "out" / "y.npy")
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, reference_relu_add(x).astype(np.float16))
    r = deepep_cli("run", relu_add_model, "--input", f"x={tmp_path / 'x.npy'}", "--output-dtype", "half")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_run_random_needs_symbol_sizes(relu_add_model):
    r = deepep_cli("run", relu_add_model, "--random")
    assert r.returncode != 0 and "--dim batch=N" in r.stderr
    r = deepep_cli("run", relu_add_model, "--random", "--dim", "batch=2", "--iterations", "3")
    assert r.returncode == 0, r.stderr
    assert "over 3 run(s)" in r.stdout
    # Bad sizes and counts are named, without a traceback.
    for args, needle in ((["--dim", "batch=abc"], "--dim batch: size must be an integer, got 'abc'"),
                         (["--dim", "batch=-1"], "--dim batch: size must be non-negative"),
                         (["--dim", "batch=100000000000000"], "not enough memory for random data of shape"),
                         (["--dim", "batch=99999999999999999999"], "cannot make random data of shape"),
                         (["--dim", "batch=2", "--iterations", "0"], "--iterations: must be at least 1")):
        r = deepep_cli("run", relu_add_model, "--random", *args)
        assert r.returncode != 0 and needle in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)


def test_run_reports_bad_inputs_without_traceback(relu_add_model, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 4), np.float32))
    r = deepep_cli("run", relu_add_model, "--input", f"x={tmp_path / 'x.npy'}")
    assert r.returncode == 1
    assert "input 'x': dimension 1 must be 3" in r.stderr and "Traceback" not in r.stderr
    r = deepep_cli("run", relu_add_model, "--input", f"nope={tmp_path / 'x.npy'}")
    assert r.returncode != 0 and "no input 'nope'" in r.stderr


def test_info_prints_inputs_outputs_and_graph(relu_add_model):
    r = deepep_cli("info", relu_add_model, "--graph")
    assert r.returncode == 0, r.stderr
    assert "input  x: float32['batch', 3]" in r.stdout
    assert "= Relu(%x)" in r.stdout


def test_missing_model_file(tmp_path):
    r = deepep_cli("run", tmp_path / "nope.onnx", "--random")
    assert r.returncode == 1 and "does not exist" in r.stderr
