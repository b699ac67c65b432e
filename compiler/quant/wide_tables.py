"""Lookup tables of the 16x8 LOGISTIC / TANH / SOFTMAX kernels, generated from the maths.

TFLite-Micro's int16 kernels interpolate linearly between table entries; the tables here
are computed from their defining formulas (no table is copied) and reproduce TFLite-Micro's
outputs bit for bit on every int16 input (``tests/test_int16_lut.py`` runs all 65536).

* ``sigmoid_table()``: 256 unsigned Q0.16 entries of ``sigmoid`` on the grid ``x = i / 24``,
  ``0 <= x < 10.67``, each raised by half the chord's sag at the interval's midpoint (see
  the function). LOGISTIC reads it at ``|x|`` and TANH at ``2|x|``
  (``tanh(x) = 2 sigmoid(2x) - 1``); both use the symmetry ``f(-x) = 1 - f(x)``.
* ``softmax_exp_table()`` / ``softmax_reciprocal_table()``: 513 int16 entries (Q0.15,
  entry 512 only for the last slope) of ``exp(x)`` on ``[-10, 0]`` and ``1 / (1 + x)`` on
  ``[0, 1]``, sampled every ``(max - min) / 512`` with a bias that halves the
  interpolation error at each interval's midpoint::

      v_i  = f(min + i h) 2**15,   m_i = f(min + i h + h / 2) 2**15
      err  = round((v_{i+1} + round(v_i)) / 2) - round(m_i)
      T[i] = clamp(round(v_i) - round(err / 2), -32768, 32767),  T[512] = round(f(max) 2**15)

  evaluated in float32 (``round`` half away from zero), as the reference does at prepare
  time; ``exp`` is rounded to float32 from a double evaluation.

``interpolate(value, table)`` is the int16 lookup of a 513-entry table: index
``256 + (value >> 7)``, fraction ``value & 127``, ``base + ((slope * fraction + 64) >> 7)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from microlith.quant.arith import round_half_away_f

SIGMOID_ENTRIES = 256
LUT16_STEPS = 512


@functools.cache
def sigmoid_table() -> tuple[int, ...]:
    """``T[i] = round(2**16 (s(x_i) - e_i / 2))`` with ``e_i`` the interpolation error at the
    interval's midpoint, ``(s(x_i) + s(x_{i+1})) / 2 - s(x_i + h / 2)``, ``x_i = i / 24``:
    the entries sit half the (concave) chord's sag above the curve, which halves the worst
    interpolation error. ``T[255]`` is sigmoid's limit 1, clipped to 65535 (the formula gives
    65534 there; the kernel saturates at ``i >= 255`` and reads ``T[255]`` only as the far end
    of the last interval)."""
    h = 1.0 / 24.0
    x = np.arange(SIGMOID_ENTRIES, dtype=np.float64) * h

    def s(v: np.ndarray) -> np.ndarray:
        return 65536.0 / (1.0 + np.exp(-v))

    sag = (s(x) + s(x + h)) / 2.0 - s(x + h / 2.0)
    table = round_half_away_f(s(x) - sag / 2.0)
    table[-1] = 65535
    return tuple(int(v) for v in np.minimum(table, 65535))


def _gen_lut16(fn: Callable[[np.ndarray], np.ndarray], lo: float, hi: float) -> tuple[int, ...]:
    f32 = np.float32
    step = f32((f32(hi) - f32(lo)) / f32(LUT16_STEPS))
    half = f32(step / f32(2))
    inv = f32(32768)
    i = np.arange(LUT16_STEPS, dtype=np.float32)
    at = (f32(lo) + (i * step).astype(np.float32)).astype(np.float32)
    nxt = (f32(lo) + ((i + f32(1)) * step).astype(np.float32)).astype(np.float32)
    mid = (at + half).astype(np.float32)
    val, val_next, val_mid = fn(at), fn(nxt), fn(mid)
    sample = round_half_away_f((val * inv).astype(np.float32))
    summed = ((val_next * inv).astype(np.float32) + sample.astype(np.float32)).astype(np.float32)
    interp = round_half_away_f((summed / f32(2)).astype(np.float32))
    err = (interp - round_half_away_f((val_mid * inv).astype(np.float32))).astype(np.float32)
    bias = round_half_away_f((err / f32(2)).astype(np.float32))
    table = np.clip(sample - bias, -32768, 32767)
    last = np.clip(round_half_away_f((fn(np.array([hi], np.float32)) * inv).astype(np.float32)),
                   -32768, 32767)
    return tuple(int(v) for v in np.concatenate([table, last]))


def _exp32(x: np.ndarray) -> np.ndarray:
    return np.exp(x.astype(np.float64)).astype(np.float32)


def _reciprocal32(x: np.ndarray) -> np.ndarray:
    return (np.float32(1) / (np.float32(1) + x.astype(np.float32))).astype(np.float32)


@functools.cache
def softmax_exp_table() -> tuple[int, ...]:
    return _gen_lut16(_exp32, -10.0, 0.0)


@functools.cache
def softmax_reciprocal_table() -> tuple[int, ...]:
    return _gen_lut16(_reciprocal32, 0.0, 1.0)


def interpolate(value: np.ndarray, table: tuple[int, ...]) -> np.ndarray:
    """The int16 lookup with linear interpolation of a 513-entry Q0.15 table."""
    t = np.asarray(table, np.int64)
    v = np.asarray(value, np.int64)
    index = 256 + (v >> 7)
    base = t[index]
    slope = t[index + 1] - base
    y = base + ((slope * (v & 0x7F) + 64) >> 7)
    return ((y + 32768) % 65536 - 32768).astype(np.int64)
