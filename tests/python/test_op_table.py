"""The op table is the single source of truth: every op it lists has a C++ test."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def table_ops():
    """Op names, DeepEP's own (domain "deepep") ones as "deepep.Name"."""
    ops = []
    for f in sorted((ROOT / "src" / "ops").glob("*.def")):
        for fused, name in re.findall(r"^DEEPEP_(FUSED_)?OP\((\w+),", f.read_text(), re.M):
            ops.append(("deepep." if fused else "") + name)
    return ops


def test_table_lists_each_op_once():
    ops = table_ops()
    assert len(ops) > 150
    dupes = sorted({o for o in ops if ops.count(o) > 1})
    assert not dupes, f"ops listed twice in src/ops/*.def: {dupes}"


def test_every_op_has_a_cpp_test():
    tests = "".join(p.read_text() for p in (ROOT / "tests" / "cpp").glob("test_*.cpp"))
    # ONNX ops are named in quotes; DeepEP's own appear as deepep.Name in IR text.
    missing = [o for o in table_ops() if (o if o.startswith("deepep.") else f'"{o}"') not in tests]
    assert not missing, f"ops with no test in tests/cpp (add a case table): {missing}"
