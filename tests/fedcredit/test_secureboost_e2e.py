"""Vertical SecureBoost end to end (Flower simulation, 2048-bit keys) on the synthetic pair:
the joined-plaintext trees' AUC, better than the bank alone, and the center's thresholds and
the bank's labels never on the wire."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from flwr.app import ConfigRecord

import server.vertical
from fedcredit.simulation.vertical import run_vertical_federation, vertical_baselines
from federation.data.synthetic import write_enterprise_pair
from federation.run.vertical_config import VerticalConfig
from federation.wire.vertical import V_TREE_LEVEL

from .calibration_checks import check_calibration

pytestmark = pytest.mark.slow
RUN_ID = "5eed000000000007"  # salts the split (see test_vertical_e2e.py)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("secureboost")
    bank, center = write_enterprise_pair(folder, n_enterprises=1500, seed=7)
    cfg = VerticalConfig(bank_data=str(bank), center_data=str(center), model="secureboost",
                         trees=4, depth=3, tree_bins=16, batch_size=256,
                         out=str(folder / "out"))
    seen: list = []
    patcher = pytest.MonkeyPatch()
    patcher.setattr(server.vertical, "secrets", SimpleNamespace(token_hex=lambda _n: RUN_ID))
    try:
        result = run_vertical_federation(cfg, observer=lambda d, m: seen.append((d, m)))
    finally:
        patcher.undo()
    return cfg, result, seen


def test_secureboost_matches_the_joined_trees_and_beats_the_bank_alone(run) -> None:
    cfg, result, _ = run
    assert result.run_id == RUN_ID and len(result.epoch_seconds) == cfg.trees
    base = vertical_baselines(cfg, result.run_id)
    assert abs(result.auc - base.centralized.auc) < 0.01  # histogram AUC vs exact AUC
    assert result.auc > base.bank_only.auc + 0.02
    cal = result.calibration  # fitted on one half of the held-out rows, measured on the other
    assert cal is not None and cal.fit_rows is not None
    check_calibration(cal, held_out_rows=result.test_rows - cal.fit_rows)


def test_the_center_only_sees_ciphertexts_and_no_threshold_travels(run) -> None:
    _, _, seen = run
    levels = [m for d, m in seen if d == "request"
              and m.metadata.message_type == V_TREE_LEVEL.message_type]
    assert levels
    for msg in levels:
        for rec in msg.content.values():
            if isinstance(rec, ConfigRecord) and "blob" in rec:
                blob = rec["blob"]
                width = 512  # 4096-bit ciphertexts of the bank's 2048-bit key
                assert len(blob) % width == 0
                values = [int.from_bytes(blob[i:i + width], "big") for i in range(0, 4 * width,
                                                                                 width)]
                assert all(v > 2**2000 for v in values)  # ciphertexts, not small encodings
    texts = " ".join(str(v) for _, m in seen if m.has_content() for r in m.content.values()
                     if isinstance(r, ConfigRecord) for v in dict(r).values()
                     if isinstance(v, str))
    assert "threshold" not in texts and np.isfinite(run[1].auc)


@pytest.mark.parametrize(("option", "value", "named"), [
    ("--depth", "0", "--depth"), ("--tree-bins", "1", "--tree-bins"), ("--trees", "0", "--trees"),
    ("--model", "xgb", "model"),
])
def test_bad_secureboost_settings_get_one_line_and_exit_2(option: str, value: str, named: str,
                                                          tmp_path) -> None:
    from .test_simulate_e2e import run_cli

    proc = run_cli("vertical", "--model", "secureboost", option, value, "--out", str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert any(named in ln for ln in proc.stderr.splitlines()), proc.stderr


def test_each_party_keeps_its_part_of_the_trees_and_promotes_it(run, tmp_path) -> None:
    """Issue 15: the nodes write their parts (parties/ROLE/secureboost-part.json) and
    `fedcredit models promote OUT --part bank|center` serves them (same model id)."""
    from fedcredit.service.registry import ModelRegistry
    from federation.run.tree_part import (
        TreeBankPart,
        TreeCenterPart,
        find_tree_part,
        read_tree_part,
    )

    from .test_simulate_e2e import run_cli

    cfg, _, _ = run
    parts = {role: read_tree_part(find_tree_part(Path(cfg.out), role))  # type: ignore[arg-type]
             for role in ("bank", "center")}
    bank, center = parts["bank"].part, parts["center"].part
    assert isinstance(bank, TreeBankPart) and isinstance(center, TreeCenterPart)
    assert parts["bank"].model_id == parts["center"].model_id
    assert bank.n_center_splits == len(center.splits) > 0
    assert '"trees"' not in parts["center"].to_json()  # the center never holds the trees
    for role in ("bank", "center"):
        proc = run_cli("models", "promote", cfg.out, "--name", "sb", "--part", role,
                       "--registry", str(tmp_path / role))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        served = ModelRegistry(tmp_path / role).load("sb")
        assert served.part == role and served.model_id == parts[role].model_id
        assert served.trees is not None
