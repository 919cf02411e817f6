"""deepep convert / inspect / bench, and run's new options (in-process: main(argv))."""
import io
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import deepep
from deepep import analysis, bench, cli, zoo

LAT_KEYS = {"min", "mean", "median", "p90", "p95", "p99"}
MEM_KEYS = {"naive_bytes", "planned_bytes", "lower_bound_bytes", "weights_bytes"}


def deepep_main(capsys, *args):
    """(exit code, stdout, stderr) of `deepep ARGS`, as the console script would end."""
    try:
        rc = cli.main([str(a) for a in args])
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            rc = 1
        else:
            rc = e.code or 0
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def resnet_small(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / "resnet_small.onnx"
    zoo.save(zoo.build("resnet50", small=True), path)
    return path


@pytest.fixture(scope="module")
def resnet_de(resnet_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("de") / "resnet_small.de"
    assert cli.main(["convert", str(resnet_small), "-o", str(out), "-q"]) == 0
    return out


@pytest.fixture
def if_model(tmp_path):
    """y = If(c) then x+1 else x*2: two subgraph nodes, one main-graph node."""
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    then_g = helper.make_graph([helper.make_node("Add", ["x", "one"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, ["n"])])
    else_g = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, ["n"])])
    g = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)], "g",
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])], [one, two])
    path = tmp_path / "if.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


# ---- convert -----------------------------------------------------------------------

def test_convert_writes_engine_and_summary(resnet_small, tmp_path, capsys):
    out = tmp_path / "r.de"
    rc, stdout, stderr = deepep_main(capsys, "convert", resnet_small, "-o", out, "--fusion-level", "aggressive")
    assert rc == 0, stderr
    assert out.exists() and deepep.Engine(out).metadata["fusion_level"] == 3
    meta = deepep.Engine(out).metadata["fusion"]
    assert f"nodes {meta['nodes_before']} -> {meta['nodes_after']}" in stdout
    assert f"wrote {out}" in stdout and "time " in stdout
    # Not a terminal: a few plain lines, one per stage, no carriage returns.
    lines = stderr.strip().splitlines()
    assert [l.split()[0] for l in lines] == ["load", "optimize", "write"]
    assert "\r" not in stderr and all("done in" in l for l in lines)


def test_convert_quiet_and_precision(resnet_small, tmp_path, capsys):
    rc, stdout, stderr = deepep_main(capsys, "convert", resnet_small, "-o", tmp_path / "r.de", "-q",
                                     "--precision", "tf32", "--fusion-level", "1")
    assert rc == 0 and stderr == ""
    m = deepep.Engine(tmp_path / "r.de").metadata
    assert m["precision"] == "tf32" and m["fusion_level"] == 1


def test_convert_errors(resnet_small, tmp_path, capsys):
    rc, _, err = deepep_main(capsys, "convert", tmp_path / "nope.onnx", "-o", tmp_path / "x.de")
    assert rc == 1 and "does not exist" in err
    (tmp_path / "m.tflite").write_bytes(b"x")
    rc, _, err = deepep_main(capsys, "convert", tmp_path / "m.tflite", "-o", tmp_path / "x.de")
    assert rc == 1 and "unknown extension" in err
    rc, _, err = deepep_main(capsys, "convert", resnet_small, "-o", tmp_path / "x.de", "--precision", "fp8")
    assert rc == 2 and "invalid choice" in err
    rc, _, err = deepep_main(capsys, "convert", resnet_small, "-o", tmp_path / "x.de", "--fusion-level", "7")
    assert rc == 2 and "out of range" in err
    rc, _, err = deepep_main(capsys, "convert", resnet_small, "-o", tmp_path / "x.de", "--fusion-level", "max")
    assert rc == 2 and "unknown fusion strategy" in err
    rc, _, err = deepep_main(capsys, "convert", resnet_small, "-o", tmp_path / "x.de", "-q", "--precision", "fp16")
    assert rc == 1 and "precision lowering" in err and "Traceback" not in err
    rc, _, err = deepep_main(capsys, "convert", resnet_small)
    assert rc == 2 and "-o" in err


