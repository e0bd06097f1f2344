"""A node's private working state between the messages of one run, kept in Flower's Context.

Flower persists ``context.state`` per node across messages (simulation and deployment), so a
party's secrets (its Paillier private key, PSI scalar, batch masks) and prepared matrices
stay on its node. Values are pickled: they are this node's own objects, written and read only
here, never received from another party.
"""

from __future__ import annotations

import pickle
from typing import Any

from flwr.app import ConfigRecord, Context

from federation.errors import ConfigError

RECORD = "fedcredit-node"


def put(context: Context, **values: Any) -> None:
    """Store objects under names (overwriting)."""
    record = context.state.get(RECORD) or ConfigRecord()
    for name, value in values.items():
        record[name] = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    context.state[RECORD] = record


def get(context: Context, name: str) -> Any:
    """An object stored earlier in this run; a missing one means steps came out of order."""
    record = context.state.get(RECORD)
    if record is None or name not in record:
        raise ConfigError(f"this node has no '{name}' yet: the coordinator sent a step out of "
                          "order (restart the vertical run).")
    return pickle.loads(record[name])
