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
    from microlith.app.driver import write_atomic
    from microlith.app.inspect_model import MAX_TFLITE_BYTES, _is_tflite
    from microlith.app.report import render_html, report_from_tflite
    from microlith.formats.tflite.flatbuffer import parse_model
    from microlith.frontend.input_files import read_bounded

    check_report_path(args.output)
    if os.path.isdir(args.file) or not _is_tflite(args.file):
        raise UsageError(f"{args.file}: microlith report reads a .tflite; for an .onnx or the C "
                         "target use compile ... --report report.html")
    try:
        model = parse_model(read_bounded(args.file, "a .tflite file", MAX_TFLITE_BYTES))
    except ValueError as exc:
        raise UsageError(f"{args.file}: not a valid .tflite file ({exc})") from None
    write_atomic(args.output, render_html(report_from_tflite(model, args.file)).encode())
    print(f"wrote {args.output}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    import numpy as np

    from microlith.app.driver import check_output_path, write_atomic
    from microlith.app.run_model import load_input, run_c_directory, run_tflite

    if args.output:
        if os.path.splitext(args.output)[1] not in (".npy", ".npz"):
            raise UsageError(f"-o {args.output}: give a .npy (output 0) or .npz (every output)")
        check_output_path(args.output)
    x = load_input(args.input)
    if os.path.isdir(args.model):
        result = run_c_directory(args.model, x, args.on, where=args.input)
    else:
        if args.on != "host":
            raise UsageError(f"--on {args.on} runs C: compile with --target c and run the "
                             "output directory")
        result = run_tflite(args.model, x, args.runtime, where=args.input)
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
