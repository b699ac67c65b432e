"""The import-layer contract: core <- passes <- backends <- app, and no cycles.

    python tools/check_imports.py            # exit 1 and a list of violations if broken

Every ``import`` / ``from ... import`` in the repository's ``compiler/`` (installed as
``microlith``), ``passes/`` (``microlith.passes``) and ``backends/`` (``microlith.backends``)
is read with ``ast`` -- at any depth, function-level imports included; imports under
``if TYPE_CHECKING:`` are left out (they never run). Layers, from the bottom:

* core: every ``microlith.*`` module outside the other three (IR, ops, quant spec,
  interpreter, pipeline machinery, frontends, formats, targets registry);
* passes: ``microlith.passes.*``, which may import core;
* backends: ``microlith.backends.*``, which may import core and passes;
* app: ``microlith.app.*`` and ``microlith.__main__``, which may import anything.

A module may import its own layer and the layers below, never above. Within core, the
subpackages (``microlith.ir``, ``microlith.ops``, ...; a top-level module counts as its
own) must form a DAG. The root ``microlith/__init__.py`` is the public facade and is not
checked (it re-exports the app lazily). import-linter cannot see this layout (its graph
builder expects subpackages inside the package's folder), hence this script; it runs in
``.ci/run`` and in ``tests/test_architecture.py``.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"compiler": "microlith", "passes": "microlith.passes",
           "backends": "microlith.backends"}
LAYERS = ("core", "passes", "backends", "app")


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Installed module name -> source file, for every module of the three folders."""
    modules = {}
    for folder, package in FOLDERS.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The microlith modules ``name`` (at ``path``) imports at run time."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                hit = resolve(alias.name)
                if hit:
                    found.add(hit)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                hit = resolve(f"{base}.{alias.name}") if base else None
                if hit:
                    found.add(hit)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(name)
    return found


def layer_of(module: str) -> str | None:
    if module == "microlith":
        return None  # the facade
    if module == "microlith.__main__" or module.startswith("microlith.app"):
        return "app"
    if module.startswith("microlith.backends"):
        return "backends"
    if module.startswith("microlith.passes"):
        return "passes"
    return "core"


def core_group(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a list of nodes, first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def check(root: Path = ROOT) -> list[str]:
    """Every violation of the contract, as one line each (empty when it holds)."""
    files = module_files(root)
    known = set(files)
    problems = []
    groups: dict[str, set[str]] = defaultdict(set)
    for name, path in files.items():
        source = layer_of(name)
        if source is None:
            continue
        for target in sorted(imports_of(name, path, known)):
            dest = layer_of(target)
            if dest is None:
                problems.append(f"{name} imports the facade microlith (import the module "
                                "itself)")
            elif LAYERS.index(dest) > LAYERS.index(source):
                problems.append(f"{name} ({source}) imports {target} ({dest}): upward")
            elif source == dest == "core" and core_group(name) != core_group(target):
                groups[core_group(name)].add(core_group(target))
    cycle = _cycle(groups)
    if cycle:
        problems.append("core packages import each other in a cycle: " + " -> ".join(cycle))
    return problems


def summary(root: Path = ROOT) -> str:
    files = module_files(root)
    edges = sum(len(imports_of(n, p, set(files))) for n, p in files.items())
    return f"{len(files)} modules, {edges} import edges"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    problems = check()
    for line in problems:
        print(f"import contract: {line}")
    print(f"import contract: {summary()}, {len(problems)} violations")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
