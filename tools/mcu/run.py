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

The model is built with ``opt``; the harness and startup always with ``-O2`` so the
measuring code never changes. Flags: ``-mcpu=cortex-m4 -mthumb -mfloat-abi=hard
-mfpu=fpv4-sp-d16 --specs=rdimon.specs -nostartfiles -ffunction-sections
-fdata-sections -Wl,--gc-sections -std=c99 -Wall -Wextra``.

How instructions are counted
----------------------------
qemu emulates no DWT cycle counter on mps2-an386 (``DWT_CYCCNT`` reads 0), so we use
the CMSDK APB dual timer (0x40002000), clocked by the 25 MHz system clock: one tick
is 40 ns of qemu's virtual clock. Under ``-icount shift=S`` the virtual clock
advances exactly 2**S ns per executed instruction and device reads happen at exact
instruction boundaries, so ``ticks = 2**S / 40 * instructions`` up to the timer's
rounding of a partial tick (down or up: under one tick either way). Hence:

* ``shift=0`` (1 ns per instruction): 1 tick = 40 instructions, a resolution of 40.
* ``shift=7`` (128 ns per instruction, our default): 1 instruction = 3.2 ticks, and
  ``instructions = round(ticks * 40 / 128)`` is exact, since the rounding error of
  under 1 tick is under 0.32 instruction (any ``shift >= 7`` is exact this way).

Measured with a stand-in model (a 16-byte reverse-and-XOR loop, then an ``asm`` loop of
N iterations of ``subs; bne``, i.e. 2N instructions): for N = 0, 1000, 2000, 10**4, 10**6
the timed region takes 285, 6685, 13085, 64285, 6400285 ticks at shift 7, i.e. 3.2 x
(89 + 2N) rounded, and the board reports 87 + 2N instructions in ``model_invoke``
(89 minus the 2 of the timing overhead); 87 is also what objdump's listing of that
``model_invoke`` adds up to for N = 0. N = 1..300 all give 87 + 2N exactly, repeated
runs are identical, and shifts 7, 8 and 10 (25.6 ticks per instruction) give the same
counts, whereas shift 6 (1.6 ticks per instruction) is off by one now and then. At
shift 0 the same regions take 2, 53, 103, 502, 50002 ticks: 1 tick = 40 instructions.
SysTick (in the core: CLKSOURCE=1 counts the 25 MHz cpu clock, 0 a 1 MHz reference)
converts the same way, but has only 24 bits.

Module 0 of the dual timer counts every tick (32 bits: wraps after 2**32 ticks, 1.34 G
instructions at shift 7), module 1 counts with prescale 256; both run free without
interrupts, and the tick count is rebuilt from the two (the coarse one picks the wrap
of the fine one), so wraps neither disturb nor limit the count (up to 2**40 ticks,
3.4e11 instructions at shift 7; checked past the fine wrap with 1.4e9 instructions).
Each reported count is the number of instructions executed inside ``model_invoke`` (its
first instruction to its return): the harness times a two-instruction asm stub the
same way and subtracts. These are instructions, not Cortex-M4 cycles: qemu has no
pipeline model (loads, branches and multiplies cost one each).

Faults: the board exits with status 0xF1 on a HardFault (0xF2..0xF6 for other
exceptions) after printing the stacked pc/lr and the fault status registers; that
becomes a ``BoardFault`` naming the fault and the faulting pc.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
STARTUP_C = HERE / "startup.c"
LINKER_SCRIPT = HERE / "mps2_an386.ld"
INSTALL_HINT = "run tools/mcu/install_toolchain.sh (installs them with apt-get)"

CC = "arm-none-eabi-gcc"
SIZE = "arm-none-eabi-size"
QEMU = "qemu-system-arm"
ARCH_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")
COMMON_CFLAGS = (*ARCH_FLAGS, "-std=c99", "-Wall", "-Wextra", "-ffunction-sections",
                 "-fdata-sections", "-g")
