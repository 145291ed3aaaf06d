"""Functions in the service stay short enough to read in one screen."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("teleradiology", "storage", "worker")
MOST_LINES = 80


def _functions(package: str) -> list[tuple[str, int]]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                found.append((f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", lines))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_the_package_has_functions_to_measure(package: str) -> None:
    assert len(_functions(package)) > 5


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_is_longer_than_a_screen(package: str) -> None:
    too_long = [
        f"{where} ({lines} lines)" for where, lines in _functions(package) if lines > MOST_LINES
    ]
    assert too_long == [], f"functions over {MOST_LINES} lines: {too_long}"
