# torchvision ResNet (Bottleneck, v1.5: stride on the 3x3) as torch.onnx.export(opset 17) writes it
# with BatchNorm left unfolded: Conv(+bias) -> BatchNormalization -> Relu, MaxPool, residual Add,
# GlobalAveragePool, Flatten, Gemm(transB=1). Input "input" [batch,3,H,W], output "output".
import math

from ._builder import FLOAT, GraphBuilder

DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
SMALL_DEPTHS = {50: (1, 1, 1, 1), 101: (1, 1, 2, 1), 152: (1, 2, 3, 1)}


# The last BatchNorm of each residual branch gets a small scale, as in trained
# ResNets (and torchvision's zero_init_residual): with unit scales the residual
# stream of a 152-layer net grows until fp32 rounding alone moves the logits by
# more than 1e-4 relative (onnxruntime differs from itself by 3e-4 then).
RESIDUAL_BN_SCALE = (0.05, 0.25)


def _bottleneck(g, x, cin, width, stride):
    out, c = x, cin
    for i, (cout, k, s) in enumerate([(width, 1, 1), (width, 3, stride), (4 * width, 1, 1)], 1):
        scale = RESIDUAL_BN_SCALE if i == 3 else (0.5, 1.5)
        out = g.batch_norm(g.conv(out, f"conv{i}", c, cout, k, s), f"bn{i}", cout, scale)
        if i < 3:
            with g.scope("relu"):
                out = g.op("Relu", out)
        c = cout
    identity = x
    if stride != 1 or cin != 4 * width:
        with g.scope("downsample"):
            identity = g.batch_norm(g.conv(x, "0", cin, 4 * width, 1, stride), "1", 4 * width)
    with g.scope("relu"):
        return g.op("Relu", g.op("Add", out, identity))


def resnet(depth=50, batch=None, small=False, seed=0, opset=17, image_size=None,
           num_classes=1000):
    """small: 1-3 blocks per stage, a quarter of the width, 64x64 images."""
    blocks = (SMALL_DEPTHS if small else DEPTHS)[depth]
    base = 16 if small else 64
    size = image_size or (64 if small else 224)
    batch = batch or "batch"
    g = GraphBuilder(seed, opset)
    x = g.input("input", FLOAT, [batch, 3, size, size])
    g.calibrate(x, size)
    x = g.batch_norm(g.conv(x, "conv1", 3, base, 7, 2), "bn1", base)
    with g.scope("relu"):
        x = g.op("Relu", x)
    with g.scope("maxpool"):
        x = g.op("MaxPool", x, ceil_mode=0, dilations=[1, 1], kernel_shape=[3, 3],
                 pads=[1, 1, 1, 1], strides=[2, 2])
    cin = base
    for stage, n in enumerate(blocks):
        width = base * 2 ** stage
        with g.scope(f"layer{stage + 1}"):
            for i in range(n):
                with g.scope(str(i)):
                    x = _bottleneck(g, x, cin, width, 2 if i == 0 and stage else 1)
                cin = 4 * width
    with g.scope("avgpool"):
        x = g.op("GlobalAveragePool", x)
    x = g.gemm(g.op("Flatten", x, axis=1), "fc", cin, num_classes, 1 / math.sqrt(cin))
    g.output("output", x, FLOAT, [batch, num_classes])
    return g
