"""The coordinator's part of SecAgg+ in a horizontal run (``secagg``, ``paillier-secagg``).

For each masking session (one sum, :mod:`federation.wire.secagg`): ask every bank to advertise
keys (step 0), forward every advert to every bank and collect the sealed share envelopes
(step 1), route each bank's envelopes with the sealed step's request (step 2, the banks mask),
have the survivors sign the survivor list (step 2b, the consistency round), then send each
surviving bank its unmask request with the list and every survivor's signature (step 3),
rebuild the residual mask and remove it from the combined sum. The sessions of one sealed
step (a round's update and the previous round's scores) share its survivor list, so their
consistency and unmask steps share exchanges (:meth:`CoordinatorMasking.unmask_all`).
Adverts travel with their banks' signatures, which the banks check; a bank reveals only for
the one list it signed and only with ``t`` signatures of its neighbourhood on it.
Security assumption: fewer than ``t`` banks of a neighbourhood collude with the coordinator; it
learns the survivors' sum under ``secagg`` and nothing but ciphertexts under
``paillier-secagg``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from flwr.app import RecordDict

from federation.run.config import RunConfig
from federation.steps.masking import (
    attestation_quorum,
    mask_modulus,
    remove_residual_sealed,
    session_config,
)
from federation.steps.secure_sum import CoordinatorSummation, Sealed
from federation.wire.records import bank_of
from federation.wire.secagg import (
    STEP_SECAGG,
    MaskingBundle,
    bundle_of,
    parse_session,
    with_bundle,
)
from protocols.errors import ProtocolError
from protocols.secagg.config import MaskingConfig
from protocols.secagg.messages import (
    KeyAdvert,
    SealedShares,
    UnmaskReply,
    message_from_bytes,
    message_to_bytes,
    survivors_to_bytes,
)
from protocols.secagg.unmasking import residual_mask, unmask_requests
from server.errors import FederationError
from server.exchange import Exchange, StepOutcome

Contents = Callable[[], RecordDict]


@dataclass
class MaskingSession:
    """What the coordinator holds of one session: public keys and sealed envelopes only."""

    name: str
    config: MaskingConfig
    adverts: dict[int, KeyAdvert]
    advert_blobs: tuple[bytes, ...]
    signatures: tuple[bytes, ...]
    """Each advert's signature by its bank (verified by the banks, not here)."""
    sharers: set[int] = field(default_factory=set)
    envelopes: dict[int, list[bytes]] = field(default_factory=dict)

    @cached_property
    def senders(self) -> tuple[int, ...]:
        """The banks of ``advert_blobs`` and ``signatures``, in their order."""
        return tuple(sorted(self.adverts))


@dataclass(frozen=True)
class MaskedSum:
    """One session's combined (still masked) sum to unmask: ``most`` is the public bound its
    counts were packed under (None: the kind's own codec), as given to ``combine``."""

    name: str
    total: Sealed
    round_index: int
    most: int | None = None


