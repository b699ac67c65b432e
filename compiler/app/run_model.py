"""``microlith run``: run a compiled model on inputs from ``.npy`` files, on the host or a Cortex-M.

* A C output directory (``--target c``): the model's interface is read from its header
  (``PREFIX_INPUTi_{TYPE,SHAPE,SCALE,ZERO_POINT}``). ``--on host`` builds the C with the
  host's ``gcc`` and a small file-based ``main.c``; ``--on cortex-m4`` (or ``cortex-m7``,
  ``cortex-m3``, ``cortex-m33``, ``cortex-m55``) builds it with arm-none-eabi-gcc for
  that core's board shipped in this package and runs it under qemu
  (``microlith.app.board``), reporting the instructions of every ``model_invoke()``.
* A ``.tflite``: runs it in TFLite-Micro (``tflite_micro``), else LiteRT
  (``ai_edge_litert``), whichever is installed (``pip install 'microlith[runtimes]'``).

Inputs: one array per model input, given in the model's order, by input name (a mapping;
the CLI's ``--input NAME=x.npy`` or an ``.npz`` keyed by input name), or a single array for
a one-input model; a missing or unknown name is an error naming it. Each array holds one
sample in the input's shape, or samples stacked on the first axis (one inference each;
every input must give the same number). A rank-4 array in the ONNX layout (NCHW) is
transposed to the model's NHWC. Float inputs of an integer model are quantized with the
model's scale and zero point (round half away from zero, saturated), as TFLite's QUANTIZE
does. Outputs are the model's own type (int8 for an int8 model), stacked like the inputs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microlith.diagnostics import UsageError
from microlith.ir.types import QuantParams
from microlith.quant.params import quantize_array

_C_TYPES = {"int8_t": np.int8, "uint8_t": np.uint8, "int16_t": np.int16, "int32_t": np.int32,
            "float": np.float32}


@dataclass
class TensorInfo:
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float | None = None
    zero_point: int = 0
    name: str = ""  # the model's name for it ("" when unknown)


@dataclass
class RunOutput:
    outputs: list[np.ndarray]  # one array per model output, samples stacked
    instructions: list[int] = field(default_factory=list)  # on a Cortex-M: per inference
    runtime: str = ""  # what ran it


def header_interface(directory: Path) -> tuple[str, list[TensorInfo], list[TensorInfo]]:
    """(prefix, inputs, outputs) of a C output directory, from its ``*.h`` macros."""
    plans = sorted(directory.glob("*_memory_plan.json"))
    if not plans:
        raise UsageError(f"{directory}: not a microlith C output directory (no "
                         "*_memory_plan.json; compile with --target c)")
    prefix = plans[0].name[: -len("_memory_plan.json")]
    header = directory / f"{prefix}.h"
    if not header.is_file():
        raise UsageError(f"{directory}: {header.name} is missing")
    text = header.read_text()
    macros = dict(re.findall(r"^#define (\w+) (.+)$", text, re.M))
    upper = prefix.upper()

    def tensors(kind: str) -> list[TensorInfo]:
        found = []
        for i in range(int(macros.get(f"{upper}_NUM_{kind}S", "0"))):
            key = f"{upper}_{kind}{i}_"
            shape = tuple(int(d) for d in re.findall(r"\d+", macros[key + "SHAPE"]))
            dtype = np.dtype(_C_TYPES[macros[key + "TYPE"]])
            scale = macros.get(key + "SCALE")
            found.append(TensorInfo(shape, dtype, float(scale.rstrip("f")) if scale else None,
                                    int(macros.get(key + "ZERO_POINT", "0")),
                                    names.get((kind.lower(), i), "")))
        return found

    names = {(kind, int(i)): name for kind, i, name in
             re.findall(r"^/\* (input|output) (\d+): (.*) \*/$", text, re.M)}

    return prefix, tensors("INPUT"), tensors("OUTPUT")


def prepare_samples(x: np.ndarray, info: TensorInfo, where: str) -> list[np.ndarray]:
    """``x`` as a list of samples in the model's shape and dtype (see module docstring)."""
    shape = info.shape
    if x.ndim == len(shape) == 4 and tuple(x.shape[1:]) != shape[1:] and \
            (x.shape[1], x.shape[2], x.shape[3]) == (shape[3], shape[1], shape[2]):
        x = x.transpose(0, 2, 3, 1)  # ONNX layout (NCHW) -> the model's NHWC
    if tuple(x.shape) == shape:
        samples = [x]
    elif x.ndim == len(shape) and tuple(x.shape[1:]) == shape[1:] and shape[:1] == (1,):
        samples = [x[i:i + 1] for i in range(x.shape[0])]
    else:
        raise UsageError(f"{where}: shape {list(x.shape)} does not match the model input "
                         f"{list(shape)} (or N samples of it)")
    if not samples:
        raise UsageError(f"{where}: no samples")
    out = []
    for sample in samples:
        if np.issubdtype(sample.dtype, np.floating) and info.dtype.kind in "iu":
            if info.scale is None:
                raise UsageError(f"{where}: float input but the model input has no scale")
            sample = quantize_array(sample, QuantParams((info.scale,), (info.zero_point,)),
                                    info.dtype.type)
        elif sample.dtype != info.dtype:
            if not (np.issubdtype(sample.dtype, np.floating) and info.dtype.kind == "f"):
                raise UsageError(f"{where}: dtype {sample.dtype} does not match the model "
                                 f"input ({info.dtype}; float inputs are quantized)")
            sample = sample.astype(info.dtype)
        out.append(np.ascontiguousarray(sample))
    return out


