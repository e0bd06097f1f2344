"""The bank and center services as real processes, driven by a real HTTP client (httpx).

Covers each answer of issue 15 (200, 422, 404, 401, 403, 429, 413, 503) and checks that each
request left one row in the bank's query log with its outcome, and that the split model scores
an enterprise exactly as the whole scorecard does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from fedcredit.service.inputs import uscc_rule_broken
from fedcredit.service.registry import ModelRegistry
from fedcredit.service.testbed import MODEL_NAME
from federation.data.synthetic import CENTER_FEATURES, ID_COLUMN
from federation.data.table import CreditTable
from federation.scorecard.linear import LinearScorecard
from tests.fedcredit.service.conftest import Pair

PURPOSE = "loan-approval"


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _score(pair: Pair, uscc: object, *, key: str | None = None, **extra: object) -> httpx.Response:
    body = {"uscc": uscc, "purpose": PURPOSE, **extra}
    headers = _auth(key if key is not None else pair.bed.app_key)
    return httpx.post(pair.bed.bank_url + "/v1/score", json=body, headers=headers, timeout=10)


def _corrupt_check_character(code: str) -> str:
    for ch in "0123456789":
        candidate = code[:-1] + ch
        if ch != code[-1] and uscc_rule_broken(candidate) is not None:
            return candidate
    raise AssertionError("no corruption found")


def test_a_score_names_the_version_and_equals_the_whole_scorecard(pair: Pair) -> None:
    uscc = pair.bed.shared_usccs[0]
    reply = _score(pair, uscc)
    assert reply.status_code == 200, reply.text
    doc = reply.json()
    assert doc["model_version"] == doc["center_model_version"] == f"{MODEL_NAME}/v1"
    card = LinearScorecard.from_json(pair.bed.scorecard.read_text(encoding="utf-8"))
    bank = pd.read_csv(pair.bed.folder / "bank.csv", dtype={ID_COLUMN: str})
    center = pd.read_csv(pair.bed.folder / "center.csv", dtype={ID_COLUMN: str})
    row = bank.merge(center, on=ID_COLUMN).set_index(ID_COLUMN).loc[[uscc]]
    prep = card.preprocessor()
    table = CreditTable("joined", "default", np.zeros(1, np.int8),
                        row[list(prep.numeric)].astype(float).reset_index(drop=True),
                        row[[c for c, _ in prep.categorical]].astype(object).reset_index(drop=True))
    expected = float(card.points(prep.transform(table))[0])
    assert doc["points"] == pytest.approx(expected, abs=0.01)
    assert doc["grade"] == str(card.grades.assign(np.array([expected]))[0])
    assert doc["reasons"] and all(r["points_lost"] > 0 for r in doc["reasons"])
    assert {r["source"] for r in doc["reasons"]} <= {"bank", "center"}
    last = pair.bank_rows()[-1]
    assert (last["uscc"], last["status"], last["outcome"], last["model_version"]) == (
        uscc, 200, "ok", f"{MODEL_NAME}/v1")
    assert last["response_sha256"] == hashlib.sha256(reply.content).hexdigest()
    center_last = pair.center_rows()[-1]
    assert (center_last["institution"], center_last["uscc"], center_last["purpose"]) == (
        "bank-0", uscc, PURPOSE)


def test_center_features_reach_the_caller_only_as_reason_texts(pair: Pair) -> None:
    doc = _score(pair, pair.bed.shared_usccs[1]).json()
    text = json.dumps(doc)
    center = pd.read_csv(pair.bed.folder / "center.csv", dtype={ID_COLUMN: str}).set_index(ID_COLUMN)
    values = center.loc[pair.bed.shared_usccs[1]]
    for column in CENTER_FEATURES:
        assert f'"{column}"' not in text  # no center column as a field
    assert not any(f"{v:.4f}" in text for v in values if isinstance(v, float) and v == v)


def test_features_in_the_request_score_like_the_bank_table(pair: Pair) -> None:
    uscc = pair.bed.shared_usccs[2]
    bank = pd.read_csv(pair.bed.folder / "bank.csv", dtype={ID_COLUMN: str}).set_index(ID_COLUMN)
    features = {k: float(v) for k, v in bank.loc[uscc].drop("default").items()}
    keyed, sent = _score(pair, uscc), _score(pair, uscc, features=features)
    assert sent.status_code == 200 and sent.json()["points"] == keyed.json()["points"]
    missing = dict(features)
    del missing["loan_amount"]
    reply = _score(pair, uscc, features=missing)
    assert reply.status_code == 422
    assert reply.json()["error"]["field"] == "features.loan_amount"


@pytest.mark.parametrize("case", ["check_character", "length", "purpose", "not_json"])
def test_bad_input_is_422_naming_the_field_and_logged(pair: Pair, case: str) -> None:
    good = pair.bed.shared_usccs[3]
    before = len(pair.bank_rows())
    if case == "not_json":
        reply = httpx.post(pair.bed.bank_url + "/v1/score", content=b"{no json",
                           headers=_auth(pair.bed.app_key))
        field = "body"
    elif case == "purpose":
        reply = httpx.post(pair.bed.bank_url + "/v1/score", headers=_auth(pair.bed.app_key),
                           json={"uscc": good, "purpose": "marketing"})
        field = "purpose"
    else:
        bad = _corrupt_check_character(good) if case == "check_character" else good[:-1]
        reply = _score(pair, bad)
        field = "uscc"
        assert bad not in reply.text  # the refusal names the field, never the value
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["field"] == field and "Traceback" not in reply.text
    rows = pair.bank_rows()
    assert len(rows) == before + 1 and rows[-1]["status"] == 422
    assert rows[-1]["outcome"] == error["cause"]


def test_unknown_enterprise_is_404_at_bank_and_at_center(pair: Pair) -> None:
    reply = _score(pair, pair.bed.bank_only_usccs[0])
    assert reply.status_code == 404 and "credit center" in reply.json()["error"]["message"]
    center_only = pd.read_csv(pair.bed.folder / "center.csv", dtype={ID_COLUMN: str})[ID_COLUMN]
    outsider = next(u for u in center_only if u not in set(pair.bed.shared_usccs))
    reply = _score(pair, outsider)
    assert reply.status_code == 404 and "bank's table" in reply.json()["error"]["message"]
    assert [r["outcome"] for r in pair.bank_rows()[-2:]] == ["unknown_enterprise"] * 2


def test_credentials_401_and_403(pair: Pair) -> None:
    uscc = pair.bed.shared_usccs[4]
    no_key = httpx.post(pair.bed.bank_url + "/v1/score", json={"uscc": uscc, "purpose": PURPOSE})
    wrong = _score(pair, uscc, key="fck_not-a-key")
    scope = _score(pair, uscc, key=pair.bed.bank_operator_key)
    assert (no_key.status_code, wrong.status_code, scope.status_code) == (401, 401, 403)
    rows = pair.bank_rows()[-3:]
    assert [r["outcome"] for r in rows] == ["unauthenticated", "unknown_key", "forbidden"]
    assert [r["institution"] for r in rows] == ["unauthenticated"] * 2 + ["bank-0-operator"]
    # a bank's key for the center is not an operator key there
    center = httpx.get(f"{pair.bed.center_url}/v1/enterprises/{uscc}/queries",
                       headers=_auth(pair.bed.bank_key_at_center))
    assert center.status_code == 403


def test_over_the_rate_limit_is_429_with_retry_after(pair: Pair) -> None:
    before = len(pair.bank_rows())

    async def burst() -> list[httpx.Response]:
        replies: list[httpx.Response] = []
        async with httpx.AsyncClient(base_url=pair.bed.bank_url, timeout=30) as client:
            body = {"uscc": pair.bed.shared_usccs[5], "purpose": PURPOSE}
            for _ in range(5):  # 100 at once, 40 a second allowed: refused long before round 5
                replies += await asyncio.gather(*(client.post(
                    "/v1/score", json=body, headers=_auth(pair.branch_key)) for _ in range(100)))
                if any(r.status_code == 429 for r in replies):
                    break
        return replies

    replies = asyncio.run(burst())
    statuses = [r.status_code for r in replies]
    assert set(statuses) == {200, 429}
    limited = next(r for r in replies if r.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["retry_after_s"] > 0
    rows = pair.bank_rows()[before:]
    assert len(rows) == len(replies)
    assert sum(r["outcome"] == "rate_limited" for r in rows) == statuses.count(429)
    assert {r["institution"] for r in rows} == {"branch-7"}


def test_oversize_batch_is_413_and_a_batch_scores_each_row(pair: Pair) -> None:
    rows = [{"uscc": u} for u in pair.bed.shared_usccs[:5]] + [{"uscc": pair.bed.bank_only_usccs[1]}]
    reply = httpx.post(pair.bed.bank_url + "/v1/score/batch", headers=_auth(pair.bed.app_key),
                       json={"purpose": PURPOSE, "rows": rows}, timeout=30)
    assert reply.status_code == 200
    results = reply.json()["results"]
    assert [r["status"] for r in results] == ["ok"] * 5 + ["not_found"]
    assert results[5]["missing_at"] == "center"
    single = _score(pair, rows[0]["uscc"]).json()  # the batch's rows read as single answers
    assert {k: single[k] for k in ("uscc", "probability", "points", "grade", "reasons")} == {
        k: results[0][k] for k in ("uscc", "probability", "points", "grade", "reasons")}
    big = [{"uscc": pair.bed.shared_usccs[0]}] * 10_001
    reply = httpx.post(pair.bed.bank_url + "/v1/score/batch", headers=_auth(pair.bed.app_key),
                       json={"purpose": PURPOSE, "rows": big}, timeout=30)
    assert reply.status_code == 413 and reply.json()["error"]["field"] == "rows"
    last = pair.bank_rows()[-2:]
    assert [(r["status"], r["rows"]) for r in last] == [(200, 1), (413, 10_001)]
    batch_row = pair.bank_rows()[-3]
    assert (batch_row["endpoint"], batch_row["rows"], batch_row["uscc"]) == ("score-batch", 6, None)


def test_query_history_and_metrics(pair: Pair) -> None:
    uscc = pair.bed.shared_usccs[6]
    assert _score(pair, uscc).status_code == 200
    history = httpx.get(f"{pair.bed.center_url}/v1/enterprises/{uscc}/queries",
                        headers=_auth(pair.bed.center_operator_key))
    assert history.status_code == 200
    assert [q["institution"] for q in history.json()["queries"]][:1] == ["bank-0"]
    bad = httpx.get(f"{pair.bed.center_url}/v1/enterprises/{uscc[:-1]}X/queries",
                    headers=_auth(pair.bed.center_operator_key))
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "uscc"
    text = httpx.get(pair.bed.bank_url + "/metrics").text
    assert 'fedcredit_service_refusals_total{cause="invalid_uscc"}' in text
    assert 'fedcredit_service_request_seconds_bucket{endpoint="score"' in text
    health = httpx.get(pair.bed.bank_url + "/healthz").json()
    assert health["status"] == "ok" and health["role"] == "bank"


def test_a_new_promotion_is_served_without_restart(pair: Pair) -> None:
    card = LinearScorecard.from_json(pair.bed.scorecard.read_text(encoding="utf-8"))
    shifted = LinearScorecard(card.scale, card.grades, card.intercept - 0.5, card.numeric,
                              card.categorical, card.clip_z, card.n_rows, card.target,
                              card.id_column)
    uscc = pair.bed.shared_usccs[7]
    before = _score(pair, uscc).json()
    ModelRegistry(pair.bed.folder / "bank" / "registry").promote(
        shifted, name=MODEL_NAME, part="bank", source="test", center_columns=CENTER_FEATURES)
    reply = _wait_for(pair, uscc, lambda r: r.status_code == 503)
    assert reply.json()["error"]["cause"] == "model_mismatch"  # center still on v1
    ModelRegistry(pair.bed.folder / "center" / "registry").promote(
        shifted, name=MODEL_NAME, part="center", source="test", center_columns=CENTER_FEATURES)
    reply = _wait_for(pair, uscc, lambda r: r.status_code == 200)
    after = reply.json()
    assert after["model_version"] == after["center_model_version"] == f"{MODEL_NAME}/v2"
    # the intercept fell by 0.5: P(bad) lower, factor * 0.5 more points
    assert after["points"] - before["points"] == pytest.approx(card.scale.factor * 0.5, abs=0.02)
    assert pair.bank_rows()[-1]["model_version"] == f"{MODEL_NAME}/v2"


def _wait_for(pair: Pair, uscc: str, done: object, timeout_s: float = 10.0) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        reply = _score(pair, uscc)
        if done(reply) or time.monotonic() > deadline:  # type: ignore[operator]
            return reply
        time.sleep(0.1)


def test_killing_the_center_mid_load_loses_no_bank_log_row(pair: Pair) -> None:
    """SIGKILL the center under load: the bank answers 503 with a retry hint until the center is
    back, then 200 again; every request the load sent is one row of the bank's log."""
    before = len(pair.bank_rows())
    replies: list[httpx.Response] = []
    stop = threading.Event()

    def load(uscc: str) -> None:
        with httpx.Client(base_url=pair.bed.bank_url, timeout=30,
                          headers=_auth(pair.bed.app_key)) as client:
            while not stop.is_set():
                replies.append(client.post("/v1/score", json={"uscc": uscc, "purpose": PURPOSE}))
                time.sleep(0.1)  # 4 workers stay under the 40 requests a second allowed

    workers = [threading.Thread(target=load, args=(u,)) for u in pair.bed.shared_usccs[10:14]]
    for worker in workers:
        worker.start()
    try:
        _wait_until(lambda: sum(r.status_code == 200 for r in replies) >= 4)
        pair.center.kill()
        _wait_until(lambda: sum(r.status_code == 503 for r in replies) >= 8)
        pair.center.start()
        served = len(replies)
        _wait_until(lambda: any(r.status_code == 200 for r in replies[served + 4:]))
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    down = [r for r in replies if r.status_code == 503]
    assert {r.json()["error"]["cause"] for r in down} == {"center_unavailable"}
    assert all(int(r.headers["Retry-After"]) >= 1 for r in down)
    assert {r.status_code for r in replies} <= {200, 503}
    rows = pair.bank_rows()[before:]
    assert len(rows) == len(replies)
    assert sum(r["outcome"] == "center_unavailable" for r in rows) == len(down)
    assert sum(r["status"] == 200 for r in rows) == len(replies) - len(down)


