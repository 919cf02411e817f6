#!/usr/bin/env python3
"""Peak resident memory of one inference: DeepEP (.de engine file) vs onnxruntime.

    PYTHONPATH=python python bench/memory_vs_ort.py [--model resnet152] [--batch 1] [--json]

Builds the zoo model (random weights) as ONNX, converts it to a .de file (fp32,
fusion level 2), then measures each runtime in a fresh child process: import,
load, one run on the same input. A child reports its peak resident set
(VmHWM from /proc/self/status; not getrusage's ru_maxrss, which Linux carries
over from the parent through fork and exec, so a child of a large parent
reports the parent's size), its resident set after the imports (the interpreter, numpy and the runtime's
library: the floor both pay), and the split of its final resident set into
anonymous memory and file pages (a mapped .de file's weights count as file
pages once touched). The outputs of both runs are compared.
`--write-results` records the table with the CPU model and date under
bench/results/memory_<date>.md.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def status_kib():
    """VmHWM, VmRSS, RssAnon, RssFile of this process in KiB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(rest.split()[0])
    return out


def child(runtime, model, input_path, output_path, threads):
    """Runs in a fresh process: import, load, one run; prints a JSON line."""
    import numpy as np

    x = np.load(input_path)
    if runtime in ("deepep", "deepep-onnx"):
        import deepep
        floor = status_kib()["VmRSS"]
        t0 = time.perf_counter()
        engine = deepep.Engine(model)
        t1 = time.perf_counter()
        name = engine.inputs[0]["name"]
        out = engine.run({name: x})
        t2 = time.perf_counter()
        extra = {"memory_report": engine.memory_report()}
    else:
        import onnxruntime as ort
        floor = status_kib()["VmRSS"]
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        t0 = time.perf_counter()
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        t1 = time.perf_counter()
        name = sess.get_inputs()[0].name
        out = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {name: x})))
        t2 = time.perf_counter()
        extra = {}
    np.save(output_path, next(iter(out.values())))
    st = status_kib()
    print(json.dumps({"runtime": runtime, "peak_kib": st["VmHWM"],
                      "floor_kib": floor, "final_kib": st["VmRSS"], "anon_kib": st["RssAnon"],
                      "file_kib": st["RssFile"], "load_s": t1 - t0, "run_s": t2 - t1, **extra}))


def source_tree():
    """The checkout's python/ folder when it holds a built extension (scripts/dev-build),
    else None: the installed deepep (pip install .) is used."""
    d = os.path.join(ROOT, "python")
    return d if glob.glob(os.path.join(d, "deepep", "_deepep*.so")) else None


def run_child(runtime, model, input_path, output_path, threads):
    env = dict(os.environ)
    if source_tree():
        env["PYTHONPATH"] = source_tree() + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", runtime, model, input_path, output_path,
           "--threads", str(threads)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{runtime} child failed ({r.returncode}):\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def cpu_model():
    from deepep.devices import devices  # the hardware probe's CPU entry (deepep inspect --device)

    return devices()[0]["name"]


