"""The app factory: one FastAPI app per institution, its role's routes plus the common ones.

Every route goes through :func:`answer`: the handler returns a payload or raises
:class:`Refusal`; :func:`answer` turns either into the response body, writes the query-log row
(with the body's hash) and waits for its commit, updates the metrics, then sends the body. An
unexpected exception becomes a logged 500 with a JSON body and no traceback; when the log
cannot take the row, the answer is withheld and the caller gets 503 ``log_unavailable``. ``/healthz`` and
``/metrics`` are not logged (they are not queries).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from fedcredit.service.auth import ApiKeys, Caller
from fedcredit.service.errors import Refusal
from fedcredit.service.metrics import CONTENT_TYPE, ServiceMetrics
from fedcredit.service.query_log import QueryLog, QueryRecord, open_engine
from fedcredit.service.rate_limit import RateLimiter
from fedcredit.service.registry import ModelHolder, ModelRegistry, ServedModel
from fedcredit.service.settings import ServiceSettings

logger = logging.getLogger("fedcredit.service")
JSON_TYPE = "application/json"


@dataclass
class QueryContext:
    """What a handler learns about its request, for the log row (filled as it goes)."""

    endpoint: str
    institution: str = "unauthenticated"
    uscc: str | None = None
    rows: int = 1
    purpose: str | None = None
    model_version: str | None = None
    subjects: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page:
    """A non-JSON answer (the HTML report)."""

    body: bytes
    media_type: str


@dataclass
class ServiceCore:
    """Everything the routes share: settings, keys, limiter, log, metrics, the served model."""

    settings: ServiceSettings
    keys: ApiKeys
    limiter: RateLimiter
    log: QueryLog
    metrics: ServiceMetrics
    holder: ModelHolder
    extras: dict[str, Any] = field(default_factory=dict)

    def authorise(self, request: Request, scope: str, ctx: QueryContext) -> Caller:
        """Authenticate, then rate-limit, the caller (401/403/429 as :class:`Refusal`)."""
        caller = self.keys.identify(request.headers.get("authorization"))
        ctx.institution = caller.institution
        caller.require(scope)
        self.limiter.take(caller.institution)
        return caller

    def served(self) -> tuple[ServedModel, Any]:
        """The ``(model, prepared table)`` pair a request uses throughout."""
        return self.holder.served


def _error_body(refusal: Refusal) -> dict[str, Any]:
    error: dict[str, Any] = {"cause": refusal.cause, "message": refusal.message}
    if refusal.field:
        error["field"] = refusal.field
    if refusal.retry_after_s is not None:
        error["retry_after_s"] = math.ceil(refusal.retry_after_s * 1000) / 1000
    return {"error": error}


async def answer(core: ServiceCore, ctx: QueryContext,
                 handler: Callable[[], Awaitable[dict[str, Any] | Page]]) -> Response:
    """Run ``handler``, log the outcome, and return the response (see the module docstring)."""
    started = time.perf_counter()
    headers: dict[str, str] = {}
    media_type, status, cause = JSON_TYPE, 200, "ok"
    try:
        result = await handler()
        if isinstance(result, Page):
            body, media_type = result.body, result.media_type
        else:
            body = orjson.dumps(result)
    except Refusal as refusal:
        status, cause = refusal.status, refusal.cause
        body = orjson.dumps(_error_body(refusal))
        if refusal.retry_after_s is not None:
            headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after_s)))
    except Exception:  # noqa: BLE001 (the answer is a logged 500, never a traceback)
        logger.exception("unexpected failure on %s", ctx.endpoint)
        status, cause = 500, "internal_error"
        body = orjson.dumps({"error": {"cause": cause, "message": "the service failed on this "
                                       "request; the operator finds it in the query log and the "
                                       "service's log by its time."}})
    try:
        await core.log.record(QueryRecord(
            datetime.now(UTC), core.settings.institution, ctx.institution, ctx.endpoint,
            ctx.uscc, ctx.rows, ctx.purpose, ctx.model_version, status, cause,
            hashlib.sha256(body).hexdigest(), ctx.subjects))
    except Exception:  # noqa: BLE001 (no answer leaves without its log row)
        logger.exception("the query log refused a row; answering 503")
        core.metrics.observe(ctx.endpoint, 503, "log_unavailable", time.perf_counter() - started)
        return JSONResponse({"error": {"cause": "log_unavailable", "message": "the query log "
                                       "cannot record this request, so it is not answered; "
                                       "retry later.", "retry_after_s": 5.0}},
                            status_code=503, headers={"Retry-After": "5"})
    core.metrics.observe(ctx.endpoint, status, cause, time.perf_counter() - started)
    return Response(body, status_code=status, headers=headers, media_type=media_type)


HotHandler = Callable[[Request], Awaitable[Response]]
ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]],
                    Callable[[MutableMapping[str, Any]], Awaitable[None]]], Awaitable[None]]


def add_hot_route(app: FastAPI, path: str, handler: HotHandler) -> None:
    """Register a POST route that :func:`hot_path_front` serves without FastAPI's stack (the
    app keeps it as a plain route too, for in-process clients such as the tests)."""
    app.router.add_route(path, handler, methods=["POST"])
    app.state.hot_routes[path] = handler


def hot_path_front(app: FastAPI) -> ASGIApp:
    """The ASGI app ``serve`` runs: a POST to a hot route goes straight to its handler (no
    middleware, routing or dependency solving per request: about a tenth of the bank's CPU per
    query); everything else, lifespan included, goes to ``app``. The handlers go through
    :func:`answer`, which turns any failure into a logged JSON answer."""
    hot: dict[str, HotHandler] = app.state.hot_routes

    async def front(scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                    send: Callable[[MutableMapping[str, Any]], Awaitable[None]]) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = hot.get(scope["path"])
            if handler is not None:
                response = await handler(Request(scope, receive))
                await response(scope, receive, send)
                return
        await app(scope, receive, send)

    return front


async def _reload_loop(core: ServiceCore) -> None:
    while True:
        await asyncio.sleep(core.settings.reload_seconds)
        try:
            if await asyncio.to_thread(core.holder.refresh):
                model = core.holder.served[0]
                core.metrics.model_version.labels(model.name).set(model.version)
                logger.warning("now serving %s", model.label)
        except Exception:  # noqa: BLE001 (keep serving the loaded version)
            logger.exception("reloading the model failed; still serving the loaded version")


def create_app(settings: ServiceSettings) -> FastAPI:
    """The institution's app: its role's routes, ``/healthz`` and ``/metrics``.

    Loads the promoted model and prepares the party's table before returning, so a bad
    registry, data file or key file stops ``serve`` with one line instead of failing requests.
    """
    from fedcredit.service import bank_routes, center_routes

    role = bank_routes if settings.role == "bank" else center_routes
    holder = ModelHolder(ModelRegistry(settings.registry), settings.model,
                         interval_s=settings.reload_seconds,
                         prepare=lambda m: role.prepare(settings, m))
    role.check_part(settings, holder.served[0])
    core = ServiceCore(settings, ApiKeys.load(settings.api_keys),
                       RateLimiter(settings.rate_limit, settings.rate_burst),
                       QueryLog(open_engine(settings.database_url)), ServiceMetrics(), holder)
    core.metrics.model_version.labels(settings.model).set(holder.served[0].version)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await role.start(core)
        reloader = asyncio.create_task(_reload_loop(core))
        try:
            yield
        finally:
            reloader.cancel()
            await role.stop(core)
            core.log.close()

    app = FastAPI(title=f"fedcredit {settings.role} service ({settings.institution})",
                  lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.core = core
    app.state.hot_routes = {}

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        model = core.holder.served[0]
        return JSONResponse({"status": "ok", "role": settings.role,
                             "institution": settings.institution, "model_version": model.label})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(core.metrics.exposition(), media_type=CONTENT_TYPE)

    role.add_routes(app, core)
    return app
