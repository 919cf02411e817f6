# Offline model zoo: standard architectures with random weights, written as torch.onnx.export
# (TorchScript exporter, opset 17) would write the torchvision / HuggingFace models in eval mode.
# `python -m deepep.zoo NAME -o FILE.onnx`; importing this package only defines the registry.
import importlib
import inspect
import math
import os
from collections import namedtuple

Spec = namedtuple("Spec", "module function fixed description")

MODELS = {
    "resnet50": Spec("resnet", "resnet", {"depth": 50},
                     "torchvision resnet50, 25.6M params, input [batch,3,224,224]"),
    "resnet152": Spec("resnet", "resnet", {"depth": 152},
                      "torchvision resnet152, 60.2M params, input [batch,3,224,224]"),
    "mobilenetv2": Spec("mobilenet", "mobilenetv2", {},
                        "torchvision mobilenet_v2, 3.5M params, input [batch,3,224,224]"),
    "bert-base": Spec("bert", "bert", {},
                      "HF bert-base-uncased BertModel, 109M params, inputs [batch,seq]"),
    "gpt2": Spec("gpt2", "gpt2", {},
                 "HF gpt2 (small) GPT2LMHeadModel, 124M params, input [batch,seq]"),
}

EXTERNAL_DATA_BYTES = 1536 << 20  # larger models are saved with their weights beside them


def _function(name):
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    spec = MODELS[name]
    return getattr(importlib.import_module(f".{spec.module}", __name__), spec.function)


def options(name):
    """The keyword options `build(name, ...)` accepts (beyond transformer config overrides)."""
    fixed = MODELS[name].fixed if name in MODELS else {}
    return [p for p in inspect.signature(_function(name)).parameters
            if p not in fixed and p != "overrides"]


def build(name, **opts):
    """Build model `name` with random weights; returns an onnx.ModelProto.
    Common options: batch (int, default symbolic "batch"), small (bool), seed (int),
    opset (int, default 17); text models: seq (int, default symbolic "seq") and config
    overrides (layers, hidden, heads, vocab, positions, ...); vision: image_size, num_classes."""
    fn, spec = _function(name), MODELS[name]
    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        bad = sorted(set(opts) - set(params) | set(opts) & set(spec.fixed))
        if bad:
            raise TypeError(f"{name} does not take option(s) {bad}; it takes {options(name)}")
    g = fn(**spec.fixed, **opts)
    model = g.model(doc=f"deepep.zoo {name}: {spec.description}; random weights")
    meta = {"deepep.zoo.model": name, "deepep.zoo.params": str(g.n_params),
            **{f"deepep.zoo.{k}": str(v) for k, v in sorted(opts.items())}}
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    return model


def n_params(model):
    """Trainable parameter count (tied weights once, BN running stats excluded)."""
    for p in model.metadata_props:
        if p.key == "deepep.zoo.params":
            return int(p.value)
    return sum(math.prod(t.dims) for t in model.graph.initializer if t.data_type == 1)  # FLOAT


def save(model, path):
    """onnx.save, switching to one external data file (PATH.data) for models over 1.5 GB.
    Returns the bytes written; `model` is left as it was (weights in memory)."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model
    if sum(len(t.raw_data) for t in model.graph.initializer) <= EXTERNAL_DATA_BYTES:
        onnx.save(model, path)
        return os.path.getsize(path)
    data = os.path.basename(path) + ".data"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location=data)  # this moves the weights out of `model`: read them back
    load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
    return os.path.getsize(path) + os.path.getsize(os.path.join(os.path.dirname(path), data))
