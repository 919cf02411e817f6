# Graph builder over onnx.helper that names things the way torch.onnx.export (TorchScript
# exporter) does: nodes "/layer1/layer1.0/conv1/Conv", values "<node>_output_<i>", parameters
# by their dotted module path ("layer1.0.conv1.weight"), constant-folded weights "onnx::MatMul_<n>".
# Also the layers the zoo shares, and a numpy pass over a random batch (calibrate) that gives the
# random vision nets trained-like BatchNorm running stats.
import math
from contextlib import contextmanager

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIN_OPSET = 11  # Clip with min/max inputs, Range
FLOAT, INT64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def config(defaults, overrides, seq=None):
    """A transformer config: `defaults` updated with known keys from `overrides`."""
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; known: {sorted(defaults)}")
    cfg = {**defaults, **overrides}
    if cfg["hidden"] % cfg["heads"]:
        raise ValueError("hidden must be a multiple of heads")
    if isinstance(seq, int) and seq > cfg["positions"]:
        raise ValueError(f"seq {seq} > {cfg['positions']} positions")
    return cfg


def _unqualified(qualified):
    """torch.onnx's scope component: the trailing atoms of a module path from its last
    non-numeric one ("layer1.0" -> "layer1.0", "encoder.layer.0" -> "layer.0")."""
    atoms = qualified.split(".")
    for i in range(len(atoms) - 1, -1, -1):
        if not atoms[i].isnumeric():
            return ".".join(atoms[i:])
    return qualified


def _windows(x, k, stride, pad, fill=0.0):
    """[n, c, h, w] -> [n, c, ho, wo, k, k] views of the padded input."""
    x = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return win[:, :, ::stride, ::stride]


def _conv(x, w, b, strides, pads, group, **_):
    win = _windows(x, w.shape[-1], strides[0], pads[0])
    if group == 1:
        y = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    else:
        n, _, h, wd, k, _ = win.shape
        win = win.reshape(n, group, -1, h, wd, k, k)
        y = np.einsum("ngchwij,gocij->ngohw", win, w.reshape(group, -1, *w.shape[1:]))
        y = y.reshape(n, -1, h, wd)
    return y + b[:, None, None]


def _bn(x, scale, bias, mean, var, epsilon, **_):
    return ((x - mean[:, None, None]) / np.sqrt(var[:, None, None] + epsilon) * scale[:, None, None]
            + bias[:, None, None])


# numpy forms of the ops vision models use before their last BatchNormalization
_NUMPY = {
    "Constant": lambda value: numpy_helper.to_array(value),
    "Conv": _conv,
    "BatchNormalization": _bn,
    "Relu": lambda x: np.maximum(x, 0),
    "Clip": np.clip,
    "Add": np.add,
    "MaxPool": lambda x, kernel_shape, strides, pads, **_: _windows(
        x, kernel_shape[0], strides[0], pads[0], -np.inf).max(axis=(4, 5)),
}


