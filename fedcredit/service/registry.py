"""The model registry: numbered versions of promoted models, and the served one, hot-reloaded.

Layout of a registry folder (each institution keeps its own)::

    REGISTRY/NAME/current            the promoted version number ("3")
    REGISTRY/NAME/v0003/model.json   the part this institution serves (format below)

``fedcredit models promote RUN_DIR --name NAME`` reads a run's LR as a scorecard (a
``fedcredit simulate`` LR run folder, or the ``scorecard.json`` of ``fedcredit
export-scorecard``), keeps the part this institution serves (``--part whole`` for a model the
bank serves alone; ``bank`` or ``center`` with ``--center-columns`` for a vertical model), writes
it as the next version, then points ``current`` at it (write-then-rename, so a reader sees the
old or the new version, never half of one).

Both parties promote the same scorecard; ``model_id`` (a hash of the whole scorecard) lets the
bank check that the center answers with the other half of the same model.

Security assumption: a part file holds only that party's weights; the center's registry never
holds the bank's part, nor the bank's the center's.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fedcredit.service.errors import RegistryError
from fedcredit.service.model_parts import PARTS, split_scorecard
from federation.errors import FedCreditError
from federation.run.folder import SCORECARD_FILE, atomic_write_text
from federation.run.tree_part import TreeBankPart, TreeCenterPart
from federation.scorecard.linear import LinearScorecard
from federation.scorecard.scale import RiskGrades, ScorecardScale

MODEL_FORMAT = "fedcredit-served-model"
MODEL_SCHEMA_VERSION = 1
CURRENT_FILE = "current"
MODEL_FILE = "model.json"


@dataclass(frozen=True)
class ServedModel:
    """One promoted version of one party's part of a model."""

    name: str
    version: int
    part: str
    model_id: str
    card: LinearScorecard
    center_columns: tuple[str, ...]
    source: str
    promoted_at: str
    trees: TreeBankPart | TreeCenterPart | None = None
    """A SecureBoost part (:mod:`federation.run.tree_part`); ``card`` then holds only the
    points scale and grades (no columns)."""

    def __post_init__(self) -> None:
        if self.part not in PARTS:
            raise ValueError(f"part is {self.part!r}; one of {', '.join(PARTS)}")
        if self.trees is not None and not isinstance(
                self.trees, TreeBankPart if self.part == "bank" else TreeCenterPart):
            raise ValueError(f"a SecureBoost model's '{self.part}' part holds the wrong trees")

    @property
    def label(self) -> str:
        """``NAME/vN``: what responses and log rows name."""
        return f"{self.name}/v{self.version}"

    def to_json(self) -> str:
        """The part's ``model.json``."""
        return json.dumps({
            "format": MODEL_FORMAT, "schema_version": MODEL_SCHEMA_VERSION, "name": self.name,
            "version": self.version, "part": self.part, "model_id": self.model_id,
            "center_columns": list(self.center_columns), "source": self.source,
            "promoted_at": self.promoted_at, "scorecard": self.card.to_dict(),
            "trees": self.trees.to_dict() if self.trees is not None else None}, indent=1)

    @classmethod
    def from_json(cls, text: str, where: str) -> ServedModel:
        """Inverse of :meth:`to_json`; RegistryError naming ``where`` otherwise."""
        try:
            doc = json.loads(text)
            if doc.get("format") != MODEL_FORMAT or doc.get("schema_version") != MODEL_SCHEMA_VERSION:
                raise ValueError(f"not a {MODEL_FORMAT} v{MODEL_SCHEMA_VERSION} file")
            return cls(str(doc["name"]), int(doc["version"]), str(doc["part"]),
                       str(doc["model_id"]), LinearScorecard.from_json(json.dumps(doc["scorecard"])),
                       tuple(str(c) for c in doc["center_columns"]), str(doc["source"]),
                       str(doc["promoted_at"]), _trees(doc.get("trees"), str(doc["part"])))
        except (ValueError, KeyError, TypeError, AttributeError, FedCreditError) as exc:
            raise RegistryError(f"{where}: unreadable promoted model ({exc}); promote the run "
                                "again with `fedcredit models promote`.") from exc


