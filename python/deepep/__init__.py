"""DeepEP: an optimizing inference engine for ONNX models.

    import deepep
    engine = deepep.Engine("model.onnx")
    outputs = engine.run({"input": array})   # {name: numpy array}
"""
from deepep._deepep import Error, InputError
from deepep.engine import Engine, Session

__all__ = ["Engine", "Session", "Error", "InputError"]
__version__ = "0.1.0"
