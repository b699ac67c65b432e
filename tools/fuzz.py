"""Fuzz microlith's input handling with mutated ONNX models, .tflite files and C outputs.

    python tools/fuzz.py --mutants 20000 --seed 0 --jobs 2            # the long run
    python tools/fuzz.py --mutants 300 --seed 0 --jobs 2              # the smoke run
    python tools/fuzz.py --mutants 2000 --save out/fuzz               # keep bad mutants

Mutants (``tools/fuzz_mutate.py``) are byte-level and field-level changes of the zoo
models (``tests/zoo/*.onnx``, run through ``compile`` -- float, int8, C -- or
``inspect``), of our ``.tflite`` outputs (``inspect``) and of the
``*_memory_plan.json`` of C output folders (``inspect OUTDIR``). Mutant ``i`` of seed
``s`` depends only on ``(s, i)``, so a run is deterministic and a mutant can be rebuilt.

Each mutant runs ``microlith.app.cli.main`` in a forked worker (``tools/fuzz_worker.py``;
in a fresh directory, with ``RLIMIT_AS`` capping its memory and a wall-clock timeout,
``--jobs`` at a time). The oracle: exit 0
with only ``warning:``/``note:`` lines on stderr (``ok``), or exit 2 with one
``error:`` line last (``error``); anything else is bad: ``internal`` (exit 1),
``traceback``, ``noise`` (other stderr lines), ``hang``, ``memory``, ``signal``,
``exit-N``. For a float compile that succeeded, the model also runs in onnxruntime and
our ``.tflite`` in LiteRT (``tools/runtimes.py``) on random inputs: ``match``;
``mismatch``, ``litert-refused``, ``litert-crash`` and ``nondeterministic`` (the API
and the CLI wrote different bytes) are bad; ``ort-refused``, ``ort-crash``,
``nonfinite`` (onnxruntime's output holds NaN/Inf) and ``near-overflow`` (an
intermediate tensor is NaN/Inf or beyond 1e30 in onnxruntime, where float32 results
depend on the order of operations) are only counted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tools import fuzz_mutate as mutate  # noqa: E402
from tools.fuzz_worker import Mutant, run_worker  # noqa: E402

ZOO = REPO / "tests" / "zoo"
GOOD = {"ok", "error"}
DIFF_BAD = {"mismatch", "litert-refused", "litert-crash", "nondeterministic"}


@dataclass
class Corpus:
    """What mutants start from: model bytes, our .tflite outputs, C memory plans."""

    onnx: dict[str, bytes]
    tflite: dict[str, bytes]
    plans: dict[str, dict[str, str]]
    calibration: dict[str, bytes]


@dataclass
class Result:
    mutant: Mutant
    outcome: str
    detail: str
    diff: str | None = None
    seconds: float = 0.0

    @property
    def bad(self) -> bool:
        return self.outcome not in GOOD or self.diff in DIFF_BAD


def build_corpus(zoo: Path = ZOO) -> Corpus:
    """Compile the zoo once (float .tflite for each model, int8 C for two of them)."""
    from microlith.app.driver import CompileOptions, compile_onnx
    from microlith.calibration.data import input_specs_from_graph

    corpus = Corpus({}, {}, {}, {})
    quiet = {"warn": lambda message: None, "quiet": True}
    for path in sorted(zoo.glob("*.onnx")):
        name = path.stem
        corpus.onnx[name] = path.read_bytes()
        result = compile_onnx(path, CompileOptions(**quiet))  # type: ignore[arg-type]
        corpus.tflite[name] = result.output
        specs = input_specs_from_graph(result.graph)
        buffer = io.BytesIO()
        np.savez(buffer, **{s.name: mutate.random_input([0, i], (8, *s.sample_shape))
                            for i, s in enumerate(specs)})
        corpus.calibration[name] = buffer.getvalue()
        if name in ("lenet", "mlp_sigmoid"):
            data = {s.name: mutate.random_input([1, i], (8, *s.sample_shape))
                    for i, s in enumerate(specs)}
            c = compile_onnx(path, CompileOptions(target="c", quantize="int8",
                                                  calibration_data=[data], **quiet))
            corpus.plans[name] = {k: v for k, v in c.files.items()
                                  if k.endswith((".json", ".h"))}
    return corpus


def make_mutant(corpus: Corpus, seed: int, index: int) -> Mutant:
    """Mutant ``index`` of run ``seed`` (a pure function of both)."""
    rng = random.Random(f"microlith-fuzz:{seed}:{index}")
    kind = rng.choices(["onnx", "tflite", "cdir"], weights=[6, 3, 1])[0]
    if kind == "onnx":
        name = rng.choice(sorted(corpus.onnx))
        data, what = mutate.mutate_onnx(rng, corpus.onnx[name])
        files = {"model.onnx": data, "calib.npz": corpus.calibration[name]}
        roll = rng.random()
        if roll < 0.65:
            return Mutant(index, kind, name, what, files,
                          ["compile", "model.onnx", "-o", "out.tflite"], differential=True)
        if roll < 0.8:
            argv = ["compile", "model.onnx", "-o", "out.tflite", "--quantize", "int8",
                    "--calibration-data", "calib.npz"]
        elif roll < 0.87:
            argv = ["compile", "model.onnx", "--target", "c", "-o", "out", "--quantize",
                    "int8", "--calibration-data", "calib.npz"]
        else:
            argv = ["inspect", "model.onnx"]
        return Mutant(index, kind, name, what, files, argv)
    if kind == "tflite":
        name = rng.choice(sorted(corpus.tflite))
        data, what = mutate.mutate_tflite(rng, corpus.tflite[name])
        argv = ["inspect", "model.tflite"] + (["--tensors"] if rng.random() < 0.5 else [])
        return Mutant(index, kind, name, what, {"model.tflite": data}, argv)
    name = rng.choice(sorted(corpus.plans))
    files = {f"out/{k}": v.encode() for k, v in corpus.plans[name].items()}
    plan = next(k for k in files if k.endswith("_memory_plan.json"))
    text, what = mutate.mutate_plan(rng, files[plan].decode())
    files[plan] = text.encode("utf-8", "surrogateescape")
    return Mutant(index, kind, name, what, files, ["inspect", "out"])


# --------------------------------------------------------------------------- the worker


def _prepare(root: Path, mutant: Mutant) -> Path:
    directory = root / f"m{mutant.index}"
    for rel, data in mutant.files.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (directory / "weights.bin").write_bytes(bytes(range(256)) * 2048)
    (directory / "link.bin").symlink_to("../outside.bin")
    os.mkfifo(directory / "fifo.bin")
    return directory


def _vm_bytes() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _finish(mutant: Mutant, status: int, result_path: Path, seconds: float) -> Result:
    data = json.loads(result_path.read_text()) if result_path.exists() else {}
    if "outcome" not in data:
        how = f"signal-{signal.Signals(os.WTERMSIG(status)).name}" \
            if os.WIFSIGNALED(status) else f"died-{os.WEXITSTATUS(status)}"
        return Result(mutant, "memory" if how == "signal-SIGKILL" else how, "", None, seconds)
    diff = data.get("diff")
    if data.get("phase") in ("ort", "litert") and diff is None:  # died in a runtime
        diff = f"{data['phase']}-crash"
    detail = data.get("detail", "")
    if data.get("diff_detail"):
        detail = f"{detail} | {data['diff_detail']}"
    return Result(mutant, data["outcome"], detail, diff, seconds)


def run_mutants(mutants: Iterator[Mutant], root: Path, jobs: int = 2, timeout: float = 30.0,
                memory_mb: int = 2048) -> Iterator[Result]:
    """Each mutant in a forked worker, ``jobs`` at a time (see the module docstring)."""
    memory = _vm_bytes() + memory_mb * 2**20
    (root / "outside.bin").write_bytes(bytes(1024 * 1024))
    running: dict[int, tuple[Mutant, float, Path]] = {}
    pending = iter(mutants)
    exhausted = False
    while running or not exhausted:
        while not exhausted and len(running) < jobs:
            mutant = next(pending, None)
            if mutant is None:
                exhausted = True
                break
            directory = _prepare(root, mutant)
            result_path = directory / "result.json"
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                run_worker(mutant, directory, result_path, memory)
            running[pid] = (mutant, time.monotonic(), result_path)
        if not running:
            break
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            mutant, start, result_path = running.pop(pid)
            yield _finish(mutant, status, result_path, time.monotonic() - start)
            continue
        now = time.monotonic()
        for pid, (mutant, start, _) in list(running.items()):
            if now - start > timeout:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                del running[pid]
                yield Result(mutant, "hang", f"no result after {timeout:.0f} s", None,
                             now - start)
        time.sleep(0.005)


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bad(self) -> list[Result]:
        return [r for r in self.results if r.bad]

    def text(self) -> str:
        lines = [f"{len(self.results)} mutants in {self.seconds:.1f} s"]
        outcomes = Counter(r.outcome for r in self.results)
        lines += [f"  {name:<18} {count}" for name, count in sorted(outcomes.items())]
        diffs = Counter(r.diff for r in self.results if r.diff is not None)
        lines.append("differential (float compiles that succeeded):")
        lines += [f"  {name:<18} {count}" for name, count in sorted(diffs.items())]
        kinds = Counter(r.mutant.kind for r in self.results)
        lines.append("mutants by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        lines.append(f"bad outcomes: {len(self.bad)}")
        for r in self.bad:
            lines.append(f"  #{r.mutant.index} [{r.outcome}{'/' + r.diff if r.diff else ''}] "
                         f"{r.mutant.kind}:{r.mutant.seed_name} ({r.mutant.description}) "
                         f"microlith {' '.join(r.mutant.argv)}: {r.detail}")
        return "\n".join(lines)


def run_fuzz(mutants: int, seed: int = 0, jobs: int = 2, timeout: float = 30.0,
             memory_mb: int = 2048, work: Path | None = None, save: Path | None = None,
             corpus: Corpus | None = None, only: list[int] | None = None) -> Report:
    """Build the corpus, run mutants ``0..mutants-1`` (or just those in ``only``), return
    the report; bad mutants (all of ``only``) are copied to ``save`` (one folder each,
    with ``argv.json``) when given."""
    import onnxruntime  # noqa: F401  (imported once here, not in every worker)
    from ai_edge_litert import interpreter  # noqa: F401

    start = time.monotonic()
    corpus = corpus or build_corpus()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="microlith-fuzz-", dir=work) as root:
        indices = only if only is not None else range(mutants)
        stream = (make_mutant(corpus, seed, i) for i in indices)
        for result in run_mutants(stream, Path(root), jobs, timeout, memory_mb):
            report.results.append(result)
            if (result.bad or only is not None) and save is not None:
                _save(save, result)
    report.results.sort(key=lambda r: r.mutant.index)
    report.seconds = time.monotonic() - start
    return report


def _save(where: Path, result: Result) -> None:
    folder = where / f"m{result.mutant.index}"
    for rel, data in result.mutant.files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (folder / "argv.json").write_text(json.dumps({
        "argv": result.mutant.argv, "outcome": result.outcome, "diff": result.diff,
        "mutation": result.mutant.description, "detail": result.detail}, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mutants", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per mutant")
    parser.add_argument("--memory-mb", type=int, default=2048,
                        help="address space a worker may add (RLIMIT_AS)")
    parser.add_argument("--save", type=Path, help="copy bad mutants here")
    parser.add_argument("--only", help="comma-separated mutant indices to rebuild and run "
                        "(with --save: each one is saved)")
    args = parser.parse_args(argv)
    only = [int(i) for i in args.only.split(",")] if args.only else None
    report = run_fuzz(args.mutants, args.seed, args.jobs, args.timeout, args.memory_mb,
                      save=args.save, only=only)
    print(report.text())
    return 1 if report.bad else 0


if __name__ == "__main__":
    sys.exit(main())
