"""Run configuration: one frozen dataclass, validated, convertible to Flower's run config.

Flower's run config uses hyphenated keys with str/int/float/bool values (``pyproject.toml``
``[tool.flwr.app.config]``); :meth:`RunConfig.from_user_config` and
:meth:`RunConfig.to_user_config` convert. Every invalid value raises :class:`ConfigError` naming
the setting and the accepted values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from federation.data.embedded import embedded_file, find_embedded, target_for
from federation.data.partition import SCHEMES
from federation.errors import ConfigError
from federation.ml.dp.budget import check_budget
from federation.ml.gbdt.config import GBDTConfig, check_stopping_metric
from federation.ml.gbdt.gradients import LOSS_BITS
from federation.run.policy import DEFAULT_MIN_CONTRIBUTORS
from federation.steps.masking import attestation_quorum, masking_parameters
from federation.steps.secure_sum import summation_scheme  # the scheme owns its key-size rule

SCHEMA_VERSION = 1
MODEL_KINDS = ("lr", "mlp", "gbdt")
STRATEGIES = ("fedavg", "fedprox")
AGGREGATIONS = ("plain", "paillier", "secagg", "paillier-secagg")
DEFAULT_DATA = "uci"
"""The embedded UCI default-of-credit-card-clients set (:mod:`federation.data.embedded`)."""
DEFAULT_TARGET = "default_next_month"
GBDT_LEARNING_RATE = 0.1
"""The shrinkage the CLI gives ``model = "gbdt"`` when ``--learning-rate`` is not set."""
REPO_ROOT = Path(__file__).resolve().parents[2]


def default_min_banks(banks: int) -> int:
    """``min-banks = 0``: ``max(3, ceil(2K/3))`` of ``K`` banks, at most ``K``.

    A run goes on when up to a third of its banks drop out, but never with fewer than the
    default ``[policy] min-contributors`` (3), so no bank with the default policy refuses it.
    """
    return min(banks, max(DEFAULT_MIN_CONTRIBUTORS, -(-2 * banks // 3)))


def sampled_count(banks: int, fraction_fit: float, min_banks: int = 0) -> int:
    """Banks asked to train in each round under ``fraction-fit = F`` (partial participation).

    ``S = ceil(F x K)``, but never fewer than the default ``[policy] min-contributors`` (3) nor
    ``min-banks``, and at most ``K``; ``F = 1`` gives ``K``: every bank, every round.
    """
    least = max(DEFAULT_MIN_CONTRIBUTORS, min_banks)
    return min(banks, max(least, math.ceil(fraction_fit * banks - 1e-9)))


@dataclass(frozen=True)
class RunConfig:
    """Settings of one horizontal federated run (all parties see the same values).

    ``keys_dir`` is the key-ceremony folder (Paillier key, signing keys); ``release_model``
    lets the banks hand the final global model to the coordinator at the end of the run.
    ``min_banks`` (0 = :func:`default_min_banks`) must answer each step within ``round_timeout`` s;
    late or failed banks are recorded and the round goes on without them.
    ``fraction_fit = F`` < 1 (LR and MLP, plain or Paillier sums) asks only a seeded sample of
    :func:`sampled_count` banks to train in each round (:attr:`round_required_banks` of them
    must answer); preprocessing, the last round's evaluation and finalize keep every bank.
    Fault injection for simulations and tests: ``drop_schedule`` ("3:1,4;5:2" = in round 3
    banks 1 and 4 vanish, in round 5 bank 2) and ``halt_after`` (the coordinator stops, as if
    crashed, after checkpointing that round). ``resume`` continues from the checkpoint in
    ``out`` instead of starting afresh.

    ``model = "gbdt"`` grows histogram boosted trees instead of rounds of FedAvg: ``trees``
    trees of ``depth`` levels on ``bins`` bins per feature, shrinkage ``learning_rate``, with
    ``l2``, ``min_child_weight``, ``subsample`` and ``gradient_bits`` as in
    :class:`~federation.ml.gbdt.config.GBDTConfig` (:meth:`gbdt_config`); one tree counts
    as one round for the drop schedule, ``halt_after`` and checkpoints.
    ``early_stopping_rounds = k`` (> 0) holds out about a tenth of each bank's training rows
    (:func:`~federation.ml.tree_features.validation_rows`) and stops once the pooled
    validation score (``early_stopping_metric``: the AUC of the summed validation score
    histograms, or the exact log-loss) has not improved for ``k`` trees, keeping the best
    number of trees.
    ``eval_every = n`` has the banks seal their test-score histograms (the federated AUC/KS of
    the history) after every ``n``-th tree and for the final model only: under Paillier those
    2,048 counts are about a fifth of a tree's ciphertexts. Early stopping's validation sums
    travel after every tree regardless.

    ``dp_epsilon > 0`` (LR and MLP) makes every bank train with DP-SGD and noise its score
    histograms and preprocessing statistics so that the whole run meets (``dp_epsilon``,
    ``dp_delta``) per bank and borrower (``dp_delta`` 0: 1 / (10 x the bank's rows));
    ``dp_clip`` is the per-sample gradient norm bound (:mod:`federation.ml.dp`). 0 = off.
    With ``model = "gbdt"`` the banks noise every level's gradient/hessian histograms, the bin
    counts and the score histograms instead (:mod:`federation.ml.dp.trees`; no early stopping).

    ``data_path`` is a CSV file or an embedded data set's name (``uci``, ``german``). With an
    embedded set, a ``target`` left at the default (:data:`DEFAULT_TARGET`, the UCI set's
    column) becomes that set's own target: ``data_path="german"`` alone trains on ``bad``.
    """

    data_path: str = DEFAULT_DATA
    target: str = DEFAULT_TARGET
    id_col: str = ""
    positive_label: str = ""
    banks: int = 5
    rounds: int = 10
    model: str = "lr"
    partition: str = "iid"
    partition_col: str = ""
    alpha: float = 0.5
    strategy: str = "fedavg"
    mu: float = 0.01
    local_epochs: int = 1
    batch_size: int = 128
    learning_rate: float = 0.05
    test_fraction: float = 0.3
    seed: int = 0
    aggregation: str = "plain"
    keys_dir: str = ""
    key_bits: int = 2048
    release_model: bool = True
    min_banks: int = 0
    fraction_fit: float = 1.0
    round_timeout: float = 900.0
    drop_schedule: str = ""
    halt_after: int = 0
    trees: int = 100
    depth: int = 4
    bins: int = 32
    l2: float = 1.0
    min_child_weight: float = 1.0
    subsample: float = 1.0
    gradient_bits: int = 20
    early_stopping_rounds: int = 0
    early_stopping_metric: str = "auc"
    eval_every: int = 10
    dp_epsilon: float = 0.0
    dp_delta: float = 0.0
    dp_clip: float = 1.0
    resume: bool = False
    out: str = "runs/latest"
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        # frozen: the one normalisation, set once here (an embedded set brings its target)
        object.__setattr__(self, "target", target_for(self.data_path, self.target,
                                                      default=DEFAULT_TARGET))
        _choice("model", self.model, MODEL_KINDS)
        _choice("partition", self.partition, SCHEMES)
        _choice("strategy", self.strategy, STRATEGIES)
        _choice("aggregation", self.aggregation, AGGREGATIONS)
        _positive("banks", self.banks)
        _positive("rounds", self.rounds)
        _positive("local-epochs", self.local_epochs)
        _positive("batch-size", self.batch_size)
        _positive("learning-rate", self.learning_rate)
        _positive("alpha", self.alpha)
        if not 0 <= self.min_banks <= self.banks:
            raise ConfigError(f"setting 'min-banks' must be in 0..{self.banks} (got {self.min_banks}).")
        _positive("round-timeout", self.round_timeout)
        self._check_fraction_fit(scheme_masked=summation_scheme(self.aggregation).masked)
        self.dropped_banks(1)  # validates drop-schedule
        if not self.mu >= 0:  # also refuses NaN
            raise ConfigError(f"setting 'mu' must be >= 0 (got {self.mu}).")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"setting 'test-fraction' must be in (0, 1) (got {self.test_fraction}).")
        scheme = summation_scheme(self.aggregation)
        if scheme.needs_paillier_key and self.key_bits < scheme.min_key_bits:
            raise ConfigError(f"setting 'key-bits' is {self.key_bits}; Paillier keys must have "
                              f"at least {scheme.min_key_bits} bits (smaller keys are for unit "
                              "tests only).")
        if self.model == "gbdt":
            self.gbdt_config()  # validates the tree settings, naming the option
        if scheme.masked and self.banks < 3:
            raise ConfigError(f"setting 'aggregation' is '{self.aggregation}', which needs at "
                              f"least 3 banks (the run has {self.banks}); add banks or use "
                              "paillier.")
        if scheme.masked and self.min_banks:
            quorum = attestation_quorum(self.banks, masking_parameters(self.banks)[1])
            if self.min_banks < quorum:
                raise ConfigError(f"setting 'min-banks' is {self.min_banks}; under "
                                  f"'{self.aggregation}' a sum is unmasked only once {quorum} "
                                  f"of the {self.banks} banks signed its survivor list (the "
                                  f"consistency round), so give min-banks >= {quorum} or 0 "
                                  "(the default).")
        _whole("early-stopping-rounds", self.early_stopping_rounds, 0,
               "give the trees without validation gain before stopping (0: off).")
        if self.early_stopping_rounds and self.model != "gbdt":
            raise ConfigError("setting 'early-stopping-rounds' works with --model gbdt only.")
        _whole("eval-every", self.eval_every, 1,
               "give how many trees apart the federated test AUC is taken (1: after every tree).")
        check_stopping_metric(self.early_stopping_metric)
        check_budget(self.dp_epsilon, self.dp_delta, self.dp_clip)
        if self.dp_epsilon > 0 and self.model == "gbdt" and self.early_stopping_rounds:
            raise ConfigError("setting 'early-stopping-rounds' is not covered by --dp-epsilon "
                              "(its per-tree validation sums are not noised); set it to 0 or "
                              "drop --dp-epsilon.")
        if self.early_stopping_rounds and self.early_stopping_metric == "logloss" and \
                self.gradient_bits < LOSS_BITS:
            raise ConfigError(f"setting 'early-stopping-rounds' needs --gradient-bits >= {LOSS_BITS} "
                              f"(the validation losses are sums of multiples of 2**-{LOSS_BITS}); "
                              f"got {self.gradient_bits}.")
        if not self.target:
            raise ConfigError("setting 'target' is empty; name the 0/1 target column.")
        if self.schema_version != SCHEMA_VERSION:
            raise ConfigError(
                f"run config schema_version {self.schema_version} is not supported "
                f"(this build reads {SCHEMA_VERSION}); upgrade every node to the same release."
            )

    def _check_fraction_fit(self, *, scheme_masked: bool) -> None:
        """Refuse a ``fraction-fit`` outside (0, 1], or below 1 where rounds need every bank."""
        if not 0.0 < self.fraction_fit <= 1.0:  # also refuses NaN
            raise ConfigError(f"setting 'fraction-fit' must be in (0, 1] (got {self.fraction_fit}).")
        if self.fraction_fit == 1.0:
            return
        if scheme_masked:
            raise ConfigError(f"setting 'fraction-fit' is {self.fraction_fit:g}, but aggregation "
                              f"'{self.aggregation}' masks each round among every bank; use "
                              "--fraction-fit 1 or --aggregation paillier.")
        if self.model == "gbdt":
            raise ConfigError(f"setting 'fraction-fit' is {self.fraction_fit:g}; boosted trees "
                              "grow each tree with every bank: use --fraction-fit 1 with "
                              "--model gbdt.")

    @property
    def sampled_banks(self) -> int:
        """Banks asked to train each round (:func:`sampled_count`; ``banks`` when F = 1)."""
        return sampled_count(self.banks, self.fraction_fit, self.min_banks)

    @property
    def round_required_banks(self) -> int:
        """Replies a round's train and evaluate steps need: the dropout rule of
        :attr:`required_banks` applied to the :attr:`sampled_banks` (``min_banks`` if set,
        which the sample never undercuts); equal to :attr:`required_banks` when F = 1."""
        return self.min_banks or default_min_banks(self.sampled_banks)

    @property
    def required_banks(self) -> int:
        """Banks that must answer each step: ``min_banks``, or with 0 the dropout-tolerant
        default :func:`default_min_banks`."""
        return self.min_banks or default_min_banks(self.banks)

    def dropped_banks(self, round_number: int) -> set[int]:
        """Banks the drop schedule makes vanish in ``round_number`` (1-based)."""
        try:
            schedule = {}
            for item in filter(None, self.drop_schedule.replace(" ", "").split(";")):
                rnd, _, banks = item.partition(":")
                schedule[int(rnd)] = {int(b) for b in banks.split(",") if b}
        except ValueError as exc:
            raise ConfigError(f"setting 'drop-schedule' is '{self.drop_schedule}'; write it "
                              "as 'ROUND:BANK,BANK;ROUND:BANK' (e.g. '3:1,4').") from exc
        return schedule.get(round_number, set())

    def gbdt_config(self) -> GBDTConfig:
        """The boosted-tree settings of a ``model = "gbdt"`` run (validated)."""
        return GBDTConfig(trees=self.trees, depth=self.depth, bins=self.bins,
                          learning_rate=self.learning_rate, l2=self.l2,
                          min_child_weight=self.min_child_weight, subsample=self.subsample,
                          seed=self.seed, gradient_bits=self.gradient_bits,
                          early_stopping_rounds=self.early_stopping_rounds,
                          early_stopping_metric=self.early_stopping_metric)

    @property
    def rounds_planned(self) -> int:
        """Rounds of the run: ``rounds``, or ``trees`` for a boosted-tree run."""
        return self.trees if self.model == "gbdt" else self.rounds

    @property
    def prox_mu(self) -> float:
        """The proximal weight actually used: ``mu`` for FedProx, 0 for FedAvg."""
        return self.mu if self.strategy == "fedprox" else 0.0

    def to_user_config(self) -> dict[str, Any]:
        """Flower run config (hyphenated keys, scalar values)."""
        return {k.replace("_", "-"): v for k, v in asdict(self).items()}

    @classmethod
    def from_user_config(cls, values: Mapping[str, Any]) -> RunConfig:
        """Parse a Flower run config; unknown keys are an error naming them."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"a run config is a table of settings, got {type(values).__name__}.")
        known = {f.name: f for f in fields(cls)}
        defaults = cls()  # once per parse: each node parses every request's run config
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if is_mode_setting(str(key)):
                continue  # run mode and vertical settings: see run_mode / vertical_config
            name = str(key).replace("-", "_")
            if name not in known:
                raise ConfigError(f"unknown run-config setting '{key}'.")
            kwargs[name] = _coerce(key, value, type(getattr(defaults, name)))
        return cls(**kwargs)


MODE_KEY = "mode"
RUN_MODES = ("horizontal", "vertical")
VERTICAL_PREFIX = "vertical-"
"""The deployed app's run config also carries ``mode`` and the ``vertical-*`` settings of a
vertical run (:func:`federation.run.vertical_config.vertical_config_from_run_config`)."""


def is_mode_setting(key: str) -> bool:
    """Whether ``key`` is ``mode`` or a ``vertical-*`` setting (not a :class:`RunConfig` field)."""
    return key == MODE_KEY or key.startswith(VERTICAL_PREFIX)


def run_mode(values: Mapping[str, Any]) -> str:
    """The run config's ``mode`` (``horizontal`` when absent)."""
    mode = str(values.get(MODE_KEY, "horizontal"))
    _choice(MODE_KEY, mode, RUN_MODES)
    return mode


def _coerce(key: str, value: Any, kind: type) -> Any:
    """Convert a config value to the field's type or raise naming the setting."""
    try:
        if kind is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError("not an integer")
        return kind(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"setting '{key}' must be {kind.__name__} (got {value!r:.60}).") from exc


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"setting '{name}' is '{value}'; choose one of {', '.join(options)}.")


def _whole(name: str, value: object, least: int, advice: str) -> None:
    """Refuse a setting that is not an integer of at least ``least`` (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"setting '{name}' is {value!r:.20}; {advice}")


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"setting '{name}' must be positive (got {value}).")


def resolve_data_path(path: str | Path) -> Path:
    """Find a data file: an embedded data set's packaged file for its name (``uci``), else the
    path as given, else relative to the project checkout (for ``flwr run``)."""
    embedded = find_embedded(path)
    if embedded is not None:
        return embedded_file(embedded)
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    beside_repo = REPO_ROOT / candidate
    if beside_repo.exists():
        return beside_repo
    return candidate
