"""The `deepep` command (docs/CLI.md).

    deepep convert MODEL -o OUT.de [--precision P] [--fusion-level N] [--input-shape name=d1,d2,...]
    deepep inspect MODEL [--shape name=d1,d2,...] [--dim SYMBOL=N] [--fusion-level N] [--json]
    deepep bench MODEL [--shape name=dims] [--dim SYMBOL=N] [--warmup N] [--iterations N] [--json]
    deepep run MODEL [--input name=file.npy ...] [--random] [--dim SYMBOL=N ...]
                     [--iterations N] [--output-dir DIR] [--fusion-level N] [--memory-pool-size 8G]
    deepep info MODEL [--graph]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import deepep
from deepep import analysis, bench
from deepep.converter import FUSION_STRATEGIES, PRECISIONS, Converter, fusion_level_of


def _parse_pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise SystemExit(f"deepep: {what} must look like NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def _random_input(spec: dict, dims: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    shape = []
    for d in spec["shape"] or []:
        if isinstance(d, int):
            shape.append(d)
        elif d in dims:
            shape.append(dims[d])
        else:
            raise SystemExit(
                f"deepep: input '{spec['name']}' has symbolic dimension {d!r}: give its size with --dim {d}=N"
            )
    dtype = deepep.engine._numpy_dtype(spec["dtype"])
    try:
        if dtype.kind == "f" or spec["dtype"] == "bfloat16":
            return rng.standard_normal(shape).astype(dtype)
        if dtype.kind in "iu":
            # Token ids, token types, masks, indices: 0 and 1 are valid for any table.
            return rng.integers(0, 2, size=shape).astype(dtype)
        if dtype.kind == "b":
            return rng.random(shape) < 0.5
    except MemoryError:
        raise SystemExit(f"deepep: input '{spec['name']}': not enough memory for random data of shape {shape}") from None
    except (ValueError, OverflowError) as e:  # numpy: more elements than an array can index
        raise SystemExit(f"deepep: input '{spec['name']}': cannot make random data of shape {shape}: {e}") from None
    raise SystemExit(f"deepep: cannot make random data of dtype {spec['dtype']}")


def _summary(a: np.ndarray) -> str:
    s = f"{a.dtype}{list(a.shape)}"
    if a.size and a.dtype.kind in "fiub":
        f = a.astype(np.float64)
        s += f"  min {f.min():.6g}  max {f.max():.6g}  mean {f.mean():.6g}"
        s += "  first " + np.array2string(a.reshape(-1)[:5], precision=5, separator=", ")
    return s


def _fusion_level(text: str) -> int:
    """--fusion-level: 0-3 or a strategy name (none, basic, standard, aggressive)."""
    try:
        return fusion_level_of(int(text) if text.strip().lstrip("-").isdigit() else text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _pool_size(text: str) -> int:
    try:
        return deepep.engine.parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _non_negative(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be non-negative, got {n}")
    return n


def _shapes(items, option: str) -> dict[str, list[int]]:
    """--shape name=1,3,224,224 (repeatable) -> {name: [1, 3, 224, 224]}."""
    out = {}
    for name, dims in _parse_pairs_allow_empty(items, option).items():
        try:
            out[name] = analysis.parse_dims(dims)
        except ValueError as e:
            raise SystemExit(f"deepep: {option} {name}: {e}") from None
    return out


def _parse_pairs_allow_empty(items, what):
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"deepep: {what} must look like NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def _sym_dims(items) -> dict[str, int]:
    out = {}
    for k, v in _parse_pairs(items, "--dim").items():
        try:
            out[k] = int(v)
        except ValueError:
            raise SystemExit(f"deepep: --dim {k}: size must be an integer, got {v!r}") from None
        if out[k] < 0:
            raise SystemExit(f"deepep: --dim {k}: size must be non-negative, got {out[k]}")
    return out


def _human_bytes(n) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024


class ProgressBar:
    """Progress on stderr: one bar redrawn in place on a terminal, else one line per stage."""

    def __init__(self, stream=None, width: int = 28):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.width = width
        self.stage = None
        self.stage_t0 = time.perf_counter()
        self.last = None
        self.drawn = False

    def __call__(self, stage: str, fraction: float) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        now = time.perf_counter()
        if stage != self.stage:
            if self.stage is not None and not self.tty:
                self._line(self.stage, now)
            self.stage, self.stage_t0, self.last = stage, now, None
        pct = int(fraction * 100)
        if self.tty:
            if (stage, pct) != self.last:
                fill = int(fraction * self.width)
                bar = "#" * fill + "." * (self.width - fill)
                self.stream.write(f"\r{stage:<14} [{bar}] {pct:3d}%")
                self.stream.flush()
                self.drawn = True
        self.last = (stage, pct)

    def _line(self, stage, now):
        self.stream.write(f"{stage:<14} done in {now - self.stage_t0:.2f} s\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
        elif not self.tty and self.stage is not None:
            self._line(self.stage, time.perf_counter())
        self.stage = None


def _input_shape_spec(items) -> dict[str, list]:
    """--input-shape name=batch,3,224,224: ints, or symbol names for dynamic axes."""
    out = {}
    for name, dims in _parse_pairs_allow_empty(items, "--input-shape").items():
        parsed = []
        for d in [p.strip() for p in dims.split(",")] if dims.strip() else []:
            if d.isdigit():
                parsed.append(int(d))
            elif d.isidentifier():
                parsed.append(d)
            else:
                raise SystemExit(f"deepep: --input-shape {name}: dim {d!r} must be an integer or a symbol name")
        out[name] = parsed
    return out


def cmd_convert(args) -> int:
    out = args.output
    shapes = _input_shape_spec(args.input_shape)
    dtypes = _parse_pairs(args.input_dtype, "--input-dtype")
    conv = Converter(args.model, input_shapes=shapes or None, input_dtypes=dtypes or None,
                     opset=args.opset)
    conv.optimize(precision=args.precision, fusion_strategy=args.fusion_level)
    bar = None if args.quiet else ProgressBar()
    try:
        result = conv.export(out, progress=bar)
    finally:
        if bar:
            bar.close()
    fusion = result.metadata.get("fusion", {})
    print(f"wrote {result.path}: {_human_bytes(result.file_bytes)} (weights {_human_bytes(result.weights_bytes)})")
    print(f"precision {conv.precision}, fusion level {conv.fusion_level}: "
          f"nodes {fusion.get('nodes_before', '?')} -> {fusion.get('nodes_after', '?')}")
    changed = [p for p in fusion.get("passes", []) if p.get("changes")]
    for p in changed:
        counters = ", ".join(f"{k} {v}" for k, v in p.get("counters", {}).items())
        print(f"  {p['name']}: {counters or str(p['changes']) + ' change(s)'}")
    print(f"time {result.seconds:.2f} s")
    return 0


def cmd_inspect(args) -> int:
    if args.device == "probe" or args.model is None:
        # `deepep inspect --device`: the hardware probe (CPU ISA, GPUs).
        if args.model is None and args.device != "probe":
            raise SystemExit("deepep inspect: give a model, or --device alone for the hardware probe")
        from deepep.devices import describe, devices

        if args.json:
            print(json.dumps(devices(), indent=2))
        else:
            print(describe())
        return 0
    r = analysis.inspect_model(args.model, shapes=_shapes(args.shape, "--shape"), dims=_sym_dims(args.dim),
                               fusion_level=args.fusion_level, device=args.device, seed=args.seed)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    f = r["fusion"]
    how = "engine file" if r["format"] == "de" else f"ONNX, optimized at level {r['fusion_level']}"
    print(f"model      {r['model']} ({how})")
    print(f"precision  {r['precision']}, fusion level {r['fusion_level']}")
    for kind, specs in (("input", r["inputs"]), ("output", r["outputs"])):
        for s in specs:
            print(f"{kind:10} {s['name']}: {s['dtype']}{s['shape']}")
    print(f"nodes      {f['nodes_before']} -> {f['nodes_after']} (subgraphs included)")
    print(f"kernels    {f['kernels']} per run" +
          (f" (+{f['subgraph_kernels']} in If/Loop/Scan bodies, per branch or iteration)" if f["subgraph_kernels"] else ""))
    print(f"fusion     rate {f['rate'] * 100:.1f}%: {f['compute_ops_fused']} of {f['compute_ops']} compute ops "
          f"in {f['fused_kernels']} fused kernel(s)")
    if f["passes"]:
        width = max(len(n) for n in f["passes"]) + 2
        print(f"passes     {'name':<{width}}runs  changes  counters")
        for name, p in f["passes"].items():
            counters = ", ".join(f"{k} {v}" for k, v in p["counters"].items())
            print(f"           {name:<{width}}{p['runs']:4}  {p['changes']:7}  {counters}".rstrip())
    m = r["memory"]
    if m is None:
        print(f"memory     null: {r.get('memory_note', '')}")
    else:
        shapes = ", ".join(f"{k}={list(v)}" for k, v in r["memory_shapes"].items())
        print(f"memory     planned {_human_bytes(m['planned_bytes'])} (naive {_human_bytes(m['naive_bytes'])}, "
              f"lower bound {_human_bytes(m['lower_bound_bytes'])}), weights {_human_bytes(m['weights_bytes'])}"
              f"  [{shapes}]")
    return 0


def cmd_bench(args) -> int:
    engine = deepep.Engine(args.model, device=args.device, memory_pool_size=args.memory_pool_size,
                           fusion_level=args.fusion_level, precision=args.precision,
                           output_dtype=args.output_dtype)
    shapes = analysis.input_shapes(engine, _shapes(args.shape, "--shape"), _sym_dims(args.dim))
    feeds = analysis.random_feeds(engine, shapes, args.seed)
    session = engine.create_session()
    times = bench.measure(lambda: session.run(feeds), warmup=args.warmup, iterations=args.iterations)
    stats = bench.summarize(times, batch=bench.batch_of(feeds))
    if args.json:
        stats["model"] = args.model
        stats["shapes"] = shapes
        stats["warmup"] = args.warmup
        print(json.dumps(stats, indent=2))
        return 0
    print(f"model: {args.model}  inputs: " + ", ".join(f"{k}={v}" for k, v in shapes.items()))
    print(f"warmup {args.warmup}, iterations {args.iterations}")
    print(bench.format_summary(stats))
    return 0


def cmd_run(args) -> int:
    engine = deepep.Engine(args.model, device=args.device, memory_pool_size=args.memory_pool_size,
                           fusion_level=args.fusion_level, precision=args.precision,
                           output_dtype=args.output_dtype)
    files = _parse_pairs(args.input, "--input")
    dims = _sym_dims(args.dim)
    rng = np.random.default_rng(args.seed)
    feeds = {}
    for spec in engine.inputs:
        name = spec["name"]
        if name in files:
            feeds[name] = np.load(files.pop(name), allow_pickle=False)
        elif args.random:
            feeds[name] = _random_input(spec, dims, rng)
    for name in files:
        names = ", ".join(s["name"] for s in engine.inputs)
        raise SystemExit(f"deepep: model has no input '{name}' (inputs: {names})")
    times = []
    outputs = None
    for _ in range(args.iterations):
        t0 = time.perf_counter()
        outputs = engine.run(feeds)
        times.append((time.perf_counter() - t0) * 1e3)
    for name, a in feeds.items():
        print(f"input  {name}: {_summary(a)}")
    for name, a in outputs.items():
        print(f"output {name}: {_summary(a)}")
    t = np.array(times)
    print(f"latency over {len(t)} run(s): min {t.min():.2f} ms  median {np.median(t):.2f} ms  max {t.max():.2f} ms")
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
        for name, a in outputs.items():
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
            np.save(os.path.join(args.output_dir, safe + ".npy"), a)
        print(f"wrote {len(outputs)} output(s) to {args.output_dir}")
    return 0


def cmd_info(args) -> int:
    engine = deepep.Engine(args.model, device=args.device)
    for kind, specs in (("input", engine.inputs), ("output", engine.outputs)):
        for s in specs:
            print(f"{kind:6} {s['name']}: {s['dtype']}{s['shape']}")
    if args.graph:
        print(engine.graph_text())
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="deepep", description="DeepEP inference engine")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a model on inputs from .npy files or random data")
    run.add_argument("model")
    run.add_argument("--input", action="append", metavar="NAME=FILE.npy", help="an input from a .npy file")
    run.add_argument("--random", action="store_true", help="random data for inputs not given")
    run.add_argument("--dim", action="append", metavar="SYMBOL=N", help="size of a symbolic dimension")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--iterations", type=_positive, default=1, help="runs to time (default 1)")
    run.add_argument("--output-dir", help="write each output to DIR/NAME.npy")
    run.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    run.add_argument("--precision", choices=("fp32", "fp32-strict", "fp16"), default="fp32",
                     help="execution precision (default fp32: TF32 allowed on GPUs of compute capability >= 8.0, "
                          "bf16x3 on CPUs with AMX tiles; fp32-strict: float32 multiply-adds only; fp16: GPU only)")
    run.add_argument("--output-dtype", choices=("model", "float16"), default="model",
                     help="float32 outputs as the model has them, or as float16 (with --precision fp16 on a GPU: "
                         "no widening, half the bytes copied back)")
    run.add_argument("--fusion-level", type=_fusion_level, default=2, metavar="N",
                     help="optimization of an ONNX model: 0-3 or none/basic/standard/aggressive (default 2)")
    run.add_argument("--memory-pool-size", type=_pool_size, default=0, metavar="SIZE",
                     help="cap on the activation arena, e.g. 8G, 512M (default: no cap)")
    run.set_defaults(fn=cmd_run)
    info = sub.add_parser("info", help="show a model's inputs and outputs")
    info.add_argument("model")
    info.add_argument("--graph", action="store_true", help="print the graph in IR text form")
    info.add_argument("--device", default="cpu")
    info.set_defaults(fn=cmd_info)

    conv = sub.add_parser("convert", help="convert an ONNX or PyTorch model to a .de engine file")
    conv.add_argument("model", help=".onnx, or .pt/.pth (TorchScript or pickled nn.Module; needs PyTorch)")
    conv.add_argument("-o", "--output", required=True, metavar="OUT.de")
    conv.add_argument("--precision", choices=PRECISIONS, default="fp32")
    conv.add_argument("--fusion-level", type=_fusion_level, default=2, metavar="N",
                      help="0-3 or " + "/".join(FUSION_STRATEGIES) + " (default 2)")
    conv.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                      help="PyTorch models: an example input's shape; names make dynamic axes (batch,3,224,224)")
    conv.add_argument("--input-dtype", action="append", metavar="NAME=DTYPE",
                      help="PyTorch models: an input's dtype (default float32)")
    conv.add_argument("--opset", type=_positive, help="PyTorch models: the ONNX opset to export with")
    conv.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    conv.set_defaults(fn=cmd_convert)

    ins = sub.add_parser("inspect", help="fusion report, kernels, fusion rate and memory plan of a model")
    ins.add_argument("model", nargs="?", help=".onnx or .de (omit with --device alone: the hardware probe)")
    ins.add_argument("--shape", action="append", metavar="NAME=D1,D2,...", help="an input's concrete shape")
    ins.add_argument("--dim", action="append", metavar="SYMBOL=N", help="size of a symbolic dimension")
    ins.add_argument("--fusion-level", type=_fusion_level, default=2, metavar="N",
                     help="optimization of an ONNX model (a .de file keeps its own): 0-3 (default 2)")
    ins.add_argument("--json", action="store_true", help="print the report as JSON")
    ins.add_argument("--seed", type=int, default=0)
    ins.add_argument("--device", nargs="?", const="probe", default="cpu",
                     help="the device to plan for; alone (no value, no model): list the CPU and GPUs")
    ins.set_defaults(fn=cmd_inspect)

    bn = sub.add_parser("bench", help="latency percentiles and throughput on random inputs")
    bn.add_argument("model", help=".onnx or .de")
    bn.add_argument("--shape", action="append", metavar="NAME=D1,D2,...", help="an input's concrete shape")
    bn.add_argument("--dim", action="append", metavar="SYMBOL=N", help="size of a symbolic dimension")
    bn.add_argument("--warmup", type=_non_negative, default=10, help="untimed runs first (default 10)")
    bn.add_argument("--iterations", type=_positive, default=100, help="timed runs (default 100)")
    bn.add_argument("--fusion-level", type=_fusion_level, default=2, metavar="N")
    bn.add_argument("--memory-pool-size", type=_pool_size, default=0, metavar="SIZE")
    bn.add_argument("--json", action="store_true", help="print the statistics as JSON")
    bn.add_argument("--seed", type=int, default=0)
    bn.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    bn.add_argument("--precision", choices=("fp32", "fp32-strict", "fp16"), default="fp32",
                     help="execution precision (default fp32: TF32 allowed on GPUs of compute capability >= 8.0, "
                          "bf16x3 on CPUs with AMX tiles; fp32-strict: float32 multiply-adds only; fp16: GPU only)")
    bn.add_argument("--output-dtype", choices=("model", "float16"), default="model",
                    help="float32 outputs as the model has them, or as float16 (with --precision fp16 on a GPU: "
                         "no widening, half the bytes copied back)")
    bn.set_defaults(fn=cmd_bench)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except deepep.Error as e:
        print(f"deepep: error: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError, ImportError) as e:
        print(f"deepep: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
