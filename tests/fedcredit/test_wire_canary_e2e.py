"""The leak scanner on a real run with planted leaks (issue 17, part 3).

One horizontal simulation on german_credit.csv, recorded at the banks (``--record-wire``'s
recorder); a test-only observer on the coordinator plants every encoding of issue 17's list
(labels as float64/float32/int8/int32/int64/packed bits/text/metrics, in file order, a bank's
own order, ID order and shifted by one row; feature values as float64/float32/text/
standardised; IDs as text with and without separators, UTF-16 and int64) into the first
training request, so they cross the wire and the banks' recorder writes them down. The
scanner must flag every planted record for what it holds, and nothing else in the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.app import Message

from fedcredit.audit_wire.scan import audit_wire
from federation.data.bank_data import bank_data, load_table
from federation.ml.preprocess import Preprocessor, pooled_preprocessor
from federation.run.config import RunConfig
from federation.run.folder import RunFolder
from federation.wire.records import STEP_TRAIN
from server.results import save_model

from .wire_canaries import Canary, all_canaries

pytestmark = pytest.mark.slow


class Planter:
    """Coordinator-side observer: adds the canaries to the first training request."""

    def __init__(self, canaries: list[Canary]) -> None:
        self.canaries, self.planted = canaries, 0

    def __call__(self, direction: str, msg: Message) -> None:
        if (direction == "request" and not self.planted
                and msg.metadata.message_type == STEP_TRAIN.message_type):
            for canary in self.canaries:
                msg.content[canary.record_name] = canary.record
            self.planted = msg.metadata.dst_node_id


def test_every_planted_encoding_is_flagged_in_a_real_run(tmp_path: Path, data_dir: Path) -> None:
    from fedcredit.simulation.horizontal import run_federation

    data = data_dir / "german_credit.csv"
    cfg = RunConfig(data_path=str(data), target="bad", banks=3, rounds=1, out=str(tmp_path))
    own = bank_data(cfg, 0).train  # bank 0's training rows, in the order the bank holds them
    # standardised as the run does (the federated statistics are those of the pooled
    # training rows); the scanner takes the run's own from its preprocessor.json
    pooled = pooled_preprocessor([bank_data(cfg, b).train for b in range(cfg.banks)])
    canaries = all_canaries(own, load_table(cfg), pooled)
    planter = Planter(canaries)
    result = run_federation(cfg, observer=planter, record_wire=RunFolder(tmp_path).wire)
    save_model(tmp_path, result)  # preprocessor.json: the run's standardisation
    assert planter.planted and len(canaries) >= 20
    released = Preprocessor.from_json(RunFolder(tmp_path).preprocessor.read_text())
    assert released.numeric == pooled.numeric

    report = audit_wire(tmp_path, data, target="bad")
    by_record: dict[str, list[str]] = {}
    for finding in report.findings:
        by_record.setdefault(finding.record, []).append(finding.what)
    missed = [c.name for c in canaries
              if not any(c.category in what and not what.startswith("not allowed")
                         for what in by_record.get(c.record_name, []))]
    assert missed == []
    assert all(any(w.startswith("not allowed") for w in by_record[c.record_name])
               for c in canaries)  # and the allow-list knows no such record
    others = {r: w for r, w in by_record.items() if not r.startswith("canary-")}
    assert others == {}  # nothing of the run itself is flagged
