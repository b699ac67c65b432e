"""End to end: every zoo model, ONNX -> default pipeline -> float .tflite -> real runtimes.

For each model in ``tests/zoo``:

* numerics: LiteRT (reference kernels) on our ``.tflite`` vs onnxruntime on the ONNX
  model, on real held-out digits (trained models) or seeded random data (helper
  models), max abs diff <= 1e-4; TFLite-Micro's Python runtime runs the same bytes and
  agrees with LiteRT to 1e-5; top-1 on the 450 test images agrees with onnxruntime;
* structure (from ``parse_model``): no TRANSPOSE in the conv nets; no more TFLite ops
  than an op budget computed from the ONNX graph (see ``op_budget``); every PAD sits in
  front of a convolution whose ONNX padding TFLite's SAME/VALID cannot express,
  recomputed here by enumerating kernel taps; ONNX tensor names are kept at the
  interface;
* determinism: the same bytes twice in-process and in two subprocesses with different
  ``PYTHONHASHSEED``.

A slow test exports a fresh torch model and checks LiteRT against torch.
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
from onnx import numpy_helper

from microlith.app.driver import CompileOptions, compile_onnx
from microlith.formats.tflite.flatbuffer import TflModel, parse_model
from tools.runtimes import (
    litert_interpreter,
    litert_invoke,
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
ATOL_ORT = 1e-4
ATOL_TFLM = 1e-5
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


def _no_warnings(message: str) -> None:
    raise AssertionError(f"unexpected compiler warning: {message}")


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


def _static_inputs(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in
            [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]}


def _taps(size: int, kernel: int, stride: int, dilation: int, begin: int, out: int
          ) -> list[tuple[int | None, ...]]:
    """For each output position, the input index each kernel tap reads (None: padding)."""
    rows = []
    for o in range(out):
        idx = [o * stride - begin + t * dilation for t in range(kernel)]
        rows.append(tuple(i if 0 <= i < size else None for i in idx))
    return rows


def tflite_can_express(size: int, kernel: int, stride: int, dilation: int, begin: int,
                       end: int) -> bool:
    """Do explicit zero pads (begin, end) read exactly what TFLite SAME or VALID reads?

    TFLite (tensorflow/lite/kernels/padding.h): VALID: out = ceil((in - k_eff + 1) / s),
    no padding; SAME: out = ceil(in / s), total = max((out - 1) * s + k_eff - in, 0),
    before = total // 2. ONNX: out = floor((in + begin + end - k_eff) / s) + 1.
    """
    k_eff = dilation * (kernel - 1) + 1
    onnx_out = (size + begin + end - k_eff) // stride + 1
    wanted = _taps(size, kernel, stride, dilation, begin, onnx_out)
    valid_out = -(-(size - k_eff + 1) // stride)
    same_out = -(-size // stride)
    same_before = max((same_out - 1) * stride + k_eff - size, 0) // 2
    return wanted in (_taps(size, kernel, stride, dilation, 0, valid_out),
                      _taps(size, kernel, stride, dilation, same_before, same_out))


@dataclass(frozen=True)
class PadSite:
    """What a PAD in front of a convolution is about: (H, W, C) in, pads, kernel, stride."""

    hwc: tuple[int, int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    kernel: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]


def onnx_pad_sites(model: onnx.ModelProto) -> tuple[list[PadSite], int]:
    """Convs needing a PAD in TFLite (explicit zero Pads merged in), and #Pads merged."""
    shapes, static = _shapes(model), _static_inputs(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers = Counter(i for n in model.graph.node for i in n.input)
    sites, merged = [], 0
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        x = node.input[0]
        n, c, h, w = shapes[x]
        _, _, kh, kw = static[node.input[1]].shape
        pads = list(_attr(node, "pads", [0, 0, 0, 0]))
        pad = producer.get(x)
        if pad is not None and pad.op_type == "Pad" and consumers[x] == 1 and \
                _attr(pad, "mode", b"constant") == b"constant":
            p = static[pad.input[1]].tolist()  # [n0, c0, h0, w0, n1, c1, h1, w1]
            value = static[pad.input[2]] if len(pad.input) > 2 and pad.input[2] else 0.0
            if float(value) == 0.0 and p[0] == p[1] == p[4] == p[5] == 0:
                pads = [pads[0] + p[2], pads[1] + p[3], pads[2] + p[6], pads[3] + p[7]]
                n, c, h, w = shapes[pad.input[0]]
                merged += 1
        strides = list(_attr(node, "strides", [1, 1]))
        dilations = list(_attr(node, "dilations", [1, 1]))
        if not (tflite_can_express(h, kh, strides[0], dilations[0], pads[0], pads[2]) and
                tflite_can_express(w, kw, strides[1], dilations[1], pads[1], pads[3])):
            sites.append(PadSite((h, w, c), tuple(pads), (kh, kw), tuple(strides),
                                 tuple(dilations)))
    return sites, merged


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


# Producers whose TFLite kernels honour a fused activation (CONCATENATION has the option
# but its kernels refuse anything but NONE, so a Relu after Concat stays an op).
FUSES_ACTIVATION = ("Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "AveragePool",
                    "MaxPool")


def op_budget(model: onnx.ModelProto) -> tuple[int, dict[str, int]]:
    """The most TFLite ops an honest lowering needs, counted from the ONNX graph.

    ONNX nodes, minus: Constant; Identity/Dropout; nodes whose inputs are all
    constant or come from Shape (the Shape chain folds); a zero Pad absorbed by the
    next Conv; the bias Add of MatMul-with-constant-weights (one FULLY_CONNECTED);
    BatchNormalization right after Conv/Gemm/MatMul; Relu / Clip(0, 6) right after an
    op with a TFLite fused activation. Plus: one PAD per conv whose padding SAME/VALID
    cannot express; one more op for a BatchNormalization with nothing to fold into
    (MUL + ADD); SPLIT + CONCATENATION + one conv per group for grouped (not
    depthwise) convs; HardSigmoid as MUL, ADD(RELU6), MUL (no TFLite builtin).
    Flatten / Reshape / Squeeze / Unsqueeze each count as one RESHAPE.
    """
    static = set(_static_inputs(model))
    values = _static_inputs(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers = Counter(i for n in model.graph.node for i in n.input if i)
    outputs = {o.name for o in model.graph.output}
    single_use = {o for o, k in consumers.items() if k == 1 and o not in outputs}
    linear: set[str] = set()  # outputs of a Conv/FC (bias and BN already folded in)
    fusable: set[str] = set()  # outputs a Relu/Relu6 can fuse into
    removed: Counter[str] = Counter()
    added: Counter[str] = Counter()
    for node in model.graph.node:
        op, ins = node.op_type, [i for i in node.input if i]
        out = node.output[0]
        if op == "Constant":
            removed["Constant"] += 1
        elif op in ("Identity", "Dropout"):
            removed[op] += 1
            if ins[0] in static:
                static.add(out)
            for s in (linear, fusable):
                if ins[0] in s:
                    s.add(out)
        elif op == "Shape" or all(i in static for i in ins):
            removed["folded"] += 1
            static.add(out)
        elif op == "Pad" and consumers[out] == 1 and all(
                n.op_type == "Conv" for n in model.graph.node if out in n.input):
            removed["Pad into conv"] += 1
        elif op in ("Add",) and ins[0] in linear and ins[0] in single_use and \
                producer[ins[0]].op_type == "MatMul" and ins[1] in static:
            removed["bias Add into FC"] += 1
            linear.add(out)
            fusable.add(out)
        elif op == "BatchNormalization" and ins[0] in linear and ins[0] in single_use:
            removed["BN folded"] += 1
            linear.add(out)
            fusable.add(out)
        elif op in ("Relu", "Clip") and ins[0] in fusable and ins[0] in single_use and (
                op == "Relu" or [float(values[i]) for i in ins[1:]] == [0.0, 6.0]):
            removed["activation fused"] += 1
        else:
            if op in ("Conv", "Gemm") or (op == "MatMul" and ins[1] in static):
                linear.add(out)
            if op in FUSES_ACTIVATION:
                fusable.add(out)
            if op == "BatchNormalization":
                added["BN as MUL+ADD"] += 1
            if op == "HardSigmoid":
                added["HardSigmoid"] += 2
            if op == "Conv":
                group = int(_attr(node, "group", 1))
                in_per_group = values[ins[1]].shape[1]
                if group > 1 and in_per_group != 1:
                    added["grouped conv"] += group + 1
    added["PAD"] = len(onnx_pad_sites(model)[0])
    budget = len(model.graph.node) - sum(removed.values()) + sum(added.values())
    return budget, {**{f"-{k}": v for k, v in removed.items()},
                    **{f"+{k}": v for k, v in added.items() if v}}


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


# ------------------------------------------------------------------- activation after Concat


@pytest.mark.parametrize("act", ["Relu", "Relu6", "ReluN1To1"])
def test_activation_after_concat_runs_in_litert_and_tflm(tmp_path: Path, act: str) -> None:
    """fuse-activation folds Relu/Clip into Concat; TFLite's CONCATENATION cannot carry it."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
             for name, shape in (("wa", (4, 3, 3, 3)), ("wb", (2, 3, 1, 1)))]
    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "wb"], ["b"], name="conv_b"),
             helper.make_node("Concat", ["a", "b"], ["ab"], name="concat", axis=1)]
    if act == "Relu":
        nodes.append(helper.make_node("Relu", ["ab"], ["y"], name="act"))
    else:
        low, high = (0.0, 6.0) if act == "Relu6" else (-1.0, 1.0)
        inits += [numpy_helper.from_array(np.array(low, np.float32), "lo"),
                  numpy_helper.from_array(np.array(high, np.float32), "hi")]
        nodes.append(helper.make_node("Clip", ["ab", "lo", "hi"], ["y"], name="act"))
    graph = helper.make_graph(
        nodes, "concat_act", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 6, 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = tmp_path / "concat_act.onnx"
    onnx.save(model, str(path))

    result = compile_onnx(path, CompileOptions(warn=_no_warnings))
    tfl = parse_model(result.output)
    for op in tfl.operators:
        if op.op == "CONCATENATION":
            assert op.options.get("fused_activation_function", "NONE") == "NONE"
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32) * 3
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    perms = result.graph.meta["io_perms"]
    expected = to_physical(session.run(None, {"x": x})[0], perms.get("y"))
    x_phys = to_physical(x, perms.get("x"))
    got = litert_invoke(litert_interpreter(result.output), x_phys)
    np.testing.assert_allclose(got, expected, atol=ATOL_ORT, rtol=0)
    micro = tflm_invoke(tflm_interpreter(result.output), x_phys)
    np.testing.assert_allclose(micro, got, atol=ATOL_TFLM, rtol=0)


# --------------------------------------------------------------------------- live torch model


@pytest.mark.slow
def test_live_torch_model(tmp_path: Path) -> None:
    """Conv+BN+ReLU6, depthwise+BN+ReLU6, pointwise, GlobalAvgPool, Linear: LiteRT vs torch."""
    torch = pytest.importorskip("torch")
    from torch import nn

    from tools.make_zoo import export_torch_model

    torch.manual_seed(0)

    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                                      nn.BatchNorm2d(8), nn.ReLU6())
            self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
                                    nn.BatchNorm2d(8), nn.ReLU6())
            self.pw = nn.Sequential(nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), nn.ReLU6())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(16, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.flatten(self.pool(self.pw(self.dw(self.stem(x)))), 1))

    model = Tiny()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics, so folding matters
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    model.eval()
    shape = (1, 3, 18, 18)  # even size: the stride-2 stem needs an explicit PAD
    path = tmp_path / "tiny.onnx"
    proto = export_torch_model(model, shape, path)
    onnx_ops = Counter(n.op_type for n in proto.graph.node)
    assert onnx_ops["BatchNormalization"] == 3 and onnx_ops["Clip"] == 3

    result = compile_onnx(path, CompileOptions(warn=_no_warnings))
    tfl = parse_model(result.output)
    ops = Counter(op.op for op in tfl.operators)
    assert ops["CONV_2D"] == 2 and ops["DEPTHWISE_CONV_2D"] == 1 and ops["PAD"] == 1, ops
    assert "TRANSPOSE" not in ops
    assert len(tfl.operators) <= op_budget(proto)[0]
    interp = litert_interpreter(result.output)
    perm = result.graph.meta["io_perms"]["input"]
    xs = torch.from_numpy(np.random.default_rng(5).standard_normal((20, *shape[1:]),
                                                                  dtype=np.float32))
    worst = 0.0
    with torch.no_grad():
        for x in xs:
            expected = model(x[None]).numpy()
            got = litert_invoke(interp, to_physical(x[None].numpy(), perm))
            worst = max(worst, float(np.abs(got - expected).max()))
    assert worst <= ATOL_ORT, f"LiteRT vs torch max abs diff {worst:.3g}"
