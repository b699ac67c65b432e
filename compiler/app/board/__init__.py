"""The Cortex-M4 board (qemu ``mps2-an386``): build emitted C with arm-none-eabi-gcc, run it
under qemu with exact instruction counts (``microlith.app.board.run.build_and_run``).

The parts: ``toolchain`` (the tools, their flags, ``build``), ``harness`` (the generated
``main.c``), ``qemu`` (running the ELF and reading its output; how instructions are
counted and what a fault reports), ``errors``, and the board files ``startup.c`` and
``mps2_an386.ld`` (package data).
"""
