"""The test models shipped inside the ``onnx`` package (``onnx/backend/test/data/light``)
compile unmodified: their weights are ``ConstantOfShape`` nodes (folded at compile time),
their Dropouts carry an unread mask output and DenseNet joins with Concat chains.

Float ``.tflite``: LiteRT equals onnxruntime within 1e-4. int8 (random calibration in
[-1, 1], ``--fallback float``): their weights are one constant per tensor, so the 1000
logits tie and the final int8 SOFTMAX would abort TFLite-Micro and LiteRT (see
``microlith.quant.limits``); it stays float. Our integer interpreter and the C host
build equal TFLite-Micro on every output, the logits included (``tools/light_models``);
models with LRN (AlexNet, Inception v1, ZFNet) run in LiteRT only (TFLite-Micro has no
LRN kernel), within 1 LSB. Float C is within 1e-5 of our interpreter on the logits. The
rest (the LRN models in int8 and C: ``tests/c_end_to_end/test_c_fallback.py`` covers the
LRN kernel and island on a small net; ZFNet and VGG-19) is ``tools/bench_light.py``.
"""

from __future__ import annotations

import pytest

from tools.light_models import (
    check_float_c,
    check_float_tflite,
    check_int8,
    compile_mode,
    model_path,
    samples,
)


def _need(name: str) -> None:
    if not model_path(name).exists():
        pytest.skip(f"{model_path(name).name} is not in this onnx package")


def _check_float(name: str) -> None:
    _need(name)
    check = check_float_tflite(name, compile_mode(name, "float-tflite"), samples(name, 1))
    assert check.ok, check.detail


def _check_int8_and_c(name: str) -> None:
    _need(name)
    tflite, c = check_int8(name, samples(name, 2, seed=1))
    assert tflite.ok, tflite.detail
    assert c is not None and c.ok, c.detail


@pytest.mark.slow
def test_squeezenet_float_int8_and_c() -> None:
    _check_float("squeezenet")
    _check_int8_and_c("squeezenet")
    check = check_float_c("squeezenet", samples("squeezenet", 1, seed=1))
    assert check.ok, check.detail


@pytest.mark.slow
def test_shufflenet_int8_and_c() -> None:
    _check_int8_and_c("shufflenet")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "inception_v2", "densenet121", "inception_v1",
                                  "shufflenet", "bvlc_alexnet"])
def test_float_compiles_unmodified(name: str) -> None:
    _check_float(name)
