"""Model conversion: an ONNX or PyTorch model in, an optimized .de engine file out.

    from deepep import Converter
    c = Converter(input_model="bert_base.pt", input_shapes={"input_ids": ["batch", "seq"]},
                  input_dtypes={"input_ids": "int64"})
    c.optimize(precision="fp16", fusion_strategy="aggressive")
    c.export("deepep_model.de")

ONNX files go straight to the native converter. PyTorch files (.pt/.pth: a
TorchScript archive from torch.jit.save, or a whole nn.Module pickled by
torch.save) are first exported to ONNX with torch.onnx.export on example inputs
made from `input_shapes`; string dims become dynamic axes of that name.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from deepep import _deepep

PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
FUSION_STRATEGIES = {"none": 0, "basic": 1, "standard": 2, "aggressive": 3}
ONNX_EXTENSIONS = (".onnx",)
TORCH_EXTENSIONS = (".pt", ".pth")
# Example size of a symbolic dim when exporting from PyTorch: 0 and 1 would be
# specialized to constants by torch.export, so the smallest general size is 2.
DEFAULT_EXAMPLE_DIM = 2

Progress = Callable[[str, float], None]


@dataclass
class ConversionResult:
    """What Converter.export wrote."""
    path: str
    file_bytes: int
    weights_bytes: int
    seconds: float
    metadata: dict = field(repr=False)

    @property
    def nodes_before(self) -> int:
        return self.metadata.get("fusion", {}).get("nodes_before", 0)

    @property
    def nodes_after(self) -> int:
        return self.metadata.get("fusion", {}).get("nodes_after", 0)


def fusion_level_of(strategy) -> int:
    """A fusion strategy name (none/basic/standard/aggressive) or level (0-3) as a level."""
    if isinstance(strategy, bool):
        raise ValueError(f"unknown fusion strategy {strategy!r}: choose {', '.join(FUSION_STRATEGIES)}")
    if isinstance(strategy, int):
        if 0 <= strategy <= 3:
            return strategy
        raise ValueError(f"fusion level {strategy} is out of range: choose 0 (none) to 3 (aggressive)")
    name = str(strategy).strip().lower()
    if name in FUSION_STRATEGIES:
        return FUSION_STRATEGIES[name]
    raise ValueError(f"unknown fusion strategy {strategy!r}: choose {', '.join(FUSION_STRATEGIES)}")


def _check_precision(precision) -> str:
    p = str(precision).strip().lower()
    if p not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: choose {', '.join(PRECISIONS)}")
    return p


def _is_torch_module(obj) -> bool:
    """An nn.Module / ScriptModule object, detected without importing torch."""
    mod = type(obj).__module__ or ""
    return mod.split(".")[0] == "torch" or any(
        c.__module__.startswith("torch.") for c in type(obj).__mro__[1:]
    )


def _require_torch(what: str):
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"converting {what} needs PyTorch, which is not installed here ({e}). Install torch, "
            f"or export the model to ONNX (torch.onnx.export) and convert the .onnx file"
        ) from None
    return torch


class Converter:
    """Converts one model to a .de engine file.

    `input_model`: a path to an .onnx file or a PyTorch .pt/.pth file (TorchScript
    or a pickled nn.Module), or an nn.Module object.
    `input_shapes`: {input name: dims} for PyTorch models, in forward() argument
    order; a dim is an int or a symbol name (a dynamic axis of that name).
    `input_dtypes`: {input name: numpy dtype name}, default float32 (token ids: int64).
    `example_dims`: {symbol: size} of the example inputs used for export (default 2).
    `opset`: the ONNX opset to export PyTorch models with (default: the exporter's).
    """

    def __init__(self, input_model, input_shapes: Mapping[str, Sequence] | None = None,
                 input_dtypes: Mapping[str, str] | None = None,
                 example_dims: Mapping[str, int] | None = None, opset: int | None = None):
        self._module = None
        if isinstance(input_model, (str, os.PathLike)):
            path = Path(input_model)
            ext = path.suffix.lower()
            if ext not in ONNX_EXTENSIONS + TORCH_EXTENSIONS:
                if ext == ".de":
                    raise ValueError(f"{path} is already a DeepEP engine file; load it with deepep.Engine")
                raise ValueError(f"cannot convert {path}: unknown extension {ext or '(none)'!r}; "
                                 f"give an .onnx file or a PyTorch .pt/.pth file")
            if not path.exists():
                raise FileNotFoundError(f"model file {path} does not exist")
            if not path.is_file():
                raise ValueError(f"model path {path} is not a file")
            self.input_model = str(path)
            self.kind = "onnx" if ext in ONNX_EXTENSIONS else "torch"
        elif _is_torch_module(input_model) and callable(input_model):
            self.input_model = type(input_model).__name__
            self.kind = "torch"
            self._module = input_model
        else:
            raise TypeError(f"input_model must be a file path or a torch.nn.Module, got {type(input_model).__name__}")

        self.input_shapes = {str(k): list(v) for k, v in (input_shapes or {}).items()}
        self.input_dtypes = {str(k): str(v) for k, v in (input_dtypes or {}).items()}
        self.example_dims = {str(k): int(v) for k, v in (example_dims or {}).items()}
        self.opset = opset
        if self.kind == "onnx":
            for what, given in (("input_shapes", self.input_shapes), ("input_dtypes", self.input_dtypes),
                                ("example_dims", self.example_dims)):
                if given:
                    raise ValueError(f"{what} applies to PyTorch models (the example inputs of the ONNX "
                                     f"export); an ONNX model's inputs come from the file")
        else:
            self._check_shapes(_require_torch(repr(self.input_model)))
        self.precision = "fp32"
        self.fusion_level = FUSION_STRATEGIES["standard"]
        self._optimized = False

    def _check_shapes(self, torch):
        if not self.input_shapes:
            raise ValueError(
                "input_shapes is required for PyTorch models: give {input name: dims} for each forward() "
                "argument, e.g. input_shapes={'input': ['batch', 3, 224, 224]}")
        for name, dims in self.input_shapes.items():
            for d in dims:
                ok = (isinstance(d, int) and not isinstance(d, bool) and d >= 0) or \
                     (isinstance(d, str) and d.isidentifier())
                if not ok:
                    raise ValueError(f"input_shapes['{name}']: dim {d!r} must be a non-negative int or a "
                                     f"symbol name (an identifier such as 'batch')")
        for name, dt in self.input_dtypes.items():
            if name not in self.input_shapes:
                raise ValueError(f"input_dtypes names '{name}', which input_shapes does not have")
            if not isinstance(getattr(torch, dt, None), torch.dtype):
                raise ValueError(f"input_dtypes['{name}']: unknown dtype {dt!r} (e.g. float32, float16, int64, bool)")
        for sym, n in self.example_dims.items():
            if n < 0:
                raise ValueError(f"example_dims['{sym}'] must be non-negative, got {n}")

    def optimize(self, precision: str = "fp32", fusion_strategy="standard") -> "Converter":
        """Chooses the engine's precision (fp32, tf32, fp16, bf16) and fusion strategy
        (none, basic, standard, aggressive, or a level 0-3). The work happens in export()."""
        self.precision = _check_precision(precision)
        self.fusion_level = fusion_level_of(fusion_strategy)
        self._optimized = True
        return self

    def export(self, output_path, progress: Progress | None = None) -> ConversionResult:
        """Writes the .de engine file (fp32 and the standard strategy unless optimize()
        chose otherwise). `progress(stage, fraction)` is called as the work goes on."""
        out = Path(output_path)
        if out.suffix.lower() != ".de":
            raise ValueError(f"the engine file should end in .de, got {out.name!r}")
        if out.parent and not out.parent.exists():
            raise FileNotFoundError(f"output directory {out.parent} does not exist")
        t0 = time.perf_counter()
        if self.kind == "onnx":
            meta_json, file_bytes, weights_bytes = self._convert(self.input_model, out, progress)
        else:
            with tempfile.TemporaryDirectory(prefix="deepep-export-") as tmp:
                onnx_path = Path(tmp) / (out.stem + ".onnx")
                if progress:
                    progress("torch export", 0.0)
                self._torch_to_onnx(onnx_path)
                if progress:
                    progress("torch export", 1.0)
                meta_json, file_bytes, weights_bytes = self._convert(str(onnx_path), out, progress)
        return ConversionResult(str(out), int(file_bytes), int(weights_bytes), time.perf_counter() - t0,
                                json.loads(meta_json))

    def _convert(self, onnx_path: str, out: Path, progress):
        return _deepep.convert_model(str(onnx_path), str(out), self.precision, self.fusion_level, progress)

    # ---- PyTorch -> ONNX --------------------------------------------------------

    def _load_torch(self):
        torch = _require_torch(repr(self.input_model))
        if self._module is not None:
            model = self._module
        else:
            try:
                model = torch.jit.load(self.input_model, map_location="cpu")
            except Exception as jit_error:  # not a TorchScript archive: a pickled module?
                try:
                    model = torch.load(self.input_model, map_location="cpu", weights_only=False)
                except Exception as e:
                    raise ValueError(f"cannot read {self.input_model}: it is neither a TorchScript archive "
                                     f"({jit_error}) nor a pickled model ({e})") from None
        if isinstance(model, Mapping):
            raise ValueError(
                f"{self.input_model} holds a {type(model).__name__} (a state_dict or checkpoint?), not a model: "
                f"build the nn.Module, load the weights into it and pass the module itself "
                f"(Converter(input_model=module, input_shapes=...))")
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"{self.input_model} holds a {type(model).__name__}, not a torch.nn.Module")
        return torch, model

    def _example_inputs(self, torch):
        args = []
        for name, dims in self.input_shapes.items():
            shape = tuple(d if isinstance(d, int) else self.example_dims.get(d, DEFAULT_EXAMPLE_DIM) for d in dims)
            dtype = getattr(torch, self.input_dtypes.get(name, "float32"))
            if dtype == torch.bool:
                t = torch.ones(shape, dtype=torch.bool)
            elif dtype.is_floating_point:
                t = torch.randn(shape, dtype=dtype)
            elif dtype.is_complex:
                raise ValueError(f"input_dtypes['{name}']: complex inputs are not supported")
            else:
                # Ids, token types, masks, indices: 0 and 1 are valid for any table.
                t = torch.randint(0, 2, shape, dtype=dtype)
            args.append(t)
        return tuple(args)

    def _torch_to_onnx(self, onnx_path: Path):
        torch, model = self._load_torch()
        was_training = model.training
        model.eval()
        try:
            # The exporters print progress to stdout; keep stdout for the caller's own output.
            with contextlib.redirect_stdout(sys.stderr):
                self._export_onnx(torch, model, onnx_path)
        finally:
            model.train(was_training)

    def _export_onnx(self, torch, model, onnx_path: Path):
        import inspect

        names = list(self.input_shapes)
        args = self._example_inputs(torch)
        dynamic_axes = {n: {i: d for i, d in enumerate(dims) if isinstance(d, str)}
                        for n, dims in self.input_shapes.items()}
        dynamic_axes = {n: axes for n, axes in dynamic_axes.items() if axes}
        scripted = isinstance(model, (torch.jit.ScriptModule, torch.jit.ScriptFunction))
        has_dynamo = "dynamo" in inspect.signature(torch.onnx.export).parameters
        # TorchScript models export best through the TorchScript exporter; eager
        # modules through torch.export (dynamo), the default of recent PyTorch.
        # Each falls back to the other, and both failures are reported.
        order = ["dynamo", "torchscript"] if has_dynamo and not scripted else ["torchscript"]
        if has_dynamo and scripted:
            order.append("dynamo")
        failures = []
        for how in order:
            if onnx_path.exists():
                onnx_path.unlink()
            try:
                if how == "dynamo":
                    dims = {}
                    shapes = tuple(
                        {i: dims.setdefault(d, torch.export.Dim(d)) for i, d in enumerate(s) if isinstance(d, str)}
                        or None
                        for s in self.input_shapes.values())
                    kw = dict(input_names=names, dynamic_shapes=shapes if dynamic_axes else None, dynamo=True,
                              verbose=False)
                    if self.opset:
                        kw["opset_version"] = self.opset
                    torch.onnx.export(model, args, str(onnx_path), **kw)
                else:
                    kw = dict(input_names=names, dynamic_axes=dynamic_axes or None,
                              opset_version=self.opset or 17, do_constant_folding=True)
                    if has_dynamo:
                        kw["dynamo"] = False
                    torch.onnx.export(model, args, str(onnx_path), **kw)
                if onnx_path.exists():
                    return
                failures.append(f"{how} exporter: wrote no file")
            except Exception as e:  # the exporters raise many types; report them all
                failures.append(f"{how} exporter: {type(e).__name__}: {e}")
        raise ValueError(f"torch.onnx.export could not export {self.input_model}: " + "; ".join(failures))

    def __repr__(self) -> str:
        return (f"deepep.Converter({self.input_model!r}, precision={self.precision!r}, "
                f"fusion_level={self.fusion_level})")
