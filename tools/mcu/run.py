"""Build generated C for a Cortex-M4 and run it under qemu, counting instructions exactly.

    python tools/mcu/run.py MODEL_DIR --input in.bin [--input in2.bin] [--opt -Os]

``build_and_run(model_dir, inputs)`` compiles every ``*.c`` of ``model_dir`` (the C
backend's ``model.c`` with its headers, or any code implementing the same API: ``void
*model_input(int)``, ``const void *model_output(int)``, ``size_t
model_{input,output}_bytes(int)``, ``int model_invoke(void)``; ``MODEL_NUM_OUTPUTS``
is used when ``model.h`` defines it, else one output) together with our board
(``startup.c``, ``mps2_an386.ld``) and a generated harness ``main.c`` that embeds the
inputs as const arrays. For each inference the harness copies the inputs into
``model_input(i)`` (checking ``model_input_bytes(i)``), times ``model_invoke()`` and
prints the outputs as hex over semihosting (outside the timed region). qemu runs
``-M mps2-an386 -icount shift=7``, without network, display, serial or monitor.

The parts: ``toolchain.py`` (the tools, their flags, ``build``), ``harness.py`` (the
generated ``main.c``), ``qemu.py`` (running the ELF and reading its output; how
instructions are counted and what a fault reports) and ``errors.py``. This module puts
them together (``build_and_run``, the command line) and re-exports their API, so
``from tools.mcu import run as board`` gives all of it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # running as ``python tools/mcu/run.py``
    sys.path.insert(0, str(REPO_ROOT))

from tools.mcu.errors import BoardError, BoardFault, BuildError, ToolchainMissing  # noqa: E402
from tools.mcu.harness import HARNESS_INPUT_SIZE_EXIT, OUT_CHUNK, render_main_c  # noqa: E402
from tools.mcu.qemu import (  # noqa: E402
    COARSE_PRESCALE,
    DEFAULT_SHIFT,
    DEFAULT_TIMEOUT,
    EXACT_SHIFT,
    EXIT_CODES,
    STUB_INSTRUCTIONS,
    SYSCLK_HZ,
    TICK_NS,
    _absolute_ticks,  # noqa: F401  (tests/mcu/test_board.py checks it)
    describe_fault,
    parse_output,
    qemu_command,
    run_elf,
    ticks_to_instructions,
)
from tools.mcu.toolchain import (  # noqa: E402
    ARCH_FLAGS,
    CC,
    COMMON_CFLAGS,
    HARNESS_OPT,
    HERE,
    INSTALL_HINT,
    LINK_FLAGS,
    LINKER_SCRIPT,
    QEMU,
    SIZE,
    STARTUP_C,
    build,
    check_toolchain,
    elf_size,
)

__all__ = [
    "ARCH_FLAGS", "CC", "COARSE_PRESCALE", "COMMON_CFLAGS", "DEFAULT_SHIFT", "DEFAULT_TIMEOUT",
    "EXACT_SHIFT", "EXIT_CODES", "HARNESS_INPUT_SIZE_EXIT", "HARNESS_OPT", "HERE",
    "INSTALL_HINT", "LINKER_SCRIPT", "LINK_FLAGS", "OUT_CHUNK", "QEMU", "SIZE", "STARTUP_C",
    "STUB_INSTRUCTIONS", "SYSCLK_HZ", "TICK_NS", "BoardError", "BoardFault", "BuildError",
    "RunResult", "ToolchainMissing", "build", "build_and_run", "check_toolchain",
    "describe_fault", "elf_size", "main", "parse_output", "qemu_command", "render_main_c",
    "run_elf", "ticks_to_instructions",
]


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
                  cflags: Sequence[str] = ()) -> RunResult:
    """Build ``model_dir`` for the Cortex-M4 board, run one inference per item, measure.

    Each item of ``input_bytes_list`` is the bytes of input 0, or a sequence with the
    bytes of every model input. ``workdir`` keeps the build (``main.c``, objects,
    ``app.elf``, ``app.map``); by default a temporary directory is used and removed,
    so ``RunResult.elf`` then no longer exists. ``cflags`` are added when compiling
    (e.g. ``-DNAME=1``). Raises ``ToolchainMissing``, ``BuildError``, ``BoardFault``.
    """
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
                                  icount_shift, cflags)
    path = Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    return _build_and_run(model_dir, runs, prefix, opt, path.resolve(), timeout,
                          icount_shift, cflags)


def _build_and_run(model_dir: str | os.PathLike[str], runs: list[list[bytes]], prefix: str,
                   opt: str, workdir: Path, timeout: float, icount_shift: int,
                   cflags: Sequence[str]) -> RunResult:
    elf, log = build(model_dir, runs, prefix=prefix, opt=opt, workdir=workdir, cflags=cflags)
    text, data, bss = elf_size(elf)
    console, stdout = run_elf(elf, timeout=timeout, icount_shift=icount_shift)
    parsed = parse_output(console, len(runs), icount_shift)
    for r, status in enumerate(parsed.statuses):
        if status != 0:
            raise BoardFault(f"{prefix}_invoke() returned {status} on inference {r}", 0, None)
    return RunResult(outputs=[row[0] if row else b"" for row in parsed.outputs],
                     instructions=parsed.instructions, text=text, data=data, bss=bss, elf=elf,
                     all_outputs=parsed.outputs, ticks=parsed.ticks, icount_shift=icount_shift,
                     build_log=log, console=console, stdout=stdout)


# --------------------------------------------------------------------------- CLI


def _join_opt(argv: Sequence[str]) -> list[str]:
    """``--opt -Os`` -> ``--opt=-Os`` (argparse would read ``-Os`` as an option)."""
    joined: list[str] = []
    words = iter(argv)
    for word in words:
        joined.append(f"--opt={next(words, '')}" if word == "--opt" else word)
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build generated C for a Cortex-M4 (qemu mps2-an386) and run it, "
                    "printing each inference's outputs (hex) and instruction count.")
    parser.add_argument("model_dir", help="directory with <prefix>.h and the .c files")
    parser.add_argument("--input", action="append", required=True, metavar="FILE",
                        help="raw bytes of input 0 for one inference (repeat for more); "
                             "FILE1,FILE2 gives several model inputs")
    parser.add_argument("--prefix", default="model")
    parser.add_argument("--opt", default="-O2", help="optimisation flag for the model's C")
    parser.add_argument("--workdir", help="keep the build here (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("--icount-shift", type=int, default=DEFAULT_SHIFT)
    args = parser.parse_args(_join_opt(sys.argv[1:] if argv is None else argv))
    try:
        inputs = [[Path(name).read_bytes() for name in item.split(",")] for item in args.input]
        result = build_and_run(args.model_dir, inputs, prefix=args.prefix, opt=args.opt,
                               workdir=args.workdir, timeout=args.timeout,
                               icount_shift=args.icount_shift)
    except (OSError, ValueError, BoardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.build_log:
        print(result.build_log, file=sys.stderr)
    if result.stdout:
        print(f"program output:\n{result.stdout.rstrip()}", file=sys.stderr)
    for r, outs in enumerate(result.all_outputs):
        for o, data in enumerate(outs):
            print(f"inference {r} output {o} ({len(data)} bytes): {data.hex()}")
        print(f"inference {r} instructions: {result.instructions[r]}")
    print(f"size: text={result.text} data={result.data} bss={result.bss} "
          f"(flash {result.flash}, RAM {result.ram} bytes)")
    if args.workdir:
        print(f"elf: {result.elf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
