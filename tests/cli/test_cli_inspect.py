"""``microlith inspect`` on ``.tflite`` and ONNX files: every number it prints is
recomputed here from the file (op histogram, parameter bytes, peak activation bytes)
or computed by hand.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from microlith.formats.tflite.flatbuffer import TflModel, parse_model
from tests.cli.clikit import (
    ZOO,
    dynamic_model,
    fail_in,
    run,
)

# --------------------------------------------------------------------------- inspect


def parse_inspect(text: str) -> dict[str, object]:
    lines = text.splitlines()
    head = re.match(r"^(.+): (onnx|tflite), (\d+) ops, (\d+) tensors$", lines[0])
    assert head, lines[0]
    ops: dict[str, int] = {}
    macs: dict[str, int] = {}
    header = next(i for i, line in enumerate(lines) if line.startswith("ops:"))
    assert lines[header].split() == ["ops:", "count", "MACs"], lines[header]
    at = header + 1
    while lines[at].startswith("  "):
        op, count, op_macs = lines[at].split()
        ops[op], macs[op] = int(count), int(op_macs.replace(",", ""))
        at += 1
    total = re.match(r"^MACs: ([\d,]+)$", lines[at])
    assert total and int(total[1].replace(",", "")) == sum(macs.values()), lines[at]
    at += 1
    params = re.match(r"^parameter bytes: ([\d,]+)$", lines[at])
    peak = re.match(r"^peak activation bytes \(estimate\): ([\d,]+) at op (\d+) \((.+)\)$",
                    lines[at + 1])
    assert params and peak, lines[at:at + 2]
    tensors = []
    if "tensors:" in lines:
        tensors = [line.split() for line in lines[lines.index("tensors:") + 1:]]
    io = [line.strip() for line in lines[1:header]]
    return {"kind": head[2], "n_ops": int(head[3]), "n_tensors": int(head[4]), "ops": ops,
            "macs": macs,
            "params": int(params[1].replace(",", "")),
            "peak": int(peak[1].replace(",", "")), "peak_at": int(peak[2]),
            "peak_op": peak[3], "tensors": tensors, "io": io}


def peak_activation(steps: list[tuple[list[str], list[str]]], sizes: dict[str, int],
                    inputs: list[str], outputs: list[str]) -> tuple[int, int]:
    """Largest sum of live activation bytes at one op (first such op), recomputed here."""
    born = {t: 0 for t in inputs}
    dies = {t: 0 for t in inputs}
    for index, (ins, outs) in enumerate(steps):
        for t in outs:
            born.setdefault(t, index)
            dies[t] = index
        for t in ins:
            dies[t] = max(dies.get(t, index), index)
    for t in outputs:
        dies[t] = len(steps) - 1
    totals = [sum(sizes[t] for t in born if born[t] <= i <= dies[t]) for i in range(len(steps))]
    best = max(totals)
    return best, totals.index(best)


def tflite_peak(model: TflModel) -> tuple[int, int]:
    const = {i for i, t in enumerate(model.tensors) if t.data is not None}
    sizes = {str(i): int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize
             for i, t in enumerate(model.tensors)}
    steps = [([str(i) for i in op.inputs if i >= 0 and i not in const],
              [str(o) for o in op.outputs]) for op in model.operators]
    return peak_activation(steps, sizes, [str(i) for i in model.inputs],
                           [str(o) for o in model.outputs])


@pytest.mark.parametrize("name", ["lenet", "dscnn", "mobilenet_v1", "helper_ops"])
def test_inspect_tflite_numbers(work: Path, name: str) -> None:
    out = work / f"{name}.tflite"
    assert run("compile", ZOO / f"{name}.onnx", "-o", out.name, "-q", cwd=work).returncode == 0
    proc = run("inspect", out.name, "--tensors", cwd=work)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    report = parse_inspect(proc.stdout)
    model = parse_model(out.read_bytes())
    assert report["kind"] == "tflite"
    assert report["n_ops"] == len(model.operators)
    assert report["n_tensors"] == len(model.tensors)
    assert report["ops"] == dict(Counter(op.op for op in model.operators))
    assert report["params"] == sum(len(t.data) for t in model.tensors if t.data is not None)
    peak, at = tflite_peak(model)
    assert (report["peak"], report["peak_at"], report["peak_op"]) == (
        peak, at, model.operators[at].op)
    tin, tout = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    assert report["io"] == [f"input  {tin.name}: {tin.dtype} {tin.shape}",
                            f"output {tout.name}: {tout.dtype} {tout.shape}"]
    rows = {row[0]: row for row in report["tensors"]}
    assert len(report["tensors"]) == len(model.tensors)
    for tensor in model.tensors:
        row = rows[tensor.name]
        assert row[1] == tensor.dtype
        assert row[2] == ("x".join(map(str, tensor.shape)) or "scalar")


def test_inspect_tflite_hand_computed_lenet(work: Path) -> None:
    """Anchors computed by hand, independent of any liveness code."""
    assert run("compile", ZOO / "lenet.onnx", "-o", "l.tflite", "-q", cwd=work).returncode == 0
    report = parse_inspect(run("inspect", "l.tflite", cwd=work).stdout)
    # conv 6x1x5x5+6, conv 16x6x5x5+16, fc 64x64+64, fc 10x64+10 floats (no reshape: the
    # first FULLY_CONNECTED flattens its input itself)
    assert report["params"] == 4 * (156 + 2416 + 4160 + 650)
    # MAX_POOL_2D reads the 16x16x6 conv output (6144 B) and writes 8x8x6 (1536 B).
    assert (report["peak"], report["peak_at"], report["peak_op"]) == (7680, 1, "MAX_POOL_2D")
    assert report["io"] == ["input  input: float32 [1, 16, 16, 1]",
                            "output logits: float32 [1, 10]"]


@pytest.mark.parametrize("name", ["lenet", "dscnn", "mobilenet_v1", "resnet8"])
def test_inspect_onnx_numbers(work: Path, name: str) -> None:
    proc = run("inspect", ZOO / f"{name}.onnx", "--tensors", cwd=work)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    report = parse_inspect(proc.stdout)
    model = onnx.load(str(ZOO / f"{name}.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t)
              for n in model.graph.node if n.op_type == "Constant"}
    # Constant nodes and Identity-of-an-initializer are values, not ops, once imported.
    ops = [n for n in model.graph.node if n.op_type != "Constant"
           and not (n.op_type == "Identity" and n.input[0] in inits)]
    assert report["kind"] == "onnx"
    assert report["ops"] == dict(Counter(n.op_type for n in ops))
    assert report["n_ops"] == len(ops)
    assert report["params"] == sum(a.nbytes for a in [*inits.values(), *consts.values()])
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in
              [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}
    sizes = {k: 4 * int(np.prod(v)) for k, v in shapes.items()}
    steps = [([i for i in n.input if i in shapes], list(n.output)) for n in ops]
    peak, at = peak_activation(steps, sizes, [i.name for i in model.graph.input],
                               [o.name for o in model.graph.output])
    assert (report["peak"], report["peak_at"], report["peak_op"]) == (peak, at, ops[at].name)
    rows = {row[0]: row for row in report["tensors"]}
    for init_name, array in inits.items():
        assert rows[init_name][1:3] == [str(array.dtype), "x".join(map(str, array.shape))]
    assert report["io"] == ["input  input: float32 [1, 1, 16, 16]",
                            "output logits: float32 [1, 10]"]


def test_inspect_onnx_hand_computed_lenet(work: Path) -> None:
    report = parse_inspect(run("inspect", ZOO / "lenet.onnx", cwd=work).stdout)
    # BN after the first conv: 6x16x16 float in + 6x16x16 float out.
    assert (report["peak"], report["peak_at"], report["peak_op"]) == (
        12288, 1, "/1/BatchNormalization")
    assert report["ops"] == {"AveragePool": 1, "BatchNormalization": 2, "Conv": 2,
                             "Flatten": 1, "Gemm": 2, "MaxPool": 1, "Relu": 3}


def test_inspect_dynamic_onnx_follows_its_own_advice(work: Path) -> None:
    """The error tells the user to pass --input-shape; inspect must accept it."""
    dynamic_model(work / "dyn.onnx")
    line, _ = fail_in(work, "inspect", "dyn.onnx")
    assert "'image'" in line and "--input-shape image=" in line
    proc = run("inspect", "dyn.onnx", "--input-shape", "image=1,3,10,12", cwd=work)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    report = parse_inspect(proc.stdout)
    assert report["io"] == ["input  image: float32 [1, 3, 10, 12]",
                            "output features: float32 [1, 4, 10, 12]"]
    assert report["params"] == 4 * (4 * 3 * 3 * 3 + 4)
    # Conv: 3x10x12 in + 4x10x12 out; Relu: 4x10x12 in and out.
    assert (report["peak"], report["peak_at"]) == (4 * 10 * 12 * 4 * 2, 1)


def test_inspect_macs_hand_computed_lenet(work: Path) -> None:
    """MACs per op from the shapes: conv 16x16x6 outputs x 5x5x1, conv 4x4x16 (valid, on
    8x8) x 5x5x6, fc 64 x 64 and 10 x 64; .onnx and .tflite agree; --json has every op."""
    import json

    assert run("compile", ZOO / "lenet.onnx", "-o", "l.tflite", "-q", cwd=work).returncode == 0
    expected = 16 * 16 * 6 * 25 + 4 * 4 * 16 * 150 + 64 * 64 + 10 * 64
    tfl = parse_inspect(run("inspect", "l.tflite", cwd=work).stdout)
    assert tfl["macs"]["CONV_2D"] == 16 * 16 * 6 * 25 + 4 * 4 * 16 * 150
    assert sum(tfl["macs"].values()) == expected
    onnx_report = parse_inspect(run("inspect", ZOO / "lenet.onnx", cwd=work).stdout)
    assert sum(onnx_report["macs"].values()) == expected
    proc = run("inspect", "l.tflite", "--json", cwd=work)
    doc = json.loads(proc.stdout)
    assert doc["macs"] == expected and doc["format"] == "tflite" and "tensors" not in doc
    assert [op["op"] for op in doc["ops"]] == [op.op for op in
                                              parse_model((work / "l.tflite").read_bytes())
                                              .operators]
    assert doc["ops"][0]["macs"] == 16 * 16 * 6 * 25
    with_tensors = json.loads(run("inspect", "l.tflite", "--json", "--tensors",
                                  cwd=work).stdout)
    assert len(with_tensors["tensors"]) == tfl["n_tensors"]
