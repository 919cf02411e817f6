"""deepep-serve end to end: a server started per module on a free port, driven
by the real Triton HTTP client (tritonclient[http]) and raw HTTP for the error
paths. Answers are checked against numpy."""
import concurrent.futures as cf
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def serve_binary():
    """$DEEPEP_SERVE, else the build next to the imported extension (a dev tree's
    build/dev), else the installed `deepep-serve`."""
    if os.environ.get("DEEPEP_SERVE"):
        return os.environ["DEEPEP_SERVE"]
    try:
        import deepep._deepep as ext

        cand = Path(os.path.realpath(ext.__file__)).parent / "deepep-serve"
        if cand.exists():
            return str(cand)
    except ImportError:
        pass
    found = shutil.which("deepep-serve")
    if found:
        return found
    for d in ("build/dev", "build/py"):
        if (REPO / d / "deepep-serve").exists():
            return str(REPO / d / "deepep-serve")
    if os.environ.get("DEEPEP_REQUIRE_SERVE") == "1":  # scripts/test: CI must not skip these
        pytest.fail("deepep-serve is not built (setup installs it with pip install .)")
    pytest.skip("deepep-serve is not built")


rng = np.random.default_rng(0)
W1 = rng.standard_normal((16, 32)).astype(np.float32) * 0.3
B1 = rng.standard_normal(32).astype(np.float32) * 0.1
W2 = rng.standard_normal((32, 8)).astype(np.float32) * 0.3


def mlp_ref(x):
    return np.maximum(x @ W1 + B1, 0) @ W2


def make_mlp(path):
    """y = relu(x W1 + b1) W2 (FP32), h2 = h + h (FP16); batch dim 'batch'."""
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["a"]),
        helper.make_node("Add", ["a", "B1"], ["b"]),
        helper.make_node("Relu", ["b"], ["r"]),
        helper.make_node("MatMul", ["r", "W2"], ["y"]),
        helper.make_node("Add", ["h", "h"], ["h2"]),
    ]
    g = helper.make_graph(
        nodes,
        "mlp",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16]),
            helper.make_tensor_value_info("h", TensorProto.FLOAT16, ["batch", 4]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8]),
            helper.make_tensor_value_info("h2", TensorProto.FLOAT16, ["batch", 4]),
        ],
        [numpy_helper.from_array(W1, "W1"), numpy_helper.from_array(B1, "B1"), numpy_helper.from_array(W2, "W2")],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def make_slow(path, reps=6, n=256, rows=4096):
    """x[batch, n] broadcast to [batch, rows, n], then a chain of n x n MatMuls and
    a mean over the rows: 3.2 GFLOP, tens of ms per request even with the fast
    AVX-512 GEMM (at rows=128 it took ~1 ms and a 1 ms timeout could be met), enough
    to fill a queue. With
    W = I/2 + 1/(2n) a row of ones stays ones."""
    w = (np.eye(n, dtype=np.float32) * 0.5 + 0.5 / n).astype(np.float32)
    nodes = [helper.make_node("Unsqueeze", ["x", "ax1"], ["u"]), helper.make_node("Expand", ["u", "rows"], ["e"])]
    prev = "e"
    for i in range(reps):
        nodes.append(helper.make_node("MatMul", [prev, "W"], [f"m{i}"]))
        prev = f"m{i}"
    nodes.append(helper.make_node("ReduceMean", [prev], ["y"], axes=[1], keepdims=0))
    g = helper.make_graph(
        nodes,
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array([1], np.int64), "ax1"),
         numpy_helper.from_array(np.array([1, rows, 1], np.int64), "rows")],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def make_fixed(path):
    g = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "fixed",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


