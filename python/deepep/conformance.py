"""ONNX conformance: runs the `onnx` wheel's backend node tests and its "light"
model-zoo graphs through DeepEP and compares with the reference outputs.

    python -m deepep.conformance [--json] [-k PATTERN] [--jobs N]
        [--write-passing FILE] [--check-passing FILE]

A case is skipped when DeepEP reports it cannot load the model (an op or dtype
it does not support, non-tensor inputs); it fails on a wrong answer, a runtime
error, a crash or a time-out. Cases run in worker processes, so a crash costs
one case, not the run. Tolerances are the ONNX runner's (rtol 1e-3, atol 1e-7).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np

CASE_TIMEOUT_S = 180
# (rtol, atol) of the light models, from onnx/backend/test/case/model.
LIGHT_TOLERANCES = {"densenet121": (2e-3, 1e-7)}


def onnx_test_data() -> str:
    try:
        import onnx
    except ImportError:
        sys.exit("deepep.conformance needs the onnx package: pip install onnx==1.22.0")
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")


def list_cases() -> list[str]:
    data = onnx_test_data()
    node = sorted(os.listdir(os.path.join(data, "node")))
    light = sorted(
        os.path.basename(p)[: -len(".onnx")]
        for p in glob.glob(os.path.join(data, "light", "light_*.onnx"))
    )
    return [f"node/{c}" for c in node] + [f"light/{c}" for c in light]


class Skip(Exception):
    pass


def _load_tensor(path: str):
    import onnx
    from onnx import numpy_helper

    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def _graph_inputs(model):
    inits = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def _light_inputs(model):
    feeds = {}
    for x in _graph_inputs(model):
        shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in x.type.tensor_type.shape.dim)
        n = int(np.prod(shape))
        feeds[x.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
    return feeds


def _compare(expected, actual, rtol, atol):
    if len(expected) != len(actual):
        raise AssertionError(f"expected {len(expected)} outputs, got {len(actual)}")
    for i, (e, a) in enumerate(zip(expected, actual)):
        if e.shape != a.shape:
            raise AssertionError(f"output {i}: shape {a.shape}, expected {e.shape}")
        if e.dtype != a.dtype:
            raise AssertionError(f"output {i}: dtype {a.dtype}, expected {e.dtype}")
        if e.dtype.kind in "fc" or e.dtype.name in ("bfloat16",) or "float8" in e.dtype.name:
            np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol,
                                       err_msg=f"output {i}")
        else:
            np.testing.assert_array_equal(a, e, err_msg=f"output {i}")


def run_case(case: str) -> tuple[str, str]:
    """Returns (status, detail): status is pass, fail or skip."""
    import onnx

    import deepep

    data = onnx_test_data()
    kind, name = case.split("/", 1)
    if kind == "node":
        d = os.path.join(data, "node", name)
        model_path = os.path.join(d, "model.onnx")
        rtol, atol = 1e-3, 1e-7
    else:
        model_path = os.path.join(data, "light", name + ".onnx")
        rtol, atol = LIGHT_TOLERANCES.get(name[len("light_"):], (1e-3, 1e-7))
    model = onnx.load(model_path, load_external_data=False)
    for x in _graph_inputs(model):
        if not x.type.HasField("tensor_type"):
            raise Skip(f"input '{x.name}' is not a tensor ({x.type.WhichOneof('value')})")
    for x in model.graph.output:
        if not x.type.HasField("tensor_type"):
            raise Skip(f"output '{x.name}' is not a tensor ({x.type.WhichOneof('value')})")
    try:
        engine = deepep.Engine(model_path)
    except deepep.Error as e:
        msg = str(e)
        if "not support" in msg or "unsupported" in msg:
            raise Skip(msg.splitlines()[0] + (" " + msg.splitlines()[1].strip() if "\n" in msg else ""))
        raise
    inputs = _graph_inputs(model)
    if kind == "node":
        sets = sorted(glob.glob(os.path.join(d, "test_data_set_*")))
        datasets = []
        for s in sets:
            feeds = {}
            for i, x in enumerate(inputs):
                p = os.path.join(s, f"input_{i}.pb")
                if os.path.exists(p):
                    feeds[x.name] = _load_tensor(p)
            outs = [_load_tensor(os.path.join(s, f"output_{i}.pb")) for i in range(len(model.graph.output))]
            datasets.append((feeds, outs))
    else:
        outs = [_load_tensor(os.path.join(data, "light", f"{name}_output_{i}.pb")) for i in range(len(model.graph.output))]
        datasets = [(_light_inputs(model), outs)]
    for feeds, expected in datasets:
        got = engine.run(feeds)
        _compare(expected, [got[o.name] for o in model.graph.output], rtol, atol)
    return "pass", ""


def _worker(cases: list[str]) -> None:
    for case in cases:
        print(json.dumps({"case": case, "status": "start"}), flush=True)
        t0 = time.time()
        try:
            status, detail = run_case(case)
        except Skip as e:
            status, detail = "skip", str(e)
        except Exception as e:  # noqa: BLE001 - any failure of DeepEP is a failed case
            status, detail = "fail", f"{type(e).__name__}: {str(e).strip()}"
        print(json.dumps({"case": case, "status": status, "detail": detail[:2000],
                          "seconds": round(time.time() - t0, 3)}), flush=True)


def _run_chunk(cases: list[str], results: dict, on_result) -> None:
    """Runs cases in a worker process, restarting it after a crash or time-out."""
    pending = list(cases)
    while pending:
        proc = subprocess.Popen([sys.executable, "-m", "deepep.conformance", "--worker", *pending],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        current = None
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        started = time.time()
        while True:
            if not sel.select(timeout=1.0):
                if current and time.time() - started > CASE_TIMEOUT_S:
                    proc.kill()
                    proc.wait()
                    r = {"case": current, "status": "fail", "detail": f"timed out after {CASE_TIMEOUT_S}s"}
                    results[current] = r
                    on_result(r)
                    pending.remove(current)
                    break
                continue
            line = proc.stdout.readline()
            if not line:
                proc.wait()
                if current:
                    r = {"case": current, "status": "fail", "detail": f"crashed (exit code {proc.returncode})"}
                    results[current] = r
                    on_result(r)
                    pending.remove(current)
                break
            r = json.loads(line)
            if r["status"] == "start":
                current, started = r["case"], time.time()
                continue
            results[r["case"]] = r
            on_result(r)
            pending.remove(r["case"])
            current = None
        if not pending:
            break


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m deepep.conformance", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print only the totals as JSON")
    ap.add_argument("-k", dest="pattern", help="only cases whose name contains PATTERN")
    ap.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--write-passing", metavar="FILE", help="write the names of passing cases")
    ap.add_argument("--check-passing", metavar="FILE",
                    help="exit 1 if a case listed in FILE no longer passes")
    ap.add_argument("--failures", action="store_true", help="print the reason of every failure")
    ap.add_argument("--worker", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        _worker(args.worker)
        return 0

    cases = list_cases()
    if args.pattern:
        cases = [c for c in cases if args.pattern in c]
    results: dict = {}
    import threading

    lock = threading.Lock()

    def on_result(r):
        if args.json:
            return
        with lock:
            line = f"{r['status'].upper():4} {r['case']}"
            if r["status"] != "pass" and r.get("detail"):
                line += "  -- " + r["detail"].splitlines()[0][:160]
            print(line, flush=True)

    jobs = max(1, min(args.jobs, len(cases)))
    chunks = [cases[i::jobs] for i in range(jobs)]
    threads = [threading.Thread(target=_run_chunk, args=(c, results, on_result)) for c in chunks]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = {s: sum(1 for r in results.values() if r["status"] == s) for s in ("pass", "fail", "skip")}
    summary = {"passed": counts["pass"], "failed": counts["fail"], "skipped": counts["skip"], "total": len(cases)}
    if args.json:
        print(json.dumps(summary))
    else:
        if args.failures:
            for c in sorted(results):
                if results[c]["status"] == "fail":
                    print(f"--- {c}\n{results[c]['detail']}")
        rate = summary["passed"] / max(1, summary["total"])
        print(f"\n{summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped"
              f" of {summary['total']} ({rate:.1%} pass) in {time.time() - t0:.0f}s")
    passing = sorted(c for c, r in results.items() if r["status"] == "pass")
    if args.write_passing:
        with open(args.write_passing, "w") as f:
            f.write("\n".join(passing) + "\n")
    if args.check_passing:
        with open(args.check_passing) as f:
            expected = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        selected = set(cases)
        lost = [c for c in expected if c in selected and results.get(c, {}).get("status") != "pass"]
        if lost:
            print(f"REGRESSION: {len(lost)} case(s) that passed before no longer pass:", file=sys.stderr)
            for c in lost:
                print(f"  {c}: {results.get(c, {}).get('detail', 'missing')[:300]}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
