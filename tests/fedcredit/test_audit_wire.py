"""The wire leak scanner on synthetic transcripts: every planted encoding of a party's labels,
feature values and IDs is flagged; protocol-shaped payloads (ciphertexts, weights, counts,
public metrics) are not; the allow-list refuses unknown places, dtypes and sizes; the CLI
exits 1 with one line per finding and 0 with a summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, Metadata, MetricRecord, RecordDict
from typer.testing import CliRunner

from fedcredit.audit_wire.scan import audit_wire, scan_transcript
from fedcredit.audit_wire.targets import RowOrder, build_targets, file_orders, load_data
from fedcredit.cli.main import app
from federation.data.synthetic import write_enterprise_pair
from federation.data.table import CreditTable
from federation.errors import RunFolderError
from federation.ml.preprocess import pooled_preprocessor
from federation.run.folder import RunFolder
from federation.wire import records
from federation.wire.allowlist import ALLOW_LIST, refusal
from federation.wire.transcript import (
    TO_COORDINATOR,
    TO_NODE,
    WireValue,
    line_from_json,
    line_of,
    line_to_json,
)

from .wire_canaries import Canary, all_canaries, id_canaries

TRAIN = records.STEP_TRAIN.message_type


@pytest.fixture(scope="module")
def german() -> CreditTable:
    return load_data(Path("german"), target="bad", id_col=None)


def own_order(table: CreditTable, seed: int = 3) -> CreditTable:
    """A party's own row order: a seeded subset in shuffled order (like a bank's split)."""
    rows = np.random.default_rng(seed).permutation(table.n_rows)[: table.n_rows // 2]
    return table.subset(rows)


def message(content: RecordDict, message_type: str = TRAIN) -> Message:
    """A message as a node sees it (metadata set by the SuperLink, as flwr does inside)."""
    return Message(content, metadata=Metadata(  # type: ignore[call-overload]
        run_id=1, message_id="m1", src_node_id=1, dst_node_id=7, reply_to_message_id="",
        group_id="", created_at=0.0, ttl=60.0, message_type=message_type))


def write_transcript(path: Path, contents: list[RecordDict], *, message_type: str = TRAIN,
                     ) -> Path:
    lines = []
    for i, content in enumerate(contents):
        msg = message(content, message_type)
        direction = TO_NODE if i % 2 == 0 else TO_COORDINATOR
        lines.append(line_to_json(line_of(msg, direction=direction, node=7, round_index=i)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def protocol_shaped(seed: int = 0) -> list[RecordDict]:
    """What a clean run carries: sealed random bytes, weights, small counts, metrics, JSON."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(3.0, size=2048).astype(np.int64)
    return [
        RecordDict({records.KEY_SEALED: ConfigRecord({
            "kind": "train", "scheme": "paillier-2048", "length": 1024, "parties": 1,
            "payload": rng.bytes(200_000), "schema-version": 1, "contributors": b""})}),
        RecordDict({records.KEY_WEIGHTS: ArrayRecord([rng.normal(size=500)]),
                    records.KEY_RELEASED_HIST: ArrayRecord([counts]),
                    records.KEY_METRICS: MetricRecord({records.METRIC_AUC: 0.77,
                                                       records.METRIC_KS: 10.0,
                                                       records.METRIC_EXAMPLES: 300})}),
        RecordDict({records.KEY_SCHEMA: ConfigRecord({records.FIELD_SCHEMA: '{"numeric": '
                                                      '["credit_amount", "age"], "n": 700}'})}),
    ]


def planted(canaries: list[Canary]) -> list[RecordDict]:
    return [RecordDict({c.record_name: c.record}) for c in canaries]


def content_findings(report, record: str) -> list[str]:
    return [f.what for f in report.findings
            if f.record == record and not f.what.startswith("not allowed")]


