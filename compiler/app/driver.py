"""The compile driver: ONNX file -> IR -> pipeline -> target bytes, written atomically.

The CLI and the Python API both go through ``compile_onnx``; nothing here prints
except the instruments the caller asked for. The target (``microlith.targets``) says
what to append to the pipeline and how to emit; the pipeline itself is built and
edited by ``microlith.app.pipeline_edits``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from microlith.app.pipeline_edits import (
    apply_flags,
    check_for_target,
    explicit_options,
    with_target_tail,
)
from microlith.app.stages import FloatSnapshot, file_size, run_stages
from microlith.diagnostics import UsageError, WarningSink, stderr_warning
from microlith.ir.core import Graph
from microlith.passes.legality import preflight
from microlith.pipeline import Pass, PassManager, parse_pipeline
from microlith.pipeline.manager import Instrument, PrintIR, Timing
from microlith.pipeline.progress import Heartbeat, PassProgress
from microlith.targets import EmitOptions, Target, all_targets, get_target

if TYPE_CHECKING:
    from microlith.frontend.onnx_import import ModelSource
    from microlith.passes.pipelines import QuantMode

CALIBRATION_METHODS = ("minmax", "percentile", "entropy", "mse")
IO_DTYPES = ("int8", "uint8", "int16", "float32")


def target_names() -> tuple[str, ...]:
    return tuple(all_targets())


def directory_targets() -> tuple[str, ...]:
    return tuple(name for name, t in all_targets().items() if t.directory)


@dataclass
class CompileOptions:
    """Everything that changes what ``compile_onnx`` produces or prints."""

    target: str = "tflite"
    pipeline: str | None = None  # None: the default pipeline for the target
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    verify_each: bool = False
    print_ir_after_all: bool = False
    print_ir_after: tuple[str, ...] = ()
    timing: bool = False
    ir_stream: TextIO | None = None  # where printed IR goes (default: stderr)
    warn: WarningSink = stderr_warning
    quantize: str | None = None  # None (float) or a mode of microlith.passes.pipelines.MODES
    # a .npz / .npy / directory path, a CalibrationSet, or a representative_dataset iterable
    calibration_data: Any = None
    calibration_method: str | None = None  # default minmax; with --pipeline: an edit of it
    calibration_cache: str | None = None  # JSON of ranges; reused when model and data match
    io_dtype: str | None = None  # int8 | uint8 | float32; default int8 when quantizing
    fallback: str | None = None  # "float" keeps ops without int8 kernels in float
    keep_float: tuple[str, ...] | None = None  # node names / op types kept in float
    input_dtype: str | None = None  # int8 | uint8 | int16 | float32 (default: io_dtype)
    output_dtype: str | None = None  # likewise for the outputs
    per_tensor: bool | None = None  # one weight scale per tensor (not per channel)
    int16: tuple[str, ...] | None = None  # int8 mode: node names / op types made 16x8
    quiet: bool = False  # no progress bar
    strict_qdq: bool | None = None  # --quantize qdq: a change of the model's scales is an error
    c_prefix: str = "model"  # C target: names model.h/model.c and every symbol
    ram_limit: int | None = None  # C target: fail when the arena exceeds this many bytes
    flash_limit: int | None = None  # C target: fail when weights + code estimate exceed it
    optimize: str | None = None  # C target: select-kernels{optimize=speed|size} (default speed)
    hybrid: str | None = None  # C target, int8 weights: select-kernels{hybrid=integer|dequantize}
    strip: bool = False  # tflite / c-array: drop names, signatures, metadata (TFLite-Micro)
    integer_model: bool = False  # the input is already integer (an int8 .tflite)
    keep_float_graph: bool = False  # keep the calibrated float graph (the report's errors)
    progress_interval: float = 5.0  # seconds between progress lines of a long stage


@dataclass
class CompileResult:
    graph: Graph
    pipeline: str
    output: bytes  # the .tflite (targets tflite and c-array); empty for c
    remarks: list[tuple[str, str, str]]
    timing: Timing | None
    seconds: dict[str, float]
    files: dict[str, str] = field(default_factory=dict)  # directory targets: name -> text
    sizes: dict[str, int] = field(default_factory=dict)  # C target: arena, weights, flash
    # with keep_float_graph: the graph just before insert-qdq (calibrated, still float),
    # the passes from insert-qdq up to the target's legalize-*, and the calibration data
    float_graph: Graph | None = None
    quantize_passes: list[Pass] = field(default_factory=list)
    calibration: Any = None


def build_pipeline(options: CompileOptions, target: Target) -> list[Pass]:
    """The passes to run: the default for the mode or ``--pipeline``, flags applied as edits,
    the target's tail appended; refused unless it leaves what the target needs."""
    from microlith.passes.pipelines import mode_passes

    flags = quantize_flags(options)
    explicit = None if options.pipeline is None else explicit_options(options.pipeline)
    if options.pipeline is None:  # an explicit "" is the user's pipeline too (refused as empty)
        passes = apply_flags(mode_passes(options.quantize), flags, None)
    else:
        passes = apply_flags(parse_pipeline(options.pipeline), flags, explicit)
    passes = with_target_tail(passes, target)
    if options.optimize is not None:
        passes = apply_flags(passes, {"--optimize": options.optimize}, explicit)
    if options.hybrid is not None:
        passes = apply_flags(passes, {"--hybrid": options.hybrid}, explicit)
    check_for_target(PassManager(passes), target)
    return passes


