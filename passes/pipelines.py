"""The default pipelines, built from pass objects and printed with the pipeline formatter.

``canonicalize()``: shapes, constants, dead code, FullyConnected, 1-D ops kept 2-D,
BatchNorm folding, activation fusion, one global NHWC conversion, pad folding. ``int8()``:
the TFLite converter's full-integer post-training mode on top of it: calibration on representative
data, Q/DQ per the TFLite int8 spec, integer kernels. A target then appends its own tail
(``legalize-tflite``; for C ``legalize-c,prepare,select-kernels,plan-memory``), which is how the
strings in ``PIPELINES`` end. A user can print any of them (``microlith passes``), edit
it and pass it back with ``--pipeline``; the CLI's quantization flags edit the same
objects (``microlith.app.pipeline_edits``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from microlith.passes.calibrate import Calibrate
from microlith.passes.eliminate_dead import EliminateDead
from microlith.passes.fold_batchnorm import FoldBatchNorm
from microlith.passes.fold_constants import FoldConstants
from microlith.passes.fold_pad import FoldPad
from microlith.passes.fuse_activation import FuseActivation
from microlith.passes.fuse_gelu import FuseGelu
from microlith.passes.fuse_requantize import FuseRequantize
from microlith.passes.import_qdq import ImportQDQ
from microlith.passes.infer_shapes import InferShapes
from microlith.passes.insert_qdq import InsertQDQ
from microlith.passes.lower_fc import LowerFC
from microlith.passes.quantize_weights import QuantizeWeights
from microlith.passes.to_nhwc import ToNHWC
from microlith.passes.widen_1d import Widen1D
from microlith.pipeline import Pass, format_pipeline

TAILS = {"tflite": "legalize-tflite", "c": "legalize-c,prepare,select-kernels,plan-memory"}


def canonicalize() -> list[Pass]:
    return [InferShapes(), FoldConstants(), EliminateDead(), FuseGelu(), LowerFC(), Widen1D(),
            FoldBatchNorm(), FuseActivation(), ToNHWC(), FoldPad(), EliminateDead()]


def int8(method: str = "minmax", io_dtype: str = "int8", fallback: str = "none",
         percentile: float | None = None) -> list[Pass]:
    """The int8 passes; options equal to their defaults print as nothing."""
    options: dict[str, Any] = {"method": method}
    if percentile is not None and method == "percentile":
        options["p"] = percentile
    calibrate = Calibrate(**options)
    return [*canonicalize(), calibrate,
            InsertQDQ(**dict[str, Any](io_dtype=io_dtype, fallback=fallback)),
            FuseRequantize(), EliminateDead()]


def int8_pipeline(method: str = "minmax", io_dtype: str = "int8", fallback: str = "none",
                  percentile: float | None = None, target: str = "tflite") -> str:
    """The int8 pipeline string for ``target`` (its tail included)."""
    return f"{format_pipeline(int8(method, io_dtype, fallback, percentile))},{TAILS[target]}"


@dataclass(frozen=True)
class QuantMode:
    """A ``--quantize`` mode: its default pipeline (before the target tail) and what it needs.

    ``flags`` are the command-line flags that edit its pipeline
    (``microlith.app.pipeline_edits.FLAG_OPTIONS``); ``calibrated``: it needs representative
    data; ``integer``: its result is integer-only (what integer targets such as C need).
    """

    name: str
    summary: str
    passes: Callable[[], list[Pass]]
    calibrated: bool
    integer: bool
    flags: tuple[str, ...] = ()
    optional_data: bool = False  # not calibrated, but representative data may fill gaps


MODES: dict[str, QuantMode] = {}


def register_mode(mode: QuantMode) -> QuantMode:
    if mode.name in MODES:
        raise ValueError(f"quantization mode {mode.name!r} registered twice")
    MODES[mode.name] = mode
    return mode


register_mode(QuantMode("int8", "full integer: int8 weights and activations, int32 biases "
                        "(calibrated)", int8, calibrated=True, integer=True,
                        flags=("--calibration-method", "--io-dtype", "--fallback",
                               "--keep-float", "--input-dtype", "--output-dtype",
                               "--per-tensor", "--int16")))


def int16x8(method: str = "minmax", io_dtype: str = "int16", fallback: str = "none",
            percentile: float | None = None) -> list[Pass]:
    """The TFLite 16x8 mode: int16 symmetric activations, int8 per-channel weights, int64
    biases (``insert-qdq{activations=int16}``); the interface is int16 by default."""
    passes = int8(method, io_dtype, fallback, percentile)
    out: list[Pass] = []
    for p in passes:
        if isinstance(p, InsertQDQ):
            p = InsertQDQ(**dict[str, Any](io_dtype=io_dtype, fallback=fallback,
                                           activations="int16"))
        elif isinstance(p, Calibrate):
            p = dataclasses.replace(p, bits=16)
        out.append(p)
    return out


register_mode(QuantMode("int16x8", "16x8: int16 symmetric activations, int8 per-channel "
                        "weights, int64 biases (calibrated)", int16x8, calibrated=True,
                        integer=True, flags=("--calibration-method", "--io-dtype",
                                             "--fallback", "--keep-float", "--input-dtype",
                                             "--output-dtype", "--per-tensor")))


def dynamic() -> list[Pass]:
    """Dynamic range: int8 per-channel weights for the hybrid kernels, float activations."""
    return [*canonicalize(), QuantizeWeights()]


def float16() -> list[Pass]:
    """float16 weights (DEQUANTIZE to float32 in the .tflite; widened in the C kernels)."""
    return [*canonicalize(), QuantizeWeights(dtype="float16")]


register_mode(QuantMode("dynamic", "dynamic range: int8 per-channel weights, float "
                        "activations and I/O (LiteRT's hybrid kernels; no calibration data)",
                        dynamic, calibrated=False, integer=False))
register_mode(QuantMode("float16", "float16 weights, float32 arithmetic (DEQUANTIZE at load)",
                        float16, calibrated=False, integer=False))


def qdq(io_dtype: str = "int8", fallback: str = "none") -> list[Pass]:
    """A Q/DQ model's own quantization (``import-qdq``): no calibration needed; data, when
    given, fills tensors the model leaves unquantized."""
    return [ImportQDQ(), *canonicalize(), Calibrate(optional=True),
            InsertQDQ(**dict[str, Any](io_dtype=io_dtype, fallback=fallback)),
            FuseRequantize(), EliminateDead()]


register_mode(QuantMode("qdq", "full integer from the model's own QuantizeLinear/"
                        "DequantizeLinear scales (QAT, onnxruntime QDQ); the default for such "
                        "models", qdq, calibrated=False, integer=True,
                        flags=("--calibration-method", "--io-dtype", "--fallback",
                               "--strict-qdq"), optional_data=True))


def qdq_dynamic() -> list[Pass]:
    """A weight-only Q/DQ model without calibration data: its own int8 weights for the
    hybrid kernels (``quantize-weights`` keeps the model's scales), float activations."""
    return [ImportQDQ(), *canonicalize(), QuantizeWeights()]


register_mode(QuantMode("qdq-dynamic", "dynamic range from a weight-only Q/DQ model's own "
                        "int8 weights and scales (its default without calibration data)",
                        qdq_dynamic, calibrated=False, integer=False))


def mode_passes(mode: str | None) -> list[Pass]:
    """The default pipeline of ``--quantize mode`` (None: float), without a target tail."""
    return canonicalize() if mode is None else MODES[mode].passes()


PIPELINES: dict[str, str] = {
    "float": f"{format_pipeline(canonicalize())},{TAILS['tflite']}",
    "int8": int8_pipeline(),
    "c": int8_pipeline(target="c"),
    "dynamic": f"{format_pipeline(dynamic())},{TAILS['tflite']}",
    "float16": f"{format_pipeline(float16())},{TAILS['tflite']}",
    "qdq": f"{format_pipeline(qdq())},{TAILS['tflite']}",
}


def default_pipeline(mode: str = "float") -> str:
    return PIPELINES[mode]