def prepare(model, batch, small, workdir):
    import numpy as np

    if source_tree():
        sys.path.insert(0, source_tree())
    from deepep import zoo, _deepep

    os.makedirs(workdir, exist_ok=True)
    stem = f"{model}{'_small' if small else ''}_b{batch}"
    onnx_path = os.path.join(workdir, stem + ".onnx")
    de_path = os.path.join(workdir, stem + ".de")
    if not os.path.exists(onnx_path):
        zoo.save(zoo.build(model, batch=batch, small=small), onnx_path)
    if not os.path.exists(de_path) or os.path.getmtime(de_path) < os.path.getmtime(onnx_path):
        _deepep.convert_model(onnx_path, de_path, "fp32", 2, None)  # fp32, fusion level 2
    input_path = os.path.join(workdir, stem + "_input.npy")
    if not os.path.exists(input_path):
        import onnx

        dims = onnx.load(onnx_path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim
        rng = np.random.default_rng(0)
        np.save(input_path, rng.standard_normal([d.dim_value for d in dims]).astype(np.float32))
    return onnx_path, de_path, input_path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet152", help="zoo vision model (default resnet152)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--small", action="store_true", help="the zoo's small variant (a quick smoke run)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default 1)")
    p.add_argument("--repeat", type=int, default=3, help="children per runtime; the median peak counts")
    p.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "deepep_memory_bench"))
    p.add_argument("--with-onnx", action="store_true",
                   help="also DeepEP loading the .onnx (parsed, optimized at load, weights owned)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--write-results", action="store_true", help="write bench/results/memory_<date>.md")
    p.add_argument("--child", nargs=4, metavar=("RUNTIME", "MODEL", "INPUT", "OUTPUT"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        child(*a.child, a.threads)
        return 0

    import numpy as np

    onnx_path, de_path, input_path = prepare(a.model, a.batch, a.small, a.workdir)
    runs = {}
    sides = [("deepep", de_path), ("onnxruntime", onnx_path)]
    if a.with_onnx:
        sides.append(("deepep-onnx", onnx_path))
    for runtime, path in sides:
        out = os.path.join(a.workdir, f"out_{runtime}.npy")
        rs = [run_child(runtime, path, input_path, out, a.threads) for _ in range(a.repeat)]
        rs.sort(key=lambda r: r["peak_kib"])
        runs[runtime] = rs[len(rs) // 2]
        runs[runtime]["peaks_kib"] = [r["peak_kib"] for r in rs]
    got = np.load(os.path.join(a.workdir, "out_deepep.npy"))
    ref = np.load(os.path.join(a.workdir, "out_onnxruntime.npy"))
    err = float(np.abs(got.astype(np.float64) - ref).max() / max(float(np.abs(ref).max()), 1e-30))
    d, o = runs["deepep"], runs["onnxruntime"]
    import onnxruntime

    result = {
        "model": a.model + (" (small)" if a.small else ""), "batch": a.batch, "date": datetime.date.today().isoformat(), "cpu": cpu_model(),
        "onnxruntime": onnxruntime.__version__, "ort_threads": a.threads, "repeat": a.repeat,
        "onnx_bytes": os.path.getsize(onnx_path), "de_bytes": os.path.getsize(de_path),
        "deepep": d, "onnxruntime_run": o, "ratio": d["peak_kib"] / o["peak_kib"],
        "ratio_above_floor": (d["peak_kib"] - d["floor_kib"]) / max(1, o["peak_kib"] - o["floor_kib"]),
        "max_relative_error": err,
    }
    if a.with_onnx:
        result["deepep_onnx"] = runs["deepep-onnx"]
    mib = lambda k: k / 1024
    rows = [("peak RSS (VmHWM)", "peak_kib"), ("RSS after imports", "floor_kib"),
            ("final RSS", "final_kib"), ("  of which anonymous", "anon_kib"), ("  of which file pages", "file_kib")]
    cols = [("DeepEP (.de)", d), (f"onnxruntime {onnxruntime.__version__}", o)]
    if a.with_onnx:
        cols.append(("DeepEP (.onnx)", runs["deepep-onnx"]))
    lines = ["| | " + " | ".join(c for c, _ in cols) + " |", "|---|" + "---:|" * len(cols)]
    for label, k in rows:
        lines.append(f"| {label} | " + " | ".join(f"{mib(r[k]):.1f} MiB" for _, r in cols) + " |")
    lines.append("| peak above the import floor | " +
                 " | ".join(f"{mib(r['peak_kib'] - r['floor_kib']):.1f} MiB" for _, r in cols) + " |")
    lines.append("| load / run | " + " | ".join(f"{r['load_s']:.2f} s / {r['run_s']:.2f} s" for _, r in cols) + " |")
    table = "\n".join(lines)
    summary = (f"peak RSS ratio DeepEP / onnxruntime = {result['ratio']:.3f} "
               f"(above the import floor: {result['ratio_above_floor']:.3f}); "
               f"outputs agree to {err:.1e} relative")
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{a.model} batch {a.batch}: .onnx {mib(result['onnx_bytes'] / 1024):.1f} MiB, "
              f".de {mib(result['de_bytes'] / 1024):.1f} MiB; CPU {result['cpu']}")
        print(table)
        print(summary)
    if a.write_results:
        path = os.path.join(HERE, "results", f"memory_{result['date']}.md")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mr = d.get("memory_report", {})
        with open(path, "w") as f:
            f.write(f"# Peak resident memory: DeepEP vs onnxruntime ({result['date']})\n\n")
            f.write(f"- model: zoo `{a.model}` (random weights), batch {a.batch}, fp32; "
                    f".onnx {mib(result['onnx_bytes'] / 1024):.1f} MiB, .de {mib(result['de_bytes'] / 1024):.1f} MiB\n")
            f.write(f"- CPU: {result['cpu']}; Python {platform.python_version()}; "
                    f"onnxruntime {onnxruntime.__version__} (ORT_ENABLE_ALL, {a.threads} intra-op thread)\n")
            f.write(f"- each runtime in a fresh process: import, load, one run on the same input; "
                    f"median of {a.repeat} children (peaks: DeepEP {[round(mib(k)) for k in d['peaks_kib']]} MiB, "
                    f"onnxruntime {[round(mib(k)) for k in o['peaks_kib']]} MiB)\n")
            f.write(f"- command: `PYTHONPATH=python python bench/memory_vs_ort.py --model {a.model} "
                    f"--batch {a.batch}{' --with-onnx' if a.with_onnx else ''} --write-results`\n")
            f.write(f"- load/run times are incidental (this measures memory; machine load varies)\n\n")
            f.write(table + "\n\n" + summary + "\n")
            if mr:
                f.write(f"\nDeepEP memory_report: planned {mib(mr['planned_bytes'] / 1024):.1f} MiB "
                        f"(naive {mib(mr['naive_bytes'] / 1024):.1f}, lower bound "
                        f"{mib(mr['lower_bound_bytes'] / 1024):.1f}), weights {mib(mr['weights_bytes'] / 1024):.1f} MiB, "
                        f"{mr['planned_buffers']} buffers, {mr.get('inplace_reuses', 0)} in-place reuses\n")
        print(f"wrote {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
