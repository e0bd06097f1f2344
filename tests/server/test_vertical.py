"""The vertical coordinator refuses a batch size that would expose the first batch's labels,
and relays a step's messages with a short poll (issue 14, part 6)."""

from __future__ import annotations

import threading
import time
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


def test_relay_stays_quiet_for_the_time_a_step_always_took() -> None:
    events: list[str] = []

    class Grid(_SlowGrid):
        def pull_messages(self, ids: set[str]) -> list:
            events.append("pull")
            return super().pull_messages(ids)

    replies = relay(Grid(answered=1), [object()], poll_s=0.01,  # type: ignore[arg-type, list-item]
                    quiet_s=0.4, sleep=lambda s: events.append(f"sleep {s}"))
    assert len(replies) == 1
    assert events == ["sleep 0.4", "pull", "sleep 0.01", "pull"]  # no pull in the quiet time


def test_each_step_waits_half_its_shortest_recent_round_trip_before_the_first_pull(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flwr.app import ConfigRecord, RecordDict

    import server.vertical as vertical
    from federation.wire.vertical import KEY_VSTEP, V_ENCRYPT, V_OPEN

    quiet: list[tuple[str, float]] = []
    clock = iter([0.0, 2.0, 10.0, 11.0, 20.0, 24.0, 30.0, 30.5, 40.0, 43.0])

    def fake_relay(grid: object, requests: list, *, timeout_s: float, quiet_s: float,
                   **_: object) -> list:
        quiet.append((requests[0].metadata.message_type, quiet_s))
        return [SimpleNamespace(metadata=SimpleNamespace(src_node_id=r.metadata.dst_node_id),
                                has_error=lambda: False,
                                content=RecordDict({KEY_VSTEP: ConfigRecord({})}))
                for r in requests]

    monkeypatch.setattr(vertical, "relay", fake_relay)
    monkeypatch.setattr(vertical, "Message", lambda content, *, dst_node_id, message_type:
                        SimpleNamespace(content=content, metadata=SimpleNamespace(
                            dst_node_id=dst_node_id, message_type=message_type)))
    monkeypatch.setattr(vertical.time, "monotonic", lambda: next(clock))
    run = _run(512, 4)
    run.grid, run.observer, run.took = None, None, {}  # type: ignore[assignment]
    run.role_node = {"bank": 1, "center": 2}
    asks: dict = {"bank": {}, "center": {}}
    for step in (V_ENCRYPT, V_ENCRYPT, V_ENCRYPT, V_OPEN, V_ENCRYPT):  # took 2, 1, 4, 0.5, 3 s
        assert set(run.exchange(step, asks)) == {"bank", "center"}
    encrypt, opened = V_ENCRYPT.message_type, V_OPEN.message_type
    assert quiet == [(encrypt, 0.0), (encrypt, 1.0), (encrypt, 0.5), (opened, 0.0),
                     (encrypt, 0.5)]  # half the shortest of that step's last three
    assert run.took[encrypt] == [1.0, 4.0, 3.0] and run.took[opened] == [0.5]


class _OneRefusingParty:
    """A grid whose center refuses its stream epoch at once while the bank joins the relay
    and waits for the center's first frame (as a node whose policy lacks the host would)."""

    def __init__(self) -> None:
        self.bank_error: list[BaseException] = []
        self.replies: list[SimpleNamespace] = []
        self.thread: threading.Thread | None = None

    def push_messages(self, messages: list) -> list[str]:
        from clients.peer_link import PeerLink
        from federation.wire.peer_frames import STEP_ENCRYPT
        from federation.wire.vertical import Field, unpack_request

        _, step = unpack_request(messages[0].content)
        # the bank has connected and said hello before the center's refusal comes back
        link = PeerLink("bank", step.blob(Field.SESSION_KEY), step.text(Field.RELAY_HOST),
                        step.int(Field.RELAY_PORT))

        def bank() -> None:
            try:
                with link:
                    link.receive(STEP_ENCRYPT, 0, 0)
            except Exception as exc:  # noqa: BLE001 - kept for the test
                self.bank_error.append(exc)
            self.replies.append(_error_reply("m0", 1, "the bank lost the peer stream"))

        self.thread = threading.Thread(target=bank, daemon=True)
        self.thread.start()
        self.replies.append(_error_reply("m1", 2, "PolicyRefusal: relay host not listed"))
        return ["m0", "m1"]

    def pull_messages(self, ids: set[str]) -> list:
        got, self.replies = self.replies, []
        return got


def _error_reply(reply_to: str, node: int, reason: str) -> SimpleNamespace:
    return SimpleNamespace(has_error=lambda: True, error=SimpleNamespace(reason=reason),
                           metadata=SimpleNamespace(reply_to_message_id=reply_to,
                                                    src_node_id=node), content=None)


def test_a_party_refusing_its_stream_epoch_ends_the_others_wait_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import server.vertical as vertical

    monkeypatch.setattr(vertical, "Message", lambda content, *, dst_node_id, message_type:
                        SimpleNamespace(content=content, metadata=SimpleNamespace(
                            dst_node_id=dst_node_id, message_type=message_type)))
    run = _run(1024, 4)
    run.cfg = VerticalConfig(transport="stream", epochs=1)
    grid = _OneRefusingParty()
    run.grid = grid  # type: ignore[assignment]
    run.role_node, run.took, run.observer = {"bank": 1, "center": 2}, {}, None
    run.on_progress = lambda *_: None
    started = time.monotonic()
    with pytest.raises(FederationError, match="failed step 'train.v_stream'"):
        run.train_streamed(batches=3)
    assert grid.thread is not None
    grid.thread.join(timeout=10)
    assert time.monotonic() - started < 30  # not the relay's 120 s wait for a hello
    assert grid.bank_error and "lost the peer stream" in str(grid.bank_error[0])