LINK_FLAGS = (*ARCH_FLAGS, "--specs=rdimon.specs", "-nostartfiles", "-Wl,--gc-sections")
HARNESS_OPT = "-O2"

SYSCLK_HZ = 25_000_000  # mps2-an386 system clock, the dual timer's PCLK
TICK_NS = 1_000_000_000 // SYSCLK_HZ  # 40
COARSE_PRESCALE = 256
EXACT_SHIFT = 7  # smallest icount shift for which instruction counts are exact
DEFAULT_SHIFT = EXACT_SHIFT
STUB_INSTRUCTIONS = 2  # the harness's baseline stub: movs r0, #0; bx lr
DEFAULT_TIMEOUT = 120.0

EXIT_CODES = {  # startup.c BOARD_EXIT_*
    0xF1: "HardFault",
    0xF2: "MemManage fault",
    0xF3: "BusFault",
    0xF4: "UsageFault",
    0xF5: "NMI",
    0xF6: "unexpected exception",
}
HARNESS_INPUT_SIZE_EXIT = 3  # main.c: an input's size does not match model_input_bytes

OUT_CHUNK = 64  # output bytes per hex line


class BoardError(RuntimeError):
    """The board could not build or run the program; the message says why."""


class ToolchainMissing(BoardError):
    """arm-none-eabi-gcc or qemu-system-arm is not installed."""


class BuildError(BoardError):
    """Compiling or linking failed; the message holds the compiler's output."""


