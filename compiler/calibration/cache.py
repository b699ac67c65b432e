"""The calibration cache: the collected statistics as JSON, so ranges can be recomputed
with any method without running the data again.

Format (``version`` 1)::

    {"version": 1, "fingerprint": "<sha256>", "graph_fingerprint": "<sha256>",
     "data_fingerprint": "<sha256>", "samples": 200,
     "tensors": {"<value name>": {"min": .., "max": .., "count": ..,
                                  "hist": [..], "hist_edges": [-T, T]}}}

``hist`` has an even number of equal bins over ``hist_edges`` (see ``observers``).
``fingerprint`` is the sha256 of the graph fingerprint (the structure and weights the
statistics were measured on: inputs, ops, attributes, value names, constant bytes) and
the data fingerprint (``CalibrationSet.fingerprint`` of the samples used).

Invalidation: with data, the cache is used only if ``fingerprint`` matches; without
data, only ``graph_fingerprint`` can be checked. A stale, unreadable or foreign file
is ignored with a warning (and overwritten after recomputing); a missing file is the
normal first run. Files are written atomically (temporary file + rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from microlith.calibration.data import CalibrationError
from microlith.calibration.observers import TensorStats
from microlith.diagnostics import WarningSink
from microlith.frontend.input_files import read_bounded
from microlith.ir.core import Graph

CACHE_VERSION = 1
MAX_CACHE_BYTES = 256 << 20  # a cache holds one histogram per tensor: far below this


def check_cache_path(path: str | os.PathLike[str]) -> None:
    """Refuse a cache path that is neither a regular file nor new (a FIFO would hang the
    read, and the atomic rename would replace a device or a symlink)."""
    where = os.fspath(path)
    try:
        mode = os.lstat(where).st_mode
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"calibration cache {where!r}: not usable ({exc})") from None
    if stat.S_ISLNK(mode):
        raise CalibrationError(f"calibration cache {where!r}: is a symbolic link; refusing "
                               "to replace it (give the link's target or a new path)")
    if not stat.S_ISREG(mode):
        raise CalibrationError(f"calibration cache {where!r}: exists and is not a regular "
                               "file; give a regular file or a new path")


def _canonical(value: Any) -> Any:
    """A JSON-able, repr-stable form of an attribute value (arrays by content hash)."""
    if isinstance(value, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()
        return ["ndarray", value.dtype.str, list(value.shape), digest]
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    return repr(value)


def graph_fingerprint(graph: Graph) -> str:
    """sha256 of what determines the statistics: interface, nodes, names and weights."""
    digest = hashlib.sha256(b"microlith-calibration-graph-v1\0")

    def add(item: Any) -> None:
        digest.update(json.dumps(item, sort_keys=True).encode())
        digest.update(b"\0")

    add(["inputs", [[v.name, str(v.type)] for v in graph.inputs]])
    add(["io_perms", _canonical(graph.meta.get("io_perms", {}))])
    seen: set[str] = set()
    for node in graph.nodes:
        operands: list[object] = []
        for value in node.inputs:
            if value is None:
                operands.append(None)
            elif value.is_constant:
                if value.name not in seen:
                    seen.add(value.name)
                    add(["const", value.name, _canonical(value.data)])
                operands.append(["const", value.name])
            else:
                operands.append(value.name)
        add(["node", node.op, _canonical(node.attrs), operands,
             [[v.name, str(v.type)] for v in node.outputs]])
    add(["outputs", [v.name for v in graph.outputs]])
    return digest.hexdigest()


def combined_fingerprint(graph_fp: str, data_fp: str) -> str:
    return hashlib.sha256(f"{graph_fp}\0{data_fp}".encode()).hexdigest()


@dataclass(frozen=True)
class CacheContents:
    fingerprint: str
    graph_fingerprint: str
    data_fingerprint: str
    samples: int
    tensors: dict[str, TensorStats]


def save_cache(path: str | os.PathLike[str], contents: CacheContents) -> None:
    """Write ``contents`` as JSON via a temporary file and an atomic rename."""
    where = os.fspath(path)
    document = {
        "version": CACHE_VERSION,
        "fingerprint": contents.fingerprint,
        "graph_fingerprint": contents.graph_fingerprint,
        "data_fingerprint": contents.data_fingerprint,
        "samples": contents.samples,
        "tensors": {name: {"min": s.min, "max": s.max, "count": s.count,
                           "hist": [int(c) for c in s.hist],
                           "hist_edges": [-s.half_range, s.half_range]}
                    for name, s in contents.tensors.items()},
    }
    text = json.dumps(document, sort_keys=True) + "\n"
    directory = os.path.dirname(os.path.abspath(where))
    if not os.path.isdir(directory):
        raise CalibrationError(f"calibration cache {where!r}: directory does not exist")
    check_cache_path(where)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".microlith-calibration-", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, where)
    except OSError as exc:
        raise CalibrationError(f"calibration cache {where!r}: cannot write it: "
                               f"{exc.strerror or exc}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _parse(document: Any) -> CacheContents:
    """Validate a decoded document; raises ``ValueError`` saying what is wrong."""
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    if document.get("version") != CACHE_VERSION:
        raise ValueError(f"version {document.get('version')!r}, expected {CACHE_VERSION}")
    tensors: dict[str, TensorStats] = {}
    raw = document.get("tensors")
    if not isinstance(raw, dict):
        raise ValueError("no 'tensors' object")
    for name, entry in raw.items():
        try:
            lo, hi = (float(e) for e in entry["hist_edges"])
            hist = np.asarray(entry["hist"], dtype=np.int64)
            if lo != -hi or (hist < 0).any():
                raise ValueError("bad histogram")
            tensors[name] = TensorStats(float(entry["min"]), float(entry["max"]),
                                        int(entry["count"]), hist, hi)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad entry for tensor {name!r} ({exc})") from None
    return CacheContents(str(document.get("fingerprint")),
                         str(document.get("graph_fingerprint")),
                         str(document.get("data_fingerprint")),
                         int(document.get("samples", 0)), tensors)


def load_cache(path: str | os.PathLike[str], *, graph_fp: str, data_fp: str | None,
               warn: WarningSink, needed: Mapping[str, object] | None = None
               ) -> CacheContents | None:
    """The cached statistics if they are valid for this graph (and data, when given).

    ``None`` for a missing file (silently) or an unusable one (with a warning).
    ``needed`` names tensors the cache must hold.
    """
    where = os.fspath(path)
    check_cache_path(where)
    if not os.path.exists(where):
        return None
    text = read_bounded(where, "a calibration cache (JSON)", MAX_CACHE_BYTES, CalibrationError)
    try:
        contents = _parse(json.loads(text.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
        warn(f"calibration cache {where!r} is unreadable ({exc}); ignoring it")
        return None
    if contents.graph_fingerprint != graph_fp:
        warn(f"calibration cache {where!r} is stale (it was made for a different model or "
             f"pipeline); ignoring it")
        return None
    if data_fp is not None and contents.fingerprint != combined_fingerprint(graph_fp, data_fp):
        warn(f"calibration cache {where!r} is stale (it was made from different calibration "
             f"data); ignoring it")
        return None
    missing = [name for name in (needed or {}) if name not in contents.tensors]
    if missing:
        warn(f"calibration cache {where!r} has no statistics for tensor {missing[0]!r}; "
             f"ignoring it")
        return None
    return contents