class Server:
    def __init__(self, model, *args):
        self.cmd = [serve_binary(), "--model", str(model), "--port", "0", *map(str, args)]
        self.proc = subprocess.Popen(self.cmd, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.port = None
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(60)
        if self.port is None:
            self.proc.kill()
            raise RuntimeError("deepep-serve did not start:\n" + "".join(self.log))
        self.url = f"127.0.0.1:{self.port}"

    def client(self, **kw):
        return httpclient.InferenceServerClient(self.url, **kw)

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    path = make_mlp(tmp_path_factory.mktemp("serve") / "mlp.onnx")
    s = Server(path, "--batch-size", 8, "--latency-target-ms", 500, "--max-request-size", "1M")
    yield s
    assert s.stop() == 0, "".join(s.log)


def infer_inputs(x, h, binary):
    a = httpclient.InferInput("x", list(x.shape), "FP32")
    a.set_data_from_numpy(x, binary_data=binary)
    b = httpclient.InferInput("h", list(h.shape), "FP16")
    b.set_data_from_numpy(h, binary_data=binary)
    return [a, b]


def test_startup_log_and_metadata(mlp):
    log = "".join(mlp.log)
    assert "input  x: FP32 [batch, 16]" in log and "output h2: FP16 [batch, 4]" in log
    assert "batching along dimension 0 ('batch')" in log
    c = mlp.client()
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready("mlp")
    meta = c.get_server_metadata()
    assert meta["name"] == "deepep" and "binary_tensor_data" in meta["extensions"]
    m = c.get_model_metadata("mlp")
    assert m["name"] == "mlp"
    assert {i["name"]: (i["datatype"], i["shape"]) for i in m["inputs"]} == {"x": ("FP32", [-1, 16]), "h": ("FP16", [-1, 4])}
    assert [o["name"] for o in m["outputs"]] == ["y", "h2"]
    cfg = c.get_model_config("mlp")
    assert cfg["max_batch_size"] == 8
    assert cfg["input"][0]["dims"] == [16] and cfg["input"][0]["data_type"] == "TYPE_FP32"
    with pytest.raises(InferenceServerException, match="unknown model 'nope'"):
        c.get_model_metadata("nope")


@pytest.mark.parametrize("binary", [False, True])
def test_infer_json_and_binary(mlp, binary):
    c = mlp.client()
    x = rng.standard_normal((3, 16)).astype(np.float32)
    h = rng.standard_normal((3, 4)).astype(np.float16)
    outs = [httpclient.InferRequestedOutput("y", binary_data=binary), httpclient.InferRequestedOutput("h2", binary_data=binary)]
    r = c.infer("mlp", infer_inputs(x, h, binary), outputs=outs, request_id="r1")
    np.testing.assert_allclose(r.as_numpy("y"), mlp_ref(x), rtol=1e-4, atol=1e-4)
    h2 = r.as_numpy("h2")
    assert h2.dtype == (np.float16 if binary else np.float16) and h2.shape == (3, 4)
    np.testing.assert_array_equal(h2.astype(np.float32), (h + h).astype(np.float32))
    assert r.get_response()["id"] == "r1"
    # Only the outputs asked for come back.
    r = c.infer("mlp", infer_inputs(x, h, binary), outputs=[httpclient.InferRequestedOutput("y", binary_data=binary)])
    assert r.as_numpy("h2") is None and r.as_numpy("y").shape == (3, 8)


def test_raw_nested_and_flat_json(mlp):
    x = rng.standard_normal((2, 16)).astype(np.float32)
    h = np.ones((2, 4), np.float16)
    for data in (x.tolist(), x.ravel().tolist()):
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 16], "data": data},
                           {"name": "h", "datatype": "FP16", "shape": [2, 4], "data": h.tolist()}],
                "outputs": [{"name": "y"}]}
        st, hd, b = mlp.request("POST", "/v2/models/mlp/infer", json.dumps(body), {"Content-Type": "application/json"})
        assert st == 200, b
        out = json.loads(b)["outputs"][0]
        assert out["name"] == "y" and out["shape"] == [2, 8] and out["datatype"] == "FP32"
        np.testing.assert_allclose(np.array(out["data"], np.float32).reshape(2, 8), mlp_ref(x), rtol=1e-4, atol=1e-4)
    # Versioned route too.
    st, _, _ = mlp.request("POST", "/v2/models/mlp/versions/1/infer", json.dumps(body))
    assert st == 200


