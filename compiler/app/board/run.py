"""Build generated C for a Cortex-M board and run it under qemu, counting instructions.

``build_and_run(model_dir, inputs)`` compiles every ``*.c`` of ``model_dir`` (the C
backend's ``model.c`` with its headers, or any code implementing the same API: ``void
*model_input(int)``, ``const void *model_output(int)``, ``size_t
model_{input,output}_bytes(int)``, ``int model_invoke(void)``; ``MODEL_NUM_OUTPUTS``
is used when ``model.h`` defines it, else one output) together with the board files
shipped in this package (``startup.c``, the machine's linker script) and a generated
harness ``main.c`` that embeds the inputs as const arrays. For each inference the harness copies
the inputs into ``model_input(i)`` (checking ``model_input_bytes(i)``), times
``model_invoke()`` and prints the outputs as hex over semihosting (outside the timed
region). qemu runs ``-M mps2-an386 -icount shift=7`` (or the machine of ``cpu``), without
network, display, serial or monitor.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from microlith.app.board.cpus import DEFAULT_CPU, cpu_named
from microlith.app.board.errors import BoardFault
from microlith.app.board.qemu import (
    DEFAULT_SHIFT,
    DEFAULT_TIMEOUT,
    EXACT_SHIFT,
    parse_output,
    run_elf,
)
from microlith.app.board.toolchain import build, check_toolchain, elf_size


@dataclass
class RunResult:
    """What one build-and-run gives back (one entry per inference where a list)."""

    outputs: list[bytes]  # output 0 of each inference
    instructions: list[int]  # instructions executed inside model_invoke, per inference
    text: int  # arm-none-eabi-size (Berkeley): code + read-only data, bytes
    data: int  # initialised RAM (also stored in flash), bytes
    bss: int  # zeroed RAM, bytes
    elf: Path
    all_outputs: list[list[bytes]] = field(default_factory=list)  # every output
    ticks: list[int] = field(default_factory=list)  # raw 25 MHz ticks of each timed region
    icount_shift: int = DEFAULT_SHIFT
    build_log: str = ""  # compiler warnings, if any
    console: str = ""  # semihosting SYS_WRITE0 text: the harness's lines, board messages
    stdout: str = ""  # the program's own stdio output (newlib/rdimon printf), if any

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss


# --------------------------------------------------------------------------- build and run


def _normalise_inputs(input_bytes_list: Sequence[bytes | Sequence[bytes]]) -> list[list[bytes]]:
    runs: list[list[bytes]] = []
    for item in input_bytes_list:
        if isinstance(item, (bytes, bytearray, memoryview)):
            runs.append([bytes(item)])
        else:
            runs.append([bytes(part) for part in item])
    if not runs:
        raise ValueError("build_and_run needs at least one input")
    if len({len(run) for run in runs}) != 1:
        raise ValueError("every inference must give the same number of model inputs")
    return runs


def build_and_run(model_dir: str | os.PathLike[str],
                  input_bytes_list: Sequence[bytes | Sequence[bytes]], *,
                  prefix: str = "model", opt: str = "-O2",
                  workdir: str | os.PathLike[str] | None = None,
                  timeout: float = DEFAULT_TIMEOUT, icount_shift: int = DEFAULT_SHIFT,
                  cflags: Sequence[str] = (), cpu: str = DEFAULT_CPU) -> RunResult:
    """Build ``model_dir`` for the board of ``cpu``, run one inference per item, measure.

    Each item of ``input_bytes_list`` is the bytes of input 0, or a sequence with the
    bytes of every model input. ``workdir`` keeps the build (``main.c``, objects,
    ``app.elf``, ``app.map``); by default a temporary directory is used and removed,
    so ``RunResult.elf`` then no longer exists. ``cflags`` are added when compiling
    (e.g. ``-DNAME=1``). ``cpu`` picks the core and its qemu machine
    (``microlith.app.board.cpus``: cortex-m4, cortex-m7, cortex-m3, cortex-m33, cortex-m55). Raises
    ``ToolchainMissing``, ``BuildError``, ``BoardFault``.
    """
    cpu_named(cpu)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", prefix):
        raise ValueError(f"prefix {prefix!r} is not a C identifier")
    if not 0 <= icount_shift <= 10:
        raise ValueError(f"icount_shift must be 0..10 (exact counts from {EXACT_SHIFT}), "
                         f"not {icount_shift}")
    runs = _normalise_inputs(input_bytes_list)
    check_toolchain()
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="microlith-mcu-") as tmp:
            return _build_and_run(model_dir, runs, prefix, opt, Path(tmp), timeout,
                                  icount_shift, cflags, cpu)
    path = Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    return _build_and_run(model_dir, runs, prefix, opt, path.resolve(), timeout,
                          icount_shift, cflags, cpu)


def _build_and_run(model_dir: str | os.PathLike[str], runs: list[list[bytes]], prefix: str,
                   opt: str, workdir: Path, timeout: float, icount_shift: int,
                   cflags: Sequence[str], cpu: str = DEFAULT_CPU) -> RunResult:
    elf, log = build(model_dir, runs, prefix=prefix, opt=opt, workdir=workdir, cflags=cflags,
                     cpu=cpu)
    text, data, bss = elf_size(elf)
    console, stdout = run_elf(elf, timeout=timeout, icount_shift=icount_shift,
                              machine=cpu_named(cpu).machine)
    parsed = parse_output(console, len(runs), icount_shift, cpu_named(cpu).board)
    for r, status in enumerate(parsed.statuses):
        if status != 0:
            raise BoardFault(f"{prefix}_invoke() returned {status} on inference {r}", 0, None)
    return RunResult(outputs=[row[0] if row else b"" for row in parsed.outputs],
                     instructions=parsed.instructions, text=text, data=data, bss=bss, elf=elf,
                     all_outputs=parsed.outputs, ticks=parsed.ticks, icount_shift=icount_shift,
                     build_log=log, console=console, stdout=stdout)
