"""End to end: every zoo model, ONNX -> default pipeline -> float .tflite -> real runtimes.

For each model in ``tests/zoo``:

* numerics: LiteRT (reference kernels) on our ``.tflite`` vs onnxruntime on the ONNX
  model, on real held-out digits (trained models) or seeded random data (helper
  models), max abs diff <= 1e-4; TFLite-Micro's Python runtime runs the same bytes and
  agrees with LiteRT to 1e-5; top-1 on the 450 test images agrees with onnxruntime;
* structure (from ``parse_model``): no TRANSPOSE in the conv nets; no more TFLite ops
  than an op budget computed from the ONNX graph (see ``float_e2e.op_budget``); every
  PAD sits in front of a convolution whose ONNX padding TFLite's SAME/VALID cannot
  express, recomputed (``float_e2e.onnx_pad_sites``) by enumerating kernel taps; ONNX
  tensor names are kept at the interface;
* determinism: the same bytes twice in-process and in two subprocesses with different
  ``PYTHONHASHSEED``.

Models built in the tests themselves (an activation after Concat, a freshly exported
torch model) are in ``test_end_to_end_adhoc.py``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import TflModel, parse_model
from tests.float_e2e import (
    ATOL_ORT,
    ATOL_TFLM,
    PadSite,
    _no_warnings,
    onnx_pad_sites,
    op_budget,
    tflite_can_express,
)
from tools.runtimes import (
    ort_outputs,
    ort_session,
    run_litert,
    tflm_interpreter,
    tflm_invoke,
    to_physical,
)

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert.interpreter")
pytest.importorskip("tflite_micro.python.tflite_micro.runtime")

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "tests" / "zoo"
CONV_NETS = ("lenet", "dscnn", "resnet8", "mobilenet_v1")
TRAINED = CONV_NETS + ("mlp_sigmoid",)
HELPERS = ("helper_ops", "helper_matmul")
MODELS = TRAINED + HELPERS

N_DIFF = 200  # held-out images (or random samples) compared with onnxruntime
N_TFLM = 20  # of those, also run in TFLite-Micro
MIN_TOP1_AGREEMENT = 0.995
TIE_GAP = 1e-4  # a top-1 disagreement is only excused when onnxruntime's top two are this close


# --------------------------------------------------------------------------- compiling / running


@dataclass
class Compiled:
    name: str
    onnx: onnx.ModelProto
    data: bytes
    tfl: TflModel
    io_perms: dict[str, list[int]]

    @property
    def input_name(self) -> str:
        inits = {i.name for i in self.onnx.graph.initializer}
        return next(i.name for i in self.onnx.graph.input if i.name not in inits)

    @property
    def output_name(self) -> str:
        return self.onnx.graph.output[0].name


@pytest.fixture(scope="module")
def compiled() -> dict[str, Compiled]:
    """Every zoo model compiled once with the default pipeline."""
    out = {}
    for name in MODELS:
        path = ZOO / f"{name}.onnx"
        result = compile_onnx(path, CompileOptions(warn=_no_warnings))
        out[name] = Compiled(name, onnx.load(str(path)), result.output,
                             parse_model(result.output), dict(result.graph.meta["io_perms"]))
    return out


@functools.cache
def digits() -> dict[str, np.ndarray]:
    from tools.digits import load_digits_split

    _, _, x_img, y_test = load_digits_split(size=16, layout="NCHW")
    _, _, x_flat, y_flat = load_digits_split(size=8, layout="flat")
    assert np.array_equal(y_test, y_flat) and len(y_test) == 450
    return {"image": x_img, "flat": x_flat, "labels": y_test}


def model_inputs(c: Compiled) -> np.ndarray:
    """[N, *input shape] in ONNX layout: real digits for trained models, else seeded noise."""
    if c.name in CONV_NETS:
        return digits()["image"]
    if c.name == "mlp_sigmoid":
        return digits()["flat"]
    vi = next(i for i in c.onnx.graph.input if i.name == c.input_name)
    shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    seed = int(hashlib.sha256(c.name.encode()).hexdigest()[:8], 16)
    return np.random.default_rng(seed).standard_normal((N_DIFF, *shape[1:])).astype(np.float32)


@dataclass
class Runs:
    x: np.ndarray  # ONNX layout, one sample per row
    ort: np.ndarray  # onnxruntime outputs, ONNX layout
    tfl: np.ndarray  # LiteRT outputs, physical layout transposed back to ONNX layout
    tfl_physical: np.ndarray
    in_perm: list[int] | None


@pytest.fixture(scope="module")
def runs(compiled: dict[str, Compiled]) -> dict[str, Runs]:
    out = {}
    for name, c in compiled.items():
        xs = model_inputs(c)
        in_perm = c.io_perms.get(c.input_name)
        out_perm = c.io_perms.get(c.output_name)
        ref = ort_outputs(ort_session(ZOO / f"{name}.onnx"), xs)
        # one sample at a time: the stacking axis stands in for the batch axis
        physical = run_litert(c.data, to_physical(xs, in_perm))
        assert out_perm is None or out_perm[0] == 0
        logical = physical if out_perm is None else physical.transpose(np.argsort(out_perm))
        out[name] = Runs(xs, ref, logical, physical, in_perm)
    return out


# --------------------------------------------------------------------------- numerics


def test_every_zoo_model_is_covered() -> None:
    assert sorted(p.stem for p in ZOO.glob("*.onnx")) == sorted(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_litert_matches_onnxruntime(runs: dict[str, Runs], compiled: dict[str, Compiled],
                                    name: str) -> None:
    r = runs[name]
    x_shape = r.x.shape[1:]
    if len(x_shape) == 3:  # 4-D input: the .tflite takes NHWC
        assert r.in_perm == [0, 2, 3, 1]
        tin = compiled[name].tfl.tensors[compiled[name].tfl.inputs[0]]
        assert tin.shape == [1, x_shape[1], x_shape[2], x_shape[0]]
    diff = np.abs(r.tfl[:N_DIFF] - r.ort[:N_DIFF])
    assert np.isfinite(r.tfl).all()
    assert float(diff.max()) <= ATOL_ORT, f"{name}: max abs diff {float(diff.max()):.3g}"


@pytest.mark.parametrize("name", MODELS)
def test_tflite_micro_matches_litert(runs: dict[str, Runs], compiled: dict[str, Compiled],
                                     name: str) -> None:
    c, r = compiled[name], runs[name]
    interp = tflm_interpreter(c.data)
    for i in range(N_TFLM):
        got = tflm_invoke(interp, to_physical(r.x[i:i + 1], r.in_perm))
        assert got.shape == r.tfl_physical[i:i + 1].shape
        np.testing.assert_allclose(got, r.tfl_physical[i:i + 1], atol=ATOL_TFLM, rtol=0,
                                   err_msg=f"{name} sample {i}")


@pytest.mark.parametrize("name", TRAINED)
def test_top1_accuracy_matches_onnx(runs: dict[str, Runs], name: str) -> None:
    r = runs[name]
    labels = digits()["labels"]
    assert len(r.x) == len(labels) == 450
    top_ort, top_tfl = r.ort.argmax(axis=1), r.tfl.argmax(axis=1)
    agree = float(np.mean(top_ort == top_tfl))
    assert agree >= MIN_TOP1_AGREEMENT, f"{name}: top-1 agreement {agree:.4f}"
    ranked = np.sort(r.ort, axis=1)
    gaps = (ranked[:, -1] - ranked[:, -2])[top_ort != top_tfl]
    assert (gaps <= TIE_GAP).all(), f"{name}: disagreement that is not a tie, gaps {gaps}"
    acc_ort = float(np.mean(top_ort == labels))
    acc_tfl = float(np.mean(top_tfl == labels))
    assert abs(acc_tfl - acc_ort) <= len(gaps) / len(labels)
    assert acc_ort >= 0.9  # the committed weights are the trained ones


# --------------------------------------------------------------------------- structure


def ops_of(c: Compiled) -> list[str]:
    return [op.op for op in c.tfl.operators]


@pytest.mark.parametrize("name", MODELS)
def test_interface_names_are_onnx_names(compiled: dict[str, Compiled], name: str) -> None:
    c = compiled[name]
    inits = {i.name for i in c.onnx.graph.initializer}
    assert [c.tfl.tensors[i].name for i in c.tfl.inputs] == \
        [i.name for i in c.onnx.graph.input if i.name not in inits]
    assert [c.tfl.tensors[i].name for i in c.tfl.outputs] == [o.name for o in c.onnx.graph.output]


@pytest.mark.parametrize("name", MODELS)
def test_no_layout_transposes(compiled: dict[str, Compiled], name: str) -> None:
    c = compiled[name]
    onnx_transposes = sum(n.op_type == "Transpose" for n in c.onnx.graph.node)
    assert ops_of(c).count("TRANSPOSE") <= onnx_transposes
    if name in CONV_NETS:
        assert "TRANSPOSE" not in ops_of(c)


def tflite_pad_sites(c: Compiled) -> list[PadSite]:
    """Each PAD must feed exactly one VALID convolution; describe it like onnx_pad_sites."""
    model = c.tfl
    users: dict[int, list[int]] = {}
    for index, op in enumerate(model.operators):
        for t in op.inputs:
            users.setdefault(t, []).append(index)
    sites = []
    for op in model.operators:
        if op.op != "PAD":
            continue
        assert len(users.get(op.outputs[0], [])) == 1, "a PAD feeding more than one op"
        conv = model.operators[users[op.outputs[0]][0]]
        assert conv.op in ("CONV_2D", "DEPTHWISE_CONV_2D"), f"PAD in front of {conv.op}"
        assert conv.inputs[0] == op.outputs[0]
        assert conv.options["padding"] == "VALID"
        x = model.tensors[op.inputs[0]]
        pads = np.frombuffer(model.tensors[op.inputs[1]].data,
                             dtype=model.tensors[op.inputs[1]].dtype).reshape(4, 2)
        assert pads[0].tolist() == [0, 0] and pads[3].tolist() == [0, 0]
        if len(op.inputs) > 2 and op.inputs[2] >= 0:  # PADV2 style constant must be 0
            assert not np.frombuffer(model.tensors[op.inputs[2]].data, np.float32).any()
        weight = model.tensors[conv.inputs[1]].shape  # OHWI, or 1HWC for depthwise
        sites.append(PadSite(tuple(x.shape[1:]), (int(pads[1, 0]), int(pads[2, 0]),
                                                  int(pads[1, 1]), int(pads[2, 1])),
                             (weight[1], weight[2]),
                             (conv.options["stride_h"], conv.options["stride_w"]),
                             (conv.options.get("dilation_h_factor", 1),
                              conv.options.get("dilation_w_factor", 1))))
    return sites


@pytest.mark.parametrize("name", MODELS)
def test_pads_only_where_same_valid_cannot_express(compiled: dict[str, Compiled],
                                                   name: str) -> None:
    c = compiled[name]
    expected, _ = onnx_pad_sites(c.onnx)
    assert Counter(tflite_pad_sites(c)) == Counter(expected)


def test_pad_sites_of_zoo_models(compiled: dict[str, Compiled]) -> None:
    """The numbers the zoo README describes, so the checker above is not vacuous."""
    counts = {name: len(onnx_pad_sites(compiled[name].onnx)[0]) for name in MODELS}
    assert counts == {"lenet": 0, "dscnn": 1, "resnet8": 2, "mobilenet_v1": 2,
                      "mlp_sigmoid": 0, "helper_ops": 0, "helper_matmul": 0}
    # dscnn's stride-2 3x3 conv pads 1,1 on 16x16: SAME would pad 0 before / 1 after.
    assert not tflite_can_express(16, 3, 2, 1, 1, 1)
    assert tflite_can_express(16, 3, 2, 1, 0, 1) and tflite_can_express(15, 3, 2, 1, 1, 1)
    assert tflite_can_express(16, 1, 2, 1, 0, 0)  # resnet8's 1x1 stride-2 projection
    assert tflite_can_express(12, 2, 1, 1, 0, 1)  # helper_ops' conv_b (asymmetric)


def test_explicit_pad_is_folded_into_conv(compiled: dict[str, Compiled]) -> None:
    c = compiled["helper_ops"]
    assert sum(n.op_type == "Pad" for n in c.onnx.graph.node) == 1
    _, merged = onnx_pad_sites(c.onnx)
    assert merged == 1
    assert "PAD" not in ops_of(c) and "PADV2" not in ops_of(c)


@pytest.mark.parametrize("name", MODELS)
def test_op_count_within_budget(compiled: dict[str, Compiled], name: str) -> None:
    c = compiled[name]
    budget, why = op_budget(c.onnx)
    n_ops = len(c.tfl.operators)
    assert n_ops <= budget, f"{name}: {n_ops} TFLite ops > budget {budget} " \
        f"({len(c.onnx.graph.node)} ONNX nodes {why}): {ops_of(c)}"


def test_op_budget_is_tight_on_the_zoo() -> None:
    """Measured budgets (equal to what we emit today); a regression shows up above."""
    budgets = {name: op_budget(onnx.load(str(ZOO / f"{name}.onnx")))[0] for name in MODELS}
    assert budgets == {"lenet": 7, "dscnn": 11, "resnet8": 17, "mobilenet_v1": 13,
                       "mlp_sigmoid": 5, "helper_ops": 26, "helper_matmul": 5}


# --------------------------------------------------------------------------- determinism


def test_compiling_twice_gives_identical_bytes(compiled: dict[str, Compiled]) -> None:
    for name in MODELS:
        again = compile_onnx(ZOO / f"{name}.onnx", CompileOptions(warn=_no_warnings))
        assert again.output == compiled[name].data, name


_DIGEST_SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    from microlith.app.driver import CompileOptions, compile_onnx
    digests = {}
    for name in sys.argv[2:]:
        data = compile_onnx(f"{sys.argv[1]}/{name}.onnx", CompileOptions()).output
        digests[name] = hashlib.sha256(data).hexdigest()
    print(json.dumps(digests))
""")


def test_identical_bytes_across_hash_seeds(compiled: dict[str, Compiled],
                                           tmp_path: Path) -> None:
    expected = {name: hashlib.sha256(c.data).hexdigest() for name, c in compiled.items()}
    for seed in ("0", "3127"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        proc = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT, str(ZOO), *MODELS],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == expected, f"PYTHONHASHSEED={seed}"
