"""The vertical coordinator refuses a batch size that would expose the first batch's labels."""

from __future__ import annotations

import pytest

from federation.run.vertical_config import VerticalConfig
from protocols.vertical_lr.config import min_batch_rows
from server.errors import FederationError
from server.vertical import VerticalResult, VerticalRun


def _run(batch_size: int, center_columns: int) -> VerticalRun:
    run = object.__new__(VerticalRun)  # no grid: start() must refuse before any exchange
    run.cfg = VerticalConfig(batch_size=batch_size)
    run.result = VerticalResult(run_id="r")
    run.result.train_rows = 5000
    run.result.bank_features = [f"b{i}" for i in range(5)]
    run.result.center_features = [f"c{i}" for i in range(center_columns)]
    return run


def test_start_refuses_batches_below_the_knapsack_bound() -> None:
    least = min_batch_rows(5, 17)
    with pytest.raises(FederationError, match=f"at least {least}"):
        _run(least - 1, 17).start({"bank": b"", "center": b""})


def test_secureboost_runs_are_not_held_to_the_lr_batch_bound() -> None:
    run = _run(16, 17)
    run.cfg = VerticalConfig(batch_size=16, model="secureboost")
    with pytest.raises(AttributeError):  # got past the check, to the (absent) grid
        run.start({"bank": b"", "center": b""})


def test_a_batch_larger_than_the_intersection_names_the_option_and_the_largest_value() -> None:
    run = _run(6000, 4)  # 5,000 training rows
    with pytest.raises(FederationError, match="--batch-size between .* and 5000"):
        run.start({"bank": b"", "center": b""})


def test_a_batch_no_intersection_can_fill_is_refused_before_the_psi() -> None:
    run = _run(1024, 4)  # the default batch on a 1,000-row pair
    run.result.bank_rows, run.result.center_rows = 1000, 1200
    with pytest.raises(FederationError, match="use --batch-size 700 or less"):
        run._check_batch_before_psi()
    run.result.bank_rows = run.result.center_rows = 2000  # up to 1,400 training rows: go on
    run._check_batch_before_psi()
