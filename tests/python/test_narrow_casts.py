"""Cast to and from the sub-byte and e8m0 types, checked against ml_dtypes (the
ONNX reference's casts) and onnx.numpy_helper.to_float8e8m0 over every float16
bit pattern, every code, and random float32/float64 values across all exponents."""
import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import deepep

NARROW = {
    TensorProto.INT4: ml_dtypes.int4,
    TensorProto.UINT4: ml_dtypes.uint4,
    TensorProto.INT2: ml_dtypes.int2,
    TensorProto.UINT2: ml_dtypes.uint2,
    TensorProto.FLOAT4E2M1: ml_dtypes.float4_e2m1fn,
}
SOURCES = {np.float16: TensorProto.FLOAT16, np.float32: TensorProto.FLOAT, np.float64: TensorProto.DOUBLE}


def cast_engine(tmp_path, src, to, **attrs):
    node = helper.make_node("Cast", ["x"], ["y"], to=to, **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", src, ["n"])],
                          [helper.make_tensor_value_info("y", to, ["n"])])
    path = tmp_path / f"cast_{src}_{to}.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 25)]), path)
    return deepep.Engine(path)


def float_inputs(dtype):
    if dtype == np.float16:
        return np.arange(1 << 16, dtype=np.uint16).view(np.float16)  # every bit pattern
    rng = np.random.default_rng(7)
    n = 20000
    mag = np.exp2(rng.uniform(-12, 40, n)) * rng.choice([-1, 1], n)
    # Ties and near-ties of the float4 grid, integers, specials.
    grid = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 6, 7, -0.25, -5, -7, -0.0, 0.0])
    extra = np.concatenate([grid, np.nextafter(grid, 10), np.nextafter(grid, -10),
                            np.arange(-40, 40), [np.inf, -np.inf, np.nan, -np.nan]])
    x = np.concatenate([mag, extra]).astype(dtype)
    if dtype == np.float64:  # ml_dtypes makes integers via int32: 0 past its range
        x = x[~(np.abs(x) >= 2.0**31)]
    return x


def codes(a):
    return np.asarray(a).view(np.uint8)


@pytest.mark.parametrize("src", list(SOURCES), ids=lambda t: t.__name__)
@pytest.mark.parametrize("to", list(NARROW), ids=lambda t: TensorProto.DataType.Name(t))
def test_float_to_narrow_matches_ml_dtypes(tmp_path, src, to):
    x = float_inputs(src)
    with np.errstate(invalid="ignore", over="ignore"):
        want = x.astype(NARROW[to])
    got = cast_engine(tmp_path, SOURCES[src], to).run({"x": x})["y"]
    assert got.dtype == want.dtype
    bad = np.nonzero(codes(got) != codes(want))[0]
    assert bad.size == 0, f"{bad.size} differ, e.g. {x[bad[:5]]}: {codes(got)[bad[:5]]} vs {codes(want)[bad[:5]]}"


@pytest.mark.parametrize("frm", list(NARROW) + [TensorProto.FLOAT8E8M0], ids=lambda t: TensorProto.DataType.Name(t))
@pytest.mark.parametrize("dst", [np.float32, np.float16, np.int8], ids=lambda t: t.__name__)
def test_every_code_back_out(tmp_path, frm, dst):
    dtype = NARROW.get(frm, ml_dtypes.float8_e8m0fnu)
    bits = 8 if frm == TensorProto.FLOAT8E8M0 else 2 if frm in (TensorProto.INT2, TensorProto.UINT2) else 4
    x = np.arange(1 << bits, dtype=np.uint8).view(dtype)
    if dst == np.int8 and bits == 8:
        # e8m0 to an integer: only codes whose value fits (NaN and overflow are undefined).
        v = x.astype(np.float64)
        keep = np.abs(v) < 128
        x, want = x[keep], v[keep].astype(np.int8)
    else:
        want = x.astype(np.float32).astype(dst) if dst == np.int8 else x.astype(dst)
    to = {np.float32: TensorProto.FLOAT, np.float16: TensorProto.FLOAT16, np.int8: TensorProto.INT8}[dst]
    got = cast_engine(tmp_path, frm, to).run({"x": x})["y"]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["up", "down", "nearest"])
@pytest.mark.parametrize("saturate", [0, 1])
def test_float_to_e8m0_matches_onnx_reference(tmp_path, mode, saturate):
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 1 << 31, 50000, dtype=np.uint32)  # every exponent, subnormals included
    special = np.array([0.0, 1.0, 1.5, 0.75, 2.0**127, 1.5 * 2.0**127, 3e38, np.inf, np.nan,
                        2.0**-127, 1.5 * 2.0**-127, 2.0**-149], dtype=np.float32)
    x = np.concatenate([bits.view(np.float32), special])
    want = numpy_helper.to_float8e8m0(x, saturate=bool(saturate), round_mode=mode)
    e = cast_engine(tmp_path, TensorProto.FLOAT, TensorProto.FLOAT8E8M0, round_mode=mode, saturate=saturate)
    got = e.run({"x": x})["y"]
    np.testing.assert_array_equal(codes(got), codes(want))
