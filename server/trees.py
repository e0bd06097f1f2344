"""Coordinator workflow of a horizontal boosted-tree run (``model = "gbdt"``).

Steps: wait for the banks; the shared preprocessing (schema union, combined sealed stats: the
same steps as FedAvg); the sealed fine counts (bins); then one message per tree level: forward
the combined sealed histograms of the last level and the banks' shared state blob -> every
bank opens the sums, takes the same split decisions and seals its histograms of the next
level -> the coordinator checks that all banks returned the same state blob and combines the
sealed histograms. Each finished tree is audited and checkpointed (a crashed run resumes at the
next tree with the same model). A final step collects the last AUC/KS and, when the run allows
it, the released model.

Trees are grown by one fixed set of banks: the banks that answer the first level of a tree. A
bank missing at a later level of that tree stops the run (its histograms cannot be taken out of
the parents' sums without revealing the difference); a bank missing at a tree's first level
sits that tree out and may rejoin at the next one (``min_banks`` permitting).

Security: the coordinator only combines sealed vectors and compares state blobs. Under
``paillier`` it sees ciphertexts, sealed (AES-SIV) state blobs, tree counts and depths, and the
AUC/KS the banks report; never a histogram, split, row or label. Under ``paillier-secagg``
every sum (stats, bins, each level request's vector) is also SecAgg+-masked
(:mod:`federation.steps.tree_masking`: sessions ``stats:0``, ``counts:0``,
``gradients:<seq>``), so a key-holding bank colluding with the coordinator reads noise from
one bank's ciphertexts, and only the sums open; under ``secagg`` (masking only, opt-in) the
coordinator learns those sums and, from the plain state blobs, the trees. Masked cost: a
full-depth tree of depth ``D`` takes ``3D + 2`` exchanges (per level: the level request, the
survivor-list and the unmask exchange; per ``D`` levels one advertise and one share exchange)
instead of ``D``.
"""

from __future__ import annotations

import time
from typing import Any

from federation.steps.secure_sum import KIND_COUNTS, KIND_GRADIENTS, Sealed
from federation.steps.tree_masking import session_batch
from federation.wire.records import (
    KEY_STATS_SUM,
    METRIC_AUC,
    METRIC_EVAL_ROUND,
    bank_of,
    metrics_of,
    released_histograms_of,
)
from federation.wire.secagg import MAX_SESSIONS, session_name
from federation.wire.trees import (
    KEY_BINS_SUM,
    KEY_LEVEL_SUM,
    METRIC_DEPTH,
    METRIC_GROWING,
    METRIC_TREES_DONE,
    STEP_TREE_BINS,
    STEP_TREE_FINALIZE,
    STEP_TREE_LEVEL,
    add_state,
    release_of,
    state_of,
)
from server.audit import sha256_hex
from server.calibration import FITTED_ON_TRAINING, FITTED_ON_VALIDATION, agreed_calibration
from server.errors import FederationError, RunInterrupted
from server.exchange import StepOutcome
from server.horizontal import HorizontalRun
from server.outcomes import METRIC_TOLERANCE, agreed_metrics, received_hashes
from server.run_state import FederatedResult, RoundRecord


def _agreed(outcome: StepOutcome, seq: int) -> tuple[bytes, dict[str, int]]:
    """The state blob and tree progress every bank returned (all must be identical)."""
    blobs, progress = set(), set()
    for reply in outcome.replies:
        state = state_of(reply.content)
        if state is None or state[1] != seq:
            raise FederationError(f"bank {bank_of(reply.content)} answered request {seq} without "
                                  "its state for that request; it runs another fedcredit version?")
        blobs.add(state[0])
        metrics = metrics_of(reply.content)
        progress.add(tuple(int(metrics.get(k, -1)) for k in (
            METRIC_TREES_DONE, METRIC_GROWING, METRIC_DEPTH)))
    if len(blobs) != 1 or len(progress) != 1:
        raise FederationError(f"the banks returned different tree states for request {seq}; a "
                              "bank or the channel is faulty (they must agree byte for byte).")
    trees, growing, depth = progress.pop()
    return blobs.pop(), {"trees": trees, "growing": growing, "depth": depth}


