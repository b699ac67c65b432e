"""Parsing and checking the ``microlith`` command line's argument values: input shapes,
byte counts and output names (one ``UsageError`` line each)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from microlith.diagnostics import UsageError

MAX_DIM = 2**31 - 1  # TFLite stores dims as int32


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``name=1,3,32,32`` -> ("name", (1, 3, 32, 32)); dims are 1..2**31-1."""
    name, sep, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:  # not a number (or more digits than int() accepts)
        shape = ()
    if not sep or not name or not shape or any(d <= 0 for d in shape):
        raise UsageError(f"--input-shape {text!r}: expected NAME=D0,D1,... with positive dims")
    if any(d > MAX_DIM for d in shape):
        raise UsageError(f"--input-shape {text!r}: dimensions must be at most {MAX_DIM:,}")
    return name, shape


def parse_input_shapes(texts: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Every ``--input-shape``; naming the same input twice is an error (not last-wins)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for text in texts:
        name, shape = parse_input_shape(text)
        if name in shapes:
            raise UsageError(f"--input-shape given twice for input {name!r} "
                             f"({','.join(map(str, shapes[name]))} and "
                             f"{','.join(map(str, shape))})")
        shapes[name] = shape
    return shapes


def parse_bytes(text: str) -> int:
    """``65536``, ``64K``/``64k`` (KiB) or ``1M`` (MiB) -> bytes."""
    units = {"k": 1024, "m": 1024 * 1024}
    body, unit = (text[:-1], units[text[-1].lower()]) if text[-1:].lower() in units else (
        text, 1)
    try:
        value = int(body) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a byte count (e.g. 65536, 64K, "
                                         "1M)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


FILE_SUFFIXES = {".tflite": "tflite", ".c": "c", ".h": "c", ".cc": "c", ".onnx": "onnx",
                 ".html": "report", ".json": "JSON", ".npy": "numpy", ".npz": "numpy"}


def check_output_suffix(output: str, target: str, directory: bool) -> None:
    """``-o out.c`` with the tflite target (or ``-o m.tflite`` with c) is a mistake, not a
    wish: refuse an output name whose suffix says another kind of file."""
    suffix = os.path.splitext(output.rstrip("/"))[1].lower()
    kind = FILE_SUFFIXES.get(suffix)
    if kind is None:
        return
    if directory:
        raise UsageError(f"-o {output}: --target {target} writes a directory of files; give a "
                         f"directory name, not a {suffix} file")
    if kind != "tflite":
        hint = " (for C use --target c -o DIR)" if kind == "c" else ""
        raise UsageError(f"-o {output}: --target {target} writes a .tflite flatbuffer, not a "
                         f"{suffix} file{hint}")
