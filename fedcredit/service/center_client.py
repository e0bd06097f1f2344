"""The bank's client of the center's partial-score endpoint (HTTP keep-alive, JSON).

Step: the bank sends the USCCs, the purpose and the model name; the center answers its partial
logit and published reasons per USCC (columnar JSON). Any failure to reach the center, a timeout
or a 5xx becomes a 503 refusal with a retry hint, so the bank's caller and the bank's log both
say the center was unreachable. Security assumption: the bank authenticates with its API key,
over TLS when ``center-url`` is https (verified against the federation CA of the node TOML).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx

from fedcredit.service.errors import Refusal

PARTIAL_SCORES_PATH = "/v1/partial-scores"
RETRY_AFTER_S = 2.0


@dataclass(frozen=True)
class CenterAnswer:
    """The center's partial scores, aligned with the USCCs sent."""

    model_version: str
    model_id: str
    found: list[bool]
    partial_logit: list[float | None]
    reasons: list[list[list[object]]]


def _unavailable(why: str) -> Refusal:
    return Refusal(503, "center_unavailable", f"the credit center is unreachable ({why}); "
                   f"retry after {RETRY_AFTER_S:g} s.", retry_after_s=RETRY_AFTER_S)


class CenterClient:
    """Keep-alive HTTP client of one center."""

    def __init__(self, url: str, api_key: str, *, timeout_s: float,
                 ca_file: Path | None = None) -> None:
        verify: bool | str = str(ca_file) if ca_file is not None else True
        self._client = httpx.AsyncClient(
            base_url=url, timeout=timeout_s, verify=verify,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))

    async def partial_scores(self, usccs: list[str], *, purpose: str, model: str) -> CenterAnswer:
        """The center's answer for ``usccs``.

        Raises
        ------
        Refusal
            503 (retry hint) when the center cannot be reached, times out, fails, or refuses
            the bank's key (a configuration problem the bank's operator must fix).
        """
        body = json.dumps({"usccs": usccs, "purpose": purpose, "model": model})
        try:
            reply = await self._client.post(PARTIAL_SCORES_PATH, content=body)
        except httpx.TimeoutException:
            raise _unavailable("timed out") from None
        except httpx.TransportError as exc:
            raise _unavailable(type(exc).__name__) from None
        if reply.status_code in (401, 403):
            raise Refusal(503, "center_refused", "the credit center refuses this bank's key; "
                          "the bank's operator must renew '[service] center-key'.",
                          retry_after_s=60.0)
        if reply.status_code == 429:
            raise Refusal(503, "center_busy", "the credit center rate-limits this bank; retry "
                          "later.", retry_after_s=float(reply.headers.get("Retry-After", "1")))
        if reply.status_code != 200:
            raise _unavailable(f"HTTP {reply.status_code}")
        try:
            doc = reply.json()
            return CenterAnswer(str(doc["model_version"]), str(doc["model_id"]),
                                list(doc["found"]), list(doc["partial_logit"]),
                                list(doc["reasons"]))
        except (ValueError, KeyError, TypeError):
            raise _unavailable("malformed answer") from None

    async def close(self) -> None:
        """Close the connections."""
        await self._client.aclose()