class BoardFault(BoardError):
    """The program faulted (HardFault, ...) or exited with an unexpected status."""

    def __init__(self, message: str, exit_code: int, fault: str | None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.fault = fault


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


# --------------------------------------------------------------------------- toolchain


def check_toolchain() -> dict[str, str]:
    """Paths of the tools, or ``ToolchainMissing`` naming what is absent and the fix."""
    found = {tool: shutil.which(tool) for tool in (CC, SIZE, QEMU)}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        raise ToolchainMissing(f"{', '.join(missing)} not found on PATH: {INSTALL_HINT}")
    return {tool: str(path) for tool, path in found.items()}


# --------------------------------------------------------------------------- harness


def _c_bytes(data: bytes, indent: str = "    ", per_line: int = 16) -> str:
    if not data:
        return indent + "0"
    rows = (data[i:i + per_line] for i in range(0, len(data), per_line))
    return ",\n".join(indent + ", ".join(f"0x{b:02x}" for b in row) for row in rows)


def render_main_c(prefix: str, runs: Sequence[Sequence[bytes]]) -> str:
    """The harness: ``runs[r][i]`` is input ``i`` of inference ``r``."""
    upper = prefix.upper()
    n_inputs = len(runs[0])
    arrays: list[str] = []
    for r, run in enumerate(runs):
        for i, data in enumerate(run):
            arrays.append(f"static const uint8_t ml_in_{r}_{i}[{max(len(data), 1)}] "
                          f"__attribute__((aligned(8))) = {{\n{_c_bytes(data)}\n}};")
    table = ",\n".join("    {" + ", ".join(f"ml_in_{r}_{i}" for i in range(n_inputs)) + "}"
                       for r in range(len(runs)))
    sizes = ",\n".join("    {" + ", ".join(f"{len(d)}u" for d in run) + "}" for run in runs)
    return _MAIN_C.format(prefix=prefix, upper=upper, runs=len(runs), inputs=n_inputs,
                          arrays="\n\n".join(arrays), table=table, sizes=sizes,
                          chunk=OUT_CHUNK, size_exit=HARNESS_INPUT_SIZE_EXIT)


_MAIN_C = """\
/* Generated by tools/mcu/run.py: microlith's benchmark harness for mps2-an386. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "{prefix}.h"

#ifndef {upper}_NUM_OUTPUTS
#define {upper}_NUM_OUTPUTS 1
#endif

#define ML_RUNS {runs}
#define ML_INPUTS {inputs}
#define ML_CHUNK {chunk}

void board_write(const char *s);

/* CMSDK APB dual timer (25 MHz PCLK): module m at 0x40002000 + 0x20 * m. */
#define DT_LOAD(m) (*(volatile uint32_t *)(0x40002000u + 0x20u * (m)))
#define DT_VALUE(m) (*(volatile uint32_t *)(0x40002004u + 0x20u * (m)))
#define DT_CONTROL(m) (*(volatile uint32_t *)(0x40002008u + 0x20u * (m)))
#define DT_ENABLE 0x80u
#define DT_SIZE32 0x02u
#define DT_PRESCALE256 0x08u

{arrays}

static const uint8_t *const ml_in[ML_RUNS][ML_INPUTS] = {{
{table}
}};
static const size_t ml_in_bytes[ML_RUNS][ML_INPUTS] = {{
{sizes}
}};

typedef int (*ml_fn)(void);

struct ml_stamp {{
    uint32_t coarse0, fine0, fine1, coarse1;
    int status;
}};

/* Exactly two instructions; timed like the model to measure the timing overhead. */
__attribute__((naked)) static int ml_stub(void)
{{
    __asm__ volatile("movs r0, #0\\n\\tbx lr");
}}

/* The timed region is between the two reads of the fine counter. */
__attribute__((noipa)) static void ml_measure(ml_fn fn, struct ml_stamp *s)
{{
    s->coarse0 = DT_VALUE(1);
    uint32_t fine0 = DT_VALUE(0);
    int status = fn();
    uint32_t fine1 = DT_VALUE(0);
    s->coarse1 = DT_VALUE(1);
    s->fine0 = fine0;
    s->fine1 = fine1;
    s->status = status;
}}

static char ml_line[16 + 2 * ML_CHUNK + 8];

static char *ml_hex(char *p, uint32_t v, int digits)
{{
    static const char hex[] = "0123456789abcdef";
    for (int d = digits - 1; d >= 0; --d) {{
        *p++ = hex[(v >> (4 * d)) & 0xFu];
    }}
    return p;
}}

static char *ml_str(char *p, const char *s)
{{
    while (*s) {{
        *p++ = *s++;
    }}
    return p;
}}

static void ml_emit(char *p)
{{
    *p++ = '\\n';
    *p = '\\0';
    board_write(ml_line);
}}

static void ml_stamp_line(const char *tag, int run, const struct ml_stamp *s)
{{
    char *p = ml_str(ml_line, tag);
    p = ml_hex(p, (uint32_t)run, 8);
    *p++ = ' ';
    p = ml_hex(p, s->coarse0, 8);
    *p++ = ' ';
    p = ml_hex(p, s->fine0, 8);
    *p++ = ' ';
    p = ml_hex(p, s->fine1, 8);
    *p++ = ' ';
    p = ml_hex(p, s->coarse1, 8);
    *p++ = ' ';
    p = ml_hex(p, (uint32_t)s->status, 8);
    ml_emit(p);
}}

static void ml_print_output(int run, int index)
{{
    const uint8_t *data = (const uint8_t *){prefix}_output(index);
    size_t n = {prefix}_output_bytes(index);
    char *p = ml_str(ml_line, "ML OUTLEN ");
    p = ml_hex(p, (uint32_t)run, 8);
    *p++ = ' ';
    p = ml_hex(p, (uint32_t)index, 8);
    *p++ = ' ';
    p = ml_hex(p, (uint32_t)n, 8);
    ml_emit(p);
    for (size_t at = 0; at < n; at += ML_CHUNK) {{
        p = ml_str(ml_line, "ML OUT ");
        p = ml_hex(p, (uint32_t)run, 8);
        *p++ = ' ';
        p = ml_hex(p, (uint32_t)index, 8);
        *p++ = ' ';
        for (size_t k = at; k < n && k < at + ML_CHUNK; ++k) {{
            p = ml_hex(p, data[k], 2);
        }}
        ml_emit(p);
    }}
}}

int main(void)
{{
    DT_CONTROL(0) = 0u;
    DT_CONTROL(1) = 0u;
    DT_LOAD(0) = 0xFFFFFFFFu;
    DT_LOAD(1) = 0xFFFFFFFFu;
    DT_CONTROL(0) = DT_ENABLE | DT_SIZE32;
    DT_CONTROL(1) = DT_ENABLE | DT_SIZE32 | DT_PRESCALE256;

    struct ml_stamp stamp;
    for (int k = 0; k < 2; ++k) {{
        ml_measure(ml_stub, &stamp);
        ml_stamp_line("ML BASE ", k, &stamp);
    }}
    for (int r = 0; r < ML_RUNS; ++r) {{
        for (int i = 0; i < ML_INPUTS; ++i) {{
            size_t want = {prefix}_input_bytes(i);
            if (ml_in_bytes[r][i] != want) {{
                char *p = ml_str(ml_line, "ML BADSIZE ");
                p = ml_hex(p, (uint32_t)r, 8);
                *p++ = ' ';
                p = ml_hex(p, (uint32_t)i, 8);
                *p++ = ' ';
                p = ml_hex(p, (uint32_t)ml_in_bytes[r][i], 8);
                *p++ = ' ';
                p = ml_hex(p, (uint32_t)want, 8);
                ml_emit(p);
                return {size_exit};
            }}
            memcpy({prefix}_input(i), ml_in[r][i], want);
        }}
        ml_measure({prefix}_invoke, &stamp);
        ml_stamp_line("ML TIME ", r, &stamp);
        for (int o = 0; o < {upper}_NUM_OUTPUTS; ++o) {{
            ml_print_output(r, o);
        }}
    }}
    board_write("ML DONE\\n");
    return 0;
}}
"""


# --------------------------------------------------------------------------- build


def _run_tool(cmd: Sequence[str], what: str, cwd: Path) -> str:
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, check=False)
    log = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n$ {' '.join(cmd)}\n{log}")
    return log


