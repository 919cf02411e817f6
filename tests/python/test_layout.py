"""Channels-last convolutions (Engine(layout="nhwc")): the CNNs give the numbers they give in NCHW and
onnxruntime's, every convolution runs channels-last, and transposes are left only where the NHWC region
meets other ops. The layout is chosen at load, so one .de file runs either way."""
import re

import numpy as np
import pytest

import deepep
from deepep import zoo

from test_zoo_models import max_relative_error, random_feeds


@pytest.mark.parametrize("name", ["resnet50", "mobilenetv2"])
@pytest.mark.parametrize("level", [0, 2, 3])
def test_nhwc_matches_nchw_and_onnxruntime(name, level, tmp_path):
    path = tmp_path / f"{name}.onnx"
    zoo.save(zoo.build(name, small=True), str(path))
    sess, feeds = random_feeds(path, batch=2, seq=16)
    ref = sess.run(None, feeds)[0]
    nchw = deepep.Engine(path, fusion_level=level, layout="nchw")
    nhwc = deepep.Engine(path, fusion_level=level, layout="nhwc")
    assert (nchw.layout, nhwc.layout) == ("nchw", "nhwc")
    a, b = (next(iter(e.run(feeds).values())) for e in (nchw, nhwc))
    assert max_relative_error(b, a) <= 1e-5
    assert max_relative_error(b, ref) <= 1e-4
    text = nhwc.graph_text()
    assert re.search(r"\bConv\(", text) is None
    convs, pools = text.count("deepep.FusedConv"), text.count("deepep.MaxPool")
    # From level 2 the CPU's load-time fusions run: the RGB stem reads the NCHW image itself
    # (channels_last=2), MobileNet's expand + depthwise pairs become deepep.PointwiseDepthwiseConv.
    stems = 1 if level >= 2 else 0
    assert text.count("channels_last=2") == stems
    assert convs > 0 and convs + pools == text.count("channels_last=1") + stems
    assert pools == {"resnet50": 1, "mobilenetv2": 0}[name]  # ResNet's stem MaxPool joins the region (CPU)
    # Fused (level >= 2), a transpose is left only at the region's edge: the features out to
    # GlobalAveragePool (the image goes into the stem as it is). (Level 0 keeps BatchNorm and
    # activations between the convolutions, each behind a pair.)
    if level >= 2:
        assert text.count("Transpose") == 1, text


def test_de_file_runs_in_either_layout(tmp_path):
    src = tmp_path / "m.onnx"
    zoo.save(zoo.build("resnet50", small=True), str(src))
    de = tmp_path / "m.de"
    deepep.Converter(str(src)).optimize().export(str(de))
    _, feeds = random_feeds(src, batch=1, seq=16)
    outs = [next(iter(deepep.Engine(de, layout=lay).run(feeds).values())) for lay in ("nchw", "nhwc")]
    assert max_relative_error(outs[1], outs[0]) <= 1e-5


def test_layout_errors_and_override(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    zoo.save(zoo.build("mobilenetv2", small=True), str(path))
    with pytest.raises(deepep.Error, match="layout 'nchwc' is not known"):
        deepep.Engine(path, layout="nchwc")
    monkeypatch.setenv("DEEPEP_LAYOUT", "nhwc")
    assert deepep.Engine(path, layout="nchw").layout == "nhwc"
    monkeypatch.setenv("DEEPEP_LAYOUT", "")
    assert deepep.Engine(path).layout in ("nchw", "nhwc")
