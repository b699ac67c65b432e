"""Generated text too large to hold as one string: written to its file piece by piece.

A C target's ``model.c`` for a model with hundreds of megabytes of weights is several
times larger as text (a float32 weight is up to ~16 characters); holding it as one ``str``
and encoding it again to write it multiplies a compile's peak memory. A
``StreamedText`` is the file as a list of pieces -- plain strings and ``Chunked`` objects
(a weight array rendered a few thousand elements at a time) -- and is written by
iterating them. ``str(text)`` gives the same characters as one string; the bytes written
are exactly ``str(text).encode()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import IO, Protocol


class Chunked(Protocol):
    """A piece of text produced in chunks (``chunks()`` concatenated is the text)."""

    def chunks(self) -> Iterator[str]: ...


class StreamedText:
    """Text made of ``pieces`` (strings or ``Chunked``), rendered on demand."""

    def __init__(self, pieces: Sequence[str | Chunked]) -> None:
        self.pieces = list(pieces)

    def chunks(self) -> Iterator[str]:
        for piece in self.pieces:
            if isinstance(piece, str):
                yield piece
            else:
                yield from piece.chunks()

    def write_to(self, handle: IO[str]) -> None:
        """Write the text to a text-mode file, one chunk at a time."""
        for chunk in self.chunks():
            handle.write(chunk)

    def write_bytes_to(self, handle: IO[bytes], encoding: str = "utf-8") -> None:
        """Write the encoded text to a binary file, one chunk at a time."""
        for chunk in self.chunks():
            handle.write(chunk.encode(encoding))

    def encode(self, encoding: str = "utf-8") -> bytes:
        return str(self).encode(encoding)

    def __str__(self) -> str:
        return "".join(self.chunks())

    def __len__(self) -> int:
        """Characters of the text, counted chunk by chunk (never joined)."""
        return sum(len(chunk) for chunk in self.chunks())

    def __contains__(self, text: str) -> bool:
        return text in str(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StreamedText | str):
            return str(self) == str(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by text

    def __repr__(self) -> str:
        return f"StreamedText({len(self.pieces)} pieces)"


#: a generated file's text: a string, or a ``StreamedText`` for a large one
FileText = str | StreamedText


def write_encoded(handle: IO[bytes], data: str | bytes | StreamedText) -> None:
    """Write ``data`` to a binary file: bytes as they are, text as UTF-8 (a
    ``StreamedText`` one chunk at a time)."""
    if isinstance(data, StreamedText):
        data.write_bytes_to(handle)
    else:
        handle.write(data.encode() if isinstance(data, str) else data)
