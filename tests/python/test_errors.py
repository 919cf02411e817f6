"""Robustness of the frontend and the runtime: every bad model, bad file or bad
input must raise deepep.Error (deepep.InputError for inputs) with a message
that names the culprit, and never crash the process.

Models are built with onnx.helper into tmp_path and use only Add and Relu
(plus If for an unsupported op inside a subgraph), which exist in the core.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import deepep

OPSET = 17


def _model(nodes, inputs, outputs, initializers=(), opsets=None):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = opsets or [helper.make_opsetid("", OPSET)]
    return helper.make_model(graph, opset_imports=opsets, ir_version=8)


def _add_relu_model(shape_x=("N", 4), shape_b=(4,)):
    """y = Relu(x + b) with b an initializer; x's first dim symbolic by default."""
    b = numpy_helper.from_array(np.arange(np.prod(shape_b), dtype=np.float32).reshape(shape_b) - 2, "b")
    return _model(
        [helper.make_node("Add", ["x", "b"], ["s"], name="add"),
         helper.make_node("Relu", ["s"], ["y"], name="relu")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape_x))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [b])


def _save(model, path):
    onnx.save(model, str(path))
    return str(path)


def _expect_error(path, *fragments, cls=None):
    cls = cls or deepep.Error
    with pytest.raises(cls) as ei:
        deepep.Engine(path)
    msg = str(ei.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in error message {msg!r}"
    return msg


# ---------------------------------------------------------------- (a) bad files

def test_random_bytes_file(tmp_path):
    p = tmp_path / "random.onnx"
    p.write_bytes(np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _expect_error(str(p), str(p))


def test_text_file(tmp_path):
    p = tmp_path / "notes.onnx"
    p.write_text("this is a text file, not an ONNX model\n" * 20)
    _expect_error(str(p), str(p))


def test_empty_file(tmp_path):
    p = tmp_path / "empty.onnx"
    p.write_bytes(b"")
    _expect_error(str(p), str(p))


def test_truncated_model(tmp_path):
    full = _add_relu_model().SerializeToString()
    p = tmp_path / "half.onnx"
    p.write_bytes(full[: len(full) // 2])
    _expect_error(str(p), str(p))


def test_missing_file(tmp_path):
    p = tmp_path / "does_not_exist.onnx"
    msg = _expect_error(str(p), str(p))
    assert "not exist" in msg


def test_directory(tmp_path):
    msg = _expect_error(str(tmp_path), str(tmp_path))
    assert "directory" in msg


def test_path_too_long(tmp_path):
    p = str(tmp_path / ("x" * 5000 + ".onnx"))
    _expect_error(p)


def test_a_valid_model_loads_and_runs(tmp_path):
    path = _save(_add_relu_model(), tmp_path / "m.onnx")
    x = np.arange(12, dtype=np.float32).reshape(3, 4) - 6
    out = deepep.Engine(path).run({"x": x})
    np.testing.assert_array_equal(out["y"], np.maximum(x + (np.arange(4, dtype=np.float32) - 2), 0))


# ------------------------------------------------------- (b) unsupported ops

def test_every_unsupported_op_is_listed_in_one_error(tmp_path):
    then_g = helper.make_graph(
        [helper.make_node("ImaginaryOp", ["x"], ["t"], name="inside_then")], "then", [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    else_g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["e"], name="inside_else")], "else", [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)])
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="ok_relu"),
        helper.make_node("FancyOp", ["a"], ["b"], name="custom1", domain="com.example"),
        helper.make_node("NotARealOp", ["b"], ["c"], name="bogus"),
        helper.make_node("AnotherMadeUpOp", ["c"], ["d"], name="bogus2"),
        helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_g, else_branch=else_g),
    ]
    m = _model(nodes,
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
                helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                helper.make_tensor_value_info("d", TensorProto.FLOAT, None)],
               opsets=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.example", 3)])
    path = _save(m, tmp_path / "unsupported.onnx")
    msg = _expect_error(path, path, "4 node(s)",
                        "com.example.FancyOp (node 'custom1', opset 3)",
                        f"NotARealOp (node 'bogus', opset {OPSET})",
                        f"AnotherMadeUpOp (node 'bogus2', opset {OPSET})",
                        f"ImaginaryOp (node 'inside_then', opset {OPSET})")
    assert "Relu" not in msg and "ok_relu" not in msg


# ------------------------------------------------------------ (c) external data

