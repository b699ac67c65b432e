"""The default pipelines, built from pass objects and printed with the pipeline formatter.

``canonicalize()``: shapes, constants, dead code, FullyConnected, BatchNorm folding,
activation fusion, one global NHWC conversion, pad folding. ``int8()``: the TFLite
converter's full-integer post-training mode on top of it: calibration on representative
data, Q/DQ per the TFLite int8 spec, integer kernels. A target then appends its own tail
(``legalize-tflite``; for C ``legalize-c,prepare,plan-memory``), which is how the
strings in ``PIPELINES`` end. A user can print any of them (``microlith passes``), edit
it and pass it back with ``--pipeline``; the CLI's quantization flags edit the same
objects (``microlith.app.pipeline_edits``).
"""

from __future__ import annotations

from typing import Any

from microlith.passes.calibrate import Calibrate
from microlith.passes.eliminate_dead import EliminateDead
from microlith.passes.fold_batchnorm import FoldBatchNorm
from microlith.passes.fold_constants import FoldConstants
from microlith.passes.fold_pad import FoldPad
from microlith.passes.fuse_activation import FuseActivation
from microlith.passes.fuse_requantize import FuseRequantize
from microlith.passes.infer_shapes import InferShapes
from microlith.passes.insert_qdq import InsertQDQ
from microlith.passes.lower_fc import LowerFC
from microlith.passes.to_nhwc import ToNHWC
from microlith.pipeline import Pass, format_pipeline

TAILS = {"tflite": "legalize-tflite", "c": "legalize-c,prepare,plan-memory"}


def canonicalize() -> list[Pass]:
    return [InferShapes(), FoldConstants(), EliminateDead(), LowerFC(), FoldBatchNorm(),
            FuseActivation(), ToNHWC(), FoldPad(), EliminateDead()]


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


PIPELINES: dict[str, str] = {
    "float": f"{format_pipeline(canonicalize())},{TAILS['tflite']}",
    "int8": int8_pipeline(),
    "c": int8_pipeline(target="c"),
}


def default_pipeline(mode: str = "float") -> str:
    return PIPELINES[mode]

