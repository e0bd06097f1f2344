"""The tree coordinator's admission rules: banks must agree on the state, and a tree is grown by
one fixed set of banks (a bank lost mid-tree stops the run; a late joiner waits a tree)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from federation.wire.records import reply_content
from federation.wire.trees import add_state
from server.errors import FederationError
from server.exchange import StepOutcome
from server.run_state import FederatedResult
from server.trees import TreeRun, _agreed


def _reply(bank: int, *, seq: int = 4, blob: bytes = b"state", trees: int = 1, growing: int = 1,
           depth: int = 1):
    content = reply_content(bank=bank, n_examples=10, metrics={
        "trees-done": trees, "growing": growing, "depth": depth, "parties": 3})
    add_state(content, blob, seq)
    return SimpleNamespace(content=content, metadata=SimpleNamespace(src_node_id=100 + bank))


def _run(tree_banks: tuple[int, ...]) -> TreeRun:
    run = TreeRun.__new__(TreeRun)  # the admission rules need only the state
    run.state = FederatedResult(run_id="r", tree_banks=tree_banks)
    return run


def test_banks_agreeing_on_the_state_pass() -> None:
    blob, progress = _agreed(StepOutcome([_reply(0), _reply(1)]), 4)
    assert blob == b"state" and progress == {"trees": 1, "growing": 1, "depth": 1}


@pytest.mark.parametrize("odd", [{"blob": b"other"}, {"trees": 2}, {"depth": 2}, {"seq": 3}])
def test_a_bank_with_another_state_stops_the_run(odd: dict) -> None:
    with pytest.raises(FederationError):
        _agreed(StepOutcome([_reply(0), _reply(1, **odd)]), 4)


def test_a_bank_lost_in_the_middle_of_a_tree_stops_the_run_naming_it() -> None:
    run = _run((0, 1, 2))
    outcome = StepOutcome([_reply(0), _reply(2)])
    with pytest.raises(FederationError, match=r"bank\(s\) 1 dropped out in the middle of tree 2"):
        run._contributors(outcome, {"trees": 1, "growing": 1, "depth": 2})


def test_a_bank_joining_in_the_middle_of_a_tree_waits_for_the_next() -> None:
    run = _run((0, 1))
    outcome = run._contributors(StepOutcome([_reply(0), _reply(1), _reply(2)]),
                                {"trees": 1, "growing": 1, "depth": 2})
    assert [r.metadata.src_node_id for r in outcome.replies] == [100, 101]
    assert outcome.dropped[0]["node"] == 102 and "next tree" in outcome.dropped[0]["reason"]


def test_a_new_tree_takes_the_banks_that_answer_its_first_level() -> None:
    run = _run((0, 1, 2))
    run._contributors(StepOutcome([_reply(0), _reply(2)]), {"trees": 2, "growing": 1, "depth": 0})
    assert run.state.tree_banks == (0, 2)


def test_the_checkpoint_keeps_the_tree_state(tmp_path) -> None:
    import numpy as np

    from federation.run.config import RunConfig
    from federation.steps.secure_sum import KIND_COUNTS, KIND_GRADIENTS, PlainSum
    from server.checkpoint import load_checkpoint, save_checkpoint

    cfg = RunConfig(model="gbdt", trees=4, out=str(tmp_path))
    plain = PlainSum()
    state = FederatedResult(
        run_id="r", bins_sum=plain.seal(np.arange(4.0), kind=KIND_COUNTS, run_id="r", round=0),
        level_sum=plain.seal(np.array([0.5, -0.25]), kind=KIND_GRADIENTS, run_id="r", round=7),
        tree_state=b"\x81{}", tree_seq=7, tree_banks=(0, 2), rounds_done=2)
    save_checkpoint(tmp_path, cfg, state, "head")
    loaded_cfg, loaded, head = load_checkpoint(tmp_path)
    assert loaded_cfg == cfg and head == "head"
    assert (loaded.bins_sum, loaded.level_sum) == (state.bins_sum, state.level_sum)
    assert (loaded.tree_state, loaded.tree_seq, loaded.tree_banks) == (b"\x81{}", 7, (0, 2))


def test_a_checkpoint_from_before_the_stopping_metric_keeps_stopping_on_the_log_loss(
        tmp_path) -> None:
    import json

    from federation.run.config import RunConfig
    from federation.run.folder import RunFolder
    from server.checkpoint import load_checkpoint, save_checkpoint

    cfg = RunConfig(model="gbdt", trees=4, early_stopping_rounds=2, out=str(tmp_path))
    save_checkpoint(tmp_path, cfg, FederatedResult(run_id="r"), "head")
    assert load_checkpoint(tmp_path)[0].early_stopping_metric == "auc"
    path = RunFolder(tmp_path).checkpoint
    doc = json.loads(path.read_text())
    del doc["config"]["early-stopping-metric"]  # as the previous release wrote it
    path.write_text(json.dumps(doc))
    assert load_checkpoint(tmp_path)[0].early_stopping_metric == "logloss"


class _Sessions:
    """The coordinator's masking sessions, recording which names each opening exchange named."""

    def __init__(self) -> None:
        self.sessions: dict[str, object] = {}
        self.opened: list[list[str]] = []

    def open(self, names: list[str], contents: object) -> None:
        self.opened.append(list(names))
        self.sessions.update(dict.fromkeys(names))


def test_masked_level_sessions_open_a_tree_depth_at_a_time() -> None:
    run = _run(())
    run.cfg = SimpleNamespace(depth=3)
    run.masking = None
    assert run._session(1) is None  # an unmasked run opens nothing
    run.masking = _Sessions()  # type: ignore[assignment]
    for seq in range(1, 8):
        name = run._session(seq)
        assert name == f"gradients:{seq}"
        run.masking.sessions.pop(name)  # unmasked after its level, as CoordinatorMasking does
    assert run.masking.opened == [[f"gradients:{s}" for s in range(first, first + 3)]
                                  for first in (1, 4, 7)]  # one advertise+share per 3 levels
