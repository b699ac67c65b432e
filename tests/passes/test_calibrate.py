"""``calibrate`` on the zoo LeNet with real digits: ranges vs onnxruntime, the cache, errors."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from microlith.calibration import (
    CalibrationError,
    CalibrationSet,
    InputSpec,
    calibration_set_from_arrays,
    input_specs_from_graph,
)
from microlith.diagnostics import UsageError
from microlith.frontend.onnx_import import load_onnx
from microlith.ir.core import Graph
from microlith.passes.calibrate import Calibrate
from microlith.passes.pipelines import default_pipeline
from microlith.pipeline import PassContext, PassManager, parse_pipeline
from tools.digits import load_digits_split

LENET = Path(__file__).resolve().parents[1] / "zoo" / "lenet.onnx"
SAMPLES = 200
# After canonicalization these names still mean what they mean in the ONNX model
# (maybe transposed to NHWC, which min/max do not see) ...
SURVIVING = ("input", "/3/MaxPool_output_0", "/7/AveragePool_output_0", "/8/Flatten_output_0",
             "logits")
# ... and these carry their fused activation's values (Conv+BN+ReLU, Gemm+ReLU).
FUSED = {"/0/Conv_output_0": "/2/Relu_output_0", "/4/Conv_output_0": "/6/Relu_output_0",
         "/9/Gemm_output_0": "/10/Relu_output_0"}


def canonical_spec() -> str:
    passes = default_pipeline("float").split(",")
    assert passes[-1] == "legalize-tflite"
    return ",".join(passes[:-1])


@functools.cache
def canonical_lenet() -> Graph:
    graph = load_onnx(LENET, warn=lambda message: None)
    PassManager.from_spec(canonical_spec()).run(graph, PassContext(warn=lambda message: None))
    return graph


@functools.cache
def digits() -> np.ndarray:
    x_train, _, _, _ = load_digits_split(size=16, layout="NCHW")
    return x_train[:SAMPLES]


def dataset(x: np.ndarray | None = None) -> CalibrationSet:
    graph = canonical_lenet()
    return calibration_set_from_arrays({"input": digits() if x is None else x},
                                       input_specs_from_graph(graph))


def calibrate(spec: str = "calibrate", **options: object) -> tuple[Graph, list[str]]:
    """Calibrate a fresh copy of the canonical LeNet; return it and the warnings."""
    graph = canonical_lenet().copy()
    warnings: list[str] = []
    ctx = PassContext(warn=warnings.append, options={"quiet": True, **options})
    PassManager.from_spec(spec, verify_each=True).run(graph, ctx)
    return graph, warnings


def ranges(graph: Graph) -> dict[str, tuple[float, float]]:
    return {name: value.meta["calibration_range"] for name, value in graph.values.items()
            if "calibration_range" in value.meta}


@functools.cache
def onnxruntime_minmax() -> dict[str, tuple[float, float]]:
    """Brute force: every listed tensor of the ONNX model over the same 200 images."""
    model = onnx.load(str(LENET))
    names = [*SURVIVING[1:-1], *FUSED.values()]
    model.graph.output.extend(helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None)
                              for n in names)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    seen: dict[str, list[np.ndarray]] = {name: [] for name in outputs}
    for image in digits():
        for name, array in zip(outputs, session.run(None, {"input": image[None]}), strict=True):
            seen[name].append(array)
    seen["input"] = [digits()]
    return {name: (float(np.min(a)), float(np.max(a))) for name, a in
            ((name, np.concatenate([x.ravel() for x in arrays])) for name, arrays in seen.items())}


def test_every_activation_gets_a_range() -> None:
    graph, warnings = calibrate(calibration_data=dataset())
    expected = {v.name for v in graph.inputs} | {o.name for n in graph.nodes for o in n.outputs}
    got = ranges(graph)
    assert set(got) == expected and not warnings
    for lo, hi in got.values():
        assert type(lo) is float and type(hi) is float and lo <= 0.0 <= hi
    assert all("calibration_range" not in v.meta for v in graph.constants())
    assert graph.meta["calibration"] == {"method": "minmax", "samples": SAMPLES}


def test_minmax_ranges_equal_onnxruntime_brute_force() -> None:
    graph, _ = calibrate(calibration_data=dataset())
    got = ranges(graph)
    reference = onnxruntime_minmax()
    pairs = [(name, name) for name in SURVIVING] + list(FUSED.items())
    for ours, theirs in pairs:
        lo, hi = reference[theirs]
        assert got[ours] == (pytest.approx(min(lo, 0.0), rel=1e-5, abs=1e-5),
                             pytest.approx(max(hi, 0.0), rel=1e-5, abs=1e-5)), ours
    assert got["input"] == (0.0, 1.0)
    assert got["logits"][0] < 0.0 < got["logits"][1]


@pytest.mark.parametrize("method", ["percentile", "entropy", "mse"])
def test_other_methods_stay_inside_minmax(method: str) -> None:
    minmax = ranges(calibrate(calibration_data=dataset())[0])
    graph, _ = calibrate(f"calibrate{{method={method}}}", calibration_data=dataset())
    assert graph.meta["calibration"]["method"] == method
    clipped = 0
    for name, (lo, hi) in ranges(graph).items():
        assert minmax[name][0] <= lo <= 0.0 <= hi <= minmax[name][1], name
        clipped += (lo, hi) != minmax[name]
    assert clipped > 0


def test_batch_size_does_not_change_the_ranges() -> None:
    """Histograms merge exactly across batches; only the kernels' float rounding
    (matrix products block differently per batch size) may move a value by an ulp."""
    data = dataset()
    for method in ("minmax", "entropy", "mse"):
        first = ranges(calibrate(f"calibrate{{method={method}}}", calibration_data=data)[0])
        second = ranges(calibrate(f"calibrate{{method={method},batch-size=7}}",
                                  calibration_data=data)[0])
        assert first.keys() == second.keys()
        for name, (lo, hi) in first.items():
            assert second[name] == (pytest.approx(lo, rel=1e-5), pytest.approx(hi, rel=1e-5))


def test_samples_option_uses_the_first_samples() -> None:
    graph, warnings = calibrate("calibrate{samples=50}", calibration_data=dataset())
    assert graph.meta["calibration"]["samples"] == 50 and not warnings
    alone = calibrate(calibration_data=dataset(digits()[:50]))[0]
    assert ranges(graph) == ranges(alone)
    graph, warnings = calibrate("calibrate{samples=500}", calibration_data=dataset())
    assert graph.meta["calibration"]["samples"] == SAMPLES
    assert any("samples=500" in w and "using all 200" in w for w in warnings)


def test_cache_round_trip_without_data(tmp_path: Path) -> None:
    cache = tmp_path / "lenet.calib.json"
    first, warnings = calibrate(calibration_data=dataset(), calibration_cache=cache)
    assert not warnings
    document = json.loads(cache.read_text())
    assert document["version"] == 1 and len(document["fingerprint"]) == 64
    entry = document["tensors"]["logits"]
    assert set(entry) >= {"min", "max", "hist", "hist_edges"} and len(entry["hist"]) == 2048
    assert not list(tmp_path.glob(".microlith-*"))  # the temporary file was renamed

    second, warnings = calibrate(calibration_cache=cache)  # no data at all
    assert ranges(second) == ranges(first) and not warnings
    assert second.meta["calibration"] == first.meta["calibration"]
    # any method can be recomputed from the cached histograms
    from_cache = calibrate("calibrate{method=entropy}", calibration_cache=cache)[0]
    from_data = calibrate("calibrate{method=entropy}", calibration_data=dataset())[0]
    assert ranges(from_cache) == ranges(from_data)
    # with the same data the cache is used as well (not rewritten)
    stamp = cache.stat().st_mtime_ns
    third, warnings = calibrate(calibration_data=dataset(), calibration_cache=cache)
    assert ranges(third) == ranges(first) and not warnings
    assert cache.stat().st_mtime_ns == stamp


def test_changed_data_invalidates_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "calib.json"
    calibrate(calibration_data=dataset(), calibration_cache=cache)
    before = json.loads(cache.read_text())["fingerprint"]
    other = dataset(np.ascontiguousarray(digits()[::-1][:120]))
    graph, warnings = calibrate(calibration_data=other, calibration_cache=cache)
    assert len(warnings) == 1 and "stale" in warnings[0] and "calibration data" in warnings[0]
    assert graph.meta["calibration"]["samples"] == 120
    assert ranges(graph) == ranges(calibrate(calibration_data=other)[0])
    assert json.loads(cache.read_text())["fingerprint"] != before  # rewritten


def test_changed_graph_invalidates_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "calib.json"
    calibrate(calibration_data=dataset(), calibration_cache=cache)
    graph = canonical_lenet().copy()
    conv = graph.nodes[0]
    conv.set_input(1, graph.add_constant(np.asarray(conv.inputs[1].data) * 2, "scaled"))
    warnings: list[str] = []
    ctx = PassContext(warn=warnings.append, options={"calibration_cache": cache})
    with pytest.raises(CalibrationError, match="--calibration-data"):
        Calibrate().run(graph, ctx)
    assert len(warnings) == 1 and "stale" in warnings[0] and "different model" in warnings[0]


def test_unreadable_cache_is_ignored_with_a_warning(tmp_path: Path) -> None:
    cache = tmp_path / "calib.json"
    cache.write_text("{not json")
    graph, warnings = calibrate(calibration_data=dataset(), calibration_cache=cache)
    assert len(warnings) == 1 and "unreadable" in warnings[0] and "calib.json" in warnings[0]
    assert json.loads(cache.read_text())["version"] == 1  # replaced by a good one


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError) as exc:
        calibrate()
    assert "--calibration-data" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(CalibrationError, match="--calibration-data"):
        calibrate(calibration_cache=tmp_path / "absent.json")


def test_data_for_another_model_is_refused() -> None:
    wrong = calibration_set_from_arrays(np.zeros((2, 1, 8, 8), np.float32),
                                        [InputSpec("input", (1, 1, 8, 8))])
    with pytest.raises(CalibrationError, match=r"input 'input'.*\[1, 8, 8\].*\[1, 16, 16\]"):
        calibrate(calibration_data=wrong)


def test_data_from_a_path(tmp_path: Path) -> None:
    np.savez(tmp_path / "digits.npz", input=digits())
    graph, _ = calibrate(calibration_data=str(tmp_path / "digits.npz"))
    assert ranges(graph) == ranges(calibrate(calibration_data=dataset())[0])


def test_options_are_checked_and_print_back() -> None:
    (pass_,) = parse_pipeline("calibrate{method=percentile,p=99.9,batch-size=8,samples=100}")
    assert str(pass_) == "calibrate{method=percentile,p=99.9,batch-size=8,samples=100}"
    assert str(Calibrate()) == "calibrate"
    with pytest.raises(UsageError, match="method='kl' must be one of"):
        parse_pipeline("calibrate{method=kl}")
    for bad in ("p=0.0", "batch-size=0", "samples=-1"):
        with pytest.raises(UsageError, match=bad.split("=")[0]):
            calibrate(f"calibrate{{{bad}}}", calibration_data=dataset())


def test_unwritable_cache_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="absent.*directory does not exist"):
        calibrate(calibration_data=dataset(), calibration_cache=tmp_path / "absent" / "c.json")
    (tmp_path / "taken").mkdir()
    warnings: list[str] = []
    with pytest.raises(CalibrationError, match="taken.*not a regular file"):
        graph = canonical_lenet().copy()
        Calibrate().run(graph, PassContext(warn=warnings.append, options={
            "calibration_data": dataset(), "calibration_cache": tmp_path / "taken"}))
    assert not warnings  # refused before reading or calibrating anything
    assert not list(tmp_path.glob(".microlith-*"))
    # a directory nobody can create files in, root included (procfs)
    with pytest.raises(CalibrationError, match="/proc/self/c.json.*cannot write"):
        calibrate(calibration_data=dataset(), calibration_cache="/proc/self/c.json")


def test_overflowing_activations_name_the_tensor() -> None:
    huge = dataset(digits() * np.float32(3e38))
    with pytest.raises(CalibrationError, match=r"tensor '/0/Conv_output_0' \(output of "
                                               r"%/0/Conv \(Conv\)\) has non-finite"):
        calibrate(calibration_data=huge)
