"""The `deepep` command.

    deepep run MODEL [--input name=file.npy ...] [--random] [--dim SYMBOL=N ...]
                     [--iterations N] [--output-dir DIR]
    deepep info MODEL [--graph]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import deepep


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
    if dtype.kind == "f" or spec["dtype"] == "bfloat16":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind in "iu":
        # Token ids and indices: small non-negative values are valid for any vocabulary.
        return rng.integers(0, 2 if "mask" in spec["name"] else 100, size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    raise SystemExit(f"deepep: cannot make random data of dtype {spec['dtype']}")


def _summary(a: np.ndarray) -> str:
    s = f"{a.dtype}{list(a.shape)}"
    if a.size and a.dtype.kind in "fiub":
        f = a.astype(np.float64)
        s += f"  min {f.min():.6g}  max {f.max():.6g}  mean {f.mean():.6g}"
        s += "  first " + np.array2string(a.reshape(-1)[:5], precision=5, separator=", ")
    return s


def cmd_run(args) -> int:
    engine = deepep.Engine(args.model, device=args.device)
    files = _parse_pairs(args.input, "--input")
    dims = {k: int(v) for k, v in _parse_pairs(args.dim, "--dim").items()}
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
    for _ in range(max(1, args.iterations)):
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
    run.add_argument("--iterations", type=int, default=1, help="runs to time (default 1)")
    run.add_argument("--output-dir", help="write each output to DIR/NAME.npy")
    run.add_argument("--device", default="cpu")
    run.set_defaults(fn=cmd_run)
    info = sub.add_parser("info", help="show a model's inputs and outputs")
    info.add_argument("model")
    info.add_argument("--graph", action="store_true", help="print the graph in IR text form")
    info.add_argument("--device", default="cpu")
    info.set_defaults(fn=cmd_info)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except deepep.Error as e:
        print(f"deepep: error: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"deepep: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
