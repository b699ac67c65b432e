"""``calibrate``: run representative data through the float graph and record activation ranges.

Inputs: ``ctx.options["calibration_data"]`` (a ``CalibrationSet`` in the ONNX model's
layout, or a path for ``load_calibration_file``), optionally
``ctx.options["calibration_cache"]`` (a JSON path, see ``microlith.calibration.cache``)
and ``ctx.options["quiet"]`` (no progress bar). Batches of ``batch-size`` samples
(the first ``samples``; 0 = all) are transposed by ``graph.meta["io_perms"]`` (data
is NCHW, a ``to-nhwc`` graph takes NHWC) and run with the float interpreter; an
observer keeps each tensor's min, max and a 2048-bin histogram (merged exactly
across batches). Outputs: ``value.meta["calibration_range"] = (lo, hi)`` (Python
floats, ``lo <= 0 <= hi``) on every non-constant float value (graph inputs and node
outputs), and ``graph.meta["calibration"] = {"method": ..., "samples": N}``.

Methods (``microlith.calibration.methods`` has the details), for a tensor with
histogram counts ``n_k`` at bin centres ``c_k``:

* ``minmax``: ``[min x, max x]``.
* ``percentile{p=99.99}``: ``[Q(a), Q(1 - a)]`` with ``a = (100 - p) / 200``: equal mass
  clipped from both tails (``Q`` is the histogram's interpolated quantile).
* ``entropy``: ``[-t, t]`` (cut to the data) with ``t`` minimizing ``KL(P || Q)``, where
  ``P`` is the ``|x|`` histogram up to ``t`` with the clipped mass added to its last
  bin and ``Q`` is that histogram quantized to 128 levels, 256 for one-sided data
  (TensorRT / pytorch-quantization; the spike of exact zeros is ignored).
* ``mse``: ``[a, b]`` over histogram edges minimizing ``sum_in n_k D^2 / 12 +
  sum_out n_k (c_k - clip(c_k))^2`` with ``D = (b - a) / 255`` (rounding noise plus
  clipping error of an asymmetric 8-bit grid).

Every range is then cut to ``[min, max]`` and extended to contain 0. ``bits=16`` (the
16x8 mode) sizes ``entropy`` and ``mse`` for int16 activations (2**15 levels per side,
2**16 levels); at that resolution both come out at or next to ``minmax``.

With a cache whose fingerprint matches (graph structure and weights, plus the data
when given), the data is not run: a second build can pass only the cache, and any
method can be chosen again. A stale cache is ignored with a warning and rewritten.
Not handled: per-channel activation ranges, integer tensors (no range is recorded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np

from microlith.calibration.cache import (
    CacheContents,
    combined_fingerprint,
    graph_fingerprint,
    load_cache,
    save_cache,
)
from microlith.calibration.data import (
    CalibrationError,
    CalibrationSet,
    input_specs_from_graph,
    load_calibration_file,
)
from microlith.calibration.methods import select_range
from microlith.calibration.observers import GraphObserver, TensorStats, observed_values
from microlith.diagnostics import UsageError
from microlith.interpreter import InterpreterError, run_graph
from microlith.ir.core import Graph
from microlith.pipeline import Pass, PassContext, register_pass
from microlith.pipeline.facts import CALIBRATED

NEEDS_DATA = ("calibrate needs representative data: pass --calibration-data (an .npz, or a "
              "directory of .npy files, in the ONNX model's input layout) or "
              "calibration_data= in the Python API")


@register_pass
@dataclass(frozen=True)
class Calibrate(Pass):
    name = "calibrate"
    summary = "run representative data through the float graph and record activation ranges"
    method: Literal["minmax", "percentile", "entropy", "mse"] = "minmax"
    p: float = 99.99
    batch_size: int = 32
    samples: int = 0
    bits: int = 8  # the activations' width: entropy / mse levels (16 for 16x8)
    provides = (CALIBRATED,)

    def check_options(self) -> str | None:
        if self.bits not in (8, 16):
            return f"option bits={self.bits} must be 8 or 16"
        if not 0.0 < self.p <= 100.0:
            return f"option p={self.p!r} must be in (0, 100]"
        if self.batch_size < 1:
            return f"option batch-size={self.batch_size} must be >= 1"
        if self.samples < 0:
            return f"option samples={self.samples} must be >= 0 (0 = all)"
        return None

    def run(self, graph: Graph, ctx: PassContext) -> None:
        data = self._data(graph, ctx)
        values = observed_values(graph)
        cache_path = ctx.options.get("calibration_cache")
        graph_fp = graph_fingerprint(graph)
        contents = None
        if cache_path is not None:
            contents = load_cache(cache_path, graph_fp=graph_fp,
                                  data_fp=None if data is None else data.fingerprint(),
                                  warn=ctx.warn, needed={v.name: v for v in values})
        if contents is not None:
            stats, samples = contents.tensors, contents.samples
            ctx.remark(graph.name, f"statistics of {samples} samples read from calibration "
                                   f"cache {os.fspath(str(cache_path))!r}")
        else:
            if data is None:
                raise CalibrationError(NEEDS_DATA)
            stats = self._collect(graph, data, bool(ctx.options.get("quiet", False)))
            samples = len(data)
            if cache_path is not None:
                save_cache(cache_path, CacheContents(
                    combined_fingerprint(graph_fp, data.fingerprint()), graph_fp,
                    data.fingerprint(), samples, stats))
        for value in values:
            lo, hi = select_range(stats[value.name], self.method, p=self.p, bits=self.bits)
            value.meta["calibration_range"] = (lo, hi)
            ctx.remark(value.producer or value.name,
                       f"{value.name}: range [{lo:.6g}, {hi:.6g}] ({self.method})")
        graph.meta["calibration"] = {"method": self.method, "samples": samples}

    def _data(self, graph: Graph, ctx: PassContext) -> CalibrationSet | None:
        """The calibration set, checked against the graph inputs and cut to ``samples``."""
        data = ctx.options.get("calibration_data")
        if data is None:
            return None
        specs = input_specs_from_graph(graph)
        if isinstance(data, str | os.PathLike):
            data = load_calibration_file(data, specs)
        if not isinstance(data, CalibrationSet):
            raise UsageError(f"calibration_data must be a CalibrationSet or a path, got "
                             f"{type(data).__name__}")
        given = {spec.name: spec for spec in data.inputs}
        for spec in specs:
            if spec.name not in given:
                raise CalibrationError(f"calibration data has no samples for input "
                                       f"{spec.name!r} (it has {', '.join(map(repr, given))})")
            if given[spec.name].sample_shape != spec.sample_shape:
                raise CalibrationError(
                    f"calibration data for input {spec.name!r} has samples of shape "
                    f"{list(given[spec.name].sample_shape)}; the model expects "
                    f"{list(spec.sample_shape)} (ONNX layout, without the batch dimension)")
        for name, perm in graph.meta.get("io_perms", {}).items():
            if name in given and perm[0] != 0:
                raise CalibrationError(f"input {name!r} has layout permutation {perm}, which "
                                       f"moves the batch axis; calibration cannot batch it")
        if self.samples > len(data):
            ctx.warn(f"{self.name}: samples={self.samples} but the calibration data has "
                     f"{len(data)}; using all {len(data)}")
        return data.head(self.samples)

    def _collect(self, graph: Graph, data: CalibrationSet, quiet: bool
                 ) -> dict[str, TensorStats]:
        observer = GraphObserver(graph)
        perms = graph.meta.get("io_perms", {})
        for batch in data.batches(self.batch_size, quiet=quiet):
            feeds = {}
            for value in graph.inputs:
                array = batch[value.name]
                perm = perms.get(value.name)
                feeds[value.name] = array if perm is None else np.ascontiguousarray(
                    array.transpose(perm))
            observer.observe_inputs(feeds)
            try:
                # Overflow is reported by the observer, naming the tensor; no numpy warnings.
                with np.errstate(over="ignore", invalid="ignore"):
                    run_graph(graph, feeds, observer=observer)
            except InterpreterError as exc:
                raise self.fail(None, f"running the float graph on the calibration data "
                                      f"failed: {exc}") from exc
        return observer.results()
