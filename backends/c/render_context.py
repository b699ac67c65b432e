"""The interface between the C emitter and the per-op renderers.

The emitter owns memory (arena offsets from ``plan-memory``, flash arrays for
constants) and the file layout; a renderer (``microlith.backends.c.render_ops``) turns one
target-op node and its parameter record into kernel calls, asking the context for pointer
expressions, for constant tables (per-channel multipliers and shifts, lookup tables) and
for the ``static const`` parameter structs. Everything a renderer emits is deterministic:
the same node gives the same text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from microlith.backends.c import sanitize
from microlith.ir.core import Node, Value

CTYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "uint16": "uint16_t",
          "int32": "int32_t",
          "int64": "int64_t", "float32": "float"}


@dataclass
class RenderContext:
    """What renderers may use. ``tensor`` and ``scratch`` are supplied by the emitter."""

    tensor_expr: Callable[[Value], str]  # C pointer expression for a value (arena or flash)
    scratch_expr: Callable[[Node, int], str] | None = None  # pointer to planned scratch bytes
    prefix: str = "model"
    # file-scope definitions, in order; weight arrays stay arrays until written (ArrayDecl)
    declarations: list[str | ArrayDecl] = field(default_factory=list)
    _const_names: dict[tuple[str, str, bytes], list[ArrayDecl]] = field(default_factory=dict)
    _struct_names: dict[tuple[str, str], str] = field(default_factory=dict)
    _taken: set[str] = field(default_factory=set)

    def tensor(self, value: Value) -> str:
        return self.tensor_expr(value)

    def _unique(self, hint: str) -> str:
        base = f"{self.prefix}_{sanitize.identifier(hint)}"
        name, i = base, 1
        while name in self._taken:
            name, i = f"{base}_{i}", i + 1
        self._taken.add(name)
        return name

    def const_array(self, hint: str, array: np.ndarray) -> str:
        """A ``static const`` array in flash holding ``array``; returns its C name.

        Identical contents share one array. Names are ``<prefix>_<hint>`` made unique.
        """
        array = np.ascontiguousarray(array)
        ctype = CTYPES[array.dtype.name]
        raw = _raw_bytes(array)
        key = (ctype, hint, hashlib.sha256(raw).digest())  # no copy of the weights as a key
        same = self._const_names.setdefault(key, [])
        for declaration in same:  # equal digests: the bytes are compared too
            if _raw_bytes(declaration.array) == raw:
                return declaration.name
        name = self._unique(hint)
        declaration = ArrayDecl(name, array, ctype)
        same.append(declaration)
        # a large array stays an array until the file is written (StreamedText)
        self.declarations.append(declaration if array.size >= STREAM_MIN_ELEMENTS
                                 else str(declaration))
        return name

    def struct(self, ctype: str, hint: str, fields: Sequence[tuple[str, str]]) -> str:
        """A ``static const`` parameter struct (designated initializers); returns its name.

        Identical structs share one definition.
        """
        body = "".join(f"\n    .{name} = {value}," for name, value in fields)
        key = (ctype, body)
        if key in self._struct_names:
            return self._struct_names[key]
        name = self._unique(hint + "_params")
        self._struct_names[key] = name
        self.declarations.append(f"static const {ctype} {name} = {{{body}\n}};")
        return name

    def scratch(self, node: Node, nbytes: int) -> str:
        if self.scratch_expr is None:
            raise ValueError(f"{node.name}: no scratch memory was planned")
        return self.scratch_expr(node, nbytes)


def _raw_bytes(array: np.ndarray) -> memoryview:
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).data


#: elements rendered per chunk of a streamed array
CHUNK_ELEMENTS = 1 << 16
#: arrays of at least this many elements are rendered only when the file is written
STREAM_MIN_ELEMENTS = 1 << 16


def _items(flat: np.ndarray, ctype: str) -> list[str]:
    if ctype == "float":
        return [f"{float(v)!r}f" if np.isfinite(v) else "0.0f" for v in flat]
    if ctype == "int32_t":
        return [f"{int(v)}" if int(v) != -(2**31) else "(-2147483647 - 1)" for v in flat]
    return [str(int(v)) for v in flat]


@dataclass
class ArrayDecl:
    """``static const <ctype> name[n] ALIGN = {...};`` for ``array``, rendered in chunks of
    ``CHUNK_ELEMENTS`` (the array is the constant's own data, not a copy)."""

    name: str
    array: np.ndarray
    ctype: str
    per_line: int = 16

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def chunks(self) -> Iterator[str]:
        flat = self.array.reshape(-1)
        size = max(len(flat), 1)
        yield f"static const {self.ctype} {self.name}[{size}] MICROLITH_ALIGN(16) = {{\n    "
        if not len(flat):
            yield "0"
        step = CHUNK_ELEMENTS - CHUNK_ELEMENTS % self.per_line
        for start in range(0, len(flat), step):
            items = _items(flat[start:start + step], self.ctype)
            lines = [", ".join(items[i:i + self.per_line])
                     for i in range(0, len(items), self.per_line)]
            yield (",\n    " if start else "") + ",\n    ".join(lines)
        yield "\n};"

    def __str__(self) -> str:
        return "".join(self.chunks())


def format_array(name: str, array: np.ndarray, ctype: str, per_line: int = 16) -> str:
    """``static const <ctype> name[n] ALIGN = {...};`` with ``MICROLITH_ALIGN(16)``."""
    return str(ArrayDecl(name, array, ctype, per_line))