def test_every_planted_encoding_is_flagged_and_protocol_payloads_are_not(
        tmp_path: Path, german: CreditTable) -> None:
    own = own_order(german)
    orders = [*file_orders(german), RowOrder("bank 0 training rows", own)]
    prep = pooled_preprocessor([own])
    targets = build_targets(orders, [prep])
    canaries = all_canaries(own, german, prep)
    assert len(canaries) >= 20
    path = write_transcript(tmp_path / "wire.jsonl", protocol_shaped() + planted(canaries))
    report = scan_transcript(path, targets, rows=german.n_rows)
    assert report.messages == 3 + len(canaries)
    missed = [c.name for c in canaries
              if not any(c.category in w for w in content_findings(report, c.record_name))]
    assert missed == []
    clean_records = {records.KEY_SEALED, records.KEY_WEIGHTS, records.KEY_RELEASED_HIST,
                     records.KEY_METRICS, records.KEY_SCHEMA}
    assert [f.describe() for f in report.findings if f.record in clean_records] == []


def test_labels_of_the_own_order_need_that_order(tmp_path: Path, german: CreditTable) -> None:
    """Without the party's order its labels look like any 0/1 run; with it, they are found."""
    own = own_order(german)
    y = own.y[:96].astype(np.float64)
    path = write_transcript(tmp_path / "wire.jsonl",
                            [RecordDict({"x": ArrayRecord([y])})])
    without = scan_transcript(path, build_targets(file_orders(german), []), rows=1000)
    with_order = scan_transcript(path, build_targets(
        [*file_orders(german), RowOrder("bank 0 training rows", own)], []), rows=1000)
    assert not any("labels" in f.what for f in without.findings)
    assert any("labels as float64 (bank 0 training rows)" in f.what for f in with_order.findings)


def test_one_feature_value_recurring_by_chance_is_not_a_finding(tmp_path: Path,
                                                                german: CreditTable) -> None:
    """A clip bound or count equal to a cell (the old test's 10.0 = headcount 10) is no leak:
    a finding needs 16 consecutive cell values, 8 of them distinct."""
    amounts = german.numeric["credit_amount"].to_numpy()
    few = np.concatenate([np.full(40, amounts[0]), amounts[:7], np.zeros(10)])
    path = write_transcript(tmp_path / "wire.jsonl", [
        RecordDict({"x": ArrayRecord([few]),
                    "t": ConfigRecord({"v": " ".join(f"{v:.2f}" for v in amounts[:15])})})])
    report = scan_transcript(path, build_targets(file_orders(german), []), rows=1000)
    assert [f.what for f in report.findings if "feature" in f.what] == []


def test_text_ids_of_an_enterprise_file_are_flagged_in_every_encoding(tmp_path: Path) -> None:
    _, center_path = write_enterprise_pair(tmp_path, n_enterprises=300, seed=1)
    center = load_data(center_path, target=None, id_col="uscc")
    canaries = id_canaries(center.subset(np.arange(200, 0, -1)))
    path = write_transcript(tmp_path / "wire.jsonl", protocol_shaped(1) + planted(canaries))
    report = scan_transcript(path, build_targets(file_orders(center), []), rows=300)
    for canary in canaries:
        assert any("IDs" in w for w in content_findings(report, canary.record_name)), canary.name
    assert not any(f.record == records.KEY_SEALED for f in report.findings)


def _value(record: str, key: str, kind: str, dtype: str, size: int) -> WireValue:
    return WireValue(record, kind, key, dtype, (size,), bytes(size))


def test_allow_list_refuses_unknown_places_kinds_dtypes_and_sizes() -> None:
    assert refusal(TRAIN, _value(records.KEY_SEALED, "payload", "config", "bytes", 1000)) is None
    assert "no allow-list row" in refusal(TRAIN, _value("labels", "v", "config", "bytes", 8))
    assert "no allow-list row" in refusal("query.nonsense",
                                          _value(records.KEY_SEALED, "payload", "config",
                                                 "bytes", 8))
    assert "kind array" in refusal(TRAIN, _value(records.KEY_SEALED, "payload", "array",
                                                 "bytes", 8))
    assert refusal(TRAIN, _value(records.KEY_WEIGHTS, "0", "array", "float64", 8)) is None
    assert "dtype float32" in refusal(TRAIN, _value(records.KEY_WEIGHTS, "0", "array",
                                                    "float32", 8))
    assert "dtype str" in refusal(TRAIN, _value(records.KEY_STEP, records.FIELD_ROUND,
                                                "config", "str", 4))
    assert "over the allow-list bound" in refusal(
        TRAIN, _value(records.KEY_STEP, records.FIELD_RUN_ID, "config", "str", 10_000))
    rows = {(r.record, r.key) for r in ALLOW_LIST}
    assert (records.KEY_METRICS, records.METRIC_AUC) in rows


