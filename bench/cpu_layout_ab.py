#!/usr/bin/env python3
"""CPU latency of the two convolution layouts: DeepEP NCHW vs DeepEP NHWC vs onnxruntime, in one process.

    PYTHONPATH=python python3 bench/cpu_layout_ab.py [--models resnet50 mobilenetv2] [--threads 2] [--iterations 30]

For each zoo model (random weights, batch 1; built once like bench/cpu_vs_ort.py, whose helpers this
uses) it loads the model twice in DeepEP, Engine(layout="nchw") and Engine(layout="nhwc"), and once in
onnxruntime (CPUExecutionProvider, fp32, ORT_ENABLE_ALL, the same intra-op threads, sequential), checks
that all three agree, warms them up, then times them in turn (nchw, nhwc, ORT, nchw, ...; a short pause
before each run), so load from other processes hits all three alike. Reports the medians and the ratios
nhwc/nchw and each/ORT (< 1: faster). Prints a markdown table (--markdown) for bench/results/.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
MODELS = ["resnet50", "mobilenetv2", "resnet152"]


def bench_model(name, a, rng):
    import numpy as np
    import deepep
    from cpu_vs_ort import build_model, make_feeds, ort_session

    path = build_model(name, a.cache_dir, 128)
    osess = ort_session(path, a.threads)
    engines = {lay: deepep.Engine(path, fusion_level=a.fusion_level, layout=lay) for lay in ("nchw", "nhwc")}
    for lay, e in engines.items():
        assert e.layout == lay, (lay, e.layout)
    feeds = make_feeds(osess, 128, rng)
    ref = osess.run(None, feeds)[0]
    scale = max(1.0, float(np.max(np.abs(ref))))
    errs = {}
    for lay, e in engines.items():
        out = next(iter(e.run(feeds).values()))
        errs[lay] = float(np.max(np.abs(out.astype(np.float64) - ref))) / scale
    runs = {"nchw": lambda: engines["nchw"].run(feeds), "nhwc": lambda: engines["nhwc"].run(feeds),
            "ort": lambda: osess.run(None, feeds)}
    for _ in range(a.warmup):
        for f in runs.values():
            f()
    times = {k: [] for k in runs}
    gap = a.gap_ms / 1e3
    for _ in range(a.iterations):
        for k, f in runs.items():
            time.sleep(gap)  # the other runtimes' idle threads stop spinning
            t0 = time.perf_counter()
            f()
            times[k].append((time.perf_counter() - t0) * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"model": name, **{f"{k}_ms": round(v, 3) for k, v in med.items()},
            "nhwc_over_nchw": round(med["nhwc"] / med["nchw"], 3), "nchw_over_ort": round(med["nchw"] / med["ort"], 3),
            "nhwc_over_ort": round(med["nhwc"] / med["ort"], 3), "max_rel_err": max(errs.values())}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--gap-ms", type=float, default=200.0)  # see cpu_vs_ort.py: ORT's workers spin after a run
    p.add_argument("--fusion-level", type=int, default=3)
    p.add_argument("--cache-dir", default=os.path.join(ROOT, "build", "bench_models"))
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args()
    os.environ.setdefault("DEEPEP_NUM_THREADS", str(a.threads))  # read by DeepEP's pool at first use
    import numpy as np

    rng = np.random.default_rng(0)
    load_before = os.getloadavg()
    rows = [bench_model(m, a, rng) for m in a.models]
    load_after = os.getloadavg()
    if a.markdown:
        print(f"threads {a.threads}, median of {a.iterations} rounds, load average before "
              f"{load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, after "
              f"{load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}\n")
        print("| model | NCHW ms | NHWC ms | ORT ms | NHWC/NCHW | NCHW/ORT | NHWC/ORT | max rel err |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['model']} | {r['nchw_ms']:.2f} | {r['nhwc_ms']:.2f} | {r['ort_ms']:.2f} | "
                  f"{r['nhwc_over_nchw']:.3f} | {r['nchw_over_ort']:.3f} | {r['nhwc_over_ort']:.3f} | "
                  f"{r['max_rel_err']:.1e} |")
    else:
        for r in rows:
            print(f"{r['model']:12s} nchw {r['nchw_ms']:8.2f}  nhwc {r['nhwc_ms']:8.2f}  ort {r['ort_ms']:8.2f} ms"
                  f"  nhwc/nchw {r['nhwc_over_nchw']:.3f}  nchw/ort {r['nchw_over_ort']:.3f}"
                  f"  nhwc/ort {r['nhwc_over_ort']:.3f}  (max rel err {r['max_rel_err']:.1e})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
