"""The ``Target`` registry: what each ``--target`` appends to the pipeline and how it emits.

A target names the pipeline tail that lowers the canonical IR to its own ops (e.g.
``legalize-tflite``), the facts its emitter needs at the end of the pipeline, and the
emitter itself. Backends register their targets with ``register_target``; the registry,
like the pass registry, loads them from ``microlith.targets`` entry points, so the
driver never branches on a target's name.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass, field

from microlith.diagnostics import UsageError
from microlith.ir.core import Graph
from microlith.streamed_text import StreamedText

ENTRY_POINT_GROUP = "microlith.targets"


@dataclass(frozen=True)
class EmitOptions:
    prefix: str = "model"  # C targets: file and symbol prefix
    source_name: str = "model"  # the model file name, for comments
    strip: bool = False  # flatbuffer targets: drop what TFLite-Micro does not read


@dataclass
class Emitted:
    """What a target produced: a flatbuffer, a set of text files, or both."""

    output: bytes = b""
    files: dict[str, str | StreamedText] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    name: str
    summary: str
    tail: tuple[str, ...]  # pass specs appended to the canonical pipeline
    requires: tuple[str, ...]  # facts the pipeline must leave for the emitter
    emit: Callable[[Graph, EmitOptions], Emitted]
    directory: bool = False  # the output is a directory of files
    integer_only: bool = False  # needs a quantized graph
    check_options: Callable[[EmitOptions], None] | None = None  # refuse bad options early


TARGETS: dict[str, Target] = {}
_LOADED = False


def register_target(target: Target) -> Target:
    if target.name in TARGETS and TARGETS[target.name] is not target:
        raise ValueError(f"target {target.name!r} registered twice")
    TARGETS[target.name] = target
    return target


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                        key=lambda e: e.name):
        entry.load()


def all_targets() -> dict[str, Target]:
    _load()
    return dict(sorted(TARGETS.items()))


def get_target(name: str) -> Target:
    _load()
    if name not in TARGETS:
        raise UsageError(f"unknown target {name!r} (targets: {', '.join(sorted(TARGETS))})")
    return TARGETS[name]
