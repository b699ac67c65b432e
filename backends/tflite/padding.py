"""Which explicit pads TFLite's SAME / VALID padding reproduce.

TFLite derives padding from the output size: VALID pads nothing and gives
``out = floor((in - k_eff) / s) + 1``; SAME gives ``out = ceil(in / s)`` with
``total = max((out - 1) * s + k_eff - in, 0)``, ``before = total // 2`` and the rest
after (``k_eff = d * (k - 1) + 1``). Explicit ONNX pads are equivalent to one of
them when the output size and the leading pads agree (trailing pads beyond what
the last window reads change nothing).
"""

from __future__ import annotations

from typing import Literal

Padding = Literal["SAME", "VALID"]


def _axis_padding(size: int, kernel: int, stride: int, dilation: int, begin: int,
                  end: int) -> set[str]:
    effective = dilation * (kernel - 1) + 1
    out = (size + begin + end - effective) // stride + 1
    fits: set[str] = set()
    if begin == 0 and out == (size - effective) // stride + 1:
        fits.add("VALID")
    same_out = -(-size // stride)
    total = max((same_out - 1) * stride + effective - size, 0)
    if out == same_out and begin == total // 2:
        fits.add("SAME")
    return fits


def tflite_padding(in_hw: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
                   dilations: tuple[int, int], pads: tuple[int, int, int, int]) -> Padding | None:
    """'VALID' or 'SAME' if equivalent to ``pads`` (top, left, bottom, right), else None."""
    top, left, bottom, right = pads
    fits = _axis_padding(in_hw[0], kernel[0], strides[0], dilations[0], top, bottom) & \
        _axis_padding(in_hw[1], kernel[1], strides[1], dilations[1], left, right)
    if "VALID" in fits:
        return "VALID"
    if "SAME" in fits:
        return "SAME"
    return None
