"""DeepEP: an optimizing inference engine for ONNX models.

    import deepep
    engine = deepep.Engine("model.onnx")
    outputs = engine.run({"input": array})   # {name: numpy array}
    gpu = deepep.Engine("model.onnx", device="cuda:0", precision="fp16")
    deepep.devices()                         # the CPU and the GPUs, probed

    from deepep import Converter             # ONNX / PyTorch -> .de engine file
    c = Converter(input_model="model.onnx")
    c.optimize(precision="fp32", fusion_strategy="aggressive")
    c.export("model.de")
"""
from deepep._deepep import Error, InputError
from deepep.converter import ConversionResult, Converter
from deepep.devices import devices
from deepep.engine import Engine, Session

__all__ = ["Engine", "Session", "Converter", "ConversionResult", "Error", "InputError", "devices"]
__version__ = "0.1.0"
