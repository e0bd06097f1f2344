"""results.json: both kinds round-trip, keep their keys, and a malformed file names its field."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.errors import ResultsFormatError, RunFolderError
from federation.run.results import (
    SCHEMA_VERSION,
    AuditRef,
    BankBaseline,
    Deployment,
    DeploymentNode,
    HorizontalResults,
    LocalOnly,
    Metrics,
    PsiSummary,
    RoundEntry,
    ScoreHistograms,
    VerticalResults,
    read_results,
    results_from_dict,
)

HISTOGRAMS = ScoreHistograms(scale="logit", range=(-12.0, 12.0), bins=3, bad=(0, 2, 5),
                             good=(7, 3, 1))
DEPLOYMENT = Deployment(
    engine="flower 1.42 deployment runtime", tls=True, node_auth=True,
    superlink="127.0.0.1:9092", run_id="42", status="finished:completed",
    nodes=(DeploymentNode(name="bank-0", pid=101, data="/n/bank-0/bank.csv"),
           DeploymentNode(name="bank-1", pid=102, data="/n/bank-1/bank.csv")),
    coordinator_results="/out/coordinator/run/results.json", logs="/out/logs",
    processes="/out/processes.json")
SIMULATE_KEYS = {
    "schema_version", "dataset", "target", "rows", "features", "banks", "rounds", "model",
    "aggregation", "partition", "strategy", "seed", "federated", "history", "score_histograms",
    "centralized", "local_only", "dropouts", "signed_updates", "audit", "federated_seconds",
    "wall_seconds", "config"}
"""The keys `fedcredit simulate` wrote before results.json had a schema (plus the version)."""


def horizontal(**changes: object) -> HorizontalResults:
    """A simulate run's results, as ``fedcredit simulate`` writes them."""
    bank = BankBaseline(bank=0, train_rows=560, test_rows=240, bad_rate=0.3, auc=0.74, ks=0.4,
                        own_test_auc=0.73, federated_own_test_auc=0.77,
                        centralized_own_test_auc=0.78)
    results = HorizontalResults(
        dataset="german_credit.csv", target="bad", rows=1000, features=("age", "amount"),
        banks=2, rounds=2, model="lr", aggregation="plain", partition="iid", strategy="fedavg",
        seed=0, federated=Metrics(auc=0.78, ks=0.45),
        history=(RoundEntry(round=1, auc=0.7, ks=0.4, seconds=1.5, banks=2),
                 RoundEntry(round=2, auc=0.78, ks=0.45, seconds=1.25, banks=2)),
        score_histograms=HISTOGRAMS, centralized=Metrics(auc=0.79, ks=0.46),
        local_only=LocalOnly(mean_auc=0.74, per_bank=(bank, replace(bank, bank=1))),
        dropouts=({"round": 2, "node": 7, "reason": "no answer within 900 s"},),
        signed_updates=True, audit=AuditRef(file="/run/audit.jsonl", head="ab" * 32),
        federated_seconds=12.5, wall_seconds=20.0,
        config={"banks": 2, "alpha": 0.5, "target": "bad", "resume": False})
    return replace(results, **changes)


def vertical(**changes: object) -> VerticalResults:
    """A vertical simulation's results, as ``fedcredit vertical`` writes them."""
    results = VerticalResults(
        run_id="00ff", psi=PsiSummary(bank_rows=500, center_rows=500, intersection=400,
                                      seconds=2.5),
        federated=Metrics(auc=0.81, ks=0.5), score_histograms=HISTOGRAMS,
        iv={"deposits": 0.31, "tax_grade": 0.12}, epochs=1, epoch_seconds=(3.5,),
        train_rows=280, test_rows=120, bank_features=("deposits",),
        center_features=("tax_grade",), bytes_relayed=123_456, key_bits=2048,
        config={"epochs": 1, "mode": "vertical"}, centralized=Metrics(auc=0.815, ks=0.51),
        bank_only=Metrics(auc=0.7, ks=0.35), bank_data="bank.csv", center_data="center.csv",
        bank_columns=("deposits",), wall_seconds=30.0)
    return replace(results, **changes)


def written(results: HorizontalResults | VerticalResults, tmp_path: Path) -> dict:
    return json.loads(results.write(tmp_path / "results.json").read_text())


@pytest.mark.parametrize("make", [horizontal, vertical,
                                  lambda: horizontal(deployment=DEPLOYMENT, startup_seconds=9.0),
                                  lambda: vertical(deployment=DEPLOYMENT, baselines="note")])
def test_both_kinds_round_trip_through_the_file(tmp_path: Path, make) -> None:
    results = make()
    path = results.write(tmp_path / "results.json")
    assert read_results(path) == results
    assert type(results).read(path) == results
    assert not list(tmp_path.glob("*.tmp"))  # written, then renamed


def test_the_keys_stay_those_the_writers_used(tmp_path: Path) -> None:
    assert set(written(horizontal(), tmp_path)) == SIMULATE_KEYS
    doc = written(vertical(), tmp_path)
    assert doc["mode"] == "vertical" and doc["schema_version"] == SCHEMA_VERSION
    assert doc["psi"] == {"bank_rows": 500, "center_rows": 500, "intersection": 400,
                          "seconds": 2.5}
    assert doc["score_histograms"] == {"scale": "logit", "range": [-12.0, 12.0], "bins": 3,
                                       "bad": [0, 2, 5], "good": [7, 3, 1]}
    assert "deployment" not in doc and "federation_ready_seconds" not in doc


