"""Models exported live by PyTorch 2.13, with its default (dynamo) exporter and with
``dynamo=False``, compile unmodified.

The default exporter writes ``Reshape(allowzero=1)``, opset 18+ forms and its weights
as external data beside the model (``model.onnx.data``). Each net is trained briefly on
scikit-learn's digits (8x8), exported both ways, and compiled:

* float ``.tflite``: LiteRT's outputs equal onnxruntime's within 1e-4;
* int8 ``.tflite``: TFLite-Micro runs it, and its top-1 agrees with the float model's on
  the 450 held-out digits (>= 95 %).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import parse_model
from tools.digits import load_digits_split
from tools.runtimes import (
    input_perm,
    ort_outputs,
    ort_session,
    quantize_input,
    run_litert,
    run_tflm,
    to_physical,
    top1,
)

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")  # the dynamo exporter's dependency
pytest.importorskip("tflite_micro")
nn = torch.nn


class BiasFreeNet(nn.Module):
    """Bias-free Conv2d (no BatchNorm after it), Hardswish, PReLU, flatten + Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.act1 = nn.Hardswish()
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False)
        self.act2 = nn.PReLU(8)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.fc(torch.flatten(x, 1))


class PoolNet(nn.Module):
    """Two Conv + ReLU, global mean (``x.mean((2, 3))``: ReduceMean with axes as an input),
    a view (``Reshape``) and a Linear. (With one convolution before the mean the float net
    reached only 56% accuracy on the held-out digits, and its int8 top-1 agreement, 94.7-95.1%
    depending on the machine's float rounding in training, sat on the 95% bound; with two,
    92% and 98.9-99.1%.)"""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv(x))))
        return self.fc(x.mean((2, 3)).view(x.shape[0], -1))


NETS = {"biasfree": BiasFreeNet, "pool": PoolNet}


def _train(model: nn.Module, x: np.ndarray, y: np.ndarray) -> None:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(15):
        for start in range(0, len(xs), 64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xs[start:start + 64]),
                                        ys[start:start + 64]).backward()
            opt.step()
    model.eval()


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x_train, y_train, x_test, _ = load_digits_split(8, "NCHW")
    return x_train, y_train, x_test


@pytest.fixture(scope="module", params=[(n, d) for n in NETS for d in (True, False)],
                ids=[f"{n}-{'dynamo' if d else 'torchscript'}" for n in NETS
                     for d in (True, False)])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             digits: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Path:
    name, dynamo = request.param
    torch.manual_seed(0)
    model = NETS[name]()
    _train(model, digits[0], digits[1])
    path = tmp_path_factory.mktemp(name) / "model.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=dynamo,
                          verbose=False)
    return path


def test_dynamo_export_uses_the_forms_we_import(tmp_path: Path) -> None:
    """The exporter still writes what this file is about: allowzero=1 and external data."""
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(BiasFreeNet().eval(), (torch.zeros(1, 1, 8, 8),), str(path),
                          dynamo=True, verbose=False)
    model = onnx.load(str(path), load_external_data=False)
    reshapes = [n for n in model.graph.node if n.op_type == "Reshape"]
    assert reshapes and all(onnx.helper.get_attribute_value(a) == 1 for n in reshapes
                            for a in n.attribute if a.name == "allowzero")
    assert (tmp_path / "model.onnx.data").exists()
    assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert compile_onnx(path, CompileOptions(quiet=True)).output


@pytest.mark.slow
def test_float_tflite_matches_onnxruntime(exported: Path,
                                          digits: tuple[np.ndarray, np.ndarray, np.ndarray]
                                          ) -> None:
    result = compile_onnx(exported, CompileOptions(quiet=True))
    xs = digits[2][:64]
    reference = ort_outputs(ort_session(exported), xs)
    got = run_litert(result.output, to_physical(xs, input_perm(result.graph)))
    assert np.abs(got - reference).max() <= 1e-4


@pytest.mark.slow
def test_int8_tflite_runs_in_tflm_and_agrees_with_float(
        exported: Path, digits: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    x_train, _, x_test = digits
    result = compile_onnx(exported, CompileOptions(quantize="int8", quiet=True,
                                                   calibration_data=x_train[:200]))
    q = result.graph.inputs[0].quant
    xq = quantize_input(to_physical(x_test, input_perm(result.graph)), q.scale[0],
                        q.zero_point[0])
    int8_top1 = top1(run_tflm(result.output, xq))
    float_top1 = top1(ort_outputs(ort_session(exported), x_test))
    assert (int8_top1 == float_top1).mean() >= 0.95
    # LiteRT loads the bias-free convolutions (each got a zero int32 bias) and runs them
    assert (top1(run_litert(result.output, xq)) == float_top1).mean() >= 0.95
    ops = [op.op for op in parse_model(result.output).operators]
    assert "RESHAPE" not in ops  # FULLY_CONNECTED flattens; MEAN drops its axes
    convs = [op for op in parse_model(result.output).operators if op.op == "CONV_2D"]
    assert convs and all(len(op.inputs) == 3 and op.inputs[2] >= 0 for op in convs)
