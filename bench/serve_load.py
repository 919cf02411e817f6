#!/usr/bin/env python3
"""Open-loop load test for deepep-serve: adaptive batching vs a fixed batch cap
vs no batching, on the same model and latency target.

Requests arrive as a Poisson process at a sweep of rates; each request's
latency runs from its *scheduled* send time (so a slow server cannot slow the
client down and hide queueing: no coordinated omission). The client is
bench/serve_loadgen.cpp (C++, one keep-alive connection per thread), so on a
small machine it takes little of the CPU the server needs. Per rate:
throughput, goodput (answers within the target), p50/p90/p99, 503 rejections,
wrong answers (every answer is checked against onnxruntime, or numpy for the
built-in MLP). For each configuration the sustainable rate is the highest swept
rate whose p99 stays within the target; the adaptive server then runs at 2x
its sustainable rate (overload).

    PYTHONPATH=python python3 bench/serve_load.py [--json] [--target-ms 50]
    bench/serve_load.py --model bert.onnx --device cuda:0 --precision fp16 --target-ms 5 --configs adaptive

Needs a built deepep-serve and deepep_serve_loadgen ($DEEPEP_SERVE /
$DEEPEP_LOADGEN, build/dev, or on PATH).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]


def find_binary(name, env):
    if os.environ.get(env):
        return os.environ[env]
    for d in ("build/dev", "build/py", "build/gpu"):
        if (REPO / d / name).exists():
            return str(REPO / d / name)
    found = shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: build it (scripts/dev-build) or set {env}")
    return found


def serve_binary():
    return find_binary("deepep-serve", "DEEPEP_SERVE")


def make_model(path, d_in, hidden, layers, d_out, seed=0):
    """An MLP: x[batch, d_in] -> (MatMul + Add + Relu) x layers -> MatMul -> y[batch, d_out]."""
    rng = np.random.default_rng(seed)
    ws, nodes, inits, prev, dim = [], [], [], "x", d_in
    for i in range(layers):
        w = (rng.standard_normal((dim, hidden)) / np.sqrt(dim)).astype(np.float32)
        b = (rng.standard_normal(hidden) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
                  helper.make_node("Relu", [f"a{i}"], [f"r{i}"])]
        ws.append((w, b))
        prev, dim = f"r{i}", hidden
    wo = (rng.standard_normal((dim, d_out)) / np.sqrt(dim)).astype(np.float32)
    inits.append(numpy_helper.from_array(wo, "wo"))
    nodes.append(helper.make_node("MatMul", [prev, "wo"], ["y"]))
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", d_in])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", d_out])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)

    def ref(feeds):
        h = feeds["x"].astype(np.float64)
        for w, b in ws:
            h = np.maximum(h @ w + b, 0)
        return [(h @ wo).astype(np.float32)]

    return ref


KSERVE = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64", np.dtype(np.int32): "INT32",
          np.dtype(np.float16): "FP16", np.dtype(np.bool_): "BOOL", np.dtype(np.uint8): "UINT8"}


def random_inputs(model_path, n, seq, seed=1):
    """n batch-1 feeds for the model's inputs: floats ~ N(0, 1); token ids in [0, 1000); masks of
    ones; token type ids zero. Symbolic dims: the first is the batch (1), others --seq."""
    m = onnx.load(str(model_path), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    rng = np.random.default_rng(seed)
    specs = []
    for v in m.graph.input:
        if v.name in inits:
            continue
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (1 if i == 0 else seq) for i, d in enumerate(t.shape.dim)]
        specs.append((v.name, onnx.helper.tensor_dtype_to_np_dtype(t.elem_type), dims))
    feeds = []
    for _ in range(n):
        f = {}
        for name, dt, dims in specs:
            if np.issubdtype(dt, np.floating):
                f[name] = rng.standard_normal(dims).astype(dt)
            elif "mask" in name:
                f[name] = np.ones(dims, dt)
            elif "type" in name:
                f[name] = np.zeros(dims, dt)
            else:
                f[name] = rng.integers(0, 1000, dims).astype(dt)
        feeds.append(f)
    return feeds


def write_payloads(folder, feeds, expected):
    """The loadgen's manifest: per feed, a binary-extension request body and its expected float32 answer."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for k, (f, outs) in enumerate(zip(feeds, expected)):
        hdr = json.dumps({"inputs": [{"name": n, "datatype": KSERVE[x.dtype], "shape": list(x.shape),
                                      "parameters": {"binary_data_size": x.nbytes}} for n, x in f.items()],
                          "parameters": {"binary_data_output": True}}).encode()
        (folder / f"{k}.body").write_bytes(hdr + b"".join(np.ascontiguousarray(x).tobytes() for x in f.values()))
        (folder / f"{k}.out").write_bytes(b"".join(np.asarray(o, np.float32).tobytes() for o in outs))
        manifest.append({"body": f"{k}.body", "header_length": len(hdr), "expected": f"{k}.out"})
    (folder / "manifest.json").write_text(json.dumps(manifest))