class CoordinatorMasking:
    """SecAgg+ sessions of one run, driven through the run's :class:`Exchange`."""

    def __init__(self, ex: Exchange, cfg: RunConfig, combiner: CoordinatorSummation, *,
                 run_id: str) -> None:
        self.ex, self.cfg, self.combiner, self.run_id = ex, cfg, combiner, run_id
        self.sessions: dict[str, MaskingSession] = {}
        self.node_bank: dict[int, int] = {}

    def open(self, names: list[str], contents: Contents) -> None:
        """Steps 0 and 1 for ``names`` (one advert and one share exchange for all of them)."""
        need = self.cfg.required_banks
        advertised = self.ex.ask(STEP_SECAGG, lambda: with_bundle(
            contents(), MaskingBundle(advertise=tuple(names))), required=need)
        self._adopt_adverts(names, advertised)
        shared = self.ex.ask(STEP_SECAGG, contents, required=need, extra=lambda node, content:
                             with_bundle(content, MaskingBundle(
                                 **self._forwarded_adverts(names, self.node_bank.get(node)))))
        self._adopt_shares(names, shared)

    def _adopt_adverts(self, names: list[str], advertised: StepOutcome) -> None:
        """Step 0's replies: one signed advert and a length per session from every bank."""
        adverts: dict[str, dict[int, KeyAdvert]] = {name: {} for name in names}
        blobs: dict[str, dict[int, bytes]] = {name: {} for name in names}
        signed: dict[str, dict[int, bytes]] = {name: {} for name in names}
        lengths: dict[str, set[int]] = {name: set() for name in names}
        for reply in advertised.replies:
            bank = bank_of(reply.content)
            self.node_bank[reply.metadata.src_node_id] = bank
            bundle = bundle_of(reply.content)
            for name in names:
                sent = bundle.adverts.get(name, ())
                advert = message_from_bytes(sent[0]) if len(sent) == 1 else None
                if not isinstance(advert, KeyAdvert) or advert.sender != bank or \
                        name not in bundle.lengths:
                    raise FederationError(f"bank {bank} answered masking session '{name}' "
                                          "without one key advert of its own and a length.")
                adverts[name][bank] = advert
                blobs[name][bank] = sent[0]
                signature = bundle.signatures.get(name, ())
                signed[name][bank] = signature[0] if len(signature) == 1 else b""
                lengths[name].add(bundle.lengths[name])
        for name in names:
            if len(lengths[name]) != 1:
                raise FederationError(f"banks computed different vector lengths for masking "
                                      f"session '{name}' ({sorted(lengths[name])}); they run "
                                      "different settings or releases.")
            kind, sealed_round = parse_session(name)
            config = session_config(n_banks=self.cfg.banks, modulus=mask_modulus(self.combiner),
                                    length=lengths[name].pop(), run_id=self.run_id, kind=kind,
                                    round_index=sealed_round)
            if any(a.tag != config.tag for a in adverts[name].values()):
                raise FederationError(f"a key advert of masking session '{name}' is bound to "
                                      "other parameters.")
            order = sorted(blobs[name])
            self.sessions[name] = MaskingSession(name, config, adverts[name],
                                                 tuple(blobs[name][b] for b in order),
                                                 tuple(signed[name][b] for b in order))

    def _forwarded_adverts(self, names: list[str], bank: int | None) -> dict[str, Any]:
        """Step 1's request fields for ``bank``: the adverts of its neighbours in each session
        (SecAgg+'s graph, public), with their signatures; every advert for a node whose bank
        is not known. A bank keeps only its neighbours' adverts (it parsed and skipped the
        others), so at K banks a request carries ``k`` adverts instead of ``K``."""
        adverts: dict[str, tuple[bytes, ...]] = {}
        signatures: dict[str, tuple[bytes, ...]] = {}
        for name in names:
            session = self.sessions[name]
            if bank is None or not 0 <= bank < session.config.n_parties:
                adverts[name], signatures[name] = session.advert_blobs, session.signatures
                continue
            near = session.config.neighbours[bank]
            keep = [i for i, sender in enumerate(session.senders) if sender in near]
            adverts[name] = tuple(session.advert_blobs[i] for i in keep)
            signatures[name] = tuple(session.signatures[i] for i in keep)
        return {"adverts": adverts, "signatures": signatures}

    def _adopt_shares(self, names: list[str], shared: StepOutcome) -> None:
        """Step 1's replies: each bank's share envelopes, routed by recipient."""
        for reply in shared.replies:
            bank = bank_of(reply.content)
            bundle = bundle_of(reply.content)
            for name in names:
                self._route(self.sessions[name], bank, bundle.shares.get(name, ()))

    def _route(self, session: MaskingSession, bank: int, blobs: tuple[bytes, ...]) -> None:
        for blob in blobs:
            message = message_from_bytes(blob)
            if not isinstance(message, SealedShares) or message.sender != bank or \
                    message.tag != session.config.tag:
                raise FederationError(f"bank {bank} sent a share envelope of masking session "
                                      f"'{session.name}' that is not its own.")
            session.envelopes.setdefault(message.recipient, []).append(blob)
        session.sharers.add(bank)

    def envelopes(self, *names: str) -> Callable[[int, RecordDict], RecordDict]:
        """Step 2: adds to each bank's request the envelopes addressed to it in each of the
        sessions ``names`` (the sums its reply seals)."""
        sessions = [self.sessions[name] for name in names]

        def add(node: int, content: RecordDict) -> RecordDict:
            bank = self.node_bank.get(node)
            return with_bundle(content, MaskingBundle(envelopes={
                session.name: (tuple(session.envelopes.get(bank, [])) if bank is not None
                               else ()) for session in sessions}))

        return add

    def _attest(self, sessions: list[MaskingSession], listed: bytes, survivors: set[int],
                contents: Contents, open_next: tuple[str, ...] = ()) -> list[tuple[bytes, ...]]:
        """Step 2b: every survivor signs the survivor list of each session (one exchange for
        all of them); per session, the signatures in list order (empty for a survivor that did
        not sign). The banks check them; this only fails early when fewer than the quorum
        signed. With ``open_next`` the same exchange asks every bank for its key adverts of
        those sessions (their step 0)."""
        names = [session.name for session in sessions]
        if open_next:
            def add(node: int, content: RecordDict) -> RecordDict:
                mine = ({name: listed for name in names}
                        if self.node_bank.get(node) in survivors else {})
                return with_bundle(content, MaskingBundle(advertise=open_next, survivors=mine))

            signed = self.ex.ask(STEP_SECAGG, contents, required=self.cfg.required_banks,
                                 extra=add)
            self._adopt_adverts(list(open_next), signed)
        else:
            nodes = [node for node, bank in self.node_bank.items() if bank in survivors]
            signed = self.ex.ask(STEP_SECAGG, lambda: with_bundle(contents(), MaskingBundle(
                survivors={name: listed for name in names})),
                required=min(self.cfg.required_banks, len(survivors)), only=nodes)
        out = []
        for session in sessions:
            by_bank: dict[int, bytes] = {}
            for reply in signed.replies:
                signature = bundle_of(reply.content).attestations.get(session.name, ())
                if len(signature) == 1 and bank_of(reply.content) in survivors:
                    by_bank[bank_of(reply.content)] = signature[0]
            quorum = attestation_quorum(session.config.n_parties, session.config.threshold)
            if len(by_bank) < quorum:
                raise FederationError(f"masking session '{session.name}': {len(by_bank)} banks "
                                      f"signed the survivor list, {quorum} needed before any "
                                      "bank reveals shares; too many banks dropped in this "
                                      "round.")
            out.append(tuple(by_bank.get(bank, b"") for bank in sorted(survivors)))
        return out

    def unmask(self, name: str, outcome: StepOutcome, total: Sealed, contents: Contents, *,
               round_index: int, open_next: tuple[str, ...] = (),
               most: int | None = None) -> Sealed:
        """Step 3 of one session (:meth:`unmask_all`)."""
        return self.unmask_all([MaskedSum(name, total, round_index, most)], outcome, contents,
                               open_next=open_next)[0]

    def unmask_all(self, sums: list[MaskedSum], outcome: StepOutcome,
                   contents: Contents, *, open_next: tuple[str, ...] = ()) -> list[Sealed]:
        """Step 3 of the sessions of one sealed step's replies (one :class:`MaskedSum`
        each): reveal requests to the survivors, the residual masks, the unmasked sums.

        The sessions share the step's survivors (a reply is admitted whole), so they share the
        survivor-list exchange and the unmask exchange. ``open_next`` (the next round's
        sessions) rides on the same two exchanges: its key adverts on the survivor-list
        exchange, its share step on the unmask exchange, so a masked round takes 3 exchanges
        (its sealed step, the list, the unmask). Each bank handles the parts of one message as
        it would handle them sent apart (:func:`clients.bank_app.secagg`: adverts, then shares,
        then the signed lists, then the reveals, session by session), so no check changes."""
        sessions = [self.sessions.pop(one.name) for one in sums]
        survivors = {bank_of(r.content) for r in outcome.replies}
        listed = survivors_to_bytes(sorted(survivors))
        attestations = self._attest(sessions, listed, survivors, contents, open_next)
        requests = [{r.recipient: message_to_bytes(r) for r in unmask_requests(
            session.config, sharers=session.sharers, survivors=survivors)}
            for session in sessions]

        def add(node: int, content: RecordDict) -> RecordDict:
            bank = self.node_bank.get(node)
            forwarded = self._forwarded_adverts(list(open_next), bank) if open_next else {}
            mine = [i for i, asked in enumerate(requests) if bank in asked]
            if bank is None or not mine:
                return with_bundle(content, MaskingBundle(**forwarded))
            return with_bundle(content, MaskingBundle(
                unmask={sessions[i].name: requests[i][bank] for i in mine},
                survivors={sessions[i].name: listed for i in mine},
                attestations={sessions[i].name: attestations[i] for i in mine}, **forwarded))

        answered = self.ex.ask(STEP_SECAGG, contents, required=self.cfg.required_banks,
                               extra=add)
        if open_next:
            self._adopt_shares(list(open_next), answered)
        return [self._unmasked(session, one, survivors, answered)
                for session, one in zip(sessions, sums, strict=True)]

    def _unmasked(self, session: MaskingSession, one: MaskedSum, survivors: set[int],
                  answered: StepOutcome) -> Sealed:
        """One session's residual mask from the revealed shares, removed from its sum."""
        name = session.name
        replies: list[UnmaskReply] = []
        for reply in answered.replies:
            blob = bundle_of(reply.content).unmask.get(name)
            if blob is None:
                continue
            message = message_from_bytes(blob)
            if not isinstance(message, UnmaskReply) or message.sender != bank_of(reply.content):
                raise FederationError(f"bank {bank_of(reply.content)} answered the unmask "
                                      f"request of '{name}' with another bank's shares.")
            replies.append(message)
        try:
            residual = residual_mask(session.config, adverts=session.adverts,
                                     sharers=session.sharers, survivors=survivors,
                                     replies=replies)
        except ProtocolError as exc:
            raise FederationError(f"masking session '{name}' cannot be unmasked: {exc}") from exc
        return remove_residual_sealed(self.combiner, one.total, residual, run_id=self.run_id,
                                      round=one.round_index, most=one.most)
