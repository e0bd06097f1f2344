"""Wire vocabulary of the horizontal boosted-tree protocol (``model = "gbdt"``).

Steps after the shared schema/stats preprocessing of :mod:`federation.wire.records`:

- :data:`STEP_TREE_BINS`: each bank seals its fine counts on the public grid plus its
  ``[defaults, rows]``; the banks open the sum into the same bin edges and base margin.
- :data:`STEP_TREE_LEVEL` (repeated): the request carries the combined sealed bins, the
  combined sealed histograms of the previous level (kind ``gradients``) and the banks' shared
  state blob; each bank opens the sum, takes the same split decisions, and replies with its
  sealed histograms of the next level and the new state blob (sealed under the banks' key
  under Paillier, so the coordinator only checks that all banks agree byte for byte).
- :data:`STEP_TREE_FINALIZE`: the last AUC/KS and, when the run allows it, the model release.

Record keys and fields are constants here; the request/reply builders of ``records`` carry the
run config, step and sealed vectors, and the helpers below add the state blob and the release.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flwr.app import ConfigRecord, RecordDict

from federation.wire.message_types import MessageType
from protocols.errors import MalformedMessageError

STEP_TREE_BINS = MessageType("query", "tree_bins")  # sealed fine counts + label sums
STEP_TREE_LEVEL = MessageType("train", "tree_level")  # open a level, decide, seal the next one
STEP_TREE_FINALIZE = MessageType("query", "tree_finalize")  # last AUC/KS, model release
TREE_STEPS = (STEP_TREE_BINS, STEP_TREE_LEVEL, STEP_TREE_FINALIZE)

KEY_BINS_SUM = "bins-sum"  # ConfigRecord: combined sealed fine counts and label sums
KEY_LEVEL_SUM = "level-sum"  # ConfigRecord: combined sealed histograms (+ evaluation counts)
KEY_TREE_STATE = "tree-state"  # ConfigRecord: the banks' shared state blob and its sequence
KEY_TREE_MODEL = "tree-model"  # ConfigRecord: the released model, edges and feature names

FIELD_STATE = "state"  # tree-state record: the (sealed) state blob
FIELD_STATE_SEQ = "seq"  # tree-state record: the sequence number the blob answers
FIELD_MODEL = "model"  # tree-model record: fedcredit-gbdt model JSON
FIELD_EDGES = "edges"  # tree-model record: bin edges JSON
FIELD_FEATURES = "features"  # tree-model record: feature names, in model column order
FIELD_PREPROCESSOR = "preprocessor"  # tree-model record: the shared preprocessing (columns, vocab)
METRIC_TREES_DONE = "trees-done"  # metrics record: finished trees in the new state
METRIC_GROWING = "growing"  # metrics record: 1 while a tree is in growth, else 0
METRIC_PARTIES = "parties"  # metrics record: contributors to the tree in growth
METRIC_VALID_LOSS = "valid-loss"  # metrics record: pooled validation score (log-loss or 1 - AUC)
METRIC_STOPPED = "stopped"  # metrics record: 1 once early stopping cut the trees back
METRIC_DEPTH = "depth"  # metrics record: depth of the tree in growth (0 at its first level)


@dataclass(frozen=True, slots=True)
class TreeRelease:
    """What the banks release at the end of a tree run (when the run config allows it)."""

    model_json: str
    edges_json: str
    features: tuple[str, ...]
    preprocessor_json: str


def add_state(content: RecordDict, blob: bytes, seq: int) -> RecordDict:
    """``content`` with the shared state blob that answers request ``seq``."""
    content[KEY_TREE_STATE] = ConfigRecord({FIELD_STATE: blob, FIELD_STATE_SEQ: seq})
    return content


def state_of(content: RecordDict) -> tuple[bytes, int] | None:
    """The state blob and its sequence number, or None when the message has none."""
    if KEY_TREE_STATE not in content:
        return None
    record = content[KEY_TREE_STATE]
    if not isinstance(record, ConfigRecord):
        raise MalformedMessageError(f"'{KEY_TREE_STATE}' is not a config record.")
    blob, seq = record.get(FIELD_STATE), record.get(FIELD_STATE_SEQ)
    if not isinstance(blob, bytes) or isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise MalformedMessageError(f"'{KEY_TREE_STATE}' needs bytes '{FIELD_STATE}' and an int "
                                    f"'{FIELD_STATE_SEQ}' >= 0.")
    return blob, seq


def add_release(content: RecordDict, release: TreeRelease) -> RecordDict:
    """``content`` with the released model."""
    content[KEY_TREE_MODEL] = ConfigRecord({FIELD_MODEL: release.model_json,
                                            FIELD_EDGES: release.edges_json,
                                            FIELD_FEATURES: list(release.features),
                                            FIELD_PREPROCESSOR: release.preprocessor_json})
    return content


def release_of(content: RecordDict) -> TreeRelease | None:
    """The released model of a finalize reply, or None when the bank released nothing."""
    if KEY_TREE_MODEL not in content:
        return None
    record = content[KEY_TREE_MODEL]
    if not isinstance(record, ConfigRecord):
        raise MalformedMessageError(f"'{KEY_TREE_MODEL}' is not a config record.")
    model, edges, names, prep = (record.get(k) for k in (
        FIELD_MODEL, FIELD_EDGES, FIELD_FEATURES, FIELD_PREPROCESSOR))
    if not (isinstance(model, str) and isinstance(edges, str) and isinstance(names, list)
            and all(isinstance(n, str) for n in names) and isinstance(prep, str)):
        raise MalformedMessageError(f"'{KEY_TREE_MODEL}' needs text '{FIELD_MODEL}' and "
                                    f"'{FIELD_EDGES}', '{FIELD_PREPROCESSOR}' and a list of "
                                    f"names '{FIELD_FEATURES}'.")
    return TreeRelease(model, edges, tuple(str(n) for n in names), prep)


def edges_to_json(cuts: Any, n_categories: Any, n_bins: int) -> str:
    """Bin edges as JSON (floats written exactly by ``repr``)."""
    return json.dumps({"cuts": [list(map(float, c)) for c in cuts],
                       "n_categories": [int(k) for k in n_categories], "n_bins": int(n_bins)})


def edges_fields(text: str) -> tuple[tuple[tuple[float, ...], ...], tuple[int, ...], int]:
    """Inverse of :func:`edges_to_json` (the caller builds ``BinEdges``, which validates)."""
    try:
        raw = json.loads(text)
        cuts = tuple(tuple(float(v) for v in c) for c in raw["cuts"])
        return cuts, tuple(int(k) for k in raw["n_categories"]), int(raw["n_bins"])
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        raise MalformedMessageError(f"released bin edges are malformed ({exc!s:.60}).") from exc