def _wait_until(condition: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="chromium not installed: apt-get install chromium to run this test")
def test_the_report_page_renders_in_headless_chromium(pair: Pair, tmp_path: Path) -> None:
    uscc = pair.bed.shared_usccs[15]
    assert _score(pair, uscc).status_code == 200
    reply = httpx.get(f"{pair.bed.bank_url}/v1/enterprises/{uscc}/report",
                      headers=_auth(pair.bed.bank_operator_key), timeout=30)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
    assert pair.bank_rows()[-1]["endpoint"] == "enterprise-report"
    probe = ("<script>window.addEventListener('load',()=>{const d=document.createElement('div');"
             "d.id='render-check';d.dataset.grade=document.getElementById('grade').textContent;"
             "d.dataset.reasons=document.querySelectorAll('#reasons tbody tr').length;"
             "d.dataset.history=document.querySelectorAll('#history tbody tr').length;"
             "d.dataset.width=document.getElementById('history').getBoundingClientRect().width;"
             "document.body.appendChild(d);});</script>")
    page = tmp_path / "report.html"
    page.write_text(reply.text.replace("</body>", probe + "</body>"), encoding="utf-8")
    proc = subprocess.run(
        [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'id="render-check" data-grade="([A-E])" data-reasons="(\d+)" '
                      r'data-history="(\d+)" data-width="([\d.]+)"', proc.stdout)
    assert found, proc.stderr[-2000:]
    grade, reasons, history, width = found.groups()
    assert grade == _score(pair, uscc).json()["grade"]
    assert int(reasons) >= 1 and int(history) >= 1 and float(width) > 100
