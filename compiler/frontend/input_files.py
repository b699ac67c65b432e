"""Opening input files safely: regular files only, sizes bounded before anything is read.

A FIFO given as an input path would hang (opening it waits for a writer), a device
such as ``/dev/zero`` never ends, and a file (or a ``.npy`` / ``.npz`` header) that
claims more bytes than we are prepared to hold would exhaust memory. Checked here:

* ``open_regular``: the path is a regular file (symlinks to one are fine), checked with
  ``stat`` before opening and again with ``fstat`` on the opened descriptor (the path
  may have been swapped in between); its size is at most ``limit`` bytes;
* ``read_bounded``: the same, then the whole file, never more than ``limit`` bytes;
* ``npy_header``: a ``.npy`` header (``numpy.lib.format``) names a plain numeric dtype
  and a shape whose byte size fits both the bytes that follow it and a budget;
* ``load_npy`` / ``load_npz``: arrays read only after their headers passed that check
  (a ``.npz`` member against its uncompressed size: no inflating beyond it).

Every failure is one line naming the path, raised as the caller's error class.
"""

from __future__ import annotations

import math
import os
import stat
import struct
import sys
import zipfile
import zlib
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from microlith.diagnostics import FrontendError, MicrolithError

ErrorType = type[MicrolithError]


def _describe(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def check_regular(path: str, what: str, error: ErrorType = FrontendError) -> int:
    """The size of ``path`` if it is a regular file; otherwise a one-line ``error``."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:  # embedded NUL byte in the path
        raise error(f"{path!r}: not a usable path ({exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{path}: is a directory, expected {what}")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{path}: is {_describe(info.st_mode)}, not a regular file; expected {what}")
    return info.st_size


def _too_large(path: str, size: int, limit: int, what: str, error: ErrorType) -> MicrolithError:
    return error(f"{path}: {size:,} bytes is more than the {limit:,}-byte limit for {what}")


def open_regular(path: str | os.PathLike[str], what: str, limit: int,
                 error: ErrorType = FrontendError) -> tuple[IO[bytes], int]:
    """``path`` opened for binary reading and its size; refused unless a regular file of
    at most ``limit`` bytes (see the module docstring). The caller closes the file."""
    path = os.fspath(path)
    size = check_regular(path, what, error)
    if size > limit:
        raise _too_large(path, size, limit, what, error)
    try:  # O_NONBLOCK: a FIFO swapped in after the stat must not block the open
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror or exc})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(fd)
        if info.st_size > limit and stat.S_ISREG(info.st_mode):
            raise _too_large(path, info.st_size, limit, what, error)
        raise error(f"{path}: is {_describe(info.st_mode)}, not a regular file; expected {what}")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb"), info.st_size


def read_bounded(path: str | os.PathLike[str], what: str, limit: int,
                 error: ErrorType = FrontendError) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``; see ``open_regular``)."""
    handle, size = open_regular(path, what, limit, error)
    data = bytearray()
    with handle:  # in chunks: read(limit + 1) would reserve ``limit`` bytes up front
        try:
            while chunk := handle.read(max(size + 1 - len(data), 1 << 20)):
                data += chunk
                if len(data) > limit:  # the file grew after the check
                    raise _too_large(os.fspath(path), len(data), limit, what, error)
        except OSError as exc:
            raise error(f"{os.fspath(path)}: cannot read ({exc.strerror or exc})") from None
    return bytes(data)


def npy_header(handle: IO[bytes], where: str, available: int, budget: int,
               error: ErrorType = FrontendError, convert_itemsize: int = 0
               ) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and the bytes counted against ``budget`` from the ``.npy`` header at
    ``handle``'s position.

    ``available``: bytes of the whole ``.npy`` stream (file size or zip member size); the
    array must fit in what follows the header, and its elements, each counted as the
    larger of its own size and ``convert_itemsize`` (what it will be converted to), in
    ``budget`` bytes.
    """
    start = handle.tell()
    try:
        version = npy_format.read_magic(handle)
        read = npy_format.read_array_header_1_0 if version == (1, 0) else \
            npy_format.read_array_header_2_0  # 3.0 only changes the header's text encoding
        shape, _fortran, dtype = read(handle)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"{where}: not a readable .npy array ({reason})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise error(f"{where}: holds {dtype} data (Python objects or records), not an array "
                    f"of numbers")
    count = math.prod(int(d) for d in shape)
    data_bytes = available - (handle.tell() - start)
    if count * dtype.itemsize > data_bytes:
        raise error(f"{where}: the .npy header claims {count * dtype.itemsize:,} bytes of data "
                    f"(shape {list(shape)}, {dtype}) but only {max(data_bytes, 0):,} follow it")
    cost = count * max(dtype.itemsize, convert_itemsize)
    if cost > budget:
        raise error(f"{where}: array of shape {list(shape)} ({dtype}) needs {cost:,} bytes, "
                    f"more than the {budget:,} bytes left of the budget")
    return tuple(int(d) for d in shape), dtype, cost


_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error,
                NotImplementedError, RuntimeError, struct.error)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_npy(path: str | os.PathLike[str], budget: int, error: ErrorType = FrontendError,
             convert_itemsize: int = 0) -> tuple[np.ndarray, int]:
    """The array of a ``.npy`` file and its cost, its header checked first (``npy_header``)."""
    where = os.fspath(path)
    handle, size = open_regular(where, "a .npy file", sys.maxsize, error)
    with handle:
        _, _, cost = npy_header(handle, where, size, budget, error, convert_itemsize)
        try:
            handle.seek(0)
            return npy_format.read_array(handle, allow_pickle=False), cost
        except _READ_ERRORS as exc:
            raise error(f"{where}: not a readable .npy array ({_reason(exc)})") from None


def load_npz(path: str | os.PathLike[str], budget: int, error: ErrorType = FrontendError,
             convert_itemsize: int = 0) -> tuple[dict[str, np.ndarray], int]:
    """The arrays of a ``.npz`` archive by key (member name without ``.npy``) and their
    total cost. Each member's header is checked against its uncompressed size (which also
    bounds what inflating it can produce) and against what is left of ``budget``."""
    where = os.fspath(path)
    handle, _ = open_regular(where, "a .npz archive", sys.maxsize, error)
    arrays: dict[str, np.ndarray] = {}
    spent = 0
    member = ""
    try:
        with handle, zipfile.ZipFile(handle) as archive:
            for info in archive.infolist():
                member = info.filename
                if info.is_dir():
                    continue
                at = f"{where} (member {member!r})"
                with archive.open(info) as stream:
                    _, _, cost = npy_header(stream, at, info.file_size, budget - spent, error,
                                            convert_itemsize)
                with archive.open(info) as stream:
                    arrays[member[:-4] if member.endswith(".npy") else member] = \
                        npy_format.read_array(stream, allow_pickle=False)
                spent += cost
    except _READ_ERRORS as exc:
        at = f" (member {member!r})" if member else ""
        raise error(f"{where}{at}: not a readable .npz archive ({_reason(exc)})") from None
    return arrays, spent
