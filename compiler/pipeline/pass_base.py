"""``Pass``: a frozen dataclass with a kebab-case ``name`` and typed option fields.

``str(pass)`` gives its spec text (``name`` or ``name{key=value,...}`` listing the
options that differ from their defaults), which ``parse_pipeline`` reads back to
an equal pass. ``requires`` names passes that must run earlier in the same
pipeline (or in an earlier pipeline on the same graph). Passes register by name
with ``@register_pass``; third-party packages add passes through the
``microlith.passes`` entry-point group (each entry point is a module to import).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from microlith.diagnostics import UsageError, WarningSink, stderr_warning
from microlith.ir.core import Graph, Node

PASSES: dict[str, type[Pass]] = {}
_PLUGINS_LOADED = False


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


def load_builtin_passes() -> None:
    import microlith.passes  # noqa: F401  (the package imports every pass module)


def load_plugins(warn: WarningSink = stderr_warning) -> None:
    """Import modules named by ``microlith.passes`` entry points (once)."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for entry in importlib.metadata.entry_points(group="microlith.passes"):
        try:
            entry.load()
        except Exception as exc:  # a broken plugin must not break the compiler
            warn(f"pass plugin {entry.name!r} failed to load: {exc}")


def get_pass_class(name: str) -> type[Pass]:
    load_builtin_passes()
    load_plugins()
    if name not in PASSES:
        import difflib

        close = difflib.get_close_matches(name, PASSES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"unknown pass {name!r}{hint}; `microlith passes` lists them")
    return PASSES[name]


def all_passes() -> dict[str, type[Pass]]:
    load_builtin_passes()
    load_plugins()
    return dict(sorted(PASSES.items()))

