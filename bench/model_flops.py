"""FLOPs of one run of an ONNX model: the multiply-adds of its Conv, MatMul and
Gemm nodes (2 FLOPs each, the direct algorithm's count: a Winograd conv is
credited with the direct conv's FLOPs, as benchmarks of conv libraries do),
on the feeds given.

    from model_flops import model_flops
    flops = model_flops("resnet50_b1.onnx", {"input": np.zeros((1, 3, 224, 224), np.float32)})

The other ops (norms, softmax, elementwise) are left out: on the benchmark's
models they are < 3 % of the arithmetic, and memory-bound, so a peak
FMA rate says nothing about them. cpu_vs_ort.py divides these FLOPs by each
runtime's latency to show how close to the CPU's FMA peak each one runs.
"""
import math


def node_flops(node, shape_of):
    """FLOPs of one node (0 for ops not counted or shapes unknown)."""
    if node.op_type == "Conv":
        w, y = shape_of(node.input[1]), shape_of(node.output[0])
        if w is None or y is None or len(w) < 3:
            return 0
        # y: [N, M, spatial...]; each output element: (C / group) x kernel MACs.
        return 2 * math.prod(y) * math.prod(w[1:])
    if node.op_type == "MatMul":
        a, y = shape_of(node.input[0]), shape_of(node.output[0])
        if a is None or y is None or not a:
            return 0
        return 2 * math.prod(y) * a[-1]
    if node.op_type == "Gemm":
        a, y = shape_of(node.input[0]), shape_of(node.output[0])
        if a is None or y is None or len(a) != 2:
            return 0
        trans_a = any(at.name == "transA" and at.i for at in node.attribute)
        k = a[0] if trans_a else a[1]
        return 2 * math.prod(y) * k
    return 0


def model_flops(path, feeds):
    """FLOPs of one run of the model at `path` on `feeds` ({name: array}).

    The shapes come from running the model once in onnxruntime with every
    counted node's operands made graph outputs (ONNX's static shape
    inference loses them behind the Shape -> Gather -> Reshape chains of
    exported transformers)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(path)
    counted = [n for n in model.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")]
    known = {o.name for o in model.graph.output}
    consts = {i.name: list(i.dims) for i in model.graph.initializer}
    names = {v: None for n in counted for v in (n.input[0], n.input[1], n.output[0])
             if v not in consts and v not in known}  # ordered, each once
    for v in names:
        model.graph.output.append(onnx.ValueInfoProto(name=v))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    outs = sess.run(None, feeds)
    shapes = dict(consts)
    shapes.update({o.name: list(v.shape) for o, v in zip(sess.get_outputs(), outs)})
    return sum(node_flops(n, shapes.get) for n in counted)
