"""The Cortex-M boards (qemu ``mps2-an386`` for the M4, ``mps2-an500`` M7, ``mps2-an385`` M3,
``mps2-an505`` M33, ``mps3-an547`` M55): build emitted C with arm-none-eabi-gcc, run it
under qemu with exact instruction counts (``microlith.app.board.run.build_and_run``).

The parts: ``cpus`` (``--cpu`` -> machine, memory map, timer, compiler flags),
``toolchain`` (the tools, their flags, ``build``), ``harness`` (the generated ``main.c``),
``qemu`` (running the ELF and reading its output; how instructions are counted and what a
fault reports), ``errors``, and the board files ``startup.c``, ``board_sections.ld`` and
one linker script per memory map (``mps2_an386.ld``, ``mps2_an505.ld``,
``mps3_an547.ld``) (package data).
"""