def test_convert_pytorch_without_torch(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    (tmp_path / "m.pt").write_bytes(b"PK")
    rc, _, err = deepep_main(capsys, "convert", tmp_path / "m.pt", "-o", tmp_path / "m.de",
                             "--input-shape", "x=batch,3,224,224")
    assert rc == 1 and "needs PyTorch" in err


def test_progress_bar_redraws_in_place_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    s = Tty()
    bar = cli.ProgressBar(s, width=10)
    for stage in ("load", "optimize", "write"):
        for f in (0.0, 0.5, 0.5, 1.0):
            bar(stage, f)
    bar.close()
    text = s.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    frames = text.strip("\n").split("\r")[1:]
    assert len(frames) == 9  # repeated (stage, percent) pairs are not redrawn
    assert frames[-1] == "write          [##########] 100%"
    assert "optimize       [#####.....]  50%" in frames


# ---- inspect ------------------------------------------------------------------------

def _check_schema(r):
    assert {"fusion", "memory", "inputs", "outputs", "precision", "fusion_level"} <= set(r)
    f = r["fusion"]
    assert {"rate", "nodes_before", "nodes_after", "kernels", "passes"} <= set(f)
    assert isinstance(f["rate"], float) and 0.0 <= f["rate"] <= 1.0
    assert isinstance(f["passes"], dict)
    for p in f["passes"].values():
        assert {"runs", "changes", "counters"} <= set(p)


def test_inspect_onnx_json(resnet_small, capsys):
    rc, out, err = deepep_main(capsys, "inspect", resnet_small, "--dim", "batch=2", "--json")
    assert rc == 0, err
    r = json.loads(out)
    _check_schema(r)
    f = r["fusion"]
    assert r["precision"] == "fp32" and r["fusion_level"] == 2 and r["format"] == "onnx"
    assert f["nodes_before"] == len(onnx.load(resnet_small).graph.node)
    assert f["kernels"] == f["nodes_after"] == deepep.Engine(resnet_small, layout="nchw")._engine.node_count
    assert 0.0 < f["rate"] <= 1.0 and f["fused_kernels"] > 0  # Conv+ReLU and residual Adds fuse
    assert f["passes"]["conv_batchnorm_fold"]["changes"] >= 1 if "conv_batchnorm_fold" in f["passes"] else True
    assert any(p["changes"] for p in f["passes"].values())
    m = r["memory"]
    assert set(m) >= MEM_KEYS and all(isinstance(m[k], int) for k in MEM_KEYS)
    assert m["lower_bound_bytes"] <= m["planned_bytes"] <= m["naive_bytes"]
    assert m["weights_bytes"] > 0
    assert r["inputs"][0]["shape"][0] == "batch"


def test_inspect_levels_differ(resnet_small, capsys):
    r0 = json.loads(deepep_main(capsys, "inspect", resnet_small, "--fusion-level", "0", "--json")[1])
    r2 = json.loads(deepep_main(capsys, "inspect", resnet_small, "--fusion-level", "2", "--json")[1])
    assert r0["fusion"]["nodes_after"] == r0["fusion"]["nodes_before"] == r0["fusion"]["kernels"]
    assert r2["fusion"]["kernels"] < r0["fusion"]["kernels"]
    assert r0["fusion_level"] == 0 and all(p["runs"] == 0 for p in r0["fusion"]["passes"].values())


def test_inspect_de_file(resnet_de, capsys):
    rc, out, err = deepep_main(capsys, "inspect", resnet_de, "--shape", "input=1,3,64,64", "--json")
    assert rc == 0, err
    r = json.loads(out)
    _check_schema(r)
    assert r["format"] == "de" and r["precision"] == "fp32" and r["fusion_level"] == 2
    assert r["fusion"]["kernels"] == r["fusion"]["nodes_after"]
    assert r["memory"]["planned_bytes"] > 0 and r["memory_shapes"] == {"input": [1, 3, 64, 64]}


def test_inspect_memory_null_without_dims(resnet_small, capsys):
    rc, out, _ = deepep_main(capsys, "inspect", resnet_small, "--json")
    assert rc == 0
    r = json.loads(out)
    assert r["memory"] is None and "--dim batch=N" in r["memory_note"]
    rc, out, _ = deepep_main(capsys, "inspect", resnet_small)
    assert rc == 0 and "memory     null" in out and "--dim batch=N" in out


def test_inspect_text(resnet_small, capsys):
    rc, out, err = deepep_main(capsys, "inspect", resnet_small, "--dim", "batch=1")
    assert rc == 0, err
    for word in ("precision  fp32", "kernels", "fusion     rate ", "passes", "memory     planned"):
        assert word in out


def test_inspect_counts_subgraph_kernels_separately(if_model, capsys):
    rc, out, err = deepep_main(capsys, "inspect", if_model, "--dim", "n=3", "--json")
    assert rc == 0, err
    f = json.loads(out)["fusion"]
    assert f["kernels"] == 1 and f["subgraph_kernels"] == 2
    assert f["nodes_after"] == 3 and f["compute_ops"] == 2  # Add and Mul; If is a container


def test_inspect_errors(resnet_small, tmp_path, capsys):
    rc, _, err = deepep_main(capsys, "inspect", tmp_path / "nope.onnx")
    assert rc == 1 and "does not exist" in err
    rc, _, err = deepep_main(capsys, "inspect", resnet_small, "--shape", "nope=1,2")
    assert rc == 1 and "no input 'nope'" in err
    rc, _, err = deepep_main(capsys, "inspect", resnet_small, "--shape", "input=1,3,a")
    assert rc == 1 and "cannot read shape" in err
    rc, _, err = deepep_main(capsys, "inspect", resnet_small, "--shape", "input=1,4,64,64")
    assert rc == 1 and "input 'input'" in err and "Traceback" not in err
    rc, _, err = deepep_main(capsys, "inspect", resnet_small, "--fusion-level", "-1")
    assert rc == 2


def test_graph_text_parser_on_fused_and_quoted_nodes():
    text = """graph main(%x: float32[batch,4], %"odd = name": float32[4]) {
  %w: float32[4] = const[1, 2, 3, 4]
  %a: float32[batch,4] = deepep.FusedMatMul<activation="Relu">(%x, %w)
  %b: float32[batch,4] = deepep.FusedElementwise<ops=strings["Add","Mul"]>(%a)
  %"c = d": float32[batch,4], _ = Split<axis=0>(%b)
  %e: float32[batch,\"n x\"] = Reshape(%"c = d", %w)
  %y: float32[batch,4] = If<else_branch=graph else() {
    %z: float32[batch,4] = Relu(%e)
    return %z
  }, then_branch=graph then() {
    return %e
  }>(%c)
  return %y
}
"""
    s = analysis.parse_graph_text(text)
    assert [(n.domain, n.op, n.depth) for n in s.nodes] == [
        ("deepep", "FusedMatMul", 0), ("deepep", "FusedElementwise", 0), ("", "Split", 0), ("", "Reshape", 0),
        ("", "If", 0), ("", "Relu", 1)]
    assert s.kernels == 5 and s.subgraph_kernels == 1 and s.fused_kernels == 2
    assert s.compute_ops == 3  # two fused kernels and Relu
    # The passes' nodes_fused counters, and at least two ops per fused kernel.
    report = {"passes": [{"name": "a", "counters": {"nodes_fused": 5}}, {"name": "b", "counters": {}},
                         {"name": "c", "counters": {"nodes_fused": 2}}]}
    assert analysis.ops_in_fused_kernels(report, s) == 7
    assert analysis.ops_in_fused_kernels({"passes": [{"name": "a", "counters": {"nodes_fused": 3}}]}, s) == 4
    assert analysis.ops_in_fused_kernels({"passes": [{"name": "a", "counters": {}}]}, s) == 4
    assert analysis.ops_in_fused_kernels({"passes": []}, analysis.GraphStats()) == 0
    # The optimizer's fused_ops (source ops inside fused nodes): compute ops only.
    report = {"passes": [], "fused_nodes": 2, "fused_ops": {"MatMul": 2, "Add": 3, "Reshape": 2, "Softmax": 1}}
    assert analysis.ops_in_fused_kernels(report, s) == 6
    assert analysis.fused_nodes(report, s) == 2 and analysis.fused_nodes({}, s) == 2


def test_graph_text_parser_matches_engine_on_zoo_models(tmp_path):
    for name in ("bert-base", "mobilenetv2"):
        p = tmp_path / f"{name}.onnx"
        zoo.save(zoo.build(name, small=True), p)
        e = deepep.Engine(p, fusion_level=0, layout="nchw")  # no load-time layout change either
        s = analysis.engine_stats(e)  # raises when the top-level count disagrees with the engine
        # Constant nodes load as constants, not nodes.
        assert s.kernels == sum(n.op_type != "Constant" for n in onnx.load(p).graph.node)


# ---- bench --------------------------------------------------------------------------

def test_bench_json(resnet_small, capsys):
    rc, out, err = deepep_main(capsys, "bench", resnet_small, "--dim", "batch=4", "--warmup", "1",
                               "--iterations", "5", "--json")
    assert rc == 0, err
    r = json.loads(out)
    lat = r["latency_ms"]
    assert LAT_KEYS <= set(lat) and all(v > 0 for v in lat.values())
    assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert r["batch"] == 4 and r["iterations"] == 5
    assert r["throughput_per_s"] == pytest.approx(4 * 1000 / lat["mean"])


def test_bench_text_and_de(resnet_de, capsys):
    rc, out, err = deepep_main(capsys, "bench", resnet_de, "--shape", "input=2,3,64,64", "--warmup", "0",
                               "--iterations", "3")
    assert rc == 0, err
    assert "percentile(99%)" in out and "Throughput:" in out and "batch 2" in out


def test_bench_errors(resnet_small, capsys):
    rc, _, err = deepep_main(capsys, "bench", resnet_small, "--iterations", "2")
    assert rc == 1 and "--dim batch=N" in err
    rc, _, err = deepep_main(capsys, "bench", resnet_small, "--dim", "batch=1", "--iterations", "0")
    assert rc == 2 and "at least 1" in err
    rc, _, err = deepep_main(capsys, "bench", resnet_small, "--dim", "batch=x")
    assert rc == 1 and "must be an integer" in err


def test_summarize_statistics():
    times = [float(x) for x in range(1, 101)]  # 1..100 ms
    s = bench.summarize(times, batch=8)
    lat = s["latency_ms"]
    assert (lat["min"], lat["max"], lat["mean"], lat["median"]) == (1, 100, 50.5, 50.5)
    assert (lat["p90"], lat["p95"], lat["p99"]) == (90, 95, 99)  # nearest rank
    assert s["throughput_per_s"] == pytest.approx(8 * 1000 / 50.5)
    assert bench.summarize([3.0])["latency_ms"]["p99"] == 3.0
    assert bench.batch_of({"a": np.zeros((6, 2)), "b": np.zeros(3)}) == 6
    assert bench.batch_of({"a": np.float32(1)}) == 1
    with pytest.raises(ValueError):
        bench.summarize([])
    with pytest.raises(ValueError):
        bench.measure(lambda: None, iterations=0)
    calls = []
    assert len(bench.measure(lambda: calls.append(1), warmup=2, iterations=3)) == 3 and len(calls) == 5


# ---- run ----------------------------------------------------------------------------

def test_run_de_with_pool_and_level(resnet_small, resnet_de, capsys):
    rc, out, err = deepep_main(capsys, "run", resnet_de, "--random", "--dim", "batch=1", "--memory-pool-size", "8G")
    assert rc == 0, err
    assert "output" in out and "latency" in out
    rc, out, err = deepep_main(capsys, "run", resnet_small, "--random", "--dim", "batch=1", "--fusion-level", "0")
    assert rc == 0, err
    rc, _, err = deepep_main(capsys, "run", resnet_small, "--random", "--dim", "batch=1",
                             "--memory-pool-size", "1k")
    assert rc == 1 and "bytes" in err
    rc, _, err = deepep_main(capsys, "run", resnet_small, "--memory-pool-size", "lots")
    assert rc == 2 and "cannot read memory size" in err


def test_console_entry_point(resnet_small):
    r = subprocess.run([sys.executable, "-m", "deepep", "inspect", str(resnet_small), "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["memory"] is None