def build(model_dir: str | os.PathLike[str], runs: Sequence[Sequence[bytes]], *,
          prefix: str = "model", opt: str = "-O2", workdir: Path,
          cflags: Sequence[str] = ()) -> tuple[Path, str]:
    """Compile the model's ``*.c``, the harness and startup; link ``workdir/app.elf``."""
    model_dir = Path(model_dir).resolve()
    sources = sorted(model_dir.glob("*.c"))
    if not (model_dir / f"{prefix}.h").is_file() or not sources:
        raise BuildError(f"{model_dir}: expected {prefix}.h and at least one .c file")
    main_c = workdir / "main.c"
    main_c.write_text(render_main_c(prefix, runs))
    include = ("-I", str(model_dir))
    jobs: list[tuple[Path, str]] = [(src, opt) for src in sources]
    jobs += [(main_c, HARNESS_OPT), (STARTUP_C, HARNESS_OPT)]
    objects: list[str] = []
    logs: list[str] = []
    for n, (src, level) in enumerate(jobs):
        obj = workdir / f"{n:02d}_{src.stem}.o"
        cmd = [CC, *COMMON_CFLAGS, level, *include, *cflags, "-c", str(src), "-o", str(obj)]
        logs.append(_run_tool(cmd, f"compiling {src.name}", workdir))
        objects.append(str(obj))
    elf = workdir / "app.elf"
    link = [CC, *LINK_FLAGS, "-T", str(LINKER_SCRIPT), *objects, "-lm",
            f"-Wl,-Map={workdir / 'app.map'}", "-o", str(elf)]
    logs.append(_run_tool(link, "linking", workdir))
    return elf, "\n".join(log for log in logs if log)


def elf_size(elf: Path) -> tuple[int, int, int]:
    """(text, data, bss) from ``arm-none-eabi-size`` (Berkeley format)."""
    out = _run_tool([SIZE, str(elf)], "arm-none-eabi-size", elf.parent)
    text, data, bss = (int(v) for v in out.splitlines()[-1].split()[:3])
    return text, data, bss


# --------------------------------------------------------------------------- run


