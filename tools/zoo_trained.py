"""The zoo's trained models (``tools/make_zoo.py``): PyTorch networks, training, export.

Small PyTorch networks trained briefly and deterministically (fixed seeds,
``torch.use_deterministic_algorithms(True)``, one CPU thread) on scikit-learn's
handwritten digits (see ``tools/digits.py`` for the fixed train/test split), then exported
with the legacy TorchScript ONNX exporter so BatchNormalization is kept
(``export_torch_model``, also used by the tests on models they build themselves).

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

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from tools.torch_cpu import pin_cpu_capability

pin_cpu_capability()  # before torch is imported: one CPU capability on every machine

import torch  # noqa: E402
from onnx import helper  # noqa: E402
from torch import nn  # noqa: E402

from tools.digits import NUM_CLASSES  # noqa: E402

TORCH_OPSET = 13
SEED = 0


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