def good_body(n=1):
    return {"inputs": [{"name": "x", "datatype": "FP32", "shape": [n, 16], "data": [0.5] * (16 * n)},
                       {"name": "h", "datatype": "FP16", "shape": [n, 4], "data": [1] * (4 * n)}]}


@pytest.mark.parametrize(
    "mutate, status, needle",
    [
        (lambda b: "{\"inputs\": [", 400, "malformed JSON"),
        (lambda b: json.dumps({"inputs": b["inputs"][:1]}), 400, "missing input 'h'"),
        (lambda b: json.dumps({"inputs": [dict(b["inputs"][0], shape=[1, 15], data=[0] * 15), b["inputs"][1]]}), 400,
         "dimension 1 must be 16"),
        (lambda b: json.dumps({"inputs": [dict(b["inputs"][0], datatype="FP64"), b["inputs"][1]]}), 400,
         "datatype FP64 does not match the model's FP32"),
        (lambda b: json.dumps({"inputs": [dict(b["inputs"][0], data=[0] * 3), b["inputs"][1]]}), 400, "has 3 elements"),
        (lambda b: json.dumps({"inputs": [dict(b["inputs"][0], shape=[2, 16], data=[0] * 32), b["inputs"][1]]}), 400,
         "another input set 'batch' to 2"),
        (lambda b: json.dumps({"inputs": [dict(b["inputs"][0], shape=[9, 16], data=[0] * 144),
                                          dict(b["inputs"][1], shape=[9, 4], data=[0] * 36)]}), 400,
         "exceeds the model's max_batch_size 8"),
        (lambda b: json.dumps(dict(b, outputs=[{"name": "zz"}])), 400, "unknown output 'zz'"),
        (lambda b: json.dumps({"inputs": b["inputs"] + [dict(b["inputs"][0], name="extra")]}), 400, "unknown input 'extra'"),
        (lambda b: "[1, 2]", 400, "must be a JSON object"),
        (lambda b: json.dumps(b).replace("0.5", "1e430", 1), 400, "number overflow"),
        # Nested far deeper than a recursive printer's stack (the server once crashed on it).
        (lambda b: "[" * 300000 + "]" * 300000, 400, "must be a JSON object, got [[[[[[[[[...]]]]]]]]]"),
    ],
)
def test_bad_requests(mlp, mutate, status, needle):
    st, hd, body = mlp.request("POST", "/v2/models/mlp/infer", mutate(good_body()))
    assert st == status, body
    assert needle in json.loads(body)["error"]


def test_huge_timeouts_mean_no_deadline(mlp):
    # Far past any run, up to infinity: answered, not expired at once (the
    # deadline's nanoseconds once overflowed).
    for params, headers in (({"timeout_ms": 1e300}, {}), ({}, {"Timeout-Ms": "inf"}), ({}, {"Timeout-Ms": "1e30"})):
        st, _, body = mlp.request("POST", "/v2/models/mlp/infer", json.dumps(dict(good_body(), parameters=params)),
                                  headers)
        assert st == 200, (params, headers, body)
    for bad in ("nan", "5ms", "-3", "0"):
        st, _, body = mlp.request("POST", "/v2/models/mlp/infer", json.dumps(good_body()), {"Timeout-Ms": bad})
        assert st == 400 and "Timeout-Ms" in json.loads(body)["error"], (bad, body)


def test_binary_size_errors(mlp):
    x = np.zeros((1, 16), np.float32).tobytes()
    h = np.zeros((1, 4), np.float16).tobytes()
    hdr = json.dumps({"inputs": [
        {"name": "x", "datatype": "FP32", "shape": [1, 16], "parameters": {"binary_data_size": len(x)}},
        {"name": "h", "datatype": "FP16", "shape": [1, 4], "parameters": {"binary_data_size": len(h)}}]}).encode()
    ok = lambda body, n: mlp.request("POST", "/v2/models/mlp/infer", body, {"Inference-Header-Content-Length": str(n)})
    st, hd, body = ok(hdr + x + h, len(hdr))
    assert st == 200, body
    st, _, body = ok(hdr + x + h + b"junk", len(hdr))  # more bytes than the sizes say
    assert st == 400 and "add up to" in json.loads(body)["error"]
    st, _, body = ok(hdr + x, len(hdr))  # fewer
    assert st == 400 and "runs past the end" in json.loads(body)["error"]
    st, _, body = ok(hdr + x + h, len(hdr) + len(x) + len(h) + 10)  # header longer than the body
    assert st == 400 and "Inference-Header-Content-Length" in json.loads(body)["error"]
    for n in ("abc", "-1", "12x"):
        st, _, body = ok(hdr + x + h, n)
        assert st == 400 and "not a byte count" in json.loads(body)["error"], (n, body)
    bad = hdr.replace(b'"binary_data_size": 8}', b'"binary_data_size": 6}')
    st, _, body = ok(bad + x + h[:6], len(bad))
    assert st == 400 and "needs 8" in json.loads(body)["error"]