def quantize_flags(options: CompileOptions) -> dict[str, Any]:
    """Flag -> the value it sets in the pipeline (None: not given)."""
    def joined(items: tuple[str, ...] | None) -> str | None:
        return None if items is None else ";".join(items)

    return {"--calibration-method": options.calibration_method,
            "--io-dtype": options.io_dtype, "--fallback": options.fallback,
            "--keep-float": joined(options.keep_float), "--input-dtype": options.input_dtype,
            "--output-dtype": options.output_dtype, "--per-tensor": options.per_tensor,
            "--int16": joined(options.int16), "--strict-qdq": options.strict_qdq or None}


def resolve_int16_auto(path: str | os.PathLike[str] | None, options: CompileOptions
                       ) -> CompileOptions:
    """``--int16 auto[:BUDGET]``: the layers ``microlith.app.int16_advisor`` chooses."""
    from microlith.app.int16_advisor import advise, parse_auto

    auto, budget = parse_auto(options.int16)
    if not auto:
        return options
    if path is None:
        raise UsageError("--int16 auto needs the model as an .onnx file (it compiles the "
                         "model several times to rank its layers)")
    advice = advise(path, options.calibration_data, budget=budget,
                    calibration_method=options.calibration_method,
                    input_shapes=options.input_shapes,
                    output_dtype=options.output_dtype or options.io_dtype or "int8")
    return dataclasses.replace(options, int16=tuple(advice.chosen) or None)


def quantize_modes() -> dict[str, QuantMode]:
    from microlith.passes.pipelines import MODES

    return dict(MODES)


