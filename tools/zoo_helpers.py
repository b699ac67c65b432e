"""The zoo's helper models (``tools/make_zoo.py``): graphs written with ``onnx.helper``.

Seeded random weights; they exercise operators and patterns the trained models do not
(``build_helper_ops``: operator coverage; ``build_helper_matmul``: Gemm-less fully
connected layers and BatchNormalization without a Conv).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tools.digits import NUM_CLASSES

HELPER_OPSET = 13
HELPER_OPS_OPSET = 14  # HardSwish first appears in opset 14


# ------------------------------------------------------------------------- helper models


class _GraphBuilder:
    """Tiny convenience wrapper that names nodes and initializers."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def weight(self, name: str, shape: Sequence[int], fan_in: int) -> str:
        w = self.rng.normal(0.0, 1.0 / np.sqrt(fan_in), size=tuple(shape)).astype(np.float32)
        return self.const(name, w)

    def uniform(self, name: str, shape: Sequence[int], low: float, high: float) -> str:
        return self.const(name, self.rng.uniform(low, high, size=tuple(shape)).astype(np.float32))

    def node(self, op: str, inputs: Sequence[str], output: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attrs))
        return output

    def model(
        self,
        name: str,
        inputs: Sequence[onnx.ValueInfoProto],
        outputs: Sequence[onnx.ValueInfoProto],
        opset: int,
        doc: str,
    ) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, name, list(inputs), list(outputs), initializer=self.initializers
        )
        graph.doc_string = doc
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", opset)],
            producer_name="microlith-make_zoo",
        )
        model.ir_version = 8  # readable by every onnxruntime >= 1.15
        # No value_info is stored (like the torch exports): shape inference is the
        # compiler's job. The checker's full check still runs strict shape inference.
        return model


def build_helper_ops(seed: int = 1) -> onnx.ModelProto:
    """One [1,3,12,12] -> [1,16] graph covering ops the trained models lack."""
    b = _GraphBuilder(seed)
    f32 = TensorProto.FLOAT

    # Explicit constant Pad followed by an unpadded Conv: foldable into the Conv.
    x = b.node(
        "Pad",
        ["input", b.const("pad_pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
         b.const("pad_value", np.array(0.0, np.float32))],
        "padded",
        mode="constant",
    )  # [1,3,14,14]
    x = b.node(
        "Conv",
        [x, b.weight("conv_a.w", (8, 3, 3, 3), 27), b.uniform("conv_a.b", (8,), -0.1, 0.1)],
        "conv_a",
        kernel_shape=[3, 3], pads=[0, 0, 0, 0], strides=[1, 1],
    )  # [1,8,12,12]
    x = b.node("LeakyRelu", [x], "leaky", alpha=0.1)
    # Asymmetric padding (TF "SAME" for an even kernel): pads = [top, left, bottom, right].
    x = b.node(
        "Conv",
        [x, b.weight("conv_b.w", (8, 8, 2, 2), 32), b.uniform("conv_b.b", (8,), -0.1, 0.1)],
        "conv_b",
        kernel_shape=[2, 2], pads=[0, 0, 1, 1],
    )  # [1,8,12,12]
    # Per-channel broadcasting arithmetic against [C,1,1] constants.
    x = b.node("Sub", [x, b.uniform("chan_shift", (8, 1, 1), -0.2, 0.2)], "sub")
    x = b.node("Mul", [x, b.uniform("chan_scale", (8, 1, 1), 0.5, 1.5)], "mul")
    x = b.node("Div", [x, b.uniform("chan_div", (8, 1, 1), 0.5, 2.0)], "div")
    # Two branches: dilated conv + HardSwish, grouped (not depthwise) conv + HardSigmoid.
    d = b.node(
        "Conv",
        [x, b.weight("conv_dil.w", (8, 8, 3, 3), 72), b.uniform("conv_dil.b", (8,), -0.1, 0.1)],
        "conv_dilated",
        kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 2, 2, 2],
    )
    d = b.node("HardSwish", [d], "hardswish")
    g = b.node(
        "Conv",
        [x, b.weight("conv_grp.w", (8, 4, 3, 3), 36), b.uniform("conv_grp.b", (8,), -0.1, 0.1)],
        "conv_grouped",
        kernel_shape=[3, 3], group=2, pads=[1, 1, 1, 1],
    )
    g = b.node("HardSigmoid", [g], "hardsigmoid", alpha=0.2, beta=0.5)
    x = b.node("Concat", [d, g], "concat", axis=1)  # [1,16,12,12]
    x = b.node("Tanh", [x], "tanh")
    x = b.node(
        "AveragePool", [x], "avgpool",
        kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1], count_include_pad=0,
    )  # [1,16,12,12]
    x = b.node("MaxPool", [x], "maxpool", kernel_shape=[2, 2], strides=[2, 2])  # [1,16,6,6]
    x = b.node("Transpose", [x], "transpose", perm=[0, 1, 3, 2])
    x = b.node("ReduceMean", [x], "reduce_mean", axes=[2, 3], keepdims=1)  # [1,16,1,1]
    # Flatten through a dynamic-looking shape computation that folds to [1, -1].
    shape = b.node("Shape", [x], "shape")
    batch = b.node("Gather", [shape, b.const("idx0", np.array(0, np.int64))], "batch", axis=0)
    batch = b.node("Unsqueeze", [batch, b.const("axes0", np.array([0], np.int64))], "batch_1d")
    target = b.node(
        "Concat", [batch, b.const("minus_one", np.array([-1], np.int64))], "target_shape", axis=0
    )
    x = b.node("Reshape", [x, target], "reshape")  # [1,16]
    x = b.node("Unsqueeze", [x, b.const("axes1", np.array([1], np.int64))], "unsqueeze")
    x = b.node("Squeeze", [x, b.const("axes1_sq", np.array([1], np.int64))], "squeeze")
    x = b.node("Identity", [x], "identity")
    x = b.node("Dropout", [x], "dropout")
    # Scalar temperature so the Softmax input has a useful spread (errors stay visible).
    x = b.node("Mul", [x, b.const("temperature", np.array(8.0, np.float32))], "scaled")
    b.node("Softmax", [x], "output", axis=1)

    return b.model(
        "helper_ops",
        [helper.make_tensor_value_info("input", f32, [1, 3, 12, 12])],
        [helper.make_tensor_value_info("output", f32, [1, 16])],
        HELPER_OPS_OPSET,
        "Operator coverage graph built with onnx.helper (random weights).",
    )


