"""The default pipelines, as plain pipeline strings a user can print and edit.

``float``: canonicalize for TFLite (NHWC, folded BN, fused activations), then
legalize. ``int8``: the TFLite converter's full-integer post-training mode:
the same canonicalization, calibration on representative data, Q/DQ per the
TFLite int8 spec, and integer kernels. ``c``: the int8 pipeline ending in C
legalization and static memory planning. ``int8_pipeline`` fills in the options
the CLI exposes (calibration method, interface dtype, float fallback).
"""

from __future__ import annotations

CANONICALIZE = ("infer-shapes,fold-constants,eliminate-dead,lower-fc,fold-batchnorm,"
                "fuse-activation,to-nhwc,fold-pad,eliminate-dead")


def int8_pipeline(method: str = "minmax", io_dtype: str = "int8", fallback: str = "none",
                  percentile: float | None = None, target: str = "tflite") -> str:
    """The int8 pipeline string; options equal to their defaults are left out."""
    calibrate = "calibrate"
    options = [] if method == "minmax" else [f"method={method}"]
    if percentile is not None and method == "percentile":
        options.append(f"p={percentile!r}")
    if options:
        calibrate += "{" + ",".join(options) + "}"
    qdq_options = [f"io-dtype={io_dtype}"] if io_dtype != "int8" else []
    if fallback != "none":
        qdq_options.append(f"fallback={fallback}")
    insert = "insert-qdq" + ("{" + ",".join(qdq_options) + "}" if qdq_options else "")
    tail = "legalize-c,plan-memory" if target == "c" else "legalize-tflite"
    return f"{CANONICALIZE},{calibrate},{insert},fuse-requantize,eliminate-dead,{tail}"


PIPELINES: dict[str, str] = {
    "float": CANONICALIZE + ",legalize-tflite",
    "int8": int8_pipeline(),
    "c": int8_pipeline(target="c"),
}


def default_pipeline(mode: str = "float") -> str:
    return PIPELINES[mode]
