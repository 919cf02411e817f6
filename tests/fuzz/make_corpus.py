#!/usr/bin/env python3
"""Writes the seed corpora of the fuzzers: small ONNX models covering
initializers, attributes of every kind, subgraphs (If, Loop), symbolic shapes
and several dtypes, the same models converted to .de files, and infer
requests for deepep-serve's codec.

    PYTHONPATH=python python tests/fuzz/make_corpus.py OUT_DIR

writes OUT_DIR/onnx/*.onnx, OUT_DIR/de/* (each .de twice: with a leading
mode byte 0, loaded as is, and 1, checksums repaired by the harness) and
OUT_DIR/infer/* (fuzz_infer_request.cpp's layout: mode byte, header length,
body).
"""
import glob
import json
import os
import struct
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inputs, outputs, inits=(), opset=17, name="g"):
    g = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


def vi(name, dt, shape):
    return helper.make_tensor_value_info(name, dt, shape)


def models():
    f = TensorProto.FLOAT
    rng = np.random.default_rng(0)
    w = lambda name, *shape: numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
    yield "relu_add", model(
        [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "b"], ["y"])],
        [vi("x", f, ["batch", 3])], [vi("y", f, ["batch", 3])], [w("b", 3)])
    yield "conv_bn", model(
        [helper.make_node("Conv", ["x", "w", "cb"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1], group=1),
         helper.make_node("BatchNormalization", ["c", "s", "o", "m", "v"], ["n"], epsilon=1e-5),
         helper.make_node("Relu", ["n"], ["r"]),
         helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
         helper.make_node("Flatten", ["p"], ["fl"], axis=1),
         helper.make_node("Gemm", ["fl", "fw", "fb"], ["y"], transB=1)],
        [vi("x", f, [1, 2, 4, 4])], [vi("y", f, [1, 3])],
        [w("w", 4, 2, 3, 3), w("cb", 4), w("s", 4), w("o", 4), w("m", 4),
         numpy_helper.from_array(np.abs(rng.standard_normal(4)).astype(np.float32) + 0.1, "v"),
         w("fw", 3, 16), w("fb", 3)])
    shape = numpy_helper.from_array(np.array([0, -1, 2], np.int64), "shape")
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    yield "tensor_ops", model(
        [helper.make_node("Reshape", ["x", "shape"], ["a"]),
         helper.make_node("Transpose", ["a"], ["t"], perm=[0, 2, 1]),
         helper.make_node("Softmax", ["t"], ["sm"], axis=-1),
         helper.make_node("ReduceMean", ["sm", "axes"], ["rm"], keepdims=1),
         helper.make_node("Concat", ["rm", "rm"], ["cc"], axis=1),
         helper.make_node("Cast", ["cc"], ["ci"], to=TensorProto.INT64),
         helper.make_node("Shape", ["ci"], ["sh"]),
         helper.make_node("Gather", ["sh", "idx"], ["y"], axis=0),
         helper.make_node("Slice", ["x", "st", "en"], ["y2"])],
        [vi("x", f, ["n", 8])], [vi("y", TensorProto.INT64, [1]), vi("y2", f, None)],
        [shape, axes, numpy_helper.from_array(np.array([2], np.int64), "idx"),
         numpy_helper.from_array(np.array([0, 1], np.int64), "st"),
         numpy_helper.from_array(np.array([1, 5], np.int64), "en")])
    then_g = helper.make_graph([helper.make_node("Neg", ["x"], ["o"])], "then", [], [vi("o", f, [2])])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["o2"])], "else", [], [vi("o2", f, [2])])
    yield "if", model(
        [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
        [vi("c", TensorProto.BOOL, []), vi("x", f, [2])], [vi("y", f, [2])])
    body = helper.make_graph(
        [helper.make_node("Add", ["acc", "x"], ["acc2"]), helper.make_node("Identity", ["cond"], ["cond2"])],
        "body", [vi("i", TensorProto.INT64, []), vi("cond", TensorProto.BOOL, []), vi("acc", f, [2])],
        [vi("cond2", TensorProto.BOOL, []), vi("acc2", f, [2])])
    yield "loop", model(
        [helper.make_node("Loop", ["n", "", "a0"], ["y"], body=body)],
        [vi("n", TensorProto.INT64, []), vi("x", f, [2]), vi("a0", f, [2])], [vi("y", f, [2])])
    yield "attrs_dtypes", model(
        [helper.make_node("Constant", [], ["k"], value=helper.make_tensor("kv", TensorProto.FLOAT16, [2], [1, 2])),
         helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.DOUBLE),
         helper.make_node("LeakyRelu", ["x"], ["lr"], alpha=0.2),
         helper.make_node("Resize", ["lr", "", "sc"], ["rs"], mode="nearest"),
         helper.make_node("TopK", ["x", "kk"], ["tv", "ti"], axis=-1),
         helper.make_node("Split", ["x"], ["s0", "s1"], axis=1, num_outputs=2)],
        [vi("x", TensorProto.DOUBLE, [1, 1, 2, 4])],
        [vi("kf", TensorProto.DOUBLE, [2]), vi("rs", TensorProto.DOUBLE, None), vi("tv", TensorProto.DOUBLE, None),
         vi("ti", TensorProto.INT64, None), vi("s0", TensorProto.DOUBLE, None)],
        [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc"),
         numpy_helper.from_array(np.array([2], np.int64), "kk")], opset=18)


