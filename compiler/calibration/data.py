"""Representative data for post-training calibration, validated against the model's inputs.

A ``CalibrationSet`` holds, for every model input, its samples stacked along a new
leading axis, in the ONNX model's own layout: an input of shape ``[1, C, H, W]``
gets an array ``[N, C, H, W]``. The calibrate pass transposes batches to the
graph's physical layout (``graph.meta["io_perms"]``) itself.

The rank rule (every array, from a file or a generator)
--------------------------------------------------------
For an input of shape ``(1, *S)`` (rank ``R``), an array of rank ``r`` is read as

* ``r == R``: a stack of samples ``(k, *S)``; one sample with its batch dimension of 1
  is the case ``k = 1``;
* ``r == R - 1``: one sample without the batch dimension, shape ``S``;
* ``r == R + 1`` with a second axis of 1: ``(k, 1, *S)``, a stack of batch-1 samples
  (what a list of onnxruntime reader feeds stacks to).

Files (``load_calibration_file``)
---------------------------------
* ``.npz``: one array per input, keyed by input name; for a single-input model, any
  single key. Keys that are not input names are an error (the message lists them).
* ``.npy`` (single-input models): that array.
* a directory (not searched recursively; only ``*.npy`` files are read):
  1. if any file is named ``<input name>.npy``, every input needs its file and every
     ``.npy`` file must be such a file (read like the ``.npz`` entries);
  2. otherwise, for a single-input model: every ``*.npy`` file, in sorted file-name
     order, each one sample or a stack of samples by the rank rule, concatenated
     (one file holding the whole stack is the simplest case);
  3. otherwise it is an error naming the expected ``<input name>.npy`` files.

Values: numbers only (bool, integers, floats); they are cast to the input's dtype
(``float64`` data becomes ``float32``); integer inputs refuse floating-point data.
Floating-point data must be finite, and every value must fit the input's dtype (a
float64 of 1e39 would become Inf, an int of 300 would wrap in int8). Every error is a
one-line ``CalibrationError`` naming the file or sample and the input.

Memory
------
Only regular files are read (a FIFO or device is refused before it is opened). A
``.npy`` header, and the header of each ``.npz`` member, is read first: its shape and
dtype must fit the bytes that follow it (for a ``.npz`` member, its uncompressed size,
which also bounds inflating it) and the budget, ``MAX_CALIBRATION_BYTES`` (1 GiB) by
default, for all arrays of a file or directory together, each element counted at the
larger of its size in the file and in the input's dtype. A representative-dataset
iterable is held to the same budget. Peak memory is about twice the budget while the
arrays are converted and stacked.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from microlith.diagnostics import MicrolithError
from microlith.frontend.input_files import load_npy, load_npz, open_regular
from microlith.ir.core import Graph

MAX_CALIBRATION_BYTES = 1 << 30  # samples held in memory (see "Memory" in the module doc)


class CalibrationError(MicrolithError):
    """The calibration data (or cache) is unusable; the message names the file, input or tensor."""


@dataclass(frozen=True)
class InputSpec:
    """A model input as the user sees it: ONNX layout, batch 1."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if not self.shape or self.shape[0] != 1:
            raise CalibrationError(
                f"input {self.name!r} has shape {list(self.shape)}; calibration needs a leading "
                f"batch dimension of 1 (pin it with an input shape)")

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.shape[1:]


def input_specs_from_graph(graph: Graph) -> list[InputSpec]:
    """The graph's inputs in ONNX layout (undoing ``io_perms`` of ``to-nhwc``)."""
    perms = graph.meta.get("io_perms", {})
    specs = []
    for value in graph.inputs:
        shape = list(value.shape)
        perm = perms.get(value.name)
        if perm is not None:  # physical = logical.transpose(perm)
            logical = [0] * len(shape)
            for axis, source in enumerate(perm):
                logical[source] = shape[axis]
            shape = logical
        specs.append(InputSpec(value.name, tuple(shape), value.dtype.numpy))
    return specs


