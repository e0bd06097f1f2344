"""The credit center's routes: partial scores for the federation's banks, and query history.

``POST /v1/partial-scores`` (scope ``partial-score``): ``{"usccs": [...], "purpose": ...,
"model": NAME}`` -> per USCC whether the center knows the enterprise, its partial logit under the
center's part of the promoted model, and the reasons the center publishes for its own columns
(columnar JSON: ``labels`` once, then per USCC the indices of its reasons and their points).
``GET /v1/enterprises/{uscc}/queries`` (scope ``operator``): who asked about the enterprise,
when and why, from the center's log.

Security assumption: the center answers only keys of the federation's banks; it reveals no
feature value, only ``w_C . x_C`` and reason texts (see :mod:`fedcredit.service.model_parts`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from fedcredit.service.app import JSON_TYPE, Page, QueryContext, ServiceCore, answer
from fedcredit.service.errors import Refusal, ServiceConfigError
from fedcredit.service.inputs import check_purpose, check_rows, check_uscc, check_usccs, parse_body
from fedcredit.service.registry import ServedModel
from fedcredit.service.settings import ServiceSettings
from fedcredit.service.tables import PartyTable, load_party_table


def check_part(settings: ServiceSettings, model: ServedModel) -> None:
    """The center serves the center part of a split model only."""
    if model.part != "center":
        raise ServiceConfigError(f"{settings.source}: the registry's '{model.label}' is the "
                                 f"'{model.part}' part; the center serves a model promoted with "
                                 "--part center (its own columns only).")


def prepare(settings: ServiceSettings, model: ServedModel) -> PartyTable:
    """The center's table scored with its part (every enterprise, once per version)."""
    return load_party_table(model, settings.node.data_path, id_col=settings.node.id_col,
                            target=None)


async def start(core: ServiceCore) -> None:
    """Nothing to open beyond the log."""


async def stop(core: ServiceCore) -> None:
    """Nothing to close beyond the log."""


def _partial_scores(core: ServiceCore, doc: dict[str, Any], ctx: QueryContext) -> Page:
    usccs = check_rows(doc.get("usccs"), field="usccs", limit=core.settings.max_batch_rows)
    ctx.purpose = check_purpose(doc.get("purpose"))
    codes = check_usccs(usccs, "usccs[{i}]")
    if len(codes) == 1:
        ctx.uscc = codes[0]
    else:
        ctx.rows, ctx.subjects = len(codes), tuple(codes)
    model, table = core.served()
    ctx.model_version = model.label
    if doc.get("model") != model.name:
        raise Refusal(404, "unknown_model", f"field 'model' names a model this center does not "
                      f"serve (it serves '{model.name}').", field="model")
    positions = [table.index.get(code) for code in codes]
    core.metrics.rows.inc(len(codes))
    # joined from the table's per-row JSON (the shape CenterClient reads): no per-request encoding
    head = json.dumps({"model_version": model.label, "model_id": model.model_id,
                       "labels": list(table.reasons.labels)})[:-1]
    k = table.reasons.label.shape[1]
    none_label, none_points = json.dumps([-1] * k), json.dumps([0] * k)
    found = ",".join("false" if p is None else "true" for p in positions)
    logits = ",".join("null" if p is None else table.logit_json[p] for p in positions)
    labels = ",".join(none_label if p is None else table.label_json[p] for p in positions)
    points = ",".join(none_points if p is None else table.points_json[p] for p in positions)
    body = (f'{head},"found":[{found}],"partial_logit":[{logits}],"reason_label":[{labels}],'
            f'"reason_points":[{points}]}}')
    return Page(body.encode(), JSON_TYPE)


def add_routes(app: FastAPI, core: ServiceCore) -> None:
    """Register the center's routes on ``app``."""

    @app.post("/v1/partial-scores")
    async def partial_scores(request: Request) -> Response:
        ctx = QueryContext("partial-scores")

        async def handle() -> Page:
            core.authorise(request, "partial-score", ctx)
            doc = parse_body(await request.body(), max_bytes=core.settings.max_body_bytes)
            return _partial_scores(core, doc, ctx)

        return await answer(core, ctx, handle)

    @app.get("/v1/enterprises/{uscc}/queries")
    async def queries(uscc: str, request: Request) -> Response:
        ctx = QueryContext("enterprise-queries")
        return await answer(core, ctx, lambda: history(core, request, uscc, ctx))


async def history(core: ServiceCore, request: Request, uscc: str,
                  ctx: QueryContext) -> dict[str, Any]:
    """The enterprise's query history from this institution's log (operator key)."""
    core.authorise(request, "operator", ctx)
    ctx.uscc = check_uscc(uscc, "uscc")
    rows = await asyncio.to_thread(core.log.history, uscc)
    return {"uscc": uscc, "institution": core.settings.institution, "queries": rows}
