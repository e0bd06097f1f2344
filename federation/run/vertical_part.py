"""One party's part of a trained vertical LR, as that party's node writes it after training.

Step (end of a vertical LR run, issue 15): neither party ever holds the whole model. After the
last update the bank writes its intercept and weights, the center its weights, each beside its
own standardisation (the :class:`~federation.ml.preprocess.Preprocessor` it fitted on its own
training rows) into its own folder: a deployed node under ``fedcredit-models/RUN_ID/`` beside
its data file (or the SuperNode's node-config ``model-dir``), a simulation under the run
folder's ``parties/bank/`` and ``parties/center/``. ``fedcredit models promote PART_DIR --name NAME
--part bank|center`` turns a part into the registry's served part
(:mod:`fedcredit.service.registry`).

Both parts carry the same ``model_id``, computed by each party from what both know (the run id,
both parties' public-key fingerprints, the number of updates), so the bank's service can check
that the center answers with the other half of the same training run.

Security assumption: a part file holds only its own party's weights and standardisation (means
and deviations of its own columns); it never leaves that party's machine. The weights are those
of the quantised features the protocol trained on (``2**-6`` steps); a scorecard applies them
to the unquantised standardised values, which moves a logit by at most
``sum |w| * 2**-7``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from federation.errors import RunFolderError
from federation.ml.preprocess import Preprocessor
from federation.run.folder import (
    VERTICAL_PART_FILE,
    atomic_write_text,
    find_party_file,
    read_party_text,
)
from federation.scorecard.linear import LinearScorecard
from federation.scorecard.scale import RiskGrades, ScorecardScale

PART_FORMAT = "fedcredit-vertical-lr-part"
SCHEMA_VERSION = 1
ROLES = ("bank", "center")


def vertical_model_id(run_id: str, bank_key: str, center_key: str, updates: int) -> str:
    """The id both parts of one trained vertical LR carry (SHA-256, hex).

    ``bank_key``/``center_key`` are the parties' Paillier public-key fingerprints of the run.
    """
    text = f"{PART_FORMAT}|{run_id}|{bank_key}|{center_key}|{updates}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class VerticalModelPart:
    """One party's trained weights and standardisation (bank: intercept first)."""

    role: str
    run_id: str
    model_id: str
    weights: tuple[float, ...]
    preprocessor: Preprocessor
    updates: int
    target: str = ""
    id_column: str = ""
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role is {self.role!r}; one of {', '.join(ROLES)}")
        width = self.preprocessor.n_features + (1 if self.role == "bank" else 0)
        if len(self.weights) != width or not all(np.isfinite(self.weights)):
            raise ValueError(f"the {self.role}'s part needs {width} finite weights "
                             f"(got {len(self.weights)})")

    @property
    def intercept(self) -> float:
        """The bank's intercept; 0 for the center's part."""
        return self.weights[0] if self.role == "bank" else 0.0

    @property
    def coefficients(self) -> np.ndarray:
        """Weights of the party's own standardised columns (the preprocessor's layout)."""
        return np.asarray(self.weights[1:] if self.role == "bank" else self.weights)

    def scorecard(self, scale: ScorecardScale, grades: RiskGrades) -> LinearScorecard:
        """This part as the registry's part scorecard (the center's with intercept 0)."""
        return LinearScorecard.from_lr(self.preprocessor,
                                       [self.coefficients[None, :], np.array([self.intercept])],
                                       scale=scale, grades=grades, target=self.target,
                                       id_column=self.id_column)

    def to_json(self) -> str:
        """The part's file."""
        return json.dumps({"format": PART_FORMAT, "schema_version": self.schema_version,
                           "role": self.role, "run_id": self.run_id, "model_id": self.model_id,
                           "updates": self.updates, "weights": list(self.weights),
                           "target": self.target, "id_column": self.id_column,
                           "preprocessor": json.loads(self.preprocessor.to_json())}, indent=1)

    @classmethod
    def from_json(cls, text: str, where: str) -> VerticalModelPart:
        """Inverse of :meth:`to_json`; RunFolderError naming ``where`` otherwise."""
        try:
            doc = json.loads(text)
            if doc.get("format") != PART_FORMAT or doc.get("schema_version") != SCHEMA_VERSION:
                raise ValueError(f"not a {PART_FORMAT} v{SCHEMA_VERSION} file")
            return cls(str(doc["role"]), str(doc["run_id"]), str(doc["model_id"]),
                       tuple(float(w) for w in doc["weights"]),
                       Preprocessor.from_json(json.dumps(doc["preprocessor"])),
                       int(doc["updates"]), str(doc["target"]), str(doc["id_column"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RunFolderError(f"{where}: unreadable vertical model part ({exc}); rerun "
                                 "`fedcredit vertical` to write it again.") from exc

    def write(self, folder: Path) -> Path:
        """Write the part into ``folder`` (write-then-rename); its path."""
        path = folder / VERTICAL_PART_FILE
        atomic_write_text(path, self.to_json())
        return path


def find_part(source: Path, role: str) -> Path | None:
    """The ``role``'s part file in ``source`` (:func:`~federation.run.folder.find_party_file`)."""
    return find_party_file(source, role, VERTICAL_PART_FILE)


def read_part(path: Path) -> VerticalModelPart:
    """The part in ``path``."""
    text = read_party_text(path, "vertical model part")
    return VerticalModelPart.from_json(text, str(path))