def _dims(shape: Sequence[object]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _layout_hint(shape: tuple[int, ...], spec: InputSpec) -> str:
    sample = spec.sample_shape
    got = shape[1:] if len(shape) == len(spec.shape) else shape
    if len(sample) == 3 and len(got) == 3 and got == (sample[1], sample[2], sample[0]) \
            and got != sample:
        return "; it looks channels-last, but calibration data uses the ONNX model's layout"
    return ""


def _as_stack(array: Any, spec: InputSpec, where: str) -> np.ndarray:
    """One array for ``spec`` -> ``(k, *S)`` in the input's dtype, by the rank rule."""
    try:
        data = np.asarray(array)
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"calibration data for input {spec.name!r} ({where}) is not an "
                               f"array of numbers: {exc}") from None
    integral = spec.dtype.kind in "biu"
    if data.dtype.kind not in ("biu" if integral else "biuf"):
        wanted = "integers" if integral else "numbers"
        raise CalibrationError(
            f"calibration data for input {spec.name!r} ({where}) has dtype {data.dtype}; "
            f"expected {wanted} (the input is {spec.dtype})")
    sample, rank = spec.sample_shape, len(spec.shape)
    if data.ndim == rank and data.shape[1:] == sample:
        stack = data
    elif data.ndim == rank - 1 and data.shape == sample:
        stack = data[None]
    elif data.ndim == rank + 1 and data.shape[1] == 1 and data.shape[2:] == sample:
        stack = data[:, 0]
    else:
        raise CalibrationError(
            f"calibration data for input {spec.name!r} ({where}) has shape "
            f"{_dims(data.shape)}; expected {_dims(('N', *sample))} (samples first) or one "
            f"sample {_dims(sample)}{_layout_hint(data.shape, spec)}")
    if stack.dtype.kind == "f" and stack.size:
        bad = np.flatnonzero(~np.isfinite(stack.reshape(len(stack), -1)).all(axis=1))
        if len(bad):
            what = "NaN" if np.isnan(stack[bad[0]]).any() else "Inf"
            at = f" in sample {bad[0]}" if len(stack) > 1 else ""
            raise CalibrationError(f"calibration data for input {spec.name!r} ({where}) "
                                   f"contains {what}{at}")
    _check_range(stack, spec, where)
    return stack.astype(spec.dtype, copy=False)


def _check_range(stack: np.ndarray, spec: InputSpec, where: str) -> None:
    """Every value must be representable in the input's dtype (no overflow to Inf, no
    integer wrap-around)."""
    if not stack.size or stack.dtype == spec.dtype or spec.dtype.kind == "b":
        return
    info = np.finfo(spec.dtype) if spec.dtype.kind == "f" else np.iinfo(spec.dtype)
    rows = stack.reshape(len(stack), -1)
    outside = (rows < info.min) | (rows > info.max)
    bad = np.flatnonzero(outside.any(axis=1))
    if len(bad):
        at = f" in sample {bad[0]}" if len(stack) > 1 else ""
        value = rows[bad[0]][outside[bad[0]]][0]
        raise CalibrationError(f"calibration data for input {spec.name!r} ({where}) holds "
                               f"{value:.6g}{at}, outside the range of the input's "
                               f"{spec.dtype} ({info.min:.6g}..{info.max:.6g})")


