"""Running the board's ELF under qemu (``-M mps2-an386``, ...) and reading what the harness prints.

qemu runs ``-M MACHINE -icount shift=7`` (``qemu_command``; the machine of the ``--cpu``,
``cpus``), without network, display, serial or monitor; ``parse_output`` turns the
harness's ``ML ...`` lines into outputs and instruction counts.

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

The other boards (``cpus``) count the same way with their own timer and clock: the
Cortex-M33's mps2-an505 has the same dual timer on a 20 MHz clock (50 ns, 2.56 ticks per
instruction at shift 7), the Cortex-M55's mps3-an547 a 64-bit system counter on 32 MHz
(31.25 ns, 4.096 ticks per instruction), whose low word is the fine count and whose value
/ 256 the coarse one (both counting up). In general ``instructions = round(ticks * 10**9 /
(hz * 2**shift))``, exact while a tick is shorter than 2**shift ns, so shift 7 is exact
on every board.

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

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from microlith.app.board.cpus import MPS2, SYSCOUNTER, Board
from microlith.app.board.errors import BoardError, BoardFault
from microlith.app.board.harness import HARNESS_INPUT_SIZE_EXIT
from microlith.app.board.toolchain import QEMU

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


# --------------------------------------------------------------------------- run


def qemu_command(elf: Path, console: Path, icount_shift: int = DEFAULT_SHIFT,
                 machine: str = "mps2-an386") -> list[str]:
    """qemu for the board: no display, serial, monitor or network; semihosting -> ``console``."""
    return [QEMU, "-M", machine, "-display", "none", "-monitor", "none",
            "-serial", "null", "-nic", "none",
            "-chardev", f"file,id=semihost,path={console}",
            "-semihosting-config", "enable=on,target=native,chardev=semihost",
            "-icount", f"shift={icount_shift}", "-kernel", str(elf)]


def run_elf(elf: Path, *, timeout: float = DEFAULT_TIMEOUT,
            icount_shift: int = DEFAULT_SHIFT, machine: str = "mps2-an386") -> tuple[str, str]:
    """Run under qemu: (console, stdout), or ``BoardFault`` / ``BoardError``.

    ``console`` is what went through semihosting SYS_WRITE0 (the harness and the
    board write there); ``stdout`` is the program's stdio (rdimon writes to qemu's
    stdout through SYS_WRITE).
    """
    console = elf.with_suffix(".console.txt")
    console.unlink(missing_ok=True)
    cmd = qemu_command(elf, console, icount_shift, machine)
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


def ticks_to_instructions(ticks: int, icount_shift: int = DEFAULT_SHIFT,
                          hz: int = SYSCLK_HZ) -> int:
    """Timer ticks (1/hz s: 40 ns on mps2-an386) -> instructions (2**shift ns each), rounded;
    exact for shift >= 7 on every board."""
    return (2 * ticks * 10**9 + hz * (1 << icount_shift)) // (2 * hz << icount_shift)


def _absolute_ticks(coarse: int, fine: int, counting_up: bool = False) -> int:
    """Ticks since the timer started, from the fine (every tick, 32 bits) and the coarse
    (every 256 ticks) count: down-counters from 0xFFFFFFFF (the dual timer) or
    up-counters from 0 (the system counter)."""
    if counting_up:
        fine_elapsed, coarse_elapsed = fine, coarse * COARSE_PRESCALE
    else:
        fine_elapsed = 0xFFFFFFFF - fine
        coarse_elapsed = (0xFFFFFFFF - coarse) * COARSE_PRESCALE
    wraps = round((coarse_elapsed - fine_elapsed) / 2**32)
    return fine_elapsed + wraps * 2**32


def _stamp_instructions(fields: Sequence[str], icount_shift: int,
                        board: Board = MPS2["mps2-an386"]) -> tuple[int, int]:
    coarse0, fine0, fine1, coarse1 = (int(v, 16) for v in fields[:4])
    up = board.timer == SYSCOUNTER
    t0 = _absolute_ticks(coarse0, fine0, up)
    t1 = _absolute_ticks(coarse1, fine1, up)
    hz = board.timer_hz
    return (ticks_to_instructions(t1, icount_shift, hz)
            - ticks_to_instructions(t0, icount_shift, hz), t1 - t0)


@dataclass
class _Parsed:
    baseline: int
    instructions: list[int]
    ticks: list[int]
    statuses: list[int]
    outputs: list[list[bytes]]


def parse_output(console: str, n_runs: int, icount_shift: int = DEFAULT_SHIFT,
                 board: Board = MPS2["mps2-an386"]) -> _Parsed:
    """Read the harness's ``ML ...`` lines (timer stamps of ``board``)."""
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
            base.append(_stamp_instructions(fields[1:], icount_shift, board)[0])
        elif tag == "TIME":
            count, ticks = _stamp_instructions(fields[1:], icount_shift, board)
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