class TreeRun(HorizontalRun):
    """One boosted-tree run's coordinator state machine (resumable at tree boundaries)."""

    def _record(self, outcome: StepOutcome) -> None:
        """History entry per evaluated tree count (every ``eval_every``-th and the final
        model, in tree order). After early stopping the banks re-score the kept trees: that
        must give the entry already recorded for the count, if one was."""
        st = self.state
        agreed = agreed_metrics(outcome)
        if agreed is None:
            return
        evaluated = [metrics_of(r.content) for r in outcome.replies]
        rounds = {int(m.get(METRIC_EVAL_ROUND, -1)) for m in evaluated if METRIC_AUC in m}
        count = rounds.pop() if len(rounds) == 1 else -1
        if not 1 <= count <= st.rounds_done:
            raise FederationError("the banks scored another number of trees than the run has "
                                  "grown, or different numbers; a bank or the channel is faulty.")
        entry = st.evaluated(count)
        if entry is not None:
            if abs(agreed[0] - entry.auc) > METRIC_TOLERANCE or \
                    abs(agreed[1] - entry.ks) > METRIC_TOLERANCE:
                raise FederationError(f"the banks re-scored the {count} kept trees to another "
                                      "AUC/KS than when those trees were first scored; a bank or "
                                      "the channel is faulty.")
            st.trees_kept = count
            return
        record = RoundRecord(count, agreed[0], agreed[1], st.round_seconds[count - 1],
                             st.round_banks[count - 1])
        st.history = sorted((*st.history, record), key=lambda h: h.round)
        if count < st.rounds_done:  # early stopping cut back to trees never scored before
            st.trees_kept = count
        if self.on_round is not None:
            self.on_round(record)

    def sums(self, **extra: Sealed | None) -> dict[str, Sealed | None]:
        st = self.state
        return {KEY_STATS_SUM: st.stats_sum, KEY_BINS_SUM: st.bins_sum, **extra}

    def bins(self) -> None:
        """Combined sealed fine counts and label sums (masked in session ``counts:0``)."""
        st = self.state
        outcome, st.bins_sum = self._sealed_step(STEP_TREE_BINS, lambda: self.request(0, **{
            KEY_STATS_SUM: st.stats_sum}), KIND_COUNTS, 0)
        self._note(outcome, 0)
        self.audit.append("bins", run_id=st.run_id, received=received_hashes(outcome),
                          bins_hash=sha256_hex(st.bins_sum.payload))

    def _level_request(self, seq: int) -> Any:
        st = self.state
        content = self.request(seq, **self.sums(**{KEY_LEVEL_SUM: st.level_sum}))
        if st.tree_state is not None:
            add_state(content, st.tree_state, st.tree_seq)
        return content

    def _contributors(self, outcome: StepOutcome, progress: dict[str, int]) -> StepOutcome:
        """Fix the tree's banks at its first level; later levels need exactly those banks."""
        st = self.state
        banks = tuple(sorted(bank_of(r.content) for r in outcome.replies))
        if not progress["growing"] or progress["depth"] == 0:
            st.tree_banks = banks
            return outcome
        missing = sorted(set(st.tree_banks) - set(banks))
        if missing:
            tree = progress["trees"] + 1
            raise FederationError(
                f"bank(s) {', '.join(map(str, missing))} dropped out in the middle of tree {tree}; "
                "a tree is grown by one fixed set of banks. Resume the run (--resume) once they "
                f"are back: it restarts tree {tree} from the checkpoint of tree {tree - 1}.")
        kept = [r for r in outcome.replies if bank_of(r.content) in st.tree_banks]
        for r in outcome.replies:
            if bank_of(r.content) not in st.tree_banks:
                outcome.dropped.append({"node": r.metadata.src_node_id, "step": "tree-level",
                                        "reason": "joined in the middle of a tree; takes part "
                                                  "from the next tree"})
        outcome.replies = kept
        return outcome

    def _session(self, seq: int) -> str | None:
        """The masking session of level request ``seq`` (None when the run does not mask),
        opened with the next ones of a batch when it is not open yet: one advertise and one
        share exchange for up to ``depth`` level requests (:mod:`federation.steps.tree_masking`)."""
        if self.masking is None:
            return None
        name = session_name(KIND_GRADIENTS, seq)
        if name not in self.masking.sessions:
            batch = session_batch(seq, self.cfg.depth, MAX_SESSIONS)
            self.masking.open([session_name(KIND_GRADIENTS, s) for s in batch],
                              lambda: self.request(seq, **self.sums()))
        return name

    def level(self) -> tuple[dict[str, int], tuple[int, ...]]:
        """One level request; returns the banks' agreed tree progress and the banks that grew
        the tree in growth before this request (a new tree may start with this reply).
        Masked runs: the request carries the envelopes of session ``gradients:<seq>`` and the
        unmask step of that session follows (the tree's banks are its survivors)."""
        st, seq = self.state, self.state.tree_seq + 1
        grew = st.tree_banks
        name = self._session(seq)
        outcome = self.ex.ask(STEP_TREE_LEVEL, lambda: self._level_request(seq),
                              required=self.cfg.required_banks, sealed_round=seq,
                              extra=None if name is None or self.masking is None
                              else self.masking.envelopes(name))
        blob, progress = _agreed(outcome, seq)
        outcome = self._contributors(outcome, progress)
        if len(outcome.replies) < self.cfg.required_banks:
            raise FederationError(f"tree level {seq}: only {len(outcome.replies)} banks of the "
                                  f"tree usable, {self.cfg.required_banks} required.")
        self._record(outcome)
        st.level_sum = self._combine(outcome, KIND_GRADIENTS, seq)
        if name is not None and self.masking is not None:
            st.level_sum = self.masking.unmask(name, outcome, st.level_sum,
                                               lambda: self.request(seq, **self.sums()),
                                               round_index=seq)
        st.tree_state, st.tree_seq = blob, seq
        self._note(outcome, progress["trees"] + 1)
        return progress, grew

    def _tree_done(self, trees: int, seconds: float, banks: tuple[int, ...]) -> None:
        st = self.state
        st.rounds_done = trees
        st.round_seconds.append(seconds)
        st.round_banks.append(len(banks))
        assert st.level_sum is not None and st.tree_state is not None
        head = self.audit.append(
            "tree", run_id=st.run_id, round=trees, config_hash=self.config_hash,
            banks=list(banks), request_seq=st.tree_seq,
            state_hash=sha256_hex(st.tree_state), level_hash=sha256_hex(st.level_sum.payload))
        if self.on_checkpoint is not None:
            self.on_checkpoint(st, head)
        if self.on_progress is not None:
            self.on_progress(trees)
        if self.cfg.halt_after and trees == self.cfg.halt_after < self.cfg.trees:
            raise RunInterrupted(trees, self.cfg.out)

    def grow(self) -> None:
        """Level requests until every tree is grown (checkpoint after each tree)."""
        started = time.perf_counter()
        while True:
            progress, grew = self.level()
            if progress["trees"] > self.state.rounds_done:
                self._tree_done(progress["trees"], time.perf_counter() - started, grew)
                started = time.perf_counter()
            if not progress["growing"]:
                return

    def finalize(self) -> None:
        """Last AUC/KS and the released model."""
        st, seq = self.state, self.state.tree_seq + 1
        final = self.ex.ask(STEP_TREE_FINALIZE, lambda: self._level_request(seq),
                            required=self.cfg.required_banks)
        self._record(final)
        st.tree_release = release_of(final.replies[0].content)
        st.histograms = released_histograms_of(final.replies[0].content)
        st.calibration = agreed_calibration(final.replies, fitted_on=(
            FITTED_ON_VALIDATION if self.cfg.early_stopping_rounds else FITTED_ON_TRAINING))
        self.audit.append("finalize", run_id=st.run_id, rounds=st.rounds_done,
                          model_released=st.tree_release is not None,
                          final_auc=st.final.auc if st.final else None, trees_kept=st.trees_kept)

    def run(self) -> FederatedResult:
        """Preprocess and bin (unless resumed), grow the remaining trees, finalize."""
        st = self.state
        if st.stats_sum is None:
            self.preprocess()
        if st.bins_sum is None:
            self.bins()
        elif st.tree_state is not None:
            self.audit.append("resume", run_id=st.run_id, from_round=st.rounds_done + 1)
        self.grow()
        self.finalize()
        return st


def run_trees(grid: Any, cfg: Any, **kwargs: Any) -> FederatedResult:
    """The whole boosted-tree run (keyword arguments as for :class:`HorizontalRun`)."""
    return TreeRun(grid, cfg, **kwargs).run()


__all__ = ["TreeRun", "run_trees"]
