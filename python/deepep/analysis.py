"""What `deepep inspect` reports about a model: I/O, precision, the fusion report,
kernels per run, the fusion rate and the memory plan.

    report = inspect_model("model.onnx", shapes={"x": [1, 3, 224, 224]}, fusion_level=2)

Graph facts come from the engine's IR text (Engine.graph_text): every node line
`%out: type = [domain.]Op<attrs>(inputs)`, subgraph bodies indented below their node.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

import deepep

# Ops that only reshape, reorder, select, copy or create index/shape data; every
# other op is a compute op for the fusion rate. Control-flow ops (If, Loop, Scan)
# are containers: their bodies' nodes are counted instead.
DATA_MOVEMENT_OPS = frozenset("""
    Reshape Flatten Squeeze Unsqueeze Transpose Concat Split Slice Gather GatherElements GatherND
    ScatterElements Scatter ScatterND TensorScatter Expand Tile Shape Size ConstantOfShape Range
    OneHot NonZero Trilu Compress ReverseSequence EyeLike DepthToSpace SpaceToDepth Pad CenterCropPad
    Identity Constant Dropout Optional OptionalGetElement OptionalHasElement
    SequenceAt SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength
    SplitToSequence ConcatFromSequence
""".split())
CONTROL_FLOW_OPS = frozenset({"If", "Loop", "Scan"})
FUSED_DOMAIN = "deepep"
# Fusing passes report, in the fusion report, how many original nodes they put
# inside fused kernels as the counter `nodes_fused` (net of nodes they recompute).
# Every fused kernel holds at least two ops, which bounds the count from below
# where a pass does not report it.
FUSED_COUNTER = "nodes_fused"
MIN_FUSED_OPS = 2

_Q = r'"(?:[^"\\]|\\.)*"'
_VALUE = rf'(?:%(?:{_Q}|[A-Za-z0-9_./-]+)|_)'
_TYPE = rf'(?::\s*[A-Za-z0-9_]+\[(?:[^\]"]|{_Q})*\])?'
_NODE_RE = re.compile(rf'^(?P<indent> *){_VALUE}{_TYPE}(?:,\s*{_VALUE}{_TYPE})*\s=\s(?P<op>[A-Za-z_][\w.]*)(?P<rest>.*)$')


@dataclass
class Node:
    op: str
    domain: str
    depth: int  # 0: the main graph; 1+: inside If/Loop/Scan bodies


@dataclass
class GraphStats:
    nodes: list = field(default_factory=list)

    @property
    def kernels(self) -> int:
        return sum(1 for n in self.nodes if n.depth == 0)

    @property
    def subgraph_kernels(self) -> int:
        return sum(1 for n in self.nodes if n.depth > 0)

    @property
    def compute_ops(self) -> int:
        return sum(1 for n in self.nodes if is_compute(n))

    @property
    def fused_kernels(self) -> int:
        return sum(1 for n in self.nodes if n.domain == FUSED_DOMAIN)


def is_compute(n: Node) -> bool:
    if n.domain == FUSED_DOMAIN:
        return True
    return n.op not in DATA_MOVEMENT_OPS and n.op not in CONTROL_FLOW_OPS


def parse_graph_text(text: str) -> GraphStats:
    """The nodes of an IR text dump (main graph at indent 2, bodies deeper)."""
    stats = GraphStats()
    lines = text.splitlines()
    base = None
    for line in lines:
        if line.startswith("graph "):
            continue
        m = _NODE_RE.match(line)
        if not m or m["op"] == "const":
            continue
        indent = len(m["indent"])
        if base is None:
            base = indent
        domain, _, op = m["op"].rpartition(".")
        stats.nodes.append(Node(op=op, domain=domain, depth=(indent - base) // 2))
    return stats


def ops_in_fused_kernels(report: dict, final: GraphStats) -> int:
    """Original compute ops inside fused kernels. The optimizer's report lists, by op
    type, the source ops each fused node of the final graph stands for (`fused_ops`);
    reports without it (older .de files) give the passes' `nodes_fused` counters, and
    at least MIN_FUSED_OPS per fused kernel of the final graph."""
    if "fused_ops" in report:
        return sum(int(n) for op, n in report["fused_ops"].items()
                   if op not in DATA_MOVEMENT_OPS and op not in CONTROL_FLOW_OPS)
    counted = sum(int(p.get("counters", {}).get(FUSED_COUNTER, 0)) for p in report.get("passes", []))
    return max(counted, MIN_FUSED_OPS * final.fused_kernels)


def fused_nodes(report: dict, final: GraphStats) -> int:
    """Nodes of the final graph that stand for two or more source ops (deepep fused ops,
    and ONNX ops rebuilt from decomposed forms such as LayerNormalization or Gemm)."""
    return int(report.get("fused_nodes", final.fused_kernels))


def engine_stats(engine) -> GraphStats:
    stats = parse_graph_text(engine.graph_text())
    native = engine._engine.node_count
    if stats.kernels != native:  # the text form changed under this parser
        raise RuntimeError(f"graph text parse found {stats.kernels} top-level nodes, the engine has {native}")
    return stats


def parse_dims(text: str) -> list[int]:
    """'1,3,224,224' (or '1x3x224x224') -> [1, 3, 224, 224]; '' -> [] (a scalar)."""
    text = text.strip()
    if not text:
        return []
    parts = re.split(r"[,x]", text)
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"cannot read shape {text!r}: give integers like 1,3,224,224") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"shape {text!r} has a negative dimension")
    return dims


class MissingDims(ValueError):
    """An input's shape needs sizes the caller did not give."""


