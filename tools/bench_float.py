"""The float section of ``tools/bench.py``.

float: for every ``tests/zoo/*.onnx``: ONNX node count, TFLite op count (and PAD /
TRANSPOSE counts), ``.tflite`` bytes, compile seconds (best of 3), and the max
abs difference against onnxruntime of LiteRT (reference kernels) and
TFLite-Micro on real inputs (held-out digits for the trained models, seeded
random data for the helper models).
"""

from __future__ import annotations

import os
import time
from collections import Counter

import numpy as np

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import parse_model
from tools.bench_common import TFLM_ARENA
from tools.digits import load_digits_split
from tools.runtimes import input_perm, ort_outputs, ort_session, run_litert, run_tflm, to_physical


def model_inputs(path: str, shape: tuple[int, ...], samples: int) -> np.ndarray:
    """Real digits for the trained models (by input shape), seeded noise otherwise."""
    name = os.path.basename(path)
    if not name.startswith("helper"):
        _, _, x_test, _ = load_digits_split(16, "NCHW") if len(shape) == 4 else \
            load_digits_split(8, "flat")
        return x_test[:samples].reshape(-1, *shape[1:])
    return np.random.default_rng(0).standard_normal((samples, *shape[1:])).astype(np.float32)


def bench_model(path: str, samples: int) -> dict:
    import onnx

    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        result = compile_onnx(path, CompileOptions(warn=lambda message: None))
        seconds.append(time.perf_counter() - start)
    data = result.output
    tfl = parse_model(data)
    ops = Counter(op.op for op in tfl.operators)
    session = ort_session(path, single_thread=False)
    shape = tuple(session.get_inputs()[0].shape)
    xs = model_inputs(path, shape, samples)
    reference = ort_outputs(session, xs)
    xs_t = to_physical(xs, input_perm(result.graph))
    litert, tflm = run_litert(data, xs_t), run_tflm(data, xs_t, TFLM_ARENA)
    return {
        "model": os.path.splitext(os.path.basename(path))[0],
        "onnx_nodes": len(onnx.load(path).graph.node),
        "tflite_ops": len(tfl.operators),
        "pad": ops.get("PAD", 0) + ops.get("PADV2", 0),
        "transpose": ops.get("TRANSPOSE", 0),
        "tflite_bytes": len(data),
        "compile_s": round(min(seconds), 4),
        "max_abs_litert": float(np.abs(litert - reference).max()),
        "max_abs_tflm": float(np.abs(tflm - reference).max()),
        "samples": len(xs),
    }
