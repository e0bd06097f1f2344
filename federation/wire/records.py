"""The one place where fedcredit payloads become Flower records and back.

Message types (:class:`~federation.wire.message_types.MessageType`), record keys and the field
names inside records are constants here; apps never repeat string literals.
Requests carry the run config, the step (run id, round) and combined sealed vectors; replies
carry a bank's sealed vector and a few public metrics. Only the final release (when the run
config allows it) carries plaintext model weights.
"""

from __future__ import annotations

import builtins
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from federation.ml.preprocess import FeatureLayout, LocalSchema, Preprocessor
from federation.run.config import RunConfig
from federation.steps.secure_sum import Sealed
from federation.wire.message_types import MessageType
from protocols.errors import MalformedMessageError, ProtocolError
from protocols.identity.head_signing import AuditHead
from protocols.identity.signing import InvalidSignatureError

STEP_SCHEMA = MessageType("query", "schema")  # preprocessing 1: column kinds, category names
STEP_STATS = MessageType("query", "stats")  # preprocessing 2: sealed stats
STEP_TRAIN = MessageType("train")  # open the global model, train, seal the weighted update
STEP_EVALUATE = MessageType("evaluate")  # score the test rows, seal the score histograms
STEP_FINALIZE = MessageType("query", "finalize")  # last AUC/KS and the final model release
HORIZONTAL_STEPS = (STEP_SCHEMA, STEP_STATS, STEP_TRAIN, STEP_EVALUATE, STEP_FINALIZE)

KEY_RUN = "run"  # ConfigRecord: the run config
KEY_STEP = "step"  # ConfigRecord: run id, round, layout
KEY_METRICS = "metrics"  # MetricRecord: bank, num-examples, auc/ks of an opened histogram
KEY_SCHEMA = "schema"  # ConfigRecord: a bank's column schema (reply)
KEY_SEALED = "sealed"  # ConfigRecord: a bank's sealed vector (reply)
KEY_SEALED_EVAL = "sealed-eval"  # ConfigRecord: a train reply's sealed score histograms of the
# model it trained from (a request whose step record asks "evaluate")
KEY_STATS_SUM = "stats-sum"  # ConfigRecord: combined sealed stats
KEY_WEIGHTS_SUM = "weights-sum"  # ConfigRecord: combined sealed weighted update
KEY_HIST_SUM = "hist-sum"  # ConfigRecord: combined sealed score histograms
KEY_WEIGHTS = "weights"  # ArrayRecord: released final weights
KEY_RELEASE = "release"  # ConfigRecord: released preprocessor json
KEY_RELEASED_HIST = "released-histograms"  # ArrayRecord: summed (bad, good) test histograms
# and, in a horizontal LR/MLP run of 2+ banks, the summed training-score counts (PSI)
KEY_SIGNATURE = "signature"  # ConfigRecord: the bank's signature over its sealed vector
KEY_SIGNATURE_EVAL = "signature-eval"  # ConfigRecord: its signature over ``sealed-eval``
KEY_AUDIT_HEAD = "audit-head"  # ConfigRecord: the head of the coordinator's audit log
KEY_ROWS = "rows"  # ConfigRecord: reported training rows, all banks and those in the update sum

FIELD_RUN_ID = "run-id"  # step and signature records
FIELD_ROUND = "round"  # step and signature records
FIELD_LAYOUT = "layout"  # step record: the agreed feature layout (JSON)
FIELD_EVALUATE = "evaluate"  # step record of a train request: also score the model it carries
FIELD_HIST_ROUND = "hist-round"  # step record: the round the carried score histograms evaluate
FIELD_STEP = "step"  # signature record: the message type signed for
FIELD_SIGNATURE = "signature"  # signature record: the Ed25519 signature
FIELD_SEQ = "seq"  # audit-head record: the last record's sequence number
FIELD_HEAD = "head"  # audit-head record: its hash
FIELD_SCHEMA = "schema"  # schema record: the column schema (JSON)
FIELD_PREPROCESSOR = "preprocessor"  # release record: the preprocessor (JSON)
METRIC_BANK = "bank"  # metrics record: the bank's index
METRIC_EXAMPLES = "num-examples"  # metrics record: rows behind the reply
METRIC_AUC = "auc"  # metrics record: global AUC opened from the combined histograms
METRIC_KS = "ks"  # metrics record: global KS opened from the combined histograms
METRIC_EVAL_ROUND = "eval-round"  # metrics record: the round those histograms belong to
METRIC_CAL_SLOPE = "cal-slope"  # metrics record: calibration map fitted on the opened sums
METRIC_CAL_INTERCEPT = "cal-intercept"  # metrics record: its intercept
METRIC_CAL_ROWS = "cal-rows"  # metrics record: the rows it was fitted on


