"""The Cortex-M4 board (qemu mps2-an386) that runs microlith's generated C: see run.py."""
