"""Score entities with a run folder's model: probability, score, grade and reason codes.

A run folder (written by ``fedcredit simulate --out DIR``) holds ``results.json`` (settings,
including the model kind, the target and ID columns), ``preprocessor.json`` (the shared schema
and standardisation) and the released model: ``model.npz`` (the global weights of an LR or
MLP) or ``model.json`` (the boosted trees of a ``gbdt`` run, format ``fedcredit-gbdt``).
:func:`load_run_model` reads it; :meth:`RunModel.inputs` builds the model's input matrix
(the standardised design matrix, or the raw tree matrix of
:func:`~federation.ml.tree_features.tree_matrix`); :func:`score_rows` scores it (pure numpy for
LR and trees, torch only for the MLP); :func:`score_file` runs the whole job from CSV to CSV on
the bank's own node. Reason codes: points lost against the typical applicant for LR
(:mod:`~federation.scorecard.reason_codes`), Saabas path contributions for trees
(:mod:`~federation.scorecard.tree_reasons`); the MLP has none.

Calibration: when ``results.json`` carries the run's calibration map
(:mod:`federation.ml.calibration`), every probability, score, grade and reason code is of the
calibrated PD: an LR's weights become ``slope * w`` and ``slope * b + intercept`` (its
scorecard is the calibrated one), a tree's or MLP's log-odds ``slope * m + intercept`` (tree
reasons in points scaled by ``slope``). A run folder written before calibration scores raw.
"""

from __future__ import annotations

import struct
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from federation.data.table import CreditTable
from federation.errors import RunFolderError
from federation.ml.calibration import PLATT, PlattMap
from federation.ml.credit_metrics import brier_score, psi_against_reference
from federation.ml.gbdt import GBDTModel, ModelFormatError
from federation.ml.metrics import roc_auc, score_histograms
from federation.ml.preprocess import Preprocessor
from federation.ml.tree_features import tree_feature_names, tree_matrix
from federation.run.folder import RunFolder
from federation.run.results import HorizontalResults, read_results
from federation.scorecard.linear import LinearScorecard, UnsupportedModelError
from federation.scorecard.reason_codes import reason_codes
from federation.scorecard.scale import GradeSummary, RiskGrades, ScorecardScale, grade_table
from federation.scorecard.scoring_input import read_scoring_file
from federation.scorecard.tree_reasons import saabas_contributions, tree_margins, tree_reason_codes

DEFAULT_REASONS = 3
TREE_KIND = "gbdt"
"""``results.json`` ``model`` of a boosted-tree run (its model is ``model.json``)."""


@dataclass(frozen=True)
class RunModel:
    """The trained model of a run folder and the settings it was trained with.

    ``weights`` are the LR/MLP arrays of ``model.npz`` (empty for trees); ``tree_model`` is the
    boosted-tree model of ``model.json`` (None for LR/MLP).
    """

    directory: Path
    kind: str
    preprocessor: Preprocessor
    weights: tuple[np.ndarray, ...]
    target: str = ""
    id_col: str = ""
    results: HorizontalResults | None = field(default=None, compare=False)
    tree_model: GBDTModel | None = field(default=None, compare=False)

    @property
    def is_trees(self) -> bool:
        """Whether this is a boosted-tree model (scored on raw tree inputs)."""
        return self.tree_model is not None

    @property
    def calibration(self) -> PlattMap | None:
        """The run's calibration map (None for a run folder written before calibration)."""
        section = self.results.calibration if self.results is not None else None
        if section is None or section.method != PLATT:
            return None
        try:
            return PlattMap.from_dict(section.map)
        except ValueError as exc:
            raise RunFolderError(f"{self.directory}: results.json's calibration map is "
                                 f"unusable ({exc})") from exc

    def inputs(self, table: CreditTable) -> np.ndarray:
        """The model's input matrix of ``table``: raw tree inputs for trees, else the design."""
        if self.tree_model is not None:
            return tree_matrix(table, self.preprocessor)
        return self.preprocessor.transform(table)

    def scorecard(self, scale: ScorecardScale, grades: RiskGrades) -> LinearScorecard:
        """The model as a points scorecard (LR only; raises ``UnsupportedModelError``)."""
        if self.is_trees:
            raise UnsupportedModelError(
                f"{self.directory}: holds boosted trees, which have no points per feature to "
                "export as a scorecard; score files with `fedcredit score --model "
                f"{self.directory}` (trees, reason codes and all), or train with --model lr to "
                "export a scorecard.")
        weights = list(self.weights)
        pd_map = self.calibration
        if pd_map is not None and len(weights) == 2:  # sigmoid(a (Wx + b) + c): still an LR
            weights = [pd_map.slope * np.asarray(weights[0], dtype=np.float64),
                       pd_map.slope * np.asarray(weights[1], dtype=np.float64)
                       + pd_map.intercept]
        return LinearScorecard.from_lr(self.preprocessor, weights, scale=scale,
                                       grades=grades, target=self.target, id_column=self.id_col)


