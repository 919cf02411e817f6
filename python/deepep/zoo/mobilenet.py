# torchvision MobileNetV2 as torch.onnx.export(opset 17) writes it with BatchNorm left unfolded:
# Conv(+bias) -> BatchNormalization -> Clip(x, 0, 6) (ReLU6, min/max as inputs), depthwise Conv
# (group = channels), residual Add, GlobalAveragePool, Flatten, Gemm.
# Input "input" [batch,3,H,W], output "output".
import math

from ._builder import FLOAT, GraphBuilder

# expand ratio t, channels c, repeats n, stride s
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1)]


def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _conv_bn(g, x, name, cin, cout, k=1, stride=1, groups=1):
    """Conv2dNormActivation(..., activation_layer=ReLU6): Sequential(conv "0", bn "1", "2")."""
    with g.scope(name):
        x = g.batch_norm(g.conv(x, "0", cin, cout, k, stride, groups), "1", cout)
        with g.scope("2"):
            return g.op("Clip", x, g.const(0.0), g.const(6.0))


def _inverted_residual(g, x, cin, cout, stride, t):
    hidden = int(round(cin * t))
    y, i = x, 0
    with g.scope("conv"):
        if t != 1:
            y, i = _conv_bn(g, y, "0", cin, hidden), 1
        y = _conv_bn(g, y, str(i), hidden, hidden, 3, stride, groups=hidden)
        y = g.batch_norm(g.conv(y, str(i + 1), hidden, cout, 1), str(i + 2), cout)
    return g.op("Add", x, y) if stride == 1 and cin == cout else y


def mobilenetv2(batch=None, small=False, seed=0, opset=17, image_size=None, num_classes=1000,
                width_mult=None):
    """small: width_mult 0.25, one block per stage, 64x64 images."""
    width_mult = width_mult or (0.25 if small else 1.0)
    size = image_size or (64 if small else 224)
    batch = batch or "batch"
    g = GraphBuilder(seed, opset)
    x = g.input("input", FLOAT, [batch, 3, size, size])
    g.calibrate(x, size)
    cin = _make_divisible(32 * width_mult)
    last = _make_divisible(1280 * max(1.0, width_mult))
    with g.scope("features"):
        x, idx = _conv_bn(g, x, "0", 3, cin, 3, 2), 1
        for t, c, n, s in SETTINGS:
            cout = _make_divisible(c * width_mult)
            for i in range(1 if small else n):
                with g.scope(str(idx)):
                    x = _inverted_residual(g, x, cin, cout, s if i == 0 else 1, t)
                cin, idx = cout, idx + 1
        x = _conv_bn(g, x, str(idx), cin, last)
    x = g.op("Flatten", g.op("GlobalAveragePool", x), axis=1)
    with g.scope("classifier"):
        x = g.gemm(x, "1", last, num_classes, 1 / math.sqrt(last))
    g.output("output", x, FLOAT, [batch, num_classes])
    return g
