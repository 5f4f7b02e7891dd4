"""The strict tooling is part of the suite: lint, format and types must be clean."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "shequn"


CHECKED = [name for name in ("src", "tests", "bench") if (ROOT / name).is_dir()]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_ruff_lint_is_clean() -> None:
    result = _run("ruff", "check", *CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run("ruff", "format", "--check", *CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


FORBIDDEN_IN_RULES = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "shequn.db",
    "shequn.clock",
    "datetime.datetime.now",
)


@pytest.mark.parametrize("path", sorted(SRC.rglob("rules.py")), ids=lambda p: p.parent.name)
def test_rules_modules_stay_pure(path: Path) -> None:
    """Pure policy never reaches for the database, the web framework or the wall clock."""
    tree = ast.parse(path.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "today"):
            pytest.fail(f"{path} reads the clock")
    bad = sorted(m for m in imported if m.startswith(FORBIDDEN_IN_RULES))
    assert bad == []