@dataclass(frozen=True)
class SignatureClaim:
    """What a bank says it signed: run, step, round, and the Ed25519 signature."""

    run_id: str
    step: str
    round: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class StepInfo:
    """The step record of a request: run id, round and (once agreed) the feature layout.

    ``layout`` stays the JSON text the record carries (``None`` before the layout is agreed);
    :func:`layout_of` parses it. :func:`step_of` checks a received record before building one.
    """

    run_id: str
    round: int
    layout: str | None = None
    evaluate: bool = False
    """A train request that also asks for the score histograms of the model it carries (the
    evaluation of round ``round``, in the same exchange as the training of round ``round + 1``)."""
    hist_round: int | None = None
    """The round whose evaluation the carried score-histogram sum holds (None: ``round``)."""

    @property
    def histograms_round(self) -> int:
        """The round the carried score histograms were sealed for (and are opened at)."""
        return self.round if self.hist_round is None else self.hist_round


def request_content(
    cfg: RunConfig, *, run_id: str, round_index: int = 0, layout: FeatureLayout | None = None,
    sums: Mapping[str, Sealed] | None = None, audit: AuditHead | None = None,
    evaluate: bool = False, hist_round: int | None = None,
) -> RecordDict:
    """Coordinator -> bank: run config, step details, combined sealed vectors and the head of
    the coordinator's audit log (which the bank signs and keeps). ``evaluate`` and
    ``hist_round``: :class:`StepInfo`."""
    step = StepInfo(run_id, round_index, layout.to_json() if layout is not None else None,
                    evaluate, hist_round)
    content = RecordDict({KEY_RUN: ConfigRecord(cfg.to_user_config()),
                          KEY_STEP: step_to_record(step)})
    for key, sealed in (sums or {}).items():
        content[key] = sealed_to_record(sealed)
    if audit is not None:
        content[KEY_AUDIT_HEAD] = ConfigRecord({FIELD_RUN_ID: audit.run_id, FIELD_SEQ: audit.seq,
                                                FIELD_ROUND: audit.round, FIELD_HEAD: audit.head})
    return content


def audit_head_of(content: RecordDict) -> AuditHead | None:
    """The audit head a request announces (None when it carries none); a malformed one raises
    MalformedMessageError."""
    if KEY_AUDIT_HEAD not in content.config_records:
        return None
    rec: dict[str, Any] = dict(content.config_records[KEY_AUDIT_HEAD])
    try:
        return AuditHead(rec[FIELD_RUN_ID], rec[FIELD_SEQ], rec[FIELD_ROUND], rec[FIELD_HEAD])
    except (KeyError, ProtocolError) as exc:
        raise MalformedMessageError(f"the request's audit head is malformed: {exc}") from exc


def run_config_of(content: RecordDict) -> RunConfig:
    """Run config carried by a request."""
    return RunConfig.from_user_config(dict(_get(content, KEY_RUN)))


def step_to_record(step: StepInfo) -> ConfigRecord:
    """A step as the config record a request carries (no layout field before it is agreed)."""
    values: dict[str, Any] = {FIELD_RUN_ID: step.run_id, FIELD_ROUND: step.round}
    if step.layout is not None:
        values[FIELD_LAYOUT] = step.layout
    if step.evaluate:
        values[FIELD_EVALUATE] = 1
    if step.hist_round is not None:
        values[FIELD_HIST_ROUND] = step.hist_round
    return ConfigRecord(values)


def step_of(content: RecordDict) -> StepInfo:
    """Step details (run id, round, layout) of a request; MalformedMessageError if malformed."""
    step = dict(_get(content, KEY_STEP))
    for key, kind in ((FIELD_RUN_ID, str), (FIELD_ROUND, int)):
        if not _typed(step.get(key), kind):
            raise MalformedMessageError(f"step record lacks a {kind.__name__} '{key}'.")
    if step[FIELD_ROUND] < 0 or not isinstance(step.get(FIELD_LAYOUT, ""), str):
        raise MalformedMessageError("step record has a negative round or a non-text layout.")
    evaluate, hist_round = step.get(FIELD_EVALUATE, 0), step.get(FIELD_HIST_ROUND)
    if evaluate not in (0, 1) or not _typed(evaluate, int) or (
            hist_round is not None and not (_typed(hist_round, int) and hist_round >= 0)):
        raise MalformedMessageError(f"step record's '{FIELD_EVALUATE}' must be 0 or 1 and its "
                                    f"'{FIELD_HIST_ROUND}' an int >= 0.")
    return StepInfo(step[FIELD_RUN_ID], step[FIELD_ROUND], step.get(FIELD_LAYOUT),
                    bool(evaluate), hist_round)


