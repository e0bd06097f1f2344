"""The credit center's routes: partial scores for the federation's banks, and query history.

``POST /v1/partial-scores`` (scope ``partial-score``): ``{"usccs": [...], "purpose": ...,
"model": NAME}`` -> per USCC whether the center knows the enterprise, its partial logit under the
center's part of the promoted model, and the reasons the center publishes for its own columns;
for a SecureBoost part, the branch each enterprise takes at each of the center's split nodes
(one binary frame, one array per column: :mod:`fedcredit.service.partial_wire`).
``GET /v1/enterprises/{uscc}/queries`` (scope ``operator``): who asked about the enterprise,
when and why, from the center's log.

Security assumption: the center answers only keys of the federation's banks; it reveals no
feature value, only ``w_C . x_C`` and reason texts (see :mod:`fedcredit.service.model_parts`),
or one bit per split node and enterprise (:mod:`federation.run.tree_part`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from fedcredit.service.app import Page, QueryContext, ServiceCore, add_hot_route, answer
from fedcredit.service.errors import Refusal, ServiceConfigError
from fedcredit.service.inputs import check_purpose, check_rows, check_uscc, check_usccs, parse_body
from fedcredit.service.partial_wire import MEDIA_TYPE, answer_to_bytes
from fedcredit.service.registry import ServedModel
from fedcredit.service.settings import ServiceSettings
from fedcredit.service.tables import PartyTable, TreeTable, load_party_table, load_tree_table


def check_part(settings: ServiceSettings, model: ServedModel) -> None:
    """The center serves the center part of a split model only."""
    if model.part != "center":
        raise ServiceConfigError(f"{settings.source}: the registry's '{model.label}' is the "
                                 f"'{model.part}' part; the center serves a model promoted with "
                                 "--part center (its own columns only).")


def prepare(settings: ServiceSettings, model: ServedModel) -> PartyTable | TreeTable:
    """The center's table scored with its part (every enterprise, once per version): partial
    logits and reasons of a linear part, branch bits of a SecureBoost part."""
    load = load_tree_table if model.trees is not None else load_party_table
    return load(model, settings.node.data_path, id_col=settings.node.id_col, target=None)


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
    core.metrics.rows.inc(len(codes))
    return Page(answer_to_bytes(table.answer(codes, model.label, model.model_id)), MEDIA_TYPE)


def add_routes(app: FastAPI, core: ServiceCore) -> None:
    """Register the center's routes on ``app``."""

    async def partial_scores(request: Request) -> Response:
        ctx = QueryContext("partial-scores")

        async def handle() -> Page:
            core.authorise(request, "partial-score", ctx)
            doc = parse_body(await request.body(), max_bytes=core.settings.max_body_bytes)
            return _partial_scores(core, doc, ctx)

        return await answer(core, ctx, handle)

    add_hot_route(app, "/v1/partial-scores", partial_scores)

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