class Server:
    def __init__(self, model, args):
        self.proc = subprocess.Popen([serve_binary(), "--model", str(model), "--port", "0", *args],
                                     stderr=subprocess.PIPE, text=True)
        self.log, self.port, ready = [], None, threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(120)
        if not self.port:
            raise RuntimeError("server did not start:\n" + "".join(self.log))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9


def run_load(port, model_name, rate, duration, payload_dir, target_s, seed, tol):
    """One open-loop run of the C++ load generator; latency percentiles from its per-request numbers."""
    cmd = [find_binary("deepep_serve_loadgen", "DEEPEP_LOADGEN"), "--port", str(port), "--model", model_name,
           "--payloads", str(payload_dir), "--rate", f"{rate:.6g}", "--duration", str(duration), "--seed", str(seed),
           "--rtol", str(tol), "--atol", str(tol), "--threads", "256"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 4 + 120)
    if p.returncode != 0:
        raise RuntimeError(f"load generator failed ({p.returncode}): {p.stderr}")
    r = json.loads(p.stdout)
    lat = np.array(r["latency_ms"]) / 1e3 if r["latency_ms"] else np.array([np.inf])
    good = int(np.sum(lat <= target_s))
    wall = r["wall_s"]
    return {
        "rate": rate, "sent": r["sent"], "ok": r["ok"], "rejected": r["rejected"], "errors": r["errors"],
        "wrong": r["wrong"], "throughput": r["ok"] / wall, "goodput": good / wall,
        "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90), "p99_ms": pct(lat, 99), "messages": r["messages"],
    }


def pct(lat, q):
    return float(np.percentile(lat, q) * 1e3) if np.isfinite(lat).all() else float("inf")


def scrape(port):
    import urllib.request
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()


def histogram(text, name):
    """Cumulative bucket counts {le: count} of a histogram in /metrics."""
    return {float(m.group(1)): float(m.group(2))
            for m in re.finditer(rf'^{name}_bucket{{[^}}]*le="([^"]+)"}} (\S+)$', text, re.M)}


def batch_metrics(port, before=None):
    """Batching counters of the run (differences from `before`, a scrape taken
    before it) and the server-side p99 (arrival to response, successful
    requests; the upper bound of its histogram bucket)."""
    text = scrape(port)
    def get(name, t):
        m = re.search(rf"^{name}{{[^}}]*}} (\S+)$", t, re.M)
        return float(m.group(1)) if m else 0.0
    b = before or ""
    cnt = get("deepep_batch_size_count", text) - get("deepep_batch_size_count", b)
    rows = get("deepep_batch_size_sum", text) - get("deepep_batch_size_sum", b)
    h1, h0 = histogram(text, "deepep_request_duration_seconds"), histogram(b, "deepep_request_duration_seconds")
    d = {le: c - h0.get(le, 0) for le, c in h1.items()}
    total = d.get(float("inf"), 0)
    p99 = next((le for le in sorted(d) if total and d[le] >= 0.99 * total), float("nan"))
    return {"batches": cnt, "mean_batch": rows / cnt if cnt else 0, "batch_limit": get("deepep_batch_limit", text),
            "max_wait_ms": get("deepep_batch_max_wait_seconds", text) * 1e3, "server_p99_ms": p99 * 1e3}


