"""The bank's client of the center's partial-score endpoint (HTTP/1.1 keep-alive pool).

Step: the bank sends the USCCs, the purpose and the model name (JSON); the center answers its
partial logit, published reasons and (trees) branch bits per USCC as one binary frame
(:mod:`fedcredit.service.partial_wire`). Any failure to reach the center, a timeout or a 5xx
becomes a 503 refusal with a retry hint, so the bank's caller and the bank's log both say the
center was unreachable. Security assumption: the bank authenticates with its API key, over TLS
when ``center-url`` is https (verified against the federation CA of the node TOML).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from fedcredit.service.errors import Refusal
from fedcredit.service.http_pool import HttpPool, HttpUnavailable
from fedcredit.service.partial_wire import MEDIA_TYPE, CenterAnswer, answer_from_bytes
from protocols.errors import MalformedMessageError

__all__ = ["PARTIAL_SCORES_PATH", "CenterAnswer", "CenterClient", "CoalescingCenter"]

PARTIAL_SCORES_PATH = "/v1/partial-scores"
RETRY_AFTER_S = 2.0


def _unavailable(why: str) -> Refusal:
    return Refusal(503, "center_unavailable", f"the credit center is unreachable ({why}); "
                   f"retry after {RETRY_AFTER_S:g} s.", retry_after_s=RETRY_AFTER_S)


class CenterClient:
    """Keep-alive HTTP client of one center."""

    def __init__(self, url: str, api_key: str, *, timeout_s: float,
                 ca_file: Path | None = None, max_connections: int = 16) -> None:
        self.timeout_s = timeout_s
        self._pool = HttpPool(url, headers={"Authorization": f"Bearer {api_key}",
                                            "Accept": MEDIA_TYPE},
                              ca_file=ca_file, max_connections=max_connections)

    async def partial_scores(self, usccs: list[str], *, purpose: str, model: str,
                             timeout_s: float | None = None) -> CenterAnswer:
        """The center's answer for ``usccs`` (``timeout_s``: this call's, default the client's).

        Raises
        ------
        Refusal
            503 (retry hint) when the center cannot be reached, times out, fails, or refuses
            the bank's key (a configuration problem the bank's operator must fix).
        """
        body = orjson.dumps({"usccs": usccs, "purpose": purpose, "model": model})
        try:
            reply = await self._pool.post(PARTIAL_SCORES_PATH, body,
                                          timeout_s=timeout_s or self.timeout_s)
        except HttpUnavailable as exc:
            raise _unavailable(str(exc)) from None
        if reply.status in (401, 403):
            raise Refusal(503, "center_refused", "the credit center refuses this bank's key; "
                          "the bank's operator must renew '[service] center-key'.",
                          retry_after_s=60.0)
        if reply.status == 429:
            raise Refusal(503, "center_busy", "the credit center rate-limits this bank; retry "
                          "later.", retry_after_s=_seconds(reply.headers.get("retry-after")))
        if reply.status != 200:
            raise _unavailable(f"HTTP {reply.status}")
        try:
            return answer_from_bytes(reply.body, len(usccs))
        except MalformedMessageError:
            raise _unavailable("malformed answer") from None

    async def close(self) -> None:
        """Close the connections."""
        await self._pool.close()


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value or "1"))
    except ValueError:
        return 1.0


class CoalescingCenter:
    """Single queries that arrive together go to the center as one request.

    A query waits at most until the event loop's next turn, or until one of the
    ``max_in_flight`` center calls returns: under load 16 concurrent queries cost a few center
    calls, not 16 (each with its own HTTP round trip, authentication and log row at the
    center). A failed call fails each query it carried with the same refusal (503).
    """

    def __init__(self, client: CenterClient, *, max_in_flight: int = 4, max_rows: int = 512) -> None:
        self._client, self._max_in_flight, self._max_rows = client, max_in_flight, max_rows
        self._pending: dict[tuple[str, str], list[tuple[str, asyncio.Future[CenterAnswer]]]] = {}
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def partial_score(self, uscc: str, *, purpose: str, model: str) -> CenterAnswer:
        """The center's answer for one USCC, as a one-row answer (raises the call's Refusal)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CenterAnswer] = loop.create_future()
        self._pending.setdefault((purpose, model), []).append((uscc, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        while self._pending and self._in_flight < self._max_in_flight:
            key = next(iter(self._pending))
            items = self._pending[key][:self._max_rows]
            rest = self._pending[key][self._max_rows:]
            if rest:
                self._pending[key] = rest
            else:
                del self._pending[key]
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(key, items))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, key: tuple[str, str],
                    items: list[tuple[str, asyncio.Future[CenterAnswer]]]) -> None:
        try:
            answer = await self._client.partial_scores([u for u, _ in items], purpose=key[0],
                                                       model=key[1])
            for i, (_, future) in enumerate(items):
                if not future.done():
                    future.set_result(answer.row(i))
        except BaseException as exc:  # noqa: BLE001 (every query of the call gets the failure)
            for _, future in items:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Refusal) else
                                         _unavailable(type(exc).__name__))
            if not isinstance(exc, Exception):
                raise
        finally:
            self._in_flight -= 1
            if self._pending:
                self._flush()
