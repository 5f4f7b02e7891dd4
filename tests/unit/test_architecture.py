"""The shape of the code, checked: the import-linter contracts of pyproject.toml (no cycles,
layered domains, pure rules, entry points that only call services and flows), and no module
that reaches into a dependency's private modules or names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "shequn"

# Names with a leading underscore that a library documents as public (SQLAlchemy's rows take
# the underscore so that a column may be called `mapping` or `fields`).
DOCUMENTED = frozenset({"_mapping", "_fields", "_asdict", "_replace", "_make", "_t", "_tuple"})


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 5 kept, 0 broken." in result.stdout


def _own_private_names(trees: list[ast.Module]) -> set[str]:
    """Every `_name` the project itself defines: functions, classes, attributes, variables,
    arguments and import aliases."""
    names: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.alias):
                names.add(node.asname or node.name.split(".")[0])
    return {n for n in names if n.startswith("_")}


def private_reaches(path: Path, tree: ast.Module, own: set[str]) -> list[str]:
    """Where `tree` imports a private module or name of another package, or reads a private
    attribute the project does not define itself."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] != "shequn" and any(p.startswith("_") for p in parts):
                    found.append(f"{path}:{node.lineno} imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == "shequn" or parts[0] == "__future__":
                continue
            if any(p.startswith("_") for p in parts):
                found.append(f"{path}:{node.lineno} imports from {node.module}")
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{path}:{node.lineno} imports {node.module}.{alias.name}")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in own
            and node.attr not in DOCUMENTED
        ):
            found.append(f"{path}:{node.lineno} reads .{node.attr}")
    return found


def test_no_module_reaches_into_a_dependencys_private_parts() -> None:
    files = sorted(SRC.rglob("*.py"))
    trees = [ast.parse(p.read_text(), filename=str(p)) for p in files]
    own = _own_private_names(trees)
    found = [
        reach
        for path, tree in zip(files, trees, strict=True)
        for reach in private_reaches(path.relative_to(ROOT), tree, own)
    ]
    assert found == []


def test_the_check_finds_what_it_looks_for() -> None:
    sample = ast.parse(
        "import uvicorn.protocols._impl\n"
        "from uvicorn._types import ASGI\n"
        "from sqlalchemy.sql import _typing\n"
        "from shequn._own import ours\n"
        "compiled._bind_processors\n"
        "row._mapping\n"
        "self._mine\n"
    )
    assert private_reaches(Path("sample.py"), sample, {"_mine", "_own"}) == [
        "sample.py:1 imports uvicorn.protocols._impl",
        "sample.py:2 imports from uvicorn._types",
        "sample.py:3 imports sqlalchemy.sql._typing",
        "sample.py:5 reads ._bind_processors",
    ]
