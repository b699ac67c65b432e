"""The int8 section of ``tools/bench.py``.

int8: for every trained zoo model, ``--quantize int8`` with 300 training images as
calibration data: top-1 of the float model (onnxruntime) and of our int8 model
(TFLite-Micro) on the 450 held-out images and their argmax agreement, ``.tflite``
bytes and the ratio to the float ``.tflite``, the smallest TFLite-Micro arena that
allocates (bisection) for our float and int8 models, compile seconds (best of 3).
Side by side: onnxruntime's ``quantize_static`` (QDQ, per-channel, QInt8
activations and weights, MinMax on the same 300 images) run by onnxruntime, and the
TFLite converter (full-integer, same data) when ``tensorflow`` and ``onnx2tf`` are
importable (otherwise a note says it was skipped). The issue's targets are
reported, not asserted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import numpy as np

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import parse_model
from tools.bench_common import (
    TFLM_ARENA,
    ZOO,
    best_of,
    digits_for,
    progress,
    tflm_arena_bytes,
)
from tools.runtimes import (
    input_perm,
    ort_outputs,
    ort_session,
    quantize_input,
    run_tflm,
    to_physical,
    top1,
)

SIZE_TARGET = 0.3  # int8 .tflite <= 0.3x float for models over 10k parameters
BIG_MODEL_PARAMS = 10_000


def ort_quantize_peer(path: str, x_cal: np.ndarray, x_test: np.ndarray, labels: np.ndarray,
                      float_top1: np.ndarray) -> dict:
    """onnxruntime ``quantize_static``: QDQ, per-channel, QInt8/QInt8, MinMax; run by ORT.

    The model first goes through ``quant_pre_process`` (shape inference and ORT's graph
    optimizations, which fold BatchNormalization into the convolutions), as
    onnxruntime's quantization guide asks.
    """
    import logging

    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = ort_session(path).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.samples = iter(x_cal)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.samples, None)
            return None if x is None else {input_name: x[None]}

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_static logs advice through the root logger
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prepared, qdq = os.path.join(tmp, "model_pre.onnx"), os.path.join(tmp, "model_qdq.onnx")
            start = time.perf_counter()
            quant_pre_process(path, prepared)
            quantize_static(prepared, qdq, Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
            seconds = time.perf_counter() - start
            got = top1(ort_outputs(ort_session(qdq), x_test))
            size = os.path.getsize(qdq)
    finally:
        root.setLevel(level)
    return {"top1": round(100 * float(np.mean(got == labels)), 2),
            "agreement": round(float(np.mean(got == float_top1)), 4),
            "onnx_bytes": size, "quantize_s": round(seconds, 3)}


def tflite_converter_peer(path: str, perm: list[int] | None, x_cal: np.ndarray,
                          x_test: np.ndarray, labels: np.ndarray, float_top1: np.ndarray
                          ) -> dict:
    """The TFLite converter's full-integer mode (ONNX -> onnx2tf -> TF), run by TFLite-Micro."""
    try:
        import tensorflow as tf
    except ImportError:
        return {"skipped": "tensorflow is not installed"}
    try:
        import onnx2tf
    except ImportError:
        return {"skipped": "onnx2tf is not installed (the TFLite converter needs a TF model)"}

    try:
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "model.onnx")  # onnx2tf rewrites its input in place
            shutil.copyfile(path, copy)
            onnx2tf.convert(input_onnx_file_path=copy, output_folder_path=tmp,
                            non_verbose=True)
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([to_physical(x[None], perm)]
                                                        for x in x_cal)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
            data = converter.convert()
        from ai_edge_litert.interpreter import Interpreter

        scale, zero_point = Interpreter(model_content=data).get_input_details()[0]["quantization"]
        feeds = quantize_input(to_physical(x_test, perm), scale, zero_point, "int8")
        got = top1(run_tflm(data, feeds, TFLM_ARENA))
        return {"top1": round(100 * float(np.mean(got == labels)), 2),
                "agreement": round(float(np.mean(got == float_top1)), 4),
                "tflite_bytes": len(data), "arena_bytes": tflm_arena_bytes(data, feeds[:1]),
                "ops": len(parse_model(data).operators)}
    except Exception as exc:  # a peer failing is a finding, not a crash of the benchmark
        return {"error": f"{type(exc).__name__}: {exc}"}


