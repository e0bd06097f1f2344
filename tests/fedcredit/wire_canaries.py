"""Test-only canaries: a party's labels, feature values and IDs in every encoding the leak
scanner must flag (issue 17's list), as Flower records ready to plant into a message.

Each canary is one record named ``canary-<name>`` holding one value (key ``v``; an array: ``0``),
together with what the scanner must call it (``labels``, ``feature values`` or ``IDs``).
Nothing here is reachable from the product: tests plant the records into a real run's
messages through the coordinator's observer, or into a synthetic transcript.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord

from federation.data.table import CreditTable
from federation.ml.preprocess import Preprocessor

KEY = "v"
WINDOW = 96  # more than the scanner's 64


@dataclass(frozen=True)
class Canary:
    """One planted record and the category its finding must name."""

    name: str
    category: str
    record: ArrayRecord | ConfigRecord | MetricRecord

    @property
    def record_name(self) -> str:
        return f"canary-{self.name}"


def _array(values: np.ndarray) -> ArrayRecord:
    return ArrayRecord([values])  # Flower names the one array "0"


def _config(value: object) -> ConfigRecord:
    return ConfigRecord({KEY: value})  # type: ignore[dict-item]


def id_order(table: CreditTable) -> CreditTable:
    assert table.ids is not None
    return table.subset(np.argsort(table.ids, kind="stable"))


def distinctive_column(table: CreditTable) -> np.ndarray:
    """The numeric column with the most distinct values, its first WINDOW cells."""
    name = max(table.numeric.columns, key=lambda c: table.numeric[c].nunique())
    values = table.numeric[name].dropna().to_numpy(dtype=np.float64)
    return values[:WINDOW]


def label_canaries(own: CreditTable, file_order: CreditTable) -> list[Canary]:
    y = own.y[:WINDOW].astype(np.int64)
    shifted = own.y[1:WINDOW + 1].astype(np.int64)
    by_id = id_order(own).y[:WINDOW].astype(np.int64) if own.ids is not None else y
    text = ",".join(str(int(v)) for v in y)
    return [
        Canary("labels-f64-array", "labels", _array(y.astype(np.float64))),
        Canary("labels-f32-array-file-order", "labels",
               _array(file_order.y[:WINDOW].astype(np.float32))),
        Canary("labels-id-order-f64-bytes", "labels", _config(by_id.astype("<f8").tobytes())),
        Canary("labels-shifted-f64-array", "labels", _array(shifted.astype(np.float64))),
        Canary("labels-int8-bytes", "labels", _config(y.astype(np.int8).tobytes())),
        Canary("labels-f32-bytes", "labels", _config(y.astype("<f4").tobytes())),
        Canary("labels-int64-bytes", "labels", _config(y.astype("<i8").tobytes())),
        Canary("labels-int32-bytes", "labels", _config(y.astype("<i4").tobytes())),
        Canary("labels-packed-bits", "labels", _config(np.packbits(y.astype(np.uint8)).tobytes())),
        Canary("labels-text", "labels", _config(text)),
        Canary("labels-bit-string", "labels", _config("".join(str(int(v)) for v in y))),
        Canary("labels-metric-floats", "labels",
               MetricRecord({KEY: [float(v) for v in y]})),
        Canary("labels-metric-ints", "labels", MetricRecord({KEY: [int(v) for v in y]})),
    ]


def feature_canaries(own: CreditTable, prep: Preprocessor | None) -> list[Canary]:
    values = distinctive_column(own)
    out = [
        Canary("features-f64-array", "feature values", _array(values)),
        Canary("features-f32-bytes", "feature values", _config(values.astype("<f4").tobytes())),
        Canary("features-repr-text", "feature values",
               _config(", ".join(repr(float(v)) for v in values))),
        Canary("features-0-decimals-text", "feature values",
               _config(" ".join(f"{v:.0f}" for v in values))),
        Canary("features-3-decimals-text", "feature values",
               _config(";".join(f"{v:.3f}" for v in values))),
    ]
    if prep is not None:
        z = prep.transform(own)[:WINDOW, :len(prep.numeric)].ravel()  # model input, float32
        out.append(Canary("features-standardised-f32-array", "feature values", _array(z)))
    return out


def id_canaries(own: CreditTable) -> list[Canary]:
    assert own.ids is not None
    ids = [str(v) for v in own.ids[:WINDOW]]
    out = [
        Canary("ids-utf8-separated", "IDs", _config(",".join(ids))),
        Canary("ids-utf8-no-separator", "IDs", _config("".join(ids))),
        Canary("ids-utf16", "IDs", _config(",".join(ids).encode("utf-16-le"))),
    ]
    if all(i.isdigit() for i in ids):
        out.append(Canary("ids-int64-array", "IDs",
                          _array(np.asarray([int(i) for i in ids], dtype=np.int64))))
    return out


def all_canaries(own: CreditTable, file_order: CreditTable,
                 prep: Preprocessor | None) -> list[Canary]:
    """Every encoding of issue 17's list, for the party whose rows ``own`` holds in its order."""
    return label_canaries(own, file_order) + feature_canaries(own, prep) + id_canaries(own)