def build_helper_matmul(seed: int = 2) -> onnx.ModelProto:
    """Lone 4-D BatchNormalization, then MatMul+Add FC layers with a 2-D BatchNormalization."""
    b = _GraphBuilder(seed)
    f32 = TensorProto.FLOAT

    def bn(x: str, name: str, channels: int) -> str:
        return b.node(
            "BatchNormalization",
            [
                x,
                b.uniform(f"{name}.scale", (channels,), 0.5, 1.5),
                b.uniform(f"{name}.bias", (channels,), -0.5, 0.5),
                b.uniform(f"{name}.mean", (channels,), -0.5, 0.5),
                b.uniform(f"{name}.var", (channels,), 0.5, 2.0),
            ],
            name,
            epsilon=1e-3,
        )

    x = bn("input", "bn_in", 2)  # [1,2,4,4], no preceding Conv: a per-channel mul-add
    x = b.node("Reshape", [x, b.const("flat_shape", np.array([1, 32], np.int64))], "flatten")
    x = b.node("MatMul", [x, b.weight("fc1.w", (32, 16), 32)], "fc1_matmul")
    x = b.node("Add", [x, b.uniform("fc1.b", (16,), -0.1, 0.1)], "fc1")
    x = bn(x, "bn_fc1", 16)  # BatchNormalization on a [1,16] tensor
    x = b.node("Relu", [x], "relu")
    x = b.node("MatMul", [x, b.weight("fc2.w", (16, NUM_CLASSES), 16)], "fc2_matmul")
    b.node("Add", [x, b.uniform("fc2.b", (NUM_CLASSES,), -0.1, 0.1)], "output")

    return b.model(
        "helper_matmul",
        [helper.make_tensor_value_info("input", f32, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("output", f32, [1, NUM_CLASSES])],
        HELPER_OPSET,
        "Gemm-less fully connected layers and BatchNormalization without Conv.",
    )