class CalibrationSet:
    """Validated representative samples per input (ONNX layout, samples first)."""

    def __init__(self, inputs: Sequence[InputSpec], arrays: Mapping[str, np.ndarray]) -> None:
        self.inputs = tuple(inputs)
        names = [spec.name for spec in self.inputs]
        if sorted(arrays) != sorted(names):
            raise CalibrationError(f"calibration arrays {sorted(arrays)} do not match the "
                                   f"model inputs {names}")
        counts = {name: len(arrays[name]) for name in names}
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"{name!r}: {count}" for name, count in counts.items())
            raise CalibrationError(f"calibration data has different sample counts per input "
                                   f"({listed})")
        if not names or not counts[names[0]]:
            raise CalibrationError("calibration data is empty: it needs at least one sample")
        self._arrays: dict[str, np.ndarray] = {}
        for spec in self.inputs:
            array = np.ascontiguousarray(arrays[spec.name], dtype=spec.dtype)
            if array.shape[1:] != spec.sample_shape:
                raise CalibrationError(f"calibration data for input {spec.name!r} has samples "
                                       f"of shape {_dims(array.shape[1:])}; expected "
                                       f"{_dims(spec.sample_shape)}")
            array.setflags(write=False)
            self._arrays[spec.name] = array
        self._fingerprint: str | None = None

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    def __len__(self) -> int:
        return len(self._arrays[self.inputs[0].name])

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {_dims(a.shape)}" for n, a in self._arrays.items())
        return f"CalibrationSet({len(self)} samples; {shapes})"

    def array(self, name: str) -> np.ndarray:
        """All samples of input ``name`` (read-only, ONNX layout)."""
        return self._arrays[name]

    def head(self, count: int) -> CalibrationSet:
        """The first ``count`` samples (all of them when ``count`` is 0 or too large)."""
        if count <= 0 or count >= len(self):
            return self
        return CalibrationSet(self.inputs, {n: a[:count] for n, a in self._arrays.items()})

    def batches(self, batch_size: int, *, quiet: bool = False,
                stream: TextIO | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Consecutive batches of at most ``batch_size`` samples, by input name.

        Shows a progress bar on ``stream`` (default stderr) when it is a terminal and
        not ``quiet``; the bar advances when the consumer asks for the next batch.
        """
        if batch_size < 1:
            raise CalibrationError(f"batch size must be at least 1, got {batch_size}")
        progress = Progress(len(self), stream=stream, enabled=None if not quiet else False)
        progress.update(0)
        try:
            for start in range(0, len(self), batch_size):
                yield {n: a[start:start + batch_size] for n, a in self._arrays.items()}
                progress.update(min(start + batch_size, len(self)))
        finally:
            progress.close()

    def fingerprint(self) -> str:
        """sha256 of the input names, dtypes, shapes and bytes (stable across runs)."""
        if self._fingerprint is None:
            digest = hashlib.sha256(b"microlith-calibration-set-v1\0")
            for spec in self.inputs:
                array = self._arrays[spec.name]
                digest.update(f"{spec.name}\0{array.dtype.str}\0{array.shape}\0".encode())
                digest.update(array.tobytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint


def calibration_set_from_arrays(arrays: Mapping[str, Any] | Sequence[Any] | np.ndarray,
                                inputs: Sequence[InputSpec]) -> CalibrationSet:
    """Stacked samples per input: a dict by name, a list in input order, or one array."""
    inputs = list(inputs)
    return CalibrationSet(inputs, _by_name(arrays, inputs, "the given arrays"))


def calibration_set_from_iterable(iterable: Iterable[Any] | Callable[[], Iterable[Any]],
                                  inputs: Sequence[InputSpec],
                                  max_bytes: int = MAX_CALIBRATION_BYTES) -> CalibrationSet:
    """Collect a TFLite-style ``representative_dataset``.

    ``iterable`` (or a function returning one, like TFLite's generator function) yields
    per sample a list of arrays in input order or a dict by input name (a bare array
    for a single-input model), each with or without its leading batch dimension of 1
    (a stack of several samples is accepted too).
    """
    inputs = list(inputs)
    if callable(iterable) and not isinstance(iterable, Iterable):
        iterable = iterable()
    if not isinstance(iterable, Iterable):
        raise CalibrationError(f"the representative dataset must be iterable, got "
                               f"{type(iterable).__name__}")
    parts: dict[str, list[np.ndarray]] = {spec.name: [] for spec in inputs}
    held = 0
    for index, item in enumerate(iterable):
        for name, stack in _by_name(item, inputs, f"sample {index}").items():
            parts[name].append(stack)
            held += stack.nbytes
        if held > max_bytes:
            raise CalibrationError(f"the representative dataset holds more than {max_bytes:,} "
                                   f"bytes at sample {index}; use fewer samples")
    if not parts or not next(iter(parts.values())):
        raise CalibrationError("the representative dataset yielded no samples")
    return CalibrationSet(inputs, {n: np.concatenate(p) for n, p in parts.items()})


def _expected(inputs: Sequence[InputSpec]) -> str:
    return ", ".join(repr(spec.name) for spec in inputs)


def _by_name(item: Any, inputs: list[InputSpec], where: str) -> dict[str, np.ndarray]:
    """Map one item (dict / list / array) to validated stacks by input name."""
    if isinstance(item, Mapping):
        unknown = [k for k in item if k not in {spec.name for spec in inputs}]
        if len(inputs) == 1 and len(item) == 1:
            unknown = []
            item = {inputs[0].name: next(iter(item.values()))}
        missing = [spec.name for spec in inputs if spec.name not in item]
        if unknown or missing:
            problem = (f"unknown key(s) {', '.join(map(repr, unknown))}" if unknown
                       else f"missing input(s) {', '.join(map(repr, missing))}")
            raise CalibrationError(f"calibration data ({where}): {problem}; the model's inputs "
                                   f"are {_expected(inputs)}")
        arrays = [item[spec.name] for spec in inputs]
    elif isinstance(item, list | tuple):
        if len(item) != len(inputs):
            raise CalibrationError(f"calibration data ({where}) has {len(item)} array(s); the "
                                   f"model has {len(inputs)} input(s): {_expected(inputs)}")
        arrays = list(item)
    elif len(inputs) == 1:
        arrays = [item]
    else:
        raise CalibrationError(f"calibration data ({where}) must be a list or a dict of "
                               f"arrays for the inputs {_expected(inputs)}")
    return {spec.name: _as_stack(a, spec, where) for spec, a in zip(inputs, arrays, strict=True)}


def load_calibration_file(path: str | os.PathLike[str], inputs: Sequence[InputSpec],
                          max_bytes: int = MAX_CALIBRATION_BYTES) -> CalibrationSet:
    """Read a ``.npz``, a ``.npy`` or a directory of ``.npy`` files (see the module doc),
    holding at most ``max_bytes`` of samples (see "Memory")."""
    inputs = list(inputs)
    where = os.fspath(path)
    if os.path.isdir(where):
        return CalibrationSet(inputs, _load_directory(Path(where), inputs, max_bytes))
    if not os.path.lexists(where):
        raise CalibrationError(f"calibration data {where!r}: no such file or directory")
    not_data = (f"calibration data {where!r} is not a .npz archive, a .npy file or a "
                f"directory of .npy files")
    handle, _ = _read(open_regular, where, "a .npz archive, a .npy file or a directory",
                      sys.maxsize)
    with handle:
        magic = handle.read(6)
    if not (magic.startswith(b"PK") or magic == b"\x93NUMPY"):
        raise CalibrationError(not_data)
    convert = _convert_itemsize(inputs)
    if magic == b"\x93NUMPY":
        if len(inputs) != 1:
            raise CalibrationError(f"calibration data {where!r} is a single .npy array but the "
                                   f"model has inputs {_expected(inputs)}: use a .npz keyed by "
                                   f"input name")
        loaded, _ = _read(load_npy, where, max_bytes, convert_itemsize=convert)
        return CalibrationSet(inputs, {inputs[0].name: _as_stack(loaded, inputs[0], repr(where))})
    arrays, _ = _read(load_npz, where, max_bytes, convert_itemsize=convert)
    if not arrays:
        raise CalibrationError(f"calibration data {where!r} is empty: the .npz holds no arrays")
    return CalibrationSet(inputs, _by_name(arrays, inputs, repr(where)))


def _convert_itemsize(inputs: Sequence[InputSpec]) -> int:
    return max(spec.dtype.itemsize for spec in inputs) if inputs else 0


def _read(reader: Callable[..., Any], where: str, *args: Any, **kwargs: Any) -> Any:
    """``open_regular`` / ``load_npy`` / ``load_npz`` of ``microlith.frontend.input_files``
    with ``CalibrationError`` messages that say "calibration data"."""
    try:
        return reader(where, *args, error=CalibrationError, **kwargs)
    except CalibrationError as exc:
        message = str(exc)
        if "budget" in message:
            message += (f" (calibration data is limited to {MAX_CALIBRATION_BYTES:,} bytes "
                        f"in memory by default; use fewer samples)")
        raise CalibrationError(f"calibration data {message}") from None


def _load_directory(directory: Path, inputs: list[InputSpec],
                    budget: int) -> dict[str, np.ndarray]:
    files = sorted(p for p in directory.iterdir() if p.suffix == ".npy" and p.is_file())
    where = os.fspath(directory)
    if not files:
        raise CalibrationError(f"calibration data {where!r}: the directory holds no .npy files")
    convert = _convert_itemsize(inputs)
    left = [budget]

    def load(p: Path) -> np.ndarray:
        array, cost = _read(load_npy, os.fspath(p), left[0], convert_itemsize=convert)
        left[0] -= cost
        return array

    names = {spec.name for spec in inputs}
    named = [p for p in files if p.stem in names]
    if named:
        present = {p.stem for p in named}
        missing = [spec.name + ".npy" for spec in inputs if spec.name not in present]
        unknown = [p.name for p in files if p.stem not in names]
        if missing or unknown:
            problem = (f"missing {', '.join(missing)}" if missing
                       else f"unknown file(s) {', '.join(unknown)}")
            raise CalibrationError(f"calibration data {where!r}: {problem}; expected one "
                                   f"<input name>.npy per input: "
                                   f"{', '.join(s.name + '.npy' for s in inputs)}")
        return {p.stem: _as_stack(load(p), next(s for s in inputs if s.name == p.stem),
                                  repr(os.fspath(p))) for p in named}
    if len(inputs) != 1:
        raise CalibrationError(f"calibration data {where!r}: a multi-input model needs one "
                               f"<input name>.npy per input: "
                               f"{', '.join(s.name + '.npy' for s in inputs)}")
    spec = inputs[0]
    stacks = [_as_stack(load(p), spec, repr(os.fspath(p))) for p in files]
    return {spec.name: np.concatenate(stacks)}


class Progress:
    """Progress of a long loop: ``calibrating [####----] 120/200 samples 350/s``.

    On a terminal: a one-line bar drawn with ``\\r`` on ``stream`` (default: stderr),
    redrawn at most every ``interval`` seconds and ended with a newline by ``close``.
    Off a terminal (a log, CI, a pipe): one plain line every ``line_interval`` seconds
    (``progress: calibrating 120/200 samples (60%), 35.2/s, 3.4 s``; a ``progress:``
    line is never an error line), so a short run prints nothing and a long one shows it
    is alive. ``enabled=False`` (quiet) shows neither;
    ``enabled=True`` forces the bar.
    """

    WIDTH = 24

    def __init__(self, total: int, *, label: str = "calibrating", stream: TextIO | None = None,
                 enabled: bool | None = None, interval: float = 0.1,
                 line_interval: float = 5.0) -> None:
        self.total, self.label, self.interval = total, label, interval
        self.stream = stream if stream is not None else sys.stderr
        self.lines = False
        if enabled is None:
            try:
                enabled = bool(self.stream.isatty())
            except (AttributeError, ValueError):
                enabled = False
            self.lines = not enabled
        self.enabled = enabled
        self.line_interval = line_interval
        self.start = time.perf_counter()
        self.last_draw = -float("inf")
        self.last_line = self.start
        self.done = 0
        self._drawn_done: int | None = None
        self._width = 0

    def update(self, done: int) -> None:
        self.done = done
        now = time.perf_counter()
        if self.enabled and (now - self.last_draw >= self.interval or done >= self.total):
            self.last_draw = now
            self._draw(now)
        elif self.lines and now - self.last_line >= self.line_interval:
            self.last_line = now
            self._line(now)

    def _rate(self, now: float) -> float:
        return self.done / max(now - self.start, 1e-9)

    def _line(self, now: float) -> None:
        percent = 100 * self.done // self.total if self.total else 100
        self.stream.write(f"progress: {self.label} {self.done}/{self.total} samples "
                          f"({percent}%), {self._rate(now):,.1f}/s, {now - self.start:.1f} s\n")
        self.stream.flush()

    def _draw(self, now: float) -> None:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * self.WIDTH))
        line = (f"{self.label} [{'#' * filled}{'-' * (self.WIDTH - filled)}] "
                f"{self.done}/{self.total} samples {self._rate(now):,.1f}/s")
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)
        self._drawn_done = self.done

    def close(self) -> None:
        """Draw the final state (if not yet shown) and end the line; off a terminal, a last
        line when any was printed."""
        if self.lines and self.last_line > self.start:
            self.last_line = self.start  # once
            self._line(time.perf_counter())
        if not self.enabled or self._drawn_done is None:
            return
        if self._drawn_done != self.done:
            self._draw(time.perf_counter())
        self.stream.write("\n")
        self.stream.flush()
        self._drawn_done = None
