"""The allow-list of the wire: every value a message of ours may carry, and how large.

Protocol step: none; ``fedcredit audit wire`` checks a recorded transcript against it
(:mod:`federation.wire.transcript`). One row is ``(message types, record, key, kind, dtypes,
size bound)``: a value is allowed when a row names its message type, record, key, record kind
(array, config, metric) and dtype, and its raw bytes are within the bound. ``key = "*"``
stands for any key of that record (only for ArrayRecords built from a list of arrays, whose
keys Flower numbers). The rows are built from the wire modules' own constants (message types,
record keys, field names, run settings), so a renamed key stays allowed and a new key, record
or message type is refused until a row names it here.

Security: the allow-list says which *places* exist, not what is in them: a label column hidden
in an allowed bytes field passes this check and is the content scan's business. Sizes are
bounds for a big run (UCI, 100 trees, 2048-bit Paillier), not tight fits.

To add a protocol (for example ``secagg.*``): add its message types and a row per record and key
to :data:`ALLOW_LIST` (or a group helper like :func:`_sealed_rows`), then record a clean run with
``--record-wire`` and run ``fedcredit audit wire`` on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from federation.run.config import RunConfig
from federation.run.vertical_config import VerticalConfig
from federation.wire import peer_frames, records, secagg, trees, vertical
from federation.wire.transcript import KIND_ARRAY, KIND_CONFIG, KIND_METRIC, KINDS, WireValue
from protocols.errors import MalformedMessageError

ANY_KEY = "*"
SCALAR = 8  # an int or float: 8 bytes; a bool: 1
SHORT_TEXT = 4096  # names, ids, paths, schemes
JSON_DOC = 16 * 2**20  # a schema, layout, preprocessor, model or IV table
BLOB = 2**31  # a sealed vector, ciphertext batch or protocol message

TEXT_DTYPES = frozenset({"str"})
NUMBER_DTYPES = frozenset({"int", "float"})


@dataclass(frozen=True, slots=True)
class Allowed:
    """One row: ``record``/``key`` of ``kind`` with a dtype in ``dtypes`` and at most
    ``max_bytes`` raw bytes, in a message of one of ``types``."""

    types: frozenset[str]
    record: str
    key: str
    kind: str
    dtypes: frozenset[str]
    max_bytes: int

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"allow-list kind '{self.kind}' is not one of {KINDS}.")
        if self.max_bytes < 0 or not self.types or not self.dtypes:
            raise ValueError(f"allow-list row {self.record}/{self.key} needs message types, "
                             "dtypes and a size bound >= 0.")


def _types(steps: Iterable[Any]) -> frozenset[str]:
    return frozenset(step.message_type for step in steps)


HORIZONTAL_TYPES = _types((*records.HORIZONTAL_STEPS, trees.STEP_TREE_BINS, trees.STEP_TREE_LEVEL,
                           trees.STEP_TREE_FINALIZE, secagg.STEP_SECAGG))
SESSION_KEY = "/*"
"""A key ending so stands for ``<field>/<any masking session>`` (:mod:`federation.wire.secagg`)."""
VERTICAL_TYPES = _types(vertical.VERTICAL_STEPS)


def _dtype_of(value: object) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str"}[type(value)]


def _settings_rows(types: frozenset[str], record: str, settings: Mapping[str, Any]) -> list[Allowed]:
    """The run-config record: one row per setting, typed as its default."""
    return [Allowed(types, record, key, KIND_CONFIG, frozenset({_dtype_of(value)}),
                    SHORT_TEXT if isinstance(value, str) else SCALAR)
            for key, value in settings.items()]


def _sealed_rows(types: frozenset[str], record: str) -> list[Allowed]:
    """A sealed vector (:func:`federation.wire.records.sealed_to_record`)."""
    fields = {"kind": ("str", SHORT_TEXT), "scheme": ("str", SHORT_TEXT), "length": ("int", SCALAR),
              "parties": ("int", SCALAR), "payload": ("bytes", BLOB),
              "schema-version": ("int", SCALAR), records.FIELD_CONTRIBUTORS: ("bytes", BLOB)}
    return [Allowed(types, record, key, KIND_CONFIG, frozenset({dtype}), bound)
            for key, (dtype, bound) in fields.items()]


def _metric_rows(types: frozenset[str]) -> list[Allowed]:
    """Every public metric a reply may carry (the ``METRIC_*`` names of the wire modules)."""
    names = {value for module in (records, trees) for name, value in vars(module).items()
             if name.startswith("METRIC_") and isinstance(value, str)}
    return [Allowed(types, records.KEY_METRICS, name, KIND_METRIC, NUMBER_DTYPES, SCALAR)
            for name in sorted(names)]


def _config_rows(types: frozenset[str], record: str,
                 fields: Mapping[str, tuple[frozenset[str], int]]) -> list[Allowed]:
    return [Allowed(types, record, key, KIND_CONFIG, dtypes, bound)
            for key, (dtypes, bound) in fields.items()]


def _horizontal_rows() -> list[Allowed]:
    h = HORIZONTAL_TYPES
    text, number, blob = TEXT_DTYPES, frozenset({"int"}), frozenset({"bytes"})
    rows = _settings_rows(h, records.KEY_RUN, RunConfig().to_user_config())
    rows += _config_rows(h, records.KEY_STEP, {
        records.FIELD_RUN_ID: (text, SHORT_TEXT), records.FIELD_ROUND: (number, SCALAR),
        records.FIELD_LAYOUT: (text, JSON_DOC), records.FIELD_EVALUATE: (number, SCALAR),
        records.FIELD_HIST_ROUND: (number, SCALAR)})
    rows += _config_rows(h, records.KEY_AUDIT_HEAD, {
        records.FIELD_RUN_ID: (text, SHORT_TEXT), records.FIELD_SEQ: (number, SCALAR),
        records.FIELD_ROUND: (number, SCALAR), records.FIELD_HEAD: (text, SHORT_TEXT)})
    for key in (records.KEY_SIGNATURE, records.KEY_SIGNATURE_EVAL):
        rows += _config_rows(h, key, {
            records.FIELD_RUN_ID: (text, SHORT_TEXT), records.FIELD_STEP: (text, SHORT_TEXT),
            records.FIELD_ROUND: (number, SCALAR), records.FIELD_SIGNATURE: (blob, SHORT_TEXT)})
    rows += _config_rows(h, records.KEY_SCHEMA, {records.FIELD_SCHEMA: (text, JSON_DOC)})
    rows += _config_rows(h, records.KEY_RELEASE, {records.FIELD_PREPROCESSOR: (text, JSON_DOC)})
    rows += _config_rows(h, trees.KEY_TREE_STATE, {
        trees.FIELD_STATE: (blob, BLOB), trees.FIELD_STATE_SEQ: (number, SCALAR)})
    rows += _config_rows(h, trees.KEY_TREE_MODEL, {
        trees.FIELD_MODEL: (text, JSON_DOC), trees.FIELD_EDGES: (text, JSON_DOC),
        trees.FIELD_FEATURES: (frozenset({"list[str]"}), JSON_DOC),
        trees.FIELD_PREPROCESSOR: (text, JSON_DOC)})
    for key in (records.KEY_SEALED, records.KEY_SEALED_EVAL, records.KEY_STATS_SUM, records.KEY_WEIGHTS_SUM,
                records.KEY_HIST_SUM, trees.KEY_BINS_SUM, trees.KEY_LEVEL_SUM):
        rows += _sealed_rows(h, key)
    rows += _metric_rows(h)
    rows += _config_rows(h, records.KEY_ROWS, {records.FIELD_ROWS_TOTAL: (number, SCALAR),
                                               records.FIELD_ROWS_IN_SUM: (number, SCALAR)})
    rows += _config_rows(h, secagg.KEY_SECAGG, {  # masking bundles: SecAgg+ messages only
        "version": (number, SCALAR), "advertise": (frozenset({"list[str]", "list[int]"}),
                                                   SHORT_TEXT),
        "adverts" + SESSION_KEY: (frozenset({"list[bytes]", "list[int]"}), BLOB),
        "signatures" + SESSION_KEY: (frozenset({"list[bytes]", "list[int]"}), BLOB),
        "shares" + SESSION_KEY: (frozenset({"list[bytes]", "list[int]"}), BLOB),
        "envelopes" + SESSION_KEY: (frozenset({"list[bytes]", "list[int]"}), BLOB),
        "attestations" + SESSION_KEY: (frozenset({"list[bytes]", "list[int]"}), BLOB),
        "lengths" + SESSION_KEY: (number, SCALAR), "unmask" + SESSION_KEY: (blob, BLOB),
        "survivors" + SESSION_KEY: (blob, BLOB)})
    rows += [Allowed(h, records.KEY_WEIGHTS, ANY_KEY, KIND_ARRAY, frozenset({"float64"}), BLOB),
             Allowed(h, records.KEY_RELEASED_HIST, ANY_KEY, KIND_ARRAY, frozenset({"int64"}),
                     BLOB)]
    return rows


_INT, _TEXT, _BYTES = frozenset({"int"}), TEXT_DTYPES, frozenset({"bytes"})
_FLOAT = frozenset({"float", "int"})
_INTS, _TEXTS = frozenset({"list[int]"}), frozenset({"list[str]"})
VERTICAL_FIELDS: dict[str, tuple[frozenset[str], int]] = {
    vertical.Field.ROLE: (_TEXT, SHORT_TEXT), vertical.Field.ROWS: (_INT, SCALAR),
    vertical.Field.PUBLIC_KEY: (_BYTES, JSON_DOC), vertical.Field.STAGE: (_INT, SCALAR),
    vertical.Field.BLOB: (_BYTES, BLOB), vertical.Field.SIZE: (_INT, SCALAR),
    vertical.Field.RUN_ID: (_TEXT, SHORT_TEXT), vertical.Field.TRAIN_ROWS: (_INT, SCALAR),
    vertical.Field.TEST_ROWS: (_INT, SCALAR), vertical.Field.FEATURES: (_TEXTS, JSON_DOC),
    vertical.Field.BANK_FEATURES: (_INT, SCALAR), vertical.Field.CENTER_FEATURES: (_INT, SCALAR),
    vertical.Field.PEER_PUBLIC_KEY: (_BYTES, JSON_DOC), vertical.Field.BATCHES: (_INT, SCALAR),
    vertical.Field.EPOCH: (_INT, SCALAR), vertical.Field.BATCH: (_INT, SCALAR),
    vertical.Field.OPENED: (_BYTES, BLOB), vertical.Field.UPDATES: (_INT, SCALAR),
    vertical.Field.AUC: (_FLOAT, SCALAR), vertical.Field.KS: (_FLOAT, SCALAR),
    vertical.Field.HIST_BAD: (_INTS, JSON_DOC), vertical.Field.HIST_GOOD: (_INTS, JSON_DOC),
    vertical.Field.CAL_BAD: (_INTS, JSON_DOC), vertical.Field.CAL_GOOD: (_INTS, JSON_DOC),
    vertical.Field.IV_JSON: (_TEXT, JSON_DOC), vertical.Field.POSITIONS: (_INTS, JSON_DOC),
    vertical.Field.CATEGORICAL: (_INTS, JSON_DOC), vertical.Field.ASSIGNMENT: (_BYTES, BLOB),
    vertical.Field.BUILD: (_INTS, JSON_DOC), vertical.Field.COUNT: (_INT, SCALAR),
    vertical.Field.SPLITS: (_TEXT, JSON_DOC), vertical.Field.SPLIT_IDS: (_INTS, JSON_DOC),
    vertical.Field.DONE: (_INT, SCALAR),
    vertical.Field.RELAY_HOST: (_TEXT, SHORT_TEXT), vertical.Field.RELAY_PORT: (_INT, SCALAR),
    vertical.Field.SESSION_KEY: (_BYTES, 64), vertical.Field.FRAMES: (_INTS, 64),
}
"""Every field of a vertical step record, its dtypes and bound (a field without a row here
is refused: add it when the protocol gains one)."""


STREAM_TYPES = frozenset(f"stream.{name}" for step, name in peer_frames.STEP_NAMES.items()
                         if step != peer_frames.STEP_HELLO)
"""The frames of a vertical peer stream, as a node's transcript records them opened
(:class:`clients.wire_recorder.RecordingLink`): one protocol message each."""


def _vertical_rows() -> list[Allowed]:
    v = VERTICAL_TYPES
    rows = _settings_rows(v, vertical.KEY_VRUN, VerticalConfig().to_user_config())
    rows += _config_rows(v, vertical.KEY_VSTEP, VERTICAL_FIELDS)
    rows.append(Allowed(STREAM_TYPES, "frame", "blob", KIND_CONFIG, _BYTES, BLOB))
    return rows


ALLOW_LIST: tuple[Allowed, ...] = (*_horizontal_rows(), *_vertical_rows())
"""Every value a fedcredit message may carry."""


def _session_key_matches(pattern: str, key: str) -> bool:
    """``adverts/*`` matches ``adverts/weights:3`` (a well-formed session name only)."""
    if not pattern.endswith(SESSION_KEY):
        return False
    field, _, session = key.partition("/")
    if field != pattern[:-len(SESSION_KEY)]:
        return False
    try:
        secagg.parse_session(session)
    except MalformedMessageError:
        return False
    return True


def refusal(message_type: str, value: WireValue, allow: Iterable[Allowed] = ALLOW_LIST,
            ) -> str | None:
    """Why ``value`` (in a message of ``message_type``) is not allowed, or None when it is.

    The reason names the rule: no row for the place, another kind or dtype, or the size
    bound; never the value."""
    rows = [r for r in allow if message_type in r.types and r.record == value.record
            and (r.key in (value.key, ANY_KEY) or _session_key_matches(r.key, value.key))]
    if not rows:
        return f"no allow-list row for record '{value.record}' key '{value.key}' in " \
               f"'{message_type}' messages"
    kinds = [r for r in rows if r.kind == value.kind]
    if not kinds:
        return f"kind {value.kind} where the allow-list has {sorted({r.kind for r in rows})}"
    typed = [r for r in kinds if value.dtype in r.dtypes]
    if not typed:
        return (f"dtype {value.dtype} where the allow-list has "
                f"{sorted(set().union(*(r.dtypes for r in kinds)))}")
    bound = max(r.max_bytes for r in typed)
    if len(value.raw) > bound:
        return f"{len(value.raw)} bytes, over the allow-list bound of {bound}"
    return None