def profile_l1(log):
    m = re.search(r"per batch size: 1: ([\d.]+) ms", "".join(log))
    return float(m.group(1)) / 1e3 if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target-ms", type=float, default=100.0)
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per rate")
    ap.add_argument("--multipliers", default="0.5,0.8,1.0,1.25,1.6,2.0,2.5,3.2,4.0",
                    help="rates as multiples of 1/(batch-1 compute latency)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--fixed-batch", type=int, default=8)
    ap.add_argument("--configs", default="adaptive,fixed,none", help="which of adaptive, fixed, none to run")
    ap.add_argument("--model", help="an ONNX model to serve (default: a built-in MLP); answers are checked "
                                    "against onnxruntime")
    ap.add_argument("--seq", type=int, default=128, help="symbolic non-batch dims of --model's inputs")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "fp32-strict", "fp16"))
    ap.add_argument("--tol", type=float, help="answer tolerance, absolute and relative (default 1e-3, fp16 3e-2)")
    ap.add_argument("--hidden", type=int, default=2048, help="built-in MLP width")
    ap.add_argument("--layers", type=int, default=2, help="built-in MLP depth")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", help="write the markdown report here")
    a = ap.parse_args()
    target = a.target_ms / 1e3
    tol = a.tol if a.tol is not None else (3e-2 if a.precision == "fp16" else 1e-3)

    tmp = Path(tempfile.mkdtemp())
    if a.model:
        import onnxruntime as ort
        model = Path(a.model)
        feeds = random_inputs(model, 32, a.seq)
        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        expected = [sess.run(None, f) for f in feeds]
        a.description = f"{model.name} (inputs {', '.join(f'{k} {list(v.shape)}' for k, v in feeds[0].items())})"
    else:
        model = tmp / "mlp.onnx"
        ref = make_model(model, 256, a.hidden, a.layers, 64)
        feeds = random_inputs(model, 64, a.seq)
        expected = [ref(f) for f in feeds]
        a.description = f"MLP 256 -> {a.hidden} x{a.layers} -> 64"
    model_name = model.stem
    payload_dir = tmp / "payloads"
    write_payloads(payload_dir, feeds, expected)

    common = ["--http-threads", "1024", "--device", a.device, "--precision", a.precision]
    all_configs = {
        "adaptive": ["--batch-size", str(a.batch_size), "--latency-target-ms", str(a.target_ms)],
        f"fixed{a.fixed_batch}": ["--batch-size", str(a.fixed_batch), "--max-queue", "100000"],
        "none": ["--batch-size", "1", "--max-queue", "100000"],
    }
    wanted = [w.strip() for w in a.configs.split(",")]
    configs = {k: v + common for k, v in all_configs.items() if k.rstrip("0123456789") in wanted}
    if "adaptive" not in configs:
        sys.exit("--configs must include adaptive")
    results = {"target_ms": a.target_ms, "configs": {}, "machine": platform.node(), "cpu": cpu_name(),
               "cores": os.cpu_count(), "device": a.device, "precision": a.precision, "model": a.description,
               "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes")}
    # All servers up at once (idle ones cost nothing) and the configurations
    # interleaved at each rate, so background load on a shared machine hits
    # them alike.
    servers = {name: Server(model, args) for name, args in configs.items()}
    try:
        l1 = profile_l1(next(iter(servers.values())).log)
        rates = [m / l1 for m in map(float, a.multipliers.split(","))]
        sweeps = {name: [] for name in configs}
        saturated = set()
        for i, r in enumerate(rates):
            for name, srv in servers.items():
                if name in saturated:
                    continue
                before = scrape(srv.port)
                res = run_load(srv.port, model_name, r, a.duration, payload_dir, target, i, tol)
                res.update(batch_metrics(srv.port, before))
                sweeps[name].append(res)
                log(f"{name:9s} rate {r:7.1f}/s  thr {res['throughput']:7.1f}  good {res['goodput']:7.1f}  "
                    f"p50 {res['p50_ms']:7.1f}  p99 {res['p99_ms']:8.1f} ms  rej {res['rejected']:5d}  "
                    f"wrong {res['wrong']}  err {res['errors']}  mean batch {res['mean_batch']:.1f}  "
                    f"server p99 <= {res['server_p99_ms']:.0f} ms", a)
                if res["errors"] and res["messages"]:
                    log(f"          first errors: {res['messages'][:2]}", a)
                if res["p99_ms"] > 8 * a.target_ms and res["rejected"] == 0:
                    saturated.add(name)  # no admission control: higher rates only queue more
        for name, rows in sweeps.items():
            within = [r for r in rows if r["p99_ms"] <= a.target_ms and r["errors"] == 0 and r["wrong"] == 0]
            sustain = [r for r in within if r["rejected"] <= 0.01 * r["sent"]]
            best = max(within, key=lambda r: r["goodput"]) if within else None
            results["configs"][name] = {
                "args": configs[name], "sweep": rows,
                "sustainable_rate": max((r["rate"] for r in sustain), default=0),
                "goodput_at_target": best["goodput"] if best else 0}
        sus = results["configs"]["adaptive"]["sustainable_rate"]
        if sus:
            srv = servers["adaptive"]
            before = scrape(srv.port)
            over = run_load(srv.port, model_name, 2 * sus, a.duration, payload_dir, target, 99, tol)
            over.update(batch_metrics(srv.port, before))
            over["server_up"] = urllib_ok(srv.port)
            results["overload"] = over
            log(f"overload  rate {over['rate']:7.1f}/s  thr {over['throughput']:7.1f}  good {over['goodput']:7.1f}  "
                f"p99 {over['p99_ms']:7.1f} ms  rej {over['rejected']} of {over['sent']}  wrong {over['wrong']}  "
                f"err {over['errors']}  up {over['server_up']}  server p99 <= {over['server_p99_ms']:.0f} ms", a)
    finally:
        for name, srv in servers.items():
            results["configs"].setdefault(name, {})["exit_code"] = srv.stop()
    results["batch1_compute_ms"] = l1 * 1e3 if l1 else None
    g = {k: v.get("goodput_at_target", 0) for k, v in results["configs"].items()}
    results["ratio_adaptive_vs_none"] = g["adaptive"] / g["none"] if g.get("none") else None
    shutil.rmtree(tmp, ignore_errors=True)
    results["ratio_adaptive_vs_fixed"] = g["adaptive"] / g[f"fixed{a.fixed_batch}"] if g.get(f"fixed{a.fixed_batch}") else None
    if a.json:
        print(json.dumps(results, indent=1))
    else:
        print(report(results, a))
    if a.out:
        Path(a.out).write_text(report(results, a))


