"""Build generated C for a Cortex-M and run it under qemu, counting instructions exactly.

    python tools/mcu/run.py MODEL_DIR --input in.bin [--input in2.bin] [--opt -Os]
        [--cpu cortex-m4|cortex-m7|cortex-m3|cortex-m33|cortex-m55]

The board itself lives in the package (``microlith.app.board``: toolchain, harness, qemu
runner, startup file and linker script); this script is its command line for the
repository and re-exports its API, so ``from tools.mcu import run as board`` gives all
of it (``build_and_run``, ``RunResult``, the constants and errors).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # running as ``python tools/mcu/run.py``
    sys.path.insert(0, str(REPO_ROOT))

from microlith.app.board.cpus import CPUS  # noqa: E402
from microlith.app.board.errors import BoardError, BoardFault, BuildError, ToolchainMissing  # noqa: E402
from microlith.app.board.harness import HARNESS_INPUT_SIZE_EXIT, OUT_CHUNK, render_main_c  # noqa: E402
from microlith.app.board.qemu import (  # noqa: E402
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
from microlith.app.board.run import RunResult, build_and_run  # noqa: E402
from microlith.app.board.toolchain import (  # noqa: E402
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
        description="Build generated C for a Cortex-M (qemu mps2-an386 and others, "
                    "--cpu) and run it, "
                    "printing each inference's outputs (hex) and instruction count.")
    parser.add_argument("model_dir", help="directory with <prefix>.h and the .c files")
    parser.add_argument("--input", action="append", required=True, metavar="FILE",
                        help="raw bytes of input 0 for one inference (repeat for more); "
                             "FILE1,FILE2 gives several model inputs")
    parser.add_argument("--prefix", default="model")
    parser.add_argument("--cpu", default="cortex-m4", choices=sorted(CPUS),
                        help="core and qemu machine (default cortex-m4 on mps2-an386; cortex-m7 "
                        "mps2-an500, cortex-m3 mps2-an385, cortex-m33 mps2-an505, "
                        "cortex-m55 mps3-an547)")
    parser.add_argument("--opt", default="-O2", help="optimisation flag for the model's C")
    parser.add_argument("--workdir", help="keep the build here (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("--icount-shift", type=int, default=DEFAULT_SHIFT)
    args = parser.parse_args(_join_opt(sys.argv[1:] if argv is None else argv))
    try:
        inputs = [[Path(name).read_bytes() for name in item.split(",")] for item in args.input]
        result = build_and_run(args.model_dir, inputs, prefix=args.prefix, opt=args.opt,
                               cpu=args.cpu,
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
