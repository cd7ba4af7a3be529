"""No import circle anywhere in cnn_core: between any two of its modules (a package's
``__init__`` counted as a module), lazy imports inside functions included. The layers between
cnn_core's top-level modules are import-linter's contract (pyproject.toml); this covers the
modules inside each package as well."""

from __future__ import annotations

import grimp

from tests.conftest import PROJECT


def circles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """The import circles among ``package``'s modules: each strongly connected set of two or
    more modules, sorted (Tarjan's algorithm)."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in modules:
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            members = []
            while (top := stack.pop()) != module:
                members.append(top)
            if members:
                found.append(sorted([module, *members]))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_in_cnn_core(monkeypatch):
    monkeypatch.syspath_prepend(str(PROJECT))
    graph = grimp.build_graph("cnn_core", exclude_type_checking_imports=False)
    assert circles(graph, "cnn_core") == []


def test_a_circle_through_a_lazy_import_is_found(tmp_path, monkeypatch):
    """The check sees what it is for: a package whose module imports the package back inside a
    function (as data.spec once did with ``from . import dataset_info``)."""
    package = tmp_path / "circled"
    package.mkdir()
    (package / "__init__.py").write_text("from .spec import Spec\n")
    (package / "spec.py").write_text(
        "class Spec:\n    def of(self):\n        from . import registry\n        return registry\n"
    )
    (package / "leaf.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("circled")
    assert circles(graph, "circled") == [["circled", "circled.spec"]]


def test_cnn_core_imports_nothing_dynamically():
    """Imports by name at run time (importlib.import_module, __import__) are invisible to the
    layers contract and to the check above: cnn_core has none (the bench, which it once loaded
    that way, is ``python -m benchmarks``)."""
    dynamic = [
        f"{path.relative_to(PROJECT)}:{number}"
        for path in sorted((PROJECT / "cnn_core").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "import_module(" in line or "__import__(" in line
    ]
    assert dynamic == []