def urllib_ok(port):
    import urllib.request
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/live", timeout=5).status == 200
    except Exception:
        return False


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def log(msg, a):
    print(msg, file=sys.stderr if a.json else sys.stdout, flush=True)


def report(r, a):
    out = [f"# deepep-serve load test ({r['date']})", "",
           f"Machine {r['machine']}, {r['cpu']}, {r['cores']} cores; device {r['device']}, {r['precision']}. "
           f"Model: {r['model']} (batch-1 compute {r['batch1_compute_ms'] or 0:.2f} ms). "
           f"Latency target {r['target_ms']:g} ms; Poisson arrivals, {a.duration:.0f} s per rate, latency from "
           f"each request's scheduled send time (C++ client, bench/serve_loadgen.cpp).", "",
           "| config | sustainable rate (p99 <= target) | goodput there (req/s) |", "|---|---|---|"]
    for k, v in r["configs"].items():
        out.append(f"| {k} | {v.get('sustainable_rate', 0):.0f}/s | {v.get('goodput_at_target', 0):.0f} |")
    if r["ratio_adaptive_vs_none"] is not None:
        out += ["", f"Adaptive vs no batching: **{r['ratio_adaptive_vs_none']:.2f}x** goodput at the same p99 target; "
                    f"vs fixed cap: {r['ratio_adaptive_vs_fixed'] or 0:.2f}x.", ""]
    else:
        out.append("")
    for k, v in r["configs"].items():
        out += [f"## {k} (`{' '.join(v.get('args', []))}`)", "",
                "| rate/s | thr/s | goodput/s | p50 ms | p90 ms | p99 ms | server p99 <= ms | 503 | errors | wrong | mean batch |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in v.get("sweep", []):
            out.append(f"| {s['rate']:.0f} | {s['throughput']:.0f} | {s['goodput']:.0f} | {s['p50_ms']:.1f} | "
                       f"{s['p90_ms']:.1f} | {s['p99_ms']:.1f} | {s['server_p99_ms']:.0f} | {s['rejected']} | {s['errors']} | {s['wrong']} | "
                       f"{s['mean_batch']:.1f} |")
        out.append(f"\nexit code after SIGTERM: {v.get('exit_code')}\n")
    o = r.get("overload")
    if o:
        out += ["## Overload: adaptive at 2x its sustainable rate", "",
                f"rate {o['rate']:.0f}/s: {o['ok']} answered, {o['rejected']} refused with 503, {o['errors']} errors, "
                f"{o['wrong']} wrong; admitted p50 {o['p50_ms']:.1f} ms, p99 {o['p99_ms']:.1f} ms "
                f"({o['p99_ms'] / r['target_ms']:.2f}x target; server side, arrival to response: p99 <= {o['server_p99_ms']:.0f} ms); "
                f"goodput {o['goodput']:.0f}/s; server up: {o['server_up']}.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
