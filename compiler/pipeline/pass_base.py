"""``Pass``: a frozen dataclass with a kebab-case ``name`` and typed option fields.

``str(pass)`` gives its spec text (``name`` or ``name{key=value,...}`` listing the
options that differ from their defaults), which ``parse_pipeline`` reads back to an
equal pass. Options are checked when the pass is made (``check_options``), so a bad
value fails at parse time.

Facts (``microlith.pipeline.facts``): a pass ``requires`` facts that passes before it
must have provided, ``provides`` facts, and ``invalidates`` facts its changes make stale
(by default the parameter records and the memory plan: anything that rewrites the graph
after ``prepare`` / ``plan-memory`` invalidates them). The ``PassManager`` checks a whole
pipeline against these before running it.

Registration: ``@register_pass``. The registry never imports the passes itself: the
built-in passes, like third-party ones, are named by ``microlith.passes`` entry points
(each entry point is a module to import), loaded the first time a pass is looked up.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from microlith.diagnostics import UsageError, WarningSink, stderr_warning
from microlith.ir.core import Graph, Node
from microlith.pipeline.facts import MEMORY_PLANNED, PREPARED

PASSES: dict[str, type[Pass]] = {}
_PLUGINS_LOADED = False
ENTRY_POINT_GROUP = "microlith.passes"


class RewriteFailure(Exception):
    """Raised inside a pass: the node at fault and why. The manager adds the context."""

    def __init__(self, node: Node | None, reason: str) -> None:
        super().__init__(reason)
        self.node = node
        self.reason = reason


@dataclass
class PassContext:
    """What passes may use beyond the graph: warnings, remarks, shared options."""

    warn: WarningSink = stderr_warning
    remarks: list[tuple[str, str, str]] = field(default_factory=list)  # (pass, node, message)
    options: dict[str, Any] = field(default_factory=dict)
    current_pass: str = ""

    def remark(self, node: Node | str, message: str) -> None:
        """Record why a rewrite did or did not fire (shown by ``--remarks``)."""
        name = node if isinstance(node, str) else node.name
        self.remarks.append((self.current_pass, name, message))


@dataclass(frozen=True)
class Pass:
    """Base class: subclasses set ``name`` and implement ``run``."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    provides: ClassVar[tuple[str, ...]] = ()
    invalidates: ClassVar[tuple[str, ...]] = (PREPARED, MEMORY_PLANNED)

    def __post_init__(self) -> None:
        reason = self.check_options()
        if reason:
            raise UsageError(f"{self.name}: {reason}")

    def check_options(self) -> str | None:
        """Why the option values are unusable (None when they are fine); override."""
        return None

    def run(self, graph: Graph, ctx: PassContext) -> None:
        raise NotImplementedError

    def fail(self, node: Node | None, reason: str) -> RewriteFailure:
        return RewriteFailure(node, reason)

    @classmethod
    def option_fields(cls) -> list[dataclasses.Field[Any]]:
        return [f for f in dataclasses.fields(cls) if f.init]

    def options(self) -> dict[str, Any]:
        """Options that differ from their defaults, in declaration order."""
        out: dict[str, Any] = {}
        for f in self.option_fields():
            value = getattr(self, f.name)
            if value != f.default:
                out[f.name] = value
        return out

    def __str__(self) -> str:
        from microlith.pipeline.spec import format_option

        opts = self.options()
        if not opts:
            return self.name
        body = ",".join(f"{k.replace('_', '-')}={format_option(v)}" for k, v in opts.items())
        return f"{self.name}{{{body}}}"


P = TypeVar("P", bound=type[Pass])


def register_pass(cls: P) -> P:
    """Class decorator adding a pass to the registry under ``cls.name``."""
    if not cls.name or cls.name != cls.name.lower() or " " in cls.name:
        raise ValueError(f"pass name {cls.name!r} must be kebab-case")
    if cls.name in PASSES and PASSES[cls.name] is not cls:
        raise ValueError(f"pass {cls.name!r} registered twice")
    PASSES[cls.name] = cls
    return cls


def load_plugins(warn: WarningSink = stderr_warning) -> None:
    """Import the modules named by ``microlith.passes`` entry points (once).

    The built-in passes are one of them (``microlith.passes``); a plugin that fails to
    load is a warning, but the built-in set failing to load is an error.
    """
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for entry in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                        key=lambda e: (e.value != "microlith.passes", e.name)):
        try:
            entry.load()
        except Exception as exc:  # a broken plugin must not break the compiler
            if entry.value == "microlith.passes":
                raise
            warn(f"pass plugin {entry.name!r} failed to load: {exc}")
    if not PASSES:
        raise RuntimeError("no passes are registered: is microlith installed (pip install -e .)?")


def get_pass_class(name: str) -> type[Pass]:
    load_plugins()
    if name not in PASSES:
        import difflib

        close = difflib.get_close_matches(name, PASSES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown pass {name!r}{hint}; `microlith passes` lists them")
    return PASSES[name]


def all_passes() -> dict[str, type[Pass]]:
    load_plugins()
    return dict(sorted(PASSES.items()))
