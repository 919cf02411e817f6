"""The Python face of a loaded model: numpy arrays in, numpy arrays out."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from deepep import _deepep


# Types numpy lacks, held one element per byte as the ml_dtypes package does.
_ML_DTYPES = {"bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
              "float8_e8m0fnu", "int4", "uint4", "int2", "uint2", "float4_e2m1fn"}


def _numpy_dtype(name: str) -> np.dtype:
    if name in _ML_DTYPES:
        try:
            import ml_dtypes
        except ImportError as e:
            raise RuntimeError(f"outputs of dtype {name} need the ml_dtypes package") from e
        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)


def _to_raw(name: str, value) -> tuple:
    arr = np.asarray(value)
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")  # keeps 0-d arrays 0-d, unlike np.ascontiguousarray
    dtype = arr.dtype.name
    if dtype == "object" or arr.dtype.kind in "USO":
        raise deepep_input_error(f"input '{name}': dtype {arr.dtype} is not supported")
    flat = arr.reshape(-1).view(np.uint8) if arr.size else np.zeros(0, np.uint8)
    return (name, dtype, list(arr.shape), flat)


def deepep_input_error(msg: str) -> Exception:
    return _deepep.InputError(msg)


class Engine:
    """A model loaded for inference on one device.

    `path` is an ONNX file. `device` is "cpu" (CUDA comes with the GPU backend).
    """

    def __init__(self, path: str, device: str = "cpu"):
        self._engine = _deepep._Engine.load(str(path), device)

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

    def graph_text(self) -> str:
        """The model's graph in DeepEP's IR text form."""
        return self._engine.graph_text()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Runs the model; returns {output name: numpy array} in model order."""
        if not isinstance(feeds, Mapping):
            raise TypeError("Engine.run expects a dict {input name: numpy array}")
        raw = [_to_raw(k, v) for k, v in feeds.items()]
        out = {}
        for name, dtype, shape, data in self._engine.run_raw(raw):
            out[name] = data.view(_numpy_dtype(dtype)).reshape(shape)
        return out

    def __repr__(self) -> str:
        ins = ", ".join(f"{i['name']}: {i['dtype']}{i['shape']}" for i in self.inputs)
        return f"deepep.Engine(device={self.device!r}, inputs=[{ins}])"
