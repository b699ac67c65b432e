"""Per-tensor statistics gathered while the float graph runs on the calibration data.

For every observed tensor we keep the exact running minimum and maximum, the element
count, and a histogram of ``NUM_BINS`` equal bins over a symmetric range ``[-T, T]``.

Histogram strategy: one pass, exact merging
-------------------------------------------
``T`` is always a power of two strictly above the largest magnitude seen so far
(``max|x| < T <= 2 max|x|``), so the bin width ``w = 2T / NUM_BINS`` is a power of two
and a value's bin is ``floor(x / w)`` counted from the centre (``x / w`` is exact in
float64). When a batch needs a larger ``T' = 2^k T``, every old bin ``j`` (counted
from the centre) lies entirely inside the new bin ``floor(j / 2^k)``, so the old
counts are merged exactly. The final histogram is therefore *identical* to one made
in a second pass over all the data with the final range: it does not depend on the
batch size or order, and costs one pass. (onnxruntime's ``HistogramCollector`` also
merges, but grows the range by whole old bins from wherever the first batch put it,
so its bins depend on the batching.) The price is resolution: the data covers at
least half of ``[0, T]`` on its larger side, i.e. at least ``NUM_BINS / 4`` bins.

Zero is always a bin edge (the centre), which the entropy method relies on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from microlith.calibration.data import CalibrationError
from microlith.ir.core import Graph, Node, Value

NUM_BINS = 2048


def pow2_above(magnitude: float) -> float:
    """The smallest power of two strictly greater than ``magnitude`` (> 0)."""
    _, exponent = np.frexp(magnitude)  # magnitude = m * 2**e with 0.5 <= m < 1
    return float(np.ldexp(1.0, int(exponent)))


@dataclass(frozen=True)
class TensorStats:
    """What the range methods see of one tensor.

    ``hist[j]`` counts values in ``[-T + j w, -T + (j + 1) w)`` with ``T = half_range``
    and ``w = 2T / len(hist)``; ``len(hist)`` is even, so 0 is the edge ``len(hist) / 2``.
    """

    min: float
    max: float
    count: int
    hist: np.ndarray
    half_range: float

    def __post_init__(self) -> None:
        hist = np.array(self.hist, dtype=np.int64)  # a private, read-only copy
        if hist.ndim != 1 or len(hist) < 2 or len(hist) % 2:
            raise ValueError(f"histogram needs an even number of bins, got {hist.shape}")
        if not self.half_range > 0:
            raise ValueError(f"histogram half range must be positive, got {self.half_range}")
        hist.setflags(write=False)
        object.__setattr__(self, "hist", hist)

    @property
    def bin_width(self) -> float:
        return 2.0 * self.half_range / len(self.hist)

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(-self.half_range, self.half_range, len(self.hist) + 1)

    @property
    def centers(self) -> np.ndarray:
        edges = self.edges
        return 0.5 * (edges[:-1] + edges[1:])

    @classmethod
    def of(cls, array: np.ndarray, num_bins: int = NUM_BINS) -> TensorStats:
        """Statistics of one array (convenience for tests and tools)."""
        observer = RunningStats(num_bins)
        observer.update(array)
        return observer.result()

    def same_as(self, other: TensorStats) -> bool:
        return (self.min == other.min and self.max == other.max and self.count == other.count
                and self.half_range == other.half_range
                and np.array_equal(self.hist, other.hist))


class RunningStats:
    """Accumulates ``TensorStats`` over batches (see the module doc for the histogram)."""

    def __init__(self, num_bins: int = NUM_BINS) -> None:
        if num_bins < 2 or num_bins % 2:
            raise ValueError(f"num_bins must be even and >= 2, got {num_bins}")
        self.num_bins = num_bins
        self.min = float("inf")
        self.max = float("-inf")
        self.count = 0
        self.zeros_pending = 0  # exact zeros seen before any non-zero value fixed T
        self.half_range: float | None = None
        self.hist = np.zeros(num_bins, dtype=np.int64)

    def update(self, array: np.ndarray) -> None:
        """Add an array's values; raises ``ValueError`` if any is NaN or infinite."""
        x = np.asarray(array, dtype=np.float64).reshape(-1)
        if x.size == 0:
            return
        lo, hi = float(x.min()), float(x.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            kind = "NaN" if np.isnan(x).any() else "Inf"
            raise ValueError(f"non-finite values ({kind})")
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        self.count += x.size
        magnitude = max(-lo, hi)
        if magnitude == 0.0:
            if self.half_range is None:
                self.zeros_pending += x.size
                return
        elif self.half_range is None:
            self.half_range = pow2_above(magnitude)
        elif magnitude >= self.half_range:
            self._grow(pow2_above(magnitude))
        half = self.num_bins // 2
        assert self.half_range is not None
        width = self.half_range / half
        index = np.floor(x / width).astype(np.int64) + half
        self.hist += np.bincount(index, minlength=self.num_bins)
        if self.zeros_pending:
            self.hist[half] += self.zeros_pending
            self.zeros_pending = 0

    def _grow(self, half_range: float) -> None:
        assert self.half_range is not None
        factor = int(round(np.log2(half_range / self.half_range)))
        half = self.num_bins // 2
        old = np.arange(-half, half, dtype=np.int64)
        # Beyond log2(num_bins) doublings every old bin maps to new bin -1 or 0.
        new = np.floor_divide(old, np.int64(2) ** min(factor, 62)) + half
        merged = np.zeros_like(self.hist)
        np.add.at(merged, new, self.hist)
        self.hist = merged
        self.half_range = half_range

    def result(self) -> TensorStats:
        hist = self.hist.copy()
        if self.half_range is None:  # nothing or only zeros seen
            hist[self.num_bins // 2] += self.zeros_pending
            return TensorStats(0.0, 0.0, self.count, hist, 1.0)
        return TensorStats(self.min, self.max, self.count, hist, self.half_range)


def observed_values(graph: Graph) -> list[Value]:
    """Every non-constant float value: graph inputs, then node outputs in order."""
    values = [v for v in graph.inputs if v.dtype.is_float and not v.is_constant]
    for node in graph.nodes:
        values.extend(v for v in node.outputs if v.dtype.is_float)
    return values


class GraphObserver:
    """Collects ``TensorStats`` for ``observed_values(graph)``.

    Pass it as ``run_graph(..., observer=obs)`` and call ``observe_inputs(feeds)`` for
    each batch; values are layout-agnostic (statistics ignore element order).
    """

    def __init__(self, graph: Graph, num_bins: int = NUM_BINS) -> None:
        self.values = observed_values(graph)
        self.inputs = list(graph.inputs)
        self.stats = {value.name: RunningStats(num_bins) for value in self.values}

    def _update(self, value: Value, array: np.ndarray) -> None:
        try:
            self.stats[value.name].update(array)
        except ValueError as exc:
            origin = (f"output of %{value.producer.name} ({value.producer.op})"
                      if value.producer is not None else "graph input")
            raise CalibrationError(f"calibration: tensor {value.name!r} ({origin}) has {exc} "
                                   f"on the calibration data; check the data's scale and "
                                   f"layout") from None

    def observe_inputs(self, feeds: Mapping[str, np.ndarray]) -> None:
        for value in self.inputs:
            if value.name in self.stats:
                self._update(value, feeds[value.name])

    def __call__(self, node: Node, outputs: list[np.ndarray]) -> None:
        for value, array in zip(node.outputs, outputs, strict=True):
            if value.name in self.stats:
                self._update(value, array)

    def results(self) -> dict[str, TensorStats]:
        return {name: running.result() for name, running in self.stats.items()}
