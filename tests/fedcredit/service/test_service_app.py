"""The app in-process (ASGI transport): an unexpected failure is a logged JSON 500, and an
answer the query log cannot record is withheld (503)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import httpx

from fedcredit.service.app import create_app
from fedcredit.service.settings import load_service_settings
from fedcredit.service.testbed import Testbed


def _post(testbed: Testbed, tmp_path: Path, breakage: str) -> tuple[httpx.Response, Any]:
    settings = dataclasses.replace(load_service_settings(testbed.center_config),
                                   database=f"sqlite:///{tmp_path / 'q.db'}")
    app = create_app(settings)
    core = app.state.core
    if breakage == "table":
        core.holder.served = (core.holder.served[0], None)  # the handler then fails
    else:
        async def refuse(row: object) -> None:
            raise OSError("disk full")
        core.log.record = refuse

    async def run() -> httpx.Response:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://center") as client:
                return await client.post("/v1/partial-scores", headers={
                    "Authorization": f"Bearer {testbed.bank_key_at_center}"}, json={
                    "usccs": [testbed.shared_usccs[0]], "purpose": "loan-approval",
                    "model": "sme-default"})

    return asyncio.run(run()), core


def test_an_unexpected_failure_is_a_logged_json_500(testbed: Testbed, tmp_path: Path) -> None:
    reply, core = _post(testbed, tmp_path, "table")
    assert reply.status_code == 500 and reply.json()["error"]["cause"] == "internal_error"
    assert "Traceback" not in reply.text
    assert core.log.count() == 1
    assert core.log.history(testbed.shared_usccs[0])[0]["outcome"] == "internal_error"


def test_an_answer_the_log_cannot_record_is_withheld(testbed: Testbed, tmp_path: Path) -> None:
    reply, _ = _post(testbed, tmp_path, "log")
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "5"
    assert reply.json()["error"]["cause"] == "log_unavailable"
    assert "partial_logit" not in reply.text
