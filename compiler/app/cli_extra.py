"""The ``run`` and ``report`` commands of the CLI (``cli.py`` parses, these do the work)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from microlith.diagnostics import UsageError


def check_report_path(path: str) -> None:
    from microlith.app.driver import check_output_path

    if os.path.splitext(path)[1].lower() not in (".html", ".htm"):
        raise UsageError(f"--report {path}: give an .html file")
    check_output_path(path)


def report_command(args: argparse.Namespace) -> int:
    """``microlith report FILE -o page.html``: a .tflite, a C output directory, or an .onnx
    compiled in memory with the given options (``microlith.app.report_sources``)."""
    from microlith.app.driver import write_atomic
    from microlith.app.inspect_model import MAX_TFLITE_BYTES, _is_tflite
    from microlith.app.report import render_html, report_from_tflite
    from microlith.app.report_sources import looks_like_onnx, report_from_c_dir
    from microlith.formats.tflite.flatbuffer import parse_model
    from microlith.frontend.input_files import read_bounded

    check_report_path(args.output)
    if not os.path.exists(args.file):
        raise UsageError(f"{args.file}: no such file or directory")
    compile_flags = [flag for flag, value in _compile_flags(args).items() if value]
    if os.path.isdir(args.file) or _is_tflite(args.file):
        if compile_flags:
            raise UsageError(f"{compile_flags[0]} applies to an .onnx model (it is compiled "
                             f"for the report); {args.file} is already compiled")
    if os.path.isdir(args.file):
        data = report_from_c_dir(args.file)
    elif _is_tflite(args.file):
        try:
            model = parse_model(read_bounded(args.file, "a .tflite file", MAX_TFLITE_BYTES))
        except ValueError as exc:
            raise UsageError(f"{args.file}: not a valid .tflite file ({exc})") from None
        data = report_from_tflite(model, args.file)
    elif looks_like_onnx(args.file):
        data = _report_onnx(args)
    else:
        raise UsageError(f"{args.file}: microlith report reads a .tflite, an .onnx or a "
                         "--target c output directory")
    write_atomic(args.output, render_html(data).encode())
    if not args.quiet:
        print(f"wrote {args.output}")
    return 0


def _compile_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {"--target": args.target != "tflite", "--pipeline": args.pipeline,
            "--input-shape": args.input_shape, "--optimize": args.optimize,
            "--quantize": args.quantize, "--calibration-data": args.calibration_data,
            "--calibration-method": args.calibration_method,
            "--calibration-cache": args.calibration_cache, "--io-dtype": args.io_dtype,
            "--fallback": args.fallback, "--input-dtype": args.input_dtype,
            "--output-dtype": args.output_dtype, "--keep-float": args.keep_float,
            "--per-tensor": args.per_tensor, "--int16": args.int16,
            "--strict-qdq": args.strict_qdq}


def _report_onnx(args: argparse.Namespace) -> Any:
    from microlith.app.cli_args import parse_input_shapes
    from microlith.app.converter import Converter
    from microlith.app.driver import CompileOptions
    from microlith.app.report import report_from_result

    options = CompileOptions(
        target=args.target, pipeline=args.pipeline, timing=True,
        input_shapes=parse_input_shapes(args.input_shape), quantize=args.quantize,
        calibration_data=args.calibration_data, calibration_method=args.calibration_method,
        calibration_cache=args.calibration_cache, io_dtype=args.io_dtype,
        fallback=args.fallback, quiet=args.quiet, keep_float=args.keep_float,
        input_dtype=args.input_dtype, output_dtype=args.output_dtype,
        per_tensor=args.per_tensor, int16=args.int16, strict_qdq=args.strict_qdq,
        optimize=args.optimize, keep_float_graph=True,
        progress_interval=args.progress_interval)
    result = Converter.from_onnx(args.file, options).compile()
    return report_from_result(result, os.path.basename(args.file), args.target,
                              quiet=args.quiet)


def run_command(args: argparse.Namespace) -> int:
    import numpy as np

    from microlith.app.driver import check_output_path, write_atomic
    from microlith.app.run_model import load_inputs, run_c_directory, run_tflite

    if args.output:
        if os.path.splitext(args.output)[1] not in (".npy", ".npz"):
            raise UsageError(f"-o {args.output}: give a .npy (output 0) or .npz (every output)")
        check_output_path(args.output)
    x, wheres = load_inputs(args.input)
    where = args.input[0] if len(args.input) == 1 else "--input"
    if isinstance(x, list) and len(x) == 1:
        x = x[0]
    if os.path.isdir(args.model):
        result = run_c_directory(args.model, x, args.on, where=where, wheres=wheres)
    else:
        if args.on != "host":
            raise UsageError(f"--on {args.on} runs C: compile with --target c and run the "
                             "output directory")
        result = run_tflite(args.model, x, args.runtime, where=where, wheres=wheres)
    for j, y in enumerate(result.outputs):
        print(f"output {j}: {y.dtype} {list(y.shape)} ({result.runtime})")
    for r, count in enumerate(result.instructions):
        print(f"inference {r}: {count:,} instructions in model_invoke()")
    if result.instructions:
        mean = sum(result.instructions) / len(result.instructions)
        print(f"{result.runtime.split(' (')[0]}: {mean:,.0f} instructions per inference (mean of "
              f"{len(result.instructions)})")
    if args.output:
        import io

        buffer = io.BytesIO()
        if args.output.endswith(".npz"):
            arrays: dict[str, Any] = {f"output{j}": y for j, y in enumerate(result.outputs)}
            np.savez(buffer, **arrays)
        else:
            np.save(buffer, result.outputs[0])
        write_atomic(args.output, buffer.getvalue())
    return 0
