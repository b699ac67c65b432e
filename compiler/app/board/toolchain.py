"""The board's toolchain: finding the tools, compiling and linking a model for a Cortex-M.

``build`` compiles every ``*.c`` of a model directory together with our board
(``startup.c``, the linker script of the cpu's machine -- ``mps2_an386.ld`` for the M4 --
which INCLUDEs ``board_sections.ld``) and the generated harness (``harness.py``). The model
is built with ``opt``; the harness and startup always with ``-O2`` so the measuring code
never changes. Flags for the Cortex-M4: ``-mcpu=cortex-m4 -mthumb -mfloat-abi=hard
-mfpu=fpv4-sp-d16 --specs=rdimon.specs -nostartfiles -ffunction-sections -fdata-sections
-Wl,--gc-sections -std=c99 -Wall -Wextra`` (other cores: ``cpus.CPUS``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from microlith.app.board.cpus import DEFAULT_CPU, cpu_named
from microlith.app.board.errors import BuildError, ToolchainMissing
from microlith.app.board.harness import render_main_c

HERE = Path(__file__).resolve().parent
STARTUP_C = HERE / "startup.c"
LINKER_SCRIPT = HERE / "mps2_an386.ld"
INSTALL_HINT = ("install gcc-arm-none-eabi, libnewlib-arm-none-eabi and qemu-system-arm "
                "(Debian/Ubuntu: apt-get install; in the repository "
                "tools/mcu/install_toolchain.sh does it)")

CC = "arm-none-eabi-gcc"
SIZE = "arm-none-eabi-size"
QEMU = "qemu-system-arm"
ARCH_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
WARN_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-ffunction-sections", "-fdata-sections", "-g")
COMMON_CFLAGS = (*ARCH_FLAGS, *WARN_FLAGS)
BOARD_LINK_FLAGS = ("--specs=rdimon.specs", "-nostartfiles", "-Wl,--gc-sections")
LINK_FLAGS = (*ARCH_FLAGS, *BOARD_LINK_FLAGS)
HARNESS_OPT = "-O2"


# --------------------------------------------------------------------------- toolchain


def check_toolchain() -> dict[str, str]:
    """Paths of the tools, or ``ToolchainMissing`` naming what is absent and the fix."""
    found = {tool: shutil.which(tool) for tool in (CC, SIZE, QEMU)}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        raise ToolchainMissing(f"{', '.join(missing)} not found on PATH: {INSTALL_HINT}")
    return {tool: str(path) for tool, path in found.items()}


# --------------------------------------------------------------------------- build


def _run_tool(cmd: Sequence[str], what: str, cwd: Path) -> str:
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    log = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n$ {' '.join(cmd)}\n{log}")
    return log


def build(model_dir: str | os.PathLike[str], runs: Sequence[Sequence[bytes]], *,
          prefix: str = "model", opt: str = "-O2", workdir: Path,
          cflags: Sequence[str] = (), cpu: str = DEFAULT_CPU) -> tuple[Path, str]:
    """Compile the model's ``*.c``, the harness and startup for ``cpu``
    (``microlith.app.board.cpus``); link ``workdir/app.elf``."""
    core = cpu_named(cpu)
    arch = core.arch_flags
    model_dir = Path(model_dir).resolve()
    sources = sorted(model_dir.glob("*.c"))
    if not (model_dir / f"{prefix}.h").is_file() or not sources:
        raise BuildError(f"{model_dir}: expected {prefix}.h and at least one .c file")
    main_c = workdir / "main.c"
    main_c.write_text(render_main_c(prefix, runs, core.board))
    include = ("-I", str(model_dir))
    jobs: list[tuple[Path, str]] = [(src, opt) for src in sources]
    jobs += [(main_c, HARNESS_OPT), (STARTUP_C, HARNESS_OPT)]
    objects: list[str] = []
    logs: list[str] = []
    for n, (src, level) in enumerate(jobs):
        obj = workdir / f"{n:02d}_{src.stem}.o"
        cmd = [CC, *arch, *WARN_FLAGS, level, *include, *cflags, "-c", str(src), "-o",
               str(obj)]
        logs.append(_run_tool(cmd, f"compiling {src.name}", workdir))
        objects.append(str(obj))
    elf = workdir / "app.elf"
    link = [CC, *arch, *BOARD_LINK_FLAGS, "-L", str(HERE), "-T",
            str(HERE / core.board.linker_script), *objects, "-lm",
            f"-Wl,-Map={workdir / 'app.map'}", "-o", str(elf)]
    logs.append(_run_tool(link, "linking", workdir))
    return elf, "\n".join(log for log in logs if log)


def elf_size(elf: Path) -> tuple[int, int, int]:
    """(text, data, bss) from ``arm-none-eabi-size`` (Berkeley format)."""
    out = _run_tool([SIZE, str(elf)], "arm-none-eabi-size", elf.parent)
    text, data, bss = (int(v) for v in out.splitlines()[-1].split()[:3])
    return text, data, bss