def test_not_found_and_too_large(mlp):
    st, _, body = mlp.request("POST", "/v2/models/other/infer", json.dumps(good_body()))
    assert st == 404 and "unknown model 'other'" in json.loads(body)["error"]
    st, _, body = mlp.request("GET", "/v2/models/mlp/versions/7")
    assert st == 404 and "version" in json.loads(body)["error"]
    st, _, body = mlp.request("GET", "/v3/whatever")
    assert st == 404 and "error" in json.loads(body)
    st, _, body = mlp.request("POST", "/v2/models/mlp/infer", b"x" * (2 << 20))
    assert st == 413


def test_concurrent_requests_get_their_own_answers(mlp):
    before = metric(mlp, "deepep_batch_size_sum")
    c = mlp.client(concurrency=16)
    xs = [rng.standard_normal((1 + i % 3, 16)).astype(np.float32) for i in range(48)]
    hs = [rng.standard_normal((x.shape[0], 4)).astype(np.float16) for x in xs]
    reqs = [c.async_infer("mlp", infer_inputs(x, h, i % 2 == 0)) for i, (x, h) in enumerate(zip(xs, hs))]
    for x, h, req in zip(xs, hs, reqs):
        r = req.get_result()
        np.testing.assert_allclose(r.as_numpy("y"), mlp_ref(x), rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(r.as_numpy("h2"), h + h)
    # Every row went through exactly one batch.
    assert metric(mlp, "deepep_batch_size_sum") - before == sum(x.shape[0] for x in xs)


def metric(server, name, labels=None):
    st, _, body = server.request("GET", "/metrics")
    assert st == 200
    for line in body.decode().splitlines():
        if line.startswith(name + "{") and (labels is None or labels in line):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels or ''} not in /metrics")


def test_metrics(mlp):
    mlp.request("POST", "/v2/models/mlp/infer", "{bad")
    st, hd, body = mlp.request("GET", "/metrics")
    text = body.decode()
    for name in ("deepep_request_duration_seconds_bucket", "deepep_queue_duration_seconds_count",
                 "deepep_compute_duration_seconds_sum", "deepep_batch_size_bucket", "deepep_queue_depth",
                 "deepep_inference_requests_total", "deepep_batch_compute_estimate_seconds"):
        assert name in text, name
    assert "# TYPE deepep_request_duration_seconds histogram" in text
    assert metric(mlp, "deepep_inference_failures_total", 'reason="bad_request"') >= 1
    assert metric(mlp, "deepep_inference_requests_total") >= 1
    assert metric(mlp, "deepep_request_duration_seconds_bucket", 'le="+Inf"') == metric(mlp, "deepep_request_duration_seconds_count")


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    path = make_slow(tmp_path_factory.mktemp("serve") / "slow.onnx")
    s = Server(path, "--batch-size", 1, "--max-queue", 3)
    yield s
    s.stop()


def slow_body(timeout_ms=None):
    b = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 256], "data": [1.0] * 256}]}
    if timeout_ms:
        b["parameters"] = {"timeout_ms": timeout_ms}
    return json.dumps(b)


