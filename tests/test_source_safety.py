"""No pickle, eval, exec or dynamic import of request data anywhere in the shipped code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHIPPED = ["jobsvc", "worker", "migrations", "examples", "wsgi.py"]
FORBIDDEN = {
    "pickle": re.compile(r"\b(c?pickle|dill|shelve|marshal)\b"),
    "eval/exec": re.compile(r"(?<![.\w])(eval|exec|compile)\s*\("),  # builtins, not re.compile
    "__import__": re.compile(r"__import__"),
    "unsafe yaml": re.compile(r"yaml\.(load|unsafe_load)\s*\("),
}
# The one dynamic import: handler modules named by operator configuration, never by a request.
ALLOWED_IMPORT_MODULE = {"jobsvc/registry.py"}


def _sources() -> list[Path]:
    files: list[Path] = []
    for entry in SHIPPED:
        path = REPO / entry
        files.extend([path] if path.is_file() else sorted(path.rglob("*.py")))
    return files


def test_the_scan_sees_the_code():
    names = {str(path.relative_to(REPO)) for path in _sources()}
    assert {"jobsvc/api/jobs.py", "worker/runner.py", "jobsvc/registry.py"} <= names


@pytest.mark.parametrize("rule", sorted(FORBIDDEN))
def test_no_forbidden_construct_in_shipped_code(rule):
    hits = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in _sources()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if FORBIDDEN[rule].search(line)
    ]
    assert hits == []


def test_import_module_only_where_configuration_names_handler_modules():
    users = {
        str(path.relative_to(REPO)) for path in _sources() if "import_module" in path.read_text()
    }
    assert users == ALLOWED_IMPORT_MODULE
