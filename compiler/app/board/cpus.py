"""The cores the board runs on: ``--cpu`` -> qemu machine and compiler flags.

Every machine here is one of qemu's MPS2 boards with the same memory map as mps2-an386 (ZBT
SSRAM1 at 0x00000000 as "flash", SSRAM2/3 at 0x20000000 as RAM, the CMSDK dual timer at
0x40002000 on a 25 MHz clock), so one startup file, one linker script and one harness serve
them all: the Cortex-M4 (mps2-an386, DSP and single-precision FPU), the Cortex-M7
(mps2-an500, DSP, double-precision FPU) and the Cortex-M3 (mps2-an385: no DSP extension,
no FPU -- the portable kernels). The Cortex-M33 (mps2-an505) and M55 (mps3-an547) boards
have another memory map (TrustZone aliases, other timer addresses) and are not supported.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cpu:
    name: str
    machine: str  # qemu -M
    arch_flags: tuple[str, ...]  # arm-none-eabi-gcc flags for compiling and linking
    dsp: bool  # __ARM_FEATURE_DSP: the DSP kernels are compiled


CPUS = {cpu.name: cpu for cpu in (
    Cpu("cortex-m4", "mps2-an386",
        ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"), True),
    Cpu("cortex-m7", "mps2-an500",
        ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"), True),
    Cpu("cortex-m3", "mps2-an385", ("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"), False),
)}
DEFAULT_CPU = "cortex-m4"


def cpu_named(name: str) -> Cpu:
    if name not in CPUS:
        raise ValueError(f"unknown cpu {name!r} (choices: {', '.join(CPUS)})")
    return CPUS[name]
