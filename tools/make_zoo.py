"""Build the microlith test model zoo (``tests/zoo/*.onnx``).

Usage::

    python tools/make_zoo.py [--out tests/zoo] [--epochs N] [--only NAME ...]

Two kinds of models are produced:

* **trained** - small PyTorch networks trained briefly and deterministically (fixed seeds,
  ``torch.use_deterministic_algorithms(True)``, one CPU thread) on scikit-learn's
  handwritten digits (see ``tools/digits.py`` for the fixed train/test split), then
  exported with the legacy TorchScript ONNX exporter so BatchNormalization is kept;
* **helper** - graphs written directly with ``onnx.helper`` (seeded random weights) that
  exercise operators and patterns the trained models do not.

Every model is checked with ``onnx.checker`` (full check), run in onnxruntime, and its
operator histogram is printed. Progress goes to stderr. A full run (no ``--only``) also
rewrites ``<out>/README.md`` with the measured numbers.

Exporter notes (torch 2.x legacy exporter, ``dynamo=False``):

* ``training=TrainingMode.PRESERVE`` on a module in eval mode exports BatchNormalization
  in inference form (one output, running statistics as inputs). The same module with
  ``TrainingMode.TRAINING`` would export the 5-output training-mode node.
* What actually decides whether BatchNormalization survives is ``do_constant_folding``:
  with ``TrainingMode.EVAL`` *and* constant folding on, the exporter's eval peephole pass
  folds BatchNormalization into the preceding Conv. PRESERVE + eval + no folding keeps it.
* The exporter de-duplicates initializers with identical contents and re-creates the
  duplicates with ``Identity`` nodes; an untrained BatchNorm (weight == running_var == 1,
  bias == running_mean == 0) therefore exports as ``Identity`` nodes feeding the BN.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # running as ``python tools/make_zoo.py``
    sys.path.insert(0, str(REPO_ROOT))

from tools.digits import load_digits_split  # noqa: E402

TORCH_OPSET = 13
HELPER_OPSET = 13
HELPER_OPS_OPSET = 14  # HardSwish first appears in opset 14
SEED = 0
NUM_CLASSES = 10
DEFAULT_OUT = Path("tests") / "zoo"
IMAGE_SHAPE = (1, 1, 16, 16)
FLAT_SHAPE = (1, 64)


def log(message: str) -> None:
    """Print a progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def configure_determinism() -> None:
    """Make torch training bit-reproducible on one CPU thread."""
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set, or inter-op pool already started
        pass


def seed_everything(seed: int) -> None:
    """Reset every random generator the tool uses."""
    torch.manual_seed(seed)
    np.random.seed(seed)


# --------------------------------------------------------------------------- torch models


def conv_bn(
    cin: int,
    cout: int,
    kernel: int,
    *,
    stride: int = 1,
    padding: int = 0,
    groups: int = 1,
    act: type[nn.Module] | None = nn.ReLU,
) -> nn.Sequential:
    """Bias-free Conv2d + BatchNorm2d (+ activation): the usual folding candidate."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def depthwise_separable(
    cin: int, cout: int, *, stride: int = 1, act: type[nn.Module] = nn.ReLU
) -> nn.Sequential:
    """Depthwise 3x3 (group=cin) + BN + act, then pointwise 1x1 + BN + act."""
    return nn.Sequential(
        conv_bn(cin, cin, 3, stride=stride, padding=1, groups=cin, act=act),
        conv_bn(cin, cout, 1, act=act),
    )


def make_lenet() -> nn.Module:
    """LeNet-5 style; convolutions keep their bias so Conv(bias)+BN appears too."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),  # 16x16
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 8x8
        nn.Conv2d(6, 16, 5),  # 4x4, pads 0
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AvgPool2d(2),  # 2x2
        nn.Flatten(),
        nn.Linear(16 * 2 * 2, 64),
        nn.ReLU(),
        nn.Linear(64, NUM_CLASSES),
    )


