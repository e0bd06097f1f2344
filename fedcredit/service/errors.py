"""Named errors of the credit query service.

:class:`ServiceConfigError` and :class:`RegistryError` stop a command with one line (the CLI
prints them, exit 2). :class:`Refusal` is the one error a request handler raises: it becomes a
JSON error body with its HTTP status, and a row in the query log, never a traceback.
"""

from __future__ import annotations

from federation.errors import ConfigError


class ServiceConfigError(ConfigError):
    """A service setting or one of the files it names is missing or invalid."""


class RegistryError(ConfigError):
    """The model registry has no such model or version, or a promoted file is unreadable."""


class Refusal(Exception):  # noqa: N818 (a refusal is an answer, not a failure of the service)
    """A request the service answers with an error status.

    Parameters
    ----------
    status : int
        HTTP status (401, 403, 404, 413, 422, 429, 503, ...).
    cause : str
        Short machine-readable cause (``invalid_uscc``, ``rate_limited``, ...): the metrics'
        refusal label and the log row's outcome.
    message : str
        What to do about it; names the field or rule, never a value the caller sent.
    field : str
        The offending request field (``uscc``, ``rows[3].features.loan_amount``), or "".
    retry_after_s : float or None
        Seconds after which a retry may succeed (429, 503): the ``Retry-After`` header.
    """

    def __init__(self, status: int, cause: str, message: str, *, field: str = "",
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status, self.cause, self.message = status, cause, message
        self.field, self.retry_after_s = field, retry_after_s
