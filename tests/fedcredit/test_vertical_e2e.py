"""Vertical run end to end (Flower simulation, 2048-bit keys) on the synthetic enterprise pair:
parity with the joined plaintext LR, better than bank-only, exact secure IV, nothing leaked."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message

import server.vertical
from fedcredit.simulation.vertical import run_vertical_federation, vertical_baselines
from federation.data.synthetic import write_enterprise_pair
from federation.data.vertical_data import align, load_party, prepare
from federation.ml.vertical_binning import plaintext_iv
from federation.run.vertical_config import VerticalConfig

pytestmark = pytest.mark.slow  # every test shares one vertical simulation


# The run id salts the train/test split; with only 300 test rows the AUCs move by several points from
# one random salt to the next (the bank-only gap ranged 0.03-0.15 over 20 salts), so the test pins it.
RUN_ID = "5eed000000000007"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    patcher = pytest.MonkeyPatch()
    patcher.setattr(server.vertical, "secrets", SimpleNamespace(token_hex=lambda _n: RUN_ID))
    try:
        yield from _run(tmp_path_factory)
    finally:
        patcher.undo()


def _run(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("vertical")
    bank, center = write_enterprise_pair(folder, n_enterprises=1500, seed=7)
    cfg = VerticalConfig(bank_data=str(bank), center_data=str(center), epochs=3,
                         batch_size=420, learning_rate=0.5, out=str(folder / "out"))
    seen: list[tuple[str, Message]] = []
    result = run_vertical_federation(cfg, observer=lambda d, m: seen.append((d, m)))
    assert result.run_id == RUN_ID
    yield cfg, result, seen


def test_federated_matches_joined_plaintext_and_beats_bank_only(run) -> None:
    cfg, result, _ = run
    assert result.intersection == 1200 and result.bank_rows == result.center_rows == 1500
    base = vertical_baselines(cfg, result.run_id)
    assert abs(result.auc - base.centralized.auc) < 0.005
    assert result.auc > base.bank_only.auc + 0.05


def test_secure_iv_equals_plaintext_iv(run) -> None:
    cfg, result, _ = run
    trains = []
    for path, target in ((cfg.bank_data, cfg.target), (cfg.center_data, None)):
        table = load_party(path, id_col=cfg.id_col, target=target)
        trains.append(table)
    common = np.intersect1d(trains[0].ids, trains[1].ids)
    parts = [prepare(align(t, np.flatnonzero(np.isin(t.ids, common))), r, run_salt=result.run_id,
                     test_fraction=cfg.test_fraction)
             for t, r in zip(trains, ("bank", "center"), strict=True)]
    expected = plaintext_iv(parts[0].train_table, parts[1].train_table, n_bins=cfg.bins,
                            method=cfg.binning)
    assert set(result.iv) == set(expected)
    for name, value in expected.items():
        assert abs(result.iv[name] - value) < 1e-6, name


def _blobs(message: Message) -> list[bytes]:
    out = []
    if not message.has_content():
        return out
    for record in message.content.values():
        if isinstance(record, ConfigRecord):
            for value in record.values():
                out.append(value if isinstance(value, bytes) else str(value).encode())
        elif isinstance(record, ArrayRecord):
            out.extend(a.tobytes() for a in record.to_numpy_ndarrays())
    return out


def test_no_label_feature_or_id_crosses_the_wire(run) -> None:
    cfg, _, seen = run
    bank = load_party(cfg.bank_data, id_col=cfg.id_col, target=cfg.target)
    center = load_party(cfg.center_data, id_col=cfg.id_col, target=None)
    wire = b"\n".join(b for _, m in seen for b in _blobs(m))
    assert len(wire) > 100_000  # ciphertexts did travel
    # IDs, delimited (inside hex ciphertext text a digit run may occur by chance)
    for code in list(bank.ids[::25]) + list(center.ids[::25]):
        assert not re.search(rb"(?<![0-9A-Za-z])" + code.encode() + rb"(?![0-9A-Za-z])", wire)
    # labels in any usual binary encoding
    y = bank.y[:64]
    for dtype in (np.int8, np.int64, np.float64, np.float32):
        assert y.astype(dtype).tobytes() not in wire
    # raw feature values: bank deposits, center social-insurance headcount (binary and text forms)
    for table, column in ((bank, "deposits"), (center, "social_insurance_headcount")):
        values = np.unique(table.numeric[column].dropna().to_numpy())
        values = values[np.abs(values) >= 10][:40]  # distinctive values (not 0, 1, ...)
        assert values.size >= 20
        for v in values:
            assert np.float64(v).tobytes() not in wire
            assert f"{v:.2f}".encode() not in wire
