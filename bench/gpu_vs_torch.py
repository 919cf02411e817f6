#!/usr/bin/env python3
"""DeepEP on a GPU against PyTorch on the same GPU.

For each case (model, batch[, seq]) it times, on the same card in the same run:
  deepep-fp16   deepep.Engine(device="cuda:0", precision="fp16", output_dtype="float16")
                (CUDA graph replay; float16 outputs, as PyTorch's float16 models return:
                --output-dtype model times float32 outputs instead)
  torch-fp32    PyTorch eager, float32 (PyTorch's defaults: no TF32 for matmuls)
  torch-fp16    PyTorch eager, float16
  compile-fp16  torch.compile(mode="reduce-overhead"), float16
Every timing is a whole call from host arrays to host arrays (inputs copied to
the GPU, outputs copied back), the work `Engine.run` does, so the numbers are
comparable; the median of --iterations calls after --warmup calls. Outputs
come back in the precision's dtype on both sides (float16 for the fp16 rows;
--output-dtype model: float32 everywhere). PyTorch's
output goes into a pinned host buffer allocated once, as DeepEP's staging is:
a fresh pageable `.cpu()` copy of GPT-2's logits (103 MB at b1) measured
anywhere from 10 to 80 ms from run to run, which is host allocation, not
inference. GPT-2 runs with use_cache=False (the ONNX model returns only the
logits, so both do the same work).

Models: DeepEP runs the zoo's ONNX (python -m deepep.zoo, random weights) at
the case's concrete shapes; PyTorch runs the same architecture from
torchvision / transformers configs (bert-base-uncased, gpt2: the configs the
zoo follows) with its own random weights, so the comparison is of speed on
equal work (FLOPs counted from the ONNX graph), not of outputs. DeepEP's
correctness is checked in the same run: its fp16 and fp32 GPU outputs against
its CPU reference on the case's inputs (relative L2 error printed).

Achieved TFLOP/s = model FLOPs (torch.utils.flop_counter on the PyTorch model;
the ONNX graph's MatMul/Gemm/Conv count when that fails) / DeepEP's median
latency, against a measured fp16 8192^3 matmul (torch) on the same card.

    python bench/gpu_vs_torch.py                  # all cases (minutes)
    python bench/gpu_vs_torch.py --quick          # resnet50 b1, bert-base s128 b1/b32, gpt2 s512 b1
    python bench/gpu_vs_torch.py --no-compile     # skip torch.compile (slow to compile)
The whole list with torch.compile takes over 10 minutes on an H200 (compiles
dominate): where commands are time-limited, split it with --case.
Writes JSON and a text table to bench/results/gpu_<card>_<date>.{json,txt}.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

import deepep  # noqa: E402
from deepep import zoo  # noqa: E402

CASES = [
    ("resnet50", 1, None), ("resnet50", 128, None),
    ("resnet152", 1, None), ("resnet152", 64, None),
    ("bert-base", 1, 128), ("bert-base", 32, 128),
    ("gpt2", 1, 512), ("gpt2", 8, 512),
]
QUICK = [("resnet50", 1, None), ("bert-base", 1, 128), ("bert-base", 32, 128), ("gpt2", 1, 512)]


def onnx_flops(model) -> float:
    """2*M*N*K over MatMul/Gemm/Conv nodes (and the attention products) of a concrete-shape model."""
    import onnx
    from onnx import shape_inference

    m = shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = dims
    for t in m.graph.initializer:
        shapes[t.name] = list(t.dims)
    total = 0.0
    for n in m.graph.node:
        if n.op_type in ("MatMul", "Gemm"):
            a, b = shapes.get(n.input[0]), shapes.get(n.input[1])
            y = shapes.get(n.output[0])
            if not a or not b or not y:
                continue
            k = a[-1]
            if n.op_type == "Gemm" and any(at.name == "transA" and at.i for at in n.attribute):
                k = a[0]
            total += 2.0 * float(np.prod(y)) * k
        elif n.op_type == "Conv":
            w, y = shapes.get(n.input[1]), shapes.get(n.output[0])
            if w and y:
                total += 2.0 * float(np.prod(y)) * float(np.prod(w[1:]))
    return total


def torch_model(name, small):
    import torch

    if name.startswith("resnet"):
        import torchvision

        return getattr(torchvision.models, name)(weights=None)
    import transformers

    if name == "bert-base":
        cfg = transformers.BertConfig()  # bert-base-uncased
        if small:
            cfg = transformers.BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256)
        return transformers.BertModel(cfg, add_pooling_layer=True)
    cfg = transformers.GPT2Config(use_cache=False)  # gpt2 small
    if small:
        cfg = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=1000, n_positions=512, use_cache=False)
    return transformers.GPT2LMHeadModel(cfg)


def median_ms(fn, warmup, iterations):
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        t.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(t))


def rel_l2(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if np.isnan(a).any() and not np.isnan(b).any():
        return float("nan")
    d = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (d if d else 1.0))


def profile_kernels(fn, runs=5):
    """GPU time per kernel name over `runs` calls (torch.profiler / CUPTI sees DeepEP's kernels too)."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(runs):
            fn()
    rows = []
    for e in prof.key_averages():
        t = getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
        if t:
            rows.append({"name": e.key, "us": t / runs, "calls": e.count // runs})
    rows.sort(key=lambda r: -r["us"])
    return rows[:20]


def matmul_tflops():
    import torch

    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.float16)
    b = torch.randn(n, n, device="cuda", dtype=torch.float16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(10):
        e0.record()
        a @ b
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1))
    return 2 * n**3 / (np.median(times) * 1e-3) / 1e12


def random_feeds(engine, rng):
    """Inputs for a zoo model at its concrete shapes: token ids below 1000, attention masks all ones,
    token types 0/1, images standard normal."""
    feeds = {}
    for spec in engine.inputs:
        shape = [int(d) for d in spec["shape"]]
        if spec["dtype"].startswith("int"):
            hi = 2 if "mask" in spec["name"] or "type" in spec["name"] else 1000
            feeds[spec["name"]] = rng.integers(0, hi, size=shape).astype(spec["dtype"])
            if "mask" in spec["name"]:
                feeds[spec["name"]][:] = 1
        else:
            feeds[spec["name"]] = rng.standard_normal(shape).astype(spec["dtype"])
    return feeds


def run_case(name, batch, seq, args, log):
    import torch

    opts = {"batch": batch}
    if seq:
        opts["seq"] = seq
    if args.small:
        opts["small"] = True
    model = zoo.build(name, **opts)
    flops = onnx_flops(model)
    tmp = tempfile.mkdtemp(prefix="deepep_gpu_bench_")
    path = os.path.join(tmp, f"{name}.onnx")
    import onnx

    onnx.save(model, path)
    cpu = deepep.Engine(path)
    feeds = random_feeds(cpu, np.random.default_rng(0))
    row = {"model": name, "batch": batch, "seq": seq, "gflop": flops / 1e9}
    # DeepEP correctness against its CPU reference (small batches only: the CPU is slow).
    check = batch <= 8 or args.check_all
    ref = cpu.run(feeds) if check else None
    for prec in ("fp16",) if args.deepep_only else ("fp16", "fp32"):
        try:
            saved_layout = os.environ.get("DEEPEP_LAYOUT")
            if args.layout:
                os.environ["DEEPEP_LAYOUT"] = args.layout
            try:
                gpu = deepep.Engine(path, device="cuda:0", precision=prec,
                                    output_dtype=args.output_dtype if prec == "fp16" else "model")
            finally:
                if args.layout:
                    if saved_layout is None:
                        os.environ.pop("DEEPEP_LAYOUT", None)
                    else:
                        os.environ["DEEPEP_LAYOUT"] = saved_layout
            out = gpu.run(feeds)
            if ref is not None:
                row[f"deepep_{prec}_err"] = max(rel_l2(out[k], ref[k]) for k in ref)
            if prec == "fp16":
                row["deepep_fp16_out"] = {k: np.array(v) for k, v in out.items()}
                row["deepep-fp16"] = median_ms(lambda: gpu.run(feeds), args.warmup, args.iterations)
                log(f"  deepep-fp16: {row['deepep-fp16']:.3f} ms")
                if args.profile:
                    row["deepep_kernels"] = profile_kernels(lambda: gpu.run(feeds))
                    for k in row["deepep_kernels"][:args.top]:
                        log(f"    {k['us']:9.1f} us  x{k['calls']:<4} {k['name'][:90]}")
            del gpu
        except deepep.Error as e:
            row[f"deepep_{prec}_error"] = str(e)[:300]
            log(f"  deepep {prec}: {e}")
    variants = []
    for v in args.variant or []:  # LABEL:NAME=VALUE[;NAME=VALUE]
        label, _, env = v.partition(":")
        variants.append((label, dict(kv.split("=", 1) for kv in env.split(";") if kv)))
    for label, env in variants:  # DeepEP fp16 again with environment options (same inputs)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            gpu = deepep.Engine(path, device="cuda:0", precision="fp16", output_dtype=args.output_dtype)
            out = gpu.run(feeds)
            if ref is not None:
                row[f"deepep_{label}_err"] = max(rel_l2(out[k], ref[k]) for k in ref)
            elif "deepep_fp16_out" in row:  # large batch: against the default fp16 run's outputs
                row[f"deepep_{label}_vs_fp16"] = max(rel_l2(out[k], row["deepep_fp16_out"][k]) for k in out)
            row[f"deepep-{label}"] = median_ms(lambda: gpu.run(feeds), args.warmup, args.iterations)
            log(f"  deepep-{label} ({env}): {row[f'deepep-{label}']:.3f} ms")
            if args.profile:
                row[f"deepep_{label}_kernels"] = profile_kernels(lambda: gpu.run(feeds))
                for k in row[f"deepep_{label}_kernels"][:args.top]:
                    log(f"    {k['us']:9.1f} us  x{k['calls']:<4} {k['name'][:90]}")
            del gpu
        except deepep.Error as e:
            row[f"deepep_{label}_error"] = str(e)[:300]
            log(f"  deepep {label}: {e}")
        finally:
            for k, old in saved.items():
                if old is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = old
    row.pop("deepep_fp16_out", None)
    if args.deepep_only:
        return row
    # PyTorch.
    m = torch_model(name, args.small).eval().cuda()
    tfeeds = {}
    for k, v in feeds.items():
        key = {"input": "x"}.get(k, k)
        tfeeds[key] = torch.from_numpy(v)

    def call(mod, dtype):
        host = {}  # the pinned output buffer, made on the first call

        def f():
            with torch.inference_mode():
                ins = {k: (t.to("cuda", non_blocking=False).to(dtype) if t.is_floating_point() else t.to("cuda"))
                       for k, t in tfeeds.items()}
                out = mod(ins["x"]) if name.startswith("resnet") else mod(**ins)
                o = out if isinstance(out, torch.Tensor) else out[0]
                if args.output_dtype == "model":
                    o = o.float()  # as DeepEP returns the model's float32 outputs
                if "y" not in host:
                    host["y"] = torch.empty(o.shape, dtype=o.dtype, pin_memory=True)
                host["y"].copy_(o)  # synchronous: waits for the copy
                return host["y"]
        return f

    try:
        # FLOPs of one inference, counted by PyTorch on the same architecture.
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as fc:
            call(m.float(), torch.float32)()
        row["gflop"] = fc.get_total_flops() / 1e9
        row["torch-fp32"] = median_ms(call(m.float(), torch.float32), args.warmup, args.iterations)
        mh = m.half()
        row["torch-fp16"] = median_ms(call(mh, torch.float16), args.warmup, args.iterations)
        if not args.no_compile:
            t0 = time.time()
            cm = torch.compile(mh, mode="reduce-overhead")
            f = call(cm, torch.float16)
            for _ in range(3):
                f()
            row["compile_s"] = time.time() - t0
            row["compile-fp16"] = median_ms(f, args.warmup, args.iterations)
    except Exception as e:  # report, keep going
        row["torch_error"] = f"{type(e).__name__}: {e}"[:300]
        log(f"  torch: {row['torch_error']}")
    del m
    torch.cuda.empty_cache()
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="resnet50 b1, bert-base s128 b1 and b32, gpt2 s512 b1")
    ap.add_argument("--small", action="store_true", help="the zoo's small configurations (smoke test)")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--case", action="append", metavar="MODEL:BATCH[:SEQ]", help="instead of the default list")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--output-dtype", choices=["float16", "model"], default="float16",
                    help="DeepEP fp16's outputs: float16 (as PyTorch fp16 returns) or as the model declares (float32)")
    ap.add_argument("--profile", action="store_true", help="print DeepEP's top GPU kernels per case (torch.profiler)")
    ap.add_argument("--variant", action="append", metavar="LABEL:NAME=VALUE[;NAME=VALUE]",
                    help="also time DeepEP fp16 with these environment variables (e.g. conv:DEEPEP_CUDA_CONV=find)")
    ap.add_argument("--top", type=int, default=12, help="kernels printed per profile")
    ap.add_argument("--deepep-only", action="store_true", help="skip PyTorch and DeepEP fp32 (quick A/B of DeepEP options)")
    ap.add_argument("--check-all", action="store_true", help="check DeepEP against its CPU reference at every batch")
    ap.add_argument("--layout", choices=["nchw", "nhwc", "auto"],
                    help="DeepEP's GPU conv layout (DEEPEP_LAYOUT for its GPU engines; A/B: --variant nhwc:DEEPEP_LAYOUT=nhwc)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    import torch

    cases = QUICK if args.quick else CASES
    if args.case:
        cases = []
        for c in args.case:
            p = c.split(":")
            cases.append((p[0], int(p[1]), int(p[2]) if len(p) > 2 else None))
    card = torch.cuda.get_device_name(0)
    devs = [d for d in deepep.devices() if d["device"] != "cpu"]
    print(f"card: {card}; deepep sees: {', '.join(d['name'] for d in devs) or 'no GPU'}", flush=True)
    mm = matmul_tflops()
    print(f"measured fp16 matmul 8192^3: {mm:.0f} TFLOP/s", flush=True)
    rows = []
    partial = os.path.join(os.environ.get("OUT") or args.out, "gpu_vs_torch_partial.json")
    os.makedirs(os.path.dirname(partial), exist_ok=True)
    for name, batch, seq in cases:
        print(f"case {name} b{batch}" + (f" s{seq}" if seq else ""), flush=True)
        t0 = time.time()
        rows.append(run_case(name, batch, seq, args, lambda s: print(s, flush=True)))
        brief = {k: v for k, v in rows[-1].items() if not k.endswith("kernels")}
        print(f"  {json.dumps(brief)} ({time.time() - t0:.0f} s)", flush=True)
        with open(partial, "w") as f:  # what is done so far survives a time limit
            json.dump({"card": card, "rows": rows}, f, indent=2)
    extra = ["deepep-" + v.partition(":")[0] for v in args.variant or []]
    cols = ["deepep-fp16"] + extra + ["torch-fp32", "torch-fp16", "compile-fp16"]
    lines = [f"DeepEP fp16 vs PyTorch on {card}, {datetime.date.today()} (median ms per call, host arrays in and out;"
             f" fp16 matmul ceiling {mm:.0f} TFLOP/s)",
             f"{'case':22}" + "".join(f"{c:>14}" for c in cols) + f"{'vs eager16':>10}{'vs comp16':>10}{'TFLOP/s':>9}{'err16':>9}"]
    for r in rows:
        case = f"{r['model']} b{r['batch']}" + (f" s{r['seq']}" if r["seq"] else "")
        cells = "".join(f"{r[c]:14.3f}" if c in r else f"{'-':>14}" for c in cols)
        ratio = lambda c: f"{r[c] / r['deepep-fp16']:10.2f}" if c in r and "deepep-fp16" in r else f"{'-':>10}"
        tf = f"{r['gflop'] / r['deepep-fp16']:9.1f}" if "deepep-fp16" in r else f"{'-':>9}"
        err = f"{r['deepep_fp16_err']:9.1e}" if "deepep_fp16_err" in r else f"{'-':>9}"
        lines.append(f"{case:22}{cells}{ratio('torch-fp16')}{ratio('compile-fp16')}{tf}{err}")
        for c in extra:
            lab = c[len("deepep-"):]
            for k, txt in ((f"deepep_{lab}_err", "err16"), (f"deepep_{lab}_vs_fp16", "vs default fp16 outputs")):
                if k in r:
                    lines.append(f"    {c} {txt} {r[k]:.1e}")
        for k in [k for k in r if k.endswith("_error")]:
            if True:
                lines.append(f"    {k}: {r[k]}")
    lines.append("ratios > 1: DeepEP faster; TFLOP/s: DeepEP's achieved rate; err16: DeepEP fp16 vs its CPU fp32"
                 " reference (relative L2)")
    table = "\n".join(lines)
    os.makedirs(args.out, exist_ok=True)
    slug = "".join(c if c.isalnum() else "_" for c in card).strip("_").lower()
    stem = os.path.join(args.out, f"gpu_{slug}_{datetime.date.today()}")
    with open(stem + ".json", "w") as f:
        json.dump({"card": card, "date": str(datetime.date.today()), "matmul_fp16_tflops": mm, "rows": rows,
                   "deepep_devices": devs, "torch": torch.__version__,
                   "commit": os.environ.get("DEEPEP_COMMIT") or subprocess.run(
                       ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()},
                  f, indent=2)
    with open(stem + ".txt", "w") as f:
        f.write(table + "\n")
    out_dir = os.environ.get("OUT")
    if out_dir and os.path.realpath(out_dir) != os.path.realpath(args.out):  # (--out $OUT: already there)
        for ext in (".json", ".txt"):
            with open(stem + ext) as src, open(os.path.join(out_dir, os.path.basename(stem) + ext), "w") as dst:
                dst.write(src.read())
    print(table)


if __name__ == "__main__":
    main()