def test_a_metric_record_list_is_refused_by_the_allow_list() -> None:
    """MetricRecords are checked too: a list where the protocol has a number is refused."""
    why = refusal(TRAIN, _value(records.KEY_METRICS, records.METRIC_AUC, "metric",
                                "list[float]", 800))
    assert why is not None and "dtype list[float]" in why


def test_transcript_line_round_trip() -> None:
    content = RecordDict({"a": ArrayRecord([np.arange(6, dtype=np.int32).reshape(2, 3)]),
                          "c": ConfigRecord({"s": "tëxt", "b": b"\x00\x01", "i": -3, "f": 0.5,
                                             "l": [1, 2], "ls": ["x", "y"], "t": True}),
                          "m": MetricRecord({"auc": 0.5, "n": 3})})
    line = line_of(message(content), direction=TO_NODE,
                   node=1, round_index=4)
    back = line_from_json(line_to_json(line))
    assert back == line
    by_key = {(v.record, v.key): v for v in back.values}
    assert by_key[("a", "0")].dtype == "int32" and by_key[("a", "0")].shape == (2, 3)
    assert by_key[("a", "0")].raw == np.arange(6, dtype=np.int32).tobytes()
    assert by_key[("c", "s")].raw == "tëxt".encode()
    assert by_key[("c", "i")].raw == np.int64(-3).tobytes()
    assert by_key[("c", "l")].dtype == "list[int]"
    assert by_key[("m", "auc")].kind == "metric"


def test_cli_exits_1_with_a_line_per_finding_and_0_with_a_summary(
        tmp_path: Path, german: CreditTable) -> None:
    runner = CliRunner()
    clean = tmp_path / "clean"
    clean.mkdir()
    write_transcript(RunFolder(clean).wire, protocol_shaped())
    result = runner.invoke(app, ["audit", "wire", str(clean), "--data", "german",
                                 "--target", "bad"])
    assert result.exit_code == 0, result.output
    assert "no finding" in result.output and "1000 rows" in result.output

    leaky = tmp_path / "leaky"
    leaky.mkdir()
    y = german.y[:80].astype(np.float32)
    write_transcript(RunFolder(leaky).wire, [RecordDict({records.KEY_SEALED: ConfigRecord({
        "payload": y.tobytes()})})])
    result = runner.invoke(app, ["audit", "wire", str(leaky), "--data", "german",
                                 "--target", "bad"])
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("line ")]
    assert len(lines) == 1 and "sealed/payload: labels as float32 (file order)" in lines[0]


def test_a_run_without_a_transcript_is_named(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="--record-wire"):
        audit_wire(tmp_path, Path("german"), target="bad")


def test_summed_counts_are_not_feature_values_but_large_integers_are(tmp_path: Path,
                                                                    german: CreditTable) -> None:
    """A released score histogram (int64 counts, all at most the file's rows) is no leak even
    when every count is also some cell's value (on UCI nearly every integer is); the credit
    amounts above the row count, as int64, still are."""
    amounts = german.numeric["credit_amount"].to_numpy()
    counts = np.sort(amounts[(amounts >= 100) & (amounts <= german.n_rows)])[:40]
    big = amounts[amounts > german.n_rows][:40]
    assert counts.size >= 16 and np.unique(counts).size >= 8 and big.size >= 16
    targets = build_targets(file_orders(german), [])
    quiet = scan_transcript(write_transcript(tmp_path / "counts.jsonl", [
        RecordDict({"h": ArrayRecord([counts.astype(np.int64)])})]), targets, rows=1000)
    assert [f.what for f in quiet.findings if "feature" in f.what] == []
    loud = scan_transcript(write_transcript(tmp_path / "big.jsonl", [
        RecordDict({"h": ArrayRecord([big.astype(np.int64)])})]), targets, rows=1000)
    assert any("feature values as int64" in f.what for f in loud.findings)
