"""Dependencies point one way: fedcredit -> clients | server -> federation -> protocols.

* ``protocols`` imports no flwr, torch or pandas and nothing of ours above it;
* ``federation`` imports no ``clients``, ``server`` or ``fedcredit``, and only its wire package
  (``federation/wire/``) imports flwr;
* ``clients`` and ``server`` never import each other, nor ``fedcredit`` (the composition root).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = {"protocols", "federation", "clients", "server", "fedcredit"}
FORBIDDEN = {
    "protocols": {"flwr", "torch", "pandas", "federation", "clients", "server", "fedcredit"},
    "federation": {"clients", "server", "fedcredit"},
    "clients": {"server", "fedcredit"},
    "server": {"clients", "fedcredit"},
}
FLWR_ALLOWED_IN_FEDERATION = REPO / "federation" / "wire"


def imported_roots(source: str) -> set[str]:
    """Top-level package names a module imports (absolute imports, at any depth of the file)."""
    tree = ast.parse(source)
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            roots.add("<relative>")
    return roots


def violations(package: str, path: Path, source: str) -> list[str]:
    """Why ``path`` (a module of ``package``) breaks the layering, if it does."""
    roots = imported_roots(source)
    problems = [f"imports {sorted(roots & FORBIDDEN.get(package, set()))}"] if (
        roots & FORBIDDEN.get(package, set())) else []
    if package == "federation" and "flwr" in roots and FLWR_ALLOWED_IN_FEDERATION not in path.parents:
        problems.append("imports flwr outside federation/wire/")
    if "<relative>" in roots:
        problems.append("uses a relative import (write the absolute module path)")
    return problems


def layering_problems(repo: Path = REPO) -> list[str]:
    problems = []
    for package in FORBIDDEN:
        for path in sorted((repo / package).rglob("*.py")):
            for why in violations(package, path, path.read_text(encoding="utf-8")):
                problems.append(f"{path.relative_to(repo)} {why}")
    return problems


def test_packages_import_only_downwards() -> None:
    assert layering_problems() == []


@pytest.mark.parametrize(("package", "where", "line"), [
    ("server", "server/probe.py", "from clients.bank_app import app"),
    ("server", "server/probe.py", "import clients"),
    ("clients", "clients/probe.py", "from server.horizontal import HorizontalRun"),
    ("clients", "clients/probe.py", "from fedcredit.cli.main import main"),
    ("server", "server/probe.py", "def f():\n    from fedcredit.cli import main"),
    ("federation", "federation/ml/probe.py", "import flwr"),
    ("federation", "federation/ml/probe.py", "from server.audit import AuditLog"),
    ("protocols", "protocols/psi/probe.py", "import torch"),
    ("protocols", "protocols/psi/probe.py", "from federation.errors import DataError"),
])
def test_a_forbidden_import_is_caught(package: str, where: str, line: str) -> None:
    assert violations(package, REPO / where, textwrap.dedent(line))


def test_flwr_is_allowed_in_the_wire_package_only() -> None:
    assert violations("federation", REPO / "federation/wire/records.py", "import flwr") == []
    assert violations("federation", REPO / "federation/run/config.py", "import flwr")


def test_importing_protocols_loads_neither_torch_nor_flwr() -> None:
    code = ("import importlib, pkgutil, sys, protocols\n"
            "for m in pkgutil.walk_packages(protocols.__path__, 'protocols.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(sorted(k for k in ('torch', 'flwr', 'pandas') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_package_says_what_it_may_import() -> None:
    missing = [str(p.relative_to(REPO)) for root in OURS for p in (REPO / root).rglob("__init__.py")
               if "may import" not in (ast.get_docstring(ast.parse(p.read_text("utf-8"))) or "").lower()]
    assert missing == []
