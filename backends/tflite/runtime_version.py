"""``min_runtime_version`` metadata: the oldest TFLite runtime that runs every operator.

The TF converter stores, in a 16-byte metadata buffer named ``min_runtime_version``, the
highest release that introduced one of the model's (builtin, version) pairs (TFLite's
``tools/versioning/runtime_version.cc`` holds the facts; some loaders read it to refuse a
model early). The release facts below are restated for the builtins microlith emits;
a pair that is not listed (introduced after the table was compiled) is skipped, as the
converter skips pairs it does not know.
"""

from __future__ import annotations

from collections.abc import Iterable

METADATA_NAME = "min_runtime_version"
BUFFER_BYTES = 16

# builtin -> the release that introduced version 1, 2, ... (index = version - 1)
_RELEASES: dict[str, tuple[str, ...]] = {
    "ABS": ("1.13.0", "2.4.0", "2.5.0", "2.6.0"),
    "ADD": ("1.5.0", "1.14.0", "2.4.0", "2.6.0"),
    "AVERAGE_POOL_2D": ("1.5.0", "1.14.0", "2.3.0"),
    "CONCATENATION": ("1.5.0", "1.14.0", "2.3.0"),
    "CONV_2D": ("1.5.0", "1.14.0", "1.14.0", "2.3.0", "2.4.0", "2.9.0"),
    "DEPTHWISE_CONV_2D": ("1.5.0", "1.12.0", "1.14.0", "2.2.0", "2.3.0", "2.3.0"),
    "DEQUANTIZE": ("1.13.1", "1.14.0", "1.15.0", "2.2.0", "2.7.0"),
    "DIV": ("1.6.0", "2.3.0"),
    "EXP": ("1.7.0",),
    "FULLY_CONNECTED": ("1.5.0", "1.10.0", "1.14.0", "1.14.0", "2.0.0", "2.1.0", "2.3.0",
                        "2.3.0", "2.3.0"),
    "HARD_SWISH": ("1.15.0",),
    "LEAKY_RELU": ("1.13.1", "2.3.0"),
    "LOGISTIC": ("1.14.0", "1.14.0", "2.3.0"),
    "MAXIMUM": ("1.14.0", "1.14.0", "2.3.0", "2.3.0"),
    "MINIMUM": ("1.14.0", "1.14.0", "2.3.0", "2.3.0"),
    "MAX_POOL_2D": ("1.5.0", "1.14.0", "2.3.0"),
    "MEAN": ("1.6.0", "1.14.0", "2.4.0"),
    "MUL": ("1.5.0", "1.14.0", "1.15.0", "2.3.0", "2.6.0"),
    "NEG": ("1.9.0",),
    "PAD": ("1.5.0", "1.14.0", "2.4.0", "2.6.0"),
    "PADV2": ("1.9.0", "1.14.0", "2.4.0", "2.6.0"),
    "PRELU": ("1.8.0",),
    "QUANTIZE": ("1.14.0", "1.15.0", "2.7.0"),
    "RELU": ("1.5.0", "2.1.0", "2.5.0"),
    "RELU6": ("1.5.0", "1.14.0", "2.5.0"),
    "RESHAPE": ("1.5.0",),
    "SOFTMAX": ("1.5.0", "1.14.0", "2.3.0"),
    "SPLIT": ("1.5.0", "1.14.0", "1.14.0", "2.3.0"),
    "SPLIT_V": ("1.13.1", "2.3.0"),
    "SQRT": ("1.10.0",),
    "SUB": ("1.6.0", "1.14.0", "2.3.0", "2.4.0", "2.4.0"),
    "TANH": ("1.14.0", "1.14.0", "2.3.0"),
    "TRANSPOSE": ("1.6.0", "1.14.0", "1.15.0", "2.3.0", "2.4.0"),
    "TRANSPOSE_CONV": ("1.9.0", "2.2.0", "2.3.0"),
}


def release_for(op: str, version: int) -> str | None:
    """The release that introduced ``op`` version ``version``, or None when not listed."""
    releases = _RELEASES.get(op, ())
    return releases[version - 1] if 1 <= version <= len(releases) else None


def _key(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


def min_runtime_version(ops: Iterable[tuple[str, int]]) -> str:
    """The highest release among the (builtin, version) pairs; "" when none is listed."""
    known = [r for op, v in ops if (r := release_for(op, v)) is not None]
    return max(known, key=_key, default="")


def metadata_buffer(version: str) -> bytes:
    """The 16-byte, zero-padded buffer the converter writes."""
    raw = version.encode("ascii")
    if len(raw) >= BUFFER_BYTES:
        raise ValueError(f"runtime version {version!r} does not fit {BUFFER_BYTES} bytes")
    return raw.ljust(BUFFER_BYTES, b"\0")
