"""Checks on the committed test model zoo (``tests/zoo``, built by ``tools/make_zoo.py``).

Every model must exist, pass the ONNX checker and run in onnxruntime. The trained models
must classify the held-out digits split at >= 90% in onnxruntime, which shows the committed
weights are the trained ones. Models exported from torch must still contain inference-form
BatchNormalization nodes (the compiler's BN folding is tested against them).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from tools.digits import load_digits_split

ZOO = Path(__file__).resolve().parent / "zoo"

TRAINED = ("lenet", "dscnn", "resnet8", "mobilenet_v1", "mlp_sigmoid")
HELPERS = ("helper_ops", "helper_matmul")
ALL_MODELS = TRAINED + HELPERS

# Exact number of BatchNormalization nodes each model must keep.
BN_COUNTS = {
    "lenet": 2,
    "dscnn": 7,
    "resnet8": 9,
    "mobilenet_v1": 7,
    "mlp_sigmoid": 1,
    "helper_matmul": 2,
}

INPUT_SHAPES = {
    "lenet": (1, 1, 16, 16),
    "dscnn": (1, 1, 16, 16),
    "resnet8": (1, 1, 16, 16),
    "mobilenet_v1": (1, 1, 16, 16),
    "mlp_sigmoid": (1, 64),
    "helper_ops": (1, 3, 12, 12),
    "helper_matmul": (1, 2, 4, 4),
}

OUTPUT_SHAPES = {name: (1, 10) for name in TRAINED + ("helper_matmul",)} | {
    "helper_ops": (1, 16)
}

HELPER_OPS_REQUIRED = {
    "Pad", "Conv", "LeakyRelu", "HardSigmoid", "HardSwish", "Tanh", "Sub", "Mul", "Div",
    "AveragePool", "MaxPool", "Concat", "ReduceMean", "Transpose", "Shape", "Gather",
    "Unsqueeze", "Reshape", "Squeeze", "Identity", "Dropout", "Softmax",
}  # fmt: skip

MIN_TEST_ACCURACY = 0.90
MAX_FILE_BYTES = 200 * 1024


def model_path(name: str) -> Path:
    return ZOO / f"{name}.onnx"


@functools.cache
def load(name: str) -> onnx.ModelProto:
    return onnx.load(str(model_path(name)))


@functools.cache
def session(name: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        str(model_path(name)), options, providers=["CPUExecutionProvider"]
    )


def run(name: str, x: np.ndarray) -> np.ndarray:
    sess = session(name)
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def random_input(name: str) -> np.ndarray:
    return np.random.default_rng(0).random(INPUT_SHAPES[name], dtype=np.float32)


def attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


@pytest.mark.parametrize("name", ALL_MODELS)
def test_model_file_exists_and_is_small(name: str) -> None:
    path = model_path(name)
    assert path.is_file(), f"{path} missing: run `python tools/make_zoo.py`"
    assert path.stat().st_size < MAX_FILE_BYTES


@pytest.mark.parametrize("name", ALL_MODELS)
def test_model_passes_checker(name: str) -> None:
    onnx.checker.check_model(load(name), full_check=True)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_model_runs_in_onnxruntime(name: str) -> None:
    sess = session(name)
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert tuple(sess.get_inputs()[0].shape) == INPUT_SHAPES[name]
    y = run(name, random_input(name))
    assert y.shape == OUTPUT_SHAPES[name]
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y))


@pytest.mark.parametrize("name", TRAINED)
def test_trained_model_accuracy_on_held_out_digits(name: str) -> None:
    shape = INPUT_SHAPES[name]
    if len(shape) == 4:
        _, _, x_test, y_test = load_digits_split(size=shape[-1], layout="NCHW")
    else:
        _, _, x_test, y_test = load_digits_split(size=8, layout="flat")
    predictions = np.array([run(name, x_test[i : i + 1]).argmax() for i in range(len(x_test))])
    accuracy = float((predictions == y_test).mean())
    assert accuracy >= MIN_TEST_ACCURACY, f"{name}: {accuracy:.4f}"


@pytest.mark.parametrize("name", sorted(BN_COUNTS))
def test_batchnorm_is_kept_in_inference_form(name: str) -> None:
    bns = [n for n in load(name).graph.node if n.op_type == "BatchNormalization"]
    assert len(bns) == BN_COUNTS[name]
    for node in bns:
        assert len(node.input) == 5
        assert len(node.output) == 1, "training-mode BatchNormalization (extra outputs)"
        assert attrs(node).get("training_mode", 0) == 0


def test_trained_models_use_the_documented_ops() -> None:
    ops = {name: {n.op_type for n in load(name).graph.node} for name in TRAINED}
    assert "MaxPool" in ops["lenet"] and "AveragePool" in ops["lenet"]
    assert "GlobalAveragePool" in ops["dscnn"]
    assert {"Add", "ReduceMean"} <= ops["resnet8"]
    assert {"Clip", "Softmax", "Gemm"} <= ops["mobilenet_v1"]
    assert {"Sigmoid", "Tanh", "Gemm"} <= ops["mlp_sigmoid"]
    depthwise = [
        n
        for n in load("dscnn").graph.node
        if n.op_type == "Conv" and attrs(n).get("group", 1) > 1
    ]
    assert len(depthwise) == 3


def test_mobilenet_outputs_probabilities() -> None:
    y = run("mobilenet_v1", random_input("mobilenet_v1"))
    np.testing.assert_allclose(y.sum(), 1.0, rtol=1e-5)


def test_helper_ops_covers_required_ops() -> None:
    model = load("helper_ops")
    ops = {n.op_type for n in model.graph.node}
    assert HELPER_OPS_REQUIRED <= ops, HELPER_OPS_REQUIRED - ops
    convs = {n.name: attrs(n) for n in model.graph.node if n.op_type == "Conv"}
    assert any(a.get("pads") == [0, 0, 1, 1] for a in convs.values())
    assert any(a.get("dilations") == [2, 2] for a in convs.values())
    assert any(a.get("group") == 2 for a in convs.values())
    (pool,) = [n for n in model.graph.node if n.op_type == "AveragePool"]
    assert attrs(pool)["count_include_pad"] == 0 and attrs(pool)["pads"] == [1, 1, 1, 1]


def test_helper_matmul_matches_numpy_reference() -> None:
    model = load("helper_matmul")
    w = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    eps = 1e-3

    def bn(x: np.ndarray, name: str) -> np.ndarray:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        scale, bias, mean, var = (
            w[f"{name}.{k}"].reshape(shape) for k in ("scale", "bias", "mean", "var")
        )
        return (x - mean) / np.sqrt(var + eps) * scale + bias

    x = random_input("helper_matmul")
    h = bn(x, "bn_in").reshape(1, 32) @ w["fc1.w"] + w["fc1.b"]
    h = np.maximum(bn(h, "bn_fc1"), 0.0)
    expected = h @ w["fc2.w"] + w["fc2.b"]
    np.testing.assert_allclose(run("helper_matmul", x), expected, rtol=1e-5, atol=1e-5)


def test_digits_split_api() -> None:
    x_train, y_train, x_test, y_test = load_digits_split()
    assert x_train.shape == (1347, 1, 16, 16) and x_test.shape == (450, 1, 16, 16)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    assert sorted(np.unique(y_test)) == list(range(10))
    flat = load_digits_split(size=8, layout="flat")
    nhwc = load_digits_split(size=16, layout="NHWC")
    assert flat[0].shape == (1347, 64) and nhwc[2].shape == (450, 16, 16, 1)
    # Same split whatever the layout: upsampling the flat images reproduces the NCHW ones.
    up = np.kron(flat[2].reshape(-1, 8, 8), np.ones((1, 2, 2), np.float32))
    np.testing.assert_array_equal(up[:, None], x_test)
    np.testing.assert_array_equal(flat[3], y_test)


@pytest.mark.slow
def test_live_export_matches_torch(tmp_path: Path) -> None:
    """Export a fresh Conv+BN+ReLU with the zoo's exporter; onnxruntime must match torch."""
    torch = pytest.importorskip("torch")
    from tools.make_zoo import export_torch_model

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, stride=2, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
    )
    bn = model[1]
    with torch.no_grad():  # non-trivial statistics, as after training
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    model.eval()

    path = tmp_path / "tiny.onnx"
    proto = export_torch_model(model, (1, 1, 16, 16), path)
    onnx.checker.check_model(proto, full_check=True)
    assert [n.op_type for n in proto.graph.node] == ["Conv", "BatchNormalization", "Relu"]
    assert not model.training

    x = np.random.default_rng(0).standard_normal((1, 1, 16, 16)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actual,) = sess.run(None, {"input": x})
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