def bench_int8(name: str, method: str = "minmax") -> dict:
    import onnx

    path = os.path.join(ZOO, f"{name}.onnx")
    x_cal, x_test, labels = digits_for(name)
    options = CompileOptions(quantize="int8", calibration_data=x_cal, quiet=True,
                             calibration_method=method, warn=lambda message: None)
    progress(f"  {name}: compiling int8 (best of 3)")
    compile_s, result = best_of(3, lambda: compile_onnx(path, options))
    float_data = compile_onnx(path, CompileOptions(warn=lambda message: None)).output
    data, graph = result.output, result.graph
    perm = input_perm(graph)
    x_phys = to_physical(x_test, perm)
    quant = graph.inputs[0].quant
    feeds = quantize_input(x_phys, quant.scale[0], quant.zero_point[0], "int8")
    progress(f"  {name}: onnxruntime float and TFLite-Micro int8 on {len(x_test)} images")
    float_top1 = top1(ort_outputs(ort_session(path), x_test))
    int8_top1 = top1(run_tflm(data, feeds, TFLM_ARENA))
    progress(f"  {name}: TFLite-Micro arena bisection")
    arena_float = tflm_arena_bytes(float_data, x_phys[:1])
    arena_int8 = tflm_arena_bytes(data, feeds[:1])
    progress(f"  {name}: onnxruntime quantize_static")
    ort_peer = ort_quantize_peer(path, x_cal, x_test, labels, float_top1)
    progress(f"  {name}: TFLite converter")
    tf_peer = tflite_converter_peer(path, perm, x_cal, x_test, labels, float_top1)
    params = int(sum(np.prod(i.dims, dtype=np.int64)
                     for i in onnx.load(path).graph.initializer))
    return {
        "model": name,
        "params": params,
        "samples": len(x_test),
        "calibration_samples": len(x_cal),
        "calibration_method": method,
        "float_top1": round(100 * float(np.mean(float_top1 == labels)), 2),
        "int8_top1": round(100 * float(np.mean(int8_top1 == labels)), 2),
        "agreement": round(float(np.mean(int8_top1 == float_top1)), 4),
        "float_bytes": len(float_data),
        "int8_bytes": len(data),
        "int8_ops": len(parse_model(data).operators),
        "size_ratio": round(len(data) / len(float_data), 4),
        "arena_float": arena_float,
        "arena_int8": arena_int8,
        "compile_s": round(compile_s, 4),
        "ort_qdq": ort_peer,
        "tflite_converter": tf_peer,
    }


def int8_targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, per model: met (True/False) or not measurable (None, with why)."""
    out = []
    for row in rows:
        ort_peer, tf_peer = row["ort_qdq"], row["tflite_converter"]
        tf_why = tf_peer.get("skipped") or tf_peer.get("error")
        checks = {
            "accuracy >= onnxruntime QDQ": row["int8_top1"] >= ort_peer["top1"],
            "agreement >= onnxruntime QDQ": row["agreement"] >= ort_peer["agreement"],
            "accuracy >= TFLite converter":
                None if tf_why else row["int8_top1"] >= tf_peer["top1"],
            "agreement >= TFLite converter":
                None if tf_why else row["agreement"] >= tf_peer["agreement"],
            "arena <= TFLite converter":
                None if tf_why else row["arena_int8"] <= tf_peer["arena_bytes"],
            "ops <= TFLite converter":
                None if tf_why else row["int8_ops"] <= tf_peer["ops"],
        }
        if row["params"] > BIG_MODEL_PARAMS:
            checks[f"size <= {SIZE_TARGET}x float"] = row["size_ratio"] <= SIZE_TARGET
        for target, met in checks.items():
            out.append({"model": row["model"], "target": target, "met": met,
                        "note": f"not measured: {tf_why}" if met is None else ""})
    return out
