"""Units of the service: USCC rules, feature validation, API keys, rate limit, query log,
settings, the report page."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from fedcredit.service.auth import ApiKeys, add_key
from fedcredit.service.errors import Refusal, ServiceConfigError
from fedcredit.service.inputs import (
    check_purpose,
    check_rows,
    check_uscc,
    check_usccs,
    parse_body,
    uscc_rule_broken,
)
from fedcredit.service.model_parts import design_rows
from fedcredit.service.query_log import QueryLog, QueryRecord, open_engine, query_subjects
from fedcredit.service.rate_limit import RateLimiter
from fedcredit.service.report_page import render_report
from fedcredit.service.settings import load_service_settings
from federation.data.uscc import generate_usccs
from federation.ml.preprocess import Preprocessor
from federation.scorecard.linear import LinearScorecard
from federation.scorecard.scale import RiskGrades, ScorecardScale

VALID = "91350100M000100Y43"  # the known-answer code of tests/federation/test_uscc.py


def test_uscc_rules_known_answers() -> None:
    assert uscc_rule_broken(VALID) is None
    assert all(uscc_rule_broken(c) is None for c in generate_usccs(200, np.random.default_rng(1)))
    cases = {VALID[:-1] + "2": "position 18", VALID[:-1]: "18 characters",
             VALID.lower(): "alphabet", VALID[:2] + "A" + VALID[3:]: "division",
             VALID[:16] + "0" + VALID[17:]: "position 17", 12: "string"}
    for code, rule in cases.items():
        problem = uscc_rule_broken(code)
        assert problem is not None and rule in problem
    with pytest.raises(Refusal) as info:
        check_uscc(VALID[:-1] + "2", "rows[4].uscc")
    assert (info.value.status, info.value.field) == (422, "rows[4].uscc")
    assert VALID[:-1] not in info.value.message  # names the rule, not the value


def test_purpose_body_and_rows_refusals() -> None:
    assert check_purpose("loan-approval") == "loan-approval"
    for call, status in ((lambda: check_purpose("marketing"), 422),
                         (lambda: parse_body(b"[1]", max_bytes=100), 422),
                         (lambda: parse_body(b"{}" + b" " * 200, max_bytes=100), 413),
                         (lambda: check_rows([], field="rows", limit=3), 422),
                         (lambda: check_rows([1, 2, 3, 4], field="rows", limit=3), 413)):
        with pytest.raises(Refusal) as info:
            call()
        assert info.value.status == status


def test_design_rows_refuse_a_missing_or_mistyped_feature() -> None:
    prep = Preprocessor(("amount",), (10.0,), (2.0,), (("grade", ("A", "B")),), 10)
    card = LinearScorecard.from_lr(prep, [np.array([[1.0, 0.5, -0.5]]), np.array([0.0])],
                                   scale=ScorecardScale(), grades=RiskGrades())
    x = design_rows(card, [{"amount": 14.0, "grade": "B"}, {"amount": None, "grade": "?"}],
                    ["a", "b"])
    np.testing.assert_allclose(x, [[2.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    for row, field in (({"grade": "A"}, "r.amount"), ({"amount": "ten", "grade": "A"}, "r.amount"),
                       ({"amount": 1.0, "grade": [1]}, "r.grade"), ({"amount": 1.0}, "r.grade"),
                       ({"amount": float("inf"), "grade": "A"}, "r.amount")):
        with pytest.raises(Refusal) as info:
            design_rows(card, [row], ["r"])
        assert (info.value.status, info.value.field) == (422, field)


def test_api_keys_are_stored_hashed_and_scoped(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = add_key(path, "bank-0", ("partial-score",))
    assert key not in path.read_text() and re.fullmatch(r"fck_[\w-]{43}", key)
    keys = ApiKeys.load(path)
    caller = keys.identify(f"Bearer {key}")
    assert caller.institution == "bank-0"
    caller.require("partial-score")
    for header, status in ((None, 401), ("Basic abc", 401), (f"Bearer {key}x", 401)):
        with pytest.raises(Refusal) as info:
            keys.identify(header)
        assert info.value.status == status
    with pytest.raises(Refusal) as info:
        caller.require("operator")
    assert info.value.status == 403
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(ServiceConfigError, match="fedcredit service-key"):
        ApiKeys.load(path)


def test_rate_limiter_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(2.0, 3, clock=lambda: now[0])
    for _ in range(3):
        limiter.take("bank-0")
    with pytest.raises(Refusal) as info:
        limiter.take("bank-0")
    assert info.value.status == 429 and info.value.retry_after_s == pytest.approx(0.5)
    limiter.take("bank-1")  # another institution has its own bucket
    now[0] = 0.5
    limiter.take("bank-0")
    with pytest.raises(Refusal):
        limiter.take("bank-0")


def _row(uscc: str | None, subjects: tuple[str, ...] = (), status: int = 200) -> QueryRecord:
    return QueryRecord(datetime(2026, 1, 2, tzinfo=UTC), "center", "bank-0", "partial-scores",
                       uscc, max(1, len(subjects)), "loan-approval", "m/v1", status,
                       "ok" if status == 200 else "invalid_uscc", "0" * 64, subjects)


def _exercise_log(url: str) -> None:
    log = QueryLog(open_engine(url), index_seconds=1e9)  # indexed below, by hand
    try:
        other = "91110108MA01K1PR8C"

        async def many() -> None:
            await asyncio.gather(*(log.record(_row(VALID)) for _ in range(40)),
                                 log.record(_row(None, (VALID, other))),
                                 log.record(_row(other, status=422)))

        before = log.count()
        asyncio.run(many())
        log.record_now(_row(other))
        assert log.count() == before + 43
        for _ in range(2):  # the batch is found before, then after, its enterprises are indexed
            history = log.history(VALID, limit=1000)
            assert len([h for h in history if h["at"].startswith("2026-01-02")]) >= 41
            assert {h["institution"] for h in history} == {"bank-0"}
            assert [h["endpoint"] for h in log.history(other, limit=1000)].count(
                "partial-scores") >= 3  # the batch, the refused query, record_now's
            while log.index_pending():
                pass
        with log.engine.connect() as conn:
            indexed = conn.execute(select(query_subjects.c.uscc)).scalars().all()
        assert indexed.count(other) >= 1 and indexed.count(VALID) >= 1
    finally:
        log.close()


def test_query_log_group_commit_and_history_sqlite(tmp_path: Path) -> None:
    _exercise_log(f"sqlite:///{tmp_path / 'q.db'}")
    engine = open_engine(f"sqlite:///{tmp_path / 'q.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_settings_name_the_wrong_setting(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("uscc,x\n", encoding="utf-8")
    (tmp_path / "node.toml").write_text(
        '[node]\nrole = "center"\nname = "center"\n[data]\npath = "data.csv"\nid-col = "uscc"\n'
        '[coordinator]\naddress = "127.0.0.1:9093"\ninsecure = true\n', encoding="utf-8")
    (tmp_path / "keys.json").write_text("{}", encoding="utf-8")
    base = ('[service]\nnode-config = "node.toml"\nregistry = "reg"\nmodel = "m"\n'
            'api-keys = "keys.json"\n')
    config = tmp_path / "service.toml"
    config.write_text(base, encoding="utf-8")
    settings = load_service_settings(config, port=9000)
    assert settings.port == 9000 and settings.role == "center"
    assert settings.database_url == f"sqlite:///{tmp_path / 'queries-center.db'}"
    for extra, match in (('colour = "red"\n', r"unknown setting '\[service\] colour'"),
                         ("port = 0\n", "port"), ('port = "80"\n', "wrong type"),
                         ('tls-key = "keys.json"\n', "go together")):
        config.write_text(base + extra, encoding="utf-8")
        with pytest.raises(ServiceConfigError, match=match):
            load_service_settings(config)
    config.write_text(base.replace("model = \"m\"\n", ""), encoding="utf-8")
    with pytest.raises(ServiceConfigError, match=r"'\[service\] model' is missing"):
        load_service_settings(config)


def test_report_page_escapes_every_value() -> None:
    score = {"grade": "<b>A</b>", "points": 580.2, "probability": 0.05, "model_version": "m/v1",
             "reasons": [{"reason": "industry: <script>", "points_lost": 3.2}]}
    history = [{"at": "2026-01-02T00:00:00", "institution": "bank&co", "purpose": None,
                "endpoint": "score", "status": 200, "outcome": "ok"}]
    page = render_report(VALID, "bank-0", score, history, now=datetime(2026, 1, 2, tzinfo=UTC))
    assert "<script>" not in page and "&lt;script&gt;" in page and "bank&amp;co" in page
    assert 'id="grade">&lt;b&gt;A&lt;/b&gt;<' in page and "580 points" in page
    assert "No score" in render_report(VALID, "bank-0", None, [], now=datetime.now(UTC))


@settings(max_examples=100)
@given(st.integers(0, 17), st.sampled_from("0123456789ABCDEFGHJKLMNPQRTUWXYZaIO"),
       st.integers(0, 2**32 - 1))
def test_vectorised_uscc_check_agrees_with_the_rules(position: int, char: str, seed: int) -> None:
    codes = generate_usccs(20, np.random.default_rng(seed))
    code = codes[seed % 20]
    codes[seed % 20] = code[:position] + char + code[position + 1:]
    broken = [i for i, c in enumerate(codes) if uscc_rule_broken(c) is not None]
    if not broken:
        assert check_usccs(codes, "rows[{i}].uscc") == codes
        return
    with pytest.raises(Refusal) as info:
        check_usccs(codes, "rows[{i}].uscc")
    assert info.value.field == f"rows[{broken[0]}].uscc"


def test_reasons_merge_both_parties_and_the_rows_carry_them() -> None:
    from fedcredit.service.bank_routes import _BankPart, _Reasons, _Scored
    from fedcredit.service.partial_wire import CenterAnswer

    rng = np.random.default_rng(3)
    n = 50
    bank = _BankPart(np.ones(n, bool), np.zeros(n), rng.integers(-1, 4, (n, 3)),
                     rng.uniform(0, 40, (n, 3)))
    center = CenterAnswer("m/v1", "id", ("tax grade: D", 'court "enforcement"'), np.ones(n, bool),
                          np.zeros(n), rng.integers(-1, 2, (n, 3)), rng.uniform(0, 40, (n, 3)))
    merged = _Reasons.merge(("a", "b", "c", "d"), bank, center)
    merged_rows = merged.rows()
    for i in range(n):
        pool = [(p, "abcd"[j], "bank") for j, p in
                zip(bank.label[i], bank.points[i], strict=True) if j >= 0] + [
            (p, center.labels[j], "center") for j, p in
            zip(center.reason_label[i], center.reason_points[i], strict=True) if j >= 0]
        expected = sorted(pool, key=lambda r: -r[0])[:3]
        assert [(r["reason"], r["source"]) for r in merged_rows[i]] == [
            (t, s) for _, t, s in expected]
        assert [r["points_lost"] for r in merged_rows[i]] == pytest.approx(
            [p for p, _, _ in expected], abs=0.005)
    found = rng.random(n) < 0.8
    points = rng.uniform(450, 650, n)
    probability = rng.random(n)
    scored = _Scored([VALID] * n, found, np.ones(n, bool), probability, points,
                     RiskGrades().assign(points), merged, None, None)  # type: ignore[arg-type]
    rows = json.loads(orjson.dumps(scored.rows()))
    assert len(rows) == n
    for i, row in enumerate(rows):
        if not found[i]:
            assert row == {"uscc": VALID, "status": "not_found", "missing_at": "center"}
            continue
        assert row["probability"] == pytest.approx(probability[i], abs=1e-6)
        assert row["points"] == pytest.approx(points[i], abs=0.005)
        assert row["grade"] == str(RiskGrades().assign(points[i:i + 1])[0])
        assert row["reasons"] == merged_rows[i]
