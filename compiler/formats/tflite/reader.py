"""TFLite flatbuffer reader: ``.tflite`` bytes -> ``TflModel``.

The inverse of ``flatbuffer.serialize_model`` (used by tests and ``microlith inspect``).
It walks the flatbuffer directly with a tiny vtable reader rather than generated code.

Conventions for files written by other tools: only single-subgraph models are read;
a tensor whose buffer is empty reads as an activation (``data=None``) unless it has
zero elements; builtin ops microlith cannot write are returned with ``options={}``;
custom ops are returned as ``op='CUSTOM:<custom_code>'``.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from .flatbuffer import TflModel, TflOperator, TflQuant, TflTensor, normalize_options
from .schema import (
    BUILTIN_NAMES,
    ENUMS,
    FILE_IDENTIFIER,
    OP_OPTIONS,
    OPTIONS_TABLES,
    SCHEMA_VERSION,
    TENSOR_TYPE_TO_DTYPE,
)
from .signature import read_signatures

_CUSTOM = 32


class _Table:
    """A flatbuffer table at ``pos`` in ``buf`` (read-only view, bounds-checked)."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        self.vtable = pos - self._unpack("<i", pos)
        self.vtable_size = self._unpack("<H", self.vtable)

    def _unpack(self, fmt: str, at: int) -> Any:
        if not 0 <= at <= len(self.buf) - struct.calcsize(fmt):
            raise ValueError(f"corrupt flatbuffer: offset {at} out of range")
        return struct.unpack_from(fmt, self.buf, at)[0]

    def _field(self, slot: int) -> int:
        entry = 4 + 2 * slot
        return self._unpack("<H", self.vtable + entry) if entry < self.vtable_size else 0

    def scalar(self, slot: int, fmt: str, default: Any = 0) -> Any:
        off = self._field(slot)
        return self._unpack(fmt, self.pos + off) if off else default

    def _deref(self, slot: int) -> int | None:
        off = self._field(slot)
        if not off:
            return None
        at = self.pos + off
        return at + self._unpack("<I", at)

    def table(self, slot: int) -> _Table | None:
        at = self._deref(slot)
        return None if at is None else _Table(self.buf, at)

    def _vector(self, slot: int) -> tuple[int, int] | None:
        at = self._deref(slot)
        return None if at is None else (at + 4, self._unpack("<I", at))

    def array(self, slot: int, dtype: str) -> np.ndarray | None:
        vec = self._vector(slot)
        if vec is None:
            return None
        start, n = vec
        item = np.dtype(dtype).itemsize
        if start + n * item > len(self.buf):
            raise ValueError("corrupt flatbuffer: vector out of range")
        return np.frombuffer(self.buf, dtype=dtype, count=n, offset=start)

    def raw_bytes(self, slot: int) -> bytes | None:
        arr = self.array(slot, "u1")
        return None if arr is None else arr.tobytes()

    def string(self, slot: int) -> str | None:
        raw = self.raw_bytes(slot)
        return None if raw is None else raw.decode("utf-8")

    def tables(self, slot: int) -> list[_Table]:
        vec = self._vector(slot)
        if vec is None:
            return []
        start, n = vec
        offsets = (start + 4 * i for i in range(n))
        return [_Table(self.buf, at + self._unpack("<I", at)) for at in offsets]


def _ints(arr: np.ndarray | None) -> list[int]:
    return [] if arr is None else [int(v) for v in arr]


def _floats(arr: np.ndarray | None) -> list[float] | None:
    return None if arr is None else [float(v) for v in arr]


def _read_quant(q: _Table | None) -> TflQuant | None:
    if q is None:
        return None
    scale, mn, mx = q.array(2, "<f4"), _floats(q.array(0, "<f4")), _floats(q.array(1, "<f4"))
    if (scale is None or len(scale) == 0) and mn is None and mx is None:
        return None
    return TflQuant(
        scale=_floats(scale) or [],
        zero_point=_ints(q.array(3, "<i8")),
        quantized_dimension=q.scalar(6, "<i", 0),
        min=mn,
        max=mx,
    )