def load_input(path: str) -> np.ndarray:
    from microlith.frontend.input_files import load_npy

    return np.asarray(load_npy(path, 1 << 30, error=UsageError)[0])


Inputs = np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]
MAX_INPUT_BYTES = 1 << 30


def load_inputs(values: Sequence[str]) -> tuple[Inputs, dict[str, str] | list[str]]:
    """The CLI's ``--input`` values -> (arrays, where each came from): ``x.npy`` (positional,
    in the model's input order), ``NAME=x.npy`` (by input name), or one ``.npz`` whose keys
    are input names."""
    from microlith.frontend.input_files import load_npz

    if len(values) == 1 and values[0].lower().endswith(".npz") and \
            not _named(values[0]):
        arrays, _ = load_npz(values[0], MAX_INPUT_BYTES, UsageError)
        if not arrays:
            raise UsageError(f"{values[0]}: no arrays")
        return arrays, {name: f"{values[0]} ({name!r})" for name in arrays}
    named = [_named(v) for v in values]
    if any(named) and not all(named):
        raise UsageError("--input: give every input as NAME=X.npy, or none (then in the "
                         "model's input order)")
    if not all(named):
        for v in values:
            if v.lower().endswith(".npz"):
                raise UsageError(f"--input {v}: an .npz (keyed by input name) is the only "
                                 "--input")
        return [load_input(v) for v in values], list(values)
    by_name: dict[str, np.ndarray] = {}
    wheres: dict[str, str] = {}
    for value in values:
        name, path = value.split("=", 1)
        if name in by_name:
            raise UsageError(f"--input {name}=...: given twice")
        by_name[name], wheres[name] = load_input(path), path
    return by_name, wheres


def _named(value: str) -> bool:
    """``NAME=PATH`` unless the whole value is an existing file (a path with a ``=``)."""
    return "=" in value and not os.path.exists(value) and bool(value.split("=", 1)[0])


def _input_label(info: TensorInfo, i: int) -> str:
    return repr(info.name) if info.name else f"input {i}"


def match_inputs(given: Inputs, infos: list[TensorInfo], where: str,
                 wheres: Mapping[str, str] | Sequence[str] | None = None
                 ) -> list[list[np.ndarray]]:
    """One list of prepared arrays (``prepare_samples``) per inference, in the model's input
    order, from a single array, arrays in order, or arrays by input name."""
    names = [info.name for info in infos]
    listed = ", ".join(_input_label(info, i) for i, info in enumerate(infos))
    if isinstance(given, np.ndarray):
        arrays, labels = [given], [where]
    elif isinstance(given, Mapping):
        extra = [k for k in given if k not in names]
        if extra:
            raise UsageError(f"{where}: the model has no input named {extra[0]!r} (its "
                             f"inputs: {listed})")
        missing = [n for n in names if n not in given]
        if missing:
            raise UsageError(f"{where}: no data for the model input {missing[0]!r} (its "
                             f"inputs: {listed}; give --input {missing[0]}=X.npy)")
        arrays = [np.asarray(given[n]) for n in names]
        labels = [wheres[n] if isinstance(wheres, Mapping) and n in wheres else
                  f"{where} {n!r}" for n in names]
    else:
        arrays = [np.asarray(a) for a in given]
        labels = list(wheres) if isinstance(wheres, Sequence) and \
            len(wheres) == len(arrays) else [f"{where} {i}" for i in range(len(arrays))]
    if len(arrays) != len(infos):
        more = "missing" if len(arrays) < len(infos) else "extra"
        which = ", ".join(_input_label(infos[i], i) for i in range(len(arrays), len(infos))) \
            if more == "missing" else ", ".join(labels[len(infos):])
        raise UsageError(f"{where}: the model has {len(infos)} input(s) ({listed}) but "
                         f"{len(arrays)} were given ({more}: {which}; give one --input per "
                         "model input, or NAME=X.npy)")
    per_input = [prepare_samples(a, info, label) for a, info, label in
                 zip(arrays, infos, labels, strict=True)]
    counts = {len(samples) for samples in per_input}
    if len(counts) > 1:
        detail = ", ".join(f"{label}: {len(samples)}" for label, samples in
                           zip(labels, per_input, strict=True))
        raise UsageError(f"{where}: every input must give the same number of samples "
                         f"({detail})")
    return [list(run) for run in zip(*per_input, strict=True)]


