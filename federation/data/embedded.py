"""The public data sets shipped inside the package: names, files, export.

fedcredit carries two CC BY 4.0 credit data sets as gzip-compressed package data
(``federation/data/datasets/``, attribution in its ``README.md``), so that the demo runs from
a fresh clone or an installed wheel with nothing beside it. Wherever a data file is expected,
the name ``uci`` or ``german`` stands for the embedded copy: :func:`embedded_file` maps a name
to the packaged ``.csv.gz`` (the loader reads gzip directly); nothing is ever downloaded.

A value is taken as a name only when it is exactly one of :data:`EMBEDDED_DATASETS`' keys
(``uci``, ``german``); a file that happens to be called ``uci`` is reached by a path with a
folder (``data/uci``, ``/abs/uci``).
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import distributions
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pandas as pd

from federation.errors import DataError

PACKAGE = "federation.data.datasets"
"""The package that holds the ``.csv.gz`` files and their attribution ``README.md``."""
DISTRIBUTION = "fedcredit"
GZIP_MAGIC = b"\x1f\x8b"


class UnknownDatasetError(DataError):
    """A data set name that is not one of the embedded data sets."""


@dataclass(frozen=True, slots=True)
class EmbeddedDataset:
    """One data set shipped with the package.

    Attributes
    ----------
    name : str
        What ``--data`` accepts (``uci``).
    file : str
        The gzip-compressed CSV in :data:`PACKAGE`.
    target : str
        The 0/1 target column (1 = bad).
    id_col : str
        The entity key column.
    title : str
        Source and authors, for listings (full attribution in the package's ``README.md``).
    licence : str
        SPDX identifier of the data set's licence.
    """

    name: str
    file: str
    target: str
    id_col: str
    title: str
    licence: str = "CC-BY-4.0"

    @property
    def csv_name(self) -> str:
        """The plain CSV's file name (``uci_default_credit.csv``)."""
        return self.file.removesuffix(".gz")


EMBEDDED_DATASETS: dict[str, EmbeddedDataset] = {
    d.name: d for d in (
        EmbeddedDataset("uci", "uci_default_credit.csv.gz", "default_next_month", "ID",
                        "Default of credit card clients, Yeh & Lien (2009), UCI"),
        EmbeddedDataset("german", "german_credit.csv.gz", "bad", "ID",
                        "Statlog (German Credit Data), Hofmann (1994), UCI"),
    )
}
"""The embedded data sets by name, in listing order."""


def find_embedded(value: str | Path) -> EmbeddedDataset | None:
    """The embedded data set ``value`` names, or None when it is not one of the names."""
    return EMBEDDED_DATASETS.get(str(value))


def embedded_dataset(name: str) -> EmbeddedDataset:
    """The embedded data set called ``name``.

    Raises
    ------
    UnknownDatasetError
        ``name`` is not an embedded data set (the message lists the names).
    """
    found = find_embedded(name)
    if found is None:
        raise UnknownDatasetError(f"no embedded data set '{name}'; the embedded data sets are "
                                  f"{known_names()} (see `fedcredit datasets`).")
    return found


def target_for(data: str | Path, target: str, *, default: str) -> str:
    """The target column to use: ``target``, except that an embedded data set given with the
    ``default`` target (the one the options start at) uses its own target column.

    ``target_for("german", "default_next_month", default="default_next_month")`` is ``"bad"``:
    ``--data german`` alone works, and an explicit other ``--target`` is kept.
    """
    dataset = find_embedded(data)
    return dataset.target if dataset is not None and target == default else target


def known_names() -> str:
    """The embedded names, comma separated (for messages)."""
    return ", ".join(EMBEDDED_DATASETS)


def embedded_file(dataset: EmbeddedDataset) -> Path:
    """The packaged ``.csv.gz`` of ``dataset`` on disk.

    Looked up beside this package first; then, for a copy of the code that lacks the package
    data (Flower's app bundle holds only ``.py``/``.toml``/``.md``-like files and is put first
    on ``sys.path`` of ``flwr run``), in each installed ``fedcredit`` distribution, in its
    source folder (an editable or ``pip install .`` install, from ``direct_url.json``) and in
    every ``sys.path`` folder.

    Raises
    ------
    DataError
        The file is in none of those places (a build that dropped the package data).
    """
    for path in _candidate_files(dataset.file):
        if path.is_file():
            return path
    raise DataError(f"embedded data set '{dataset.name}': {dataset.file} is missing from this "
                    "installation; reinstall fedcredit (pip install .) or pass --data PATH.")


def _candidate_files(name: str) -> Iterator[Path]:
    """Where the packaged file ``name`` may be, most likely first."""
    yield Path(str(files(PACKAGE))) / name
    relative = Path(*PACKAGE.split("."), name)
    for dist in distributions(name=DISTRIBUTION):  # each installed copy (a runtime env's too)
        yield Path(str(dist.locate_file(relative)))
        source = _source_folder(dist.read_text("direct_url.json"))
        if source is not None:
            yield source / relative
    yield from (Path(entry) / relative for entry in sys.path if entry)


def _source_folder(direct_url: str | None) -> Path | None:
    """The local folder a distribution was installed from (PEP 610), if it was one."""
    try:
        url = urlparse(json.loads(direct_url or "{}").get("url", ""))
    except (json.JSONDecodeError, AttributeError):
        return None
    return Path(url2pathname(url.path)) if url.scheme == "file" else None


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """What ``fedcredit datasets`` lists of one embedded data set (measured from its file)."""

    dataset: EmbeddedDataset
    rows: int
    columns: int
    bad_rate: float


def summarize(dataset: EmbeddedDataset) -> DatasetSummary:
    """Rows, columns and bad rate of an embedded data set, read from its packaged file."""
    frame = pd.read_csv(embedded_file(dataset), dtype=str)
    bad = pd.to_numeric(frame[dataset.target]).to_numpy()
    return DatasetSummary(dataset, rows=int(frame.shape[0]), columns=int(frame.shape[1]),
                          bad_rate=float(np.mean(bad == 1)))


def read_bytes(path: Path) -> bytes:
    """A file's bytes, decompressed in memory when it is gzip (any ``.csv.gz`` reads as CSV)."""
    raw = path.read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable gzip file ({exc}).") from exc
    return raw


def source_name(path: Path) -> str:
    """How messages and tables name a data file: the embedded name for a packaged file."""
    for dataset in EMBEDDED_DATASETS.values():
        if path.name == dataset.file and path.parent.parts[-3:] == tuple(PACKAGE.split(".")):
            return dataset.name
    return str(path)


def export_dataset(name: str, path: str | Path) -> Path:
    """Write embedded data set ``name`` as a plain CSV to ``path`` (a folder: its CSV name).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    UnknownDatasetError
        ``name`` is not an embedded data set.
    DataError
        The target's folder does not exist.
    """
    dataset = embedded_dataset(name)
    target = Path(path)
    if target.is_dir():
        target = target / dataset.csv_name
    if not target.parent.is_dir():
        raise DataError(f"{target.parent}: no such folder; create it or export somewhere else.")
    target.write_bytes(read_bytes(embedded_file(dataset)))
    return target
