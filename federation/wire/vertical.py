"""Records of a vertical run (bank + credit center): record keys, roles, request/reply builders.

Requests carry the vertical run config and one step record of fields (bytes, ints, texts);
replies carry one step record. Both apps build and read them only through this module.
"""

from __future__ import annotations

from typing import Any

from flwr.app import ConfigRecord, Message, RecordDict

from federation.run.vertical_config import VerticalConfig
from federation.wire.records import StepFields
from protocols.errors import MalformedMessageError

ROLE_BANK, ROLE_CENTER = "bank", "center"
KEY_VRUN = "vrun"  # ConfigRecord: the vertical run config
KEY_VSTEP = "vstep"  # ConfigRecord: step fields and byte blobs


def vertical_request(cfg: VerticalConfig, **fields: Any) -> RecordDict:
    """Coordinator -> party: run config and step fields (bytes, ints, strings)."""
    return RecordDict({KEY_VRUN: ConfigRecord(cfg.to_user_config()),
                       KEY_VSTEP: ConfigRecord(fields)})


def vertical_reply(msg: Message, **fields: Any) -> Message:
    """Party -> coordinator: step results."""
    return Message(RecordDict({KEY_VSTEP: ConfigRecord(fields)}), reply_to=msg)


def unpack_request(content: RecordDict) -> tuple[VerticalConfig, StepFields]:
    """The run config and step fields of a request; MalformedMessageError if either is absent."""
    if KEY_VRUN not in content or KEY_VSTEP not in content:
        raise MalformedMessageError("vertical request lacks its run or step record.")
    return VerticalConfig.from_user_config(dict(content[KEY_VRUN])), StepFields(content[KEY_VSTEP])
