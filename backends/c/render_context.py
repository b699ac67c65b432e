"""The interface between the C emitter and the per-op renderers.

The emitter owns memory (arena offsets from ``plan-memory``, flash arrays for
constants) and the file layout; a renderer (``microlith.backends.c.render_ops``) turns one
target-op node and its parameter record into kernel calls, asking the context for pointer
expressions, for constant tables (per-channel multipliers and shifts, lookup tables) and
for the ``static const`` parameter structs. Everything a renderer emits is deterministic:
the same node gives the same text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    declarations: list[str] = field(default_factory=list)  # file-scope definitions, in order
    _const_names: dict[tuple[str, str, bytes], str] = field(default_factory=dict)
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
        key = (ctype, hint, array.tobytes())
        if key in self._const_names:
            return self._const_names[key]
        name = self._unique(hint)
        self._const_names[key] = name
        self.declarations.append(format_array(name, array, ctype))
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


def format_array(name: str, array: np.ndarray, ctype: str, per_line: int = 16) -> str:
    """``static const <ctype> name[n] ALIGN = {...};`` with ``MICROLITH_ALIGN(16)``."""
    flat = array.reshape(-1)
    if ctype == "float":
        items = [f"{float(v)!r}f" if np.isfinite(v) else "0.0f" for v in flat]
    elif ctype == "int32_t":
        items = [f"{int(v)}" if int(v) != -(2**31) else "(-2147483647 - 1)" for v in flat]
    else:
        items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines) if lines else "0"
    size = max(len(flat), 1)
    return (f"static const {ctype} {name}[{size}] MICROLITH_ALIGN(16) = {{\n    {body}\n}};")
