"""Q/DQ versions of the zoo models (onnxruntime's ``quantize_static``) and how well microlith
keeps them: the shared part of ``tests/qdq`` and of this benchmark.

``make_qdq`` quantizes a zoo model the way onnxruntime's users do: ``quant_pre_process``
(shape inference and onnxruntime's graph optimizations, which fold BatchNormalization into
Conv), then ``quantize_static`` in QDQ format on the first ``samples`` training digits,
per channel or per tensor, QUInt8 or QInt8 activations, QInt8 weights. ``measure``
compiles the result with no calibration data and compares, on the 450 held-out digits:
top-1 agreement with onnxruntime running the Q/DQ model (which computes in float with
fake quantization), the largest difference of the int8 outputs in LSB (onnxruntime's
float output quantized with the output's scale), and accuracy of both.

    python tools/qdq_zoo.py [--json qdq.json]  # zoo models x 4 QDQ configs + QOperator
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(REPO))

from tools.digits import load_digits_split  # noqa: E402

ZOO = REPO / "tests" / "zoo"
TRAINED = ("lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid")
#: config name -> (per_channel, activation type name)
CONFIGS = {"pc-u8": (True, "QUInt8"), "pc-s8": (True, "QInt8"),
           "pt-u8": (False, "QUInt8"), "pt-s8": (False, "QInt8")}


def digits_for(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The digits split in the layout of zoo model ``name``."""
    if name == "mlp_sigmoid":
        return load_digits_split(8, "flat")
    return load_digits_split(16, "NCHW")


