"""Records of a vertical run (bank + credit center): step message types, field names, stage
numbers, roles and the request/reply builders.

Each step of the vertical protocol is one :class:`MessageType` here (``V_PSI`` ...), each field
of a step record one :class:`Field` constant, each stage of the relayed PSI and binning steps one
number. The coordinator (``server.vertical``) and the node (``clients.vertical_app``) build and
read step records only through this module, so a renamed step or field fails at import, not at
run time. Requests carry the vertical run config and one step record of fields (bytes, ints,
texts); replies carry one step record.

Security: a step record carries only what the protocol sends in the open (blinded points,
ciphertexts under a party's own key, masked values, public keys, counts and public results);
which party may send what is the business of ``federation.steps.vertical_*``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final, final

from flwr.app import ConfigRecord, Message, RecordDict

from federation.run.vertical_config import VerticalConfig
from federation.wire.message_types import MessageType
from federation.wire.records import StepFields
from protocols.errors import MalformedMessageError
from protocols.vertical_lr.steps import ROLE_BANK, ROLE_CENTER

__all__ = [
    "ROLE_BANK", "ROLE_CENTER", "KEY_VRUN", "KEY_VSTEP", "StepValue", "StepValues",
    "V_SETUP", "V_PSI", "V_PREPARE", "V_START", "V_BIN", "V_ENCRYPT", "V_GRADIENT", "V_OPEN",
    "V_UPDATE", "V_STREAM", "V_SCORE", "V_TREE_START", "V_TREE_GRAD", "V_TREE_LEVEL",
    "V_TREE_DECIDE",
    "V_TREE_APPLY", "V_TREE_SCORE", "VERTICAL_STEPS", "Field", "FIELD_NAMES",
    "PSI_INITIATOR_START", "PSI_RESPONDER_REPLY", "PSI_INITIATOR_FINISH", "PSI_RESPONDER_FINISH",
    "BIN_ENCRYPT_LABELS", "BIN_SUM_PER_BIN", "BIN_OPEN_COUNTS",
    "vertical_request", "vertical_reply", "unpack_request", "unpack_reply", "relayed_bytes",
    "stage_fields", "batch_fields", "blob_fields", "iv_fields", "stream_fields",
]

KEY_VRUN = "vrun"  # ConfigRecord: the vertical run config
KEY_VSTEP = "vstep"  # ConfigRecord: step fields and byte blobs

StepValue = int | float | str | bytes | list[int] | list[str]
"""One field of a step record (what a :class:`flwr.app.ConfigRecord` holds for us)."""
StepValues = dict[str, StepValue]

# ------------------------------------------------------------------ steps, in run order
V_SETUP = MessageType("query", "v_setup")  # check the file, make the run's key pair
V_PSI = MessageType("query", "v_psi")  # ECDH-PSI, four relayed stages
V_PREPARE = MessageType("query", "v_prepare")  # align, split, standardise own columns
V_START = MessageType("query", "v_start")  # agree the LR config, take the peer's public key
V_BIN = MessageType("query", "v_bin")  # secure WOE/IV, three relayed stages
V_ENCRYPT = MessageType("train", "v_encrypt")  # LR phase 1 (after the last batch's update)
V_GRADIENT = MessageType("train", "v_gradient")  # LR phase 2: masked gradient for the peer
V_OPEN = MessageType("train", "v_open")  # LR phase 3: decrypt the peer's masked gradient
V_UPDATE = MessageType("train", "v_update")  # the last batch's update
V_STREAM = MessageType("train", "v_stream")  # transport "stream": one epoch via the peer relay
V_SCORE = MessageType("query", "v_score")  # held-out scoring, center then bank
V_TREE_START = MessageType("query", "v_tree_start")  # SecureBoost: own bins; center's shape
V_TREE_GRAD = MessageType("train", "v_tree_grad")  # bank: per-row (g, h) encrypted, next tree
V_TREE_LEVEL = MessageType("train", "v_tree_level")  # center: encrypted sums of a level
V_TREE_DECIDE = MessageType("train", "v_tree_decide")  # bank: open, decide, ask center splits
V_TREE_APPLY = MessageType("train", "v_tree_apply")  # center: record its splits, partitions;
#                                                      bank: apply them (and finish a tree)
V_TREE_SCORE = MessageType("query", "v_tree_score")  # held-out scoring of the trees
VERTICAL_STEPS = (V_SETUP, V_PSI, V_PREPARE, V_START, V_BIN, V_ENCRYPT, V_GRADIENT, V_OPEN,
                  V_UPDATE, V_STREAM, V_SCORE, V_TREE_START, V_TREE_GRAD, V_TREE_LEVEL,
                  V_TREE_DECIDE,
                  V_TREE_APPLY, V_TREE_SCORE)

# ------------------------------------------------------------------ stages of relayed steps
PSI_INITIATOR_START = 1  # bank: its blinded own set
PSI_RESPONDER_REPLY = 2  # center: the bank's set double-blinded, its own set blinded
PSI_INITIATOR_FINISH = 3  # bank: the intersection, the center's set double-blinded
PSI_RESPONDER_FINISH = 4  # center: the intersection
BIN_ENCRYPT_LABELS = 1  # bank: labels encrypted under its own key
BIN_SUM_PER_BIN = 2  # center: encrypted label sums per bin of its own columns
BIN_OPEN_COUNTS = 3  # bank: decrypted per-bin counts -> the IV table


@final
class Field:
    """Names of the fields of a vertical step record (requests and replies), each named once.

    The values are what today's nodes and coordinators put on the wire: keep them, or a
    deployment of mixed versions stops understanding itself.
    """

    ROLE: Final = "role"  # setup reply: "bank" or "center"
    ROWS: Final = "rows"  # setup reply: rows of the party's file; start request: training rows
    PUBLIC_KEY: Final = "public_key"  # setup reply: the party's Paillier public key for the run
    STAGE: Final = "stage"  # PSI and binning requests: the stage number
    BLOB: Final = "blob"  # a protocol message: points, ciphertexts or masked values
    SIZE: Final = "size"  # PSI replies (stages 3, 4): the size of the intersection
    RUN_ID: Final = "run-id"  # prepare and start requests: the run id (split salt, LR config)
    TRAIN_ROWS: Final = "train_rows"  # prepare reply
    TEST_ROWS: Final = "test_rows"  # prepare reply
    FEATURES: Final = "features"  # prepare reply: the party's column names after preprocessing
    BANK_FEATURES: Final = "bank-features"  # start request: the bank's number of columns
    CENTER_FEATURES: Final = "center-features"  # start request: the center's number of columns
    PEER_PUBLIC_KEY: Final = "peer-public-key"  # start request: the other party's public key
    BATCHES: Final = "batches"  # start reply: mini-batches per epoch
    EPOCH: Final = "epoch"  # LR requests
    BATCH: Final = "batch"  # LR requests
    OPENED: Final = "opened"  # encrypt and update requests: the own gradient, opened (masked)
    UPDATES: Final = "updates"  # update reply: weight updates made so far
    RELAY_HOST: Final = "relay-host"  # stream request: where the coordinator's relay listens
    RELAY_PORT: Final = "relay-port"  # stream request
    SESSION_KEY: Final = "session-key"  # stream request: the epoch's 32-byte frame key
    FRAMES: Final = "frames"  # stream reply: frames sent and received
    AUC: Final = "auc"  # bank's score reply
    KS: Final = "ks"  # bank's score reply
    HIST_BAD: Final = "hist_bad"  # bank's score reply: held-out score histogram, bad rows
    HIST_GOOD: Final = "hist_good"  # bank's score reply: held-out score histogram, good rows
    CAL_BAD: Final = "cal_bad"  # bank's score reply: the calibration half's histogram, bad rows
    CAL_GOOD: Final = "cal_good"  # bank's score reply: the calibration half's histogram, good
    IV_JSON: Final = "iv_json"  # binning reply (stage 3): the IV table as a JSON object
    POSITIONS: Final = "positions"  # tree start: split positions per center feature
    CATEGORICAL: Final = "categorical"  # tree start: 1 per categorical center feature, else 0
    ASSIGNMENT: Final = "assignment"  # tree level request: each training row's node (int32)
    BUILD: Final = "build"  # tree level request: the nodes to histogram
    COUNT: Final = "count"  # tree level reply / decide request: sums in the packed blob
    SPLITS: Final = "splits_json"  # decide reply / apply request: the center's splits (JSON)
    SPLIT_IDS: Final = "split_ids"  # apply: the center's ids of those splits
    DONE: Final = "done"  # bank's apply reply: 1 when the tree is complete


FIELD_NAMES: Final = frozenset(value for name, value in vars(Field).items() if name.isupper())


# ------------------------------------------------------------------ records
def vertical_request(cfg: VerticalConfig, fields: Mapping[str, StepValue] | None = None,
                     ) -> RecordDict:
    """Coordinator -> party: run config and step fields (bytes, ints, strings)."""
    return RecordDict({KEY_VRUN: ConfigRecord(cfg.to_user_config()),
                       KEY_VSTEP: ConfigRecord(dict(fields or {}))})


def vertical_reply(msg: Message, fields: Mapping[str, StepValue] | None = None) -> Message:
    """Party -> coordinator: step results."""
    return Message(RecordDict({KEY_VSTEP: ConfigRecord(dict(fields or {}))}), reply_to=msg)


def unpack_request(content: RecordDict) -> tuple[VerticalConfig, StepFields]:
    """The run config and step fields of a request; MalformedMessageError if either is absent."""
    if KEY_VRUN not in content or KEY_VSTEP not in content:
        raise MalformedMessageError("vertical request lacks its run or step record.")
    return VerticalConfig.from_user_config(dict(content[KEY_VRUN])), StepFields(content[KEY_VSTEP])


def unpack_reply(content: RecordDict) -> StepFields:
    """The step fields of a reply; MalformedMessageError if the step record is absent."""
    return StepFields(content.get(KEY_VSTEP))


def relayed_bytes(content: RecordDict) -> int:
    """Bytes of the byte fields of a reply's step record (what the coordinator relayed)."""
    return sum(len(v) for v in dict(content[KEY_VSTEP]).values() if isinstance(v, bytes))


