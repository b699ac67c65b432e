"""Range methods and statistics: hand-computed cases, brute force, and invariants."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from microlith.calibration.methods import METHODS, entropy, minmax, mse, percentile, select_range
from microlith.calibration.observers import NUM_BINS, RunningStats, TensorStats, pow2_above

RNG = np.random.default_rng(1234)


def stats_from_hist(hist: np.ndarray, half_range: float, lo: float, hi: float) -> TensorStats:
    return TensorStats(lo, hi, int(np.sum(hist)), np.asarray(hist, dtype=np.int64), half_range)


# ---- observers ----------------------------------------------------------------------


def test_pow2_above_is_strict() -> None:
    assert pow2_above(1.0) == 2.0
    assert pow2_above(0.75) == 1.0
    assert pow2_above(3.0) == 4.0
    assert pow2_above(1e-3) == 2.0 ** -9


def test_histogram_covers_data_with_power_of_two_range() -> None:
    x = np.array([-0.3, 0.0, 0.0, 0.49, 0.5, 1.0], dtype=np.float32)
    stats = TensorStats.of(x)
    assert (stats.min, stats.max, stats.count) == (pytest.approx(-0.3), 1.0, 6)
    assert stats.half_range == 2.0 and len(stats.hist) == NUM_BINS
    width = stats.bin_width
    assert stats.hist.sum() == 6
    assert stats.hist[NUM_BINS // 2] == 2  # the two zeros sit just right of the 0 edge
    assert stats.hist[NUM_BINS // 2 + int(1.0 / width)] == 1  # 1.0 is a left edge
    assert stats.hist[NUM_BINS // 2 + int(np.floor(-0.3 / width))] == 1


@pytest.mark.parametrize("batch", [1, 7, 100, 5000])
def test_merged_histogram_equals_one_shot_histogram(batch: int) -> None:
    """Growing the range while batches arrive must merge old bins exactly."""
    x = np.concatenate([np.zeros(5), RNG.normal(0, 0.01, 300), RNG.normal(0, 3, 3000),
                        [40.0, -0.5]])
    running = RunningStats()
    for start in range(0, len(x), batch):
        running.update(x[start:start + batch])
    assert running.result().same_as(TensorStats.of(x))


def test_non_finite_values_are_refused() -> None:
    with pytest.raises(ValueError, match="NaN"):
        TensorStats.of(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="Inf"):
        TensorStats.of(np.array([1.0, -np.inf]))


# ---- minmax ---------------------------------------------------------------------------


@pytest.mark.parametrize("data, expected", [
    ([-2.0, 0.5, 5.0], (-2.0, 5.0)),
    ([1.0, 4.0, 2.5], (0.0, 4.0)),  # zero is added
    ([-3.0, -1.0], (-3.0, 0.0)),
])
def test_minmax_known_data(data: list[float], expected: tuple[float, float]) -> None:
    assert minmax(TensorStats.of(np.array(data, dtype=np.float32))) == expected


# ---- percentile ------------------------------------------------------------------------


def test_percentile_clips_equal_mass_from_both_tails() -> None:
    x = np.linspace(-5.0, 5.0, 100_001)  # quantile q is -5 + 10 q
    stats = TensorStats.of(x)
    lo, hi = percentile(stats, 98.0)  # 1% from each tail
    assert lo == pytest.approx(-4.9, abs=2 * stats.bin_width)
    assert hi == pytest.approx(4.9, abs=2 * stats.bin_width)
    lo, hi = percentile(stats, 90.0)
    assert (lo, hi) == (pytest.approx(-4.5, abs=0.02), pytest.approx(4.5, abs=0.02))


def test_percentile_one_sided_and_full() -> None:
    x = np.linspace(1.0, 11.0, 100_001)
    stats = TensorStats.of(x)
    lo, hi = percentile(stats, 90.0)
    assert lo == 0.0  # the 5% quantile is 1.5, but 0 must be in the range
    assert hi == pytest.approx(10.5, abs=0.05)
    assert percentile(stats, 100.0) == minmax(stats)


def test_percentile_rejects_bad_p() -> None:
    with pytest.raises(ValueError, match="percentile"):
        percentile(TensorStats.of(np.ones(3)), 0.0)


# ---- entropy ----------------------------------------------------------------------------


def test_entropy_keeps_a_uniform_distribution_whole() -> None:
    """Each quantization group of a uniform histogram is uniform: Q = P, KL = 0 at the edge."""
    x = RNG.uniform(-1.0, 3.0, 400_000)
    stats = TensorStats.of(x)
    assert entropy(stats) == minmax(stats)


def test_entropy_clips_a_heavy_tail() -> None:
    x = RNG.standard_t(2, 400_000)  # Student t, 2 dof: infinite variance
    stats = TensorStats.of(x)
    lo, hi = entropy(stats)
    assert hi < stats.max / 3 and lo > stats.min / 3
    assert lo == -hi  # symmetric threshold, inside the data on both sides


def test_entropy_threshold_at_the_end_of_a_smooth_block() -> None:
    """A decreasing density on [0, 2) plus one far outlier at 7.5.

    Thresholds below 2 pile the tail of the block into one bin that Q, built without
    the clipped mass, has almost nothing in: a large divergence. Thresholds above 2
    put several bins of the curved density into each of the 256 levels, which Q
    flattens. So the KL minimum is at t = 2, clipping only the outlier.
    """
    half_range, half = 8.0, NUM_BINS // 2
    width = half_range / half
    hist = np.zeros(NUM_BINS, dtype=np.int64)
    k = np.arange(256)  # 256 bins of width 1/128 = [0, 2)
    hist[half + k] = (1000 * (1 - k / 256) ** 2).astype(np.int64) + 1
    hist[half + int(7.5 / width)] = 1
    stats = stats_from_hist(hist, half_range, 0.0, 7.5 + width / 2)
    assert entropy(stats) == (0.0, pytest.approx(2.0, abs=width))


def test_entropy_small_histograms_fall_back_to_minmax() -> None:
    stats = TensorStats.of(np.array([0.0, 0.1, 0.2]), num_bins=64)
    assert entropy(stats) == minmax(stats)


# ---- mse ----------------------------------------------------------------------------------


def brute_force_mse(stats: TensorStats, levels: int) -> tuple[float, tuple[float, float]]:
    """min over every pair of edges a <= 0 <= b of E(a, b), straight from the definition."""
    edges, centers = stats.edges, stats.centers
    best = (float("inf"), (0.0, 0.0))
    for a, b in itertools.product(edges[edges <= 0], edges[edges >= 0]):
        step = (b - a) / (levels - 1)
        error = 0.0
        for count, c in zip(stats.hist, centers, strict=True):
            if a <= c <= b:
                error += count * step * step / 12
            elif c > b:
                error += count * (c - b) ** 2
            else:
                error += count * (a - c) ** 2
        if error < best[0]:
            best = (error, (float(a), float(b)))
    return best


@pytest.mark.parametrize("levels", [4, 16, 256])
@pytest.mark.parametrize("seed", range(4))
def test_mse_matches_brute_force(levels: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    hist = rng.integers(0, 50, size=16) * (rng.random(16) < 0.7)
    hist[rng.integers(0, 16)] += 400  # a dominant bin makes clipping the rest worth it
    edges = np.linspace(-4.0, 4.0, 17)
    filled = np.flatnonzero(hist)
    stats = stats_from_hist(hist, 4.0, min(edges[filled[0]], 0.0),
                            max(edges[filled[-1] + 1], 0.0))
    best_error, best_range = brute_force_mse(stats, levels)
    assert mse(stats, levels) == best_range, best_error


def test_mse_clips_outliers_only_when_it_pays() -> None:
    """1000 values in [0, 0.5) (centre 0.25) and one in [3.5, 4) (centre 3.75).

    256 levels: E(0, 4) = 1001 (4/255)^2 / 12 = 0.021 beats clipping at 3.5,
    1000 (3.5/255)^2 / 12 + 0.25^2 = 0.078. Two levels: E(0, 0.5) = 1000 0.5^2 / 12 +
    3.25^2 = 31.4 beats E(0, 4) = 1001 4^2 / 12 = 1335 and E(0, 0) = 1000 0.25^2 +
    3.75^2 = 76.6.
    """
    hist = np.zeros(16, dtype=np.int64)
    hist[8] = 1000
    hist[15] = 1
    stats = stats_from_hist(hist, 4.0, 0.0, 4.0)
    assert mse(stats, levels=256) == (0.0, 4.0)
    assert mse(stats, levels=2) == (0.0, 0.5)


# ---- every method ------------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("value", [0.0, 3.0, -2.0])
def test_constant_tensors(method: str, value: float) -> None:
    stats = TensorStats.of(np.full(100, value, dtype=np.float32))
    assert select_range(stats, method) == (min(value, 0.0), max(value, 0.0))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_empty_statistics(method: str) -> None:
    assert select_range(RunningStats().result(), method) == (0.0, 0.0)


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("data", [
    RNG.uniform(2.0, 5.0, 5000),  # all positive
    -RNG.exponential(1.0, 5000) - 1.0,  # all negative
    np.maximum(RNG.normal(0.0, 1.0, 5000), 0.0),  # ReLU-like
    RNG.laplace(0.5, 2.0, 5000),
])
def test_ranges_contain_zero_and_stay_inside_the_data(method: str, data: np.ndarray) -> None:
    stats = TensorStats.of(data)
    lo, hi = select_range(stats, method)
    assert isinstance(lo, float) and isinstance(hi, float)
    assert min(stats.min, 0.0) <= lo <= 0.0 <= hi <= max(stats.max, 0.0)


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown calibration method 'kl'"):
        select_range(TensorStats.of(np.ones(3)), "kl")