def qemu_command(elf: Path, console: Path, icount_shift: int = DEFAULT_SHIFT) -> list[str]:
    """qemu for the board: no display, serial, monitor or network; semihosting -> ``console``."""
    return [QEMU, "-M", "mps2-an386", "-display", "none", "-monitor", "none",
            "-serial", "null", "-nic", "none",
            "-chardev", f"file,id=semihost,path={console}",
            "-semihosting-config", "enable=on,target=native,chardev=semihost",
            "-icount", f"shift={icount_shift}", "-kernel", str(elf)]


def run_elf(elf: Path, *, timeout: float = DEFAULT_TIMEOUT,
            icount_shift: int = DEFAULT_SHIFT) -> tuple[str, str]:
    """Run under qemu: (console, stdout), or ``BoardFault`` / ``BoardError``.

    ``console`` is what went through semihosting SYS_WRITE0 (the harness and the
    board write there); ``stdout`` is the program's stdio (rdimon writes to qemu's
    stdout through SYS_WRITE).
    """
    console = elf.with_suffix(".console.txt")
    console.unlink(missing_ok=True)
    cmd = qemu_command(elf, console, icount_shift)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise BoardError(f"qemu did not finish within {timeout:g} s (a hang, a lockup "
                         f"or a very long model); output so far:\n"
                         f"{_read_console(console)[-2000:]}") from None
    text = _read_console(console)
    if proc.returncode == 0:
        return text, proc.stdout
    code = proc.returncode
    fault = EXIT_CODES.get(code)
    tail = "\n".join((text + proc.stdout + proc.stderr).splitlines()[-8:])
    if fault is not None:
        raise BoardFault(f"the program stopped with a {fault} (qemu exit status 0x{code:02x})"
                         f"{describe_fault(text, elf)}", code, fault)
    bad = re.search(r"ML BADSIZE (\w+) (\w+) (\w+) (\w+)", text)
    if code == HARNESS_INPUT_SIZE_EXIT and bad:
        r, i, got, want = (int(v, 16) for v in bad.groups())
        raise BoardFault(f"inference {r}, input {i}: {got} bytes given, model_input_bytes({i}) "
                         f"is {want}", code, None)
    raise BoardFault(f"qemu exited with status {code}:\n{tail}", code, None)


_CFSR_BITS = {
    0: "instruction access violation (MPU)", 1: "data access violation (MPU)",
    3: "MemManage fault on exception return", 4: "MemManage fault on exception entry",
    8: "instruction bus error", 9: "precise data bus error", 10: "imprecise data bus error",
    11: "bus error on exception return", 12: "bus error on exception entry (stack overflow?)",
    16: "undefined instruction", 17: "invalid state (bad function pointer?)",
    18: "invalid exception return", 19: "no coprocessor (FPU off?)",
    24: "unaligned access", 25: "divide by zero",
}


def describe_fault(console: str, elf: Path) -> str:
    """``: <cause> at <function> (<file:line>); <register dump>`` from the board's report."""
    report = re.search(r"microlith-board: (\S+)((?: \w+=0x[0-9a-f]+)+)", console)
    if report is None:
        return " (no fault report)"
    regs = {key: int(value, 16) for key, value in re.findall(r"(\w+)=0x([0-9a-f]+)",
                                                              report.group(2))}
    cfsr = regs.get("cfsr", 0)
    causes = [text for bit, text in _CFSR_BITS.items() if cfsr >> bit & 1]
    if cfsr >> 15 & 1:
        causes = [c + f" at address 0x{regs['bfar']:08x}" if "data bus" in c else c
                  for c in causes]
    if cfsr >> 7 & 1:
        causes = [c + f" at address 0x{regs['mmfar']:08x}" if "data access" in c else c
                  for c in causes]
    where = _symbolize(elf, regs.get("pc", 0))
    cause = ", ".join(causes) or "cause unknown"
    return f": {cause} at pc=0x{regs.get('pc', 0):08x}{where}; {report.group(0).strip()}"


