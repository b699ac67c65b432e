"""Integer-exact numpy reference of int8 TFLite operators (the TFLite-Micro oracle).

For the same int8 ``.tflite``, these functions produce the bytes TFLite-Micro's reference
kernels produce, for every tensor: each kernel derives its fixed-point multipliers from
the float32 scales of the flatbuffer the way TFLite-Micro's ``Prepare`` does (double or
float32 arithmetic, as the C code does) and then runs the same integer arithmetic
(``microlith.interpreter.fixed_point``), vectorized.

The kernels live in ``int8_nn`` (accumulating ops), ``int8_activations`` and
``int8_elementwise``; ``INT8_KERNELS`` maps each TFLite builtin name to its function.
Arguments are numpy arrays plus keyword quantization parameters (``*_scale`` as stored
in the flatbuffer, ``*_zero_point``) and the op's options.

TFLite-Micro has no int8 kernel for RELU_N1_TO_1, RELU_0_TO_1, EXP, SQRT or NEG; fused
RELU_N1_TO_1 on CONV/FC/ADD/... is supported (it only changes the clamp range).
"""

from __future__ import annotations

from collections.abc import Callable

from microlith.interpreter.int8_activations import (
    hard_swish,
    leaky_relu,
    logistic,
    relu,
    relu6,
    softmax,
    tanh,
)
from microlith.interpreter.int8_common import activation_range
from microlith.interpreter.int8_elementwise import (
    add,
    concatenation,
    dequantize,
    maximum,
    minimum,
    mul,
    pad,
    quantize,
    reshape,
    sub,
    transpose,
)
from microlith.interpreter.int8_nn import (
    average_pool_2d,
    conv_2d,
    depthwise_conv_2d,
    fully_connected,
    max_pool_2d,
    mean,
)

INT8_KERNELS: dict[str, Callable[..., object]] = {
    "CONV_2D": conv_2d,
    "DEPTHWISE_CONV_2D": depthwise_conv_2d,
    "FULLY_CONNECTED": fully_connected,
    "AVERAGE_POOL_2D": average_pool_2d,
    "MAX_POOL_2D": max_pool_2d,
    "MEAN": mean,
    "ADD": add,
    "SUB": sub,
    "MUL": mul,
    "MAXIMUM": maximum,
    "MINIMUM": minimum,
    "SOFTMAX": softmax,
    "LOGISTIC": logistic,
    "TANH": tanh,
    "HARD_SWISH": hard_swish,
    "LEAKY_RELU": leaky_relu,
    "RELU": relu,
    "RELU6": relu6,
    "PAD": pad,
    "PADV2": pad,
    "CONCATENATION": concatenation,
    "RESHAPE": reshape,
    "TRANSPOSE": transpose,
    "QUANTIZE": quantize,
    "DEQUANTIZE": dequantize,
}

#: Operators TFLite-Micro cannot run on int8 tensors (no kernel / no int8 path).
TFLM_MISSING_INT8 = ("RELU_N1_TO_1", "RELU_0_TO_1", "EXP", "SQRT", "NEG")

__all__ = [
    "INT8_KERNELS",
    "TFLM_MISSING_INT8",
    "activation_range",
    "add",
    "average_pool_2d",
    "concatenation",
    "conv_2d",
    "depthwise_conv_2d",
    "dequantize",
    "fully_connected",
    "hard_swish",
    "leaky_relu",
    "logistic",
    "max_pool_2d",
    "maximum",
    "mean",
    "minimum",
    "mul",
    "pad",
    "quantize",
    "relu",
    "relu6",
    "reshape",
    "softmax",
    "sub",
    "tanh",
    "transpose",
]
