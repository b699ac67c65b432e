"""Hand-built TFLite models and runners for the flatbuffer-layer tests (``test_tflite_*.py``).

``run_litert`` / ``run_tflm`` run serialized bytes in LiteRT (a chosen op resolver) and in
TFLite-Micro's Python runtime; ``build_float_model`` is a small float conv net with its
float64 numpy reference; ``structural_model`` puts any operators (``ROUNDTRIP_CASES``: every
writable op with non-default options) over tensors of every kind (per-axis quantized,
variable, scalar, empty, bool, float16, ...) for round trips.
"""

from __future__ import annotations

import numpy as np
import pytest

from microlith.formats.tflite.flatbuffer import TflModel, TflOperator, TflQuant, TflTensor

litert = pytest.importorskip("ai_edge_litert.interpreter")
tflm_runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
Interpreter, OpResolverType = litert.Interpreter, litert.OpResolverType


# --------------------------------------------------------------------------- helpers


def const(name: str, arr: np.ndarray, quant: TflQuant | None = None) -> TflTensor:
    arr = np.ascontiguousarray(arr)
    dtype = "bool" if arr.dtype == np.bool_ else str(arr.dtype)
    return TflTensor(
        name, list(arr.shape), dtype, arr.astype(arr.dtype.newbyteorder("<")).tobytes(), quant
    )


def run_litert(data: bytes, inputs: list[np.ndarray], resolver=OpResolverType.BUILTIN_REF):
    interp = Interpreter(model_content=data, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    for detail, arr in zip(interp.get_input_details(), inputs, strict=True):
        interp.set_tensor(detail["index"], arr)
    interp.invoke()
    return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]


def run_tflm(data: bytes, inputs: list[np.ndarray], n_outputs: int = 1) -> list[np.ndarray]:
    interp = tflm_runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    for i, arr in enumerate(inputs):
        interp.set_input(arr, i)
    interp.invoke()
    return [interp.get_output(i) for i in range(n_outputs)]


def conv_nhwc(x, w_ohwi, bias, stride=1, depthwise=False):
    """SAME-padded NHWC convolution (odd kernels), float64 reference."""
    kh, kw = w_ohwi.shape[1:3]
    xp = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    n, h, w, _ = x.shape
    cout = w_ohwi.shape[3] if depthwise else w_ohwi.shape[0]
    out = np.zeros((n, h, w, cout))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i : i + h, j : j + w, :]
            if depthwise:
                out += patch * w_ohwi[0, i, j, :]
            else:
                out += np.einsum("nhwc,oc->nhwo", patch, w_ohwi[:, i, j, :])
    return (out + bias)[:, ::stride, ::stride, :]


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --------------------------------------------------------------------------- float model


