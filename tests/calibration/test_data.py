"""Loading representative data: every accepted form, and one clear error per bad input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from microlith.calibration.data import (
    CalibrationError,
    CalibrationSet,
    InputSpec,
    Progress,
    calibration_set_from_arrays,
    calibration_set_from_iterable,
    input_specs_from_graph,
    load_calibration_file,
)
from microlith.diagnostics import MicrolithError
from microlith.ir.core import Graph
from microlith.ir.types import DType, TensorType

IMAGE = InputSpec("input", (1, 3, 4, 5))
A = InputSpec("a", (1, 6))
B = InputSpec("b", (1, 2, 2))
RNG = np.random.default_rng(7)


def images(n: int) -> np.ndarray:
    return RNG.random((n, 3, 4, 5), dtype=np.float32)


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert "\n" not in message and isinstance(exc.value, MicrolithError)
    return message


# ---- files -------------------------------------------------------------------------------


def test_npz_keyed_by_input_name(tmp_path: Path) -> None:
    x = images(5)
    np.savez(tmp_path / "cal.npz", input=x)
    data = load_calibration_file(tmp_path / "cal.npz", [IMAGE])
    assert len(data) == 5 and data.names == ["input"]
    np.testing.assert_array_equal(data.array("input"), x)


def test_npz_single_input_accepts_any_single_key(tmp_path: Path) -> None:
    x = images(3)
    np.savez(tmp_path / "cal.npz", whatever=x)
    np.testing.assert_array_equal(load_calibration_file(tmp_path / "cal.npz", [IMAGE])
                                  .array("input"), x)


def test_npz_multi_input(tmp_path: Path) -> None:
    np.savez(tmp_path / "cal.npz", b=np.ones((4, 2, 2)), a=np.zeros((4, 6)))
    data = load_calibration_file(str(tmp_path / "cal.npz"), [A, B])
    assert len(data) == 4 and data.array("b").dtype == np.float32  # float64 is cast


def test_npz_missing_and_unknown_keys_list_the_inputs(tmp_path: Path) -> None:
    np.savez(tmp_path / "miss.npz", a=np.zeros((4, 6)))
    with pytest.raises(CalibrationError) as exc:
        load_calibration_file(tmp_path / "miss.npz", [A, B])
    assert "missing input(s) 'b'" in one_line(exc) and "'a', 'b'" in str(exc.value)
    np.savez(tmp_path / "extra.npz", a=np.zeros((4, 6)), b=np.zeros((4, 2, 2)), label=[1])
    with pytest.raises(CalibrationError, match="unknown key.*'label'.*inputs are 'a', 'b'"):
        load_calibration_file(tmp_path / "extra.npz", [A, B])
    np.savez(tmp_path / "two.npz", x=images(1), y=images(1))
    with pytest.raises(CalibrationError, match="unknown key.*'x', 'y'.*'input'"):
        load_calibration_file(tmp_path / "two.npz", [IMAGE])


def test_single_npy_file(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", images(6))
    assert len(load_calibration_file(tmp_path / "x.npy", [IMAGE])) == 6
    with pytest.raises(CalibrationError, match="single .npy array.*'a', 'b'"):
        load_calibration_file(tmp_path / "x.npy", [A, B])


def test_directory_of_input_named_files(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((3, 6)))
    np.save(tmp_path / "b.npy", np.ones((3, 2, 2)))
    (tmp_path / "README.txt").write_text("not data")  # only .npy files are read
    data = load_calibration_file(tmp_path, [A, B])
    assert len(data) == 3 and float(data.array("b").sum()) == 12.0


def test_directory_named_files_must_be_complete(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((3, 6)))
    with pytest.raises(CalibrationError) as exc:
        load_calibration_file(tmp_path, [A, B])
    assert "missing b.npy" in one_line(exc) and "a.npy, b.npy" in str(exc.value)
    np.save(tmp_path / "b.npy", np.zeros((3, 2, 2)))
    np.save(tmp_path / "labels.npy", np.zeros(3))
    with pytest.raises(CalibrationError, match="unknown file.*labels.npy"):
        load_calibration_file(tmp_path, [A, B])


def test_directory_of_samples_and_batches_in_name_order(tmp_path: Path) -> None:
    first, second, third = images(1)[0], images(4), images(1)
    np.save(tmp_path / "s00.npy", first)  # one sample without batch dim
    np.save(tmp_path / "s01.npy", second)  # a batch of 4
    np.save(tmp_path / "s02.npy", third)  # one sample with batch dim 1
    data = load_calibration_file(tmp_path, [IMAGE])
    np.testing.assert_array_equal(data.array("input"),
                                  np.concatenate([first[None], second, third]))


def test_directory_with_one_file_of_any_name(tmp_path: Path) -> None:
    np.save(tmp_path / "calibration_images.npy", images(9))
    assert len(load_calibration_file(tmp_path, [IMAGE])) == 9


def test_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="holds no .npy files"):
        load_calibration_file(tmp_path, [IMAGE])
    np.save(tmp_path / "x.npy", np.zeros((2, 6)))
    with pytest.raises(CalibrationError, match="multi-input model needs.*a.npy, b.npy"):
        load_calibration_file(tmp_path, [A, B])
    (tmp_path / "broken.npy").write_bytes(b"garbage")
    with pytest.raises(CalibrationError, match="broken.npy.*not a readable .npy"):
        load_calibration_file(tmp_path, [A])


def test_missing_file_and_not_an_archive(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError) as exc:
        load_calibration_file(tmp_path / "nope.npz", [IMAGE])
    assert "nope.npz" in one_line(exc) and "no such file" in str(exc.value)
    (tmp_path / "data.csv").write_text("1,2,3\n")
    with pytest.raises(CalibrationError, match=r"data.csv' is not a \.npz archive"):
        load_calibration_file(tmp_path / "data.csv", [IMAGE])


def test_empty_npz(tmp_path: Path) -> None:
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(CalibrationError, match="empty"):
        load_calibration_file(tmp_path / "empty.npz", [IMAGE])


def test_object_arrays_are_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "obj.npz", input=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CalibrationError, match="obj.npz.*Python objects"):
        load_calibration_file(tmp_path / "obj.npz", [IMAGE])


# ---- validation (shared by every form) -----------------------------------------------------


def test_wrong_shape_names_input_expected_and_got(tmp_path: Path) -> None:
    np.savez(tmp_path / "cal.npz", input=np.zeros((2, 3, 5, 4), np.float32))
    with pytest.raises(CalibrationError) as exc:
        load_calibration_file(tmp_path / "cal.npz", [IMAGE])
    message = one_line(exc)
    assert "input 'input'" in message and "cal.npz" in message
    assert "[2, 3, 5, 4]" in message and "[N, 3, 4, 5]" in message


def test_channels_last_data_gets_a_layout_hint() -> None:
    with pytest.raises(CalibrationError, match="looks channels-last.*ONNX model's layout"):
        calibration_set_from_arrays([np.zeros((2, 4, 5, 3))], [IMAGE])


def test_stack_of_batch_one_samples_is_accepted() -> None:
    x = images(4)
    data = calibration_set_from_arrays({"input": x[:, None]}, [IMAGE])  # [4, 1, 3, 4, 5]
    np.testing.assert_array_equal(data.array("input"), x)


def test_dtypes() -> None:
    data = calibration_set_from_arrays(np.arange(12.0).reshape(2, 6), [A])  # float64
    assert data.array("a").dtype == np.float32
    assert calibration_set_from_arrays(np.ones((2, 6), np.uint8), [A]).array("a").sum() == 12
    with pytest.raises(CalibrationError) as exc:
        calibration_set_from_arrays(np.array([["x"] * 6]), [A])
    assert "input 'a'" in one_line(exc) and "dtype <U1" in str(exc.value)
    with pytest.raises(CalibrationError, match="complex"):
        calibration_set_from_arrays(np.ones((1, 6), np.complex64), [A])
    ids = InputSpec("ids", (1, 4), np.int64)
    assert calibration_set_from_arrays(np.ones((1, 4), np.int32), [ids]).array("ids").dtype \
        == np.int64
    with pytest.raises(CalibrationError, match="expected integers"):
        calibration_set_from_arrays(np.ones((1, 4)), [ids])


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "Inf"), (-np.inf, "Inf")])
def test_non_finite_values_name_the_sample(bad: float, word: str) -> None:
    x = np.zeros((5, 6), np.float32)
    x[3, 2] = bad
    with pytest.raises(CalibrationError) as exc:
        calibration_set_from_arrays({"a": x}, [A])
    assert "input 'a'" in one_line(exc) and f"contains {word} in sample 3" in str(exc.value)


def test_inconsistent_sample_counts() -> None:
    with pytest.raises(CalibrationError, match="different sample counts.*'a': 2, 'b': 3"):
        calibration_set_from_arrays({"a": np.zeros((2, 6)), "b": np.zeros((3, 2, 2))}, [A, B])


def test_empty_set() -> None:
    with pytest.raises(CalibrationError, match="empty"):
        calibration_set_from_arrays(np.zeros((0, 6)), [A])


def test_input_spec_needs_batch_one() -> None:
    with pytest.raises(CalibrationError, match="input 'x'.*batch dimension of 1"):
        InputSpec("x", (4, 3))


# ---- the Python API (representative_dataset) -----------------------------------------------


def test_iterable_of_lists_with_and_without_batch_dim() -> None:
    samples = [images(1)[0] for _ in range(3)]
    items = [[samples[0]], [samples[1][None]], (samples[2],)]
    data = calibration_set_from_iterable(items, [IMAGE])
    np.testing.assert_array_equal(data.array("input"), np.stack(samples))


def test_generator_function_of_dicts() -> None:
    def representative_dataset():
        for i in range(4):
            yield {"b": np.full((1, 2, 2), i, np.float32), "a": np.zeros(6)}

    data = calibration_set_from_iterable(representative_dataset, [A, B])
    assert len(data) == 4 and data.array("b")[:, 0, 0].tolist() == [0, 1, 2, 3]


def test_iterable_of_bare_arrays_for_single_input() -> None:
    assert len(calibration_set_from_iterable(iter(images(3)), [IMAGE])) == 3


def test_iterable_errors_name_the_sample() -> None:
    with pytest.raises(CalibrationError) as exc:
        calibration_set_from_iterable([[np.zeros(6), np.zeros((2, 2))], [np.zeros(6)]], [A, B])
    assert "sample 1" in one_line(exc) and "1 array(s)" in str(exc.value)
    assert "'a', 'b'" in str(exc.value)
    with pytest.raises(CalibrationError, match="sample 0.*unknown key.*'c'.*'a', 'b'"):
        calibration_set_from_iterable([{"a": np.zeros(6), "c": np.zeros(4)}], [A, B])
    with pytest.raises(CalibrationError, match="input 'b'.*sample 0.*\\[N, 2, 2\\]"):
        calibration_set_from_iterable([[np.zeros(6), np.zeros(3)]], [A, B])
    with pytest.raises(CalibrationError, match="yielded no samples"):
        calibration_set_from_iterable(iter([]), [IMAGE])
    with pytest.raises(CalibrationError, match="must be iterable"):
        calibration_set_from_iterable(42, [IMAGE])  # type: ignore[arg-type]


# ---- CalibrationSet -------------------------------------------------------------------------


def test_batches_len_and_head() -> None:
    x = images(10)
    data = calibration_set_from_arrays([x], [IMAGE])
    sizes = [len(batch["input"]) for batch in data.batches(4, quiet=True)]
    assert sizes == [4, 4, 2] and len(data) == 10
    np.testing.assert_array_equal(
        np.concatenate([b["input"] for b in data.batches(3, quiet=True)]), x)
    assert len(data.head(3)) == 3 and data.head(0) is data and data.head(99) is data
    with pytest.raises(CalibrationError, match="batch size"):
        next(data.batches(0))


def test_fingerprint_is_stable_and_sensitive() -> None:
    x = images(4)
    first = calibration_set_from_arrays([x], [IMAGE])
    assert first.fingerprint() == calibration_set_from_arrays([x.copy()], [IMAGE]).fingerprint()
    assert len(first.fingerprint()) == 64
    changed = x.copy()
    changed[1, 0, 0, 0] += 1e-3
    assert calibration_set_from_arrays([changed], [IMAGE]).fingerprint() != first.fingerprint()
    assert first.head(3).fingerprint() != first.fingerprint()
    renamed = InputSpec("other", IMAGE.shape)
    assert calibration_set_from_arrays([x], [renamed]).fingerprint() != first.fingerprint()


def test_arrays_are_read_only() -> None:
    data = calibration_set_from_arrays([images(2)], [IMAGE])
    with pytest.raises(ValueError):
        data.array("input")[0, 0, 0, 0] = 1.0


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal() -> None:
    data = calibration_set_from_arrays([images(10)], [IMAGE])
    stream = FakeTerminal()
    for _ in data.batches(4, stream=stream):
        pass
    text = stream.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1
    assert "10/10 samples" in text and "/s" in text and "0/10 samples" in text


def test_progress_bar_hidden_when_quiet_or_not_a_terminal() -> None:
    data = calibration_set_from_arrays([images(3)], [IMAGE])
    quiet, plain = FakeTerminal(), io.StringIO()
    list(data.batches(2, quiet=True, stream=quiet))
    list(data.batches(2, stream=plain))
    assert quiet.getvalue() == "" and plain.getvalue() == ""


def test_progress_bar_ends_the_line_when_iteration_stops_early() -> None:
    stream = FakeTerminal()
    progress = Progress(100, stream=stream, interval=0.0)
    progress.update(10)
    progress.close()
    text = stream.getvalue()
    assert "10/100 samples" in text and text.endswith("\n") and text.count("\n") == 1


def test_input_specs_from_graph_undo_the_layout_permutation() -> None:
    graph = Graph()
    graph.add_input("image", TensorType(DType.FLOAT32, (1, 4, 5, 3)))  # NHWC physical
    graph.add_input("features", TensorType(DType.FLOAT32, (1, 6)))
    graph.meta["io_perms"] = {"image": [0, 2, 3, 1]}
    specs = input_specs_from_graph(graph)
    assert specs == [InputSpec("image", (1, 3, 4, 5)), InputSpec("features", (1, 6))]


def test_set_checks_its_arrays() -> None:
    with pytest.raises(CalibrationError, match="do not match the model inputs"):
        CalibrationSet([A], {"b": np.zeros((1, 6))})


def test_progress_lines_off_a_terminal() -> None:
    plain = io.StringIO()
    progress = Progress(200, stream=plain, line_interval=0.0)
    for done in (0, 50, 120, 200):
        progress.update(done)
    progress.close()
    lines = plain.getvalue().splitlines()
    assert "\r" not in plain.getvalue() and len(lines) == 5
    assert lines[2].startswith("progress: calibrating 120/200 samples (60%), ")
    assert "/s, " in lines[2] and lines[-1].startswith("progress: calibrating 200/200 samples")
    quiet = io.StringIO()
    progress = Progress(200, stream=quiet, enabled=False, line_interval=0.0)
    progress.update(100)
    progress.close()
    assert quiet.getvalue() == ""
    slow = io.StringIO()  # the default interval: a short loop prints nothing
    progress = Progress(200, stream=slow)
    progress.update(200)
    progress.close()
    assert slow.getvalue() == ""
