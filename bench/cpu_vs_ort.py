#!/usr/bin/env python3
"""CPU latency: DeepEP vs onnxruntime, side by side in one process.

    PYTHONPATH=python python3 bench/cpu_vs_ort.py [--models resnet50 gpt2] [--iterations 30] [--json]
    (--models mlp-small conv-small: two tiny models whose time is per-op overhead, not arithmetic)

For each zoo model (random weights; batch 1, text models seq 128) it builds the
ONNX file once (cached under --cache-dir), loads it in DeepEP (Engine,
--fusion-level, default 3; --precision, default fp32, the Engine's default,
which on a CPU with AMX tiles runs float32 GEMMs as bf16x3 with ~1e-5
relative error, see docs/CPU.md; fp32-strict keeps float32 FMAs, as
onnxruntime does) and in onnxruntime (CPUExecutionProvider, fp32,
ORT_ENABLE_ALL, the same intra-op thread count, inter-op 1, sequential), checks
that both give the same outputs, warms both up, then times them alternately
(DeepEP run, ORT run, DeepEP run, ...) so load from other processes hits both
alike, with a pause before each run (--gap-ms, default 200 ms) so the other
runtime's idle threads have stopped spinning: onnxruntime's intra-op workers
spin after a run, and with a 20 ms pause they still held one of this 2-vCPU
machine's cores during DeepEP's next run (resnet50 at 2 threads: DeepEP 85 ms
after 20 ms, 61-62 ms after 100-200 ms; ORT 49-53 ms either way). Reports the median latency of each and the ratio DeepEP/ORT (< 1: DeepEP
is faster). --json prints a list of {"model", "deepep_ms", "ort_ms", "ratio"}.
A markdown table with the CPU model, thread count, load average and date,
and per model the middle half of the per-pair ratios and the hypervisor's
steal time during the runs (how far one table can be trusted on a shared
machine), is written to bench/results/cpu_vs_ort_<date>.md (--no-write to skip).

Each model's FLOPs (its Conv / MatMul / Gemm multiply-adds, bench/model_flops.py)
over each runtime's latency give GFLOP/s; with --peak-gflops (the FMA peak at
--threads that build/<dir>/deepep_gemm_bench prints) the table adds each
runtime's share of that peak and the ratio floor: DeepEP/ORT if DeepEP ran
every counted FLOP at the peak and nothing else took time (Winograd convs do
fewer multiplies than counted, so the floor binds GEMM-bound models only).
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time

from model_flops import model_flops

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = ["resnet50", "mobilenetv2", "resnet152", "bert-base", "gpt2"]
TEXT = {"bert-base", "gpt2"}
# Not in the default set: models small enough that per-op and per-run
# overhead (kernel choice, attribute reads, the Python call) is what is timed.
SMALL = ["mlp-small", "conv-small"]


def small_model(name):
    """mlp-small: 16 x (MatMul 4x64 @ 64x64, Add bias, Relu); conv-small: 50 x (Conv 1x1 16 -> 16 on 4x4, Relu)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, cur = [], [], "x"
    mlp = name == "mlp-small"
    shape = [4, 64] if mlp else [1, 16, 4, 4]
    for i in range(16 if mlp else 50):
        w = rng.standard_normal((64, 64) if mlp else (16, 16, 1, 1)).astype(np.float32) * (0.1 if mlp else 0.25)
        b = rng.standard_normal(64 if mlp else 16).astype(np.float32) * 0.1
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        if mlp:
            nodes += [helper.make_node("MatMul", [cur, f"w{i}"], [f"m{i}"]),
                      helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"])]
        else:
            nodes.append(helper.make_node("Conv", [cur, f"w{i}", f"b{i}"], [f"a{i}"]))
        nodes.append(helper.make_node("Relu", [f"a{i}"], [f"r{i}"]))
        cur = f"r{i}"
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(cur, TensorProto.FLOAT, shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def cpu_model():
    from deepep.devices import devices  # the hardware probe's CPU entry (deepep inspect --device)

    return devices()[0]["name"]


def gemm_path(precision):
    """How DeepEP runs float32 GEMMs here at `precision` (the hardware probe's answer)."""
    from deepep.devices import devices

    amx = devices()[0]["paths"]["fp32_gemm"].startswith("bf16x3")
    return "bf16x3 on AMX tiles" if amx and precision == "fp32" else "float32 FMAs"


def build_model(name, cache_dir, seq):
    from deepep import zoo

    os.makedirs(cache_dir, exist_ok=True)
    suffix = f"_b1_s{seq}" if name in TEXT else "_b1"
    path = os.path.join(cache_dir, f"{name}{suffix}.onnx")
    if name in SMALL:
        path = os.path.join(cache_dir, f"{name}.onnx")
        if not os.path.exists(path):
            import onnx

            onnx.save(small_model(name), path)
        return path
    if not os.path.exists(path):
        opts = {"batch": 1}
        if name in TEXT:
            opts["seq"] = seq
        zoo.save(zoo.build(name, **opts), path)
    return path


def make_feeds(sess, seq, rng):
    import numpy as np

    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else (1 if n == 0 else seq) for n, d in enumerate(i.shape)]
        if "int" in i.type:
            if "mask" in i.name:
                feeds[i.name] = np.ones(shape, dtype=np.int64)
            elif "type" in i.name or "position" in i.name:
                feeds[i.name] = np.zeros(shape, dtype=np.int64)
            else:
                feeds[i.name] = rng.integers(0, 1000, size=shape).astype(np.int64)
        else:
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def ort_session(path, threads):
    """onnxruntime on the CPU as the comparison runs it: `threads` intra-op, sequential, all graph optimizations."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def cpu_ticks():
    """(steal, total) jiffies of all CPUs from /proc/stat (Linux; zeros elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def bench_model(name, a, rng):
    import numpy as np
    import deepep

    path = build_model(name, a.cache_dir, a.seq)
    osess = ort_session(path, a.threads)
    engine = deepep.Engine(path, fusion_level=a.fusion_level, precision=a.precision)
    feeds = make_feeds(osess, a.seq, rng)
    ours = engine.run(feeds)
    theirs = dict(zip([o.name for o in osess.get_outputs()], osess.run(None, feeds)))
    max_err = 0.0
    for k, v in theirs.items():
        if k in ours and np.issubdtype(v.dtype, np.floating):
            scale = max(1.0, float(np.max(np.abs(v))))
            max_err = max(max_err, float(np.max(np.abs(ours[k].astype(np.float64) - v))) / scale)
    for _ in range(a.warmup):
        engine.run(feeds)
        osess.run(None, feeds)
    td, to = [], []
    gap = a.gap_ms / 1e3
    steal0, total0 = cpu_ticks()
    for _ in range(a.iterations):
        # A pause before each run lets the other runtime's idle threads stop
        # spinning (both pools spin briefly after a run), so neither run
        # competes with the other's leftovers.
        time.sleep(gap)
        t0 = time.perf_counter()
        engine.run(feeds)
        td.append((time.perf_counter() - t0) * 1e3)
        time.sleep(gap)
        t0 = time.perf_counter()
        osess.run(None, feeds)
        to.append((time.perf_counter() - t0) * 1e3)
    steal1, total1 = cpu_ticks()
    d, o = statistics.median(td), statistics.median(to)
    # The spread of the per-pair ratios (each DeepEP run over the ORT run
    # after it) and the share of CPU time the hypervisor gave to other
    # guests: how far one table can be trusted on a shared machine.
    q = statistics.quantiles([x / y for x, y in zip(td, to)], n=4) if len(td) > 1 else [d / o] * 3
    steal = 100.0 * (steal1 - steal0) / (total1 - total0) if total1 > total0 else 0.0
    gflop = model_flops(path, feeds) / 1e9
    return {"model": name, "deepep_ms": round(d, 3), "ort_ms": round(o, 3), "ratio": round(d / o, 3),
            "max_rel_err": max_err, "pair_q1": q[0], "pair_q3": q[2], "steal_pct": steal, "gflop": gflop,
            "deepep_gflops": gflop / d * 1e3, "ort_gflops": gflop / o * 1e3}


def peak_columns(r, peak):
    """(DeepEP % of peak, ORT % of peak, ratio floor) of a result row."""
    return 100 * r["deepep_gflops"] / peak, 100 * r["ort_gflops"] / peak, r["ort_gflops"] / peak


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=MODELS, choices=MODELS + SMALL,
                   help=f"default: the five zoo models; {' and '.join(SMALL)} time per-op overhead")
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads of both (default: CPUs)")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--gap-ms", type=float, default=200.0, help="pause before each timed run (default 200 ms)")
    p.add_argument("--fusion-level", type=int, default=3)
    p.add_argument("--precision", choices=("fp32", "fp32-strict"), default="fp32",
                   help="DeepEP's precision (default fp32, the Engine's: float32 GEMMs as bf16x3 on AMX tiles "
                        "where the CPU has them; fp32-strict: float32 FMAs only, as onnxruntime)")
    p.add_argument("--cache-dir", default=os.path.join(ROOT, "build", "bench_models"))
    p.add_argument("--peak-gflops", type=float, default=None,
                   help="the CPU's FMA peak GFLOP/s at --threads (deepep_gemm_bench prints it): adds each "
                        "runtime's share of it and the ratio floor to the table")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-write", action="store_true")
    a = p.parse_args()
    # DeepEP's pool reads this at first use; ORT gets intra_op_num_threads.
    os.environ.setdefault("DEEPEP_NUM_THREADS", str(a.threads))
    # numpy's OpenBLAS starts a thread per CPU whose waits spin (perf showed
    # 2-3% of this machine's samples in blas_thread_server during timed
    # runs of either engine); the script does no BLAS work.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    load_before = os.getloadavg()
    rows = []
    for m in a.models:
        r = bench_model(m, a, rng)
        rows.append(r)
        if not a.json:
            print(f"{m:12s} deepep {r['deepep_ms']:9.3f} ms  ort {r['ort_ms']:9.3f} ms  ratio {r['ratio']:.3f}"
                  f"  (pairs {r['pair_q1']:.2f}-{r['pair_q3']:.2f}, steal {r['steal_pct']:.1f} %,"
                  f" max rel err {r['max_rel_err']:.1e})", flush=True)
            line = (f"{'':12s} {r['gflop']:.3g} GFLOP a run: deepep {r['deepep_gflops']:.1f} GFLOP/s,"
                    f" ort {r['ort_gflops']:.1f} GFLOP/s")
            if a.peak_gflops:
                dp, op, floor = peak_columns(r, a.peak_gflops)
                line += f" ({dp:.0f} % / {op:.0f} % of the {a.peak_gflops:.0f} peak; ratio floor {floor:.2f})"
            print(line, flush=True)
    load_after = os.getloadavg()
    if a.json:
        print(json.dumps([{k: r[k] for k in ("model", "deepep_ms", "ort_ms", "ratio")} for r in rows]))
    if not a.no_write:
        from deepep import _deepep  # noqa: F401  (the build measured)

        day = datetime.date.today().isoformat()
        out = os.path.join(HERE, "results", f"cpu_vs_ort_{day}.md")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        lines = [f"# CPU latency, DeepEP vs onnxruntime ({day})", "",
                 f"- CPU: {cpu_model()} ({os.cpu_count()} logical CPUs), {platform.machine()}",
                 f"- threads: {a.threads} intra-op for both; onnxruntime {ort.__version__}, ORT_ENABLE_ALL, fp32",
                 f"- DeepEP fusion level {a.fusion_level}, ISA {os.environ.get('DEEPEP_CPU_ISA', 'best')}, "
                 f"precision {a.precision} (float32 GEMMs: {gemm_path(a.precision)})",
                 f"- batch 1, text models seq {a.seq}; median of {a.iterations} alternating runs after {a.warmup} warm-up",
                 f"- load average (1/5/15 min) before: {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
                 f"after: {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f} (shared machine)",
                 f"- command: `{' '.join(sys.argv)}`", "",
                 "- pair ratios: the middle half (25th-75th percentile) of the per-pair ratios, each DeepEP "
                 "run over the ORT run after it; steal: CPU time the hypervisor gave to other guests during "
                 "the timed runs (/proc/stat)",
                 "- GFLOP: the model's Conv / MatMul / Gemm multiply-adds x 2 (bench/model_flops.py); "
                 "GFLOP/s: that over each runtime's median latency"]
        peak = a.peak_gflops
        if peak:
            lines += [f"- FMA peak at {a.threads} threads: {peak:.1f} GFLOP/s (--peak-gflops, from "
                      "deepep_gemm_bench); ratio floor: DeepEP/ORT with every counted FLOP at that peak"]
        head = "| model | DeepEP ms | ORT ms | ratio DeepEP/ORT | pair ratios | steal | max rel err | GFLOP | " \
               "DeepEP GFLOP/s | ORT GFLOP/s |"
        lines += ["", head + (" DeepEP % of peak | ORT % of peak | ratio floor |" if peak else ""),
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if peak else "")]
        for r in rows:
            row = (f"| {r['model']} | {r['deepep_ms']:.3f} | {r['ort_ms']:.3f} | {r['ratio']:.3f} | "
                   f"{r['pair_q1']:.2f}-{r['pair_q3']:.2f} | {r['steal_pct']:.1f} % | {r['max_rel_err']:.1e} | "
                   f"{r['gflop']:.3g} | {r['deepep_gflops']:.1f} | {r['ort_gflops']:.1f} |")
            if peak:
                dp, op, floor = peak_columns(r, peak)
                row += f" {dp:.0f} % | {op:.0f} % | {floor:.2f} |"
            lines.append(row)
        mode = "a" if os.path.exists(out) else "w"
        with open(out, mode) as f:
            if mode == "a":
                f.write("\n")
            f.write("\n".join(lines) + "\n")
        if not a.json:
            print(f"wrote {os.path.relpath(out, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
