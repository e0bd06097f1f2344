"""Vertical LR with ``transport = "stream"`` end to end (Flower simulation, 2048-bit keys): the
same weights as plaintext Taylor SGD on the joined rows, one Flower message per party and
epoch, every frame recorded opened in the nodes' transcript and ``fedcredit audit wire`` finds
no label, feature value or ID in it (issue 14 part 6)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Message

from fedcredit.audit_wire.scan import audit_wire
from fedcredit.simulation.vertical import run_vertical_federation
from federation.data.synthetic import write_enterprise_pair
from federation.data.vertical_data import align, entity_ids, load_party, prepare
from federation.ml.metrics import roc_auc
from federation.ml.taylor_lr import fit_taylor_lr, predict_logit
from federation.run.folder import VERTICAL_PART_FILE, RunFolder
from federation.run.vertical_config import VerticalConfig
from federation.run.vertical_part import read_part
from federation.wire.transcript import WireLine, WireValue, line_to_json, read_transcript
from federation.wire.vertical import V_STREAM
from server.vertical import result_payload

pytestmark = pytest.mark.slow  # one vertical simulation shared by the tests


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("vertical-stream")
    bank, center = write_enterprise_pair(folder, n_enterprises=1200, seed=11)
    cfg = VerticalConfig(bank_data=str(bank), center_data=str(center), epochs=2,
                         batch_size=400, learning_rate=0.5, out=str(folder / "out"),
                         transport="stream")
    seen: list[tuple[str, Message]] = []
    out = RunFolder(Path(cfg.out))
    result = run_vertical_federation(cfg, observer=lambda d, m: seen.append((d, m)),
                                     record_wire=out.wire)
    result_payload(cfg, result).write(out.results)
    return cfg, result, seen


def test_the_streamed_run_keeps_the_plaintext_taylor_schedules_weights(run) -> None:
    cfg, result, _ = run
    parts = [read_part(RunFolder(Path(cfg.out)).party(r) / VERTICAL_PART_FILE)
             for r in ("bank", "center")]
    tables = (load_party(cfg.bank_data, id_col=cfg.id_col, target=cfg.target),
              load_party(cfg.center_data, id_col=cfg.id_col, target=None))
    common = np.intersect1d(entity_ids(tables[0]), entity_ids(tables[1]))
    bank, center = (prepare(align(t, np.flatnonzero(np.isin(entity_ids(t), common))), r,
                            run_salt=result.run_id, test_fraction=cfg.test_fraction)
                    for t, r in zip(tables, ("bank", "center"), strict=True))
    assert bank.y_train is not None
    w = fit_taylor_lr(np.hstack([bank.x_train, center.x_train]), bank.y_train,
                      epochs=cfg.epochs, batch_size=cfg.batch_size,
                      learning_rate=cfg.learning_rate, l2=cfg.l2, seed=cfg.seed)
    split = 1 + len(bank.feature_names)
    np.testing.assert_allclose(parts[0].weights, w[:split], rtol=0, atol=1e-8)
    np.testing.assert_allclose(parts[1].weights, w[split:], rtol=0, atol=1e-8)
    assert parts[0].updates == cfg.epochs * (result.train_rows // cfg.batch_size)
    # The test split is salted by the random run id, so the AUC moves from run to run: the
    # run's held-out AUC must be the plaintext model's on the same rows, and that model learned.
    assert bank.y_test is not None
    joint = predict_logit(np.hstack([bank.x_test, center.x_test]), w)
    plain_auc = roc_auc(bank.y_test, 1.0 / (1.0 + np.exp(-joint)))
    assert result.auc == pytest.approx(plain_auc, abs=1e-3) and plain_auc > 0.6
    assert len(result.epoch_seconds) == cfg.epochs


def test_one_flower_message_per_party_and_epoch_the_batches_as_frames(run) -> None:
    cfg, result, seen = run
    types = Counter((d, m.metadata.message_type) for d, m in seen)
    assert types[("request", V_STREAM.message_type)] == 2 * cfg.epochs
    assert not any("v_encrypt" in t or "v_gradient" in t for _, t in types)
    lines = [line for _, line in read_transcript(RunFolder(Path(cfg.out)).wire)]
    frames = Counter((line.direction, line.type) for line in lines
                     if line.type.startswith("stream."))
    batches = cfg.epochs * (result.train_rows // cfg.batch_size)
    for step in ("v_encrypt", "v_gradient", "v_open"):  # both parties, each way
        assert frames[("to-coordinator", f"stream.{step}")] == 2 * batches
        assert frames[("to-node", f"stream.{step}")] == 2 * batches
    assert result.bytes_relayed > 6 * batches * 1000  # the frames went through the relay


def test_no_label_feature_or_id_crosses_in_a_frame_or_a_message(run) -> None:
    cfg, _, _ = run
    for path, target in ((cfg.bank_data, cfg.target), (cfg.center_data, None)):
        report = audit_wire(Path(cfg.out), Path(path), target=target, id_col=cfg.id_col)
        assert report.clean, [f.describe() for f in report.findings]
        assert report.payload_bytes > 500_000  # ciphertexts of every batch's frames


def test_the_audit_reads_the_frames_a_leaked_label_column_in_one_is_found(run, tmp_path) -> None:
    """The frames are scanned like messages: a frame carrying the bank's labels is flagged."""
    cfg, _, _ = run
    copy = tmp_path / "out"
    shutil.copytree(cfg.out, copy)
    labels = load_party(cfg.bank_data, id_col=cfg.id_col, target=cfg.target).y
    assert labels is not None
    leak = np.asarray(labels, dtype="<i8").tobytes()
    line = WireLine("to-coordinator", 1, 0, "stream.v_encrypt",
                    (WireValue("frame", "config", "blob", "bytes", (len(leak),), leak),))
    with RunFolder(copy).wire.open("a") as fh:
        fh.write(line_to_json(line) + "\n")
    report = audit_wire(copy, Path(cfg.bank_data), target=cfg.target, id_col=cfg.id_col)
    assert [f.message_type for f in report.findings] == ["stream.v_encrypt"]
    assert "labels" in report.findings[0].describe()
