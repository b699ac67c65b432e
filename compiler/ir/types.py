"""Tensor types of the IR: element dtype, static shape and optional quantization.

A value's type is immutable; passes replace it with ``Value.set_type``. Shapes are
fully static (the frontend pins every dimension). Quantization maps a stored
integer ``q`` to ``real = scale * (q - zero_point)``; with ``axis`` set, ``scale``
and ``zero_point`` hold one entry per slice along that axis (per-channel).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class DType(enum.Enum):
    """Element types the IR can hold (the union of what ONNX and TFLite share)."""

    FLOAT32 = "f32"
    FLOAT16 = "f16"
    INT8 = "i8"
    UINT8 = "u8"
    INT16 = "i16"
    INT32 = "i32"
    INT64 = "i64"
    BOOL = "bool"

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(_NUMPY[self])

    @property
    def itemsize(self) -> int:
        return self.numpy.itemsize

    @property
    def is_float(self) -> bool:
        return self in (DType.FLOAT32, DType.FLOAT16)

    @staticmethod
    def from_numpy(dtype: np.dtype | type) -> DType:
        name = np.dtype(dtype).name
        for member, np_name in _NUMPY.items():
            if np_name == name:
                return member
        raise ValueError(f"unsupported element type {name}")

    def __str__(self) -> str:
        return self.value


_NUMPY: dict[DType, str] = {
    DType.FLOAT32: "float32",
    DType.FLOAT16: "float16",
    DType.INT8: "int8",
    DType.UINT8: "uint8",
    DType.INT16: "int16",
    DType.INT32: "int32",
    DType.INT64: "int64",
    DType.BOOL: "bool",
}


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization: ``real = scale * (q - zero_point)``.

    Per-tensor when ``axis`` is None (one scale and zero point); per-axis otherwise,
    with one entry per index of dimension ``axis``.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int | None = None

    def __post_init__(self) -> None:
        if len(self.scale) != len(self.zero_point):
            raise ValueError("scale and zero_point must have the same length")
        if self.axis is None and len(self.scale) != 1:
            raise ValueError("per-tensor quantization takes exactly one scale")
        if not self.scale:
            raise ValueError("per-axis quantization needs at least one scale")
        if any(not np.isfinite(s) or s <= 0 for s in self.scale):
            raise ValueError(f"quantization scales must be finite and positive: {self.scale}")

    @property
    def per_axis(self) -> bool:
        return self.axis is not None

    def __str__(self) -> str:
        if self.axis is None:
            return f"q<{self.scale[0]:.6g}:{self.zero_point[0]}>"
        return f"q<axis={self.axis},n={len(self.scale)},{_digest_scales(self.scale)}>"


def _digest_scales(scales: tuple[float, ...]) -> str:
    arr = np.asarray(scales, dtype=np.float64)
    return f"{arr.min():.4g}..{arr.max():.4g}"


@dataclass(frozen=True)
class TensorType:
    """A statically shaped tensor type, optionally quantized."""

    dtype: DType
    shape: tuple[int, ...]
    quant: QuantParams | None = None

    def __post_init__(self) -> None:
        if any((not isinstance(d, int)) or d < 0 for d in self.shape):
            raise ValueError(f"shape must be non-negative integers, got {self.shape}")
        if self.quant is not None and self.quant.axis is not None:
            axis = self.quant.axis
            if not 0 <= axis < len(self.shape):
                raise ValueError(f"quantized axis {axis} out of range for shape {self.shape}")
            if len(self.quant.scale) != self.shape[axis]:
                raise ValueError(
                    f"{len(self.quant.scale)} scales for dimension {axis} of size "
                    f"{self.shape[axis]}"
                )

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize

    def with_shape(self, shape: tuple[int, ...] | list[int]) -> TensorType:
        return TensorType(self.dtype, tuple(int(d) for d in shape), None)

    def with_quant(self, quant: QuantParams | None) -> TensorType:
        return TensorType(self.dtype, self.shape, quant)

    def __str__(self) -> str:
        dims = "x".join(str(d) for d in self.shape)
        body = f"{dims}x{self.dtype}" if dims else str(self.dtype)
        if self.quant is not None:
            body += f", {self.quant}"
        return f"tensor<{body}>"
