"""Builtin operator versions, as TFLite's converter assigns them.

The rules restate the facts of TFLite's ``tools/versioning/op_version.cc`` for the
operators microlith emits.  LiteRT's op resolvers register each kernel for a range of
versions and refuse a model whose (op, version) pair is outside it, so writing the
converter's version is what keeps models loadable.  TFLite-Micro ignores versions.

Only what the caller passes is known: per-channel / scale-dependent variants that need
more context (e.g. MUL's "rescale >= 1" version 3, hybrid per-channel CONV_2D version 5,
per-channel QUANTIZE version 3) are selected with ``per_channel`` / not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from microlith.formats.tflite.flatbuffer import normalize_options


@dataclass(frozen=True)
class _Sig:
    inputs: list[str | None]  # None: absent optional input (tensor index -1)
    outputs: list[str | None]
    ranks: list[int]  # input ranks, 0 when unknown
    options: dict[str, Any]
    per_channel: bool

    def i(self, k: int) -> str | None:
        return self.inputs[k] if k < len(self.inputs) else None

    def o(self, k: int) -> str | None:
        return self.outputs[k] if k < len(self.outputs) else self.i(0)

    @property
    def max_rank(self) -> int:
        return max(self.ranks, default=0)

    @property
    def broadcast5d(self) -> bool:
        """Binary op with differently shaped inputs of rank > 4 (shapes known)."""
        return len(self.ranks) >= 2 and self.max_rank > 4 and self.ranks[0] != self.ranks[1]


def _by_input0(table: dict[str, int]) -> Callable[[_Sig], int]:
    return lambda s: table.get(s.i(0) or "", 1)


_Q8 = {"int8": 2}
_Q8_16 = {"int8": 2, "int16": 3}


def _conv(s: _Sig) -> int:
    x, w, y = s.i(0), s.i(1), s.o(0)
    if x == "int16" and w == "int8" and y == "int16":
        return 8 if s.options["quantized_bias_type"] != "float32" else 1
    if x == "int8" and w == "int8" and y == "int8":
        return 3
    if x == "int8" and w == "int4":
        return 7
    if x == "float32" and w == "int8" and y == "float32":
        return 5 if s.per_channel else 2
    return 1


def _depthwise(s: _Sig) -> int:
    x, w, y = s.i(0), s.i(1), s.o(0)
    if x == "float32" and w == "int8" and y == "float32":
        return 6 if s.per_channel else 4
    if x == "int8" and w == "int8" and y == "int8":
        return 3
    if x == "int8" and w == "int4":
        return 7
    if s.options["dilation_w_factor"] != 1 or s.options["dilation_h_factor"] != 1:
        return 2
    return 1


def _fully_connected(s: _Sig) -> int:
    x, w, y, opt = s.i(0), s.i(1), s.o(0), s.options
    if x == "float32" and w == "int8" and y == "float32" and s.per_channel:
        return 12
    if x == "int16" and w == "int8" and y == "int16" and opt["quantized_bias_type"] != "float32":
        return 11
    if x == "int16" and w == "int16" and y == "int16":
        return 7
    if len(s.inputs) == 2:
        return 6
    if opt["keep_num_dims"]:
        return 5
    if x == "int8" and w == "int8" and y == "int8":
        return 4
    if x == "int8" and w == "int4" and y == "int8":
        return 10
    if x == "float32" and w == "int8" and y == "float32":
        return 9 if opt["asymmetric_quantize_inputs"] else 3
    return 2 if opt["weights_format"] == "SHUFFLED4x16INT8" else 1


def _transpose_conv(s: _Sig) -> int:
    # inputs: output_shape, weights, activations, [bias]
    if s.i(2) == "int16" and s.i(1) == "int8" and s.o(0) == "int16":
        if s.options["quantized_bias_type"] != "float32":
            return 5
    if s.options["fused_activation_function"] != "NONE":
        return 4
    if len(s.inputs) == 4 and s.inputs[3] is not None:
        return 3
    return 2 if s.i(1) == "int8" else 1


def _add(s: _Sig) -> int:
    if s.i(0) == "float16":
        return 6
    if s.i(0) == "int64":
        return 4
    if s.i(0) == "int16" and s.o(0) == "int16" and not s.options["pot_scale_int16"]:
        return 3
    return 2 if s.i(0) == "int8" else 1


def _sub(s: _Sig) -> int:
    if s.i(0) == "int16" and s.o(0) == "int16" and not s.options["pot_scale_int16"]:
        return 5
    if s.i(0) == "int64":
        return 4
    if s.broadcast5d:
        return 3
    return 2 if s.i(0) == "int8" else 1


def _mul(s: _Sig) -> int:
    return {"float16": 8, "uint32": 7, "complex64": 6, "int64": 5, "int16": 4, "int8": 2}.get(
        s.i(0) or "", 1
    )


def _max_min(s: _Sig) -> int:
    if s.i(0) == "int16" and s.o(0) == "int16":
        return 4
    if s.broadcast5d:
        return 3
    return 2 if s.i(0) == "int8" else 1


def _quantize(s: _Sig) -> int:
    if "uint4" in (s.i(0), s.o(0)):
        return 5
    if "int4" in (s.i(0), s.o(0)):
        return 4
    if s.per_channel:
        return 3
    return 2 if s.o(0) == "int16" else 1


def _dequantize(s: _Sig) -> int:
    x = s.i(0)
    if x == "int4":
        return 6
    if x in ("int16", "float16"):
        return 3
    if x == "int8":
        return 5 if s.per_channel else 2
    return 1


def _gather(s: _Sig) -> int:
    if s.i(0) == "int4":
        return 7
    if s.i(1) == "int16":
        return 6
    if s.options["batch_dims"] != 0:
        return 5
    return {"int16": 4, "bool": 3, "int8": 2}.get(s.i(0) or "", 1)


def _strided_slice(s: _Sig) -> int:
    opt = s.options
    if opt["offset"]:
        return 8
    if s.i(0) == "uint32":
        return 7
    if opt["ellipsis_mask"] or opt["new_axis_mask"]:
        return 6
    if s.i(0) == "string":
        return 5
    if s.max_rank > 4:
        return 4
    return {"bool": 3, "int8": 2}.get(s.i(0) or "", 1)


def _pad(s: _Sig) -> int:
    if s.i(0) == "bool":
        return 5
    if s.ranks and s.ranks[0] > 4:
        return 4
    return _Q8_16.get(s.i(0) or "", 1)


def _transpose(s: _Sig) -> int:
    rank = s.ranks[0] if s.ranks else 0
    if rank > 6 or s.i(0) == "bfloat16":
        return 8
    if s.i(0) == "int4":
        return 7
    if rank > 5:
        return 6
    if s.i(0) == "int16":
        return 5
    if rank > 4:
        return 4
    return {"bool": 3, "int8": 2}.get(s.i(0) or "", 1)


def _slice(s: _Sig) -> int:
    if s.i(0) in ("int4", "uint32"):
        return 7 if s.i(0) == "int4" else 6
    if s.max_rank > 4:
        return 5
    return {"int16": 4, "string": 3, "int8": 2}.get(s.i(0) or "", 1)


def _abs(s: _Sig) -> int:
    return {"int32": 5, "int16": 3, "int8": 2, "uint8": 2}.get(s.i(0) or "", 1)


_RULES: dict[str, Callable[[_Sig], int]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "TRANSPOSE_CONV": _transpose_conv,
    "ADD": _add,
    "SUB": _sub,
    "MUL": _mul,
    "DIV": lambda s: 2 if s.broadcast5d else 1,
    "MAXIMUM": _max_min,
    "MINIMUM": _max_min,
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
    "GATHER": _gather,
    "STRIDED_SLICE": _strided_slice,
    "PAD": _pad,
    "PADV2": _pad,
    "TRANSPOSE": _transpose,
    "ABS": _abs,
    "SPLIT": lambda s: {"int16": 4, "int32": 3, "int8": 2}.get(s.i(1) or "", 1),  # input 1
    "AVERAGE_POOL_2D": _by_input0(_Q8_16),
    "MAX_POOL_2D": _by_input0(_Q8_16),
    "LOGISTIC": _by_input0(_Q8_16),
    "TANH": _by_input0(_Q8_16),
    "SOFTMAX": _by_input0(_Q8_16),
    "MEAN": _by_input0(_Q8_16),
    "REDUCE_MAX": _by_input0(_Q8_16),
    "REDUCE_MIN": _by_input0(_Q8_16),
    "MIRROR_PAD": _by_input0(_Q8_16),
    "RELU6": _by_input0(_Q8_16),
    "RSQRT": _by_input0(_Q8_16),
    "RELU": _by_input0({"int8": 2, "uint8": 2, "int16": 3}),
    "CONCATENATION": _by_input0({"int8": 2, "int16": 3, "uint32": 4, "int4": 5}),
    "LEAKY_RELU": _by_input0({"int16": 2}),
    "EXP": _by_input0({"int8": 2, "int16": 2}),
    "LOG": _by_input0({"int8": 2, "int16": 2}),
    "SQRT": _by_input0({"int8": 2, "int16": 2}),
    "REDUCE_PROD": _by_input0({"int8": 2, "int16": 2}),
    "SQUEEZE": _by_input0({"string": 2}),
    "SLICE": _slice,
    "PACK": _by_input0({"int8": 2, "int16": 3, "uint32": 4}),
    "UNPACK": _by_input0({"int8": 2, "uint8": 2, "bool": 3, "int16": 4}),
    "TILE": _by_input0({"int8": 3, "string": 2}),
    "LESS": _by_input0(_Q8_16),
    "GREATER_EQUAL": _by_input0(_Q8_16),
    "EQUAL": _by_input0({"int16": 5, "string": 3, "int8": 2}),
    "NOT_EQUAL": _by_input0({"int16": 4, "string": 3, "int8": 2}),
    "BATCH_MATMUL": _by_input0(_Q8_16),
    "ARG_MAX": _by_input0({"bool": 3, "int8": 2}),
    "ARG_MIN": _by_input0({"bool": 3, "int8": 2}),
    "GELU": _by_input0({"int8": 2, "uint8": 2}),
    "BROADCAST_TO": lambda s: 3 if s.i(0) in ("int8", "int16") else 2,
    "L2_NORMALIZATION": lambda s: 2 if s.o(0) == "int8" else 1,
    **{
        op: _by_input0(_Q8)
        for op in (
            "SUM SPACE_TO_DEPTH DEPTH_TO_SPACE SPLIT_V LOG_SOFTMAX GREATER LESS_EQUAL "
            "SQUARED_DIFFERENCE"
        ).split()
    },
}


def default_op_version(
    op: str,
    input_dtypes: Sequence[str | None],
    output_dtypes: Sequence[str | None] | None = None,
    *,
    options: dict[str, Any] | None = None,
    input_ranks: Sequence[int] | None = None,
    per_channel: bool = False,
) -> int:
    """Version TFLite's converter writes for builtin ``op``.

    ``input_dtypes`` lists one dtype per operator input, ``None`` for an absent optional
    input (its length matters: FULLY_CONNECTED without a bias slot is version 6).
    ``output_dtypes`` defaults to the first input's dtype; pass it for QUANTIZE and
    DEQUANTIZE.  ``options`` are the operator's options (defaults filled in);
    ``input_ranks`` enables the rank > 4 rules; ``per_channel`` marks per-axis
    quantized weights (hybrid conv/FC) or a per-axis QUANTIZE/DEQUANTIZE.
    """
    sig = _Sig(
        inputs=list(input_dtypes),
        outputs=list(output_dtypes or []),
        ranks=list(input_ranks or []),
        options=normalize_options(op, options or {}),
        per_channel=per_channel,
    )
    rule = _RULES.get(op)
    return rule(sig) if rule is not None and sig.inputs else 1
