"""Run folder output: results.json, the global model and its preprocessing."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from federation.run.config import RunConfig
from federation.ml.metrics import LOGIT_RANGE
from server.horizontal import FederatedResult


def atomic_write_text(path: Path, text: str) -> None:
    """Write-then-rename so a crash never leaves a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def federated_section(result: FederatedResult) -> dict[str, Any]:
    """Final-round federated AUC/KS and the per-round history."""
    last = result.history[-1] if result.history else None
    section: dict[str, Any] = {
        "federated": {"auc": last.auc if last else None, "ks": last.ks if last else None},
        "history": [asdict(h) for h in result.history],
    }
    return {**section, **histogram_section(result.histograms)}


def histogram_section(histograms: Any) -> dict[str, Any]:
    """Summed per-class test-score histograms (logit bins), as results.json stores them."""
    if histograms is None:
        return {}
    bad, good = histograms
    return {"score_histograms": {
        "scale": "logit", "range": [-LOGIT_RANGE, LOGIT_RANGE], "bins": int(len(bad)),
        "bad": [int(v) for v in bad], "good": [int(v) for v in good]}}


def save_model(out: Path, result: FederatedResult) -> None:
    """Global weights (``model.npz``) and the shared preprocessing (``preprocessor.json``)."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "model.tmp.npz"
    np.savez(tmp, *result.weights)
    os.replace(tmp, out / "model.npz")
    if result.preprocessor is not None:
        atomic_write_text(out / "preprocessor.json", result.preprocessor.to_json())


def write_results(out: Path, payload: dict[str, Any]) -> Path:
    """``out/results.json`` (pretty, NaN-free)."""
    path = out / "results.json"
    atomic_write_text(path, json.dumps(_finite(payload), indent=2))
    return path


def write_federated_only(cfg: RunConfig, result: FederatedResult) -> Path:
    """What a deployment coordinator can write: no baselines (it holds no data)."""
    out = Path(cfg.out)
    save_model(out, result)
    payload = {"config": cfg.to_user_config(), "dataset": cfg.data_path, "banks": cfg.banks,
               "rounds": cfg.rounds, "model": cfg.model, "aggregation": cfg.aggregation,
               "partition": cfg.partition, "seed": cfg.seed, **federated_section(result)}
    return write_results(out, payload)


def _finite(value: Any) -> Any:
    """Replace NaN/inf with None so the JSON is standard."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value
