"""The CUDA backend as seen from Python on any machine: the hardware probe,
device names, and clear errors where no GPU (or no CUDA build) is present.
GPU runs themselves are tested by tests/cuda (scripts/gpu-check)."""
import numpy as np
import pytest

import deepep
from deepep import _deepep
from deepep import cli


def _gpus():
    return [d for d in deepep.devices() if d["device"] != "cpu"]


def test_devices_lists_the_cpu_first_with_isa_features():
    devs = deepep.devices()
    assert devs[0]["device"] == "cpu"
    assert devs[0]["cores"] >= devs[0]["threads"] >= 1
    assert isinstance(devs[0]["isa_features"], list)
    for g in devs[1:]:
        assert g["device"].startswith("cuda:")
        assert g["sm_count"] > 0 and g["memory_bandwidth_gbs"] > 0 and g["peak_fp32_tflops"] > 0
        assert g["tensor_cores"] or g["compute_capability"] < "7.0"


def test_inspect_device_prints_the_probe(capsys):
    assert cli.main(["inspect", "--device"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cpu ")
    if not _gpus():
        assert "gpu        none:" in out


def test_inspect_without_model_or_device_is_an_error():
    with pytest.raises(SystemExit):
        cli.main(["inspect"])


@pytest.mark.parametrize("device", ["cuda:x", "cuda:", "gpu:1x", "tpu"])
def test_bad_device_names_are_input_errors(relu_add_model, device):
    with pytest.raises(deepep.InputError, match="unknown device"):
        deepep.Engine(relu_add_model, device=device)


def test_gpu_precision_on_cpu_is_an_error(relu_add_model):
    with pytest.raises(deepep.Error, match="applies to GPU devices"):
        deepep.Engine(relu_add_model, precision="fp16")
    with pytest.raises(deepep.Error, match="not known"):
        deepep.Engine(relu_add_model, device="cuda", precision="fp8")


@pytest.mark.skipif(bool(_gpus()), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_clear_error(relu_add_model):
    with pytest.raises(deepep.Error, match="device 'cuda:0' is not available"):
        deepep.Engine(relu_add_model, device="cuda:0")
    # ... and the CPU still works in the same process.
    x = np.ones((2, 3), np.float32)
    assert deepep.Engine(relu_add_model).run({"x": x})


@pytest.mark.skipif(not _gpus(), reason="no GPU")
def test_gpu_engine_matches_cpu(relu_add_model):
    rng = np.random.default_rng(0)
    cpu = deepep.Engine(relu_add_model)
    gpu = deepep.Engine(relu_add_model, device="cuda:0")
    assert gpu.device == "cuda:0"
    for shape in [(3, 3), (1, 3), (5, 3), (3, 3)]:  # new signatures, then a replay
        x = rng.standard_normal(shape).astype(np.float32)
        want = cpu.run({"x": x})
        got = gpu.run({"x": x})
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not _gpus(), reason="no GPU")
def test_gpu_fp16_outputs_stay_float16(tmp_path):
    from deepep import zoo

    path = tmp_path / "gpt2.onnx"
    zoo.save(zoo.build("gpt2", small=True), str(path))
    ids = np.random.default_rng(2).integers(0, 1000, size=(2, 24)).astype(np.int64)
    want = next(iter(deepep.Engine(path).run({"input_ids": ids}).values()))
    for precision, tol in [("fp16", 1e-2), ("fp32-strict", 1e-3)]:
        gpu = deepep.Engine(path, device="cuda:0", precision=precision, output_dtype="float16")
        assert gpu.outputs[0]["dtype"] == "float16"
        for _ in range(3):  # the first run, the graph capture, a replay
            got = next(iter(gpu.run({"input_ids": ids}).values()))
            assert got.dtype == np.float16
            err = np.abs(got.astype(np.float32) - want).max() / np.abs(want).max()
            assert err <= tol, (precision, err)


def test_cuda_built_flag_is_a_bool():
    assert _deepep.cuda_built() in (True, False)


@pytest.mark.skipif(not _gpus(), reason="no GPU")
@pytest.mark.parametrize("name", ["resnet50", "mobilenetv2"])
def test_gpu_cnn_auto_layout_is_nhwc_and_matches_cpu(name, tmp_path):
    from deepep import zoo

    path = tmp_path / f"{name}.onnx"
    zoo.save(zoo.build(name, small=True), str(path))
    x = np.random.default_rng(1).standard_normal((2, 3, 64, 64)).astype(np.float32)
    want = next(iter(deepep.Engine(path).run({"input": x}).values()))
    for layout, precision, tol in [("auto", "fp32-strict", 1e-4), ("nchw", "fp32-strict", 1e-4), ("auto", "fp16", 1e-2)]:
        gpu = deepep.Engine(path, device="cuda:0", layout=layout, precision=precision)
        assert gpu.layout == ("nhwc" if layout == "auto" else layout)
        got = next(iter(gpu.run({"input": x}).values()))
        err = np.linalg.norm(got - want) / np.linalg.norm(want)
        assert err <= tol, (layout, precision, err)


@pytest.mark.skipif(not _gpus(), reason="no GPU")
@pytest.mark.parametrize("batch,seq,waves", [(1, 128, 2), (1, 128, 3), (1, 100, 4), (3, 64, 3), (3, 64, 2), (5, 32, 8)])
def test_gpu_row_waves_match_cpu(batch, seq, waves, tmp_path, monkeypatch, capfd):
    """GPT-2 run in row waves (cuda_output_blocks.h): inside one sequence (causal attention reads the keys an
    earlier wave made) or over whole sequences, in a poisoned arena: every row written, none overwritten."""
    from deepep import zoo

    path = tmp_path / "gpt2.onnx"
    zoo.save(zoo.build("gpt2", small=True, batch=batch, seq=seq), str(path))
    ids = np.random.default_rng(seq).integers(0, 1000, (batch, seq)).astype(np.int64)
    want = deepep.Engine(path).run({"input_ids": ids})["logits"]
    monkeypatch.setenv("DEEPEP_CUDA_POISON", "1")
    monkeypatch.setenv("DEEPEP_CUDA_VERBOSE", "1")
    for precision, tol in [("fp32-strict", 1e-4), ("fp16", 1e-2)]:
        monkeypatch.setenv("DEEPEP_CUDA_WAVES", str(waves))
        gpu = deepep.Engine(path, device="cuda:0", precision=precision)
        for _ in range(3):  # eager, captured, replayed
            got = gpu.run({"input_ids": ids})["logits"]
            err = np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want)
            assert err <= tol, (precision, err)
        expect = min(waves, batch) if batch > 1 else waves
        assert f"in {expect} row wave(s)" in capfd.readouterr().err
        monkeypatch.setenv("DEEPEP_CUDA_WAVES", "1")
        unwaved = deepep.Engine(path, device="cuda:0", precision=precision).run({"input_ids": ids})["logits"]
        np.testing.assert_allclose(got, unwaved, rtol=tol, atol=tol * np.abs(want).max())
