"""Range selection: pure functions from a tensor's ``TensorStats`` to a range ``(lo, hi)``.

Every result contains zero (``lo <= 0 <= hi``: real 0 must be exactly representable,
e.g. for zero padding) and lies within ``[min(min, 0), max(max, 0)]`` of the data
(a range beyond the data only coarsens the grid). The histogram is the symmetric
one of ``observers``: ``n`` bins of width ``w`` over ``[-T, T]``, counts ``n_k``,
bin centres ``c_k``, edge ``e_j = -T + j w``; zero is the middle edge.

* ``minmax``: ``(min, max)``.
* ``percentile(p)``: clip the same mass ``(100 - p) / 2`` percent from each tail:
  ``lo`` / ``hi`` are the ``(100 - p) / 200`` and ``1 - (100 - p) / 200`` quantiles,
  read off the histogram's CDF with linear interpolation inside a bin.
* ``entropy``: TensorRT's KL-divergence calibration (Migacz, GTC 2017; NVIDIA's
  pytorch-quantization, onnxruntime's ``HistogramCalibrater`` entropy mode). It works
  on ``|x|``: folding the symmetric histogram at 0 is exact (bin ``k`` holds
  ``k w <= |x| < (k+1) w``). Bin 0's count is replaced by bin 1's, as in
  pytorch-quantization: the exact zeros of a ReLU output (often half the tensor)
  would otherwise dominate the divergence of every threshold that puts more than
  one bin into the first level. For each candidate ``i`` (``L <= i <=`` the last
  non-empty bin) with threshold ``t = i w``: ``P`` = bins ``0..i-1`` with all the mass
  beyond added to bin ``i-1`` (clipping); ``Q`` = the same bins *without* that mass,
  merged into ``L`` groups (boundaries ``floor(g i / L)``) and spread back evenly
  over the bins where ``P`` is non-zero. Bins where ``P > 0`` but ``Q = 0`` get
  ``Q = 1e-4`` counts (the reference's smoothing epsilon; bins with ``P = 0`` add
  nothing). Both are normalized and the smallest ``t`` minimizing
  ``KL(P || Q) = sum P log(P / Q)`` wins; the range is ``(-t, t)`` cut to the data.
  ``L`` = 128 levels (int8, per side) for signed data, and 256 when the data is
  one-sided (pytorch-quantization's ``unsigned`` rule: asymmetric int8 then puts
  all its levels on ``[0, t]``). A tensor needing at most ``L`` bins gets ``minmax``.
* ``mse``: the asymmetric (uint8-style, ``levels = 256``) range ``[a, b]`` minimizing
  the expected squared error over the histogram, bin by bin at its centre::

      E(a, b) = sum_{a <= c_k <= b} n_k D^2 / 12          D = (b - a) / (levels - 1)
              + sum_{c_k > b} n_k (c_k - b)^2 + sum_{c_k < a} n_k (a - c_k)^2

  (uniform rounding noise inside, clipping error outside) over every pair of bin
  edges ``a <= 0 <= b`` spanning at most the non-empty bins; all pairs are scored at
  once from prefix sums of ``n``, ``n c`` and ``n c^2``. Ties go to the pair first in
  row-major (``a`` ascending, then ``b``) order.

Zero-range tensors (``min == max``) get ``(min(c, 0), max(c, 0))``, which is
``(0.0, 0.0)`` for an all-zero tensor: the consumer picks a scale for an empty range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from microlith.calibration.observers import TensorStats

Range = tuple[float, float]
QUANTIZED_BINS = 128
MSE_LEVELS = 256
SMOOTHING_EPS = 1e-4


def _finish(stats: TensorStats, lo: float, hi: float) -> Range:
    """Cut ``(lo, hi)`` to the data's range and extend it to contain 0."""
    lo = min(max(lo, stats.min), 0.0)
    hi = max(min(hi, stats.max), 0.0)
    return float(lo), float(hi)


def _degenerate(stats: TensorStats) -> bool:
    return stats.count == 0 or stats.min == stats.max or int(stats.hist.sum()) == 0


def minmax(stats: TensorStats) -> Range:
    """The observed ``(min, max)``, extended to contain 0."""
    if stats.count == 0:
        return 0.0, 0.0
    return _finish(stats, stats.min, stats.max)


def percentile(stats: TensorStats, p: float = 99.99) -> Range:
    """Clip ``(100 - p) / 2`` percent of the mass from each tail (``0 < p <= 100``)."""
    if not 0.0 < p <= 100.0:
        raise ValueError(f"percentile p must be in (0, 100], got {p}")
    if _degenerate(stats):
        return minmax(stats)
    counts = stats.hist.astype(np.float64)
    edges = stats.edges
    tail = (100.0 - p) / 200.0 * counts.sum()
    return _finish(stats, _quantile(counts, edges, tail),
                   -_quantile(counts[::-1], -edges[::-1], tail))


def _quantile(counts: np.ndarray, edges: np.ndarray, mass: float) -> float:
    """The point with ``mass`` counts to its left, interpolating linearly inside a bin."""
    cdf = np.cumsum(counts)
    k = int(np.searchsorted(cdf, mass, side="right"))
    k = min(k, len(counts) - 1)
    while counts[k] == 0 and k + 1 < len(counts):  # land in a bin holding mass
        k += 1
    before = cdf[k] - counts[k]
    fraction = min(max((mass - before) / counts[k], 0.0), 1.0) if counts[k] else 0.0
    return float(edges[k] + fraction * (edges[k + 1] - edges[k]))


