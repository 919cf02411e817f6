"""The fast attention and layer-norm CPU kernels end to end: small zoo BERT and
GPT-2 models (fused to deepep.Attention / SkipLayerNorm at the default level)
give the reference kernels' outputs (DEEPEP_CPU_ISA=none, in a child process)
on each ISA path."""
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnx")

import deepep  # noqa: E402
from deepep import zoo  # noqa: E402

RUN = ("import numpy as np, deepep, sys; e = deepep.Engine(sys.argv[1]); "
       "feeds = dict(np.load(sys.argv[2])); out = e.run(feeds); "
       "np.save(sys.argv[3], out[sorted(out)[0]])")


@pytest.mark.parametrize("name", ["bert-base", "gpt2"])
@pytest.mark.parametrize("isa", ["avx2", "avx512"])
def test_small_text_models_match_reference_kernels(tmp_path, name, isa):
    path = tmp_path / "m.onnx"
    zoo.save(zoo.build(name, small=True, batch=2, seq=19), str(path))
    rng = np.random.default_rng(3)
    feeds = {}
    for i in deepep.Engine(str(path)).inputs:
        iname = i["name"] if isinstance(i, dict) else i.name
        if "mask" in iname:
            m = np.ones((2, 19), np.int64)
            m[1, 13:] = 0  # padding in the second sequence
            feeds[iname] = m
        elif "type" in iname:
            feeds[iname] = rng.integers(0, 2, (2, 19)).astype(np.int64)
        else:
            feeds[iname] = rng.integers(0, 100, (2, 19)).astype(np.int64)
    np.savez(tmp_path / "x.npz", **feeds)
    outs = {}
    for mode in ("none", isa):
        env = dict(os.environ, DEEPEP_CPU_ISA=mode, PYTHONPATH=os.path.dirname(os.path.dirname(deepep.__file__)))
        out = tmp_path / f"y_{mode}.npy"
        subprocess.run([sys.executable, "-c", RUN, str(path), str(tmp_path / "x.npz"), str(out)], env=env, check=True)
        outs[mode] = np.load(out)
    np.testing.assert_allclose(outs[isa], outs["none"], rtol=1e-4, atol=1e-4)