def make_qdq(source: Path, out: Path, calibration: np.ndarray, per_channel: bool,
             activations: str, input_name: str = "input", quant_format: str = "QDQ") -> Path:
    """onnxruntime quantization of ``source`` into ``out`` (QInt8 weights), in ``QDQ`` or
    ``QOperator`` format."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            row = next(self.rows, None)
            return None if row is None else {input_name: row[None]}

    pre = out.with_name(out.stem + "_pre.onnx")
    quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
    quantize_static(str(pre), str(out), Reader(), quant_format=getattr(QuantFormat, quant_format),
                    per_channel=per_channel, activation_type=getattr(QuantType, activations),
                    weight_type=QuantType.QInt8)
    return out


def weight_only_dq(source: Path, out: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``source`` (after ``quant_pre_process``, which folds BatchNorm) with every Conv /
    Gemm weight stored as symmetric per-output-channel int8 behind a DequantizeLinear and
    float activations (the hybrid form tf2onnx writes for TF's dynamic-range models).
    Returns weight name -> (int8 values, float32 scales)."""
    from onnx import helper
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = out.with_name(out.stem + "_pre.onnx")
    quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
    model = onnx.load(str(pre))
    inits = {i.name: i for i in model.graph.initializer}
    done: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    new_nodes = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "Gemm") and node.input[1] in inits and \
                node.input[1] not in done:
            name = node.input[1]
            w = numpy_helper.to_array(inits[name]).astype(np.float64)
            axis = 1 if node.op_type == "Gemm" and not any(
                a.name == "transB" and a.i for a in node.attribute) else 0
            reduce = tuple(i for i in range(w.ndim) if i != axis)
            scales = (np.abs(w).max(axis=reduce) / 127.0).astype(np.float32)
            scales[scales == 0] = 1.0
            shape = [1] * w.ndim
            shape[axis] = -1
            q = np.clip(np.round(w / scales.reshape(shape)), -127, 127).astype(np.int8)
            model.graph.initializer.remove(inits[name])
            model.graph.initializer.extend([
                numpy_helper.from_array(q, name + "_q"),
                numpy_helper.from_array(scales, name + "_scale"),
                numpy_helper.from_array(np.zeros(len(scales), np.int8), name + "_zp")])
            new_nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_scale",
                                                                   name + "_zp"], [name],
                                              name=name + "_dq", axis=axis))
            done[name] = (q, scales)
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(new_nodes + nodes)
    onnx.save(model, str(out))
    return done


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers and ``Constant`` node values (the legacy torch exporter writes those)."""
    out = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            out[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return out


def onnx_activation_params(path: Path) -> dict[str, tuple[float, int, bool]]:
    """Activation tensor -> (scale, zero point as int8, whether an op folded by the
    compiler reads it) of every ``QuantizeLinear`` in the model. A tensor whose
    DequantizeLinear is a graph output is named after that output, as the compiler does."""
    model = onnx.load(str(path))
    inits = _constants(model)
    outputs = {o.name for o in model.graph.output}
    readers: dict[str, list[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node.op_type)
    table: dict[str, tuple[float, int, bool]] = {}
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear":
            continue
        scale = float(inits[node.input[1]].reshape(-1)[0])
        zp = inits[node.input[2]]
        z = int(zp.reshape(-1)[0]) - (128 if zp.dtype == np.uint8 else 0)
        name, folded = node.input[0], False
        for dq in model.graph.node:
            if dq.op_type == "DequantizeLinear" and dq.input[0] == node.output[0]:
                folded |= "BatchNormalization" in readers.get(dq.output[0], [])
                if dq.output[0] in outputs:
                    name = dq.output[0]
        table[name] = (scale, z, folded)
    return table


def qoperator_output_params(path: Path) -> list[tuple[str, float, int]]:
    """(output, scale, zero point as int8) of every quantizing node of a QOperator model:
    QuantizeLinear and the QLinear* / QGemm ops (their output scale and zero point); not
    those dequantized only for a BatchNormalization, which the compiler folds away."""
    from microlith.frontend.importers_qoperator import SPECS

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    folded = {producers[n.input[0]].output[0] for n in model.graph.node
              if n.op_type == "BatchNormalization" and n.input[0] in producers and
              producers[n.input[0]].op_type == "DequantizeLinear"}
    folded = {producers[name].input[0] for name in folded}
    out = []
    for node in model.graph.node:
        if node.output[0] in folded:
            continue
        if node.op_type == "QuantizeLinear":
            ys, yz = 1, 2
        elif node.op_type in SPECS:
            ys, yz = SPECS[node.op_type][3]
        else:
            continue
        zp = inits[node.input[yz]]
        out.append((node.output[0], float(inits[node.input[ys]].reshape(-1)[0]),
                    int(zp.reshape(-1)[0]) - (128 if zp.dtype == np.uint8 else 0)))
    return out


def params_missing_from(tflite: bytes, wanted: list[tuple[str, float, int]],
                        rel: float = 1e-6) -> list[str]:
    """The wanted (name, scale, zero point) that no tensor of ``tflite`` carries."""
    from microlith.formats.tflite.flatbuffer import parse_model

    present = [(t.quant.scale[0], t.quant.zero_point[0]) for t in parse_model(tflite).tensors
               if t.quant is not None and len(t.quant.scale) == 1]
    return [f"{name}: {scale}, {zp}" for name, scale, zp in wanted
            if not any(abs(s - scale) <= rel * scale and z == zp for s, z in present)]


def scale_mismatches(onnx_path: Path, tflite: bytes, rel: float = 1e-6) -> list[str]:
    """Activations whose ``.tflite`` scale/zero point differ from the ONNX model's.

    A tensor present by name must carry the model's parameters (or its
    ``_requantized`` successor must, where a fixed-output op was requantized); a tensor
    read only by an op the compiler folds away (BatchNormalization) is exempt; a tensor
    absent by name (its op was folded into the producer) must have its parameters on some
    tensor of the ``.tflite``.
    """
    from microlith.formats.tflite.flatbuffer import parse_model

    tensors = {t.name: t for t in parse_model(tflite).tensors if t.quant is not None}
    present = {(t.quant.scale[0], t.quant.zero_point[0]) for t in tensors.values()
               if len(t.quant.scale) == 1}

    def same(a: tuple[float, int], b: tuple[float, int]) -> bool:
        return abs(a[0] - b[0]) <= rel * abs(b[0]) and a[1] == b[1]

    bad = []
    for name, (scale, zp, folded) in onnx_activation_params(onnx_path).items():
        want = (scale, zp)
        if name in tensors:
            got = [tensors[k] for k in (name, name + "_requantized") if k in tensors]
            if not folded and not any(same((t.quant.scale[0], t.quant.zero_point[0]), want)
                                      for t in got):
                bad.append(f"{name}: {[(t.quant.scale, t.quant.zero_point) for t in got]} "
                           f"!= {want}")
        elif not any(same(p, want) for p in present):
            bad.append(f"{name}: absent and no tensor carries {want}")
    return bad


def measure(qdq_path: Path, x_test: np.ndarray, y_test: np.ndarray) -> dict[str, Any]:
    """Compile ``qdq_path`` (no calibration data) and compare with onnxruntime on it."""
    from microlith.app.driver import CompileOptions, compile_onnx
    from microlith.formats.tflite.flatbuffer import parse_model
    from microlith.interpreter import run_graph
    from tools.runtimes import (
        input_perm,
        ort_outputs,
        ort_session,
        quantize_input,
        run_tflm,
        to_physical,
        top1,
    )

    result = compile_onnx(qdq_path, CompileOptions(quiet=True))
    model = parse_model(result.output)
    inp, out = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    assert inp.quant is not None and out.quant is not None
    graph = result.graph
    feeds = quantize_input(to_physical(x_test, input_perm(graph)), inp.quant.scale[0],
                           inp.quant.zero_point[0])
    n = len(feeds)
    tflm = run_tflm(result.output, feeds).reshape(n, -1)
    ours = np.asarray(run_graph(graph, {graph.inputs[0].name: feeds})[graph.outputs[0].name])
    reference = ort_outputs(ort_session(qdq_path), x_test).reshape(n, -1)
    s, z = out.quant.scale[0], out.quant.zero_point[0]
    ref_q = np.clip(np.round(reference.astype(np.float64) / s) + z, -128, 127)
    mine = (tflm.astype(np.float64) - z) * s
    remarks = [f"{node}: {text}" for pass_name, node, text in result.remarks
               if pass_name == "insert-qdq"]
    return {"agreement": float((top1(mine) == top1(reference)).mean()),
            "max_lsb": int(np.abs(ref_q - tflm).max()),
            "lsb_diff_fraction": float((ref_q != tflm).mean()),
            "accuracy": float((top1(mine) == y_test).mean()),
            "accuracy_ort": float((top1(reference) == y_test).mean()),
            "tflm_equals_interpreter": bool(np.array_equal(tflm, ours.reshape(n, -1))),
            "scale_mismatches": scale_mismatches(qdq_path, result.output),
            "remarks": remarks, "tflite": result.output, "feeds": feeds, "tflm": tflm}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the table as JSON")
    parser.add_argument("--samples", type=int, default=100, help="calibration images")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in TRAINED:
            x_train, _, x_test, y_test = digits_for(name)
            runs = [(config, per_channel, acts, "QDQ")
                    for config, (per_channel, acts) in CONFIGS.items()]
            runs.append(("qop-pc-u8", True, "QUInt8", "QOperator"))
            for config, per_channel, acts, fmt in runs:
                path = make_qdq(ZOO / f"{name}.onnx", Path(tmp) / f"{name}_{config}.onnx",
                                x_train[:args.samples], per_channel, acts, quant_format=fmt)
                m = measure(path, x_test, y_test)
                if fmt == "QOperator":
                    m["scale_mismatches"] = params_missing_from(
                        m["tflite"], qoperator_output_params(path))
                rows.append({"model": name, "config": config, **{
                    k: v for k, v in m.items() if k not in ("tflite", "feeds", "tflm")}})
    print(f"{'model':<14}{'config':<10}{'agree':>8}{'maxLSB':>8}{'LSB!=':>8}{'acc':>8}"
          f"{'acc ort':>9}{'tflm==ours':>12}{'remarks':>9}{'scales':>8}")
    for r in rows:
        print(f"{r['model']:<14}{r['config']:<10}{r['agreement']:>8.4f}{r['max_lsb']:>8}"
              f"{r['lsb_diff_fraction']:>8.4f}{r['accuracy']:>8.4f}{r['accuracy_ort']:>9.4f}"
              f"{str(r['tflm_equals_interpreter']):>12}{len(r['remarks']):>9}"
              f"{'kept' if not r['scale_mismatches'] else 'DIFF':>8}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