def _trees(raw: dict[str, Any] | None, part: str) -> TreeBankPart | TreeCenterPart | None:
    if raw is None:
        return None
    return TreeBankPart.from_dict(raw) if part == "bank" else TreeCenterPart.from_dict(raw)


def read_scorecard(source: Path, *, scale: ScorecardScale, grades: RiskGrades) -> LinearScorecard:
    """The LR of ``source`` as a scorecard: a scorecard.json file, a folder holding one, or a
    ``fedcredit simulate`` LR run folder."""
    from federation.scorecard.scoring import load_run_model

    path = source / SCORECARD_FILE if source.is_dir() else source
    if path.is_file():
        return LinearScorecard.from_json(path.read_text(encoding="utf-8"))
    return load_run_model(source).scorecard(scale, grades)


def model_id(card: LinearScorecard) -> str:
    """SHA-256 of the whole scorecard's JSON: the same on both parties' parts."""
    return hashlib.sha256(card.to_json().encode("utf-8")).hexdigest()


class ModelRegistry:
    """One institution's registry folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def versions(self, name: str) -> list[int]:
        """Promoted version numbers of ``name``, ascending."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(int(p.name[1:]) for p in folder.glob("v[0-9]*") if p.name[1:].isdigit())

    def current(self, name: str) -> int:
        """The version ``serve`` loads; RegistryError when nothing is promoted."""
        try:
            return int((self.root / name / CURRENT_FILE).read_text(encoding="utf-8").strip())
        except (OSError, ValueError) as exc:
            raise RegistryError(f"{self.root}: no promoted version of model '{name}'; promote one "
                                f"with `fedcredit models promote RUN_DIR --name {name}`.") from exc

    def load(self, name: str, version: int | None = None) -> ServedModel:
        """The promoted (or a given) version of ``name``."""
        number = self.current(name) if version is None else version
        path = self.root / name / f"v{number:04d}" / MODEL_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RegistryError(f"{self.root}: model '{name}' has no version {number}; list them "
                                "with `fedcredit models list`.") from exc
        return ServedModel.from_json(text, f"{name} v{number}")

    def promote_trees(self, trees: TreeBankPart | TreeCenterPart, *, name: str, model_id: str,
                      source: str, scale: ScorecardScale, grades: RiskGrades,
                      now: datetime | None = None) -> ServedModel:
        """Write a party's SecureBoost part as the next version of ``name`` and make it current
        (the bank's part: ``part`` bank; the center's: center). Both parties pass the same
        ``model_id`` (derived from the training run), which the bank checks at every query."""
        part = "bank" if isinstance(trees, TreeBankPart) else "center"
        card = LinearScorecard(scale, grades, 0.0, (), ())  # points scale and grades only
        folder = self.root / name
        if not name or not all(ch.isalnum() or ch in "-_." for ch in name) or name[0] == ".":
            raise RegistryError(f"model name '{name}' must be letters, digits, '-', '_', '.'.")
        folder.mkdir(parents=True, exist_ok=True)
        with _Lock(folder / ".promote.lock"):
            version = max(self.versions(name), default=0) + 1
            stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
            served = ServedModel(name, version, part, model_id, card, (), source, stamp, trees)
            atomic_write_text(folder / f"v{version:04d}" / MODEL_FILE, served.to_json())
            atomic_write_text(folder / CURRENT_FILE, f"{version}\n")
        return served

    def promote(self, card: LinearScorecard, *, name: str, part: str, source: str,
                center_columns: Sequence[str] = (), now: datetime | None = None) -> ServedModel:
        """Write ``part`` of ``card`` as the next version of ``name`` and make it current.

        Raises
        ------
        RegistryError
            A bad name or part, or center columns that do not split the model.
        """
        _check_name(name)
        if part not in PARTS or (part == "whole") != (not center_columns):
            raise RegistryError("--part whole takes no --center-columns; --part bank or center "
                                "needs them (the columns the credit center holds).")
        try:
            served_card = card if part == "whole" else split_scorecard(card, center_columns)[
                PARTS.index(part) - 1]
        except ValueError as exc:
            raise RegistryError(f"cannot split the model: {exc}.") from exc
        return self._next_version(name, part, model_id(card), served_card, center_columns,
                                  source, now)

    def promote_part(self, card: LinearScorecard, *, name: str, part: str, model_id: str,
                     source: str, center_columns: Sequence[str] = (),
                     now: datetime | None = None) -> ServedModel:
        """Write a part a party already holds alone (a vertical run's, whose whole model no one
        holds: :mod:`federation.run.vertical_part`) as the next version of ``name``.

        Raises
        ------
        RegistryError
            A bad name, or a part other than bank or center.
        """
        _check_name(name)
        if part not in PARTS[1:]:
            raise RegistryError(f"a vertical run's part is bank or center, not '{part}'; pass "
                                "--part bank or --part center.")
        return self._next_version(name, part, model_id, card, center_columns, source, now)

    def _next_version(self, name: str, part: str, mid: str, served_card: LinearScorecard,
                      center_columns: Sequence[str], source: str,
                      now: datetime | None) -> ServedModel:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        with _Lock(folder / ".promote.lock"):
            version = max(self.versions(name), default=0) + 1
            stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
            served = ServedModel(name, version, part, mid, served_card,
                                 tuple(center_columns), source, stamp)
            atomic_write_text(folder / f"v{version:04d}" / MODEL_FILE, served.to_json())
            atomic_write_text(folder / CURRENT_FILE, f"{version}\n")
        return served