def check_quantize_options(options: CompileOptions, target: Target) -> None:
    """Refuse inconsistent quantization options before any work is done."""
    modes = quantize_modes()
    if options.quantize is not None and options.quantize not in modes:
        raise UsageError(f"unknown quantization mode {options.quantize!r} "
                         f"(modes: {', '.join(modes)})")
    if options.calibration_method not in (None, *CALIBRATION_METHODS):
        raise UsageError(f"unknown calibration method {options.calibration_method!r} "
                         f"(methods: {', '.join(CALIBRATION_METHODS)})")
    for flag, dtype in (("--io-dtype", options.io_dtype), ("--input-dtype", options.input_dtype),
                        ("--output-dtype", options.output_dtype)):
        if dtype is not None and dtype not in IO_DTYPES:
            raise UsageError(f"unknown {flag} {dtype!r} (choices: {', '.join(IO_DTYPES)})")
    if options.optimize not in (None, "speed", "size"):
        raise UsageError(f"unknown --optimize {options.optimize!r} (choices: speed, size)")
    if options.hybrid not in (None, "integer", "dequantize"):
        raise UsageError(f"unknown --hybrid {options.hybrid!r} (choices: integer, dequantize)")
    if options.fallback not in (None, "none", "float"):
        raise UsageError(f"unknown --fallback {options.fallback!r} (choices: none, float)")
    mode = modes[options.quantize] if options.quantize is not None else None
    if target.integer_only and not options.integer_model and (mode is None or
                                                              not mode.integer):
        integer = [m.name for m in modes.values() if m.integer]
        raise UsageError(f"--target {target.name} emits integer kernels: add --quantize "
                         f"{'|'.join(integer)} and --calibration-data")
    if mode is None:
        if options.pipeline is None and (options.calibration_data is not None or
                                         options.io_dtype not in (None, "float32")):
            raise UsageError("--calibration-data and --io-dtype need --quantize int8 or int16x8")
        return
    if options.pipeline is None:
        for flag, value in quantize_flags(options).items():
            if value is not None and flag not in mode.flags:
                raise UsageError(f"{flag} does not apply to --quantize {mode.name}")
    if not mode.calibrated and not mode.optional_data and options.pipeline is None and (
            options.calibration_data is not None or options.calibration_cache):
        raise UsageError(f"--quantize {mode.name} needs no calibration data (weights only): "
                         "drop --calibration-data / --calibration-cache")
    if mode.calibrated and options.calibration_data is None and not (
            options.calibration_cache and os.path.isfile(options.calibration_cache)):
        raise UsageError(f"--quantize {mode.name} needs --calibration-data (representative "
                         "inputs) or an existing --calibration-cache for this model")


def with_qdq_mode(path: str | os.PathLike[str], options: CompileOptions) -> CompileOptions:
    """A model with its own QuantizeLinear/DequantizeLinear compiles in the ``qdq`` mode
    unless a pipeline is given; ``--quantize int8`` (calibrated ranges) is refused for it."""
    from microlith.frontend.importers_qdq import model_quantization

    if options.pipeline is not None or options.quantize not in (None, "int8"):
        return options
    kind = model_quantization(path)
    if kind is None:
        return options
    if options.quantize is None and options.calibration_data is None and \
            not options.calibration_cache and kind == "weight-only":
        return dataclasses.replace(options, quantize="qdq-dynamic")
    if options.quantize == "int8":
        raise UsageError(f"{os.fspath(path)}: the model is already quantized "
                         "(QuantizeLinear/DequantizeLinear): use --quantize qdq (the default "
                         "for such models); --calibration-data then fills only tensors the "
                         "model leaves unquantized")
    return dataclasses.replace(options, quantize="qdq")


def calibration_context(graph: Graph, options: CompileOptions) -> dict[str, Any]:
    """The ``PassContext.options`` the calibrate pass reads, data loaded and checked."""
    from microlith.calibration import CalibrationSet
    from microlith.calibration.data import (
        calibration_set_from_iterable,
        input_specs_from_graph,
        load_calibration_file,
    )

    data = options.calibration_data
    if data is not None and not isinstance(data, CalibrationSet):
        specs = input_specs_from_graph(graph)
        if isinstance(data, str | os.PathLike):
            data = load_calibration_file(data, specs)
        else:
            data = calibration_set_from_iterable(data, specs)
    context: dict[str, Any] = {"quiet": options.quiet}
    if data is not None:
        context["calibration_data"] = data
    if options.calibration_cache:
        context["calibration_cache"] = os.fspath(options.calibration_cache)
    return context


class Preflight(Instrument):
    """Before ``calibrate`` runs, the rest of the pipeline's legality
    (``microlith.passes.legality``): a model the target cannot take fails in seconds,
    not after calibration."""

    def __init__(self, passes: list[Pass]) -> None:
        self.passes = passes

    def before(self, pass_: Pass, graph: Graph) -> None:
        if pass_.name == "calibrate" and pass_ in self.passes:
            preflight(graph, self.passes[self.passes.index(pass_) + 1:])


