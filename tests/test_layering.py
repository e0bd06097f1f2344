"""Dependencies point one way: server/clients -> federation -> protocols."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "protocols": {"flwr", "torch", "pandas", "federation", "clients", "server"},
    "federation": {"clients", "server"},
    "clients": {"server"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_packages_import_only_downwards() -> None:
    problems = []
    for package, banned in FORBIDDEN.items():
        for path in (REPO / package).rglob("*.py"):
            bad = imported_roots(path) & banned
            if bad:
                problems.append(f"{path.relative_to(REPO)} imports {sorted(bad)}")
    assert not problems, problems


def test_importing_protocols_loads_neither_torch_nor_flwr() -> None:
    code = ("import importlib, pkgutil, sys, protocols\n"
            "for m in pkgutil.iter_modules(protocols.__path__):\n"
            "    importlib.import_module('protocols.' + m.name)\n"
            "print(sorted(k for k in ('torch', 'flwr') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
