"""Pages and ui/ never branch on a dataset's name or family: the dataset's registry entry
(:class:`cnn_core.data.DatasetInfo`, its source status) answers. Scanned from the source: any
condition (if/elif/while, a conditional expression, a comprehension's if, an assert, a
comparison or a match) holding a dataset name or family as text, or reading ``family``."""

from __future__ import annotations

import ast
from pathlib import Path

from cnn_core.data import DATASETS
from tests.conftest import PROJECT

NAMES = set(DATASETS) | {info.family for info in DATASETS.values()}


def _conditions(tree: ast.AST) -> list[ast.AST]:
    found: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If | ast.While | ast.IfExp | ast.Assert):
            found.append(node.test)
        elif isinstance(node, ast.comprehension):
            found.extend(node.ifs)
        elif isinstance(node, ast.Compare):
            found.append(node)
        elif isinstance(node, ast.Match):
            found.append(node.subject)
            for case in node.cases:
                found.extend([case.pattern, *([case.guard] if case.guard else [])])
    return found


def branches(source: str) -> list[tuple[int, str]]:
    """(line, what) for each condition naming a dataset or family, or reading ``family``."""
    out = []
    for condition in _conditions(ast.parse(source)):
        for node in ast.walk(condition):
            if isinstance(node, ast.Constant) and node.value in NAMES:
                out.append((node.lineno, repr(node.value)))
            elif isinstance(node, ast.Attribute) and node.attr == "family":
                out.append((node.lineno, ".family"))
            elif isinstance(node, ast.Subscript) and getattr(node.slice, "value", None) == "family":
                out.append((node.lineno, "['family']"))
    return sorted(set(out))


def test_no_page_or_ui_module_branches_on_a_dataset():
    files = sorted([*(PROJECT / "pages").rglob("*.py"), *(PROJECT / "ui").rglob("*.py")])
    found = [
        f"{Path(path).relative_to(PROJECT)}:{line}: {what}"
        for path in files
        for line, what in branches(path.read_text())
    ]
    assert found == []


def test_the_scan_sees_each_kind_of_branch():
    source = (
        "if info.family == 'folder':\n    pass\n"
        "x = 1 if name in ('mnist', 'other') else 2\n"
        "ys = [s for s in sources if s['family'] != 'x']\n"
        "match name:\n    case 'celeba':\n        label = 'mnist'  # a value in its body\n"
        "default = 'fashion-mnist'  # a value, not a condition\n"
    )
    assert branches(source) == [
        (1, "'folder'"),
        (1, ".family"),
        (3, "'mnist'"),
        (4, "['family']"),
    ] + [(6, "'celeba'")]