def compile_onnx(path: ModelSource, options: CompileOptions | None = None) -> CompileResult:
    """Import ``path`` (an .onnx path, serialized bytes or an ``onnx.ModelProto``), run the
    pipeline and emit for ``options.target``: ``Converter.from_onnx(path, options)``."""
    from microlith.app.converter import Converter

    return Converter.from_onnx(path, options).compile()


def compile_graph(load: Callable[[], Graph], name: str, options: CompileOptions | None = None,
                  onnx_file: str | os.PathLike[str] | None = None) -> CompileResult:
    """The compile itself over any frontend: ``load()`` imports the model (timed as
    "import"), after every option has been checked; ``name`` is the model's file name.
    ``onnx_file``: the ONNX model file, for what reads it before the import (a Q/DQ model's
    ``qdq`` mode, ``--int16 auto``)."""
    options = options or CompileOptions()
    if onnx_file is not None:
        options = with_qdq_mode(onnx_file, options)
    target = get_target(options.target)
    check_quantize_options(options, target)
    emit_options = EmitOptions(options.c_prefix, name, strip=options.strip)
    if options.strip and target.name == "c":
        raise UsageError("--strip applies to flatbuffer targets (tflite, c-array), not c")
    if target.check_options is not None:  # before any work, naming the option
        target.check_options(emit_options)
    options = resolve_int16_auto(onnx_file, options)
    passes = build_pipeline(options, target)
    instruments: list[Instrument] = []
    stream = options.ir_stream or sys.stderr
    if options.print_ir_after_all or options.print_ir_after:
        instruments.append(PrintIR(() if options.print_ir_after_all else options.print_ir_after,
                                   stream))
    instruments.append(Preflight(passes))
    timing = Timing() if options.timing else None
    if timing is not None:
        instruments.append(timing)
    snapshot = FloatSnapshot() if options.keep_float_graph else None
    if snapshot is not None:
        instruments.append(snapshot)
    heartbeat = Heartbeat(interval=options.progress_interval, enabled=not options.quiet)
    instruments.append(PassProgress(heartbeat, len(passes)))
    manager = PassManager(passes, instruments=instruments, verify_each=options.verify_each)
    check_pass_names(options.print_ir_after, "--print-ir-after")
    with heartbeat:
        return run_stages(load, name, options, target, manager, emit_options, heartbeat,
                          snapshot, timing, file_size(onnx_file))


def check_pass_names(names: tuple[str, ...], flag: str) -> None:
    """Refuse unknown pass names given to an instrument option (a typo would print nothing)."""
    from microlith.pipeline import get_pass_class

    for name in names:
        try:
            get_pass_class(name)
        except UsageError as exc:
            raise UsageError(f"{flag}: {exc}") from None


