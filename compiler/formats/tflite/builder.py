"""The flatbuffer builder of the ``.tflite`` writer: large data vectors left as holes.

``serialize_model`` (``flatbuffer.py``) writes through a ``HoleBuilder`` sized once by
``builder_size``; the weights are copied a single time, into the file's ``bytes``.
"""

from __future__ import annotations

import mmap
from typing import TYPE_CHECKING

import flatbuffers

if TYPE_CHECKING:
    from .flatbuffer import TflModel


class HoleBuilder(flatbuffers.Builder):
    """A ``flatbuffers.Builder`` whose large byte vectors are holes, filled only when the
    file is assembled (``assemble``).

    Everything a builder computes (alignment, offsets, vtables) depends on positions
    relative to the end of its buffer, never on the bytes of a data vector, so a data
    vector can be left as a gap of its length and its bytes copied once, straight into
    the final ``bytes``. The buffer is an anonymous mmap: the gaps are never touched, so
    they take no memory.
    """

    def __init__(self, size: int) -> None:
        super().__init__(0)
        self.Bytes = mmap.mmap(-1, max(size, 1))
        self.head = len(self.Bytes)
        self.holes: list[tuple[int, bytes | memoryview]] = []  # (offset from the end, data)

    def hole(self, data: bytes | memoryview) -> None:
        """Reserve ``len(data)`` bytes at the head for ``data`` (copied by ``assemble``)."""
        self.head -= len(data)
        self.holes.append((self.Offset(), data))

    def assemble(self) -> bytes:
        """The finished file: the written bytes with every hole filled, one copy."""
        view = memoryview(self.Bytes)
        end = len(self.Bytes)
        pieces: list[bytes | memoryview] = []
        position = self.head
        for offset, data in sorted(self.holes, key=lambda h: -h[0]):  # file order
            start = end - offset
            pieces += [view[position:start], data]
            position = start + len(data)
        pieces.append(view[position:])
        out = b"".join(pieces)
        del pieces, view
        if isinstance(self.Bytes, mmap.mmap):  # (a builder that grew holds a bytearray)
            self.Bytes.close()
        return out


def builder_size(model: TflModel) -> int:
    """An upper bound of the file size: every data buffer (16-aligned) plus generous room
    for the tables. The builder then never grows (growing copies the buffer)."""
    payload = sum(len(t.data) + 32 for t in model.tensors if t.data is not None)
    payload += sum(len(v) + 32 for v in model.metadata.values())
    tables = sum(256 + 2 * len(t.name.encode()) + 8 * len(t.shape)
                 + (24 * len(t.quant.scale) if t.quant is not None else 0)
                 for t in model.tensors)
    tables += sum(512 + 8 * (len(op.inputs) + len(op.outputs)) for op in model.operators)
    names = sum(len(name.encode()) + 64 for sig in model.signatures
                for name, _ in (*sig.inputs, *sig.outputs))
    return 4096 + payload + tables + names + 2 * len(model.description.encode())
