"""The codebase's shape, checked: ``loans`` is the core and imports no other app; no other app
imports a ``_private`` name of ``loans``; modules stay small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OTHER_APPS = ("servicing", "modifications")
MAX_LINES = 600


def _python_files(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """Every import in the file (also inside functions): (module, imported names)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def test_loans_imports_no_other_app():
    offending = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in _python_files("loans")
        for module, _names in _imports(path)
        if module.split(".")[0] in OTHER_APPS
    ]
    assert offending == []


def test_no_app_imports_a_private_name_of_loans():
    offending = []
    for app in (*OTHER_APPS, "bench"):
        for path in _python_files(app):
            for module, names in _imports(path):
                if module.split(".")[0] != "loans":
                    continue
                private = [n for n in names if n.startswith("_")]
                if private or any(part.startswith("_") for part in module.split(".")):
                    offending.append(f"{path.relative_to(ROOT)}: {module} {private}")
    assert offending == []


def test_no_attribute_access_to_a_private_name_of_a_loans_module():
    """``loan_services._actor(...)`` style access is as private as an import of it."""
    offending = []
    for app in (*OTHER_APPS, "bench"):
        for path in _python_files(app):
            tree = ast.parse(path.read_text())
            aliases = {
                alias.asname or alias.name
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == "loans"
                for alias in node.names
            }
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in aliases
                    and node.attr.startswith("_")
                ):
                    offending.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} {node.value.id}.{node.attr}"
                    )
    assert offending == []


def test_modules_over_the_limit_say_why_at_their_top():
    """A module over ~600 lines carries a "Why this module is long:" note in its docstring."""
    offending = []
    for app in ("loans", *OTHER_APPS):
        for path in _python_files(app):
            text = path.read_text()
            if text.count("\n") > MAX_LINES and "Why this module is long:" not in (
                ast.get_docstring(ast.parse(text)) or ""
            ):
                offending.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
    assert offending == []