def _check_name(name: str) -> None:
    if not name or not all(ch.isalnum() or ch in "-_." for ch in name) or name[0] == ".":
        raise RegistryError(f"model name '{name}' must be letters, digits, '-', '_', '.'.")


class _Lock:
    """An exclusive lock file (two promotions never take the same number)."""

    def __init__(self, path: Path, timeout_s: float = 10.0) -> None:
        self.path, self.timeout_s = path, timeout_s

    def __enter__(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return
            except FileExistsError:
                if time.monotonic() > deadline:
                    raise RegistryError(f"{self.path} is held by another promotion; if none "
                                        "runs, delete the file.") from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


class ModelHolder:
    """The served version of one model, swapped when a new one is promoted.

    A request takes :attr:`served` (a ``(model, prepared)`` pair) once and uses it throughout,
    so a promotion never changes a request in flight; :meth:`refresh` (acting at most every
    ``interval_s``) loads the new version fully and builds ``prepare(model)`` (e.g. the
    center's partial logits of its whole table) before swapping the one reference.
    """

    def __init__(self, registry: ModelRegistry, name: str, *, interval_s: float,
                 prepare: Callable[[ServedModel], object] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._registry, self._name, self._interval = registry, name, interval_s
        self._prepare = prepare or (lambda m: None)
        self._clock = clock
        self._lock = threading.Lock()
        model = registry.load(name)
        self.served: tuple[ServedModel, object] = (model, self._prepare(model))
        self._checked = clock()

    def refresh(self) -> bool:
        """Load a newer promotion if there is one; True when the served version changed."""
        now = self._clock()
        if now - self._checked < self._interval or not self._lock.acquire(blocking=False):
            return False
        try:
            self._checked = now
            version = self._registry.current(self._name)
            if version == self.served[0].version:
                return False
            model = self._registry.load(self._name, version)
            self.served = (model, self._prepare(model))
            return True
        except RegistryError:
            return False  # keep serving the loaded version; the next check tries again
        finally:
            self._lock.release()