def _symbolize(elf: Path, pc: int) -> str:
    tool = shutil.which("arm-none-eabi-addr2line")
    if tool is None:
        return ""
    proc = subprocess.run([tool, "-f", "-e", str(elf), f"0x{pc:x}"], capture_output=True,
                          text=True, check=False)
    lines = proc.stdout.split()
    if proc.returncode != 0 or len(lines) < 2 or lines[0] == "??":
        return ""
    return f" in {lines[0]} ({Path(lines[1]).name})"


def _read_console(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def ticks_to_instructions(ticks: int, icount_shift: int = DEFAULT_SHIFT) -> int:
    """Timer ticks (40 ns) -> instructions (2**shift ns each); exact for shift >= 7."""
    return (2 * ticks * TICK_NS + (1 << icount_shift)) // (2 << icount_shift)


def _absolute_ticks(coarse: int, fine: int) -> int:
    """Ticks since the timers started, from the two down-counters' values."""
    fine_elapsed = 0xFFFFFFFF - fine
    coarse_elapsed = (0xFFFFFFFF - coarse) * COARSE_PRESCALE
    wraps = round((coarse_elapsed - fine_elapsed) / 2**32)
    return fine_elapsed + wraps * 2**32


def _stamp_instructions(fields: Sequence[str], icount_shift: int) -> tuple[int, int]:
    coarse0, fine0, fine1, coarse1 = (int(v, 16) for v in fields[:4])
    t0 = _absolute_ticks(coarse0, fine0)
    t1 = _absolute_ticks(coarse1, fine1)
    return (ticks_to_instructions(t1, icount_shift) - ticks_to_instructions(t0, icount_shift),
            t1 - t0)


@dataclass
class _Parsed:
    baseline: int
    instructions: list[int]
    ticks: list[int]
    statuses: list[int]
    outputs: list[list[bytes]]


def parse_output(console: str, n_runs: int, icount_shift: int = DEFAULT_SHIFT) -> _Parsed:
    """Read the harness's ``ML ...`` lines."""
    base: list[int] = []
    times: dict[int, tuple[int, int, int]] = {}
    lengths: dict[tuple[int, int], int] = {}
    chunks: dict[tuple[int, int], list[bytes]] = {}
    done = False
    for line in console.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0] != "ML":
            continue
        tag, fields = parts[1], parts[2:]
        if tag == "BASE":
            base.append(_stamp_instructions(fields[1:], icount_shift)[0])
        elif tag == "TIME":
            count, ticks = _stamp_instructions(fields[1:], icount_shift)
            status = int(fields[5], 16)
            times[int(fields[0], 16)] = (count, ticks, status - (status >> 31 << 32))
        elif tag == "OUTLEN":
            lengths[(int(fields[0], 16), int(fields[1], 16))] = int(fields[2], 16)
        elif tag == "OUT":
            key = (int(fields[0], 16), int(fields[1], 16))
            chunks.setdefault(key, []).append(bytes.fromhex(fields[2] if len(fields) > 2 else ""))
        elif tag == "DONE":
            done = True
    if not done or len(times) != n_runs or len(base) != 2:
        raise BoardError(f"the harness output is incomplete:\n{console[-2000:]}")
    if base[0] != base[1] and icount_shift >= EXACT_SHIFT:
        raise BoardError(f"the timing baseline is not deterministic: {base}")
    outputs: list[list[bytes]] = []
    for r in range(n_runs):
        row = []
        for o in range(len([k for k in lengths if k[0] == r])):
            data = b"".join(chunks.get((r, o), []))
            if len(data) != lengths[(r, o)]:
                raise BoardError(f"inference {r}, output {o}: got {len(data)} bytes, "
                                 f"expected {lengths[(r, o)]}")
            row.append(data)
        outputs.append(row)
    overhead = base[0] - STUB_INSTRUCTIONS
    return _Parsed(baseline=overhead,
                   instructions=[times[r][0] - overhead for r in range(n_runs)],
                   ticks=[times[r][1] for r in range(n_runs)],
                   statuses=[times[r][2] for r in range(n_runs)],
                   outputs=outputs)


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