def test_queue_full_and_timeout_give_503(slow):
    with cf.ThreadPoolExecutor(12) as ex:
        results = list(ex.map(lambda _: slow.request("POST", "/v2/models/slow/infer", slow_body()), range(12)))
    codes = [st for st, _, _ in results]
    assert 200 in codes and 503 in codes, codes
    st, hd, body = next(r for r in results if r[0] == 503)
    assert hd.get("Retry-After") == "1" and "queue is full" in json.loads(body)["error"]
    ok = next(r for r in results if r[0] == 200)
    np.testing.assert_allclose(json.loads(ok[2])["outputs"][0]["data"][:4], [1.0] * 4, rtol=1e-4)
    assert metric(slow, "deepep_inference_failures_total", 'reason="queue_full"') >= 1
    # A timeout shorter than one run, with a queue ahead: 503 at the deadline.
    with cf.ThreadPoolExecutor(3) as ex:
        futs = [ex.submit(slow.request, "POST", "/v2/models/slow/infer", slow_body()) for _ in range(2)]
        time.sleep(0.01)
        st, hd, body = slow.request("POST", "/v2/models/slow/infer", slow_body(timeout_ms=1))
        [f.result() for f in futs]
    assert st == 503 and "timed out" in json.loads(body)["error"], body
    assert metric(slow, "deepep_inference_failures_total", 'reason="timeout"') >= 1


def test_sigterm_drains_in_flight_and_exits_0(tmp_path):
    s = Server(make_slow(tmp_path / "slow.onnx"), "--batch-size", 4)
    with cf.ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(s.request, "POST", "/v2/models/slow/infer", slow_body()) for _ in range(4)]
        time.sleep(0.05)
        s.proc.send_signal(signal.SIGTERM)
        codes = [f.result()[0] for f in futs]
    assert s.proc.wait(20) == 0, "".join(s.log)
    assert codes.count(200) >= 1 and set(codes) <= {200, 503}, codes
    assert "draining" in "".join(s.log)


def test_unbatched_model(tmp_path):
    s = Server(make_fixed(tmp_path / "fixed.onnx"), "--model-name", "relu")
    try:
        assert "serving without batching" in "".join(s.log)
        c = s.client()
        assert c.get_model_config("relu")["max_batch_size"] == 0
        x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
        i = httpclient.InferInput("x", [2, 3], "FP32")
        i.set_data_from_numpy(x)
        np.testing.assert_array_equal(c.infer("relu", [i]).as_numpy("y"), np.maximum(x, 0))
    finally:
        assert s.stop() == 0


@pytest.mark.parametrize(
    "args, needle",
    [
        # No GPU here (CI), or no CUDA backend in this build: either way the load fails, naming the device.
        (["--device", "cuda:0"], "on cuda:0:"),
        (["--precision", "fp8"], "precision"),
        (["--layout", "nchwc"], "layout"),
        (["--batch-size", "0"], "batch-size"),
    ],
)
def test_bad_command_lines(tmp_path, args, needle):
    m = make_fixed(tmp_path / "m.onnx")
    p = subprocess.run([serve_binary(), "--model", str(m), "--port", "0", *args], capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and needle in p.stderr + p.stdout


def test_load_failure_exits_nonzero(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not a model")
    p = subprocess.run([serve_binary(), "--model", str(bad), "--port", "0"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "cannot load" in p.stderr and "broken.onnx" in p.stderr


def test_realtime_mode_plans_every_size(tmp_path):
    s = Server(make_mlp(tmp_path / "rt.onnx"), "--batch-size", 6, "--realtime-mode", "--latency-target-ms", 200)
    try:
        log = "".join(s.log)
        assert "(realtime: no waiting)" in log and "plans made for 6 batch size(s)" in log, log
        cfg = s.client().get_model_config("rt")["dynamic_batching"]
        assert cfg["realtime"] is True and cfg["current_max_queue_delay_microseconds"] == 0
        x = rng.standard_normal((5, 16)).astype(np.float32)
        h = np.ones((5, 4), np.float16)
        r = s.client().infer("rt", infer_inputs(x, h, True))
        np.testing.assert_allclose(r.as_numpy("y"), mlp_ref(x), rtol=1e-4, atol=1e-4)
    finally:
        assert s.stop() == 0