_RELEASE_HINT = " (a run with release-model off keeps the global model at the banks)"
_TREE_RELEASE_HINT = (": the run did not release its trees (with release-model off they stay "
                      "at the banks, so no one outside can score with them); rerun with the "
                      "model released to score here")


def load_run_model(directory: str | Path) -> RunModel:
    """Read ``results.json``, the model and ``preprocessor.json`` from a run folder.

    The model is ``model.json`` (boosted trees) when ``results.json`` says ``model: gbdt``,
    else ``model.npz``.

    Raises
    ------
    RunFolderError
        The folder or one of its files is missing or unreadable.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RunFolderError(f"{directory}: run folder not found. Pass the --out folder of "
                             "`fedcredit simulate` (e.g. runs/latest).")
    folder = RunFolder(directory)
    results = read_results(folder.require(folder.results))
    if not isinstance(results, HorizontalResults):
        raise RunFolderError(f"{directory}: holds a vertical run, whose model stays with the "
                             "bank and the credit center; score with the run folder of "
                             "`fedcredit simulate`.")
    config = results.config or {}
    kind = str(results.model or config.get("model") or "lr")
    trees: GBDTModel | None = None
    weights: tuple[np.ndarray, ...] = ()
    try:
        prep = Preprocessor.from_json(
            folder.require(folder.preprocessor).read_text(encoding="utf-8"))
        if kind == TREE_KIND:
            trees = _read_trees(folder.require(folder.tree_model, hint=_TREE_RELEASE_HINT), prep)
        else:
            weights = _read_weights(folder.require(folder.model, hint=_RELEASE_HINT))
    except (ValueError, KeyError, OSError, RecursionError) as exc:
        raise RunFolderError(f"{directory}: run folder is unreadable ({exc}); rerun "
                             "`fedcredit simulate` to rewrite it.") from exc
    target = str(results.target or config.get("target") or "")
    return RunModel(directory, kind, prep, weights, target, str(config.get("id-col") or ""),
                    results, trees)


def _read_trees(path: Path, prep: Preprocessor) -> GBDTModel:
    """``model.json`` as a GBDTModel whose columns match ``prep``; ValueError otherwise."""
    try:
        model = GBDTModel.from_json(path.read_text(encoding="utf-8"))
    except ModelFormatError as exc:
        raise ValueError(f"{path.name}: {exc}") from exc
    if model.n_features != len(tree_feature_names(prep)):
        raise ValueError(f"{path.name} scores {model.n_features} columns but preprocessor.json "
                         f"describes {len(tree_feature_names(prep))}")
    return model


def _read_weights(path: Path) -> tuple[np.ndarray, ...]:
    """The arrays of ``model.npz`` as float64; ValueError for anything else."""
    try:
        # np.load leaves its own handle open when a file that starts like a zip is not one
        # (ResourceWarning); opening the file here closes it on every path
        with path.open("rb") as handle, np.load(handle) as npz:
            arrays = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    # a damaged zip raises any of these (NotImplementedError and RecursionError are
    # RuntimeErrors: unknown compression or zip version, "encrypted" entries)
    except (KeyError, TypeError, EOFError, RuntimeError, zipfile.BadZipFile, zlib.error,
            struct.error) as exc:
        raise ValueError(f"{path.name} is not a saved model ({exc})") from exc
    if not all(isinstance(a, np.ndarray) and a.dtype.kind in "fi" for a in arrays):
        raise ValueError(f"{path.name} holds arrays that are not real numbers")
    return tuple(np.asarray(a, dtype=np.float64) for a in arrays)


@dataclass(frozen=True)
class ScoredRows:
    """Scores of a batch; ``reasons`` is (n, k) text, empty strings for the MLP."""

    probability: np.ndarray
    score: np.ndarray
    grade: np.ndarray
    reasons: np.ndarray


def _mlp_log_odds(model: RunModel, x: np.ndarray) -> np.ndarray:
    from federation.ml.models import CreditModel  # torch only when the model needs it

    hidden = int(np.shape(model.weights[0])[0])
    net = CreditModel("mlp", n_features=model.preprocessor.n_features, hidden=hidden)
    return net.set_weights(list(model.weights)).decision_function(x)


def _tree_scores(model: GBDTModel, x: np.ndarray, names: tuple[str, ...], *,
                 scale: ScorecardScale, reasons: int,
                 slope: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Margins and (n, reasons) Saabas reason texts of raw tree rows (``slope``: the
    calibration map's, so the reasons' points are of the calibrated log-odds)."""
    if reasons <= 0:
        return tree_margins(model, x), np.empty((len(x), 0), dtype=object)
    parts = saabas_contributions(model, x)
    return parts.margin, tree_reason_codes(parts, names, factor=scale.factor * slope,
                                           k=reasons).text


