"""A bank's routes: scores for its applications, the enterprise report, query history.

``POST /v1/score`` (scope ``score``): ``{"uscc": ..., "purpose": ..., "features": {...}}``
(``features`` optional: without it the bank's own table is keyed by the USCC) -> P(default),
points, grade, reason codes and the model version. ``POST /v1/score/batch``: ``{"purpose": ...,
"rows": [{"uscc": ..., "features": {...}}, ...]}`` up to ``max-batch-rows``, one center call
for the whole batch. With a split model the bank adds the center's partial logit and its
published reasons; with a whole model it scores alone. ``GET /v1/enterprises/{uscc}/report``
and ``/queries`` (scope ``operator``).

Security assumption: the applicant's features stay at the bank; only USCCs and the purpose go
to the center, and the center's features reach the caller only as the center's reason texts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response

from fedcredit.service.app import Page, QueryContext, ServiceCore, add_hot_route, answer
from fedcredit.service.center_client import CenterAnswer, CenterClient, CoalescingCenter
from fedcredit.service.center_routes import history
from fedcredit.service.errors import Refusal, ServiceConfigError
from fedcredit.service.inputs import check_purpose, check_rows, check_uscc, check_usccs, parse_body
from fedcredit.service.model_parts import DEFAULT_REASONS, design_rows, part_reasons
from fedcredit.service.registry import ServedModel
from fedcredit.service.report_page import render_report
from fedcredit.service.settings import ServiceSettings
from fedcredit.service.tables import PartyTable, TreeTable, load_party_table, load_tree_table
from federation.run.tree_part import TreeBankPart
from federation.scorecard.reason_codes import MIN_POINTS_LOST

CENTER = "center"
COALESCER = "center-coalescer"
BATCH_SECONDS_PER_ROW = 0.001
"""A batch's center call may take ``center-timeout`` plus this per row."""


def check_part(settings: ServiceSettings, model: ServedModel) -> None:
    """A bank serves a whole model or the bank part of a split one."""
    if model.part == CENTER:
        raise ServiceConfigError(f"{settings.source}: the registry's '{model.label}' is the "
                                 "center's part; promote the bank's with --part bank (or "
                                 "--part whole for a model the bank serves alone).")


def prepare(settings: ServiceSettings, model: ServedModel) -> PartyTable | TreeTable:
    """The bank's own table in its part's layout (keyed look-ups need no parsing): design
    matrix of a linear part, bin codes of a SecureBoost part."""
    load = load_tree_table if model.trees is not None else load_party_table
    return load(model, settings.node.data_path, id_col=settings.node.id_col,
                target=settings.node.target)


async def start(core: ServiceCore) -> None:
    """Open the keep-alive client of the center."""
    settings = core.settings
    assert settings.center_key is not None
    key = settings.center_key.read_text(encoding="utf-8").strip()
    ca = settings.node.root_certificates if settings.center_url.startswith("https") else None
    client = CenterClient(settings.center_url, key, timeout_s=settings.center_timeout, ca_file=ca)
    core.extras[CENTER], core.extras[COALESCER] = client, CoalescingCenter(client)


async def stop(core: ServiceCore) -> None:
    """Close the center client."""
    await core.extras[CENTER].close()


@dataclass(frozen=True)
class _BankPart:
    """The bank's side of a batch: which rows it could score, their logits and reasons
    (``label`` indexes the bank part's reason labels, -1 none; ``points`` what each cost)."""

    known: np.ndarray
    logit: np.ndarray
    label: np.ndarray
    points: np.ndarray


