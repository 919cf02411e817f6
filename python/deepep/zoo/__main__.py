# CLI of the offline model zoo: python -m deepep.zoo NAME -o FILE.onnx [options]; --list.
import argparse
import os
import sys
import time

from . import MODELS, build, n_params, save


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m deepep.zoo",
                                description="Write a standard model with random weights as ONNX.")
    p.add_argument("name", nargs="?", help="model name (see --list)")
    p.add_argument("-o", "--output", metavar="FILE.onnx", help="where to write the model")
    p.add_argument("--batch", type=int, help="fixed batch size (default: symbolic 'batch')")
    p.add_argument("--seq", type=int, help="fixed sequence length, text models (default 'seq')")
    p.add_argument("--small", action="store_true", help="tiny variant for tests")
    p.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--list", action="store_true", help="list the models and exit")
    a = p.parse_args(argv)
    if a.list:
        for name, spec in MODELS.items():
            print(f"{name:12s} {spec.description}")
        return 0
    if a.name is None or a.output is None:
        p.error("NAME and -o FILE.onnx are required (or --list)")
    if a.name not in MODELS:
        p.error(f"unknown model {a.name!r}; choose from: {', '.join(MODELS)}")
    opts = dict(small=a.small, seed=a.seed, opset=a.opset)
    opts.update({k: v for k, v in (("batch", a.batch), ("seq", a.seq)) if v is not None})
    t0 = time.perf_counter()
    try:
        model = build(a.name, **opts)
    except (TypeError, ValueError) as e:
        p.error(str(e))
    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    size = save(model, a.output)
    print(f"{a.output}: {a.name}{' (small)' if a.small else ''}, "
          f"{n_params(model) / 1e6:.2f}M params, {len(model.graph.node)} nodes, "
          f"{size / 2**20:.1f} MiB, opset {a.opset}, {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