def input_shapes(engine, shapes: dict | None = None, dims: dict | None = None) -> dict:
    """{input: concrete shape} from explicit shapes and symbol sizes; raises MissingDims
    naming what to give."""
    shapes = dict(shapes or {})
    dims = dict(dims or {})
    names = [s["name"] for s in engine.inputs]
    for n in shapes:
        if n not in names:
            raise ValueError(f"model has no input '{n}' (inputs: {', '.join(names)})")
    out = {}
    for spec in engine.inputs:
        name = spec["name"]
        if name in shapes:
            out[name] = list(shapes[name])
            continue
        if spec["shape"] is None:
            raise MissingDims(f"input '{name}' has unknown rank: give its shape with --shape {name}=d1,d2,...")
        shape = []
        for i, d in enumerate(spec["shape"]):
            if isinstance(d, int):
                shape.append(d)
            elif d is not None and d in dims:
                shape.append(int(dims[d]))
            elif d is not None:
                raise MissingDims(f"input '{name}' has symbolic dimension {d!r}: give its size with --dim {d}=N "
                                  f"or the whole shape with --shape {name}=...")
            else:
                raise MissingDims(f"input '{name}' dimension {i} is unknown: give the shape with --shape {name}=...")
        out[name] = shape
    return out


def random_feeds(engine, shapes: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in engine.inputs:
        name, shape = spec["name"], shapes[spec["name"]]
        dtype = deepep.engine._numpy_dtype(spec["dtype"])
        if dtype.kind == "f" or spec["dtype"] == "bfloat16":
            feeds[name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            # Token ids, token types, masks, indices: 0 and 1 are valid for any table.
            feeds[name] = rng.integers(0, 2, size=shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[name] = rng.random(shape) < 0.5
        else:
            raise ValueError(f"cannot make random data for input '{name}' of dtype {spec['dtype']}")
    return feeds


def _passes(report: dict) -> dict:
    out = {}
    for p in report.get("passes", []):
        entry = {"level": p.get("level"), "runs": p.get("runs"), "changes": p.get("changes"),
                 "counters": p.get("counters", {})}
        if "ms" in p:
            entry["ms"] = p["ms"]
        out[p["name"]] = entry
    return out


def inspect_model(path, shapes: dict | None = None, dims: dict | None = None, fusion_level: int = 2,
                  device: str = "cpu", seed: int = 0) -> dict:
    """The `deepep inspect --json` report of an .onnx (optimized at `fusion_level`) or .de file."""
    path = str(path)
    # The graph as the optimizer left it: the device's load-time layout change
    # (channels-last convolutions, docs/OPTIMIZER.md) is not part of the report.
    engine = deepep.Engine(path, device=device, fusion_level=fusion_level, layout="nchw")
    meta = engine.metadata
    is_de = "precision" in meta
    report = meta.get("fusion", {})
    final = engine_stats(engine)
    in_fused = ops_in_fused_kernels(report, final)
    if is_de:
        # The source graph is not in the file: the rate is over the ops the engine
        # computes, fused or not.
        original_compute = in_fused + final.compute_ops - fused_nodes(report, final)
        basis = "engine"
    else:
        original_compute = engine_stats(deepep.Engine(path, device=device, fusion_level=0, layout="nchw")).compute_ops
        basis = "source"
    rate = in_fused / original_compute if original_compute else 0.0
    fusion = {
        "rate": min(1.0, rate),
        "nodes_before": report.get("nodes_before"),
        "nodes_after": report.get("nodes_after"),
        "kernels": final.kernels,
        "subgraph_kernels": final.subgraph_kernels,
        "fused_kernels": fused_nodes(report, final),
        "compute_ops": original_compute,
        "compute_ops_fused": in_fused,
        "rate_basis": basis,
        "passes": _passes(report),
    }
    result = {
        "model": path,
        "format": "de" if is_de else "onnx",
        "precision": meta.get("precision", "fp32"),
        "fusion_level": meta.get("fusion_level", fusion_level) if is_de else fusion_level,
        "inputs": engine.inputs,
        "outputs": engine.outputs,
        "fusion": fusion,
        "memory": None,
    }
    try:
        concrete = input_shapes(engine, shapes, dims)
    except MissingDims as e:
        result["memory_note"] = f"memory needs concrete input shapes: {e}"
        return result
    engine.run(random_feeds(engine, concrete, seed))
    mem = engine.memory_report()
    result["memory"] = {k: mem[k] for k in ("naive_bytes", "planned_bytes", "lower_bound_bytes", "weights_bytes")}
    result["memory"]["planned_buffers"] = mem.get("planned_buffers")
    result["memory_shapes"] = concrete
    return result
