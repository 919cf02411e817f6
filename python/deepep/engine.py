"""The Python face of a loaded model: numpy arrays in, numpy arrays out."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from deepep import _deepep


# Types numpy lacks, held one element per byte as the ml_dtypes package does.
_ML_DTYPES = {"bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
              "float8_e8m0fnu", "int4", "uint4", "int2", "uint2", "float4_e2m1fn"}


def _numpy_dtype(name: str) -> np.dtype:
    dt = _NUMPY_DTYPES.get(name)
    if dt is None:
        dt = _NUMPY_DTYPES[name] = _make_numpy_dtype(name)
    return dt


def _make_numpy_dtype(name: str) -> np.dtype:
    if name in _ML_DTYPES:
        try:
            import ml_dtypes
        except ImportError as e:
            raise RuntimeError(f"outputs of dtype {name} need the ml_dtypes package") from e
        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)


# numpy computes dtype.name in Python (~5 us, as long as a small model's
# whole run): each dtype's name is looked up once.
_DTYPE_NAMES: dict = {}
_NUMPY_DTYPES: dict = {}


def _dtype_name(dt: np.dtype) -> str:
    name = _DTYPE_NAMES.get(dt)
    if name is None:
        name = _DTYPE_NAMES[dt] = dt.name
    return name


def _to_raw(name: str, value) -> tuple:
    arr = np.asarray(value)
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")  # keeps 0-d arrays 0-d, unlike np.ascontiguousarray
    if not arr.dtype.isnative:  # the engine reads bytes in this machine's order
        arr = arr.astype(arr.dtype.newbyteorder("="))
    dtype = _dtype_name(arr.dtype)
    if dtype == "object" or arr.dtype.kind in "USO":
        raise deepep_input_error(f"input '{name}': dtype {arr.dtype} is not supported")
    flat = arr.reshape(-1).view(np.uint8) if arr.size else np.zeros(0, np.uint8)
    return (name, dtype, list(arr.shape), flat)


def deepep_input_error(msg: str) -> Exception:
    return _deepep.InputError(msg)


def parse_size(size) -> int:
    """Bytes from an int or a string like "8G", "512M", "64k" (powers of 1024)."""
    if size is None:
        return 0
    if isinstance(size, int):
        if size < 0:
            raise ValueError(f"memory pool size must be non-negative, got {size}")
        return size
    text = str(size).strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    mult = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"cannot read memory size {size!r}: use e.g. 8G, 512M or a byte count") from None
    if value < 0:
        raise ValueError(f"memory pool size must be non-negative, got {size!r}")
    return int(value * mult)


class Session:
    """One caller's run state: memory plans per input-shape signature and their
    arena. Sessions of one Engine may run concurrently; one Session serializes."""

    def __init__(self, native):
        self._native = native

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray] | None = None) -> dict:
        """Runs the model; returns {output name: numpy array} in model order.

        `outputs` may hold preallocated arrays (C-contiguous, right dtype and
        shape): results are written into them without an extra copy."""
        if not isinstance(feeds, Mapping):
            raise TypeError("run expects a dict {input name: numpy array}")
        raw = [_to_raw(k, v) for k, v in feeds.items()]
        pre = []
        for k, v in (outputs or {}).items():
            if not isinstance(v, np.ndarray) or not v.flags.c_contiguous or not v.flags.writeable:
                raise ValueError(f"preallocated output '{k}' must be a writable C-contiguous numpy array")
            pre.append(_to_raw(k, v))
        out = {}
        for name, dtype, shape, data in self._native.run_raw(raw, pre):
            if outputs and name in outputs:
                out[name] = outputs[name]
            else:
                out[name] = data.view(_numpy_dtype(dtype)).reshape(shape)
        return out

    def memory_report(self) -> dict:
        """The memory plan of the last run's input shapes: naive_bytes,
        planned_bytes, lower_bound_bytes, weights_bytes, planned_buffers,
        inplace_reuses (see docs/MEMORY.md)."""
        return self._native.memory_report()


class Engine:
    """A model loaded for inference on one device.

    `path` is an ONNX model or a .de engine file. `device` is "cpu", or
    "cuda" / "cuda:N" in a build with the CUDA backend (see deepep.devices()).
    `memory_pool_size` caps the activation arena ("8G", "512M" or bytes).
    `fusion_level` (0-3) is the optimization applied to an ONNX model at load.
    `precision`: "fp32" (float32 GEMMs may use TF32 tensor cores on a GPU of
    compute capability >= 8.0, and bf16x3 on the AMX tiles of an x86 CPU that
    has them: ~1e-5 relative error), "fp32-strict" (float32 multiply-adds
    only), or, on a GPU, "fp16" (float16 weights and activations, fp32
    accumulation; inputs and outputs stay float32).
    `cuda_graphs` (GPU only): capture and replay one CUDA graph per input shapes.
    `layout`: "auto" (the device's faster convolution layout), "nchw" or "nhwc"
    (channels-last convolutions); the environment's DEEPEP_LAYOUT overrides it.
    `output_dtype`: "model" (outputs as the model declares them) or "float16"
    (float32 outputs come back as float16: with precision="fp16" on a GPU
    nothing is widened and half the bytes cross PCIe)."""

    def __init__(self, path, device: str = "cpu", memory_pool_size=None, fusion_level: int = 2,
                 precision: str = "fp32", cuda_graphs: bool = True, layout: str = "auto",
                 output_dtype: str = "model"):
        self._engine = _deepep._Engine.load(str(path), device, parse_size(memory_pool_size), fusion_level, True,
                                            precision, cuda_graphs, layout, output_dtype)
        self._session = Session(self._engine.create_session())

    @property
    def inputs(self) -> list[dict]:
        """[{"name", "dtype", "shape"}]; shape entries are ints, symbol names or None."""
        return self._engine.inputs

    @property
    def outputs(self) -> list[dict]:
        return self._engine.outputs

    @property
    def device(self) -> str:
        return self._engine.device

    @property
    def layout(self) -> str:
        """The convolution layout chosen at load: "nchw" or "nhwc"."""
        return self._engine.layout

    @property
    def metadata(self) -> dict:
        """A .de file's metadata (precision, fusion level and report, I/O specs); {} for ONNX."""
        import json

        return json.loads(self._engine.metadata_json)

    def graph_text(self) -> str:
        """The model's graph in DeepEP's IR text form."""
        return self._engine.graph_text()

    def create_session(self) -> Session:
        return Session(self._engine.create_session())

    def run(self, feeds: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray] | None = None) -> dict:
        """Runs the model on the engine's default session (see Session.run)."""
        return self._session.run(feeds, outputs)

    def memory_report(self) -> dict:
        return self._session.memory_report()

    def __repr__(self) -> str:
        ins = ", ".join(f"{i['name']}: {i['dtype']}{i['shape']}" for i in self.inputs)
        return f"deepep.Engine(device={self.device!r}, inputs=[{ins}])"
