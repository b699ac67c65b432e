"""The cores the board runs on: ``--cpu`` -> qemu machine, memory map, timer and compiler flags.

Three families of qemu machines, one startup file (``startup.c``) and one set of output
sections (``board_sections.ld``) for all; each machine has its own linker script (its
memory map) and its own free-running timer for the harness:

* MPS2 without TrustZone -- the Cortex-M4 (mps2-an386: DSP, single-precision FPU), the
  Cortex-M7 (mps2-an500: DSP, double-precision FPU) and the Cortex-M3 (mps2-an385: no
  DSP extension, no FPU, the portable kernels). One memory map (ZBT SSRAM1 at
  0x00000000 as "flash", SSRAM2/3 at 0x20000000 as RAM), the CMSDK APB dual timer at
  0x40002000 on the 25 MHz system clock: ``mps2_an386.ld``.
* mps2-an505, the Cortex-M33 (ARMv8-M Mainline, DSP, single-precision FPU, TrustZone)
  in the IoT Kit subsystem. It resets Secure with VTOR_S = 0x10000000; we run
  Secure-only from the Secure aliases (SSRAM1 at 0x10000000, SSRAM2+3 at 0x38000000).
  The IoT Kit's CMSDK dual timer is at 0x40002000 like on the M4 board, but its clock
  is the 20 MHz MAINCLK: ``mps2_an505.ld``.
* mps3-an547, the Cortex-M55 (ARMv8.1-M, DSP, Helium, FPU) in the SSE-300 subsystem,
  which has no CMSDK dual timer. Its 64-bit system counter (enabled through CNTCR at
  0x58100000, counting the 32 MHz system clock) is read through the CNTPCT registers
  of system timer 0 (0x48000000): ``mps3_an547.ld`` (code in the ITCM at 0x10000000,
  constants in the QSPI flash at 0x38000000, RAM at 0x31000000).

The clocks were measured, not only read: a loop of N ``subs; bne`` pairs takes
2N * 128 ns of virtual time at ``-icount shift=7``, i.e. 2.56 dual-timer ticks per
instruction on mps2-an505 (20 MHz) and 4.096 counter ticks on mps3-an547 (32 MHz).
"""

from __future__ import annotations

from dataclasses import dataclass

DUALTIMER = "cmsdk-dualtimer"  # two 32-bit down-counters: every tick, and ticks / 256
SYSCOUNTER = "sse-counter"  # one 64-bit up-counter, read as two 32-bit halves


@dataclass(frozen=True)
class Board:
    machine: str  # qemu -M
    linker_script: str  # file name in this package
    timer: str  # DUALTIMER | SYSCOUNTER
    timer_hz: int  # the timer's tick rate


@dataclass(frozen=True)
class Cpu:
    name: str
    board: Board
    arch_flags: tuple[str, ...]  # arm-none-eabi-gcc flags for compiling and linking
    dsp: bool  # __ARM_FEATURE_DSP: the DSP kernels are compiled

    @property
    def machine(self) -> str:
        return self.board.machine


MPS2 = {machine: Board(machine, "mps2_an386.ld", DUALTIMER, 25_000_000)
        for machine in ("mps2-an386", "mps2-an500", "mps2-an385")}
AN505 = Board("mps2-an505", "mps2_an505.ld", DUALTIMER, 20_000_000)
AN547 = Board("mps3-an547", "mps3_an547.ld", SYSCOUNTER, 32_000_000)

CPUS = {cpu.name: cpu for cpu in (
    Cpu("cortex-m4", MPS2["mps2-an386"],
        ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"), True),
    Cpu("cortex-m7", MPS2["mps2-an500"],
        ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"), True),
    Cpu("cortex-m3", MPS2["mps2-an385"], ("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"),
        False),
    Cpu("cortex-m33", AN505,
        ("-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"), True),
    Cpu("cortex-m55", AN547, ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"), True),
)}
DEFAULT_CPU = "cortex-m4"


def cpu_named(name: str) -> Cpu:
    if name not in CPUS:
        raise ValueError(f"unknown cpu {name!r} (choices: {', '.join(CPUS)})")
    return CPUS[name]