def _bank_part(model: ServedModel, table: PartyTable, rows: list[dict[str, Any]],
               codes: list[str], where: Callable[[int], str]) -> _BankPart:
    n, k = len(rows), table.reasons.label.shape[1]
    known, logit = np.zeros(n, dtype=bool), np.zeros(n)
    label, points = np.full((n, k), -1, dtype=np.int64), np.zeros((n, k))
    given = [i for i, r in enumerate(rows) if r.get("features") is not None]
    for i in given:
        if not isinstance(rows[i]["features"], dict):
            raise Refusal(422, "invalid_features", f"field '{where(i)}' must be an object of "
                          "column: value.", field=where(i))
    if given:
        x = design_rows(model.card, [rows[i]["features"] for i in given], [where(i) for i in given])
        published = part_reasons(model.card, x, k)
        logit[given], known[given] = model.card.log_odds(x), True
        label[given], points[given] = published.label, published.points_lost
    at = table.positions(codes)
    if given:
        at[given] = -1  # sent features win over the bank's own row
    mine = np.flatnonzero(at >= 0)
    if mine.size:
        theirs = at[mine]
        known[mine], logit[mine] = True, table.partial_logit[theirs]
        label[mine], points[mine] = table.reasons.label[theirs], table.reasons.points_lost[theirs]
    return _BankPart(known, logit, label, points)


@dataclass(frozen=True)
class _Reasons:
    """Both parties' reasons merged per row, worst first: ``label`` (n, k) indexes ``labels``
    (the bank's labels, then the center's; -1 none), ``source`` names the party of each label."""

    labels: tuple[str, ...]
    source: tuple[str, ...]
    label: np.ndarray
    points: np.ndarray

    @classmethod
    def merge(cls, bank_labels: tuple[str, ...], bank: _BankPart,
              center: CenterAnswer | None) -> _Reasons:
        """The ``DEFAULT_REASONS`` largest losses of both parties' published reasons."""
        labels, label, points = bank_labels, bank.label, bank.points
        if center is not None:
            shifted = np.where(center.reason_label >= 0, center.reason_label + len(labels), -1)
            labels = (*labels, *center.labels)
            label = np.concatenate((label, shifted), axis=1)
            points = np.concatenate((points, center.reason_points), axis=1)
        points = np.where(label >= 0, points, 0.0)  # no label, no reason
        order = np.argsort(-points, axis=1, kind="stable")[:, :DEFAULT_REASONS]
        rows = np.arange(len(label))[:, None]  # plain fancy indexing: cheaper on 1-row arrays
        top = points[rows, order]
        top_label = np.where(top > MIN_POINTS_LOST, label[rows, order], -1)
        source = ("bank",) * len(bank_labels) + (CENTER,) * (len(labels) - len(bank_labels))
        return cls(labels, source, top_label, np.where(top_label >= 0, top, 0.0))

    def rows(self) -> list[list[dict[str, object]]]:
        """Every row's reasons as dicts (points rounded to 2 decimals)."""
        text, source = self.labels, self.source
        out: list[list[dict[str, object]]] = []
        for labels, points in zip(self.label.tolist(), np.round(self.points, 2).tolist(),
                                  strict=True):  # plain loops: no comprehension frame per row
            row = []
            for j, p in zip(labels, points, strict=True):
                if j >= 0:
                    row.append({"reason": text[j], "points_lost": p, "source": source[j]})
            out.append(row)
        return out


@dataclass(frozen=True)
class _Scored:
    """Scores of a request's rows (``found``: both parties know the row)."""

    codes: list[str]
    found: np.ndarray
    known_at_bank: np.ndarray
    probability: np.ndarray
    points: np.ndarray
    grades: np.ndarray
    reasons: _Reasons
    model: ServedModel
    center_version: str | None

    def rows(self) -> list[dict[str, Any]]:
        """Every row as a JSON-ready dict (built column-wise: a batch of 10,000 in a few ms)."""
        reasons = self.reasons.rows()
        probability = np.round(self.probability, 6).tolist()
        points = np.round(self.points, 2).tolist()
        grades = [str(g) for g in self.grades.tolist()]
        out: list[dict[str, Any]] = []
        for i, code in enumerate(self.codes):
            if self.found[i]:
                out.append({"uscc": code, "status": "ok", "probability": probability[i],
                            "points": points[i], "grade": grades[i], "reasons": reasons[i]})
            else:
                out.append({"uscc": code, "status": "not_found",
                            "missing_at": "bank" if not self.known_at_bank[i] else CENTER})
        return out


