"""DeepEP: an optimizing inference engine for ONNX models.

    import deepep
    engine = deepep.Engine("model.onnx")
    outputs = engine.run({"input": array})   # {name: numpy array}

    from deepep import Converter             # ONNX / PyTorch -> .de engine file
    c = Converter(input_model="model.onnx")
    c.optimize(precision="fp32", fusion_strategy="aggressive")
    c.export("model.de")
"""
from deepep._deepep import Error, InputError
from deepep.converter import ConversionResult, Converter
from deepep.engine import Engine, Session

__all__ = ["Engine", "Session", "Converter", "ConversionResult", "Error", "InputError"]
__version__ = "0.1.0"
