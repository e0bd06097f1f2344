"""Coordinator checkpoints: everything needed to resume a run after a crash or restart.

Written after every round (every tree of a boosted-tree run), atomically (write-then-rename),
into ``DIR/checkpoint.json``: the run config, run id, layout, the combined sealed vectors
(ciphertexts under Paillier: the checkpoint holds no secret), rounds done, per-round history
and timings, row counts and the audit head; for boosted trees also the combined bins and
last level and the banks' sealed state blob. Banks are stateless between requests, so
resuming from round r+1 gives the same model as an uninterrupted run with the same seeds.
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from federation.errors import ConfigError
from federation.ml.preprocess import FeatureLayout
from federation.run.config import RunConfig
from federation.run.folder import RunFolder, atomic_write_text
from federation.steps.secure_sum import Sealed
from server.horizontal import FederatedResult, RoundRecord

SCHEMA_VERSION = 1


def _sealed_doc(sealed: Sealed | None) -> dict[str, Any] | None:
    if sealed is None:
        return None
    doc = asdict(sealed)
    for name in ("payload", "contributors"):
        doc[name] = base64.b64encode(getattr(sealed, name)).decode("ascii")
    return doc


def _sealed_from(doc: dict[str, Any] | None) -> Sealed | None:
    if doc is None:
        return None
    return Sealed(**{**doc, "payload": base64.b64decode(doc["payload"]),
                     "contributors": base64.b64decode(doc.get("contributors", ""))})


def save_checkpoint(folder: str | Path, cfg: RunConfig, state: FederatedResult,
                    audit_head: str) -> Path:
    """Write ``folder/checkpoint.json`` atomically."""
    doc = {
        "v": SCHEMA_VERSION, "config": cfg.to_user_config(), "run_id": state.run_id,
        "layout": state.layout.to_json() if state.layout else None,
        "stats_sum": _sealed_doc(state.stats_sum), "weights_sum": _sealed_doc(state.weights_sum),
        "hist_sum": _sealed_doc(state.hist_sum), "rounds_done": state.rounds_done,
        "round_seconds": state.round_seconds, "round_banks": state.round_banks,
        "history": [asdict(h) for h in state.history],
        "train_rows": {str(k): v for k, v in state.train_rows.items()},
        "dropouts": state.dropouts, "audit_head": audit_head,
        "bins_sum": _sealed_doc(state.bins_sum), "level_sum": _sealed_doc(state.level_sum),
        "tree_state": (base64.b64encode(state.tree_state).decode("ascii")
                       if state.tree_state is not None else None),
        "tree_seq": state.tree_seq, "tree_banks": list(state.tree_banks),
    }
    path = RunFolder(Path(folder)).checkpoint
    atomic_write_text(path, json.dumps(doc))
    return path


def load_checkpoint(folder: str | Path) -> tuple[RunConfig, FederatedResult, str]:
    """Read a checkpoint: (run config, coordinator state, audit head)."""
    path = RunFolder(Path(folder)).checkpoint
    if not path.exists():
        raise ConfigError(f"{path} not found: nothing to resume in {folder} (a run writes it "
                          "after its first round).")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("v") != SCHEMA_VERSION:
            raise ValueError(f"checkpoint version {doc.get('v')}")
        settings = dict(doc["config"])
        # a checkpoint of a release before --early-stopping-metric stopped on the log-loss
        settings.setdefault("early-stopping-metric", "logloss")
        cfg = RunConfig.from_user_config(settings)
        state = FederatedResult(
            run_id=doc["run_id"],
            layout=FeatureLayout.from_json(doc["layout"]) if doc["layout"] else None,
            stats_sum=_sealed_from(doc["stats_sum"]), weights_sum=_sealed_from(doc["weights_sum"]),
            hist_sum=_sealed_from(doc["hist_sum"]), rounds_done=int(doc["rounds_done"]),
            round_seconds=list(doc["round_seconds"]), round_banks=list(doc["round_banks"]),
            history=[RoundRecord(**h) for h in doc["history"]],
            train_rows={int(k): int(v) for k, v in doc["train_rows"].items()},
            dropouts=list(doc.get("dropouts", [])),
            bins_sum=_sealed_from(doc.get("bins_sum")),
            level_sum=_sealed_from(doc.get("level_sum")),
            tree_state=(base64.b64decode(doc["tree_state"], validate=True)
                        if doc.get("tree_state") is not None else None),
            tree_seq=int(doc.get("tree_seq", 0)),
            tree_banks=tuple(int(b) for b in doc.get("tree_banks", [])),
        )
        return cfg, state, str(doc["audit_head"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError,
            RecursionError) as exc:
        raise ConfigError(f"{path} is damaged ({exc}); it cannot be resumed.") from exc