async def _center_answer(core: ServiceCore, codes: list[str], purpose: str,
                         model: str) -> CenterAnswer:
    """One query goes through the coalescer; a batch is its own call, with a longer timeout."""
    if len(codes) == 1:
        row: CenterAnswer = await core.extras[COALESCER].partial_score(
            codes[0], purpose=purpose, model=model)
        return row
    timeout = core.settings.center_timeout + BATCH_SECONDS_PER_ROW * len(codes)
    answer: CenterAnswer = await core.extras[CENTER].partial_scores(
        codes, purpose=purpose, model=model, timeout_s=timeout)
    return answer


async def _score(core: ServiceCore, rows: list[dict[str, Any]], codes: list[str], purpose: str,
                 where: Callable[[int], str]) -> _Scored:
    """Score ``rows``: the bank's part, plus the center's for a split model."""
    model, table = core.served()
    if isinstance(table, TreeTable):
        routed, answer = await _tree_part(core, model, table, rows, codes, purpose, where)
        return _scored(core, model, codes, routed, answer, ())
    bank = _bank_part(model, table, rows, codes, where)
    center: CenterAnswer | None = None
    if model.part == "bank":
        center = await _matching_center(core, model, codes, purpose)
    return _scored(core, model, codes, bank, center, table.reasons.labels)


async def _matching_center(core: ServiceCore, model: ServedModel, codes: list[str],
                           purpose: str) -> CenterAnswer:
    """The center's answer, refused (503) unless it comes from the same trained model."""
    center = await _center_answer(core, codes, purpose, model.name)
    if center.model_id != model.model_id:
        raise Refusal(503, "model_mismatch", "the credit center serves another promotion of "
                      f"model '{model.name}' ({center.model_version}); retry once both "
                      "parties have promoted the same run.", retry_after_s=10.0)
    return center


async def _tree_part(core: ServiceCore, model: ServedModel, table: TreeTable,
                     rows: list[dict[str, Any]], codes: list[str], purpose: str,
                     where: Callable[[int], str]) -> tuple[_BankPart, CenterAnswer]:
    """SecureBoost: the bank routes its own row of each enterprise through its trees, taking
    the center's answered branch at each of the center's split nodes (no reasons)."""
    assert isinstance(model.trees, TreeBankPart)
    sent = next((i for i, r in enumerate(rows) if r.get("features") is not None), None)
    if sent is not None:
        raise Refusal(422, "invalid_features", f"field '{where(sent)}' is not taken by a tree "
                      "model: it scores the bank's own row of the enterprise; send none.",
                      field=where(sent))
    at = table.positions(codes)
    center = await _matching_center(core, model, codes, purpose)
    n = len(codes)
    known, margin = at >= 0, np.zeros(n)
    both = np.flatnonzero(known & center.found)
    bits = center.branches if center.splits else np.zeros((0, n), dtype=bool)
    if both.size:
        margin[both] = model.trees.margins(table.codes[at[both]], bits[:, both])
    return _BankPart(known, margin, np.full((n, 0), -1, dtype=np.int64), np.zeros((n, 0))), center


def _scored(core: ServiceCore, model: ServedModel, codes: list[str], bank: _BankPart,
            center: CenterAnswer | None, bank_labels: tuple[str, ...]) -> _Scored:
    logit = bank.logit.copy()
    found = bank.known.copy()
    if center is not None:
        logit += np.where(center.found, center.partial_logit, 0.0)
        found &= center.found
    points = model.card.scale.points_from_log_odds(logit)
    core.metrics.rows.inc(len(codes))
    return _Scored(codes, found, bank.known, 1.0 / (1.0 + np.exp(-logit)), points,
                   model.card.grades.assign(points),
                   _Reasons.merge(bank_labels, bank, center), model,
                   center.model_version if center is not None else None)


