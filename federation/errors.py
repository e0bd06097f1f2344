"""Named errors of the shared domain layer (data, configuration).

Messages name the file, column, row or setting and say what to do.
"""

from __future__ import annotations

from protocols.errors import FedCreditError


class DataError(FedCreditError):
    """An input data file is unusable: missing, empty, malformed, or with bad values."""


class SchemaError(DataError):
    """A file's columns do not match what the run or model expects."""


class InvalidCreditCodeError(DataError):
    """A unified social credit code (GB 32100-2015) is malformed or fails its check characters."""


class ConfigError(FedCreditError):
    """A run or node setting is missing or has an invalid value."""


class RunFolderError(DataError):
    """A run folder is missing, incomplete or unreadable."""


class ResultsFormatError(RunFolderError):
    """A run's ``results.json`` does not hold what its schema says.

    ``path`` is the file and ``field`` the dotted path of the offending value inside it
    (``local_only.per_bank[2].auc``; empty for the document itself).
    """

    def __init__(self, message: str, *, path: str = "", field: str = "") -> None:
        super().__init__(message)
        self.path, self.field = path, field
