"""Int8 reference kernels (``microlith.quant.reference``) vs TFLite-Micro: the shared harness.

The ``test_int8_*_vs_tflm.py`` modules of this folder (one per op family) build every case
as a one-operator int8 ``.tflite`` (``OneOp``, written with
``microlith.formats.tflite.flatbuffer``), run it in TFLite-Micro's Python runtime and assert
(``check``) that our numpy kernel returns identical bytes.  The same model is also run with
LiteRT's reference op resolver (``OpResolverType.BUILTIN_REF``); its differences are only
recorded in ``LITERT_STATS`` (printed at the end of the session with ``pytest -s``, by this
folder's ``conftest.py``).  Measured with tflite-micro 0.dev20261023 and
ai-edge-litert 2.3.0 on these modules' cases (int8 elements compared, elements where
LiteRT-reference differs from TFLM by > 0 and by > 1 LSB, models LiteRT refused):

    op                  elements  >0 LSB  >1 LSB  refused
    ADD                    66773       0       0   0/41
    AVERAGE_POOL_2D         1049       0       0   0/15
    CONCATENATION            173       0       0   0/3
    CONV_2D                 3283       0       0   1/23   (the case without bias)
    DEPTHWISE_CONV_2D       6462       0       0   0/21
    DEQUANTIZE              1024       0       0   0/4    (LSB = input scale)
    FULLY_CONNECTED         2689       1       0   0/23
    HARD_SWISH              4608       1       0   0/18   (the precision-pinning case)
    LEAKY_RELU              4352       2       0   0/17   (the precision-pinning cases)
    LOGISTIC                4352       0       0   0/17
    MAXIMUM / MINIMUM     180 each     0       0   0/4 each
    MAX_POOL_2D             1114       0       0   0/16
    MEAN                    1099       0       0   0/19
    MUL                      980       0       0   0/40
    PAD                      207       0       0   0/3
    QUANTIZE                4825       0       0   0/20
    RELU                    3840       3       0   0/15   (the precision-pinning case)
    RELU6                   3840       0       0   0/15
    RESHAPE / TRANSPOSE  120/360       0       0   0/4
    SOFTMAX                 2960       0       0   0/18
    SUB                    66847       0       0   0/41
    TANH                    4352       0       0   0/17

So LiteRT's reference kernels never differ by more than 1 LSB here; they differ by one
step on ~0.04% of FULLY_CONNECTED outputs, and -- because they evaluate the RELU,
LEAKY_RELU and HARD_SWISH multipliers in float32 where this TFLM build uses double --
on the scales the ``test_precision_*`` cases pin.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pytest

from microlith.backends.tflite.versions import default_op_version
from microlith.formats.tflite.flatbuffer import (
    TflModel,
    TflOperator,
    TflQuant,
    TflTensor,
    serialize_model,
)

tflm_runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
litert = pytest.importorskip("ai_edge_litert.interpreter")

# op -> [elements, >0, >1, models, refused]
LITERT_STATS: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])


# --------------------------------------------------------------------------- model building


def f32(x: float) -> float:
    return float(np.float32(x))


def q(scale: float | list[float], zero_point: int | list[int] = 0, dim: int = 0) -> TflQuant:
    scales = [f32(s) for s in (scale if isinstance(scale, list) else [scale])]
    zps = zero_point if isinstance(zero_point, list) else [zero_point] * len(scales)
    return TflQuant(scales, [int(z) for z in zps], quantized_dimension=dim)


@dataclass
class OneOp:
    """A one-operator model under construction: runtime inputs, constants, outputs."""

    op: str
    options: dict = field(default_factory=dict)
    tensors: list[TflTensor] = field(default_factory=list)
    op_inputs: list[int] = field(default_factory=list)
    model_inputs: list[int] = field(default_factory=list)
    feeds: list[np.ndarray] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    per_channel: bool = False

    def _add(self, t: TflTensor) -> int:
        self.tensors.append(t)
        return len(self.tensors) - 1

    def input(self, value: np.ndarray, quant: TflQuant | None) -> OneOp:
        dtype = str(value.dtype)
        i = self._add(TflTensor(f"in{len(self.feeds)}", list(value.shape), dtype, None, quant))
        self.op_inputs.append(i)
        self.model_inputs.append(i)
        self.feeds.append(value)
        return self

    def const(self, value: np.ndarray | None, quant: TflQuant | None = None) -> OneOp:
        if value is None:
            self.op_inputs.append(-1)
            return self
        data = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<")).tobytes()
        name = f"c{len(self.tensors)}"
        self.op_inputs.append(
            self._add(TflTensor(name, list(value.shape), str(value.dtype), data, quant))
        )
        return self

    def output(self, shape: tuple[int, ...], quant: TflQuant | None, dtype: str = "int8") -> OneOp:
        self.outputs.append(self._add(TflTensor("out", list(shape), dtype, None, quant)))
        return self

    def serialize(self) -> bytes:
        in_dtypes = [self.tensors[i].dtype if i >= 0 else None for i in self.op_inputs]
        ranks = [len(self.tensors[i].shape) if i >= 0 else 0 for i in self.op_inputs]
        version = default_op_version(
            self.op,
            in_dtypes,
            [self.tensors[i].dtype for i in self.outputs],
            options=self.options,
            input_ranks=ranks,
            per_channel=self.per_channel,
        )
        operator = TflOperator(self.op, self.op_inputs, self.outputs, self.options, version)
        model = TflModel(self.tensors, [operator], self.model_inputs, self.outputs)
        return serialize_model(model)


def run_tflm(data: bytes, feeds: list[np.ndarray]) -> np.ndarray:
    interp = tflm_runtime.Interpreter.from_bytes(data, arena_size=1 << 20)
    for i, arr in enumerate(feeds):
        interp.set_input(arr, i)
    interp.invoke()
    return interp.get_output(0)


def run_litert(data: bytes, feeds: list[np.ndarray]) -> np.ndarray | None:
    try:
        interp = litert.Interpreter(
            model_content=data, experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF
        )
        interp.allocate_tensors()
        for detail, arr in zip(interp.get_input_details(), feeds, strict=True):
            interp.set_tensor(detail["index"], arr)
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"])
    except (RuntimeError, ValueError):
        return None


def check(model: OneOp, ours: np.ndarray, lsb: float = 1.0) -> None:
    """Assert ``ours`` == TFLM byte for byte; record LiteRT-reference differences."""
    data = model.serialize()
    ref = run_tflm(data, model.feeds)
    assert ours.dtype == ref.dtype, (ours.dtype, ref.dtype)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    if not np.array_equal(ours, ref):
        bad = np.flatnonzero(ours.reshape(-1) != ref.reshape(-1))
        raise AssertionError(
            f"{model.op}: {bad.size}/{ours.size} elements differ from TFLM, e.g. index "
            f"{bad[:5]}: ours {ours.reshape(-1)[bad[:5]]} tflm {ref.reshape(-1)[bad[:5]]}"
        )
    stats = LITERT_STATS[model.op]
    stats[3] += 1
    other = run_litert(data, model.feeds)
    if other is None or other.shape != ours.shape:
        stats[4] += 1
        return
    diff = np.abs(other.astype(np.float64) - ours.astype(np.float64)) / lsb
    stats[0] += diff.size
    stats[1] += int(np.count_nonzero(diff > 0))
    stats[2] += int(np.count_nonzero(diff > 1))


def litert_table() -> str:
    """The recorded LiteRT-reference differences, one row per op."""
    lines = ["", f"{'op':20} {'elements':>9} {'>0 LSB':>8} {'>1 LSB':>8} {'refused':>8}"]
    for op in sorted(LITERT_STATS):
        n, d0, d1, models, refused = LITERT_STATS[op]
        lines.append(f"{op:20} {n:9d} {d0:8d} {d1:8d} {refused:5d}/{models}")
    return "\n".join(lines)


def rng_for(key: object) -> np.random.Generator:
    """A generator seeded by a stable hash of ``key`` (``hash()`` of str is salted)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def rand_i8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def rand_scale(rng: np.random.Generator, lo: float = 2e-3, hi: float = 0.2) -> float:
    return f32(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def rand_zp(rng: np.random.Generator) -> int:
    return int(rng.integers(-100, 101))


ALL_INT8 = np.arange(-128, 128, dtype=np.int8)


# --------------------------------------------------------------------------- random sweeps

ACTS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


def pick(rng: np.random.Generator, items: list):
    """One of ``items``, drawn from ``rng``."""
    return items[int(rng.integers(len(items)))]
