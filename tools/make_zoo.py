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

The torch networks, their training and export are in ``tools/zoo_trained.py`` (with the
exporter notes); the ``onnx.helper`` graphs in ``tools/zoo_helpers.py``.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # running as ``python tools/make_zoo.py``
    sys.path.insert(0, str(REPO_ROOT))

from tools.digits import load_digits_split  # noqa: E402
from tools.zoo_helpers import build_helper_matmul, build_helper_ops  # noqa: E402
from tools.zoo_trained import (  # noqa: E402
    SEED,
    TORCH_OPSET,
    configure_determinism,
    export_torch_model,
    make_dscnn,
    make_lenet,
    make_mlp_sigmoid,
    make_mobilenet_v1,
    make_resnet8,
    seed_everything,
    torch_accuracy,
    train_classifier,
)

DEFAULT_OUT = Path("tests") / "zoo"
IMAGE_SHAPE = (1, 1, 16, 16)
FLAT_SHAPE = (1, 64)


def log(message: str) -> None:
    """Print a progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


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