def layout_of(step: StepInfo) -> FeatureLayout:
    """The agreed feature layout carried by a stats request."""
    if step.layout is None:
        raise MalformedMessageError("step record lacks the agreed feature layout.")
    return FeatureLayout.from_json(step.layout)


def reply_content(
    *, bank: int, n_examples: int, sealed: Sealed | None = None,
    signature: SignatureClaim | None = None, schema: LocalSchema | None = None,
    metrics: Mapping[str, float] | None = None,
    release: tuple[list[np.ndarray], Preprocessor] | None = None,
    released_histograms: tuple[np.ndarray, ...] | None = None,
    evaluation: tuple[Sealed, SignatureClaim] | None = None,
) -> RecordDict:
    """Bank -> coordinator: a sealed vector, public metrics, or the final model release;
    ``evaluation``: a train reply's signed score histograms (``evaluate`` requests)."""
    values: dict[str, Any] = {METRIC_BANK: bank, METRIC_EXAMPLES: n_examples, **(metrics or {})}
    content = RecordDict({KEY_METRICS: MetricRecord(values)})
    if sealed is not None:
        content[KEY_SEALED] = sealed_to_record(sealed)
    if signature is not None:
        content[KEY_SIGNATURE] = _signature_record(signature)
    if evaluation is not None:
        content[KEY_SEALED_EVAL] = sealed_to_record(evaluation[0])
        content[KEY_SIGNATURE_EVAL] = _signature_record(evaluation[1])
    if schema is not None:
        content[KEY_SCHEMA] = ConfigRecord({FIELD_SCHEMA: json.dumps(
            {"numeric": list(schema.numeric),
             "categorical": {k: list(v) for k, v in schema.categorical.items()}})})
    if released_histograms is not None:
        content[KEY_RELEASED_HIST] = ArrayRecord([np.asarray(h, dtype=np.int64)
                                                  for h in released_histograms])
    if release is not None:
        weights, prep = release
        content[KEY_WEIGHTS] = ArrayRecord([np.asarray(w, dtype=np.float64) for w in weights])
        content[KEY_RELEASE] = ConfigRecord({FIELD_PREPROCESSOR: prep.to_json()})
    return content


def _signature_record(signature: SignatureClaim) -> ConfigRecord:
    return ConfigRecord({FIELD_RUN_ID: signature.run_id, FIELD_STEP: signature.step,
                         FIELD_ROUND: signature.round, FIELD_SIGNATURE: signature.signature})


def metrics_of(content: RecordDict) -> dict[str, float]:
    """Public metrics of a reply: numbers, always with int ``bank`` and ``num-examples`` >= 0."""
    metrics = {k: v for k, v in dict(_get(content, KEY_METRICS)).items()}
    if not all(_typed(v, (int, float)) and _fits_float(v) for v in metrics.values()):
        raise MalformedMessageError("metrics record holds a value that is not a float.")
    for key in (METRIC_BANK, METRIC_EXAMPLES):
        if not _typed(metrics.get(key), int) or metrics[key] < 0:
            raise MalformedMessageError(f"metrics record lacks an int '{key}' >= 0.")
    return metrics


def bank_of(content: RecordDict) -> int:
    """Bank index of a reply."""
    return int(metrics_of(content)[METRIC_BANK])


