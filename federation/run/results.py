"""``results.json``: what a run measured, as typed documents with one reader and one writer.

Two kinds of run write it:

* :class:`HorizontalResults`: K banks with the same columns (``fedcredit simulate``, a
  deployed coordinator, the local launcher). Every section is optional because each writer
  knows a different part: the coordinator has no baselines (it holds no data), the
  simulation adds them, the launcher adds timings and the ``deployment`` facts;
* :class:`VerticalResults`: a bank and the credit center (``mode = "vertical"``). The
  coordinator's part (PSI sizes, held-out AUC/KS, IV table) is required; baselines, timings
  and deployment facts are added by whoever can compute them.

The JSON keys are the dataclass field names, every section is a frozen dataclass, and a
document carries :data:`SCHEMA_VERSION` in ``schema_version`` (a file written before the field
existed has the same layout and is read as version 1). An optional field left ``None`` is
not written; non-finite numbers are written as ``null``. :func:`read_results` checks every
field: a missing, extra or mistyped one, or another schema version, raises
:class:`~federation.errors.ResultsFormatError` naming the file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Self, cast

from federation.errors import ResultsFormatError, RunFolderError
from federation.run.documents import WRITTEN_WITH, FieldError, parse_document, shown, to_plain
from federation.run.folder import RESULTS_FILE, atomic_write_text

SCHEMA_VERSION = 1
VERTICAL_MODE: Final = "vertical"
WRITTEN_WITH_DEPLOYMENT = {WRITTEN_WITH: "deployment"}
"""Field metadata: written (``null`` where unknown) whenever the document has ``deployment``."""

ConfigValue = bool | int | float | str
UserConfig = dict[str, ConfigValue]
"""The run's settings as Flower's run config holds them (hyphenated keys, scalar values)."""
Dropout = dict[str, Any]
"""One bank answer that was late, failed or rejected: ``round``, ``node``, ``reason``, ..."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    """AUC and KS of one model on the test rows (``None``: not measurable)."""

    auc: float | None
    ks: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RoundEntry:
    """The federated model after one round: AUC/KS, seconds, banks that took part.

    ``sampled``, ``trained`` and ``evaluated`` name the banks asked to train (every bank unless
    ``fraction-fit`` < 1), whose updates and whose test histograms were admitted (absent in a
    file written before they were recorded, and for boosted trees)."""

    round: int
    auc: float | None
    ks: float | None
    seconds: float
    banks: int
    sampled: tuple[int, ...] | None = None
    trained: tuple[int, ...] | None = None
    evaluated: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreHistograms:
    """Summed per-class test-score histograms (logit bins): all a coordinator sees of scores."""

    scale: str
    range: tuple[float, float]
    bins: int
    bad: tuple[int, ...]
    good: tuple[int, ...]

    def __post_init__(self) -> None:
        if not len(self.bad) == len(self.good) == self.bins:
            raise ValueError(f"holds {len(self.bad)} bad and {len(self.good)} good counts for "
                             f"{self.bins} bins")

    @classmethod
    def from_counts(cls, bad: Sequence[Any], good: Sequence[Any], *,
                    logit_range: float) -> ScoreHistograms:
        """The section for (bad, good) counts of equal logit bins over ``[-r, r]``."""
        return cls(scale="logit", range=(-logit_range, logit_range), bins=int(len(bad)),
                   bad=tuple(int(v) for v in bad), good=tuple(int(v) for v in good))


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreCounts:
    """Summed training-score counts (both classes, the logit bins of the test histograms):
    what the banks release so that the report can compare the training and test score
    distributions (PSI); a sum over two or more banks, never one bank's own."""

    scale: str
    range: tuple[float, float]
    bins: int
    rows: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.rows) != self.bins:
            raise ValueError(f"holds {len(self.rows)} counts for {self.bins} bins")

    @classmethod
    def from_counts(cls, counts: Sequence[Any], *, logit_range: float) -> ScoreCounts:
        """The section for counts of equal logit bins over ``[-r, r]``."""
        return cls(scale="logit", range=(-logit_range, logit_range), bins=int(len(counts)),
                   rows=tuple(int(v) for v in counts))


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationBin:
    """One PD band of the held-out rows: calibrated PD range, rows, defaults, mean PD and
    default rate (the points of a calibration figure)."""

    lo: float
    hi: float
    rows: int
    defaults: int
    mean_pd: float
    observed_rate: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Calibration:
    """The calibration map the run fitted and how well it does on the held-out rows.

    ``method`` names the map (``platt``: ``PD = sigmoid(slope * logit + intercept)``, its
    parameters in ``map``), ``fitted_on`` the rows it was fitted on (``fit_rows`` of them;
    never the rows it is measured on). ``rows``, ``mean_pd`` (calibrated), ``observed_rate``,
    ``brier``, ``uncalibrated_mean_pd`` (the model's raw probabilities) and ``bins`` (PD bands
    in increasing order, empty ones left out) are measured on the held-out rows. Scoring a
    file with the run's model applies ``map`` (:mod:`federation.scorecard.scoring`).
    """

    method: Literal["platt", "isotonic"]
    fitted_on: str
    rows: int
    mean_pd: float
    observed_rate: float
    brier: float
    uncalibrated_mean_pd: float
    map: dict[str, float]
    bins: tuple[CalibrationBin, ...]
    fit_rows: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BankPrivacy:
    """One bank's differential-privacy guarantee in a ``--dp-epsilon`` run, and its mechanism.

    ``epsilon`` (at ``delta``, by the ``accountant``) holds for every borrower of the bank:
    the larger of its training rows' path (DP-SGD: ``steps`` steps at Poisson rate
    ``sampling_rate``, per-sample clip ``clip``, noise multiplier ``noise_multiplier``, plus
    the one-off releases at ``release_noise_multiplier``) and its test rows' path (one
    score-histogram release per round at ``histogram_noise_multiplier``), which touch
    disjoint rows (:mod:`federation.ml.dp.budget`).
    """

    bank: int
    epsilon: float
    delta: float
    noise_multiplier: float
    clip: float
    sampling_rate: float
    steps: int
    accountant: str
    release_noise_multiplier: float | None = None
    histogram_noise_multiplier: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BankBaseline:
    """One bank alone, and every model on that bank's own test rows."""

    bank: int
    train_rows: int
    test_rows: int
    bad_rate: float | None
    auc: float | None
    ks: float | None
    own_test_auc: float | None
    federated_own_test_auc: float | None
    centralized_own_test_auc: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalOnly:
    """Each bank's own model (AUC/KS on the union of the tests), and their mean AUC."""

    mean_auc: float | None
    per_bank: tuple[BankBaseline, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunIdentity:
    """Which release made the run, when, on which data: recorded by the run itself
    (:mod:`federation.run.identity`).

    ``started_utc`` / ``finished_utc`` are ISO 8601 UTC stamps of this writer's part of the run
    (a resumed run: from the resume). ``data_sha256`` maps a data file's role (``data set``,
    ``bank file``, ``credit-center file``) to the SHA-256 of the file as the run read it; only
    a simulation, which reads the files itself, records it (a deployed coordinator never
    holds a bank's file, and a bank's digest does not leave the bank).
    """

    run_id: str | None
    fedcredit_version: str | None
    started_utc: str
    finished_utc: str
    data_sha256: dict[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRef:
    """Where the run's audit log is and the head hash it must end with."""

    head: str
    file: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PsiSummary:
    """Sizes the private set intersection revealed, and its time."""

    bank_rows: int
    center_rows: int
    intersection: int
    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentNode:
    """One node process of a local deployment (``role`` in a vertical one)."""

    name: str
    pid: int
    data: str
    role: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Deployment:
    """How a local deployment ran: engine, transport security, run status, its files."""

    engine: str
    tls: bool
    node_auth: bool
    superlink: str
    run_id: str
    status: str
    nodes: tuple[DeploymentNode, ...]
    coordinator_results: str
    logs: str
    processes: str


class _ResultsDocument:
    """What both kinds of ``results.json`` do: write themselves, read and check a file."""

    __slots__ = ()

    def to_json(self) -> str:
        """The document as ``results.json`` holds it (indented, NaN written as ``null``)."""
        return _to_json(cast("RunResults", self))

    def write(self, path: Path) -> Path:
        """Write ``path`` atomically (write-then-rename); returns it."""
        atomic_write_text(path, self.to_json())
        return path

    @classmethod
    def from_dict(cls, doc: Any, *, source: str = RESULTS_FILE) -> Self:
        """A decoded document, checked field by field (``ResultsFormatError`` otherwise)."""
        return cast(Self, _expect(cls, results_from_dict(doc, source=source), source))

    @classmethod
    def read(cls, path: Path) -> Self:
        """Read and check ``path`` (``RunFolderError`` when missing, unreadable or malformed)."""
        return cast(Self, _expect(cls, read_results(path), str(path)))


@dataclass(frozen=True, slots=True, kw_only=True)
class TreeSummary:
    """A boosted-tree run (``model = "gbdt"``): settings, model files, the lossless check.

    ``same_trees_as_centralized`` compares every node of the federated trees with the trees
    grown on the pooled rows with the same bins and settings (the simulation can; a deployed
    coordinator cannot, so it leaves it out); ``max_prediction_gap`` is the largest
    difference of their test margins. ``gain`` is the total split gain per feature.
    ``early_stopping_rounds`` is the run's setting (0: off), ``early_stopping_metric`` what it
    watched (``auc`` or ``logloss``; absent in files of earlier releases, which stopped on the
    log-loss) and ``trees_kept`` the trees of the released model (fewer than ``trees`` when
    early stopping cut back to the best validation score). ``lr_reference`` is the logistic
    regression fitted on the same pooled training rows (the ``centralized`` model of an LR
    run, which federated LR reaches), for reference.
    """

    trees: int
    depth: int
    bins: int
    learning_rate: float
    early_stopping_rounds: int = 0
    early_stopping_metric: str | None = None
    trees_kept: int | None = None
    model_file: str | None = None
    xgboost_file: str | None = None
    same_trees_as_centralized: bool | None = None
    max_prediction_gap: float | None = None
    gain: dict[str, float] | None = None
    lr_reference: Metrics | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HorizontalResults(_ResultsDocument):
    """``results.json`` of a horizontal run (every section optional: see the module doc)."""

    schema_version: int = SCHEMA_VERSION
    dataset: str | None = None
    target: str | None = None
    rows: int | None = None
    features: tuple[str, ...] | None = None
    banks: int | None = None
    rounds: int | None = None
    model: str | None = None
    aggregation: str | None = None
    partition: str | None = None
    strategy: str | None = None
    seed: int | None = None
    federated: Metrics | None = None
    history: tuple[RoundEntry, ...] | None = None
    score_histograms: ScoreHistograms | None = None
    training_scores: ScoreCounts | None = None
    centralized: Metrics | None = None
    local_only: LocalOnly | None = None
    dropouts: tuple[Dropout, ...] | None = None
    signed_updates: bool | None = None
    audit: AuditRef | None = None
    federated_seconds: float | None = None
    wall_seconds: float | None = None
    config: UserConfig | None = None
    trees: TreeSummary | None = None
    calibration: Calibration | None = None
    privacy: tuple[BankPrivacy, ...] | None = None
    identity: RunIdentity | None = None
    startup_seconds: float | None = field(default=None, metadata=WRITTEN_WITH_DEPLOYMENT)
    federation_ready_seconds: float | None = field(default=None,
                                                   metadata=WRITTEN_WITH_DEPLOYMENT)
    first_round_seconds: float | None = field(default=None, metadata=WRITTEN_WITH_DEPLOYMENT)
    deployment: Deployment | None = None

    def __post_init__(self) -> None:
        _check_version(self.schema_version)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerticalResults(_ResultsDocument):
    """``results.json`` of a vertical run (bank + credit center)."""

    schema_version: int = SCHEMA_VERSION
    mode: Literal["vertical"] = VERTICAL_MODE
    run_id: str
    psi: PsiSummary
    federated: Metrics
    score_histograms: ScoreHistograms | None = None
    calibration: Calibration | None = None
    iv: dict[str, float]
    epochs: int
    epoch_seconds: tuple[float, ...]
    train_rows: int
    test_rows: int
    bank_features: tuple[str, ...]
    center_features: tuple[str, ...]
    bytes_relayed: int
    key_bits: int
    config: UserConfig
    centralized: Metrics | None = None
    bank_only: Metrics | None = None
    bank_data: str | None = None
    center_data: str | None = None
    bank_columns: tuple[str, ...] | None = None
    baselines: str | None = None
    wall_seconds: float | None = None
    identity: RunIdentity | None = None
    federation_ready_seconds: float | None = field(default=None,
                                                   metadata=WRITTEN_WITH_DEPLOYMENT)
    training_started_seconds: float | None = field(default=None,
                                                   metadata=WRITTEN_WITH_DEPLOYMENT)
    deployment: Deployment | None = None

    def __post_init__(self) -> None:
        _check_version(self.schema_version)
        if self.mode != VERTICAL_MODE:
            raise ValueError(f"mode is {self.mode!r}; vertical results have {VERTICAL_MODE!r}")


RunResults = HorizontalResults | VerticalResults


def read_results(path: Path) -> RunResults:
    """Read and check a run's ``results.json``, horizontal or vertical.

    Raises
    ------
    RunFolderError
        The file is missing or unreadable.
    ResultsFormatError
        The file is not JSON, or a field is missing, extra, mistyped or of another schema
        version; the message names the file and the field.
    """
    if not path.is_file():
        raise RunFolderError(f"{path} not found; pass the --out folder of a run "
                             "(`fedcredit simulate` or `fedcredit vertical`).")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunFolderError(f"{path}: cannot be read ({exc.strerror or exc}).") from exc
    except (ValueError, RecursionError) as exc:  # also UnicodeDecodeError
        raise _format_error(str(path), "", f"is not valid JSON ({exc})") from exc
    return results_from_dict(doc, source=str(path))


def results_from_dict(doc: Any, *, source: str = RESULTS_FILE) -> RunResults:
    """A decoded ``results.json`` as the typed document of its kind (``mode``)."""
    if not isinstance(doc, dict):
        raise _format_error(source, "", "is not a JSON object")
    version = doc.get("schema_version", SCHEMA_VERSION)
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ResultsFormatError(
            f"{source}: field 'schema_version' is {shown(version)}, but this fedcredit "
            f"reads version {SCHEMA_VERSION}; open it with the fedcredit release that wrote it, "
            "or rerun the run to rewrite it.", path=source, field="schema_version")
    kind: type[HorizontalResults] | type[VerticalResults] = HorizontalResults
    if "mode" in doc:
        if doc["mode"] != VERTICAL_MODE:
            raise _format_error(source, "mode", f"is {shown(doc['mode'])}; only "
                                f"'{VERTICAL_MODE}' runs name a mode")
        kind = VerticalResults
    try:
        return parse_document(kind, doc)
    except FieldError as exc:
        raise _format_error(source, exc.where, exc.problem) from None


# ---------------------------------------------------------------- errors

_REWRITE = ("rerun the run (`fedcredit simulate` / `fedcredit vertical`) to rewrite it, or "
            "restore the file from a copy.")


def _format_error(source: str, where: str, problem: str) -> ResultsFormatError:
    what = f"field '{where}'" if where else "the document"
    return ResultsFormatError(f"{source}: {what} {problem}; {_REWRITE}", path=source,
                              field=where)


def _check_version(version: int) -> None:
    if version != SCHEMA_VERSION:
        raise ValueError(f"has schema version {version}; this fedcredit writes "
                         f"{SCHEMA_VERSION}")


def _expect(cls: type, results: RunResults, source: str) -> Any:
    if not isinstance(results, cls):
        raise ResultsFormatError(
            f"{source}: holds {type(results).__name__}, expected {cls.__name__}; pass the "
            "run folder of the other kind of run.", path=source, field="mode")
    return results


def _to_json(results: RunResults) -> str:
    return json.dumps(to_plain(results), indent=2)