async def score_one(core: ServiceCore, doc: dict[str, Any], ctx: QueryContext) -> dict[str, Any]:
    """``POST /v1/score``: one enterprise (404 when a party does not know it)."""
    ctx.uscc = check_uscc(doc.get("uscc"), "uscc")
    ctx.purpose = check_purpose(doc.get("purpose"))
    ctx.model_version = core.served()[0].label
    scored = await _score(core, [doc], [ctx.uscc], ctx.purpose, lambda _: "features")
    model, center_version = scored.model, scored.center_version
    ctx.model_version = model.label
    result = scored.rows()[0]
    if result["status"] != "ok":
        party = ("this bank's table (send 'features' instead)" if result["missing_at"] == "bank"
                 else "the credit center")
        raise Refusal(404, "unknown_enterprise", f"the enterprise of field 'uscc' is unknown to "
                      f"{party}.", field="uscc")
    del result["status"]
    return {**result, "purpose": ctx.purpose, "model_version": model.label,
            "center_model_version": center_version}


async def score_batch(core: ServiceCore, doc: dict[str, Any], ctx: QueryContext
                      ) -> dict[str, Any]:
    """``POST /v1/score/batch``: up to ``max-batch-rows`` enterprises, one center call."""
    raw = doc.get("rows")
    ctx.rows = len(raw) if isinstance(raw, list) else 0  # logged even when refused
    rows = check_rows(raw, field="rows", limit=core.settings.max_batch_rows)
    ctx.purpose = check_purpose(doc.get("purpose"))
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise Refusal(422, "invalid_rows", f"field 'rows[{i}]' must be an object.",
                          field=f"rows[{i}]")
    codes = check_usccs([r.get("uscc") for r in rows], "rows[{i}].uscc")
    ctx.subjects = tuple(codes)
    ctx.model_version = core.served()[0].label
    scored = await _score(core, rows, codes, ctx.purpose, "rows[{}].features".format)
    ctx.model_version = scored.model.label
    return {"purpose": ctx.purpose, "model_version": scored.model.label,
            "center_model_version": scored.center_version, "results": scored.rows()}


async def report(core: ServiceCore, request: Request, uscc: str, ctx: QueryContext) -> Page:
    """``GET /v1/enterprises/{uscc}/report``: score now, and the bank's log of the enterprise."""
    core.authorise(request, "operator", ctx)
    ctx.uscc = check_uscc(uscc, "uscc")
    ctx.purpose = "enterprise-self-query"
    scored = await _score(core, [{}], [uscc], ctx.purpose, lambda _: "features")
    ctx.model_version = scored.model.label
    score = None
    if scored.found[0]:
        score = {**scored.rows()[0], "model_version": scored.model.label}
    rows = await asyncio.to_thread(core.log.history, uscc)
    html = render_report(uscc, core.settings.institution, score, rows, now=datetime.now(UTC))
    return Page(html.encode("utf-8"), "text/html; charset=utf-8")


def add_routes(app: FastAPI, core: ServiceCore) -> None:
    """Register the bank's routes on ``app``."""

    async def scored(request: Request, endpoint: str, scope: str, fn: Any) -> Response:
        ctx = QueryContext(endpoint)

        async def handle() -> dict[str, Any] | Page:
            core.authorise(request, scope, ctx)
            doc = parse_body(await request.body(), max_bytes=core.settings.max_body_bytes)
            return await fn(core, doc, ctx)

        return await answer(core, ctx, handle)

    async def score(request: Request) -> Response:
        return await scored(request, "score", "score", score_one)

    async def batch(request: Request) -> Response:
        return await scored(request, "score-batch", "score", score_batch)

    add_hot_route(app, "/v1/score", score)
    add_hot_route(app, "/v1/score/batch", batch)

    @app.get("/v1/enterprises/{uscc}/report")
    async def report_page(uscc: str, request: Request) -> Response:
        ctx = QueryContext("enterprise-report")
        return await answer(core, ctx, lambda: report(core, request, uscc, ctx))

    @app.get("/v1/enterprises/{uscc}/queries")
    async def queries(uscc: str, request: Request) -> Response:
        ctx = QueryContext("enterprise-queries")
        return await answer(core, ctx, lambda: history(core, request, uscc, ctx))
