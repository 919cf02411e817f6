"""The CPU thread pool's placement and the GEMM's cache-sized blocking, each in a
fresh process (the pool and the cache size are read once per process):
the default pool has a thread per physical core, its workers pinned one
core each (or any size with DEEPEP_PIN_THREADS=1), none with DEEPEP_PIN_THREADS=0; a run hands its caller
thread its CPU mask back; and products are right whatever L2 size the GEMM
sizes its blocks for (DEEPEP_CPU_L2_BYTES)."""
import json
import os
import subprocess
import sys

import deepep
import pytest

# Runs a 128x768 @ 768x1000 MatMul + Add (wide enough for several column
# blocks) and prints the max error against numpy, the caller's CPU mask
# before and after the run, and every thread's mask.
CHILD = r"""
import glob, json, os, sys, tempfile, threading
import numpy as np, onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as T
import deepep
rng = np.random.default_rng(0)
w = rng.standard_normal((768, 1000)).astype(np.float32) / 28
b = rng.standard_normal(1000).astype(np.float32)
g = h.make_graph([h.make_node("MatMul", ["x", "w"], ["m"]), h.make_node("Add", ["m", "b"], ["y"])], "g",
                 [h.make_tensor_value_info("x", T.FLOAT, [128, 768])], [h.make_tensor_value_info("y", T.FLOAT, [128, 1000])],
                 [nh.from_array(w, "w"), nh.from_array(b, "b")])
path = os.path.join(tempfile.mkdtemp(), "mm.onnx")
onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 17)]), path)
x = rng.standard_normal((128, 768)).astype(np.float32)
eng = deepep.Engine(path)
before = sorted(os.sched_getaffinity(0))
y = eng.run({"x": x})["y"]
y = eng.run({"x": x})["y"]
after = sorted(os.sched_getaffinity(0))
masks = {}
for f in glob.glob(f"/proc/{os.getpid()}/task/*/status"):
    for line in open(f):
        if line.startswith("Cpus_allowed_list:"):
            masks[f.split("/")[-2]] = line.split()[1]
ref = x.astype(np.float64) @ w.astype(np.float64) + b
print(json.dumps({"err": float(np.max(np.abs(y - ref))), "before": before, "after": after,
                  "main": str(threading.get_native_id()), "masks": masks}))
"""


def run_child(**env):
    e = dict(os.environ)
    e.pop("DEEPEP_PIN_THREADS", None)
    e.pop("DEEPEP_CPU_L2_BYTES", None)
    e.pop("DEEPEP_NUM_THREADS", None)
    e.update({k: str(v) for k, v in env.items()})
    e["PYTHONPATH"] = os.path.dirname(os.path.dirname(deepep.__file__))  # the deepep this pytest imports
    out = subprocess.run([sys.executable, "-c", CHILD], env=e, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def single_cpu(mask):
    return mask.isdigit()


needs_two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs at least 2 CPUs")


@needs_two_cpus
def test_workers_pinned_when_asked_and_the_caller_gets_its_mask_back():
    r = run_child(DEEPEP_NUM_THREADS=2, DEEPEP_PIN_THREADS=1)
    assert r["err"] < 1e-3
    pinned = [tid for tid, m in r["masks"].items() if single_cpu(m) and tid != r["main"]]
    assert len(pinned) == 1, r["masks"]  # the one worker
    assert r["after"] == r["before"]  # the run moved the caller, then gave its mask back
    assert r["masks"][r["main"]] != r["masks"][pinned[0]]


@needs_two_cpus
def test_no_pinning_when_turned_off():
    r = run_child(DEEPEP_NUM_THREADS=2, DEEPEP_PIN_THREADS=0)
    assert r["err"] < 1e-3
    assert not [m for m in r["masks"].values() if single_cpu(m)], r["masks"]
    assert r["after"] == r["before"]


def physical_cores():
    """This process's CPUs grouped by core (sysfs sibling lists), as the pool groups them."""
    cores = {}
    for c in sorted(os.sched_getaffinity(0)):
        try:
            key = open(f"/sys/devices/system/cpu/cpu{c}/topology/thread_siblings_list").read().strip()
        except OSError:
            key = f"own {c}"
        cores.setdefault(key, []).append(c)
    return list(cores.values())


@pytest.mark.skipif(len(physical_cores()) < 2, reason="needs at least 2 physical cores")
def test_default_pool_is_one_pinned_worker_per_core():
    cores = physical_cores()
    # The default size (no DEEPEP_NUM_THREADS): one thread a physical core, the
    # workers pinned to one CPU each of the cores after the caller's.
    full = run_child()
    pinned = sorted(int(m) for t, m in full["masks"].items() if single_cpu(m) and t != full["main"])
    assert pinned == sorted(core[0] for core in cores[1:]), (cores, full["masks"])
    if len(cores) > 2:
        part = run_child(DEEPEP_NUM_THREADS=2)
        assert not [m for m in part["masks"].values() if single_cpu(m)], part["masks"]


@pytest.mark.parametrize("l2", [16 << 10, 512 << 10, 2 << 20])
def test_products_right_for_every_l2_block_width(l2):
    assert run_child(DEEPEP_NUM_THREADS=2, DEEPEP_CPU_L2_BYTES=l2)["err"] < 1e-3