def entropy(stats: TensorStats, quantized_bins: int | None = None) -> Range:
    """TensorRT's KL-divergence threshold (see the module doc).

    ``quantized_bins`` defaults to 128 (int8 levels per side) for signed data and 256
    for one-sided data (all of int8's levels then cover ``[0, t]``).
    """
    if _degenerate(stats):
        return minmax(stats)
    if quantized_bins is None:
        one_sided = stats.min >= 0.0 or stats.max <= 0.0
        quantized_bins = 2 * QUANTIZED_BINS if one_sided else QUANTIZED_BINS
    half = len(stats.hist) // 2
    magnitude = (stats.hist[half:] + stats.hist[:half][::-1]).astype(np.float64)
    last = int(np.flatnonzero(magnitude)[-1]) + 1  # bins needed to hold all data
    if last <= quantized_bins:
        return minmax(stats)
    magnitude[0] = magnitude[1]  # ignore the spike of exact zeros (ReLU outputs)
    divergences = [kl_divergence(magnitude, i, quantized_bins)
                   for i in range(quantized_bins, last + 1)]
    best = quantized_bins + int(np.argmin(divergences))
    threshold = best * stats.bin_width
    return _finish(stats, -threshold, threshold)


def kl_divergence(magnitude: np.ndarray, i: int, quantized_bins: int) -> float:
    """``KL(P || Q)`` for the threshold at bin ``i`` of the ``|x|`` histogram."""
    sliced = magnitude[:i]
    p = sliced.copy()
    p[-1] += magnitude[i:].sum()
    nonzero = p > 0
    bounds = (np.arange(quantized_bins + 1) * i) // quantized_bins
    totals = np.add.reduceat(sliced, bounds[:-1])
    spread = np.add.reduceat(nonzero.astype(np.float64), bounds[:-1])
    per_bin = np.divide(totals, spread, out=np.zeros_like(totals), where=spread > 0)
    q = np.repeat(per_bin, np.diff(bounds))[nonzero]
    p = p[nonzero]
    q_total = q.sum()
    if q_total == 0:
        return float("inf")
    q = np.where(q > 0, q, SMOOTHING_EPS)
    p = p / p.sum()
    q = q / q_total
    return float(np.sum(p * np.log(p / q)))


def mse(stats: TensorStats, levels: int = MSE_LEVELS) -> Range:
    """The edge pair ``a <= 0 <= b`` minimizing ``E(a, b)`` (see the module doc)."""
    if levels < 2:
        raise ValueError(f"mse needs at least 2 levels, got {levels}")
    if _degenerate(stats):
        return minmax(stats)
    counts = stats.hist.astype(np.float64)
    edges, centers = stats.edges, stats.centers
    half = len(counts) // 2
    filled = np.flatnonzero(counts)
    left = np.arange(min(int(filled[0]), half), half + 1)  # candidate edge indices for a
    right = np.arange(half, max(int(filled[-1]) + 1, half) + 1)  # and for b
    s0 = np.concatenate([[0.0], np.cumsum(counts)])  # prefix sums over bins < j
    s1 = np.concatenate([[0.0], np.cumsum(counts * centers)])
    s2 = np.concatenate([[0.0], np.cumsum(counts * centers ** 2)])
    a, b = edges[left], edges[right]
    # clipping below a: sum_{k < j} n_k (a - c_k)^2 ; above b: sum_{k >= j} n_k (c_k - b)^2
    clip_low = a * a * s0[left] - 2 * a * s1[left] + s2[left]
    n0, n1, n2 = s0[-1] - s0[right], s1[-1] - s1[right], s2[-1] - s2[right]
    clip_high = b * b * n0 - 2 * b * n1 + n2
    inside = s0[right][None, :] - s0[left][:, None]
    step = (b[None, :] - a[:, None]) / (levels - 1)
    error = inside * step * step / 12.0 + clip_low[:, None] + clip_high[None, :]
    row, col = np.unravel_index(int(np.argmin(error)), error.shape)
    return _finish(stats, float(a[row]), float(b[col]))


METHODS: dict[str, Callable[[TensorStats], Range]] = {
    "minmax": minmax,
    "percentile": percentile,
    "entropy": entropy,
    "mse": mse,
}


def select_range(stats: TensorStats, method: str, *, p: float = 99.99, bits: int = 8) -> Range:
    """``METHODS[method](stats)``, passing ``p`` to ``percentile``; ``bits = 16`` (16x8
    activations) gives ``entropy`` 2**15 levels per side (2**16 one-sided) and ``mse``
    2**16 levels instead of int8's."""
    if method == "percentile":
        return percentile(stats, p)
    if bits != 8 and method == "entropy":
        one_sided = stats.min >= 0.0 or stats.max <= 0.0
        return entropy(stats, (2 if one_sided else 1) << (bits - 1))
    if bits != 8 and method == "mse":
        return mse(stats, 1 << bits)
    try:
        return METHODS[method](stats)
    except KeyError:
        raise ValueError(f"unknown calibration method {method!r} "
                         f"(methods: {', '.join(METHODS)})") from None