def schema_of(content: RecordDict) -> LocalSchema:
    """A bank's column schema from its reply; MalformedMessageError if malformed."""
    record = _get(content, KEY_SCHEMA)
    try:
        raw = json.loads(str(record[FIELD_SCHEMA]))
        numeric, categorical = raw["numeric"], raw["categorical"]
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise MalformedMessageError(f"schema record is malformed: {exc}") from exc
    if not _is_names(numeric) or not isinstance(categorical, dict) or not all(
            _is_names(v) for v in categorical.values()):
        raise MalformedMessageError("schema record must list column names and, per "
                                    "categorical column, its category names.")
    return LocalSchema(tuple(numeric), {k: tuple(v) for k, v in categorical.items()})


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _ndarrays(record: ArrayRecord, what: str) -> list[np.ndarray]:
    """The arrays of a received record; MalformedMessageError for bytes that are not ``.npy``
    (numpy reads ``PK...`` as an ``.npz`` zip, which fails with ``BadZipFile``)."""
    try:
        return record.to_numpy_ndarrays()
    except (TypeError, ValueError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise MalformedMessageError(f"{what} do not decode: {exc}") from exc


def released_histograms_of(content: RecordDict) -> tuple[np.ndarray, np.ndarray] | None:
    """The summed (bad, good) test-score histograms a bank released at the end, if any."""
    arrays = _released_arrays(content)
    return None if arrays is None else (arrays[0], arrays[1])


def released_training_scores_of(content: RecordDict) -> np.ndarray | None:
    """The summed training-score counts (both classes) a bank released beside the test
    histograms, if any (the train-vs-test stability of the report)."""
    arrays = _released_arrays(content)
    return None if arrays is None or len(arrays) < 3 else arrays[2]


def _released_arrays(content: RecordDict) -> list[np.ndarray] | None:
    if KEY_RELEASED_HIST not in content:
        return None
    record = content[KEY_RELEASED_HIST]
    arrays = _ndarrays(record, "released histograms") if isinstance(record, ArrayRecord) else []
    if len(arrays) not in (2, 3) or arrays[0].ndim != 1 or any(
            a.shape != arrays[0].shape for a in arrays) or not all(
            a.dtype.kind in "iu" and np.can_cast(a.dtype, np.int64) and (a >= 0).all()
            for a in arrays):
        raise MalformedMessageError("released histograms must be two (or, with the training "
                                    "scores, three) count vectors of one length.")
    return [a.astype(np.int64) for a in arrays]


def release_of(content: RecordDict) -> tuple[list[np.ndarray], Preprocessor] | None:
    """The released final model of a finalize reply, if the bank released it."""
    if KEY_WEIGHTS not in content:
        return None
    record = _get(content, KEY_RELEASE)
    weights_record = content[KEY_WEIGHTS]
    if not isinstance(weights_record, ArrayRecord) or FIELD_PREPROCESSOR not in record:
        raise MalformedMessageError("release lacks its weights array record or preprocessor.")
    prep = Preprocessor.from_json(str(record[FIELD_PREPROCESSOR]))
    weights = _ndarrays(weights_record, "released weights")
    if not all(w.dtype.kind == "f" for w in weights):
        raise MalformedMessageError("released weights must be float arrays.")
    return weights, prep


def signature_of(content: RecordDict, key: str = KEY_SIGNATURE) -> SignatureClaim:
    """The signature claim of a reply (``key``: of its evaluation, ``KEY_SIGNATURE_EVAL``); an
    unsigned reply raises InvalidSignatureError."""
    if key not in content:
        raise InvalidSignatureError("update is not signed; the bank must sign its updates "
                                    "with the key registered in the key ceremony.")
    rec = content[key]
    run_id, step, round_, signature = (rec[key] if key in rec else None for key in (
        FIELD_RUN_ID, FIELD_STEP, FIELD_ROUND, FIELD_SIGNATURE))
    if not (isinstance(run_id, str) and isinstance(step, str) and _is_int(round_)
            and isinstance(signature, bytes)):
        raise MalformedMessageError("signature record is malformed: it needs str 'run-id' and "
                                    "'step', int 'round' and bytes 'signature'.")
    return SignatureClaim(run_id, step, round_, signature)


def sealed_to_record(sealed: Sealed) -> ConfigRecord:
    """A sealed vector as a config record (payload and contribution boxes stay opaque)."""
    values = (sealed.kind, sealed.scheme, sealed.length, sealed.parties, sealed.payload,
              sealed.schema_version)
    record: dict[str, Any] = dict(zip(_SEALED_KEYS, values, strict=True))
    record[FIELD_CONTRIBUTORS] = sealed.contributors
    return ConfigRecord(record)


def sealed_from_record(record: ArrayRecord | MetricRecord | ConfigRecord) -> Sealed:
    """Inverse of :func:`sealed_to_record`; malformed records (a record of another kind among
    them) raise MalformedMessageError."""
    try:
        kind, scheme, length, parties, payload, version = [record[key] for key in _SEALED_KEYS]
    except (KeyError, TypeError) as exc:
        raise MalformedMessageError(f"sealed vector record is malformed: {exc}") from exc
    contributors = record[FIELD_CONTRIBUTORS] if FIELD_CONTRIBUTORS in record else b""
    if not (isinstance(kind, str) and isinstance(scheme, str) and _is_int(length)
            and _is_int(parties) and isinstance(payload, bytes) and _is_int(version)
            and isinstance(contributors, bytes)):
        raise MalformedMessageError("sealed vector record has a field of the wrong type.")
    return Sealed(kind, scheme, length, parties, payload, version, contributors)


_SEALED_KEYS = ("kind", "scheme", "length", "parties", "payload", "schema-version")
FIELD_CONTRIBUTORS = "contributors"  # sealed record: the contributors' tag boxes (Paillier)


def sealed_of(content: RecordDict, key: str = KEY_SEALED) -> Sealed | None:
    """The sealed vector stored under ``key``, or None when absent."""
    return sealed_from_record(content[key]) if key in content else None


def reply(message: Message, content: RecordDict) -> Message:
    """A reply to ``message`` carrying ``content``."""
    return Message(content, reply_to=message)


def _typed(value: Any, kind: type | tuple[type, ...]) -> bool:
    """``isinstance`` that does not take a bool for a number."""
    return isinstance(value, kind) and not isinstance(value, bool)


def _is_int(value: object) -> TypeGuard[int]:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _fits_float(value: float) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _get(content: RecordDict, key: str) -> Any:
    if key not in content:
        raise MalformedMessageError(f"message lacks the '{key}' record; sender and receiver "
                                    "run different fedcredit versions?")
    return content[key]


class StepFields:
    """Typed access to the fields of a vertical step record received from another node.

    Every accessor checks the type (and range) of the field and raises
    :class:`MalformedMessageError` naming it, so malformed input never reaches a protocol step
    as a bare ``KeyError`` or ``bytes(<huge int>)``.
    """

    def __init__(self, record: Any) -> None:
        if not isinstance(record, ConfigRecord):
            raise MalformedMessageError("step record missing or of the wrong kind.")
        self._values = dict(record)

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def _get(self, name: str, kinds: tuple[type, ...], what: str) -> Any:
        value = self._values.get(name)
        if value is None or isinstance(value, bool) or not isinstance(value, kinds):
            raise MalformedMessageError(f"step field '{name}' is missing or not {what}.")
        return value

    def blob(self, name: str) -> bytes:
        """A bytes field."""
        return bytes(self._get(name, (bytes,), "bytes"))

    def int(self, name: str, minimum: int = 0) -> int:
        """An integer field, at least ``minimum``."""
        value = self._get(name, (int,), "an integer")
        if value < minimum:
            raise MalformedMessageError(f"step field '{name}' is below {minimum}.")
        return int(value)

    def text(self, name: str) -> str:
        """A string field."""
        return str(self._get(name, (str,), "text"))

    def number(self, name: str) -> float:
        """A finite number field."""
        value = float(self._get(name, (int, float), "a number"))
        if not np.isfinite(value):
            raise MalformedMessageError(f"step field '{name}' is not finite.")
        return value

    def counts(self, name: str) -> list[builtins.int]:  # ``int`` here is the method above
        """A list of non-negative integers."""
        values = self._get(name, (list,), "a list")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise MalformedMessageError(f"step field '{name}' must hold non-negative integers.")
        return [int(v) for v in values]

    def texts(self, name: str) -> list[str]:
        """A list of strings."""
        values = self._get(name, (list,), "a list")
        if not all(isinstance(v, str) for v in values):
            raise MalformedMessageError(f"step field '{name}' must hold strings.")
        return list(values)


FIELD_ROWS_TOTAL = "total"  # rows record: the banks' reported training rows, all of them
FIELD_ROWS_IN_SUM = "in-sum"  # rows record: those of the banks in the update sum


def with_rows(content: RecordDict, *, total: int, in_sum: int) -> RecordDict:
    """Add the row sums a bank checks the update sum's weight mass against
    (:mod:`federation.steps.weight_share`)."""
    content[KEY_ROWS] = ConfigRecord({FIELD_ROWS_TOTAL: int(total), FIELD_ROWS_IN_SUM: int(in_sum)})
    return content


def rows_of(content: RecordDict) -> tuple[int, int] | None:
    """``(total, in_sum)`` of a request, None when it carries none."""
    if KEY_ROWS not in content.config_records:
        return None
    rec = dict(content.config_records[KEY_ROWS])
    total, in_sum = rec.get(FIELD_ROWS_TOTAL), rec.get(FIELD_ROWS_IN_SUM)
    if not (_is_int(total) and _is_int(in_sum)) or not 0 <= in_sum <= total:
        raise MalformedMessageError("the request's rows record needs integers 0 <= in-sum <= "
                                    "total.")
    return total, in_sum
