"""1-D Conv / MaxPool / AveragePool / ConvTranspose (a 3-D ``[N, C, L]`` input) as the 2-D
ops with H = 1 in one NHWC layout (``widen-1d`` + ``to-nhwc``), end to end
(``tests/ops_harness.py``): float ``.tflite`` in LiteRT vs onnxruntime, int8 in TFLite-Micro
vs our integer interpreter, C vs our interpreter and the int8 TRANSPOSE_CONV (2-D;
TFLite-Micro == interpreter == C). The depthwise convolution has a bias: an int8 one
without is the bias-free-convolution item of issue 9, handled elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from microlith.diagnostics import MicrolithError
from tests.ops_harness import builtins, check_float, check_int8, save_model

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(6)


def _xs(n: int) -> np.ndarray:
    return RNG.uniform(-1, 1, (n, 2, 16)).astype(np.float32)


def test_conv1d_pools(tmp_path: Path) -> None:
    inits = {"w": (RNG.standard_normal((4, 2, 3)) * 0.5).astype(np.float32),
             "b": RNG.uniform(-0.2, 0.2, 4).astype(np.float32),
             "w2": (RNG.standard_normal((4, 1, 5)) * 0.5).astype(np.float32),
             "b2": RNG.uniform(-0.2, 0.2, 4).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["m"], name="max", kernel_shape=[2],
                              strides=[2]),
             helper.make_node("Conv", ["m", "w2", "b2"], ["d"], name="depthwise", group=4,
                              pads=[2, 2], dilations=[1], strides=[1]),
             helper.make_node("AveragePool", ["d"], ["y"], name="avg", kernel_shape=[3],
                              strides=[1], pads=[1, 1], count_include_pad=0)]
    path = save_model(tmp_path / "conv1d.onnx", nodes, (1, 2, 16), inits)
    result = check_float(path, _xs(8))
    # one layout for the whole chain (NHWC, H = 1): a RESHAPE at each end, no TRANSPOSE
    assert builtins(result.output) == ["RESHAPE", "CONV_2D", "MAX_POOL_2D",
                                       "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE"]
    assert result.graph.inputs[0].shape == (1, 16, 2)  # [N, L, C], as Keras' Conv1D
    check_int8(path, _xs(64), _xs(16), tmp_path)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_conv1d_torch_stack(tmp_path: Path) -> None:
    """A PyTorch Conv1d stack (BatchNorm1d, ReLU, a residual Add, MaxPool1d, a strided
    Conv1d, mean over L, Linear), exported with ``dynamo=False``: BatchNorm folded, ReLUs
    fused, zero TRANSPOSE (26 ops before ``widen-1d``, 9 now); float, int8 and C exact."""
    torch = pytest.importorskip("torch")
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1, self.bn = nn.Conv1d(3, 8, 5, padding=2, bias=False), nn.BatchNorm1d(8)
            self.c2, self.pool = nn.Conv1d(8, 8, 3, padding=1), nn.MaxPool1d(2)
            self.c3, self.fc = nn.Conv1d(8, 6, 3, stride=2), nn.Linear(6, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.bn(self.c1(x)))
            h = self.pool(h + torch.relu(self.c2(h)))
            return self.fc(torch.relu(self.c3(h)).mean(dim=2))

    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.bn.running_mean.uniform_(-0.2, 0.2)
        net.bn.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "stack.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 32),), str(path), dynamo=False, opset_version=17)
    xs = RNG.uniform(-1, 1, (8, 3, 32)).astype(np.float32)
    ops = builtins(check_float(path, xs).output)
    assert ops == ["RESHAPE", "CONV_2D", "CONV_2D", "ADD", "MAX_POOL_2D", "CONV_2D", "RESHAPE",
                   "MEAN", "FULLY_CONNECTED"]
    check_int8(path, RNG.uniform(-1, 1, (64, 3, 32)).astype(np.float32), xs, tmp_path)


def test_conv1d_layout_must_not_fire(tmp_path: Path) -> None:
    """An input also read by a non-1-D op keeps its ``[N, C, L]`` interface; a Softmax over
    channels between two 1-D convs (an axis op) is not moved into the 2-D form -- the
    results stay exact either way."""
    inits = {"w": (RNG.standard_normal((2, 2, 3)) * 0.5).astype(np.float32),
             "w2": (RNG.standard_normal((2, 2, 3)) * 0.5).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1]),
             helper.make_node("Softmax", ["c"], ["s"], name="softmax", axis=1),
             helper.make_node("Conv", ["s", "w2"], ["d"], name="conv2", pads=[1, 1]),
             helper.make_node("Add", ["d", "x"], ["y"], name="residual")]
    path = save_model(tmp_path / "mixed.onnx", nodes, (1, 2, 16), inits)
    result = check_float(path, _xs(4))
    assert result.graph.inputs[0].shape == (1, 2, 16)
    assert builtins(result.output).count("CONV_2D") == 2
    check_int8(path, _xs(32), _xs(6), tmp_path)


def test_conv_transpose1d_float(tmp_path: Path) -> None:
    w = (RNG.standard_normal((2, 3, 4)) * 0.5).astype(np.float32)
    path = save_model(tmp_path / "deconv1d.onnx", [
        helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="deconv", strides=[2],
                         kernel_shape=[4])], (1, 2, 16), {"w": w})
    assert "TRANSPOSE_CONV" in builtins(check_float(path, _xs(4)).output)


@pytest.mark.parametrize("kernel, strides, bias", [((2, 2), (2, 2), True),
                                                   ((3, 2), (2, 1), False)])
def test_conv_transpose_int8(tmp_path: Path, kernel: tuple, strides: tuple, bias: bool) -> None:
    """TRANSPOSE_CONV in int8: TFLite-Micro == our interpreter == C."""
    w = (RNG.standard_normal((4, 3, *kernel)) * 0.4).astype(np.float32)
    inits = {"w0": (RNG.standard_normal((4, 2, 3, 3)) * 0.4).astype(np.float32), "w": w}
    inputs = ["c", "w"]
    if bias:
        inits["b"] = RNG.uniform(-0.3, 0.3, 3).astype(np.float32)
        inputs.append("b")
    path = save_model(tmp_path / "deconv.onnx", [
        helper.make_node("Conv", ["x", "w0"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", inputs, ["y"], name="deconv", strides=list(strides),
                         kernel_shape=list(kernel))], (1, 2, 5, 4), inits)
    xs = RNG.uniform(-1, 1, (16, 2, 5, 4)).astype(np.float32)
    assert "TRANSPOSE_CONV" in builtins(check_float(path, xs[:4]).output)
    int8 = check_int8(path, RNG.uniform(-1, 1, (64, 2, 5, 4)).astype(np.float32), xs, tmp_path)
    assert "TRANSPOSE_CONV" in builtins(int8.output)


@pytest.mark.parametrize("group, kernel, stride, pads, output_padding", [
    (1, 3, 2, (1, 1, 1, 1), (1, 1)),  # PyTorch's ConvTranspose2d(3, stride 2, padding 1, out 1)
    (1, 4, 2, (1, 1, 1, 1), (0, 0)),
    (1, 3, 1, (0, 2, 1, 0), (0, 0)),  # asymmetric
    (2, 3, 2, (1, 1, 1, 1), (1, 1)),
    (4, 2, 2, (0, 0, 0, 0), (0, 0)),
])
def test_conv_transpose_pads_groups(tmp_path: Path, group: int, kernel: int, stride: int,
                                    pads: tuple, output_padding: tuple) -> None:
    """Pads (and an output_padding within the end pads) crop a VALID TRANSPOSE_CONV with a
    STRIDED_SLICE; groups become SPLIT + one TRANSPOSE_CONV per group + CONCATENATION (no
    TRANSPOSE). Float: LiteRT vs onnxruntime; int8: TFLite-Micro == interpreter == C."""
    inits = {"w0": (RNG.standard_normal((4, 2, 3, 3)) * 0.4).astype(np.float32),
             "w": (RNG.standard_normal((4, 3, kernel, kernel)) * 0.4).astype(np.float32),
             "b": RNG.uniform(-0.3, 0.3, 3 * group).astype(np.float32)}
    path = save_model(tmp_path / "deconv.onnx", [
        helper.make_node("Conv", ["x", "w0"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["c", "w", "b"], ["y"], name="deconv",
                         strides=[stride, stride], kernel_shape=[kernel, kernel],
                         pads=list(pads), output_padding=list(output_padding), group=group)],
        (1, 2, 5, 4), inits)
    xs = RNG.uniform(-1, 1, (12, 2, 5, 4)).astype(np.float32)
    ops = builtins(check_float(path, xs[:4]).output)
    assert ops.count("TRANSPOSE_CONV") == group and "TRANSPOSE" not in ops
    assert ("STRIDED_SLICE" in ops) == any(pads)
    assert ("SPLIT" in ops) == (group > 1)
    check_int8(path, RNG.uniform(-1, 1, (64, 2, 5, 4)).astype(np.float32), xs, tmp_path)


def test_conv_transpose_bad_forms(tmp_path: Path) -> None:
    """output_padding past the end pads (rows of bias only) and a group that does not
    divide the channels (ONNX shape inference finds it first): one-line errors naming the
    node."""
    w = (RNG.standard_normal((2, 3, 3, 3)) * 0.4).astype(np.float32)
    bias_rows = save_model(tmp_path / "rows.onnx", [
        helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="deconv", strides=[2, 2],
                         output_padding=[1, 1])], (1, 2, 5, 4), {"w": w})
    with pytest.raises(MicrolithError, match=r"deconv \(ConvTranspose\): output_padding "
                                             r"\[1, 1\] beyond the end pads"):
        check_float(bias_rows, RNG.uniform(-1, 1, (2, 2, 5, 4)).astype(np.float32))
    odd = save_model(tmp_path / "odd.onnx", [
        helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="deconv3", group=3)],
        (1, 2, 5, 4), {"w": w})
    with pytest.raises(MicrolithError, match="deconv3.*divisible by group"):  # onnx says so
        check_float(odd, RNG.uniform(-1, 1, (2, 2, 5, 4)).astype(np.float32))


def test_conv_transpose1d_pads_groups(tmp_path: Path) -> None:
    """A 1-D grouped ConvTranspose with pads and output_padding after a Conv1d: one NHWC
    layout (RESHAPE at each end only), float and int8 exact."""
    inits = {"w0": (RNG.standard_normal((4, 2, 3)) * 0.4).astype(np.float32),
             "w": (RNG.standard_normal((4, 3, 3)) * 0.4).astype(np.float32),
             "b": RNG.uniform(-0.3, 0.3, 6).astype(np.float32)}
    path = save_model(tmp_path / "deconv1d.onnx", [
        helper.make_node("Conv", ["x", "w0"], ["c"], name="conv", pads=[1, 1]),
        helper.make_node("ConvTranspose", ["c", "w", "b"], ["y"], name="deconv", strides=[2],
                         kernel_shape=[3], pads=[1, 1], output_padding=[1], group=2)],
        (1, 2, 9), inits)
    xs = RNG.uniform(-1, 1, (12, 2, 9)).astype(np.float32)
    want = ["RESHAPE", "CONV_2D", "SPLIT", "TRANSPOSE_CONV", "STRIDED_SLICE", "TRANSPOSE_CONV",
            "STRIDED_SLICE", "CONCATENATION", "RESHAPE"]
    assert builtins(check_float(path, xs[:4]).output) == want
    int8 = check_int8(path, RNG.uniform(-1, 1, (64, 2, 9)).astype(np.float32), xs, tmp_path)
    assert builtins(int8.output) == want