def make_dscnn() -> nn.Module:
    """Keyword-spotting DS-CNN: stride-2 stem (symmetric ONNX pads on even input)."""
    width = 24
    return nn.Sequential(
        conv_bn(1, width, 3, stride=2, padding=1),  # 8x8
        depthwise_separable(width, width),
        depthwise_separable(width, width),
        depthwise_separable(width, width),
        nn.AdaptiveAvgPool2d(1),  # -> GlobalAveragePool
        nn.Flatten(),
        nn.Linear(width, NUM_CLASSES),
    )


class BasicBlock(nn.Module):
    """ResNet basic block; 1x1 projection shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(cin, cout, 3, stride=stride, padding=1),
            conv_bn(cout, cout, 3, padding=1, act=None),
        )
        self.shortcut: nn.Module = (
            conv_bn(cin, cout, 1, stride=stride, act=None)
            if stride != 1 or cin != cout
            else nn.Identity()
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet8(nn.Module):
    """ResNet-8 (MLPerf Tiny layout, narrower): stem + 3 stages, mean-pool head."""

    def __init__(self, widths: Sequence[int] = (8, 16, 32)) -> None:
        super().__init__()
        self.stem = conv_bn(1, widths[0], 3, padding=1)  # 16x16
        self.stages = nn.Sequential(
            BasicBlock(widths[0], widths[0], 1),  # identity shortcut, 16x16
            BasicBlock(widths[0], widths[1], 2),  # projection, 8x8
            BasicBlock(widths[1], widths[2], 2),  # projection, 4x4
        )
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(widths[2], NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        x = x.mean(dim=(2, 3), keepdim=True)  # -> ReduceMean(axes=[2,3], keepdims=1)
        return self.fc(self.flatten(x))


def make_resnet8() -> nn.Module:
    return ResNet8()


def make_mobilenet_v1() -> nn.Module:
    """MobileNetV1 with ReLU6 (-> Clip(0, 6)); trained on logits, Softmax added at export."""
    return nn.Sequential(
        conv_bn(1, 8, 3, stride=2, padding=1, act=nn.ReLU6),  # 8x8
        depthwise_separable(8, 16, act=nn.ReLU6),
        depthwise_separable(16, 32, stride=2, act=nn.ReLU6),  # 4x4
        depthwise_separable(32, 32, act=nn.ReLU6),
        nn.AvgPool2d(4),  # -> AveragePool 4x4
        nn.Flatten(),
        nn.Linear(32, NUM_CLASSES),
    )


def make_mlp_sigmoid() -> nn.Module:
    return nn.Sequential(
        nn.Linear(64, 32),
        nn.BatchNorm1d(32),  # BatchNormalization on a 2-D tensor
        nn.Sigmoid(),
        nn.Linear(32, 32),
        nn.Tanh(),
        nn.Linear(32, NUM_CLASSES),
    )


# ----------------------------------------------------------------------- training/export


def train_classifier(
    model: nn.Module,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch_size: int = 32,
    seed: int = SEED,
) -> None:
    """Mini-batch AdamW with cosine learning-rate decay and cross-entropy on logits."""
    x = torch.from_numpy(x_train)
    y = torch.from_numpy(y_train)
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = (len(x) + batch_size - 1) // batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, epochs * steps_per_epoch)
    )
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            if len(idx) < 2:  # BatchNorm needs more than one sample per batch
                continue
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            scheduler.step()
    model.eval()


@torch.no_grad()
def torch_accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    predictions = model(torch.from_numpy(x)).argmax(dim=1).numpy()
    return float((predictions == y).mean())


def check_inference_batchnorm(model: onnx.ModelProto) -> None:
    """Raise if any BatchNormalization node is in training form (extra outputs/flag)."""
    for node in model.graph.node:
        if node.op_type != "BatchNormalization":
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if len(node.output) != 1 or attrs.get("training_mode", 0) != 0:
            raise RuntimeError(f"BatchNormalization {node.name!r} was exported in training mode")


def export_torch_model(
    model: nn.Module,
    input_shape: Sequence[int],
    path: Path | str,
    *,
    opset: int = TORCH_OPSET,
) -> onnx.ModelProto:
    """Export ``model`` (switched to eval mode) to ``path`` keeping BatchNormalization.

    Legacy TorchScript exporter, fixed input shape (batch 1), input ``input`` and output
    ``logits``. ``TrainingMode.PRESERVE`` + eval mode gives inference-form BN nodes and
    ``do_constant_folding=False`` stops the exporter from folding BN into Conv.
    """
    model = model.eval()
    example = torch.zeros(tuple(input_shape), dtype=torch.float32)
    with warnings.catch_warnings():
        # The legacy exporter is deprecated in torch >= 2.9 but is the one that keeps BN.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=opset,
            training=torch.onnx.TrainingMode.PRESERVE,
            do_constant_folding=False,
            input_names=["input"],
            output_names=["logits"],
        )
    proto = onnx.load(str(path))
    check_inference_batchnorm(proto)
    return proto


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


# ----------------------------------------------------------------------------- the zoo


@dataclass(frozen=True)
class TrainedSpec:
    name: str
    description: str
    factory: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    epochs: int
    lr: float
    softmax_head: bool = False  # append nn.Softmax(dim=1) after training, before export


@dataclass(frozen=True)
class HelperSpec:
    name: str
    description: str
    build: Callable[[], onnx.ModelProto]


TRAINED: tuple[TrainedSpec, ...] = (
    TrainedSpec(
        "lenet",
        "LeNet-style: Conv5x5(pad 2, bias)+BN+ReLU+MaxPool, Conv5x5(valid)+BN+ReLU+AvgPool, "
        "Flatten, Gemm+ReLU, Gemm.",
        make_lenet, IMAGE_SHAPE, epochs=12, lr=1e-2,
    ),
    TrainedSpec(
        "dscnn",
        "DS-CNN (keyword-spotting style): bias-free Conv3x3 stride 2 pads [1,1,1,1] on the even "
        "16x16 input (not TFLite SAME, which would pad 0 before / 1 after, so it needs an "
        "explicit Pad) + BN + ReLU, 3 x [depthwise 3x3 (group=C) + BN + ReLU, pointwise 1x1 + "
        "BN + ReLU], GlobalAveragePool, Flatten, Gemm.",
        make_dscnn, IMAGE_SHAPE, epochs=12, lr=1e-2,
    ),
    TrainedSpec(
        "resnet8",
        "ResNet-8 style: stem Conv+BN+ReLU, 3 basic blocks (identity shortcut, then two "
        "1x1 stride-2 projection shortcuts), BN everywhere, residual Add then ReLU, "
        "ReduceMean(axes [2,3], keepdims 1), Flatten, Gemm. The two Identity nodes are the "
        "exporter's initializer de-duplication: the BN biases right before each projection "
        "Add receive identical gradients, so body and shortcut BN bias end up bit-identical "
        "and one is re-created as Identity(other) (Identity on an initializer, in the graph).",
        make_resnet8, IMAGE_SHAPE, epochs=10, lr=1e-2,
    ),
    TrainedSpec(
        "mobilenet_v1",
        "MobileNetV1 style: ReLU6 exported as Clip with min/max from scalar Constant nodes "
        "(0 and 6), stride-2 stem, depthwise-separable blocks (one stride 2), AveragePool 4x4, "
        "Flatten, Gemm, Softmax (the `logits` output holds probabilities).",
        make_mobilenet_v1, IMAGE_SHAPE, epochs=15, lr=1e-2, softmax_head=True,
    ),
    TrainedSpec(
        "mlp_sigmoid",
        "MLP on the 64 raw pixels: Gemm+BatchNormalization(2-D)+Sigmoid, Gemm+Tanh, Gemm.",
        make_mlp_sigmoid, FLAT_SHAPE, epochs=30, lr=1e-2,
    ),
)

HELPERS: tuple[HelperSpec, ...] = (
    HelperSpec(
        "helper_ops",
        "onnx.helper graph, opset 14, [1,3,12,12] -> [1,16]: explicit Pad + pads-0 Conv, "
        "asymmetric-pad Conv, dilated Conv, grouped Conv (group 2), LeakyRelu, HardSwish, "
        "HardSigmoid, Tanh, per-channel Sub/Mul/Div, AveragePool(count_include_pad=0, pads), "
        "MaxPool stride 2, Concat, Transpose, ReduceMean, Shape->Gather->Unsqueeze->Concat->"
        "Reshape (folds to a constant), Unsqueeze, Squeeze, Identity, Dropout, scalar Mul "
        "(temperature 8), Softmax. No value_info is stored.",
        build_helper_ops,
    ),
    HelperSpec(
        "helper_matmul",
        "onnx.helper graph, opset 13, [1,2,4,4] -> [1,10]: lone BatchNormalization on the 4-D "
        "input, Reshape, MatMul+Add (Gemm-less FC), BatchNormalization on a 2-D tensor, Relu, "
        "MatMul+Add. A numpy reference of the whole graph is in tests/test_zoo_models.py.",
        build_helper_matmul,
    ),
)

ALL_NAMES: tuple[str, ...] = tuple(s.name for s in TRAINED) + tuple(s.name for s in HELPERS)


@dataclass
class ModelReport:
    name: str
    kind: str
    description: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    opset: int
    ops: dict[str, int]
    weights: int
    size_bytes: int
    seconds: float
    trainable_params: int | None = None
    epochs: int | None = None
    train_acc: float | None = None
    test_acc: float | None = None
    max_abs_diff: float | None = None


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    return dict(sorted(collections.Counter(n.op_type for n in model.graph.node).items()))


def format_histogram(ops: dict[str, int]) -> str:
    return ", ".join(f"{op} x{count}" for op, count in ops.items())


def initializer_elements(model: onnx.ModelProto) -> int:
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer)


def ort_session(path: Path | str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_predict(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    """Run a batch-1 model sample by sample; returns the stacked outputs."""
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def verify_onnx(path: Path) -> tuple[onnx.ModelProto, ort.InferenceSession, tuple[int, ...]]:
    """Full checker, one onnxruntime run on random input; returns (model, session, out shape)."""
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    session = ort_session(path)
    shape = tuple(int(d) for d in session.get_inputs()[0].shape)
    x = np.random.default_rng(SEED).random(shape, dtype=np.float32)
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    if not np.all(np.isfinite(y)):
        raise RuntimeError(f"{path.name}: onnxruntime produced non-finite values")
    return model, session, tuple(y.shape)


def build_trained(spec: TrainedSpec, out: Path, epochs: int | None) -> ModelReport:
    start = time.perf_counter()
    seed_everything(SEED)
    size = spec.input_shape[-1] if len(spec.input_shape) == 4 else 8
    layout = "NCHW" if len(spec.input_shape) == 4 else "flat"
    x_train, y_train, x_test, y_test = load_digits_split(size, layout)

    body = spec.factory()
    trainable = sum(p.numel() for p in body.parameters() if p.requires_grad)
    n_epochs = spec.epochs if epochs is None else epochs
    train_classifier(body, x_train, y_train, epochs=n_epochs, lr=spec.lr)
    model = nn.Sequential(body, nn.Softmax(dim=1)) if spec.softmax_head else body
    path = out / f"{spec.name}.onnx"
    export_torch_model(model, spec.input_shape, path)

    onnx_model, session, out_shape = verify_onnx(path)
    ort_out = ort_predict(session, x_test)
    with torch.no_grad():
        torch_out = model.eval()(torch.from_numpy(x_test)).numpy()
    return ModelReport(
        name=spec.name,
        kind="trained",
        description=spec.description,
        input_shape=spec.input_shape,
        output_shape=out_shape,
        opset=TORCH_OPSET,
        ops=op_histogram(onnx_model),
        weights=initializer_elements(onnx_model),
        size_bytes=path.stat().st_size,
        seconds=time.perf_counter() - start,
        trainable_params=trainable,
        epochs=n_epochs,
        train_acc=torch_accuracy(model, x_train, y_train),
        test_acc=float((ort_out.argmax(axis=1) == y_test).mean()),
        max_abs_diff=float(np.abs(ort_out - torch_out).max()),
    )


def build_helper(spec: HelperSpec, out: Path) -> ModelReport:
    start = time.perf_counter()
    path = out / f"{spec.name}.onnx"
    onnx.save(spec.build(), str(path))
    onnx_model, session, out_shape = verify_onnx(path)
    input_shape = tuple(int(d) for d in session.get_inputs()[0].shape)
    return ModelReport(
        name=spec.name,
        kind="helper",
        description=spec.description,
        input_shape=input_shape,
        output_shape=out_shape,
        opset=onnx_model.opset_import[0].version,
        ops=op_histogram(onnx_model),
        weights=initializer_elements(onnx_model),
        size_bytes=path.stat().st_size,
        seconds=time.perf_counter() - start,
    )


def log_report(r: ModelReport) -> None:
    line = f"[{r.name}] {r.size_bytes / 1024:.1f} KiB, {r.weights} weights"
    if r.kind == "trained":
        line += (
            f", {r.trainable_params} trainable params, train acc {r.train_acc:.4f}, "
            f"test acc (onnxruntime) {r.test_acc:.4f}, |ort - torch| max {r.max_abs_diff:.2e}"
        )
    log(f"{line}, {r.seconds:.1f}s")
    log(f"[{r.name}] ops: {format_histogram(r.ops)}")


def render_readme(reports: Sequence[ModelReport]) -> str:
    def shape(s: tuple[int, ...]) -> str:
        return "[" + ",".join(map(str, s)) + "]"

    lines = [
        "# Test model zoo",
        "",
        "Generated by `tools/make_zoo.py`; every number below was measured by that run",
        "(accuracy = onnxruntime on the 450-image held-out split of",
        "`tools/digits.py::load_digits_split`, train accuracy = torch on the 1347 training",
        "images). Regenerate everything (well under a minute on one CPU core) with:",
        "",
        "```",
        "python tools/make_zoo.py --out tests/zoo",
        "```",
        "",
        "Trained models use scikit-learn's 8x8 handwritten digits scaled to [0, 1]; the conv",
        "nets see them upsampled 2x (pixel replication) to 16x16, NCHW. Training is",
        "deterministic on one CPU thread (bit-exact reproduction may still need the same",
        "CPU/torch build). Torch models are exported with the legacy exporter",
        "(`dynamo=False`, opset 13, `TrainingMode.PRESERVE` on an eval-mode module,",
        "`do_constant_folding=False`) so BatchNormalization nodes stay in the graph in",
        "inference form. All models have batch 1, input `input` and output `logits`",
        "(mobilenet_v1's output is already softmax probabilities); the onnx.helper models",
        "use `input`/`output`.",
        "",
        "| model | kind | input | output | opset | weights | size | epochs | train acc "
        "| test acc |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        train = f"{100 * r.train_acc:.2f}%" if r.train_acc is not None else "-"
        test = f"{100 * r.test_acc:.2f}%" if r.test_acc is not None else "-"
        epochs = str(r.epochs) if r.epochs is not None else "-"
        lines.append(
            f"| `{r.name}.onnx` | {r.kind} | {shape(r.input_shape)} | {shape(r.output_shape)} "
            f"| {r.opset} | {r.weights} | {r.size_bytes / 1024:.1f} KiB | {epochs} | {train} "
            f"| {test} |"
        )
    lines += ["", "\"weights\" counts initializer elements (including BN running statistics).", ""]
    for r in reports:
        lines += [f"## {r.name}.onnx", "", r.description, ""]
        if r.trainable_params is not None:
            lines += [f"Trainable parameters: {r.trainable_params}.", ""]
        lines += ["Ops: " + format_histogram(r.ops) + ".", ""]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--epochs", type=int, default=None, help="override every trained model's epoch count"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=ALL_NAMES,
        metavar="NAME",
        help=f"build only this model (repeatable); one of {', '.join(ALL_NAMES)}",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_determinism()
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only or ALL_NAMES)
    reports: list[ModelReport] = []
    total = time.perf_counter()
    for spec in TRAINED:
        if spec.name in wanted:
            log(f"[{spec.name}] training ...")
            reports.append(build_trained(spec, args.out, args.epochs))
            log_report(reports[-1])
    for helper_spec in HELPERS:
        if helper_spec.name in wanted:
            reports.append(build_helper(helper_spec, args.out))
            log_report(reports[-1])
    if args.only:
        log("--only given: README.md left untouched")
    else:
        (args.out / "README.md").write_text(render_readme(reports) + "\n")
        log(f"wrote {args.out / 'README.md'}")
    log(f"done: {len(reports)} models in {time.perf_counter() - total:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
