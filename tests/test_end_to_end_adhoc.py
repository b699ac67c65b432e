"""End to end on models built in the tests: ONNX -> default pipeline -> float .tflite.

An activation after a Concat (``fuse-activation`` folds it into the Concat, but TFLite's
CONCATENATION cannot carry it) runs in LiteRT and TFLite-Micro; a slow test exports a
fresh torch model and checks LiteRT against torch.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import parse_model
from tests.float_e2e import (
    ATOL_ORT,
    ATOL_TFLM,
    _no_warnings,
    op_budget,
)
from tools.runtimes import (
    litert_interpreter,
    litert_invoke,
    tflm_interpreter,
    tflm_invoke,
    to_physical,
)

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert.interpreter")
pytest.importorskip("tflite_micro.python.tflite_micro.runtime")


# ------------------------------------------------------------------- activation after Concat


@pytest.mark.parametrize("act", ["Relu", "Relu6", "ReluN1To1"])
def test_activation_after_concat_runs_in_litert_and_tflm(tmp_path: Path, act: str) -> None:
    """fuse-activation folds Relu/Clip into Concat; TFLite's CONCATENATION cannot carry it."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
             for name, shape in (("wa", (4, 3, 3, 3)), ("wb", (2, 3, 1, 1)))]
    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "wb"], ["b"], name="conv_b"),
             helper.make_node("Concat", ["a", "b"], ["ab"], name="concat", axis=1)]
    if act == "Relu":
        nodes.append(helper.make_node("Relu", ["ab"], ["y"], name="act"))
    else:
        low, high = (0.0, 6.0) if act == "Relu6" else (-1.0, 1.0)
        inits += [numpy_helper.from_array(np.array(low, np.float32), "lo"),
                  numpy_helper.from_array(np.array(high, np.float32), "hi")]
        nodes.append(helper.make_node("Clip", ["ab", "lo", "hi"], ["y"], name="act"))
    graph = helper.make_graph(
        nodes, "concat_act", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 6, 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "concat_act.onnx"
    onnx.save(model, str(path))

    result = compile_onnx(path, CompileOptions(warn=_no_warnings))
    tfl = parse_model(result.output)
    for op in tfl.operators:
        if op.op == "CONCATENATION":
            assert op.options.get("fused_activation_function", "NONE") == "NONE"
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32) * 3
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    perms = result.graph.meta["io_perms"]
    expected = to_physical(session.run(None, {"x": x})[0], perms.get("y"))
    x_phys = to_physical(x, perms.get("x"))
    got = litert_invoke(litert_interpreter(result.output), x_phys)
    np.testing.assert_allclose(got, expected, atol=ATOL_ORT, rtol=0)
    micro = tflm_invoke(tflm_interpreter(result.output), x_phys)
    np.testing.assert_allclose(micro, got, atol=ATOL_TFLM, rtol=0)


# --------------------------------------------------------------------------- live torch model


@pytest.mark.slow
def test_live_torch_model(tmp_path: Path) -> None:
    """Conv+BN+ReLU6, depthwise+BN+ReLU6, pointwise, GlobalAvgPool, Linear: LiteRT vs torch."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from tools.make_zoo import export_torch_model

    torch.manual_seed(0)

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                                      nn.BatchNorm2d(8), nn.ReLU6())
            self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
                                    nn.BatchNorm2d(8), nn.ReLU6())
            self.pw = nn.Sequential(nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), nn.ReLU6())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(16, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(self.pool(self.pw(self.dw(self.stem(x)))), 1))

    model = Tiny()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics, so folding matters
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    shape = (1, 3, 18, 18)  # even size: the stride-2 stem needs an explicit PAD
    path = tmp_path / "tiny.onnx"
    proto = export_torch_model(model, shape, path)
    onnx_ops = Counter(n.op_type for n in proto.graph.node)
    assert onnx_ops["BatchNormalization"] == 3 and onnx_ops["Clip"] == 3

    result = compile_onnx(path, CompileOptions(warn=_no_warnings))
    tfl = parse_model(result.output)
    ops = Counter(op.op for op in tfl.operators)
    assert ops["CONV_2D"] == 2 and ops["DEPTHWISE_CONV_2D"] == 1 and ops["PAD"] == 1, ops
    assert "TRANSPOSE" not in ops
    assert len(tfl.operators) <= op_budget(proto)[0]
    interp = litert_interpreter(result.output)
    perm = result.graph.meta["io_perms"]["input"]
    xs = torch.from_numpy(np.random.default_rng(5).standard_normal((20, *shape[1:]),
                                                                  dtype=np.float32))
    worst = 0.0
    with torch.no_grad():
        for x in xs:
            expected = model(x[None]).numpy()
            got = litert_invoke(interp, to_physical(x[None].numpy(), perm))
            worst = max(worst, float(np.abs(got - expected).max()))
    assert worst <= ATOL_ORT, f"LiteRT vs torch max abs diff {worst:.3g}"
