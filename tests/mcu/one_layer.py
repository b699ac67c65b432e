"""One-layer ONNX models for the Cortex-M kernel tests: a Conv or Gemm with random weights
and bias (seeded by the case name), optionally followed by a Relu."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# (input shape, op, attributes, weight shape, relu after)
Case = tuple[tuple[int, ...], str, dict, tuple[int, ...], bool]


def one_layer_model(path: Path, name: str, case: Case) -> Path:
    """Write ``path/name.onnx``: x -> op(x, w, b) [-> Relu] -> y."""
    shape, op, attrs, w_shape, relu = case
    rng = np.random.default_rng(sum(name.encode()))
    w = (rng.standard_normal(w_shape) * 0.4).astype(np.float32)
    b = (rng.standard_normal(w_shape[0]) * 0.2).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")]
    out = "y" if not relu else "t"
    nodes = [helper.make_node(op, ["x", "w", "b"], [out], name="layer", **attrs)]
    if relu:
        nodes.append(helper.make_node("Relu", ["t"], ["y"], name="relu"))
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    file = path / f"{name}.onnx"
    onnx.save(model, file)
    return file


def edited_copy(directory: Path, edit: str, tmp_path: Path) -> Path:
    """A copy of the generated C with every layer record edited: ``rq_null`` drops the
    SMMLAR requantization table (the kernels' general MBQM), ``narrow`` sets the activation
    bounds to [max(lo, -100), min(hi, 90)] (the clamp after SSAT)."""
    out = tmp_path / f"c_{edit}"
    out.mkdir()
    for file in directory.iterdir():
        text = file.read_text()
        if file.name == "model.c":
            if edit == "rq_null":
                text, count = re.subn(r"\.rq = \w+,", ".rq = NULL,", text)
            else:
                text, count = re.subn(
                    r"\.act_min = (-?\d+),\s*\.act_max = (-?\d+),",
                    lambda m: f".act_min = {max(int(m[1]), -100)}, "
                              f".act_max = {min(int(m[2]), 90)},", text)
            assert count, f"no record to edit ({edit})"
        (out / file.name).write_text(text)
    return out
