"""Post-training calibration: representative data, statistics, range methods and the cache.

``data`` loads and validates representative samples (``CalibrationSet``), ``observers``
collects per-tensor min/max and histograms while the float graph runs, ``methods``
turns statistics into ranges (minmax, percentile, entropy, mse) and ``cache`` stores
the statistics as JSON. The ``calibrate`` pass (``passes/calibrate.py``) ties them
together.
"""

from microlith.calibration.data import (
    CalibrationError,
    CalibrationSet,
    InputSpec,
    Progress,
    calibration_set_from_arrays,
    calibration_set_from_iterable,
    input_specs_from_graph,
    load_calibration_file,
)
from microlith.calibration.methods import METHODS, Range, select_range
from microlith.calibration.observers import NUM_BINS, GraphObserver, RunningStats, TensorStats

__all__ = [
    "METHODS", "NUM_BINS", "CalibrationError", "CalibrationSet", "GraphObserver", "InputSpec",
    "Progress", "Range", "RunningStats", "TensorStats", "calibration_set_from_arrays",
    "calibration_set_from_iterable", "input_specs_from_graph", "load_calibration_file",
    "select_range",
]
