"""``PassManager``: runs an ordered list of passes with instruments around each.

Instruments (TVM style) get ``before(pass, graph)`` and ``after(pass, graph,
seconds)``. Shipped: ``PrintIR`` (``--print-ir-after-all`` / ``--print-ir-after=NAME``),
``Timing`` (``-v``), and verification after each pass (``--verify-each``).

Before running, ``check_facts`` walks the pipeline: every pass's ``requires`` must be
provided by a pass before it (or be in ``graph.meta["facts"]`` already); what a pass
``invalidates`` is dropped (with the parameter records of ``prepare``). A user error in a
pass (a ``RewriteFailure``, a ``ShapeError`` or a ``MicrolithError``) raises ``PassError``
naming the pass, the node and the passes that ran before it, with the IR around the node
and a caret under it in ``error.context``; any other exception is a bug and raises
``InternalError`` with the same context.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from microlith.diagnostics import InternalError, MicrolithError, PassError
from microlith.ir.core import Graph, Node
from microlith.ir.ops import ShapeError
from microlith.ir.printer import print_graph
from microlith.ir.verifier import verify
from microlith.pipeline.facts import PREPARED, PROVIDED_BY
from microlith.pipeline.pass_base import Pass, PassContext, RewriteFailure
from microlith.pipeline.spec import format_pipeline, parse_pipeline


class Instrument:
    """Hooks around each pass; override what you need."""

    def before(self, pass_: Pass, graph: Graph) -> None:
        pass

    def after(self, pass_: Pass, graph: Graph, seconds: float) -> None:
        pass


@dataclass
class PrintIR(Instrument):
    """Print the IR after every pass (``names`` empty) or after the named ones."""

    names: tuple[str, ...] = ()
    stream: TextIO = field(default_factory=lambda: sys.stderr)

    def after(self, pass_: Pass, graph: Graph, seconds: float) -> None:
        if not self.names or pass_.name in self.names:
            self.stream.write(f"// ----- IR after {pass_} -----\n{print_graph(graph)}")


@dataclass
class Timing(Instrument):
    """Collect wall time per pass; ``report()`` formats a table."""

    records: list[tuple[str, float, int]] = field(default_factory=list)

    def after(self, pass_: Pass, graph: Graph, seconds: float) -> None:
        self.records.append((str(pass_), seconds, len(graph.nodes)))

    def report(self) -> str:
        total = sum(s for _, s, _ in self.records) or 1e-12
        width = max([len(n) for n, _, _ in self.records] + [4])
        lines = [f"{'pass':<{width}}  {'ms':>9}  {'%':>5}  nodes"]
        for name, seconds, nodes in self.records:
            lines.append(f"{name:<{width}}  {seconds * 1e3:9.2f}  {100 * seconds / total:5.1f}"
                         f"  {nodes}")
        lines.append(f"{'total':<{width}}  {total * 1e3:9.2f}")
        return "\n".join(lines)


def failure_context(graph: Graph, node: Node | None, radius: int = 3) -> str:
    """IR lines around ``node`` with a caret line under it (empty if no node)."""
    if node is None or node.graph is not graph:
        return ""
    lines = print_graph(graph).splitlines()
    marker = f"# {node.name}"
    hits = [i for i, line in enumerate(lines) if line.endswith(marker)]
    if not hits:
        return ""
    at = hits[0]
    start = len(lines[at]) - len(lines[at].lstrip())
    caret = " " * start + "^" * (len(lines[at]) - start - len(marker) - 2)
    window = lines[max(at - radius, 0):at + 1] + [caret] + lines[at + 1:at + 1 + radius]
    return "\n".join(window)


class PassManager:
    """Run passes in order; check ``requires``; verify and instrument as asked."""

    def __init__(self, passes: Sequence[Pass], instruments: Sequence[Instrument] = (),
                 verify_each: bool = False) -> None:
        self.passes = list(passes)
        self.instruments = list(instruments)
        self.verify_each = verify_each
        self.lost_by: dict[str, str] = {}  # fact -> the pass that invalidated it last

    @classmethod
    def from_spec(cls, spec: str, **kwargs: object) -> PassManager:
        return cls(parse_pipeline(spec), **kwargs)  # type: ignore[arg-type]

    @property
    def spec(self) -> str:
        return format_pipeline(self.passes)

    def check_facts(self, facts: Sequence[str] = ()) -> set[str]:
        """The facts after the pipeline, starting from ``facts``; a missing requirement is a
        ``PassError`` naming the pass that would provide it (and the one that dropped it)."""
        have, lost_by = set(facts), dict[str, str]()
        for pass_ in self.passes:
            missing = [f for f in pass_.requires if f not in have]
            if missing:
                providers = ", ".join(f"'{f}' (from {PROVIDED_BY.get(f, 'no pass')})"
                                      for f in missing)
                why = "".join(f" ('{lost_by[f]}' invalidated {f!r})" for f in missing
                              if f in lost_by)
                raise PassError(f"pipeline error: pass '{pass_.name}' needs {providers} "
                                f"earlier in the pipeline{why}")
            for fact in pass_.invalidates:
                if fact in have:
                    lost_by[fact] = str(pass_)
            have = (have - set(pass_.invalidates)) | set(pass_.provides)
            for fact in pass_.provides:
                lost_by.pop(fact, None)
        self.lost_by = lost_by
        return have

    def run(self, graph: Graph, ctx: PassContext | None = None) -> Graph:
        ctx = ctx or PassContext()
        applied: list[str] = graph.meta.setdefault("applied_passes", [])
        facts: set[str] = set(graph.meta.get("facts", ()))
        self.check_facts(sorted(facts))
        ran: list[str] = []
        for pass_ in self.passes:
            ctx.current_pass = pass_.name
            for instrument in self.instruments:
                instrument.before(pass_, graph)
            if PREPARED in pass_.invalidates:
                for node in graph.nodes:
                    node.params = None
            start = time.perf_counter()
            try:
                pass_.run(graph, ctx)
                graph.sort()
                if self.verify_each:
                    verify(graph)
            except RewriteFailure as exc:
                raise self._error(pass_, ran, exc.node, exc.reason, graph) from None
            except ShapeError as exc:
                raise self._error(pass_, ran, None, str(exc), graph) from exc
            except MicrolithError as exc:
                if exc.node is not None and not exc.context:
                    exc.context = failure_context(graph, exc.node)  # type: ignore[arg-type]
                raise
            except Exception as exc:  # a bug in the pass (VerificationError included)
                raise self._internal(pass_, ran, exc, graph) from exc
            seconds = time.perf_counter() - start
            ran.append(str(pass_))
            applied.append(pass_.name)
            facts = (facts - set(pass_.invalidates)) | set(pass_.provides)
            graph.meta["facts"] = sorted(facts)
            for instrument in self.instruments:
                instrument.after(pass_, graph, seconds)
        return graph

    @staticmethod
    def _error(pass_: Pass, ran: list[str], node: Node | None, reason: str,
               graph: Graph) -> PassError:
        where = f" at node '{node.name}' ({node.op})" if node is not None else ""
        before = ", ".join(ran) if ran else "none"
        error = PassError(f"pass '{pass_}' failed{where}: {reason} "
                          f"[passes before it: {before}]")
        error.context = failure_context(graph, node)
        return error

    @staticmethod
    def _internal(pass_: Pass, ran: list[str], exc: Exception, graph: Graph) -> InternalError:
        before = ", ".join(ran) if ran else "none"
        error = InternalError(f"pass '{pass_}' crashed: {type(exc).__name__}: {exc} "
                              f"[passes before it: {before}]")
        error.context = ""
        return error

