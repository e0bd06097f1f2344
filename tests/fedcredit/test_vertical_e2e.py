"""Vertical run end to end (Flower simulation, 2048-bit keys) on the synthetic enterprise pair:
parity with the joined plaintext LR, better than bank-only, exact secure IV, nothing leaked,
each party's weights kept in its own folder (equal to the plaintext Taylor schedule) and
promotable into each party's registry."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from flwr.app import Message

import server.vertical
from fedcredit.simulation.vertical import run_vertical_federation, vertical_baselines
from federation.data.synthetic import write_enterprise_pair
from federation.data.vertical_data import AlignedParty, align, entity_ids, load_party, prepare
from federation.ml.metrics import LOGIT_RANGE
from federation.ml.taylor_lr import fit_taylor_lr
from federation.ml.vertical_binning import plaintext_iv
from federation.run.folder import VERTICAL_PART_FILE, RunFolder
from federation.run.results import ScoreHistograms
from federation.run.vertical_config import VerticalConfig
from federation.run.vertical_part import read_part
from server.vertical import result_payload

from .calibration_checks import check_calibration, check_grades

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
    out = RunFolder(Path(cfg.out))
    result = run_vertical_federation(cfg, observer=lambda d, m: seen.append((d, m)),
                                     record_wire=out.wire)
    assert result.run_id == RUN_ID
    result_payload(cfg, result).write(out.results)  # what the scanner reads the split from
    yield cfg, result, seen


def test_federated_matches_joined_plaintext_and_beats_bank_only(run) -> None:
    cfg, result, _ = run
    assert result.intersection == 1200 and result.bank_rows == result.center_rows == 1500
    base = vertical_baselines(cfg, result.run_id)
    assert abs(result.auc - base.centralized.auc) < 0.005
    assert result.auc > base.bank_only.auc + 0.05


def test_calibration_undoes_the_taylor_shrinkage(run) -> None:
    """The Taylor-loss LR's raw probabilities are far from default probabilities; the map
    fitted on one held-out half brings the other half's mean PD to its default rate and
    gives populated grades whose default rates rise from A to E."""
    _, result, _ = run
    cal = result.calibration
    assert cal is not None and cal.fit_rows is not None
    check_calibration(cal, held_out_rows=result.test_rows - cal.fit_rows)
    assert abs(cal.uncalibrated_mean_pd - cal.observed_rate) > 0.05
    assert abs(cal.mean_pd - cal.observed_rate) < abs(cal.uncalibrated_mean_pd
                                                      - cal.observed_rate) / 2
    assert cal.map["slope"] > 1.5  # shrunk logits are stretched back
    bad, good = result.histograms
    check_grades(cal, ScoreHistograms.from_counts(bad, good, logit_range=LOGIT_RANGE))


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


def test_no_label_feature_or_id_crosses_the_wire(run) -> None:
    """Both parties' transcripts, scanned for each party's file (``fedcredit audit wire``:
    labels, feature values and IDs in every encoding it knows, in file order and in each
    party's own order: the intersection sorted by ID, split by the run's salt)."""
    from fedcredit.audit_wire.scan import audit_wire

    cfg, _, seen = run
    for path, target in ((cfg.bank_data, cfg.target), (cfg.center_data, None)):
        report = audit_wire(Path(cfg.out), Path(path), target=target, id_col=cfg.id_col)
        assert report.clean, [f.describe() for f in report.findings]
        assert report.messages == len(seen) and report.payload_bytes > 100_000  # ciphertexts
        role = "bank" if target else "center"
        assert f"{role} training rows (ID order)" in report.orders


def _prepared(cfg: VerticalConfig, run_id: str) -> tuple[AlignedParty, AlignedParty]:
    """Each party's prepared rows of the run, as its node prepared them."""
    tables = (load_party(cfg.bank_data, id_col=cfg.id_col, target=cfg.target),
              load_party(cfg.center_data, id_col=cfg.id_col, target=None))
    common = np.intersect1d(entity_ids(tables[0]), entity_ids(tables[1]))
    bank, center = (prepare(align(t, np.flatnonzero(np.isin(entity_ids(t), common))), r,
                            run_salt=run_id, test_fraction=cfg.test_fraction)
                    for t, r in zip(tables, ("bank", "center"), strict=True))
    return bank, center


def test_each_party_keeps_weights_equal_to_the_plaintext_taylor_schedule(run) -> None:
    """Issue 14 part 6 pins the model: the parties' parts (issue 15) hold the weights of
    plaintext Taylor-loss SGD on the joined rows with the same batch schedule."""
    cfg, result, _ = run
    out = Path(cfg.out)
    bank_part, center_part = (read_part(RunFolder(out).party(r) / VERTICAL_PART_FILE)
                              for r in ("bank", "center"))
    assert bank_part.model_id == center_part.model_id and bank_part.run_id == result.run_id
    bank, center = _prepared(cfg, result.run_id)
    assert bank.y_train is not None
    w = fit_taylor_lr(np.hstack([bank.x_train, center.x_train]), bank.y_train,
                      epochs=cfg.epochs, batch_size=cfg.batch_size,
                      learning_rate=cfg.learning_rate, l2=cfg.l2, seed=cfg.seed)
    split = 1 + len(bank.feature_names)
    np.testing.assert_allclose(bank_part.weights, w[:split], rtol=0, atol=1e-8)
    np.testing.assert_allclose(center_part.weights, w[split:], rtol=0, atol=1e-8)
    assert bank_part.updates == center_part.updates == cfg.epochs * (
        result.train_rows // cfg.batch_size)


def test_a_promoted_vertical_run_scores_an_enterprise_through_both_parts(run, tmp_path) -> None:
    """``fedcredit models promote OUT --part bank|center`` into each party's registry; the
    bank's part plus the center's partial logit (what the services exchange) give the
    federated model's logit of an enterprise both hold."""
    from typer.testing import CliRunner

    from fedcredit.cli.main import app
    from fedcredit.service.registry import ModelRegistry
    from fedcredit.service.tables import load_party_table

    cfg, result, _ = run
    served = {}
    for role in ("bank", "center"):
        done = CliRunner().invoke(app, ["models", "promote", cfg.out, "--name", "sme",
                                        "--part", role, "--registry", str(tmp_path / role)])
        assert done.exit_code == 0, done.output
        served[role] = ModelRegistry(tmp_path / role).load("sme")
    assert served["bank"].model_id == served["center"].model_id
    assert served["bank"].part == "bank" and served["center"].part == "center"
    bank = load_party_table(served["bank"], Path(cfg.bank_data), id_col=cfg.id_col,
                            target=cfg.target)
    center = load_party_table(served["center"], Path(cfg.center_data), id_col=cfg.id_col,
                              target=None)
    prepared_bank, prepared_center = _prepared(cfg, result.run_id)
    uscc = str(entity_ids(prepared_bank.train_table)[0])  # a training row of the intersection
    i, j = bank.index[uscc], center.index[uscc]
    np.testing.assert_allclose(bank.x[i], prepared_bank.x_train[0], atol=1e-6)
    np.testing.assert_allclose(center.x[j], prepared_center.x_train[0], atol=1e-6)
    parts = [read_part(RunFolder(Path(cfg.out)).party(r) / VERTICAL_PART_FILE)
             for r in ("bank", "center")]
    expected = (parts[0].intercept + prepared_bank.x_train[0] @ parts[0].coefficients
                + prepared_center.x_train[0] @ parts[1].coefficients)
    logit = bank.partial_logit[i] + center.partial_logit[j]
    assert abs(logit - expected) < 1e-6
    points = served["bank"].card.scale.points_from_log_odds(logit)
    assert abs(float(served["bank"].card.scale.probability(points))
               - 1 / (1 + np.exp(-logit))) < 1e-9


def test_the_report_of_the_real_vertical_run(run) -> None:
    """Issue 13: `fedcredit report` on this real vertical run's results.json: calibrated
    grades populated and rising over the grades with enough rows, the calibration table is
    the run's held-out bands (near the diagonal), no train-vs-test PSI (the bank keeps its
    training scores)."""
    import math

    from fedcredit.report.html import build_report
    from federation.run.results import read_results

    from .calibration_checks import MIN_GRADE_ROWS
    from .test_report_sections import page_numbers

    cfg, _, _ = run
    results = read_results(RunFolder(Path(cfg.out)).results)
    html = build_report(results)
    keyed, derived = page_numbers(html)
    assert "not-calibrated" not in html and "federated (vertical LR)" in html
    counts = [int(c.replace(",", "")) for c in derived["grade-count"]]
    rates = [float(r.rstrip("%")) / 100 for r, n in zip(derived["grade-default-rate"], counts,
                                                        strict=True) if n >= MIN_GRADE_ROWS]
    assert int(derived["grades-populated"][0]) >= 3 and rates == sorted(rates), derived
    cal = results.calibration
    assert cal is not None and keyed[("calibration", "rows")] == f"{cal.rows:,}"
    for i, band in enumerate(cal.bins):
        assert keyed[("calibration", "bins", i, "mean_pd")] == f"{band.mean_pd:.2%}"
        se = math.sqrt(max(band.mean_pd * (1 - band.mean_pd), 0.01) / band.rows)
        assert abs(band.observed_rate - band.mean_pd) < 3 * se, band
    assert "psi" not in derived and "holds its training scores at the bank" in html