def test_a_deployment_writes_its_unseen_milestones_as_null(tmp_path: Path) -> None:
    doc = written(horizontal(deployment=DEPLOYMENT, startup_seconds=9.0), tmp_path)
    assert doc["startup_seconds"] == 9.0
    assert doc["federation_ready_seconds"] is None and doc["first_round_seconds"] is None
    assert doc["deployment"]["nodes"][0] == {"name": "bank-0", "pid": 101,
                                             "data": "/n/bank-0/bank.csv"}
    assert "role" not in doc["deployment"]["nodes"][0]


def test_nan_is_written_as_null_and_read_back_as_none(tmp_path: Path) -> None:
    results = horizontal(federated=Metrics(auc=math.nan, ks=0.2),
                         local_only=LocalOnly(mean_auc=math.inf, per_bank=()))
    doc = written(results, tmp_path)
    assert doc["federated"] == {"auc": None, "ks": 0.2} and doc["local_only"]["mean_auc"] is None
    back = read_results(tmp_path / "results.json")
    assert back.federated == Metrics(auc=None, ks=0.2)


def test_a_minimal_document_without_a_version_is_read_as_version_1() -> None:
    results = results_from_dict({"model": "lr", "target": "bad", "config": {"id-col": ""}})
    assert results == HorizontalResults(model="lr", target="bad", config={"id-col": ""})
    assert results.schema_version == SCHEMA_VERSION


@pytest.mark.parametrize(("doc", "field", "words"), [
    ({"federated": {"auc": "0.7", "ks": 0.4}}, "federated.auc", "must be a number or null"),
    ({"federated": {"auc": 0.7}}, "federated.ks", "is missing"),
    ({"history": [{"round": True, "auc": 0.7, "ks": 0.4, "seconds": 1.0, "banks": 2}]},
     "history[0].round", "must be an integer"),
    ({"banks": 3, "bank": 3}, "bank", "is not a known field"),
    ({"config": {"banks": [3]}}, 'config["banks"]', "must be"),
    ({"wall_seconds": 1e400}, "wall_seconds", "not a finite number"),
    ({"score_histograms": {"scale": "logit", "range": [-12, 12], "bins": 2, "bad": [1],
                           "good": [1, 2]}}, "score_histograms", "2 bins"),
    ({"score_histograms": {"scale": "logit", "range": [12], "bins": 0, "bad": [], "good": []}},
     "score_histograms.range", "must hold 2 values"),
    ({"mode": "horizontal"}, "mode", "only 'vertical' runs"),
    ({"mode": "vertical", "run_id": "x"}, "psi", "is missing"),
    ([1, 2], "", "not a JSON object"),
])
def test_a_malformed_document_names_the_field(doc, field: str, words: str) -> None:
    with pytest.raises(ResultsFormatError) as err:
        results_from_dict(doc, source="run/results.json")
    assert err.value.field == field and err.value.path == "run/results.json"
    message = str(err.value)
    assert message.startswith("run/results.json: ") and words in message
    assert (f"field '{field}'" if field else "the document") in message
    assert "rerun" in message  # what to do


def test_a_malformed_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    doc = json.loads(horizontal().to_json())
    doc["local_only"]["per_bank"][1]["auc"] = "high"
    path.write_text(json.dumps(doc))
    with pytest.raises(ResultsFormatError, match=r"local_only\.per_bank\[1\]\.auc") as err:
        read_results(path)
    assert err.value.path == str(path) and str(path) in str(err.value)
    for text in ("{not json", "\xff", "[" * 100_000):
        path.write_text(text, encoding="latin-1")
        with pytest.raises(ResultsFormatError, match="not valid JSON"):
            read_results(path)


@pytest.mark.parametrize("version", [2, 0, "1", None, 1.0])
def test_another_schema_version_is_refused(tmp_path: Path, version: object) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**json.loads(vertical().to_json()), "schema_version": version}))
    with pytest.raises(ResultsFormatError, match="reads version 1") as err:
        read_results(path)
    assert err.value.field == "schema_version"
    with pytest.raises(ValueError, match="schema version"):
        HorizontalResults(schema_version=2)


def test_a_missing_file_and_the_wrong_kind_are_named(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="not found") as err:
        read_results(tmp_path / "results.json")
    assert not isinstance(err.value, ResultsFormatError)
    path = vertical().write(tmp_path / "results.json")
    with pytest.raises(ResultsFormatError, match="expected HorizontalResults"):
        HorizontalResults.read(path)
    with pytest.raises(ResultsFormatError, match="expected VerticalResults"):
        VerticalResults.from_dict(json.loads(horizontal().to_json()))


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
metrics = st.builds(Metrics, auc=st.none() | finite, ks=st.none() | finite)
rounds = st.builds(RoundEntry, round=st.integers(1, 100), auc=st.none() | finite,
                   ks=st.none() | finite, seconds=finite, banks=st.integers(0, 50))
scalars = st.booleans() | st.integers(-2**53, 2**53) | finite | st.text(max_size=8)


@given(federated=st.none() | metrics, history=st.none() | st.lists(rounds, max_size=4).map(tuple),
       config=st.none() | st.dictionaries(st.text(max_size=6), scalars, max_size=4),
       dataset=st.none() | st.text(max_size=12), rows=st.none() | st.integers(0, 2**40))
def test_any_horizontal_document_round_trips(federated, history, config, dataset, rows) -> None:
    results = HorizontalResults(federated=federated, history=history, config=config,
                                dataset=dataset, rows=rows)
    assert results_from_dict(json.loads(results.to_json())) == results
