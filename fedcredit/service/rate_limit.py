"""Per-institution rate limit: a token bucket per calling institution.

Each institution may send ``rate`` requests per second on average and ``burst`` at once; a
request over the limit is refused with 429 and the seconds until a token is back. Time is passed
in (``clock``) so tests are deterministic. The limit also bounds how fast a bank can collect the
center's partial logits (see :mod:`fedcredit.service.model_parts`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from fedcredit.service.errors import Refusal


class RateLimiter:
    """Token buckets keyed by institution (thread-safe)."""

    def __init__(self, rate: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate, self.burst, self._clock = rate, float(burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, institution: str, cost: float = 1.0) -> None:
        """Spend ``cost`` tokens of ``institution``'s bucket.

        Raises
        ------
        Refusal
            429 with the seconds until enough tokens are back.
        """
        now = self._clock()
        with self._lock:
            tokens, seen = self._buckets.get(institution, (self.burst, now))
            tokens = min(self.burst, tokens + (now - seen) * self.rate)
            if tokens < cost:
                self._buckets[institution] = (tokens, now)
                wait = (cost - tokens) / self.rate
                raise Refusal(429, "rate_limited", "over this institution's request rate; "
                              f"retry after {wait:.2f} s, or ask the operator for a higher "
                              "'[service] rate-limit'.", retry_after_s=wait)
            self._buckets[institution] = (tokens - cost, now)
