"""Per-layer Cortex-M instruction counts of generated C (a helper of ``tools/bench_mcu.py``).

The body of ``model_invoke`` in the C backend's ``model.c`` is one comment line per node
(``/* name (op): text */``) followed by its kernel call(s). ``layer_counts`` builds one
variant of ``model.c`` per node that keeps only that node's calls, runs each on the board
with the same input and subtracts the count of the empty body: the instructions of that
node's kernels alone (the arena holds other data than in a full inference, which changes
the counts only through data-dependent branches, a few instructions per output at most).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.mcu import run as board

_HEAD = re.compile(r"^    /\* (?P<name>.*?) \((?P<op>[\w.]+)\): (?P<text>.*) \*/$")


@dataclass
class Layer:
    name: str
    op: str
    text: str
    calls: list[str]


def split_invoke(model_c: str, prefix: str = "model") -> tuple[str, list[Layer], str]:
    """(text before the body, the layers, text from ``return 0;`` on) of ``model_invoke``."""
    opening = f"int {prefix}_invoke(void)\n{{\n"
    start = model_c.index(opening) + len(opening)
    end = model_c.index("    return 0;\n}", start)
    layers: list[Layer] = []
    for line in model_c[start:end].splitlines():
        head = _HEAD.match(line)
        if head:
            layers.append(Layer(head["name"], head["op"], head["text"], []))
        elif layers and line.strip():
            layers[-1].calls.append(line)
    return model_c[:start], layers, model_c[end:]


def layer_counts(model_dir: Path, feed: bytes, *, opt: str = "-O2",
                 cflags: Sequence[str] = (), cpu: str | None = None) -> list[tuple[Layer, int]]:
    """Instructions of each node's kernel calls alone (nodes without calls: 0)."""
    source = (model_dir / "model.c").read_text()
    before, layers, after = split_invoke(source)
    extra = {"cpu": cpu} if cpu else {}
    with tempfile.TemporaryDirectory(prefix="microlith-layers-") as tmp:
        work = Path(tmp) / "model"
        shutil.copytree(model_dir, work)

        def count(body: list[str]) -> int:
            (work / "model.c").write_text(before + "".join(f"{b}\n" for b in body) + after)
            result = board.build_and_run(work, [feed], opt=opt, cflags=cflags, **extra)
            return result.instructions[0]

        base = count([])
        return [(layer, count(layer.calls) - base if layer.calls else 0) for layer in layers]
