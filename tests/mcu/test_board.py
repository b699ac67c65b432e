"""The Cortex-M4 board (tools/mcu): stand-in models built with arm-none-eabi-gcc, run in qemu.

A stand-in implements the generated C's API with a known computation: output = the
16 input bytes reversed and XORed with a key held in ``.data`` (so the startup code's
``.data`` copy is exercised), then a float32 (sum of the bytes times a gain, on the
FPU the startup code enables), and an ``asm`` busy loop of N iterations of ``subs;
bne`` (exactly 2N instructions) with N taken from the first 4 input bytes. A second
stand-in writes through a bad pointer and must stop with the HardFault exit status; a
third is a naked ``asm`` ``nop`` run, so the absolute count is known to the instruction.
Nothing is skipped: without the toolchain every test fails with the install hint.
"""

from __future__ import annotations

import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from microlith.app.board import harness as board_harness
from tools.mcu import run as board

REPO = Path(__file__).resolve().parents[2]
KEY = 0x5A
GAIN = 1.5

HEADER = """\
#ifndef {UPPER}_H
#define {UPPER}_H
#include <stddef.h>
#include <stdint.h>
#define {UPPER}_NUM_INPUTS 1
#define {UPPER}_NUM_OUTPUTS 1
void *{p}_input(int index);
const void *{p}_output(int index);
size_t {p}_input_bytes(int index);
size_t {p}_output_bytes(int index);
int {p}_invoke(void);
#endif
"""

STANDIN = """\
#include <string.h>
#include "model.h"

#define N_IN 16
#define N_OUT (N_IN + 4)
static uint8_t in_buf[N_IN];
static uint8_t out_buf[N_OUT];
uint8_t standin_key = 0x5A;  /* .data (external, so never folded into code) */
float standin_gain = 1.5f;   /* .data */

void *model_input(int index) { return index == 0 ? in_buf : 0; }
const void *model_output(int index) { return index == 0 ? out_buf : 0; }
size_t model_input_bytes(int index) { return index == 0 ? N_IN : 0; }
size_t model_output_bytes(int index) { return index == 0 ? N_OUT : 0; }

int model_invoke(void)
{
    float sum = 0.0f;
    for (int i = 0; i < N_IN; ++i) {
        out_buf[i] = (uint8_t)(in_buf[N_IN - 1 - i] ^ standin_key);
        sum += (float)in_buf[i];
    }
    sum *= standin_gain;
    memcpy(&out_buf[N_IN], &sum, sizeof sum);
    uint32_t n;
    memcpy(&n, in_buf, sizeof n);
    if (n != 0) {
        __asm__ volatile("1: subs %0, %0, #1\\n\\tbne 1b" : "+r"(n) : : "cc");
    }
    return 0;
}
"""

FAULTY = """\
#include "bad.h"

static uint8_t buf[4];

void *bad_input(int index) { return index == 0 ? buf : 0; }
const void *bad_output(int index) { return index == 0 ? buf : 0; }
size_t bad_input_bytes(int index) { return index == 0 ? sizeof buf : 0; }
size_t bad_output_bytes(int index) { return index == 0 ? sizeof buf : 0; }

int bad_invoke(void)
{
    /* Nothing is mapped at 0x60000000 on mps2-an386: a precise bus error. */
    *(volatile uint32_t *)0x60000000u = buf[0];
    return 0;
}
"""


NOPS = """\
#include "nops.h"

#define STR(x) #x
#define XSTR(x) STR(x)

static uint8_t buf[1];

void *nops_input(int index) { return index == 0 ? buf : 0; }
const void *nops_output(int index) { return index == 0 ? buf : 0; }
size_t nops_input_bytes(int index) { return index == 0 ? sizeof buf : 0; }
size_t nops_output_bytes(int index) { return index == 0 ? sizeof buf : 0; }

/* Exactly NOPS + 2 instructions. */
__attribute__((naked)) int nops_invoke(void)
{
    __asm__ volatile(".rept " XSTR(NOPS) "\\n\\tnop\\n\\t.endr\\n\\tmovs r0, #0\\n\\tbx lr");
}
"""


PRINTS = """\
#include <stdio.h>
#include <stdlib.h>
#include "talk.h"

static uint8_t buf[2];

void *talk_input(int index) { return index == 0 ? buf : 0; }
const void *talk_output(int index) { return index == 0 ? buf : 0; }
size_t talk_input_bytes(int index) { return index == 0 ? sizeof buf : 0; }
size_t talk_output_bytes(int index) { return index == 0 ? sizeof buf : 0; }

int talk_invoke(void)
{
    char *block = malloc(100000);  /* the heap between .bss and the stack */
    buf[1] = block != NULL;
    free(block);
    printf("invoke %d\\n", buf[0]);
    return 0;
}
"""


