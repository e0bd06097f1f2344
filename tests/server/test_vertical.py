"""The vertical coordinator refuses a batch size that would expose the first batch's labels,
and relays a step's messages with a short poll (issue 14, part 6)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from federation.run.vertical_config import VerticalConfig
from protocols.vertical_lr.config import min_batch_rows
from server.errors import FederationError
from server.vertical import VerticalResult, VerticalRun, relay


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


class _SlowGrid:
    """Replies trickle in over several pulls; one request is never answered."""

    def __init__(self, answered: int) -> None:
        self.answered, self.pulls = answered, 0

    def push_messages(self, messages: list) -> list[str]:
        return [f"m{i}" for i in range(len(messages))]

    def pull_messages(self, ids: set[str]) -> list:
        self.pulls += 1
        ready = sorted(ids)[:1] if self.pulls % 2 == 0 else []  # one every other pull
        return [SimpleNamespace(metadata=SimpleNamespace(reply_to_message_id=i))
                for i in ready if int(i[1:]) < self.answered]


def test_relay_pulls_until_every_reply_is_in() -> None:
    grid, slept = _SlowGrid(answered=3), list[float]()
    replies = relay(grid, [object()] * 3, poll_s=0.01, sleep=slept.append)  # type: ignore[arg-type, list-item]
    assert sorted(r.metadata.reply_to_message_id for r in replies) == ["m0", "m1", "m2"]
    assert grid.pulls == 6 and slept == [0.01] * 5  # no sleep after the last reply


def test_relay_gives_up_at_its_deadline_with_the_replies_so_far() -> None:
    now = iter(range(100))
    replies = relay(_SlowGrid(answered=1), [object()] * 2,  # type: ignore[arg-type, list-item]
                    timeout_s=10.0, poll_s=0.01,
                    clock=lambda: float(next(now)), sleep=lambda _s: None)
    assert [r.metadata.reply_to_message_id for r in replies] == ["m0"]


def test_relay_pulls_less_often_the_longer_a_step_takes() -> None:
    now, slept = iter(float(t) for t in range(100)), list[float]()
    relay(_SlowGrid(answered=0), [object()],  # type: ignore[arg-type, list-item]
          timeout_s=30.0, poll_s=0.01, clock=lambda: next(now), sleep=slept.append)
    assert slept[0] == pytest.approx(0.05) and slept[-1] == 0.25  # 5 % of 1 s, then the cap
    assert len(slept) == 30