def build_float_model(rng: np.random.Generator):
    f32 = np.float32
    w_conv = (rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(f32)
    b_conv = (rng.standard_normal(4) * 0.1).astype(f32)
    w_dw = (rng.standard_normal((1, 3, 3, 4)) * 0.3).astype(f32)
    b_dw = (rng.standard_normal(4) * 0.1).astype(f32)
    w_fc = (rng.standard_normal((10, 64)) * 0.2).astype(f32)
    b_fc = (rng.standard_normal(10) * 0.1).astype(f32)
    tensors = [
        TflTensor("input", [1, 8, 8, 3], "float32"),  # 0
        const("conv/w", w_conv),  # 1
        const("conv/b", b_conv),  # 2
        TflTensor("conv", [1, 8, 8, 4], "float32"),  # 3
        const("dw/w", w_dw),  # 4
        const("dw/b", b_dw),  # 5
        TflTensor("dw", [1, 8, 8, 4], "float32"),  # 6
        TflTensor("pool", [1, 4, 4, 4], "float32"),  # 7
        const("reshape/shape", np.array([1, 64], np.int32)),  # 8
        TflTensor("flat", [1, 64], "float32"),  # 9
        const("fc/w", w_fc),  # 10
        const("fc/b", b_fc),  # 11
        TflTensor("logits", [1, 10], "float32"),  # 12
        TflTensor("probs", [1, 10], "float32"),  # 13
    ]
    conv_opts = {"padding": "SAME", "stride_w": 1, "stride_h": 1}
    operators = [
        TflOperator("CONV_2D", [0, 1, 2], [3], {**conv_opts, "fused_activation_function": "RELU6"}),
        TflOperator("DEPTHWISE_CONV_2D", [3, 4, 5], [6], {**conv_opts, "depth_multiplier": 1}),
        TflOperator(
            "AVERAGE_POOL_2D",
            [6],
            [7],
            {
                "padding": "VALID",
                "stride_w": 2,
                "stride_h": 2,
                "filter_width": 2,
                "filter_height": 2,
            },
        ),
        TflOperator("RESHAPE", [7, 8], [9], {"new_shape": [1, 64]}),
        TflOperator("FULLY_CONNECTED", [9, 10, 11], [12]),
        TflOperator("SOFTMAX", [12], [13], {"beta": 1.0}),
    ]
    model = TflModel(tensors, operators, inputs=[0], outputs=[13])

    def reference(x):
        y = np.clip(conv_nhwc(x.astype(np.float64), w_conv, b_conv), 0, 6)
        y = conv_nhwc(y, w_dw, b_dw, depthwise=True)
        y = y.reshape(1, 4, 2, 4, 2, 4).mean(axis=(2, 4))
        y = y.reshape(1, 64) @ w_fc.T.astype(np.float64) + b_fc
        return softmax(y)

    return model, reference


# --------------------------------------------------------------------------- round trips

ROUNDTRIP_CASES: dict[str, dict] = {
    "CONV_2D": {
        "padding": "VALID",
        "stride_w": 2,
        "stride_h": 3,
        "fused_activation_function": "RELU6",
        "dilation_w_factor": 2,
        "dilation_h_factor": 3,
        "quantized_bias_type": "int32",
    },
    "DEPTHWISE_CONV_2D": {
        "padding": "VALID",
        "stride_w": 2,
        "stride_h": 1,
        "depth_multiplier": 2,
        "fused_activation_function": "RELU",
        "dilation_w_factor": 2,
        "dilation_h_factor": 4,
    },
    "TRANSPOSE_CONV": {
        "padding": "VALID",
        "stride_w": 2,
        "stride_h": 2,
        "fused_activation_function": "RELU",
        "quantized_bias_type": "int64",
    },
    "FULLY_CONNECTED": {
        "fused_activation_function": "TANH",
        "weights_format": "SHUFFLED4x16INT8",
        "keep_num_dims": True,
        "asymmetric_quantize_inputs": True,
    },
    "ADD": {"fused_activation_function": "RELU", "pot_scale_int16": False},
    "SUB": {"fused_activation_function": "RELU_N1_TO_1", "pot_scale_int16": False},
    "MUL": {"fused_activation_function": "RELU6"},
    "DIV": {"fused_activation_function": "RELU"},
    "AVERAGE_POOL_2D": {
        "padding": "VALID",
        "stride_w": 2,
        "stride_h": 3,
        "filter_width": 4,
        "filter_height": 5,
        "fused_activation_function": "RELU",
    },
    "MAX_POOL_2D": {
        "padding": "SAME",
        "stride_w": 1,
        "stride_h": 2,
        "filter_width": 3,
        "filter_height": 1,
        "fused_activation_function": "RELU6",
    },
    "MEAN": {"keep_dims": True},
    "SUM": {"keep_dims": True},
    "REDUCE_MAX": {"keep_dims": True},
    "RESHAPE": {"new_shape": [1, -1, 7]},
    "SQUEEZE": {"squeeze_dims": [0, 2]},
    "CONCATENATION": {"axis": -1, "fused_activation_function": "TANH"},
    "SOFTMAX": {"beta": 0.3},
    "LEAKY_RELU": {"alpha": 0.1},
    "GATHER": {"axis": 2, "batch_dims": 1},
    "STRIDED_SLICE": {
        "begin_mask": 1,
        "end_mask": 2,
        "ellipsis_mask": 4,
        "new_axis_mask": 8,
        "shrink_axis_mask": 16,
        "offset": True,
    },
    "SPLIT": {"num_splits": 3},
    "CAST": {"in_data_type": "int8", "out_data_type": "int16"},
    "MIRROR_PAD": {"mode": "SYMMETRIC"},
    "RESIZE_BILINEAR": {"align_corners": True, "half_pixel_centers": True},
    "BATCH_MATMUL": {"adj_x": True, "adj_y": False, "asymmetric_quantize_inputs": True},
    **{
        op: {}
        for op in (
            "PAD PADV2 TRANSPOSE LOGISTIC TANH HARD_SWISH RELU RELU6 RELU_N1_TO_1 RELU_0_TO_1 "
            "QUANTIZE DEQUANTIZE MAXIMUM MINIMUM EXPAND_DIMS PRELU EXP SQRT RSQRT ABS NEG GELU"
        ).split()
    },
}


def per_axis_int8_tensor() -> TflTensor:
    scales = np.array([0.0123, 0.5, 3.25e-4, 7.0], np.float32)
    quant = TflQuant(
        scale=[float(s) for s in scales],
        zero_point=[0, -3, 5, 127],
        quantized_dimension=3,
        min=[-1.0, -2.5, -0.125, 0.0],
        max=[1.0, 2.5, 0.125, 100.0],
    )
    data = np.arange(2 * 3 * 1 * 4, dtype=np.int8).reshape(2, 3, 1, 4)
    return const("weights/per_axis", data, quant)


def structural_model(ops: list[tuple[str, dict]]) -> TflModel:
    tensors = [
        TflTensor("a", [1, 4, 4, 8], "float32"),
        const("b", np.linspace(-1, 1, 8, dtype=np.float32)),
        per_axis_int8_tensor(),
        TflTensor("state", [1, 8], "int16", is_variable=True),
        TflTensor("q", [1, 8], "int8", quant=TflQuant([0.05], [-7])),  # 0.05 -> float32
        const("scalar", np.array(3, np.int64)),
        const("empty", np.zeros((0, 2), np.float32)),
        TflTensor("flags", [2], "bool"),
        TflTensor("half", [2, 2], "float16"),
        TflTensor("u8", [3], "uint8"),
    ]
    operators = [
        TflOperator(op, [0, 1, -1], [4 + k % 4], opts, version=1 + k % 3)
        for k, (op, opts) in enumerate(ops)
    ]
    return TflModel(
        tensors,
        operators,
        inputs=[0, 3],
        outputs=[4, 7],
        description="round trip",
        subgraph_name="sg",
        metadata={"min_runtime_version": b"1.14.0\0\0\0\0\0\0\0\0\0\0", "x": b"\x01\x02"},
    )
