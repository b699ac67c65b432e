"""The compile driver: ONNX file -> IR -> pipeline -> target bytes, written atomically.

The CLI and the Python API both go through ``compile_onnx``; nothing here prints
except the instruments the caller asked for. The target (``microlith.targets``) says
what to append to the pipeline and how to emit; the pipeline itself is built and
edited by ``microlith.app.pipeline_edits``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from microlith.app.pipeline_edits import (
    apply_flags,
    check_for_target,
    explicit_options,
    with_target_tail,
)
from microlith.diagnostics import UsageError, WarningSink, stderr_warning
from microlith.ir.core import Graph
from microlith.pipeline import Pass, PassContext, PassManager, parse_pipeline
from microlith.pipeline.manager import Instrument, PrintIR, Timing
from microlith.targets import EmitOptions, Target, all_targets, get_target

if TYPE_CHECKING:
    from microlith.frontend.onnx_import import ModelSource
    from microlith.passes.pipelines import QuantMode

CALIBRATION_METHODS = ("minmax", "percentile", "entropy", "mse")
IO_DTYPES = ("int8", "uint8", "float32")


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
    quiet: bool = False  # no progress bar
    c_prefix: str = "model"  # C target: names model.h/model.c and every symbol
    ram_limit: int | None = None  # C target: fail when the arena exceeds this many bytes
    flash_limit: int | None = None  # C target: fail when weights + code estimate exceed it
    strip: bool = False  # tflite / c-array: drop names, signatures, metadata (TFLite-Micro)
    integer_model: bool = False  # the input is already integer (an int8 .tflite)


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


def build_pipeline(options: CompileOptions, target: Target) -> list[Pass]:
    """The passes to run: the default for the mode or ``--pipeline``, flags applied as edits,
    the target's tail appended; refused unless it leaves what the target needs."""
    from microlith.passes.pipelines import mode_passes

    flags = {"--calibration-method": options.calibration_method,
             "--io-dtype": options.io_dtype, "--fallback": options.fallback}
    if options.pipeline is None:  # an explicit "" is the user's pipeline too (refused as empty)
        passes = apply_flags(mode_passes(options.quantize), flags, None)
    else:
        passes = apply_flags(parse_pipeline(options.pipeline), flags,
                             explicit_options(options.pipeline))
    passes = with_target_tail(passes, target)
    check_for_target(PassManager(passes), target)
    return passes


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
    if options.io_dtype is not None and options.io_dtype not in IO_DTYPES:
        raise UsageError(f"unknown --io-dtype {options.io_dtype!r} "
                         f"(choices: {', '.join(IO_DTYPES)})")
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
            raise UsageError("--calibration-data and --io-dtype need --quantize int8")
        return
    if options.pipeline is None:
        given = {"--calibration-method": options.calibration_method,
                 "--io-dtype": options.io_dtype, "--fallback": options.fallback}
        for flag, value in given.items():
            if value is not None and flag not in mode.flags:
                raise UsageError(f"{flag} does not apply to --quantize {mode.name}")
    if mode.calibrated and options.calibration_data is None and not (
            options.calibration_cache and os.path.isfile(options.calibration_cache)):
        raise UsageError(f"--quantize {mode.name} needs --calibration-data (representative "
                         "inputs) or an existing --calibration-cache for this model")


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


def compile_onnx(path: ModelSource, options: CompileOptions | None = None) -> CompileResult:
    """Import ``path`` (an .onnx path, serialized bytes or an ``onnx.ModelProto``), run the
    pipeline and emit for ``options.target``: ``Converter.from_onnx(path, options)``."""
    from microlith.app.converter import Converter

    return Converter.from_onnx(path, options).compile()


def compile_graph(load: Callable[[], Graph], name: str, options: CompileOptions | None = None
                  ) -> CompileResult:
    """The compile itself over any frontend: ``load()`` imports the model (timed as
    "import"), after every option has been checked; ``name`` is the model's file name."""
    options = options or CompileOptions()
    target = get_target(options.target)
    check_quantize_options(options, target)
    emit_options = EmitOptions(options.c_prefix, name, strip=options.strip)
    if options.strip and target.name == "c":
        raise UsageError("--strip applies to flatbuffer targets (tflite, c-array), not c")
    if target.check_options is not None:  # before any work, naming the option
        target.check_options(emit_options)
    passes = build_pipeline(options, target)
    instruments: list[Instrument] = []
    stream = options.ir_stream or sys.stderr
    if options.print_ir_after_all or options.print_ir_after:
        instruments.append(PrintIR(() if options.print_ir_after_all else options.print_ir_after,
                                   stream))
    timing = Timing() if options.timing else None
    if timing is not None:
        instruments.append(timing)
    manager = PassManager(passes, instruments=instruments, verify_each=options.verify_each)
    check_pass_names(options.print_ir_after, "--print-ir-after")
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    graph = load()
    seconds["import"] = time.perf_counter() - start
    ctx = PassContext(warn=options.warn)
    if options.quantize is not None or any(p.name == "calibrate" for p in passes):
        ctx.options.update(calibration_context(graph, options))
    start = time.perf_counter()
    manager.run(graph, ctx)
    seconds["passes"] = time.perf_counter() - start
    start = time.perf_counter()
    result = CompileResult(graph, manager.spec, b"", ctx.remarks, timing, seconds)
    emitted = target.emit(graph, emit_options)
    result.output, result.files, result.sizes = emitted.output, emitted.files, emitted.sizes
    if result.sizes:
        check_size_limits(result, options)
    seconds["emit"] = time.perf_counter() - start
    return result


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
