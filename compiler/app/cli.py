"""The ``microlith`` command line: ``compile``, ``passes``, ``inspect``, ``debug``.

Errors a user can cause print one line, ``error: <message>``, and exit with 2;
no traceback and no partial output file.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import NoReturn

from microlith.app.board.cpus import CPUS
from microlith.app.cli_args import (  # noqa: F401  (re-exported: the CLI's argument parsing)
    MAX_DIM,
    check_output_suffix,
    parse_bytes,
    parse_input_shape,
    parse_input_shapes,
)
from microlith.diagnostics import InternalError, MicrolithError, UsageError

EXIT_USAGE = 2
TERMINATING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                            if hasattr(signal, name))


class Terminated(BaseException):
    """A terminating signal, raised where the program is so that cleanup code runs (the
    temporary output files of ``write_atomic`` / ``write_directory``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """SIGTERM/SIGHUP raise ``Terminated`` and SIGINT ``KeyboardInterrupt`` (once: later
    signals are ignored while cleanup runs); signals the caller ignores stay ignored, and
    the previous handlers are restored on exit."""
    previous: dict[int, object] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)

    for sig in (signal.SIGINT, *TERMINATING_SIGNALS):
        try:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread: leave signals alone
            break
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every flag of ``parser`` and of its subcommands (extra arguments of a subcommand are
    reported by the top-level parser)."""
    found: list[str] = []
    for action in parser._actions:
        found += action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += _option_strings(child)
    return list(dict.fromkeys(found))


class Parser(argparse.ArgumentParser):
    """argparse with did-you-mean for mistyped flags and commands (one short message
    instead of the whole usage)."""

    def error(self, message: str) -> NoReturn:
        match = re.match(r"unrecognized arguments: (\S+)", message)
        if match and match.group(1).startswith("-"):
            flag = match.group(1).split("=")[0]
            known = _option_strings(self)
            close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            message = f"unrecognized argument {flag}{hint}"
        match = re.match(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)",
                         message)
        if match:
            choices = re.findall(r"'([^']*)'", match.group(3))
            close = difflib.get_close_matches(match.group(2), choices, n=1, cutoff=0.5)
            if close:
                message = f"{message} -- did you mean {close[0]!r}?"
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="microlith",
                                     description="Compile ONNX models for microcontrollers.")
    parser.add_argument("--version", action="version", version=f"microlith {_version()}")
    parser.add_argument("--traceback", action="store_true",
                        help="show Python tracebacks for internal errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)

    comp = sub.add_parser("compile", help="compile an ONNX model to a .tflite flatbuffer")
    comp.add_argument("model", help="input .onnx or .tflite file")
    comp.add_argument("-o", "--output", required=True,
                      help="output .tflite file (tflite), or directory (c, c-array)")
    comp.add_argument("--target", default="tflite", choices=_target_names(),
                      help="tflite: flatbuffer; c: standalone C99 (integer or float); c-array: the "
                      ".tflite as a C array + TFLite-Micro op resolver")
    comp.add_argument("--c-prefix", default="model", metavar="NAME",
                      help="C target: file and symbol prefix (default: model)")
    comp.add_argument("--ram-limit", type=parse_bytes, metavar="BYTES",
                      help="C target: fail if the arena needs more (e.g. 64K)")
    comp.add_argument("--flash-limit", type=parse_bytes, metavar="BYTES",
                      help="C target: fail if weights + code estimate need more (e.g. 1M)")
    comp.add_argument("--optimize", choices=["speed", "size"], default=None,
                      help="C target: speed (Cortex-M DSP convolutions with arena scratch, "
                      "the default) or size (no scratch, less code)")
    comp.add_argument("--hybrid", choices=["integer", "dequantize"], default=None,
                      help="C target, --quantize dynamic: integer (quantize each layer's "
                      "input, int8 dot product; the default) or dequantize (int8 weights "
                      "widened to float in the kernel, no scratch)")
    comp.add_argument("--report", metavar="HTML",
                      help="also write a self-contained HTML report (ops, MACs, arena over "
                      "time, flash, pass timings)")
    comp.add_argument("--strip", action="store_true",
                      help="tflite/c-array: drop tensor names, signatures and metadata "
                      "(TFLite-Micro does not read them; outputs unchanged)")
    comp.add_argument("--pipeline", help="pass pipeline overriding the default "
                      "(see `microlith passes`)")
    comp.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,..",
                      help="pin an input's shape (repeatable)")
    comp.add_argument("--print-ir-after-all", action="store_true",
                      help="print the IR after every pass (stderr)")
    comp.add_argument("--print-ir-after", action="append", default=[], metavar="PASS",
                      help="print the IR after the named pass (repeatable)")
    comp.add_argument("--verify-each", action="store_true", help="verify the IR after each pass")
    comp.add_argument("--remarks", action="store_true",
                      help="list what each pass rewrote or refused, and why")
    comp.add_argument("-v", "--verbose", action="store_true", help="per-pass timing and sizes")
    comp.add_argument("-q", "--quiet", action="store_true",
                      help="print nothing on success (and no progress bar)")
    comp.add_argument("--progress-interval", type=_seconds, default=5.0, metavar="SECONDS",
                      help="a progress line every SECONDS while a stage (import, a pass, "
                      "emit) runs longer than that (default 5)")
    _add_quantize_arguments(comp)

    sub.add_parser("passes", help="list every pass with its options and the default pipeline")

    insp = sub.add_parser("inspect", help="summarize an .onnx or .tflite file")
    insp.add_argument("file")
    insp.add_argument("--tensors", action="store_true", help="list every tensor")
    insp.add_argument("--json", action="store_true",
                      help="print one JSON document (every op with its MACs; --tensors adds "
                      "the tensors)")
    insp.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,..",
                      help="pin a dynamic input's shape of an .onnx file (repeatable)")

    rep = sub.add_parser("report", help="write the HTML report of a .tflite, a --target c "
                         "output directory, or an .onnx (compiled in memory)")
    rep.add_argument("file", help="a .tflite file, a C output directory or an .onnx file")
    rep.add_argument("-o", "--output", required=True, metavar="HTML", help="the .html to write")
    rep.add_argument("--target", default="tflite", choices=_target_names(),
                     help=".onnx: the target to compile for (default: tflite)")
    rep.add_argument("--pipeline", help=".onnx: pass pipeline overriding the default")
    rep.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,..",
                     help=".onnx: pin an input's shape (repeatable)")
    rep.add_argument("--optimize", choices=["speed", "size"], default=None,
                     help=".onnx, C target: speed or size kernels")
    rep.add_argument("-q", "--quiet", action="store_true", help="no progress")
    rep.add_argument("--progress-interval", type=_seconds, default=5.0, metavar="SECONDS",
                     help=".onnx: a progress line every SECONDS of a long stage (default 5)")
    _add_quantize_arguments(rep)

    run = sub.add_parser("run", help="run a compiled model (C output directory or .tflite) on "
                         "inputs from .npy files or an .npz")
    run.add_argument("model", help="a --target c output directory or a .tflite file")
    run.add_argument("--input", required=True, action="append", metavar="[NAME=]X.npy",
                     help="one sample in the input's shape, or samples stacked on axis 0 "
                     "(NCHW is transposed to the model's NHWC; float is quantized); one per "
                     "model input, in order or as NAME=X.npy, or one .npz keyed by input name")
    run.add_argument("--on", choices=["host", *CPUS], default="host",
                     help="C directory: build with gcc and run here (host), or build for a "
                     "Cortex-M (cortex-m4: qemu mps2-an386, cortex-m7: mps2-an500, "
                     "cortex-m3: mps2-an385, cortex-m33: mps2-an505, cortex-m55: "
                     "mps3-an547) and run under qemu, counting instructions")
    run.add_argument("--runtime", choices=["auto", "tflite-micro", "litert"], default="auto",
                     help=".tflite: TFLite-Micro when installed, else LiteRT (auto)")
    run.add_argument("-o", "--output", metavar="Y.npy",
                     help="write output 0 (.npy) or every output (.npz)")

    dbg = sub.add_parser("debug", help="per-layer float vs int8 error table: where quantization "
                         "loses accuracy")
    dbg.add_argument("model", help="input .onnx file")
    dbg.add_argument("--calibration-data", metavar="PATH", required=True,
                     help="representative inputs, as for compile --quantize int8")
    dbg.add_argument("--data", metavar="PATH",
                     help="evaluation inputs in the same format (default: the calibration "
                     "data); an .npz may add a 'labels' array of integer class ids, one per "
                     "sample, for top-1 accuracy")
    dbg.add_argument("--calibration-method", default="minmax",
                     choices=["minmax", "percentile", "entropy", "mse"],
                     help="how activation ranges are chosen (default: minmax)")
    dbg.add_argument("--quantize", choices=["int8", "int16x8"], default="int8",
                     help="the quantized model to compare with float (default: int8)")
    dbg.add_argument("--fallback", choices=["none", "float"], default="none",
                     help="float: keep ops without int8 kernels in float (not listed)")
    dbg.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,..",
                     help="pin an input's shape (repeatable)")
    dbg.add_argument("--top", type=int, default=20, metavar="N",
                     help="show the N worst layers (default 20; 0: all)")
    dbg.add_argument("--samples", type=int, default=0, metavar="N",
                     help="evaluate the first N samples only (default 0: all)")
    dbg.add_argument("--json", metavar="PATH", help="also write the whole table as JSON")
    dbg.add_argument("--int16", action="store_true",
                     help="also rank the layers to make 16x8 (output SQNR gain per byte) and "
                     "print the --int16 list that recovers the most")
    dbg.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return parser


def _add_quantize_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    group = parser.add_argument_group("quantization (TFLite post-training modes)")
    if not required:
        from microlith.app.driver import quantize_modes

        modes = quantize_modes()
        group.add_argument("--quantize", choices=list(modes),
                           help="; ".join(f"{m.name}: {m.summary}" for m in modes.values()))
    group.add_argument("--calibration-data", metavar="PATH", required=required,
                       help="representative inputs: .npz (one array per input, first axis = "
                       "samples, ONNX layout), .npy, or a directory of .npy files")
    group.add_argument("--calibration-method", default=None,
                       choices=["minmax", "percentile", "entropy", "mse"],
                       help="how activation ranges are chosen (default: minmax; with "
                       "--pipeline: sets calibrate{method=...})")
    group.add_argument("--calibration-cache", metavar="JSON",
                       help="reuse/store calibrated ranges so re-quantizing skips the data")
    group.add_argument("--io-dtype", choices=["int8", "uint8", "int16", "float32"],
                       help="model input/output type (default int8 with --quantize int8, "
                       "int16 with int16x8; float32 adds QUANTIZE/DEQUANTIZE at the edges)")
    group.add_argument("--fallback", choices=["none", "float"], default=None,
                       help="float: keep ops without int8 kernels in float (listed); "
                       "none: refuse them (default)")
    dtypes = ["int8", "uint8", "int16", "float32"]
    group.add_argument("--input-dtype", choices=dtypes,
                       help="model input type (default: --io-dtype)")
    group.add_argument("--output-dtype", choices=dtypes,
                       help="model output type (default: --io-dtype)")
    group.add_argument("--keep-float", metavar="NODE_OR_OPTYPE,...", type=_names,
                       help="keep these nodes (names or ONNX op types) in float "
                       "(.tflite only: the C target is integer-only)")
    group.add_argument("--per-tensor", action="store_const", const=True, default=None,
                       help="one weight scale per tensor instead of per output channel")
    group.add_argument("--int16", metavar="NODE_OR_OPTYPE,...", type=_names,
                       help="--quantize int8: make these layers 16x8 (int16 activations), "
                       "with requantizing QUANTIZE ops at the int8/int16 borders")
    if not required:
        group.add_argument("--strict-qdq", action="store_true", default=None,
                           help="a Q/DQ model (--quantize qdq): refuse any change of its scales "
                           "that TFLite's int8 spec needs, instead of remarking it")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _names(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if not items:
        raise argparse.ArgumentTypeError("expected NAME[,NAME...]")
    return items


def _target_names() -> list[str]:
    from microlith.targets import all_targets

    return list(all_targets())


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("microlith")
    except Exception:  # not installed (running from a checkout)
        return "dev"


def cmd_compile(args: argparse.Namespace) -> int:
    from microlith.app.converter import Converter
    from microlith.app.driver import (
        CompileOptions,
        check_output_dir,
        check_output_path,
        directory_targets,
        write_atomic,
        write_directory,
    )

    directory = args.target in directory_targets()
    check_output_suffix(args.output, args.target, directory)
    if args.report:
        from microlith.app.cli_extra import check_report_path

        check_report_path(args.report)
    if directory:
        check_output_dir(args.output)
    else:
        check_output_path(args.output)
    options = CompileOptions(
        target=args.target, pipeline=args.pipeline,
        input_shapes=parse_input_shapes(args.input_shape),
        verify_each=args.verify_each, print_ir_after_all=args.print_ir_after_all,
        print_ir_after=tuple(args.print_ir_after), timing=args.verbose or bool(args.report),
        quantize=args.quantize, calibration_data=args.calibration_data,
        calibration_method=args.calibration_method, calibration_cache=args.calibration_cache,
        io_dtype=args.io_dtype, fallback=args.fallback, quiet=args.quiet,
        keep_float=args.keep_float, input_dtype=args.input_dtype,
        output_dtype=args.output_dtype, per_tensor=args.per_tensor, int16=args.int16,
        strict_qdq=args.strict_qdq, c_prefix=args.c_prefix, ram_limit=args.ram_limit,
        flash_limit=args.flash_limit, optimize=args.optimize, hybrid=args.hybrid,
        strip=args.strip, keep_float_graph=bool(args.report),
        progress_interval=args.progress_interval)
    from microlith.app.inspect_model import _is_tflite

    if _is_tflite(args.model):
        result = Converter.from_tflite(args.model, options).compile()
    else:
        result = Converter.from_onnx(args.model, options).compile()
    if directory:
        write_directory(args.output, result.files)
    else:
        write_atomic(args.output, result.output)
    if args.report:
        from microlith.app.report import render_html, report_from_result

        page = render_html(report_from_result(result, os.path.basename(args.model), args.target,
                                              quiet=args.quiet))
        write_atomic(args.report, page.encode())
    fallback = result.graph.meta.get("float_fallback") or []
    if fallback and not args.quiet:
        print(f"note: kept in float: {', '.join(fallback)}",
              file=sys.stderr)
    if args.remarks:
        for pass_name, node, message in result.remarks:
            print(f"remark: [{pass_name}] {node}: {message}", file=sys.stderr)
    if args.verbose and result.timing is not None:  # (--report alone records it too)
        print(f"pipeline: {result.pipeline}", file=sys.stderr)
        print(result.timing.report(), file=sys.stderr)
        print("seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in result.seconds.items()),
              file=sys.stderr)
    if not args.quiet and args.target == "c":
        sizes = result.sizes
        total = sum(result.seconds.values())
        print(f"wrote {args.output}/ ({', '.join(sorted(result.files))}, {total:.2f} s)")
        print(f"flash: ~{sizes['flash']:,} bytes (weights and tables {sizes['weights']:,} + "
              f"code estimate); RAM: {sizes['arena']:,} bytes arena (liveness lower bound "
              f"{sizes['lower_bound']:,}; kernel scratch {sizes.get('scratch', 0):,})")
    elif not args.quiet:
        from microlith.formats.tflite.flatbuffer import parse_model

        total = sum(result.seconds.values())
        ops = len(parse_model(result.output).operators)  # of the file, not IR nodes
        print(f"wrote {args.output} ({len(result.output):,} bytes, {ops} ops, {total:.2f} s)")
    return 0


def cmd_passes(args: argparse.Namespace) -> int:
    import dataclasses
    import typing

    from microlith.passes.pipelines import PIPELINES
    from microlith.pipeline.pass_base import all_passes
    from microlith.pipeline.spec import format_option

    for name, cls in all_passes().items():
        print(f"{name:<18} {cls.summary}")
        hints = typing.get_type_hints(cls)
        for f in cls.option_fields():
            hint = hints[f.name]
            kind = ("|".join(map(str, typing.get_args(hint))) if typing.get_origin(hint)
                    is typing.Literal else getattr(hint, "__name__", str(hint)))
            default = format_option(f.default) if f.default is not dataclasses.MISSING else "-"
            print(f"{'':<18}   {f.name.replace('_', '-')}: {kind} = {default}")
    print()
    for mode, spec in PIPELINES.items():
        print(f"default pipeline ({mode}):\n  {spec}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from microlith.app.inspect_model import inspect_file

    shapes = parse_input_shapes(args.input_shape)
    print(inspect_file(args.file, list_tensors=args.tensors, input_shapes=shapes,
                       as_json=args.json), end="")
    return 0


def cmd_debug(args: argparse.Namespace) -> int:
    import json

    from microlith.app.driver import check_output_path, write_atomic
    from microlith.app.quant_debug import DebugOptions, debug_quantization

    if args.top < 0 or args.samples < 0:
        raise UsageError("--top and --samples must be >= 0 (0: all)")
    if args.json:
        check_output_path(args.json)
    options = DebugOptions(
        calibration_data=args.calibration_data, data=args.data,
        calibration_method=args.calibration_method, fallback=args.fallback,
        quantize=args.quantize, input_shapes=parse_input_shapes(args.input_shape),
        samples=args.samples, quiet=args.quiet)
    report = debug_quantization(args.model, options)
    print(report.table(args.top), end="")
    print()
    print(report.summary(), end="")
    if args.int16:
        from microlith.app.int16_advisor import advise

        print()
        print(advise(args.model, args.calibration_data,
                     calibration_method=args.calibration_method,
                     input_shapes=parse_input_shapes(args.input_shape)).table(), end="")
    if args.json:
        payload = {"model": args.model, **report.as_json()}
        write_atomic(args.json, (json.dumps(payload, indent=2) + "\n").encode())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from microlith.app.cli_extra import run_command

    return run_command(args)


def cmd_report(args: argparse.Namespace) -> int:
    from microlith.app.cli_extra import report_command

    return report_command(args)


COMMANDS = {"compile": cmd_compile, "passes": cmd_passes, "inspect": cmd_inspect,
            "debug": cmd_debug, "run": cmd_run, "report": cmd_report}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with signals_as_exceptions():
            return COMMANDS[args.command](args)
    except MicrolithError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if getattr(args, "verbose", False) and exc.context:  # -v: the IR around the node
            print(exc.context, file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"error: terminated by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except Exception as exc:  # InternalError and any other: a bug, never the user's input
        if args.traceback:
            raise
        where = getattr(args, "model", None) or getattr(args, "file", "")
        what = str(exc) if isinstance(exc, InternalError) else f"{type(exc).__name__}: {exc}"
        print(f"error: internal error while processing {where}: {what} (rerun with "
              "--traceback and report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