def _external_model(tmp_path):
    w = np.linspace(-3, 3, 5 * 7, dtype=np.float32).reshape(5, 7)
    c = np.arange(7, dtype=np.float32)
    m = _model(
        [helper.make_node("Add", ["x", "w"], ["s"], name="add_w"),
         helper.make_node("Add", ["s", "c"], ["t"], name="add_c"),
         helper.make_node("Relu", ["t"], ["y"], name="relu")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 7])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(c, "c")])
    path = tmp_path / "ext.onnx"
    onnx.save(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.onnx.data", size_threshold=0)
    return str(path), tmp_path / "ext.onnx.data", w, c


def test_external_data_loads_and_runs(tmp_path):
    path, data, w, c = _external_model(tmp_path)
    assert data.stat().st_size >= (w.size + c.size) * 4
    stored = onnx.load(path, load_external_data=False)
    assert all(t.data_location == TensorProto.EXTERNAL for t in stored.graph.initializer)
    x = np.linspace(-1, 1, 35, dtype=np.float32).reshape(5, 7)
    out = deepep.Engine(path).run({"x": x})
    np.testing.assert_allclose(out["y"], np.maximum(x + w + c, 0), rtol=1e-6)


def test_external_data_file_missing(tmp_path):
    path, data, _, _ = _external_model(tmp_path)
    data.unlink()
    _expect_error(path, "ext.onnx.data", "does not exist", "tensor '")


def test_external_data_file_truncated(tmp_path):
    path, data, _, _ = _external_model(tmp_path)
    data.write_bytes(data.read_bytes()[:40])
    msg = _expect_error(path, "ext.onnx.data")
    assert "tensor 'w'" in msg or "tensor 'c'" in msg


def test_external_data_bad_offset(tmp_path):
    path, _, _, _ = _external_model(tmp_path)
    m = onnx.load(path, load_external_data=False)
    for kv in m.graph.initializer[0].external_data:
        if kv.key == "offset":
            kv.value = "not-a-number"
    bad = tmp_path / "bad_offset.onnx"
    bad.write_bytes(m.SerializeToString())
    _expect_error(str(bad), "offset")


def test_external_data_location_is_a_directory(tmp_path):
    path, _, _, _ = _external_model(tmp_path)
    m = onnx.load(path, load_external_data=False)
    for kv in m.graph.initializer[0].external_data:
        if kv.key == "location":
            kv.value = "."
    bad = tmp_path / "dir_location.onnx"
    bad.write_bytes(m.SerializeToString())
    _expect_error(str(bad), "tensor 'w'")


def test_external_data_escaping_the_model_folder_is_refused_or_missing(tmp_path):
    path, _, _, _ = _external_model(tmp_path)
    m = onnx.load(path, load_external_data=False)
    for kv in m.graph.initializer[0].external_data:
        if kv.key == "location":
            kv.value = "../../nonexistent/ext.onnx.data"
    bad = tmp_path / "escape.onnx"
    bad.write_bytes(m.SerializeToString())
    _expect_error(str(bad), "tensor 'w'")


# --------------------------------------------------------- (d) input validation

def _two_input_model(tmp_path):
    m = _model(
        [helper.make_node("Add", ["a", "b"], ["s"], name="add"),
         helper.make_node("Relu", ["s"], ["y"], name="relu")],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])])
    return deepep.Engine(_save(m, tmp_path / "two.onnx"))


def _input_error(engine, feeds, *fragments):
    with pytest.raises(deepep.InputError) as ei:
        engine.run(feeds)
    assert isinstance(ei.value, ValueError)
    msg = str(ei.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in error message {msg!r}"


def test_missing_input(tmp_path):
    e = _two_input_model(tmp_path)
    _input_error(e, {"a": np.zeros((2, 3), np.float32)}, "missing input 'b'", "float32", "batch, 3")


def test_extra_input(tmp_path):
    e = _two_input_model(tmp_path)
    z = np.zeros((2, 3), np.float32)
    _input_error(e, {"a": z, "b": z, "c": z}, "'c'", "a, b")


def test_wrong_dtype(tmp_path):
    e = _two_input_model(tmp_path)
    _input_error(e, {"a": np.zeros((2, 3), np.float32), "b": np.zeros((2, 3), np.float64)},
                 "input 'b'", "float32", "float64")


def test_wrong_rank(tmp_path):
    e = _two_input_model(tmp_path)
    _input_error(e, {"a": np.zeros((2, 3, 1), np.float32), "b": np.zeros((2, 3), np.float32)},
                 "input 'a'", "rank 2", "[2, 3, 1]")


def test_dimension_contradicts_model(tmp_path):
    e = _two_input_model(tmp_path)
    _input_error(e, {"a": np.zeros((2, 4), np.float32), "b": np.zeros((2, 3), np.float32)},
                 "input 'a'", "dimension 1 must be 3", "[2, 4]")


def test_symbol_bound_to_two_sizes(tmp_path):
    e = _two_input_model(tmp_path)
    _input_error(e, {"a": np.zeros((2, 3), np.float32), "b": np.zeros((5, 3), np.float32)},
                 "input 'b'", "'batch'", "5", "2")


def test_unsupported_numpy_dtype(tmp_path):
    e = _two_input_model(tmp_path)
    _input_error(e, {"a": np.array([["x"] * 3] * 2), "b": np.zeros((2, 3), np.float32)}, "input 'a'")


def test_scalar_input_keeps_rank_zero(tmp_path):
    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [])])
    e = deepep.Engine(_save(m, tmp_path / "scalar.onnx"))
    out = e.run({"x": np.array(-2.5, np.float32)})["y"]
    assert out.shape == () and out == 0