# --------------------------------------------------------------------------- host

_HOST_MAIN = r"""/* microlith run --on host: inputs and outputs through files. */
#include <stdio.h>
#include <stdlib.h>
#include "{prefix}.h"

static int io(const char *path, void *data, size_t n, int out) {{
    FILE *f = fopen(path, out ? "wb" : "rb");
    size_t done;
    if (!f) return 1;
    done = out ? fwrite(data, 1, n, f) : fread(data, 1, n, f);
    fclose(f);
    return done != n;
}}

int main(int argc, char **argv) {{
    int i, status;
    if (argc != 1 + {upper}_NUM_INPUTS + {upper}_NUM_OUTPUTS) return 64;
    for (i = 0; i < {upper}_NUM_INPUTS; i++)
        if (io(argv[1 + i], {prefix}_input(i), {prefix}_input_bytes(i), 0)) return 65;
    status = {prefix}_invoke();
    if (status != 0) return 66;
    for (i = 0; i < {upper}_NUM_OUTPUTS; i++)
        if (io(argv[1 + {upper}_NUM_INPUTS + i], (void *){prefix}_output(i),
               {prefix}_output_bytes(i), 1)) return 67;
    return 0;
}}
"""


def run_host(directory: Path, prefix: str, samples: list[list[np.ndarray]],
             outputs: list[TensorInfo]) -> RunOutput:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise UsageError("--on host needs a C compiler: gcc not found on PATH (Debian/Ubuntu: "
                         "apt-get install gcc)")
    with tempfile.TemporaryDirectory(prefix="microlith-run-") as tmp:
        work = Path(tmp)
        (work / "main.c").write_text(_HOST_MAIN.format(prefix=prefix, upper=prefix.upper()))
        sources = [str(p) for p in sorted(directory.glob("*.c"))]
        exe = work / "model_run"
        build = subprocess.run([cc, "-std=c99", "-O2", "-I", str(directory), *sources,
                                str(work / "main.c"), "-o", str(exe)],
                               capture_output=True, text=True)
        if build.returncode != 0:
            raise UsageError(f"{directory}: gcc failed: "
                             f"{(build.stderr.strip().splitlines() or ['?'])[0]}")
        results: list[list[np.ndarray]] = [[] for _ in outputs]
        for r, run in enumerate(samples):
            names = []
            for i, x in enumerate(run):
                names.append(str(work / f"in{i}.bin"))
                Path(names[-1]).write_bytes(x.tobytes())
            outs = [str(work / f"out{j}.bin") for j in range(len(outputs))]
            done = subprocess.run([str(exe), *names, *outs], capture_output=True)
            if done.returncode != 0:
                raise UsageError(f"{directory}: the model failed on sample {r} (exit "
                                 f"{done.returncode})")
            for j, info in enumerate(outputs):
                data = np.frombuffer(Path(outs[j]).read_bytes(), info.dtype)
                results[j].append(data.reshape(info.shape))
    return RunOutput([np.concatenate(r) for r in results], runtime="host gcc")


def run_board(directory: Path, prefix: str, samples: list[list[np.ndarray]],
              outputs: list[TensorInfo], cpu: str = "cortex-m4") -> RunOutput:
    from microlith.app.board.cpus import cpu_named
    from microlith.app.board.errors import BoardError, ToolchainMissing
    from microlith.app.board.run import build_and_run

    core = cpu_named(cpu)
    title = "Cortex-" + cpu.split("-", 1)[1].upper()
    try:
        result = build_and_run(directory, [[x.tobytes() for x in run] for run in samples],
                               prefix=prefix, cpu=cpu)
    except ToolchainMissing as exc:
        raise UsageError(f"--on {cpu}: {exc}") from None
    except BoardError as exc:
        raise UsageError(f"{directory}: on the {title}: "
                         f"{(str(exc).strip().splitlines() or ['?'])[0]}") from None
    results = [np.concatenate([np.frombuffer(run[j], info.dtype).reshape(info.shape)
                               for run in result.all_outputs])
               for j, info in enumerate(outputs)]
    return RunOutput(results, instructions=list(result.instructions),
                     runtime=f"{title} (qemu {core.machine})")


