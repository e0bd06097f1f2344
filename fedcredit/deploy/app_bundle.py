"""A lean copy of the Flower app for ``flwr run``.

``flwr run DIR`` walks every file below ``DIR`` before it filters what goes into the app
bundle (FAB); run from the project root that includes the virtual environment (tens of
thousands of files, several seconds on a small machine). The launcher therefore stages the
app: ``pyproject.toml``, the licence and readme, and the Python sources of the packages the
project installs, nothing else. The bundle Flower builds from the stage holds the same code.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

from federation.run.config import REPO_ROOT

TOP_FILES = ("pyproject.toml", "LICENSE", "README.md")


def app_packages(project: Path = REPO_ROOT) -> list[str]:
    """Top-level packages the project installs (``[tool.setuptools] packages.find.include``)."""
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = data["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({p.rstrip("*").rstrip(".") for p in patterns})


def stage_app(dest: Path, project: Path = REPO_ROOT) -> Path:
    """Copy the app's sources into ``dest`` (created); returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in TOP_FILES:
        if (project / name).is_file():
            shutil.copy2(project / name, dest / name)
    for package in app_packages(project):
        for source in (project / package).rglob("*.py"):
            if "__pycache__" in source.parts:
                continue
            target = dest / source.relative_to(project)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest
