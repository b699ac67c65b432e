"""Progress lines for long stages: the import, each pass, the emitter.

A ``Heartbeat`` runs one daemon thread for a whole compile. The compile marks the stage
it is in (``begin(name, counts)`` / ``end()``); while a stage has run for ``interval``
seconds or more, the thread writes one line every ``interval`` seconds::

    progress: pass 7/21 fold-constants, 10.0 s (2,400 nodes)

and, when such a stage ends, ``progress: pass 7/21 fold-constants done in 12.3 s``. A
stage shorter than ``interval`` prints nothing, so a quick compile stays silent. Lines
start with ``progress:`` (never an error line) and go to the stream whole (one
``write``). ``PassProgress`` is the ``PassManager`` instrument that marks each pass;
passes that report their own progress (``calibrate``: samples done and the rate, see
``microlith.calibration.data.Progress``) are left to it.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import TextIO

from microlith.ir.core import Graph
from microlith.pipeline.manager import Instrument
from microlith.pipeline.pass_base import Pass

SELF_REPORTING = frozenset({"calibrate"})


class Heartbeat:
    """A line every ``interval`` seconds while a stage runs (see the module docstring)."""

    def __init__(self, stream: TextIO | None = None, interval: float = 5.0,
                 enabled: bool = True) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval, self.enabled = interval, enabled and interval > 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stage: list | None = None  # [name, counts, start, last line, lines printed]

    def __enter__(self) -> Heartbeat:
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, name="microlith-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:
            self._stage = None  # a failed stage gets no "done" line
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def begin(self, name: str, counts: str = "") -> None:
        self.end()
        with self._lock:
            now = time.perf_counter()
            self._stage = [name, counts, now, now, 0]

    def end(self) -> None:
        with self._lock:
            stage, self._stage = self._stage, None
        if stage is not None and stage[4]:
            self._write(f"progress: {stage[0]} done in {time.perf_counter() - stage[2]:.1f} s\n")

    def _write(self, line: str) -> None:
        try:
            self.stream.write(line)
            self.stream.flush()
        except (OSError, ValueError):  # a closed pipe: progress is not worth failing for
            self.enabled = False

    def _loop(self) -> None:
        tick = min(self.interval / 4, 0.5)
        while not self._stop.wait(tick):
            with self._lock:
                stage, now = self._stage, time.perf_counter()
                if stage is None or now - stage[3] < self.interval or not self.enabled:
                    continue
                stage[3], stage[4] = now, stage[4] + 1
                counts = f" ({stage[1]})" if stage[1] else ""
                line = f"progress: {stage[0]}, {now - stage[2]:.1f} s{counts}\n"
            self._write(line)


class PassProgress(Instrument):
    """Marks each pass as a ``Heartbeat`` stage: ``pass K/N NAME`` with the node count."""

    def __init__(self, heartbeat: Heartbeat, total: int) -> None:
        self.heartbeat, self.total, self.count = heartbeat, total, 0

    def before(self, pass_: Pass, graph: Graph) -> None:
        self.count += 1
        if pass_.name in SELF_REPORTING:
            self.heartbeat.end()
            return
        self.heartbeat.begin(f"pass {self.count}/{self.total} {pass_.name}",
                             f"{len(graph.nodes):,} nodes")

    def after(self, pass_: Pass, graph: Graph, seconds: float) -> None:
        self.heartbeat.end()