# ---------------------------------------------------- (e) symbolic dimensions

@pytest.mark.parametrize("n", [0, 1, 7, 64])
def test_symbolic_dims_accept_any_size(tmp_path, n):
    e = deepep.Engine(_save(_add_relu_model(), tmp_path / "sym.onnx"))
    assert e.inputs[0]["shape"] == ["N", 4]
    x = np.linspace(-5, 5, n * 4, dtype=np.float32).reshape(n, 4)
    y = e.run({"x": x})["y"]
    b = np.arange(4, dtype=np.float32) - 2
    assert y.shape == (n, 4)
    np.testing.assert_array_equal(y, np.maximum(x + b, 0))


def test_unnamed_dims_accept_any_size_independently(tmp_path):
    m = _model([helper.make_node("Add", ["a", "b"], ["y"])],
               [helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 1]),
                helper.make_tensor_value_info("b", TensorProto.FLOAT, [None])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    e = deepep.Engine(_save(m, tmp_path / "unnamed.onnx"))
    y = e.run({"a": np.ones((3, 1), np.float32), "b": np.arange(5, dtype=np.float32)})["y"]
    np.testing.assert_array_equal(y, 1 + np.broadcast_to(np.arange(5, dtype=np.float32), (3, 5)))


# ------------------------------------------------------------- malformed graphs

