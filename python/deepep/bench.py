"""Timing shared by `deepep bench`, `deepep run` and benchmark scripts.

    times = measure(lambda: engine.run(feeds), warmup=10, iterations=100)
    stats = summarize(times, batch=8)   # {"latency_ms": {...}, "throughput_per_s": ...}

Latency statistics are over wall-clock times of whole runs (time.perf_counter),
like trtexec's host latency; percentiles use the nearest-rank definition (p99 of
100 runs is the 99th smallest), so every reported value is a time that was measured.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Sequence

PERCENTILES = (90, 95, 99)


def measure(fn: Callable[[], object], warmup: int = 10, iterations: int = 100) -> list[float]:
    """Calls fn `warmup` times untimed, then `iterations` times; returns each call's ms."""
    if warmup < 0:
        raise ValueError(f"warmup must be non-negative, got {warmup}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def percentile(sorted_ms: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list: the ceil(p/100 * n)-th smallest."""
    if not sorted_ms:
        raise ValueError("percentile of no measurements")
    rank = max(1, math.ceil(p / 100 * len(sorted_ms)))
    return sorted_ms[min(rank, len(sorted_ms)) - 1]


def summarize(times_ms: Sequence[float], batch: int = 1) -> dict:
    """{"latency_ms": {min, mean, median, p90, p95, p99, max}, "throughput_per_s",
    "batch", "iterations"}: throughput counts inferences (batch items) per second
    over the mean latency."""
    if not times_ms:
        raise ValueError("no measurements to summarize")
    t = sorted(float(x) for x in times_ms)
    n = len(t)
    mean = sum(t) / n
    median = t[n // 2] if n % 2 else (t[n // 2 - 1] + t[n // 2]) / 2
    lat = {"min": t[0], "mean": mean, "median": median}
    for p in PERCENTILES:
        lat[f"p{p}"] = percentile(t, p)
    lat["max"] = t[-1]
    throughput = batch * 1e3 / mean if mean > 0 else float("inf")
    return {"latency_ms": lat, "throughput_per_s": throughput, "batch": batch, "iterations": n}


def batch_of(feeds: dict) -> int:
    """The batch size of a run: the first dim of the first input (1 for a scalar input)."""
    for a in feeds.values():
        shape = getattr(a, "shape", ())
        return int(shape[0]) if len(shape) else 1
    return 1


def format_summary(stats: dict) -> str:
    """trtexec-style lines."""
    lat = stats["latency_ms"]
    lines = [
        f"Latency: min = {lat['min']:.4f} ms, max = {lat['max']:.4f} ms, mean = {lat['mean']:.4f} ms, "
        f"median = {lat['median']:.4f} ms",
        "          " + ", ".join(f"percentile({p}%) = {lat[f'p{p}']:.4f} ms" for p in PERCENTILES),
        f"Throughput: {stats['throughput_per_s']:.2f} inferences/s "
        f"(batch {stats['batch']}, {stats['iterations']} iterations)",
    ]
    return "\n".join(lines)
