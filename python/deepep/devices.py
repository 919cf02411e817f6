"""The hardware probe: what DeepEP can run on.

    >>> import deepep
    >>> for d in deepep.devices(): print(d["device"], d["name"])
    cpu Intel(R) Xeon(R) ...
    cuda:0 NVIDIA H100 80GB HBM3

Each entry is a dict. The CPU entry lists the instruction-set features the
kernels care about; GPU entries (from the CUDA runtime, in a build with the
CUDA backend) give the compute capability and tensor-core generation, SM
count, memory size and bandwidth (bus width x memory clock x 2), L2 and
shared-memory sizes and peak FP32 / FP16 tensor-core rates, and the paths the
engine takes on them.
"""
from __future__ import annotations

import os
import platform

from deepep import _deepep

# x86 and Arm features the CPU kernels (and future ones) can use, as /proc/cpuinfo spells them.
_CPU_FEATURES = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                 "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
                 "asimd", "asimdhp", "asimddp", "sve", "sve2", "bf16", "i8mm")


def _cpu() -> dict:
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model") and value.strip():
                    name = value.strip()
                elif key in ("flags", "Features"):
                    flags.update(value.split())
    except OSError:
        pass
    k = _deepep.cpu_kernels()
    return {
        "device": "cpu",
        "name": name,
        "architecture": platform.machine(),
        "cores": os.cpu_count() or 1,
        "threads": k["threads"],  # the intra-op pool: one a physical core (DEEPEP_NUM_THREADS overrides)
        "isa_features": [f for f in _CPU_FEATURES if f in flags],
        "paths": {
            "kernels": k["isa"] if k["isa"] != "none" else "reference (no AVX2)",
            "fp32_gemm": "bf16x3 on AMX tiles (precision='fp32'); float32 FMAs with precision='fp32-strict'"
            if k["amx_bf16x3"] else "float32 FMAs",
        },
    }


def _paths(g: dict) -> dict:
    """The kernel paths the CUDA backend chooses on this GPU."""
    major = int(g["compute_capability"].split(".")[0])
    return {
        "fp32_gemm": "TF32 tensor cores (precision='fp32'); IEEE fp32 with precision='fp32-strict'"
        if g["tf32"] else "IEEE fp32 (no TF32 before compute capability 8.0)",
        "fp16_gemm": "fp16 tensor cores, fp32 accumulation" if major >= 7 else "fp16 without tensor cores",
        "conv": "cuDNN, channels-last (NHWC) with bias/ReLU/residual fused (layout='auto'); NCHW with layout='nchw'",
    }


def devices() -> list[dict]:
    """The CPU, then every GPU the CUDA runtime sees (none in a CPU-only build)."""
    out = [_cpu()]
    if _deepep.cuda_built():
        gpus, _why = _deepep.cuda_devices()
        for g in gpus:
            g = dict(g)
            g["paths"] = _paths(g)
            out.append(g)
    return out


def cuda_status() -> str:
    """Why there is no GPU entry, or how many there are."""
    if not _deepep.cuda_built():
        return "this build of DeepEP has no CUDA backend (rebuild with -DDEEPEP_WITH_CUDA=ON)"
    gpus, why = _deepep.cuda_devices()
    return f"{len(gpus)} CUDA device(s)" if gpus else why


def describe(devs: list[dict] | None = None) -> str:
    """Human-readable text of devices() for `deepep inspect --device`."""
    devs = devices() if devs is None else devs
    lines = []
    for d in devs:
        if d["device"] == "cpu":
            lines.append(f"cpu        {d['name']} ({d['architecture']}, {d['cores']} CPUs, {d['threads']} pool threads)")
            lines.append(f"           ISA: {' '.join(d['isa_features']) or 'baseline'}")
            continue
        gib = d["memory_bytes"] / (1 << 30)
        lines.append(f"{d['device']:10} {d['name']}: compute capability {d['compute_capability']}"
                     f" ({d['tensor_cores'] or 'no'} tensor cores), {d['sm_count']} SMs at {d['clock_mhz']:.0f} MHz")
        lines.append(f"           memory {gib:.1f} GiB, {d['memory_bus_bits']}-bit at {d['memory_clock_mhz']:.0f} MHz:"
                     f" {d['memory_bandwidth_gbs']:.0f} GB/s; L2 {d['l2_bytes'] / (1 << 20):.0f} MiB;"
                     f" shared memory {d['shared_memory_per_sm'] // 1024} KiB/SM"
                     f" ({d['shared_memory_per_block_optin'] // 1024} KiB/block)")
        lines.append(f"           peak FP32 {d['peak_fp32_tflops']:.1f} TFLOP/s,"
                     f" FP16 tensor {d['peak_fp16_tensor_tflops']:.0f} TFLOP/s (dense, fp32 accumulation)")
        for k, v in d["paths"].items():
            lines.append(f"           {k}: {v}")
    if len(devs) == 1 or all(d["device"] == "cpu" for d in devs):
        lines.append(f"gpu        none: {cuda_status()}")
    return "\n".join(lines)
