"""Resize (nearest and linear, the coordinate modes PyTorch and TF exporters write) end to
end after a convolution (``tests/ops_harness.py``): float ``.tflite`` in LiteRT vs
onnxruntime, int8 in TFLite-Micro vs our integer interpreter, C vs our interpreter; a
sampling no TFLite resize reproduces is refused with the reason. One-op int8 models pin
RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR for every flag pair against TFLite-Micro."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from microlith.diagnostics import MicrolithError
from tests.ops_harness import builtins, check_float, check_int8, save_model

pytest.importorskip("tflite_micro")
RNG = np.random.default_rng(3)
W = (RNG.standard_normal((3, 2, 3, 3)) * 0.4).astype(np.float32)


def _xs(n: int) -> np.ndarray:
    return RNG.uniform(-1, 1, (n, 2, 4, 5)).astype(np.float32)


def _model(tmp_path: Path, name: str, scales: tuple | None, sizes: tuple | None,
           **attrs: object) -> Path:
    inputs = ["c", "", "scales", "sizes"] if sizes else ["c", "", "scales"]
    inits = {"w": W, "scales": np.array(scales or [], np.float32)}
    if sizes:
        inits["sizes"] = np.array(sizes, np.int64)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Resize", inputs, ["y"], name="resize", **attrs)]
    return save_model(tmp_path / f"{name}.onnx", nodes, (1, 2, 4, 5), inits)


CASES = [
    ("nearest_torch", (1, 1, 2, 2), None, {"mode": "nearest", "nearest_mode": "floor",
                                           "coordinate_transformation_mode": "asymmetric"}),
    ("nearest_half", None, (1, 3, 8, 10), {"mode": "nearest"}),
    ("nearest_down", None, (1, 3, 2, 5), {"mode": "nearest"}),
    ("linear_torch", (1, 1, 2, 2), None, {"mode": "linear",
                                          "coordinate_transformation_mode": "pytorch_half_pixel"}),
    ("linear_half", None, (1, 3, 6, 7), {"mode": "linear"}),
    ("linear_corners", None, (1, 3, 7, 9), {"mode": "linear",
                                            "coordinate_transformation_mode": "align_corners"}),
    ("linear_asym", (1, 1, 3, 2), None, {"mode": "linear",
                                         "coordinate_transformation_mode": "asymmetric"}),
]


@pytest.mark.parametrize("name, scales, sizes, attrs", CASES, ids=[c[0] for c in CASES])
def test_resize(tmp_path: Path, name: str, scales: tuple | None, sizes: tuple | None,
                attrs: dict) -> None:
    path = _model(tmp_path, name, scales, sizes, **attrs)
    ops = builtins(check_float(path, _xs(6)).output)
    assert ("RESIZE_NEAREST_NEIGHBOR" if attrs["mode"] == "nearest" else "RESIZE_BILINEAR") in ops
    assert "TRANSPOSE" not in ops[:-1]
    check_int8(path, _xs(64), _xs(12), tmp_path)


def test_resize_without_tflite_equivalent_is_refused(tmp_path: Path) -> None:
    """scale 1.5 on 4 rows gives 6 rows: TFLite would sample with 4/6, ONNX with 1/1.5 --
    equal; 1.3 on 5 columns gives 6 columns sampled with 1/1.3, not 5/6: refused."""
    path = _model(tmp_path, "odd", (1, 1, 1.5, 1.3), None, mode="linear")
    with pytest.raises(MicrolithError, match="samples differently"):
        check_float(path, _xs(2))


@pytest.mark.parametrize("op", ["RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"])
def test_one_op_resize_matches_tflm(op: str) -> None:
    from tflite_micro.python.tflite_micro import runtime

    from microlith.formats.tflite.flatbuffer import (
        TflModel,
        TflOperator,
        TflQuant,
        TflTensor,
        serialize_model,
    )
    from microlith.ops.resize import tflite_nearest
    from microlith.quant.resize import ResizeParams, integer_taps, run_resize

    for h, w, oh, ow in [(3, 4, 6, 8), (4, 4, 7, 5), (5, 3, 2, 9), (1, 2, 3, 3), (6, 6, 3, 3)]:
        for align, half in ((False, False), (False, True), (True, False)):
            x = RNG.integers(-128, 128, (1, h, w, 3)).astype(np.int8)
            q = TflQuant([0.05], [3])
            size = np.array([oh, ow], np.int32).tobytes()
            tensors = [TflTensor("x", [1, h, w, 3], "int8", None, q),
                       TflTensor("size", [2], "int32", size, None),
                       TflTensor("y", [1, oh, ow, 3], "int8", None, q)]
            options = {"align_corners": align, "half_pixel_centers": half}
            data = serialize_model(TflModel(tensors, [TflOperator(op, [0, 1], [2], options, 1)],
                                            [0], [2]))
            interp = runtime.Interpreter.from_bytes(data, arena_size=1 << 16)
            interp.set_input(x, 0)
            interp.invoke()
            if op == "RESIZE_BILINEAR":
                p = ResizeParams(1, integer_taps(oh, h, align, half),
                                 integer_taps(ow, w, align, half))
            else:
                p = ResizeParams(0, *(tuple((int(i), int(i), 0) for i in tflite_nearest(
                    o, n, align, half)) for o, n in ((oh, h), (ow, w))))
            assert np.array_equal(interp.get_output(0), run_resize(p, [x])[0]), (h, w, oh, ow)