# 640 output bytes: ten full 64-byte hex lines per inference.
WIDE = """\
#include "wide.h"

static uint8_t buf[4];
static uint8_t out[640];

void *wide_input(int index) { return index == 0 ? buf : 0; }
const void *wide_output(int index) { return index == 0 ? out : 0; }
size_t wide_input_bytes(int index) { return index == 0 ? sizeof buf : 0; }
size_t wide_output_bytes(int index) { return index == 0 ? sizeof out : 0; }

int wide_invoke(void)
{
    for (int i = 0; i < 640; ++i) {
        out[i] = (uint8_t)(buf[i & 3] + 7 * i);
    }
    return 0;
}
"""


@pytest.fixture(scope="module", autouse=True)
def toolchain() -> None:
    try:
        board.check_toolchain()
    except board.ToolchainMissing as exc:
        pytest.fail(f"{exc} (CI runs tools/mcu/install_toolchain.sh before the tests)")


def _write_model(directory: Path, prefix: str, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{prefix}.h").write_text(HEADER.format(UPPER=prefix.upper(), p=prefix))
    (directory / f"{prefix}.c").write_text(source)
    return directory


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_model(tmp_path_factory.mktemp("standin"), "model", STANDIN)


def _input(loops: int, seed: int) -> bytes:
    tail = bytes((seed * 37 + 11 * i) & 0xFF for i in range(12))
    return struct.pack("<I", loops) + tail


def _expected(data: bytes) -> bytes:
    reversed_xor = bytes(b ^ KEY for b in reversed(data))
    return reversed_xor + struct.pack("<f", float(sum(data)) * GAIN)


LOOPS = (0, 1000, 2000, 5000, 1000)


@pytest.fixture(scope="module")
def first_run(standin: Path, tmp_path_factory: pytest.TempPathFactory) -> board.RunResult:
    inputs = [_input(n, seed) for seed, n in enumerate(LOOPS)]
    return board.build_and_run(standin, inputs, workdir=tmp_path_factory.mktemp("build"))


def test_outputs_match_the_known_computation(first_run: board.RunResult) -> None:
    inputs = [_input(n, seed) for seed, n in enumerate(LOOPS)]
    assert first_run.outputs == [_expected(data) for data in inputs]
    assert first_run.all_outputs == [[out] for out in first_run.outputs]
    assert first_run.build_log == ""  # startup.c, main.c and the stand-in: no warnings


def test_instruction_counts_grow_by_two_per_loop_iteration(first_run: board.RunResult) -> None:
    counts = first_run.instructions  # for LOOPS = (0, 1000, 2000, 5000, 1000)
    assert counts[1] - counts[0] >= 2000  # (+ the branch into the loop, if any)
    assert counts[2] - counts[1] == 2000
    assert counts[3] - counts[2] == 6000
    assert first_run.instructions[1] == first_run.instructions[4]  # same N, other data
    # 25 MHz ticks at icount shift 7: 3.2 per instruction (+ the timing overhead).
    assert abs(first_run.ticks[2] - first_run.ticks[1] - 6400) <= 1


def test_counts_are_deterministic_and_independent_of_the_shift(
        standin: Path, first_run: board.RunResult) -> None:
    inputs = [_input(n, seed) for seed, n in enumerate(LOOPS)]
    again = board.build_and_run(standin, inputs)
    assert again.instructions == first_run.instructions
    assert again.outputs == first_run.outputs
    finer = board.build_and_run(standin, inputs, icount_shift=10)
    assert finer.instructions == first_run.instructions


def test_counts_survive_the_fine_timer_wrapping(standin: Path,
                                                first_run: board.RunResult) -> None:
    # At shift 10 the 32-bit fine counter wraps every 2**32 / 25.6 = 167.8 M instructions.
    loops = 90_000_000
    result = board.build_and_run(standin, [_input(loops, 1)], icount_shift=10)
    assert result.ticks[0] > 2**32
    assert result.instructions[0] == first_run.instructions[1] + 2 * (loops - 1000)


@pytest.mark.parametrize("nops", [0, 100])
def test_absolute_count_of_a_known_instruction_sequence(tmp_path: Path, nops: int) -> None:
    model = _write_model(tmp_path, "nops", NOPS)
    result = board.build_and_run(model, [b"\x00", b"\x01"], prefix="nops",
                                 cflags=[f"-DNOPS={nops}"])
    assert result.instructions == [nops + 2, nops + 2]
    assert result.outputs == [b"\x00", b"\x01"]


def test_stdio_and_malloc_work_through_rdimon(tmp_path: Path) -> None:
    model = _write_model(tmp_path, "talk", PRINTS)
    result = board.build_and_run(model, [b"\x07\x00", b"\x09\x00"], prefix="talk")
    assert result.outputs == [b"\x07\x01", b"\x09\x01"]
    assert result.stdout == "invoke 7\ninvoke 9\n"  # buffered, flushed after main


def _wide_expected(data: bytes) -> bytes:
    return bytes((data[i & 3] + 7 * i) & 0xFF for i in range(640))


def test_outputs_of_full_64_byte_lines_fit_the_harness_buffer(tmp_path: Path) -> None:
    # A full chunk line is "ML OUT " + 8 + " " + 8 + " " + 128 hex digits + "\\n" + NUL =
    # 155 bytes; the buffer once had 152 and overran on every model output >= 63 bytes.
    main_c = board_harness.render_main_c("wide", [[b"1234"]])
    found = re.search(r"static char ml_line\[(\d+)\];", main_c)
    assert found is not None
    size = int(found.group(1))
    assert size >= 7 + 8 + 1 + 8 + 1 + 2 * board_harness.OUT_CHUNK + 2 == 155
    model = _write_model(tmp_path, "wide", WIDE)
    inputs = [b"\x01\x02\x03\x04", b"\xff\x00\x10\x80", b"abcd"]
    result = board.build_and_run(model, inputs, prefix="wide")
    assert result.outputs == [_wide_expected(data) for data in inputs]
    assert result.console.count("ML OUT ") == 30


def test_sizes_are_arm_none_eabi_size_figures(first_run: board.RunResult) -> None:
    out = subprocess.run(["arm-none-eabi-size", str(first_run.elf)], capture_output=True,
                         text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    assert (first_run.text, first_run.data, first_run.bss) == (text, data, bss)
    assert data >= 5  # key + gain
    assert 16 + 20 <= bss < 4096  # the stand-in's buffers; heap and stack are not counted
    assert 1000 < text < 64 * 1024
    assert first_run.flash == text + data and first_run.ram == data + bss


def test_hardfault_gives_the_distinctive_exit_and_a_clear_error(tmp_path: Path) -> None:
    model = _write_model(tmp_path / "bad", "bad", FAULTY)
    with pytest.raises(board.BoardFault) as info:
        board.build_and_run(model, [bytes(4)], prefix="bad")
    assert info.value.exit_code == 0xF1
    assert info.value.fault == "HardFault"
    message = str(info.value)
    assert "HardFault" in message and "0xf1" in message
    assert "precise data bus error at address 0x60000000" in message
    assert "in bad_invoke (bad.c:" in message


def test_wrong_input_size_is_refused(standin: Path) -> None:
    with pytest.raises(board.BoardFault, match=r"inference 1, input 0: 3 bytes given, "
                                               r"model_input_bytes\(0\) is 16"):
        board.build_and_run(standin, [_input(0, 0), b"abc"])


def test_cli_prints_outputs_counts_and_sizes(standin: Path, tmp_path: Path,
                                             first_run: board.RunResult) -> None:
    data = _input(1000, 1)
    (tmp_path / "in.bin").write_bytes(data)
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "mcu" / "run.py"), str(standin),
                           "--input", str(tmp_path / "in.bin"), "--opt", "-O2"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"inference 0 output 0 (20 bytes): {_expected(data).hex()}" in proc.stdout
    assert f"inference 0 instructions: {first_run.instructions[1]}" in proc.stdout
    # text differs from first_run's: main.c embeds one input instead of five
    assert re.search(rf"size: text=\d+ data={first_run.data} bss={first_run.bss} "
                     r"\(flash \d+, RAM \d+ bytes\)", proc.stdout)


def test_cli_reports_a_fault_as_one_error_line(tmp_path: Path) -> None:
    model = _write_model(tmp_path / "bad", "bad", FAULTY)
    (tmp_path / "in.bin").write_bytes(bytes(4))
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "mcu" / "run.py"), str(model),
                           "--prefix", "bad", "--input", str(tmp_path / "in.bin")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: the program stopped with a HardFault")
    assert "Traceback" not in proc.stderr


def test_missing_toolchain_names_the_install_script(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(board.ToolchainMissing, match="tools/mcu/install_toolchain.sh"):
        board.build_and_run(tmp_path, [b"x"])


def test_tick_conversion() -> None:
    # shift 7: 128 ns per instruction, 40 ns per tick -> 3.2 ticks per instruction,
    # the timer's rounding (under one tick either way) never changes the count.
    for n in range(0, 2000):
        for ticks in (n * 128 // 40, -(-n * 128 // 40)):
            assert board.ticks_to_instructions(ticks, 7) == n
    assert board.ticks_to_instructions(500, 0) == 20_000  # shift 0: 40 per tick
    # rebuilding the 64-bit count: fine wrapped once, coarse (1/256) says how often
    fine_elapsed = 5
    coarse_elapsed = (2**32 + fine_elapsed) // 256
    assert board._absolute_ticks(0xFFFFFFFF - coarse_elapsed, 0xFFFFFFFF - fine_elapsed) \
        == 2**32 + fine_elapsed