# ------------------------------------------------------------------ step fields
def stage_fields(stage: int, blob: bytes | None = None) -> StepValues:
    """A PSI or binning request: the stage and, after the first, the peer's message."""
    fields: StepValues = {Field.STAGE: stage}
    if blob is not None:
        fields[Field.BLOB] = blob
    return fields


def batch_fields(epoch: int, batch: int, *, blob: bytes | None = None,
                 opened: bytes | None = None) -> StepValues:
    """An LR request for one mini-batch: where it is, and the peer's message or the own
    opened gradient of the previous batch."""
    fields: StepValues = {Field.EPOCH: epoch, Field.BATCH: batch}
    if opened is not None:
        fields[Field.OPENED] = opened
    if blob is not None:
        fields[Field.BLOB] = blob
    return fields


def blob_fields(blob: bytes) -> StepValues:
    """A step record holding one protocol message."""
    return {Field.BLOB: blob}


def iv_fields(iv: Mapping[str, float]) -> StepValues:
    """The bank's binning reply: the IV table (feature -> IV) as a JSON object."""
    return {Field.IV_JSON: json.dumps(dict(iv))}


def stream_fields(epoch: int, host: str, port: int, key: bytes) -> StepValues:
    """A ``V_STREAM`` request: run epoch ``epoch`` through the relay at ``host:port``, frames
    sealed under ``key`` (:mod:`federation.wire.peer_frames`)."""
    return {Field.EPOCH: epoch, Field.RELAY_HOST: host, Field.RELAY_PORT: port,
            Field.SESSION_KEY: key}