def test_node_reading_an_undefined_value(tmp_path):
    m = _model([helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    _expect_error(_save(m, tmp_path / "ghost.onnx"), "adder", "'ghost'")


def test_output_never_produced(tmp_path):
    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
               [helper.make_tensor_value_info("nowhere", TensorProto.FLOAT, [1])])
    _expect_error(_save(m, tmp_path / "noout.onnx"), "'nowhere'")


def test_initializer_with_wrong_byte_count(tmp_path):
    w = numpy_helper.from_array(np.ones(6, np.float32), "w")
    w.raw_data = w.raw_data[:-4]
    m = _model([helper.make_node("Add", ["x", "w"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [6])], [w])
    _expect_error(_save(m, tmp_path / "short.onnx"), "tensor 'w'", "20 bytes", "24")


def test_unsupported_dtype_is_named(tmp_path):
    m = _model([helper.make_node("Relu", ["x"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.COMPLEX64, [2])],
               [helper.make_tensor_value_info("y", TensorProto.COMPLEX64, [2])])
    _expect_error(_save(m, tmp_path / "complex.onnx"), "COMPLEX64", "'x'")


def test_sequence_input_is_refused(tmp_path):
    seq = helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, [2])
    m = _model([helper.make_node("Relu", ["s"], ["y"])], [seq],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    _expect_error(_save(m, tmp_path / "seq.onnx"), "'s'", "sequence")


def test_constant_nodes_are_folded(tmp_path):
    c = helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array([1, -2, 3], np.float32)))
    m = _model([c, helper.make_node("Add", ["x", "c"], ["s"]), helper.make_node("Relu", ["s"], ["y"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])])
    e = deepep.Engine(_save(m, tmp_path / "const.onnx"))
    np.testing.assert_array_equal(e.run({"x": np.array([0, 1, -4], np.float32)})["y"], [1, 0, 0])


def test_subgraph_inputs_without_types(tmp_path):
    body = helper.make_graph(
        [helper.make_node("Add", ["v", "x"], ["v2"])], "body",
        [helper.make_value_info("i", onnx.TypeProto()), helper.make_value_info("c", onnx.TypeProto()),
         helper.make_value_info("v", onnx.TypeProto())],
        [helper.make_value_info("c", onnx.TypeProto()), helper.make_value_info("v2", onnx.TypeProto())])
    m = _model([helper.make_node("Loop", ["M", "", "x"], ["y"], body=body)],
               [helper.make_tensor_value_info("M", TensorProto.INT64, [1]),
                helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    e = deepep.Engine(_save(m, tmp_path / "untyped.onnx"))
    y = e.run({"M": np.array([3]), "x": np.array([1, 2], np.float32)})["y"]
    np.testing.assert_array_equal(y, [4, 8])


# ------------------------------------------------------------ non-UTF-8 names

def _with_raw_bytes(model, marker: bytes, raw: bytes) -> bytes:
    """Serializes `model` with `marker` (inside some name) replaced by `raw` of the same length."""
    data = model.SerializeToString()
    assert len(marker) == len(raw) and data.count(marker) >= 1
    return data.replace(marker, raw)


def test_non_utf8_node_name_in_an_error_message(tmp_path):
    m = _model([helper.make_node("NoSuchOp", ["x"], ["y"], name="nodeQQQQ")],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    p = tmp_path / "bad_name.onnx"
    p.write_bytes(_with_raw_bytes(m, b"QQQQ", b"\xff\xfe\x80\x81"))
    _expect_error(str(p), str(p))


def test_non_utf8_input_name(tmp_path):
    m = _model([helper.make_node("Relu", ["xQQQQ"], ["y"])],
               [helper.make_tensor_value_info("xQQQQ", TensorProto.FLOAT, [1])],
               [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    p = tmp_path / "bad_input_name.onnx"
    p.write_bytes(_with_raw_bytes(m, b"QQQQ", b"\xff\xfe\x80\x81"))
    try:
        e = deepep.Engine(str(p))
    except deepep.Error:
        return  # rejecting such a model is fine
    assert e.inputs[0]["dtype"] == "float32"  # ...and so is loading it with usable metadata


# ------------------------------------------------------------------- (f) fuzz

def _control_flow_model():
    """Scan (Add/Relu body) -> Loop (Add body, reads the initializer b) -> If (reads Scan's output)."""
    F = TensorProto.FLOAT
    b = numpy_helper.from_array(np.arange(4, dtype=np.float32) - 2, "b")
    scan_body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "e"], ["s_out"], name="scan_add"),
         helper.make_node("Relu", ["s_out"], ["so"], name="scan_relu")],
        "scan_body", [helper.make_tensor_value_info("s_in", F, [4]), helper.make_tensor_value_info("e", F, [4])],
        [helper.make_tensor_value_info("s_out", F, [4]), helper.make_tensor_value_info("so", F, [4])])
    loop_body = helper.make_graph(
        [helper.make_node("Add", ["v", "b"], ["v2"], name="loop_add"),
         helper.make_node("Relu", ["v2"], ["v3"], name="loop_relu")],
        "loop_body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                      helper.make_tensor_value_info("c", TensorProto.BOOL, []),
                      helper.make_tensor_value_info("v", F, [4])],
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []), helper.make_tensor_value_info("v2", F, [4]),
         helper.make_tensor_value_info("v3", F, [4])])
    then_g = helper.make_graph([helper.make_node("Relu", ["fin"], ["t"], name="then_relu")], "then", [],
                               [helper.make_tensor_value_info("t", F, [4])])
    else_g = helper.make_graph([helper.make_node("Add", ["fin", "b"], ["u"], name="else_add")], "else", [],
                               [helper.make_tensor_value_info("u", F, [4])])
    return _model(
        [helper.make_node("Scan", ["b", "x"], ["fin", "seq"], num_scan_inputs=1, body=scan_body, name="scan"),
         helper.make_node("Loop", ["M", "", "fin"], ["lf", "lseq"], body=loop_body, name="loop"),
         helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g, name="if")],
        [helper.make_tensor_value_info("x", F, ["N", 4]), helper.make_tensor_value_info("M", TensorProto.INT64, [1]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [1])],
        [helper.make_tensor_value_info("y", F, None), helper.make_tensor_value_info("seq", F, None),
         helper.make_tensor_value_info("lseq", F, None)],
        [b])


