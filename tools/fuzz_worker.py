"""The worker side of ``tools/fuzz.py``: one mutant run in a forked process, judged.

``run_worker`` runs ``microlith.app.cli.main`` on the mutant's argv with stdout/stderr
redirected to files, writes the verdict (``classify``) as JSON and, for a float compile
that succeeded, the differential check against onnxruntime (``differential``). It
never returns: the forked process ends with ``os._exit``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools import fuzz_mutate as mutate


@dataclass
class Mutant:
    index: int
    kind: str
    seed_name: str
    description: str
    files: dict[str, bytes]
    argv: list[str]
    differential: bool = False


def classify(status: int, stderr: str) -> tuple[str, str]:
    """The oracle on one CLI run: (outcome, first telling stderr line)."""
    lines = stderr.splitlines()
    first = next((line for line in lines if not line.startswith(("warning: ", "note: "))),
                 lines[0] if lines else "")
    if "Traceback (most recent call last)" in stderr:
        return "traceback", first
    if status == 1:
        return "internal", first
    if status not in (0, 2):
        return f"exit-{status}", first
    expected = 0 if status == 0 else 1
    extra = [line for line in lines if not line.startswith(("warning: ", "note: "))]
    if len(extra) != expected or (status == 2 and not lines[-1].startswith("error: ")):
        return "noise", first
    return ("ok" if status == 0 else "error"), first


def differential(mutant: Mutant, report: dict[str, object],
                 save: Callable[..., None]) -> None:
    """onnxruntime on the mutant vs LiteRT on our .tflite (see the module docstring)."""
    from microlith.app.driver import CompileOptions, compile_onnx
    from microlith.calibration.data import input_specs_from_graph
    from tools.runtimes import litert_interpreter, ort_session, to_physical

    result = compile_onnx("model.onnx", CompileOptions(warn=lambda message: None, quiet=True))
    if result.output != Path("out.tflite").read_bytes():
        report["diff"] = "nondeterministic"
        return
    specs = input_specs_from_graph(result.graph)
    feeds = {}
    for i, spec in enumerate(specs):
        x = mutate.random_input([mutant.index, i], spec.shape)
        feeds[spec.name] = x.astype(spec.dtype) if spec.dtype.kind == "f" else \
            np.clip(x * 3, -3, 3).astype(spec.dtype)
    save(phase="ort")
    try:
        session = ort_session("model.onnx")
        expected = dict(zip([o.name for o in session.get_outputs()],
                            session.run(None, feeds), strict=True))
    except Exception as exc:  # onnxruntime refuses the model
        report.update(diff="ort-refused", diff_detail=str(exc).splitlines()[0][:200])
        return
    if not all(np.isfinite(v).all() for v in expected.values() if v.dtype.kind == "f"):
        report["diff"] = "nonfinite"
        return
    if _near_overflow(feeds):
        report["diff"] = "near-overflow"
        return
    save(phase="litert")
    perms = result.graph.meta.get("io_perms", {})
    try:
        interp = litert_interpreter(result.output)
        for detail in interp.get_input_details():
            interp.set_tensor(detail["index"], to_physical(feeds[detail["name"]],
                                                           perms.get(detail["name"])))
        interp.invoke()
        got = {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
    except Exception as exc:
        report.update(diff="litert-refused", diff_detail=str(exc).splitlines()[0][:200])
        return
    for name, value in got.items():
        want = to_physical(expected[name], perms.get(name)) if name in expected else None
        if want is None or want.shape != value.shape:
            report.update(diff="mismatch", diff_detail=f"output {name!r} shape "
                          f"{None if want is None else want.shape} vs {value.shape}")
            return
        scale = max(1.0, float(np.abs(want).max(initial=0)))
        error = float(np.abs(value.astype(np.float64) - want).max(initial=0))
        if not error <= 1e-3 * scale:
            report.update(diff="mismatch", diff_detail=f"output {name!r} max error {error:.3g}"
                          f" (scale {scale:.3g})")
            return
    report["diff"] = "match"


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


NEAR_OVERFLOW = 1e30  # float32 overflows at 3.4e38: here the order of operations matters


def _near_overflow(feeds: dict[str, np.ndarray]) -> bool:
    """Whether an intermediate tensor of the mutant, in onnxruntime, is NaN/Inf or beyond
    ``NEAR_OVERFLOW``: then two correct evaluation orders may differ by overflowing."""
    import onnx

    from tools.runtimes import ort_session

    model = onnx.shape_inference.infer_shapes(onnx.load("model.onnx"))
    known = {v.name for v in model.graph.output}
    extra = [v for v in model.graph.value_info if v.name not in known and
             v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT]
    if not extra:
        return False
    model.graph.output.extend(extra)
    onnx.save(model, "probe.onnx")
    try:
        values = ort_session("probe.onnx").run([v.name for v in extra], feeds)
    except Exception:  # the probe model is not accepted: cannot tell
        return False
    return any(not np.isfinite(v).all() or np.abs(v).max(initial=0) > NEAR_OVERFLOW
               for v in values)


def run_worker(mutant: Mutant, directory: Path, result_path: Path,
               memory_bytes: int) -> None:
    """Runs in the forked worker; writes the result JSON; never returns."""
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        os.chdir(directory)
        for fd, name in ((1, "stdout.txt"), (2, "stderr.txt")):
            os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
        sys.stdout = open(1, "w", closefd=False, errors="backslashreplace")  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, errors="backslashreplace")  # noqa: SIM115
        warnings.resetwarnings()  # shown as in a user's process (not a test's recorder)
        warnings.showwarning = _show_warning
        report: dict[str, object] = {}

        def save(**fields: object) -> None:
            report.update(fields)
            result_path.write_text(json.dumps(report))

        from microlith.app import cli

        try:
            status = cli.main(mutant.argv)
        except MemoryError:
            status = -1
            save(outcome="memory")
        except BaseException:
            status = -1
            print(traceback.format_exc(), file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        stderr = Path("stderr.txt").read_text(errors="backslashreplace")
        if "outcome" not in report:
            outcome, detail = classify(status, stderr)
            if "MemoryError" in stderr:
                outcome = "memory"
            save(outcome=outcome, detail=detail[:300])
        if mutant.differential and report["outcome"] == "ok":
            differential(mutant, report, save)
        save(phase="done")
    except BaseException:  # the harness itself failed: say so rather than hang the parent
        try:
            result_path.write_text(json.dumps({"outcome": "harness",
                                               "detail": traceback.format_exc()[-600:]}))
        finally:
            os._exit(3)
    os._exit(0)
