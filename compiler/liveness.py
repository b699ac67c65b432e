"""Tensor lifetimes over a straight-line schedule and the peak of live bytes.

A tensor is live from the step that defines it (graph inputs: step 0) to its
last use (graph outputs: the last step). At each step the inputs and outputs
of the running op are live together, so ``peak_live_bytes`` is the lower bound
for any arena that holds every activation without in-place reuse.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Lifetime:
    first: int
    last: int


def lifetimes(steps: Sequence[tuple[Sequence[Hashable], Sequence[Hashable]]],
              graph_inputs: Sequence[Hashable], graph_outputs: Sequence[Hashable]
              ) -> dict[Hashable, Lifetime]:
    """``steps`` are (inputs, outputs) per op; constants must be left out by the caller."""
    first: dict[Hashable, int] = {t: 0 for t in graph_inputs}
    last: dict[Hashable, int] = {t: 0 for t in graph_inputs}
    for index, (ins, outs) in enumerate(steps):
        for t in outs:
            first.setdefault(t, index)
            last[t] = max(last.get(t, index), index)
        for t in ins:
            first.setdefault(t, 0)
            last[t] = max(last.get(t, index), index)
    end = max(len(steps) - 1, 0)
    for t in graph_outputs:
        last[t] = end
        first.setdefault(t, end)
    return {t: Lifetime(first[t], last[t]) for t in first}


def peak_live_bytes(live: Mapping[Hashable, Lifetime], sizes: Mapping[Hashable, int],
                    num_steps: int) -> tuple[int, int]:
    """(peak bytes, step index where it happens)."""
    best, at = 0, 0
    for step in range(max(num_steps, 1)):
        total = sum(sizes[t] for t, span in live.items() if span.first <= step <= span.last)
        if total > best:
            best, at = total, step
    return best, at
