"""The fuzz harness (``tools/fuzz.py``): its oracle catches what it must, mutants are
deterministic, and the bounded smoke run (500 mutants, seed 0) has no bad outcome.

The long run is ``python tools/fuzz.py --mutants 20000 --seed 0 --jobs 2``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tools import fuzz, fuzz_worker


@pytest.fixture(scope="module")
def corpus() -> fuzz.Corpus:
    return fuzz.build_corpus()


def test_mutants_depend_only_on_seed_and_index(corpus: fuzz.Corpus) -> None:
    first = [fuzz.make_mutant(corpus, 7, i) for i in range(40)]
    again = [fuzz.make_mutant(corpus, 7, i) for i in reversed(range(40))][::-1]
    assert [(m.description, m.files, m.argv) for m in first] == \
        [(m.description, m.files, m.argv) for m in again]
    assert {m.kind for m in first} == {"onnx", "tflite", "cdir"}
    other = [fuzz.make_mutant(corpus, 8, i) for i in range(40)]
    assert [m.files for m in other] != [m.files for m in first]


@pytest.mark.parametrize("status, stderr, outcome", [
    (0, "", "ok"),
    (0, "warning: m.onnx: constant 'w' contains 1 NaN/Inf value(s)\n", "ok"),
    (2, "error: m.onnx: no such file\n", "error"),
    (2, "warning: x\nerror: m.onnx: bad\n", "error"),
    (2, "error: one\nerror: two\n", "noise"),
    (2, "/src/passes/x.py:3: RuntimeWarning: divide by zero\nerror: bad\n", "noise"),
    (0, "/src/passes/x.py:3: RuntimeWarning: overflow\n", "noise"),
    (1, "error: internal error while processing m.onnx: IndexError\n", "internal"),
    (2, "Traceback (most recent call last):\n  ...\n", "traceback"),
    (3, "", "exit-3"),
])
def test_oracle(status: int, stderr: str, outcome: str) -> None:
    assert fuzz_worker.classify(status, stderr)[0] == outcome


def _broken_inspect(how: str):
    def inspect_file(path: str, **kwargs: object) -> str:
        if how == "internal":
            raise IndexError("tensor index out of range")
        if how == "hang":
            time.sleep(60)
        if how == "memory":
            return str(np.ones(1 << 33, np.uint8).sum())  # 8 GiB: over the worker's cap
        if how == "noise":
            import warnings

            warnings.warn("overflow encountered", RuntimeWarning, stacklevel=1)
        return "fine\n"
    return inspect_file


@pytest.mark.parametrize("how", ["internal", "hang", "memory", "noise"])
def test_harness_reports_bugs_it_is_shown(corpus: fuzz.Corpus, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """The forked workers inherit a deliberately broken ``inspect``: each kind of bad
    outcome must be reported as bad (the oracle is not vacuous)."""
    from microlith.app import inspect_model

    monkeypatch.setattr(inspect_model, "inspect_file", _broken_inspect(how))
    mutant = fuzz.Mutant(0, "tflite", "lenet", "unchanged",
                         {"model.tflite": corpus.tflite["lenet"]}, ["inspect", "model.tflite"])
    results = list(fuzz.run_mutants(iter([mutant]), tmp_path, jobs=1, timeout=5,
                                    memory_mb=1024))
    assert [r.outcome for r in results] == [how] and results[0].bad, results


def test_differential_oracle_sees_a_wrong_result(corpus: fuzz.Corpus, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """LiteRT on a .tflite whose weights we perturbed must be a mismatch vs onnxruntime."""
    import tools.runtimes as runtimes

    real = runtimes.litert_interpreter

    def perturbed(data: bytes):
        interp = real(data)
        interp.set_tensor = lambda index, value, _set=interp.set_tensor: _set(index,
                                                                               value + 1)
        return interp

    monkeypatch.setattr(runtimes, "litert_interpreter", perturbed)
    mutant = fuzz.Mutant(0, "onnx", "lenet", "unchanged", {"model.onnx": corpus.onnx["lenet"]},
                         ["compile", "model.onnx", "-o", "out.tflite"], differential=True)
    [result] = fuzz.run_mutants(iter([mutant]), tmp_path, jobs=1, timeout=60)
    assert (result.outcome, result.diff) == ("ok", "mismatch") and result.bad, result


@pytest.mark.slow
def test_fuzz_smoke_run_has_no_bad_outcome(corpus: fuzz.Corpus, tmp_path: Path) -> None:
    report = fuzz.run_fuzz(500, seed=0, jobs=2, timeout=60, memory_mb=2048, work=tmp_path,
                           corpus=corpus)
    print(report.text())
    assert report.bad == [], report.text()
    outcomes = {r.outcome for r in report.results}
    diffs = {r.diff for r in report.results}
    assert {"ok", "error"} <= outcomes and "match" in diffs, report.text()