def _new_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: 0o666 minus the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def check_size_limits(result: CompileResult, options: CompileOptions) -> None:
    """--ram-limit / --flash-limit: fail naming the largest tensors or constants."""
    sizes, plan = result.sizes, result.graph.meta.get("memory_plan")
    if options.ram_limit is not None and sizes["arena"] > options.ram_limit and plan:
        biggest = sorted(plan.sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        names = ", ".join(f"{name} ({size:,} B)" for name, size in biggest)
        raise UsageError(f"model needs {sizes['arena']:,} bytes of RAM (arena; lower bound "
                         f"{sizes['lower_bound']:,}) but --ram-limit is "
                         f"{options.ram_limit:,}; largest tensors: {names}")
    if options.flash_limit is not None and sizes["flash"] > options.flash_limit:
        consts = sorted(((v.name, v.type.nbytes) for v in result.graph.constants() if v.uses),
                        key=lambda kv: (-kv[1], kv[0]))[:3]
        names = ", ".join(f"{name} ({size:,} B)" for name, size in consts)
        raise UsageError(f"model needs about {sizes['flash']:,} bytes of flash (weights "
                         f"{sizes['weights']:,} + code estimate) but --flash-limit is "
                         f"{options.flash_limit:,}; largest constants: {names}")


def check_output_dir(path: str | os.PathLike[str]) -> None:
    """A directory output: its parent must exist; an existing path must be a directory."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{path}: parent directory does not exist")
    if os.path.lexists(path) and not os.path.isdir(path):
        raise UsageError(f"{path}: exists and is not a directory")


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP held back (delivered on exit) while a temporary is created or
    the outputs are renamed into place, so a handler never runs in between."""
    if not hasattr(signal, "pthread_sigmask") or \
            threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def write_directory(path: str | os.PathLike[str], files: dict[str, str]) -> None:
    """Write ``files`` into ``path``: a new directory appears whole (renamed into place);
    in an existing one every file is written to a temporary first and the temporaries are
    renamed over the old files only once all are written (no mix of old and new files
    after a failure or a signal)."""
    check_output_dir(path)
    path = os.fspath(path)
    if os.path.isdir(path):
        for name in sorted(files):  # refuse before replacing any of them
            check_replaceable(os.path.join(path, name))
        _replace_files(path, {name: text.encode() for name, text in files.items()})
        return
    parent = os.path.dirname(os.path.abspath(path))
    tmp: str | None = None
    try:
        with signals_deferred():
            tmp = tempfile.mkdtemp(prefix=".microlith-", dir=parent)
        for name, text in sorted(files.items()):
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        os.chmod(tmp, 0o777 & ~_umask())
        os.rename(tmp, path)
    except BaseException as exc:
        import shutil

        if tmp is not None and os.path.lexists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise


def _replace_files(directory: str, blobs: dict[str, bytes]) -> None:
    """Each blob to a temporary in ``directory``, then all renamed into place at once."""
    temps: dict[str, str] = {}
    try:
        for name, data in sorted(blobs.items()):
            temps[name] = _write_temporary(os.path.join(directory, name), data)
        with signals_deferred():
            for name in sorted(temps):  # again: a path may have changed meanwhile
                check_replaceable(os.path.join(directory, name))
            for name in sorted(temps):
                os.replace(temps.pop(name), os.path.join(directory, name))
    except BaseException as exc:
        for tmp in temps.values():
            if os.path.lexists(tmp):
                os.unlink(tmp)
        if isinstance(exc, OSError):
            raise UsageError(f"{directory}: cannot write ({exc.strerror or exc})") from None
        raise


def _write_temporary(path: str, data: bytes) -> str:
    """``data`` in a new ``.microlith-*`` file beside ``path`` with a new file's usual mode;
    removed again if anything (an error or a signal) interrupts the write."""
    tmp: str | None = None
    try:
        with signals_deferred():
            fd, tmp = tempfile.mkstemp(prefix=".microlith-",
                                       dir=os.path.dirname(os.path.abspath(path)))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, _new_file_mode())
        return tmp
    except BaseException:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def check_replaceable(path: str) -> None:
    """``path`` is new or a regular file: never replace a FIFO, device, socket or symlink."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path}: is a directory")
    if stat.S_ISLNK(mode):
        raise UsageError(f"{path}: is a symbolic link; refusing to replace it (give the "
                         "link's target or a new path)")
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: exists and is not a regular file (a FIFO, device or "
                         "socket); refusing to replace it")


def check_output_path(path: str | os.PathLike[str]) -> None:
    """Fail early (before any work) when the output cannot be written."""
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(directory):
        raise UsageError(f"{os.fspath(path)}: output directory does not exist")
    check_replaceable(os.fspath(path))
    if not os.access(directory, os.W_OK):
        raise UsageError(f"{os.fspath(path)}: output directory is not writable")


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write via a temporary file in the same directory and rename: never a partial file.

    The temporary file is created with mode 0o600; it gets the usual mode of a new
    file (0o666 minus the umask) before the rename, like a plain ``open()`` would.
    An ``OSError`` (disk full, ...) becomes a one-line ``UsageError`` naming ``path``;
    on any error, and on a signal the CLI turns into an exception, the temporary is
    removed.
    """
    check_output_path(path)
    path = os.fspath(path)
    tmp: str | None = None
    try:
        tmp = _write_temporary(path, data)
        with signals_deferred():
            check_replaceable(path)  # again: the path may have changed during the compile
            os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise
