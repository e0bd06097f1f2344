"""SecureBoost served split: the center answers a branch bit per split node, the bank routes
its trees with them; the PD equals the trained federation's for the same enterprises."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from fedcredit.service.partial_wire import CenterAnswer, answer_from_bytes, answer_to_bytes
from fedcredit.service.registry import ModelRegistry
from fedcredit.service.testbed import MODEL_NAME, ServiceProcess, Testbed, build_testbed
from federation.data.synthetic import ID_COLUMN, TARGET_COLUMN
from federation.data.table import CreditTable, load_credit_csv
from federation.ml.gbdt import GBDTConfig
from federation.ml.preprocess import pooled_preprocessor
from federation.ml.tree_features import tree_categories, tree_matrix
from federation.run.tree_part import (
    TreeBankPart,
    TreeCenterPart,
    bank_tree_part,
    center_tree_part,
)
from federation.scorecard.scale import RiskGrades, ScorecardScale
from federation.steps.secureboost import LocalSecureBoost, train_secureboost_local
from protocols.paillier.keys import generate_paillier_keypair


def _aligned(table: CreditTable, ids: list[str]) -> CreditTable:
    where = {str(u): i for i, u in enumerate(table.ids)}  # type: ignore[arg-type]
    return table.subset(np.asarray([where[u] for u in ids]))


@pytest.fixture(scope="module")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Testbed:
    """A bank/center pair of files, keys and settings (its LR promoted as v1)."""
    return build_testbed(tmp_path_factory.mktemp("trees"), enterprises=700, seed=5,
                         reload_seconds=5.0)


@pytest.fixture(scope="module")
def trained(bed: Testbed) -> tuple[
        LocalSecureBoost, TreeBankPart, TreeCenterPart, CreditTable, CreditTable]:
    """SecureBoost trained on the pair's shared enterprises, each party's part read back."""
    folder = bed.folder
    bank = load_credit_csv(folder / "bank.csv", target=TARGET_COLUMN, id_col=ID_COLUMN)
    center = load_credit_csv(folder / "center.csv", target=None, id_col=ID_COLUMN)
    shared = sorted(set(map(str, bank.ids)) & set(map(str, center.ids)))  # type: ignore[arg-type]
    bank, center = _aligned(bank, shared), _aligned(center, shared)
    bank_prep, center_prep = pooled_preprocessor([bank]), pooled_preprocessor([center])
    xb, xc = tree_matrix(bank, bank_prep), tree_matrix(center, center_prep)
    _, private = generate_paillier_keypair(512, allow_insecure_test_key=True)
    local = train_secureboost_local(
        xb, bank.y, xc, GBDTConfig(trees=3, depth=3, bins=8, learning_rate=0.3,
                                   gradient_bits=20),
        private_key=private, bank_test=xb, center_test=xc, y_test=bank.y,
        bank_categories=tree_categories(bank_prep), center_categories=tree_categories(center_prep))
    # each part as its registry stores it (JSON), read back
    b, c = local.bank, local.center
    bank_part = TreeBankPart.from_dict(json.loads(json.dumps(bank_tree_part(
        b.base, b.trees, b.center_nodes, b.edges, bank_prep).to_dict())))
    center_part = TreeCenterPart.from_dict(json.loads(json.dumps(center_tree_part(
        c.lookup.splits, c.flags, c.edges, center_prep).to_dict())))
    return local, bank_part, center_part, bank, center


def test_the_split_service_pd_equals_the_secureboost_models(trained: tuple) -> None:
    local, bank_part, center_part, bank, center = trained
    assert bank_part.n_center_splits > 0, "the center's columns must win some splits"
    # the center: bits for its own rows, sent as the service's binary answer
    bits = center_part.branches(center_part.codes(center))
    n = center.n_rows
    sent = answer_to_bytes(CenterAnswer("m/v1", "id", (), np.ones(n, bool), np.zeros(n),
                                        np.zeros((n, 0), np.int64), np.zeros((n, 0)), bits))
    received = answer_from_bytes(sent, n)
    # the bank: its own codes and the center's bits
    margins = bank_part.margins(bank_part.codes(bank), received.branches)
    expected = local.test_margins()
    np.testing.assert_allclose(margins, expected, atol=1e-12)
    np.testing.assert_allclose(1 / (1 + np.exp(-margins)), 1 / (1 + np.exp(-expected)),
                               atol=1e-12)


def test_the_center_part_holds_no_threshold_and_the_bits_matter(trained: tuple) -> None:
    _, bank_part, center_part, bank, center = trained
    raw = json.dumps(center_part.to_dict())
    assert '"trees"' not in raw and '"base_margin"' not in raw  # the bank's model stays there
    bank_raw = json.dumps(bank_part.to_dict())
    assert '"splits"' not in bank_raw  # no center feature or bin at the bank
    bits = center_part.branches(center_part.codes(center))
    codes = bank_part.codes(bank)
    flipped = bank_part.margins(codes, ~bits)
    assert not np.allclose(flipped, bank_part.margins(codes, bits))
    with pytest.raises(ValueError, match="splits"):
        bank_part.margins(codes, bits[:-1])


def test_a_part_of_unknown_split_ids_is_refused(trained: tuple, tmp_path: Path) -> None:
    _, bank_part, *_ = trained
    raw = bank_part.to_dict()
    raw["n_center_splits"] = 0
    with pytest.raises(ValueError, match="split ids"):
        TreeBankPart.from_dict(raw)


def test_served_secureboost_answers_the_models_pd(bed: Testbed, trained: tuple) -> None:
    local, bank_part, center_part, bank, _ = trained
    for registry, part in ((bed.folder / "bank" / "registry", bank_part),
                           (bed.folder / "center" / "registry", center_part)):
        ModelRegistry(registry).promote_trees(
            part, name=MODEL_NAME, model_id="secureboost-run-1", source="test",
            scale=ScorecardScale(), grades=RiskGrades())
    expected = dict(zip(map(str, bank.ids), 1 / (1 + np.exp(-local.test_margins())),
                        strict=True))
    center = ServiceProcess(bed.center_config, bed.center_port,
                            log=bed.folder / "center.log").start()
    served = ServiceProcess(bed.bank_config, bed.bank_port, log=bed.folder / "bank.log")
    try:
        served.start()
        auth = {"Authorization": f"Bearer {bed.app_key}"}
        usccs = list(expected)[:40]
        one = httpx.post(bed.bank_url + "/v1/score", headers=auth, timeout=10,
                         json={"uscc": usccs[0], "purpose": "loan-approval"}).json()
        assert one["model_version"] == one["center_model_version"] == f"{MODEL_NAME}/v2"
        assert one["probability"] == pytest.approx(expected[usccs[0]], abs=1e-6)
        batch = httpx.post(bed.bank_url + "/v1/score/batch", headers=auth, timeout=30, json={
            "purpose": "loan-approval", "rows": [{"uscc": u} for u in usccs]}).json()
        assert [r["probability"] for r in batch["results"]] == pytest.approx(
            [expected[u] for u in usccs], abs=1e-6)
        refused = httpx.post(bed.bank_url + "/v1/score", headers=auth, timeout=10, json={
            "uscc": usccs[0], "purpose": "loan-approval", "features": {}})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "features"
    finally:
        served.stop()
        center.stop()
