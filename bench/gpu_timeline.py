#!/usr/bin/env python3
"""Where one DeepEP GPU call's time goes, per CUDA stream (needs PyTorch: its
profiler, CUPTI, sees DeepEP's kernels and copies).

    python bench/gpu_timeline.py gpt2 --batch 8 --seq 512

Prints, for one traced call (after warm-up): the call's span on the GPU, each
stream's busy time (kernels, copies to and from the host), when the first and
last work of each stream starts and ends, and the longest idle gaps of the
stream that runs the kernels. Overlap of the output copies with compute shows
as the copy stream's work starting before the kernel stream's last kernel ends.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

import deepep  # noqa: E402
from deepep import zoo  # noqa: E402
from gpu_vs_torch import random_feeds  # noqa: E402  (this folder is on the path when run as a script)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="zoo model name (python -m deepep.zoo --list)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int)
    ap.add_argument("--precision", default="fp16")
    ap.add_argument("--output-dtype", default="float16")
    ap.add_argument("--top", type=int, default=8, help="kernels listed by total time")
    ap.add_argument("--list", type=int, default=0, metavar="N",
                    help="also list the first N events in order (start, duration, idle before)")
    args = ap.parse_args()

    from torch.profiler import ProfilerActivity, profile

    opts = {"batch": args.batch}
    if args.seq:
        opts["seq"] = args.seq
    path = os.path.join(tempfile.mkdtemp(prefix="deepep_timeline_"), f"{args.model}.onnx")
    zoo.save(zoo.build(args.model, **opts), path)
    gpu = deepep.Engine(path, device="cuda:0", precision=args.precision, output_dtype=args.output_dtype)
    feeds = random_feeds(gpu, np.random.default_rng(0))
    for _ in range(3):
        gpu.run(feeds)
    walls = []
    for _ in range(50):
        t0 = time.perf_counter()
        gpu.run(feeds)
        walls.append((time.perf_counter() - t0) * 1e3)
    print(f"wall per call without the profiler: median {np.median(walls):.3f} ms, min {min(walls):.3f} ms")
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        gpu.run(feeds)
    trace = os.path.join(os.path.dirname(path), "trace.json")
    prof.export_chrome_trace(trace)
    with open(trace) as f:
        events = [e for e in json.load(f)["traceEvents"]
                  if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    events.sort(key=lambda e: e["ts"])
    last = events
    t0 = min(e["ts"] for e in last)
    t1 = max(e["ts"] + e["dur"] for e in last)
    print(f"{args.model} b{args.batch}{' s' + str(args.seq) if args.seq else ''} {args.precision}: "
          f"{len(last)} GPU events, span {(t1 - t0) / 1e3:.3f} ms")
    streams = {}
    for e in last:
        streams.setdefault(e["tid"], []).append(e)
    for tid, es in sorted(streams.items(), key=lambda kv: -sum(e["dur"] for e in kv[1])):
        busy = {}
        for e in es:
            busy[e["cat"]] = busy.get(e["cat"], 0) + e["dur"]
        first = min(e["ts"] for e in es) - t0
        end = max(e["ts"] + e["dur"] for e in es) - t0
        parts = ", ".join(f"{k} {v / 1e3:.3f} ms x{sum(1 for e in es if e['cat'] == k)}" for k, v in busy.items())
        print(f"  stream {tid}: {parts}; from {first / 1e3:.3f} to {end / 1e3:.3f} ms")
        if "kernel" in busy:
            ks = [e for e in es if e["cat"] == "kernel"]
            idle = sorted(((ks[i]["ts"] - ks[i - 1]["ts"] - ks[i - 1]["dur"], ks[i - 1]["name"][:60])
                           for i in range(1, len(ks))), reverse=True)[:3]
            for g, after in idle:
                if g > 5:
                    print(f"    idle {g / 1e3:.3f} ms after {after}")
    by_name = {}
    for e in last:
        if e["cat"] == "kernel":
            n = by_name.setdefault(e["name"], [0, 0])
            n[0] += e["dur"]
            n[1] += 1
    for name, (us, calls) in sorted(by_name.items(), key=lambda kv: -kv[1][0])[:args.top]:
        print(f"  {us / 1e3:8.3f} ms x{calls:<4} {name[:100]}")
    if args.list:
        print("  start ms   dur us  idle us  stream  event")
        prev_end = {}
        for e in last[:args.list]:
            idle = e["ts"] - prev_end.get(e["tid"], e["ts"])
            prev_end[e["tid"]] = e["ts"] + e["dur"]
            print(f"  {(e['ts'] - t0) / 1e3:8.3f} {e['dur']:8.1f} {idle:8.1f}  {e['tid']!s:>6}  {e['name'][:90]}")
    copies = [e for e in last if e["cat"] == "gpu_memcpy"]
    if copies:
        rates = [e["args"].get("memory bandwidth (GB/s)") for e in copies if "args" in e]
        rates = [r for r in rates if r]
        if rates:
            print(f"  copies: {len(copies)}, GB/s min {min(rates):.1f} median {np.median(rates):.1f} max {max(rates):.1f}")


if __name__ == "__main__":
    main()