def _read_options(op: str, op_table: _Table) -> dict[str, Any]:
    if op not in OP_OPTIONS:
        return {}
    table_name = OP_OPTIONS[op]
    options_type = op_table.scalar(3, "<B", 0)
    if table_name is None:
        return {}
    table = OPTIONS_TABLES[table_name]
    if options_type not in (0, table.union_type):
        raise ValueError(f"{op}: builtin_options_type {options_type} is not {table_name}")
    fb = op_table.table(4) if options_type else None
    raw: dict[str, Any] = {}
    if fb is not None:
        for slot, f in enumerate(table.fields):
            if f is None:
                continue
            if f.kind == "int32_vector":
                arr = fb.array(slot, "<i4")
                raw[f.name] = None if arr is None else _ints(arr)
            elif f.enum is not None:
                code = fb.scalar(slot, "<b", ENUMS[f.enum][f.default])
                raw[f.name] = int(code)
            elif f.kind == "bool":
                raw[f.name] = bool(fb.scalar(slot, "<B", int(f.default)))
            elif f.kind in ("int32", "uint32"):
                raw[f.name] = fb.scalar(slot, "<i" if f.kind == "int32" else "<I", f.default)
            else:
                raw[f.name] = fb.scalar(slot, "<f", f.default)
    return normalize_options(op, raw)


def parse_model(data: bytes) -> TflModel:
    """Parse a ``.tflite`` flatbuffer into a ``TflModel`` (see module docstring)."""
    buf = bytes(data)
    if len(buf) < 8 or buf[4:8] != FILE_IDENTIFIER:
        raise ValueError("not a TFLite flatbuffer (missing 'TFL3' file identifier)")
    root = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
    version = root.scalar(0, "<I", 0)
    if version != SCHEMA_VERSION:
        raise ValueError(f"unsupported TFLite schema version {version}")
    buffers = [b.raw_bytes(0) for b in root.tables(4)]
    subgraphs = root.tables(2)
    if len(subgraphs) != 1:
        raise ValueError(f"expected exactly one subgraph, found {len(subgraphs)}")
    sg = subgraphs[0]

    opcodes: list[tuple[str, int]] = []
    for oc in root.tables(1):
        code = max(oc.scalar(0, "<b", 0), oc.scalar(3, "<i", 0))
        if code == _CUSTOM:
            name = f"CUSTOM:{oc.string(1) or ''}"
        elif code in BUILTIN_NAMES:
            name = BUILTIN_NAMES[code]
        else:
            raise ValueError(f"unknown builtin operator code {code}")
        opcodes.append((name, oc.scalar(2, "<i", 1)))

    tensors = []
    for t in sg.tables(0):
        type_code = t.scalar(1, "<b", 0)
        if type_code not in TENSOR_TYPE_TO_DTYPE:
            raise ValueError(f"unsupported tensor type {type_code}")
        shape = _ints(t.array(0, "<i4"))
        buffer_index = t.scalar(2, "<I", 0)
        tensor_data = None
        if buffer_index != 0:
            if buffer_index >= len(buffers):
                raise ValueError(f"tensor buffer index {buffer_index} out of range")
            tensor_data = buffers[buffer_index]
            if not tensor_data:
                tensor_data = b"" if math.prod(shape) == 0 else None
        tensors.append(
            TflTensor(
                name=t.string(3) or "",
                shape=shape,
                dtype=TENSOR_TYPE_TO_DTYPE[type_code],
                data=tensor_data,
                quant=_read_quant(t.table(4)),
                is_variable=bool(t.scalar(5, "<B", 0)),
            )
        )

    operators = []
    for o in sg.tables(3):
        index = o.scalar(0, "<I", 0)
        if index >= len(opcodes):
            raise ValueError(f"operator code index {index} out of range")
        name, op_version = opcodes[index]
        operators.append(
            TflOperator(
                op=name,
                inputs=_ints(o.array(1, "<i4")),
                outputs=_ints(o.array(2, "<i4")),
                options=_read_options(name, o),
                version=op_version,
            )
        )

    metadata = {}
    for md in root.tables(6):
        md_buffer = md.scalar(1, "<I", 0)
        if md_buffer >= len(buffers):
            raise ValueError(f"metadata buffer index {md_buffer} out of range")
        metadata[md.string(0) or ""] = buffers[md_buffer] or b""

    return TflModel(
        tensors=tensors,
        operators=operators,
        inputs=_ints(sg.array(1, "<i4")),
        outputs=_ints(sg.array(2, "<i4")),
        description=root.string(3) or "",
        subgraph_name=sg.string(4) or "",
        metadata=metadata,
        signatures=read_signatures(root),
    )
