"""The one place where fedcredit payloads become Flower records and back.

Message types and record keys are constants here; apps never repeat string literals.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from federation.config import RunConfig
from federation.preprocess import FeatureLayout, LocalSchema, Preprocessor
from protocols.errors import MalformedMessageError

MSG_SCHEMA = "query.schema"
MSG_STATS = "query.stats"
MSG_TRAIN = "train"
MSG_EVALUATE = "evaluate"

KEY_RUN = "run"  # ConfigRecord: the run config
KEY_STEP = "step"  # ConfigRecord: round, layout, preprocessor
KEY_WEIGHTS = "weights"  # ArrayRecord
KEY_VECTOR = "vector"  # ArrayRecord: stats vector or histograms
KEY_REPLY = "reply"  # ConfigRecord: schema json
KEY_METRICS = "metrics"  # MetricRecord: bank, num-examples


def request_content(
    cfg: RunConfig, *, round_index: int = 0, layout: FeatureLayout | None = None,
    prep: Preprocessor | None = None, weights: list[np.ndarray] | None = None,
) -> RecordDict:
    """Coordinator -> bank: run config, step details and optionally global weights."""
    step: dict[str, Any] = {"round": round_index}
    if layout is not None:
        step["layout"] = layout.to_json()
    if prep is not None:
        step["preprocessor"] = prep.to_json()
    content = RecordDict({KEY_RUN: ConfigRecord(cfg.to_user_config()), KEY_STEP: ConfigRecord(step)})
    if weights is not None:
        content[KEY_WEIGHTS] = ArrayRecord([np.asarray(w, dtype=np.float64) for w in weights])
    return content


def run_config_of(content: RecordDict) -> RunConfig:
    """Run config carried by a request."""
    return RunConfig.from_user_config(dict(_get(content, KEY_RUN)))


def step_of(content: RecordDict) -> dict[str, Any]:
    """Step details (round, layout, preprocessor) of a request."""
    return dict(_get(content, KEY_STEP))


def layout_of(step: dict[str, Any]) -> FeatureLayout:
    return FeatureLayout.from_json(str(step["layout"]))


def preprocessor_of(step: dict[str, Any]) -> Preprocessor:
    return Preprocessor.from_json(str(step["preprocessor"]))


def weights_of(content: RecordDict) -> list[np.ndarray]:
    """Weights carried by a request or reply."""
    return _get(content, KEY_WEIGHTS).to_numpy_ndarrays()


def reply_content(
    *, bank: int, n_examples: int, weights: list[np.ndarray] | None = None,
    vector: list[np.ndarray] | None = None, schema: LocalSchema | None = None,
) -> RecordDict:
    """Bank -> coordinator: aggregates only (weights, summable vectors, column schema)."""
    content = RecordDict({KEY_METRICS: MetricRecord({"bank": bank, "num-examples": n_examples})})
    if weights is not None:
        content[KEY_WEIGHTS] = ArrayRecord([np.asarray(w, dtype=np.float64) for w in weights])
    if vector is not None:
        content[KEY_VECTOR] = ArrayRecord([np.asarray(v) for v in vector])
    if schema is not None:
        content[KEY_REPLY] = ConfigRecord({"schema": json.dumps(
            {"numeric": list(schema.numeric),
             "categorical": {k: list(v) for k, v in schema.categorical.items()}})})
    return content


def metrics_of(content: RecordDict) -> tuple[int, int]:
    """(bank index, number of examples) of a reply."""
    metrics = _get(content, KEY_METRICS)
    return int(metrics["bank"]), int(metrics["num-examples"])


def vector_of(content: RecordDict) -> list[np.ndarray]:
    return _get(content, KEY_VECTOR).to_numpy_ndarrays()


def schema_of(content: RecordDict) -> LocalSchema:
    raw = json.loads(str(_get(content, KEY_REPLY)["schema"]))
    return LocalSchema(tuple(raw["numeric"]), {k: tuple(v) for k, v in raw["categorical"].items()})


def reply(message: Message, content: RecordDict) -> Message:
    """A reply to ``message`` carrying ``content``."""
    return Message(content, reply_to=message)


def _get(content: RecordDict, key: str) -> Any:
    if key not in content:
        raise MalformedMessageError(f"message lacks the '{key}' record; sender and receiver "
                                    "run different fedcredit versions?")
    return content[key]