def test_control_flow_model_runs(tmp_path):
    """The fuzz base model itself is valid and computes the right thing."""
    e = deepep.Engine(_save(_control_flow_model(), tmp_path / "cf.onnx"))
    x = np.array([[1, 0, 2, -1], [0.5, 0.5, 0.5, 0.5], [-3, 1, 0, 2]], np.float32)
    b = np.arange(4, dtype=np.float32) - 2
    for cond in (True, False):
        out = e.run({"x": x, "M": np.array([3]), "cond": np.array([cond])})
        fin = b + x.sum(0)
        np.testing.assert_allclose(out["seq"], np.maximum(b + np.cumsum(x, 0), 0))
        v, lseq = fin, []
        for _ in range(3):
            v = v + b
            lseq.append(np.maximum(v, 0))
        np.testing.assert_allclose(out["lseq"], np.stack(lseq))
        np.testing.assert_allclose(out["y"], np.maximum(fin, 0) if cond else fin + b)


FUZZ_SCRIPT = textwrap.dedent(r"""
    import os, sys
    import numpy as np
    import deepep

    workdir, count, seed, sources = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    rng = np.random.default_rng(seed)
    stats = {"loaded": 0, "rejected": 0, "unexpected_load": 0, "unexpected_run": 0}

    def unexpected(i, where, e):
        stats["unexpected_" + where] += 1
        print(f"UNEXPECTED mutation {i} ({where}): {type(e).__name__}: {e!r}"[:300], flush=True)

    for src in sources:
        base = open(src, "rb").read()
        for i in range(count):
            data = bytearray(base)
            for _ in range(int(rng.integers(1, 4))):
                kind = int(rng.integers(0, 4))
                pos = int(rng.integers(0, max(1, len(data))))
                if kind == 0 and data:        # flip bits of one byte
                    data[pos] ^= int(rng.integers(1, 256))
                elif kind == 1:               # truncate
                    data = data[:pos]
                elif kind == 2:               # insert random bytes
                    data[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
                elif data:                    # a byte that starts or ends a varint
                    data[pos] = int(rng.choice([0x00, 0x7f, 0x80, 0xff]))
            path = os.path.join(workdir, "fuzz.onnx")
            with open(path, "wb") as f:
                f.write(bytes(data))
            print(f"mutation {i} of {os.path.basename(src)}", flush=True)
            try:
                engine = deepep.Engine(path)
            except deepep.Error:
                stats["rejected"] += 1
                continue
            except Exception as e:
                unexpected(i, "load", e)
                continue
            stats["loaded"] += 1
            # It loaded: a run on inputs of its declared types may only raise deepep errors.
            try:
                feeds = {}
                for spec in engine.inputs:
                    shape = [d if isinstance(d, int) else 2 for d in (spec["shape"] or [])]
                    if spec["dtype"] in ("undefined", "bfloat16") or "float8" in spec["dtype"] or np.prod(shape) > 1 << 16:
                        feeds = None
                        break
                    feeds[spec["name"]] = np.ones(shape, dtype=spec["dtype"])
                if feeds is not None:
                    engine.run(feeds)
            except (deepep.Error, deepep.InputError):
                pass
            except Exception as e:
                unexpected(i, "run", e)
    print("done " + " ".join(f"{k}={v}" for k, v in stats.items()), flush=True)
""")

FUZZ_COUNT = 300


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    sources = [_save(_add_relu_model(), d / "add_relu.onnx"), _save(_control_flow_model(), d / "control.onnx")]
    script = d / "fuzz.py"
    script.write_text(FUZZ_SCRIPT)
    env = dict(os.environ)
    pkg = os.path.dirname(os.path.dirname(deepep.__file__))
    env["PYTHONPATH"] = pkg + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, str(script), str(d), str(FUZZ_COUNT), "20240611", *sources],
                          capture_output=True, text=True, env=env, timeout=900)


def test_fuzzed_models_never_crash(fuzz_run):
    lines = fuzz_run.stdout.strip().splitlines() or ["(no output)"]
    assert fuzz_run.returncode == 0, (f"the fuzz process died with exit code {fuzz_run.returncode} "
                                      f"at '{lines[-1]}'\nstderr:\n{fuzz_run.stderr[-3000:]}")
    assert lines[-1].startswith("done"), lines[-1]
    stats = dict(kv.split("=") for kv in lines[-1].split()[1:])
    assert int(stats["loaded"]) + int(stats["rejected"]) + int(stats["unexpected_load"]) == 2 * FUZZ_COUNT
    assert int(stats["rejected"]) > 0 and int(stats["loaded"]) > 0


def test_fuzzed_models_raise_only_deepep_errors(fuzz_run):
    bad = [l for l in fuzz_run.stdout.splitlines() if l.startswith("UNEXPECTED")]
    assert fuzz_run.returncode == 0 and not bad, "\n".join(bad[:20])