def infer_requests():
    """(name, mode, body, header_length or None) for fuzz_infer_request.cpp's
    model: x FP32 [batch, 3], k INT64 [batch, 3]; outputs y, z."""
    x = {"name": "x", "datatype": "FP32", "shape": [2, 3], "data": [[1, 2.5, -3], [0, "NaN", 1e30]]}
    k = {"name": "k", "datatype": "INT64", "shape": [2, 3], "data": [1, 2, 3, 4, 5, -6]}
    yield "json", 0, {"id": "a", "inputs": [x, k]}, None
    yield "outputs", 0, {"inputs": [k, x], "outputs": [{"name": "z", "parameters": {"binary_data": True}}],
                         "parameters": {"timeout_ms": 5}}, None
    yield "unbatched", 2, {"inputs": [x, k], "parameters": {"binary_data_output": True, "timeout": 1000}}, None
    hdr = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "parameters": {"binary_data_size": 12}},
                      {"name": "k", "datatype": "INT64", "shape": [1, 3], "parameters": {"binary_data_size": 24}}]}
    binary = struct.pack("<3f", 0.5, -1, 2) + struct.pack("<3q", 7, 8, -9)
    yield "binary", 1, (hdr, binary), True
    yield "bad_dtype", 0, {"inputs": [dict(x, datatype="BF16"), dict(k, datatype="UINT8")]}, None


def write_infer_corpus(out):
    d = os.path.join(out, "infer")
    os.makedirs(d, exist_ok=True)
    for name, mode, body, with_header in infer_requests():
        binary = b""
        if with_header:
            body, binary = body
        text = json.dumps(body).encode()
        hlen = len(text) if with_header else 0
        with open(os.path.join(d, name), "wb") as f:
            f.write(bytes([mode]) + struct.pack("<H", hlen) + text + binary)


def main(argv):
    out = argv[1] if len(argv) > 1 else "fuzz_corpus"
    # The checkout's python/ when it holds a built extension (scripts/dev-build),
    # else the installed deepep (pip install ., as in CI).
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python")
    if glob.glob(os.path.join(src, "deepep", "_deepep*.so")):
        sys.path.insert(0, src)
    from deepep import _deepep

    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    os.makedirs(os.path.join(out, "de"), exist_ok=True)
    n_de = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, m in models():
            path = os.path.join(out, "onnx", name + ".onnx")
            onnx.save(m, path)
            de = os.path.join(tmp, name + ".de")
            try:
                _deepep.convert_model(path, de, "fp32", 2, None)
            except _deepep.Error as e:  # a model the converter rejects still seeds the ONNX fuzzer
                print(f"make_corpus: {name} not converted: {e}", file=sys.stderr)
                continue
            data = open(de, "rb").read()
            for mode in (0, 1):
                with open(os.path.join(out, "de", f"{name}_{mode}.de"), "wb") as f:
                    f.write(bytes([mode]) + data)
            n_de += 1
    write_infer_corpus(out)
    print(f"make_corpus: {len(list(models()))} ONNX models, {n_de} .de files, "
          f"{len(list(infer_requests()))} infer requests in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