def run_c_directory(directory: str | os.PathLike[str], x: Inputs, on: str = "host",
                    where: str = "--input",
                    wheres: Mapping[str, str] | Sequence[str] | None = None) -> RunOutput:
    path = Path(directory)
    prefix, inputs, outputs = header_interface(path)
    samples = match_inputs(x, inputs, where, wheres)
    if on == "host":
        return run_host(path, prefix, samples, outputs)
    from microlith.app.board.cpus import CPUS

    if on in CPUS:
        return run_board(path, prefix, samples, outputs, on)
    raise UsageError(f"--on {on!r}: choose host or one of {', '.join(CPUS)}")


# --------------------------------------------------------------------------- .tflite


def tflite_interface(data: bytes, where: str) -> tuple[list[TensorInfo], list[TensorInfo]]:
    from microlith.formats.tflite.flatbuffer import parse_model

    try:
        model = parse_model(data)
    except Exception as exc:  # the reader raises ValueError/struct errors on damage
        raise UsageError(f"{where}: not a valid .tflite file ({exc})") from None

    def info(index: int) -> TensorInfo:
        t = model.tensors[index]
        q = t.quant
        return TensorInfo(tuple(t.shape), np.dtype(t.dtype), q.scale[0] if q and q.scale
                          else None, int(q.zero_point[0]) if q and q.zero_point else 0,
                          t.name or "")

    return [info(i) for i in model.inputs], [info(o) for o in model.outputs]


def run_tflite(path: str | os.PathLike[str], x: Inputs, runtime: str = "auto",
               where: str = "--input",
               wheres: Mapping[str, str] | Sequence[str] | None = None) -> RunOutput:
    """Run a ``.tflite`` in TFLite-Micro (preferred: what runs on the MCU) or LiteRT."""
    from microlith.frontend.input_files import read_bounded

    data = read_bounded(os.fspath(path), "a .tflite file", 2**31 - 1, error=UsageError)
    inputs, outputs = tflite_interface(data, os.fspath(path))
    samples = match_inputs(x, inputs, where, wheres)
    invoke, name = _tflite_runtime(data, runtime, len(outputs))
    results: list[list[np.ndarray]] = [[] for _ in outputs]
    for sample in samples:
        for j, y in enumerate(invoke(sample)):
            results[j].append(np.asarray(y).reshape(outputs[j].shape))
    return RunOutput([np.concatenate(r) for r in results], runtime=name)


Invoke = Callable[[list[np.ndarray]], list[np.ndarray]]


def _tflite_runtime(data: bytes, runtime: str, n_outputs: int) -> tuple[Invoke, str]:
    if runtime in ("auto", "tflite-micro"):
        try:
            from tflite_micro.python.tflite_micro import runtime as tflm
        except ImportError:
            if runtime == "tflite-micro":
                raise UsageError("TFLite-Micro is not installed: pip install tflite-micro "
                                 "(or 'microlith[runtimes]')") from None
        else:
            interp = tflm.Interpreter.from_bytes(data, arena_size=16 << 20)

            def micro(xs: list[np.ndarray]) -> list[np.ndarray]:
                for i, x in enumerate(xs):
                    interp.set_input(x, i)
                interp.invoke()
                return [interp.get_output(j).copy() for j in range(n_outputs)]

            return micro, "TFLite-Micro"
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise UsageError("running a .tflite needs TFLite-Micro or LiteRT: pip install "
                         "'microlith[runtimes]' (tflite-micro, ai-edge-litert)") from None
    lite = Interpreter(model_content=data)
    lite.allocate_tensors()
    indices = [d["index"] for d in lite.get_input_details()]
    outs = [d["index"] for d in lite.get_output_details()]

    def litert(xs: list[np.ndarray]) -> list[np.ndarray]:
        for index, x in zip(indices, xs, strict=True):
            lite.set_tensor(index, x)
        lite.invoke()
        return [lite.get_tensor(o).copy() for o in outs]

    return litert, "LiteRT"