def score_rows(
    model: RunModel, x: np.ndarray, *, scale: ScorecardScale, grades: RiskGrades,
    reasons: int = DEFAULT_REASONS,
) -> ScoredRows:
    """Probability of default, score, grade and top ``reasons`` per input row.

    ``x`` is :meth:`RunModel.inputs` of the rows. LR and trees are vectorised numpy (no
    torch); tree reasons are Saabas contributions; an MLP has no reason codes (empty strings).
    """
    pd_map = model.calibration
    slope = pd_map.slope if pd_map is not None else 1.0
    if model.tree_model is not None:
        log_odds, text = _tree_scores(model.tree_model, x,
                                      tree_feature_names(model.preprocessor),
                                      scale=scale, reasons=reasons, slope=slope)
    elif model.kind == "lr":
        card = model.scorecard(scale, grades)  # calibrated weights already
        log_odds, pd_map = card.log_odds(x), None
        text = reason_codes(card, x, k=reasons).text if reasons > 0 else np.empty((len(x), 0))
    else:
        log_odds = _mlp_log_odds(model, x)
        text = np.full((len(x), max(reasons, 0)), "", dtype=object)
    if pd_map is not None:
        log_odds = pd_map.log_odds(log_odds)
    score = scale.points_from_log_odds(log_odds)
    return ScoredRows(1.0 / (1.0 + np.exp(-log_odds)), score, grades.assign(score), text)


def write_scores(path: Path, ids: np.ndarray, scored: ScoredRows) -> None:
    """CSV with id, probability, score, grade, reason_1..reason_k (write-then-rename)."""
    frame = pd.DataFrame({"id": ids, "probability": np.round(scored.probability, 6),
                          "score": np.round(scored.score, 2), "grade": scored.grade})
    for j in range(scored.reasons.shape[1]):
        frame[f"reason_{j + 1}"] = scored.reasons[:, j]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)


@dataclass(frozen=True)
class ScoringSummary:
    """What a scoring job did: counts per grade, and checks against the development sample.

    ``grades`` carries default rates, and ``auc``/``brier`` are set, only when the file had 0/1
    labels (else NaN and None);
    ``psi_vs_development`` compares the scored file's score distribution with the run's test
    scores (None when the run folder has no score histograms).
    """

    rows: int
    output: Path
    grades: list[GradeSummary]
    auc: float | None
    brier: float | None
    psi_vs_development: float | None
    seconds: float


def _psi_vs_development(model: RunModel, probability: np.ndarray) -> float | None:
    hist = model.results.score_histograms if model.results is not None else None
    if hist is None:
        return None
    reference = np.asarray(hist.bad, dtype=np.float64) + np.asarray(hist.good, np.float64)
    pd_map = model.calibration
    if pd_map is not None and pd_map.slope != 0:  # the histograms hold the raw model's scores
        p = np.clip(probability, 1e-15, 1 - 1e-15)
        probability = 1.0 / (1.0 + np.exp(-(np.log(p) - np.log1p(-p) - pd_map.intercept)
                                          / pd_map.slope))
    _, actual = score_histograms(np.zeros(probability.size), probability, bins=reference.size)
    return psi_against_reference(reference, actual)


def score_file(
    model_dir: str | Path, data: str | Path, out: str | Path, *, scale: ScorecardScale,
    grades: RiskGrades, reasons: int = DEFAULT_REASONS, id_col: str = "",
) -> ScoringSummary:
    """Score every row of ``data`` with the run folder's model and write ``out`` (CSV).

    Raises
    ------
    RunFolderError, SchemaError, DataError
        Bad run folder, a model column missing from ``data``, or unreadable values.
    """
    started = time.perf_counter()
    model = load_run_model(model_dir)
    batch = read_scoring_file(data, model.preprocessor, target=model.target,
                              id_col=id_col or model.id_col, model_dir=str(model_dir))
    x = model.inputs(batch.table)
    scored = score_rows(model, x, scale=scale, grades=grades, reasons=reasons)
    write_scores(Path(out), batch.ids, scored)
    table = grade_table(grades, scored.score, batch.labels)
    labels = batch.labels
    auc = roc_auc(labels, scored.probability) if labels is not None else None
    brier = brier_score(labels, scored.probability) if labels is not None else None
    return ScoringSummary(batch.n_rows, Path(out), table, auc, brier,
                          _psi_vs_development(model, scored.probability),
                          time.perf_counter() - started)