class GraphBuilder:
    def __init__(self, seed=0, opset=17):
        if not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
            raise ValueError(f"opset {opset} not supported "
                             f"(use {MIN_OPSET}..{onnx.defs.onnx_opset_version()})")
        self.rng = np.random.default_rng(seed)
        self.opset = opset
        self.nodes, self.initializers, self.inputs, self.outputs = [], [], [], []
        self.n_params = 0
        self._scope = [("", "")]  # (node path, module path)
        self._names = {}          # name -> times used, for the exporter's "_<k>" suffixes
        self._folded = 0
        self.values = None        # numpy values of the calibration batch, see calibrate()

    # ---- naming -------------------------------------------------------------------------
    def _unique(self, base):
        k = self._names.get(base, 0)
        self._names[base] = k + 1
        return f"{base}_{k}" if k else base

    @contextmanager
    def scope(self, name):
        """Enter submodule `name` (its path relative to the current module: "conv1", "0",
        "layer.0"). Calling the same module again gives "relu_1", "relu_2" as torch does."""
        path, module = self._scope[-1]
        qualified = f"{module}.{name}" if module else name
        self._scope.append((self._unique(f"{path}/{_unqualified(qualified)}"), qualified))
        try:
            yield
        finally:
            self._scope.pop()

    def op(self, op_type, *inputs, n_out=1, **attrs):
        name = self._unique(f"{self._scope[-1][0]}/{op_type}")
        outs = [f"{name}_output_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        if self.values is not None and op_type in _NUMPY and all(i in self.values for i in inputs):
            y = _NUMPY[op_type](*(self.values[i] for i in inputs), **attrs)
            self.values[outs[0]] = y.astype(np.float32, copy=False)
        return outs[0] if n_out == 1 else outs

    def calibrate(self, image, size):
        """Evaluate the graph in numpy on a batch of random size x size images fed to input
        `image` while it is built, so that batch_norm can set its running stats from the data it
        sees. The batch gives the 32x-downsampled last stage >= 128 samples per channel."""
        n = max(2, math.ceil(128 / max(1, size // 32) ** 2))
        self.values = {image: self.normal((n, 3, size, size), 1.0)}

    # ---- tensors ------------------------------------------------------------------------
    def _init(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        if self.values is not None:
            self.values[name] = array
        return name

    def param(self, name, array):
        """A trainable parameter of the current module, e.g. "layer1.0.conv1.weight"."""
        self.n_params += array.size
        module = self._scope[-1][1]
        return self._init(f"{module}.{name}" if module else name, array)

    def buffer(self, name, array):
        module = self._scope[-1][1]
        return self._init(f"{module}.{name}" if module else name, array)

    def folded(self, op_type, array):
        """A constant-folded weight parameter as the exporter names it ("onnx::MatMul_1")."""
        self._folded += 1
        self.n_params += array.size
        return self._init(f"onnx::{op_type}_{self._folded}", array)

    def const(self, value, dtype=None):
        """A Constant node; python floats become float32, ints int64."""
        if dtype is None:
            dtype = np.float32 if np.asarray(value).dtype.kind == "f" else np.int64
        return self.op("Constant", value=numpy_helper.from_array(np.asarray(value, dtype)))

    def normal(self, shape, std, mean=0.0):
        return (self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
                + np.float32(mean))

    def uniform(self, shape, low, high):
        return self.rng.uniform(low, high, shape).astype(np.float32)

    # ---- graph I/O ----------------------------------------------------------------------
    def input(self, name, elem_type, shape):
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, name, value, elem_type, shape):
        """Declare `value` as graph output `name`, renaming its producer's output."""
        for node in self.nodes:
            for i, out in enumerate(node.output):
                if out == value:
                    node.output[i] = name
            for i, inp in enumerate(node.input):
                if inp == value:
                    node.input[i] = name
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def model(self, doc=""):
        graph = helper.make_graph(self.nodes, "main_graph", self.inputs, self.outputs,
                                  self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        return helper.make_model(graph, opset_imports=opsets, producer_name="deepep.zoo",
                                 doc_string=doc.strip(),
                                 ir_version=helper.find_min_ir_version_for(opsets))

    # ---- opset-dependent forms ----------------------------------------------------------
    def unsqueeze(self, x, axes):
        if self.opset >= 13:
            return self.op("Unsqueeze", x, self.const(axes))
        return self.op("Unsqueeze", x, axes=axes)

    def split(self, x, sizes, axis):
        if self.opset >= 13:
            return self.op("Split", x, self.const(sizes), n_out=len(sizes), axis=axis)
        return self.op("Split", x, n_out=len(sizes), axis=axis, split=sizes)

    def dim_of(self, x, i):
        """x.size(i) as traced: Shape -> Gather (a 0-d int64)."""
        return self.op("Gather", self.op("Shape", x), self.const(i), axis=0)

    # ---- layers (each opens the scope of its module) -----------------------------------
    def conv(self, x, name, cin, cout, k, stride=1, groups=1):
        """nn.Conv2d with He-normal weights and a bias; padding k // 2."""
        fan_in = cin // groups * k * k
        with self.scope(name):
            w = self.normal((cout, cin // groups, k, k), math.sqrt(2 / fan_in))
            w = self.param("weight", w)
            bound = 1 / math.sqrt(fan_in)
            b = self.param("bias", self.uniform((cout,), -bound, bound))
            return self.op("Conv", x, w, b, dilations=[1, 1], group=groups, kernel_shape=[k, k],
                           pads=[k // 2] * 4, strides=[stride, stride])

    def batch_norm(self, x, name, c, scale_range=(0.5, 1.5)):
        """Eval-mode nn.BatchNorm2d. The running stats are those of x on the calibration batch,
        as in a trained net, so activations stay O(1) at any depth (else mean 0, var 1)."""
        with self.scope(name):
            scale = self.param("weight", self.uniform((c,), *scale_range))
            bias = self.param("bias", self.normal((c,), 0.1))
            x_val = (self.values or {}).get(x)
            if x_val is None:
                stats = np.zeros(c, np.float32), np.ones(c, np.float32)
            else:
                stats = x_val.mean(axis=(0, 2, 3)), x_val.var(axis=(0, 2, 3))
            mean = self.buffer("running_mean", stats[0])
            var = self.buffer("running_var", stats[1])
            return self.op("BatchNormalization", x, scale, bias, mean, var,
                           epsilon=1e-5, momentum=0.9)

    def gemm(self, x, name, din, dout, std):
        """nn.Linear on a 2-D input: Gemm(transB=1) with the [out, in] weight."""
        with self.scope(name):
            w = self.param("weight", self.normal((dout, din), std))
            b = self.param("bias", self.normal((dout,), std))
            return self.op("Gemm", x, w, b, alpha=1.0, beta=1.0, transB=1)

    def linear(self, x, name, din, dout, std=0.02, conv1d=False):
        """nn.Linear on N-D input: MatMul with the folded transposed weight, then Add(bias, .).
        conv1d=True is HF's Conv1D, whose [in, out] weight is a named parameter."""
        with self.scope(name):
            w = self.normal((din, dout), std)
            w = self.param("weight", w) if conv1d else self.folded("MatMul", w)
            b = self.param("bias", self.normal((dout,), std))
            return self.op("Add", b, self.op("MatMul", x, w))

    def layer_norm(self, x, name, d, eps):
        """LayerNormalization (opset >= 17) or the exporter's decomposition below it."""
        with self.scope(name):
            w = self.param("weight", self.normal((d,), 0.1, mean=1.0))
            b = self.param("bias", self.normal((d,), 0.02))
            if self.opset >= 17:
                return self.op("LayerNormalization", x, w, b, axis=-1, epsilon=eps)
            mean = self.op("ReduceMean", x, axes=[-1])
            xc = self.op("Sub", x, mean)
            var = self.op("ReduceMean", self.op("Pow", xc, self.const(2.0)), axes=[-1])
            std = self.op("Sqrt", self.op("Add", var, self.const(eps)))
            return self.op("Add", self.op("Mul", self.op("Div", xc, std), w), b)

    def split_heads(self, x, heads, head_dim, perm=(0, 2, 1, 3)):
        """x.view(x.size()[:-1] + (heads, head_dim)).permute(perm)."""
        b = self.unsqueeze(self.dim_of(x, 0), [0])
        s = self.unsqueeze(self.dim_of(x, 1), [0])
        shape = self.op("Concat", b, s, self.const([heads]), self.const([head_dim]), axis=0)
        return self.op("Transpose", self.op("Reshape", x, shape), perm=list(perm))

    def merge_heads(self, x, hidden):
        """x.permute(0, 2, 1, 3).contiguous().view(x.size()[:-2] + (hidden,))."""
        x = self.op("Transpose", x, perm=[0, 2, 1, 3])
        b = self.unsqueeze(self.dim_of(x, 0), [0])
        s = self.unsqueeze(self.dim_of(x, 1), [0])
        return self.op("Reshape", x, self.op("Concat", b, s, self.const([hidden]), axis=0))

    def attention(self, q, k, v, heads, hidden, mask):
        """Eager HF attention: softmax(mask(q @ k^T / sqrt(d))) @ v with heads split and merged.
        k.transpose(-1, -2) after the head permute is one Transpose(0, 2, 3, 1), as exported."""
        d = hidden // heads
        q = self.split_heads(q, heads, d)
        k = self.split_heads(k, heads, d, perm=(0, 2, 3, 1))
        v = self.split_heads(v, heads, d)
        scores = self.op("Div", self.op("MatMul", q, k), self.const(math.sqrt(d)))
        probs = self.op("Softmax", mask(scores, q, k), axis=-1)
        return self.merge_heads(self.op("MatMul", probs, v), hidden)
