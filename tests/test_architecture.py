"""The architecture's rules, checked: layers, no cycles, traits over op lists, line budget.

* the import-layer contract (``tools/check_imports.py``) holds on the tree, and the
  checker itself catches an upward import, a core package cycle and a facade import
  in small synthetic trees (and ignores ``TYPE_CHECKING`` imports);
* no Python module (package, tools or tests) is over ``LINE_BUDGET`` lines, and no C
  kernel header;
* every target op the backends translate is defined with its traits, and the TFLite
  writer needs no table of its own (each ``tfl.*`` op names its builtin).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from microlith.ir.ops import all_ops
from tools import check_imports

REPO = Path(__file__).resolve().parents[1]
LINE_BUDGET = 500


def test_the_tree_keeps_the_import_contract() -> None:
    assert check_imports.check() == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for folder in check_imports.FOLDERS:
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "__init__.py").touch()
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent != tmp_path and not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").touch()
        path.write_text(text)
    return tmp_path


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "compiler/ir/core.py": "def f():\n    from microlith.passes import p  # late\n",
        "passes/p.py": "import microlith.ir.core\n",
        "compiler/app/cli.py": "import microlith.backends.b\nimport microlith.passes.p\n",
        "backends/b.py": "from microlith.passes import p\n"})
    problems = check_imports.check(root)
    assert problems == ["microlith.ir.core (core) imports microlith.passes.p (passes): upward"]


def test_a_core_package_cycle_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "compiler/ir/core.py": "from microlith.ops import conv\n",
        "compiler/ops/conv.py": "from ..ir.core import Graph\n",
        "compiler/quant/k.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                               "    from microlith.app import cli\n"})
    problems = check_imports.check(root)
    assert len(problems) == 1 and "cycle" in problems[0]
    assert "microlith.ir -> microlith.ops -> microlith.ir" in problems[0]


def test_importing_the_facade_from_inside_is_caught(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"passes/p.py": "from microlith import compile_onnx\n"})
    assert check_imports.check(root) == [
        "microlith.passes.p imports the facade microlith (import the module itself)"]


@pytest.mark.parametrize("folder", ["compiler", "passes", "backends", "tools", "tests"])
def test_line_budget_of_every_module(folder: str) -> None:
    over = {str(p.relative_to(REPO)): n for p in sorted((REPO / folder).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > LINE_BUDGET}
    assert not over, f"modules over {LINE_BUDGET} lines: {over}"


def test_line_budget_of_the_c_kernel_headers() -> None:
    headers = sorted((REPO / "backends" / "c" / "kernels").glob("*.h"))
    assert len(headers) > 1  # split by op family
    over = {p.name: n for p in headers if (n := len(p.read_text().splitlines())) > LINE_BUDGET}
    assert not over


def test_every_tfl_op_names_its_builtin_and_options() -> None:
    from microlith.formats.tflite.schema import BUILTIN_CODES, options_table

    tfl = {name: op for name, op in all_ops().items() if op.dialect == "tfl"}
    assert len(tfl) > 30
    for name, op in tfl.items():
        assert op.builtin in BUILTIN_CODES and name == f"tfl.{op.builtin.lower()}"
        table = options_table(op.builtin)
        fields = set() if table is None else {f.name for f in table.fields if f is not None}
        assert set(op.attrs) == fields, name


def test_memory_and_layout_facts_are_traits_not_lists() -> None:
    """The passes that used to keep op-name lists read traits now."""
    for module in ("passes/to_nhwc.py", "passes/insert_qdq.py", "passes/fuse_requantize.py",
                   "compiler/memory_plan.py"):
        text = (REPO / module).read_text()
        for old_list in ("ELEMENTWISE_UNARY", "SAME_AS_INPUT", "INT8_OPS = ", "ALIAS_OPS",
                         "INPLACE_OPS", "RESHAPES = "):
            assert old_list not in text, (module, old_list)
