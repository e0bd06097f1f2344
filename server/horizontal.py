"""Coordinator workflow of a horizontal run over Flower's Grid (Message API).

Steps: wait for the banks; federated preprocessing (schema union, then combined sealed stats);
then per round ``r + 1``, one exchange: forward the combined sealed model of round ``r`` ->
banks open it, score their test rows with it and seal score histograms (from the second round
on: round ``r``'s evaluation), train locally and seal ``[(n_k/N) w_k, n_k/N]``, each vector
signed for its own step and round -> the coordinator combines both. The combined histograms
come back to the banks with the next request, and every bank reports the same global AUC/KS
(so metrics trail training by one exchange more than the model). After the last round its
model is scored in a step of its own; a final step collects the last AUC/KS and, if the run
allows it, the released model. Under SecAgg+ the two sums of an exchange are two sessions
that share the survivor-list and unmask exchanges (:mod:`server.masking`): 3 exchanges a
round, 1 without masking.

Partial participation (``fraction-fit`` < 1, :mod:`server.participation`): each round's train
request goes to a seeded sample of the banks, and its evaluation, a step of its own after
training, to those that trained (the last round's to every bank); the audit's round record
and the history name them.

Reliability: a step goes on when at least ``min_banks`` banks answer in time with a valid,
signed, fresh update; the others are recorded. After every round the coordinator appends a
hash-chained audit record and writes a checkpoint, so a crashed run resumes where it stopped.

Security: the coordinator only combines sealed vectors. Under ``paillier`` it holds the public
key alone and sees ciphertexts, category names and the global AUC/KS; never a row or a label.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from flwr.serverapp import Grid

from federation.ml.preprocess import merge_schemas
from federation.run.config import RunConfig
from federation.run.key_store import require_signing_registry
from federation.steps.horizontal_bank import score_count_bound
from federation.steps.secure_sum import (
    KIND_COUNTS,
    KIND_STATS,
    KIND_WEIGHTS,
    Sealed,
    coordinator_summation,
    summation_scheme,
)
from federation.wire.message_types import MessageType
from federation.wire.records import (
    KEY_HIST_SUM,
    KEY_SEALED,
    KEY_SEALED_EVAL,
    KEY_STATS_SUM,
    KEY_WEIGHTS_SUM,
    METRIC_EXAMPLES,
    STEP_EVALUATE,
    STEP_FINALIZE,
    STEP_SCHEMA,
    STEP_STATS,
    STEP_TRAIN,
    bank_of,
    metrics_of,
    release_of,
    released_histograms_of,
    released_training_scores_of,
    request_content,
    schema_of,
    sealed_of,
    with_rows,
)
from federation.wire.secagg import session_name
from protocols.errors import MalformedMessageError
from server.audit import AuditLog, sha256_hex
from server.calibration import agreed_calibration
from server.errors import RunInterrupted
from server.exchange import Exchange, Observer, StepOutcome
from server.masking import CoordinatorMasking, MaskedSum
from server.outcomes import agreed_metrics, received_hashes
from server.participation import Participation, sample_banks
from server.roster import RESUME_GRACE_S, load_roster, wait_for_banks
from server.run_state import FederatedResult, RoundRecord, config_hash


class HorizontalRun:
    """One run's coordinator state machine (resumable from a checkpointed state)."""

    def __init__(self, grid: Grid, cfg: RunConfig, *, state: FederatedResult | None = None,
                 on_round: Callable[[RoundRecord], None] | None = None,
                 on_checkpoint: Callable[[FederatedResult, str], None] | None = None,
                 audit_dir: str | Path | None = None, observer: Observer | None = None,
                 on_progress: Callable[[int], None] | None = None) -> None:
        self.cfg, self.on_round, self.on_checkpoint = cfg, on_round, on_checkpoint
        self.on_progress = on_progress
        """Called with the rounds (trees) done after each one, evaluated or not."""
        self.state = state or FederatedResult(run_id=secrets.token_hex(8))
        self.combiner = coordinator_summation(cfg)
        registry = require_signing_registry(cfg.keys_dir)  # before waiting: no run without it
        nodes = wait_for_banks(grid, cfg.banks, roster=load_roster(cfg.keys_dir),
                               required=cfg.required_banks,  # the rest may drop out
                               grace_s=RESUME_GRACE_S if state is not None else None)
        self.ex = Exchange(grid, nodes,
                           run_id=self.state.run_id,
                           key_fingerprint=self.combiner.key_fingerprint,
                           registry=registry, timeout_s=cfg.round_timeout, observer=observer)
        self.audit = AuditLog(audit_dir or cfg.out)
        self.config_hash = config_hash(cfg)
        self.bank_nodes: dict[int, int] = {}
        """Bank -> Flower node, learnt from the banks' replies (to send a sample its requests)."""
        self.masking = (CoordinatorMasking(self.ex, cfg, self.combiner, run_id=self.state.run_id)
                        if summation_scheme(cfg.aggregation).masked else None)

    def request(self, round_index: int, **sums: Sealed | None) -> Any:
        """A request of ``round_index`` carrying the given combined sums (None: left out)."""
        return self.scoring_request(round_index, sums)

    def scoring_request(self, round_index: int, sums: dict[str, Sealed | None], *,
                        evaluate: bool = False) -> Any:
        """:meth:`request`; ``evaluate``: a train request that also asks the banks to score
        the model it carries."""
        present = {k: v for k, v in sums.items() if v is not None}
        content = request_content(self.cfg, run_id=self.state.run_id, round_index=round_index,
                                  layout=self.state.layout, sums=present,
                                  audit=self.audit.announced(self.state.run_id),
                                  evaluate=evaluate,
                                  hist_round=(self.state.hist_round
                                              if KEY_HIST_SUM in present else None))
        if KEY_WEIGHTS_SUM in present and self.state.weights_rows:
            with_rows(content, total=sum(self.state.train_rows.values()),
                      in_sum=self.state.weights_rows)
        return content

    def _combine(self, outcome: StepOutcome, kind: str, round_index: int, *,
                 most: int | None = None, key: str = KEY_SEALED) -> Sealed:
        sealed = []
        for r in outcome.replies:
            one = sealed_of(r.content, key)
            if one is None:  # the exchange admits sealed steps' replies only with their vector
                raise MalformedMessageError(f"bank {bank_of(r.content)}'s reply lacks its "
                                            "sealed vector.")
            sealed.append(one)
        return self.combiner.combine(sealed, kind=kind, length=None, run_id=self.state.run_id,
                                     round=round_index, most=most)

    def _sealed_step(self, step: MessageType, contents: Callable[[], Any], kind: str,
                     sealed_round: int, *, only: set[int] | None = None,
                     required: int | None = None, open_next: tuple[str, ...] = (),
                     most: int | None = None) -> tuple[StepOutcome, Sealed]:
        """Ask a sealed step (of the nodes in ``only``, default all; ``required`` replies,
        default the run's) and combine the admitted vectors; under a masked scheme the
        session's envelopes travel with the request and the unmask step follows (opening
        the ``open_next`` sessions on the way, :meth:`CoordinatorMasking.unmask`); ``most``:
        the public bound the banks packed ``counts`` under, if any."""
        need = self.cfg.required_banks if required is None else required
        if self.masking is None:
            outcome = self.ex.ask(step, contents, required=need, sealed_round=sealed_round,
                                  only=only)
            return outcome, self._combine(outcome, kind, sealed_round, most=most)
        name = session_name(kind, sealed_round)
        if name not in self.masking.sessions:
            self.masking.open([name], contents)
        outcome = self.ex.ask(step, contents, required=need, sealed_round=sealed_round,
                              extra=self.masking.envelopes(name), only=only)
        total = self._combine(outcome, kind, sealed_round, most=most)
        return outcome, self.masking.unmask(name, outcome, total, contents,
                                            round_index=sealed_round, open_next=open_next,
                                            most=most)

    @staticmethod
    def _round_sessions(round_number: int) -> tuple[str, str]:
        """The masking sessions of a round: its update sum and its score histograms."""
        return session_name(KIND_WEIGHTS, round_number), session_name(KIND_COUNTS, round_number)

    def _note(self, outcome: StepOutcome, round_number: int) -> None:
        for item in outcome.dropped + outcome.rejected:
            self.state.dropouts.append({"round": round_number, **item})

    def preprocess(self) -> None:
        """Schema union, then combined sealed stats."""
        st, need = self.state, self.cfg.required_banks
        schema = self.ex.ask(STEP_SCHEMA, lambda: self.request(0), required=need)
        st.layout = merge_schemas([schema_of(r.content) for r in schema.replies])
        self._learn_nodes(schema)
        stats, stats_sum = self._sealed_step(STEP_STATS, lambda: self.request(0), KIND_STATS, 0)
        st.train_rows = {bank_of(r.content): int(metrics_of(r.content)[METRIC_EXAMPLES])
                         for r in stats.replies}
        st.stats_sum = stats_sum
        self._note(schema, 0)
        self._note(stats, 0)
        self.audit.append("preprocess", run_id=st.run_id, config_hash=self.config_hash,
                          banks=sorted(st.train_rows), received=received_hashes(stats),
                          stats_hash=sha256_hex(st.stats_sum.payload))

    def _learn_nodes(self, outcome: StepOutcome) -> None:
        for reply in outcome.replies:
            self.bank_nodes[bank_of(reply.content)] = reply.metadata.src_node_id

    def _sample(self, round_number: int) -> tuple[tuple[int, ...], set[int] | None]:
        """The round's sampled banks and their nodes (None: every node, as F = 1 asks)."""
        sampled = sample_banks(self.cfg, round_number)
        if len(sampled) == self.cfg.banks:
            return sampled, None
        if not self.bank_nodes:  # resumed: learn the nodes' banks again (an unsealed step)
            self._learn_nodes(self.ex.ask(STEP_SCHEMA, lambda: self.request(0),
                                          required=self.cfg.required_banks))
        for bank in sampled:
            if bank not in self.bank_nodes:
                self.state.dropouts.append({"round": round_number, "bank": bank,
                                            "step": STEP_TRAIN.message_type,
                                            "reason": "sampled, but its node never answered"})
        return sampled, {self.bank_nodes[b] for b in sampled if b in self.bank_nodes}

    def _evaluated_nodes(self, train: StepOutcome, sampled_nodes: set[int] | None,
                         rnd: int) -> set[int]:
        """Nodes asked to evaluate: those that trained, plus in the last round of a sampled
        run every bank not sampled (the reported AUC/KS is then on every bank's test rows)."""
        trained = {r.metadata.src_node_id for r in train.replies}
        if sampled_nodes is None or rnd + 1 < self.cfg.rounds_planned:
            return trained
        return trained | (set(self.ex.nodes) - sampled_nodes)

    def one_round(self, rnd: int) -> None:
        """Round ``rnd + 1``: train and combine, scoring round ``rnd``'s model in the same
        exchange (:meth:`_train_and_score`; apart, after training, when banks are sampled:
        :meth:`_train_then_score`); record the metrics the replies report; audit;
        checkpoint."""
        st = self.state
        started = time.perf_counter()
        sampled, sampled_nodes = self._sample(rnd + 1)
        if self.merged:
            train, scored = self._train_and_score(rnd)
            evaluate = train if scored is not None else None
            eval_key = KEY_SEALED_EVAL
        else:
            train, evaluate = self._train_then_score(rnd, sampled_nodes)
            scored, eval_key = rnd + 1, KEY_SEALED
        st.rounds_done = rnd + 1
        st.round_seconds.append(time.perf_counter() - started)
        st.round_banks.append(len(train.replies))
        st.participation.append(Participation(
            sampled=sampled, trained=tuple(bank_of(r.content) for r in train.replies),
            evaluated=()))
        evaluated = self._scored_by(scored, evaluate)
        self._note(train, rnd + 1)
        if evaluate is not None and evaluate is not train:
            self._note(evaluate, rnd + 1)
        outcomes = [train] + ([evaluate] if evaluate is not None and evaluate is not train
                              else [])
        head = self.audit.append(
            "round", run_id=st.run_id, round=rnd + 1, config_hash=self.config_hash,
            sampled=list(sampled), banks=list(st.participation[-1].trained),
            evaluated=list(evaluated), evaluated_round=scored if evaluate is not None else None,
            nodes=sorted(r.metadata.src_node_id for r in train.replies),
            received={"train": received_hashes(train),
                      "evaluate": received_hashes(evaluate, eval_key) if evaluate else {}},
            dropped=[d for o in outcomes for d in o.dropped],
            rejected=[d for o in outcomes for d in o.rejected],
            model_hash=sha256_hex(st.weights_sum.payload) if st.weights_sum else None,
            histogram_hash=(sha256_hex(st.hist_sum.payload)
                            if evaluate is not None and st.hist_sum else None))
        if self.on_checkpoint is not None:
            self.on_checkpoint(st, head)
        if self.on_progress is not None:
            self.on_progress(st.rounds_done)
        if self.cfg.halt_after and st.rounds_done == self.cfg.halt_after < self.cfg.rounds_planned:
            raise RunInterrupted(st.rounds_done, self.cfg.out)

    @property
    def merged(self) -> bool:
        """Every bank takes part in every round, so one exchange trains round ``r + 1`` and
        scores round ``r``'s model (both need only that model); with sampled banks the
        evaluation asks the round's trainers after training, as a step of its own."""
        return self.cfg.sampled_banks >= self.cfg.banks

    def _scored_by(self, scored: int | None,
                   outcome: StepOutcome | None) -> tuple[int, ...]:
        """Record who scored round ``scored``'s model (its participation entry)."""
        if scored is None or outcome is None:
            return ()
        who = tuple(bank_of(r.content) for r in outcome.replies)
        st = self.state
        st.participation[scored - 1] = replace(st.participation[scored - 1], evaluated=who)
        return who

    def _unreported_hist(self) -> Sealed | None:
        """The combined score histograms, when the banks have not reported their AUC/KS yet
        (a request carries them once for that; finalize again for the release)."""
        st = self.state
        reported = st.history[-1].round if st.history else 0
        return st.hist_sum if st.hist_round > reported else None

    def _train_and_score(self, rnd: int) -> tuple[StepOutcome, int | None]:
        """One exchange: every bank opens round ``rnd``'s model, seals its score histograms of
        it (when not scored yet: from the second round on) and its update of round ``rnd + 1``,
        each signed for its own step and round. Under masking the two sums are two sessions
        that share the survivor-list and unmask exchanges, and the next round's sessions ride
        on them: 3 exchanges a round. Returns the outcome and the round scored (None)."""
        st = self.state
        scoring = rnd if st.hist_round < rnd else None
        names = [session_name(KIND_WEIGHTS, rnd + 1)]
        if scoring is not None:
            names.append(session_name(KIND_COUNTS, scoring))

        def contents() -> Any:
            return self.scoring_request(rnd, {
                KEY_STATS_SUM: st.stats_sum, KEY_WEIGHTS_SUM: st.weights_sum,
                KEY_HIST_SUM: self._unreported_hist()}, evaluate=scoring is not None)

        def light() -> Any:
            return self._stats_request(rnd)

        extra = None
        if self.masking is not None:
            missing = [name for name in names if name not in self.masking.sessions]
            if missing:  # the first round, or a resumed run's
                self.masking.open(missing, light)
            extra = self.masking.envelopes(*names)
        outcome = self.ex.ask(STEP_TRAIN, contents, required=self.cfg.required_banks,
                              sealed_round=rnd + 1, extra=extra,
                              evaluation=(STEP_EVALUATE, scoring) if scoring is not None
                              else None)
        self._record(outcome)
        self._learn_nodes(outcome)
        sums = [MaskedSum(names[0], self._combine(outcome, KIND_WEIGHTS, rnd + 1), rnd + 1)]
        if scoring is not None:
            most = self._score_bound()
            sums.append(MaskedSum(names[1], self._combine(
                outcome, KIND_COUNTS, scoring, key=KEY_SEALED_EVAL, most=most), scoring, most))
        if self.masking is not None:
            opened = self.masking.unmask_all(sums, outcome, light,
                                             open_next=self._next_sessions(rnd + 1))
        else:
            opened = [one.total for one in sums]
        st.weights_sum = opened[0]
        st.weights_rows = sum(st.train_rows.get(bank_of(r.content), 0) for r in outcome.replies)
        if scoring is not None:
            st.hist_sum, st.hist_round = opened[1], scoring
        return outcome, scoring

    def _stats_request(self, round_index: int) -> Any:
        """A request carrying the combined statistics only: what the masking exchanges need
        (a session's length follows from the preprocessing)."""
        return self.request(round_index, **{KEY_STATS_SUM: self.state.stats_sum})

    def _score_bound(self) -> int | None:
        """The public bound the banks pack their score counts under
        (:func:`score_count_bound` of the reported training rows)."""
        return score_count_bound(self.cfg, sum(self.state.train_rows.values()))

    def _next_sessions(self, done: int) -> tuple[str, ...]:
        """The sessions of the exchange after round ``done``: the next round's update and
        round ``done``'s scores, or after the last round its scores alone."""
        if done < self.cfg.rounds_planned:
            return self._round_sessions(done + 1)[0], session_name(KIND_COUNTS, done)
        return (session_name(KIND_COUNTS, done),)

    def _train_then_score(self, rnd: int,
                          sampled_nodes: set[int] | None) -> tuple[StepOutcome, StepOutcome]:
        """A sampled round: the sample trains, then the banks that trained score the new
        model (every bank in the last round) in a step of their own."""
        st = self.state
        need = self.cfg.round_required_banks if sampled_nodes is not None else None
        sessions = self._round_sessions(rnd + 1)
        if self.masking is not None and sessions[0] not in self.masking.sessions:
            self.masking.open(list(sessions), lambda: self._stats_request(rnd))
        train, st.weights_sum = self._sealed_step(STEP_TRAIN, lambda: self.request(rnd, **{
            KEY_STATS_SUM: st.stats_sum, KEY_WEIGHTS_SUM: st.weights_sum,
            KEY_HIST_SUM: self._unreported_hist()}), KIND_WEIGHTS, rnd + 1, only=sampled_nodes,
            required=need)
        self._record(train)
        self._learn_nodes(train)
        st.weights_rows = sum(st.train_rows.get(bank_of(r.content), 0) for r in train.replies)
        asked = self._evaluated_nodes(train, sampled_nodes, rnd)  # evaluate what they trained
        evaluate, st.hist_sum = self._sealed_step(STEP_EVALUATE, lambda: self.request(rnd + 1, **{
            KEY_STATS_SUM: st.stats_sum, KEY_WEIGHTS_SUM: st.weights_sum}), KIND_COUNTS, rnd + 1,
            only=asked, required=need if rnd + 1 < self.cfg.rounds_planned else None,
            open_next=self._round_sessions(rnd + 2) if self.masking is not None and
            rnd + 1 < self.cfg.rounds_planned else (),
            most=self._score_bound())
        st.hist_round = rnd + 1
        return train, evaluate

    def score_last(self) -> None:
        """The last round's model is scored in a step of its own (it trains nothing); the
        replies report the round before's AUC/KS. Audited and checkpointed, so a resumed
        run goes straight to finalize."""
        st = self.state
        done = st.rounds_done
        evaluate, hist = self._sealed_step(STEP_EVALUATE, lambda: self.request(done, **{
            KEY_STATS_SUM: st.stats_sum, KEY_WEIGHTS_SUM: st.weights_sum,
            KEY_HIST_SUM: self._unreported_hist()}), KIND_COUNTS, done,
            most=self._score_bound())
        self._record(evaluate)
        st.hist_sum, st.hist_round = hist, done
        evaluated = self._scored_by(done, evaluate)
        self._note(evaluate, done)
        head = self.audit.append(
            "evaluation", run_id=st.run_id, round=done, evaluated=list(evaluated),
            received=received_hashes(evaluate), dropped=evaluate.dropped, rejected=evaluate.rejected,
            histogram_hash=sha256_hex(hist.payload))
        if self.on_checkpoint is not None:
            self.on_checkpoint(st, head)

    def finalize(self) -> None:
        """Score the last round's model if no exchange did yet; then the last round's metrics
        and the released model."""
        st = self.state
        if st.rounds_done > st.hist_round:
            self.score_last()
        final = self.ex.ask(STEP_FINALIZE, lambda: self.request(st.rounds_done, **{
            KEY_STATS_SUM: st.stats_sum, KEY_WEIGHTS_SUM: st.weights_sum,
            KEY_HIST_SUM: st.hist_sum}), required=self.cfg.required_banks)
        self._record(final)
        release = release_of(final.replies[0].content)
        if release is not None:
            st.weights, st.preprocessor = release
        st.histograms = released_histograms_of(final.replies[0].content)
        st.training_scores = released_training_scores_of(final.replies[0].content)
        st.calibration = agreed_calibration(final.replies)
        self.audit.append("finalize", run_id=st.run_id, rounds=st.rounds_done,
                          model_released=release is not None,
                          final_auc=st.history[-1].auc if st.history else None)

    def _record(self, outcome: StepOutcome) -> None:
        agreed = agreed_metrics(outcome)
        if agreed is None:
            return
        st = self.state
        number = len(st.history) + 1
        who = st.participation[number - 1] if number <= len(st.participation) else None
        record = RoundRecord(number, agreed[0], agreed[1], st.round_seconds[number - 1],
                             st.round_banks[number - 1],
                             *((who.sampled, who.trained, who.evaluated) if who else ()))
        st.history.append(record)
        if self.on_round is not None:
            self.on_round(record)

    def run(self) -> FederatedResult:
        """Preprocess (unless resumed), run the remaining rounds, finalize."""
        if self.state.stats_sum is None:
            self.preprocess()
        else:
            self.audit.append("resume", run_id=self.state.run_id,
                              from_round=self.state.rounds_done + 1)
        for rnd in range(self.state.rounds_done, self.cfg.rounds_planned):
            self.one_round(rnd)
        self.finalize()
        return self.state


def run_horizontal(grid: Grid, cfg: RunConfig, **kwargs: Any) -> FederatedResult:
    """The whole FedAvg run (see :class:`HorizontalRun` for the keyword arguments)."""
    return HorizontalRun(grid, cfg, **kwargs).run()
