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


def _record(context: Context) -> ConfigRecord | None:
    """This node's state record, None before the first :func:`put`."""
    record = context.state.get(RECORD)
    if record is not None and not isinstance(record, ConfigRecord):
        raise ConfigError(f"this node's state '{RECORD}' is a {type(record).__name__}, not the "
                          "ConfigRecord this module writes (restart the vertical run).")
    return record


def put(context: Context, **values: Any) -> None:
    """Store objects under names (overwriting)."""
    record = _record(context) or ConfigRecord()
    for name, value in values.items():
        record[name] = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    context.state[RECORD] = record


def has(context: Context, name: str) -> bool:
    """Whether :func:`put` stored ``name`` on this node."""
    record = _record(context)
    return record is not None and name in record


def get(context: Context, name: str) -> Any:
    """An object stored earlier in this run; a missing one means steps came out of order."""
    record = _record(context)
    if record is None or name not in record:
        raise ConfigError(f"this node has no '{name}' yet: the coordinator sent a step out of "
                          "order (restart the vertical run).")
    value = record[name]
    if not isinstance(value, bytes):
        raise ConfigError(f"this node's '{name}' is a {type(value).__name__}, not the pickled "
                          "bytes this module writes (restart the vertical run).")
    return pickle.loads(value)
