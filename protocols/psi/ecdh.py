"""ECDH private set intersection (PSI) over X25519: protocol steps and a safe recipe.

Two parties, an *initiator* A with identifiers X and a *responder* B with identifiers Y, learn
``X ∩ Y`` (each as positions in its own input) and nothing else but ``|X|`` and ``|Y|``.

Protocol (points and hashing in ``protocols.psi.blinding``, messages in ``protocols.psi.messages``)

0. A draws a :class:`PsiSession` (random ``session_id`` and ``salt``) with :func:`new_psi_session`.
1. A draws a secret scalar ``a``, sends ``a * H(x)`` for ``x`` in X, sorted (step
   :func:`initiator_start`).
2. B draws ``b``, returns ``b * (a * H(x))`` in the order received and sends ``b * H(y)`` for ``y``
   in Y, sorted (:func:`responder_reply`).
3. A computes ``a * (b * H(y))``: its ``x`` whose ``a * b * H(x)`` is among them are the
   intersection. A returns ``a * (b * H(y))`` in the order received (:func:`initiator_finish`).
4. B finds its ``y`` whose ``a * b * H(y)`` is among the ``b * a * H(x)`` of step 2
   (:func:`responder_finish`).

Sorting by blinded value is the shuffle: the blinded values are pseudorandom, so the sorted
order is independent of the input order and needs no extra randomness.

Security assumption
-------------------
Semi-honest (honest-but-curious) parties: each follows the steps but may study what it sees.
Under the decisional Diffie-Hellman assumption on Curve25519 and its twist, with the hash as
a random oracle, a party's view reveals only the intersection and the other set's size. The
hash is bound to the session (``session_id`` and ``salt``) and scalars are fresh per session,
so points cannot be linked across sessions or matched against precomputed tables. Not covered:
a malicious party may put guessed identifiers in its set to test membership (inherent to PSI),
or answer with wrong points (the other side then gets a wrong intersection). Messages carry
no raw identifier or unblinded hash.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from protocols.errors import MalformedMessageError, ProtocolError, StaleRoundError
from protocols.psi.blinding import (
    POINT_SIZE,
    SCALAR_SIZE,
    blind_points,
    check_received_points,
    hash_ids_to_points,
    lexicographic_order,
    point_count,
    split_points,
)
from protocols.psi.messages import (
    SALT_SIZE,
    SESSION_ID_SIZE,
    STAGE_INITIATOR_BLINDED,
    STAGE_INITIATOR_RETURN,
    STAGE_RESPONDER_REPLY,
    PsiMessage,
    PsiSession,
    psi_message_from_bytes,
    psi_message_to_bytes,
)

__all__ = [
    "PsiInitiatorState", "PsiMessage", "PsiResponderState", "PsiResult", "PsiSession",
    "initiator_finish", "initiator_start", "new_psi_session", "psi_intersect",
    "psi_message_from_bytes", "psi_message_to_bytes", "responder_finish", "responder_reply",
]

RandomBytes = Callable[[int], bytes]
Identifier = str | bytes


@dataclass(frozen=True, slots=True)
class PsiResult:
    """What one party learns: which of its own identifiers are in the intersection.

    ``indices`` are ascending positions in the party's input; ``ids`` the matching inputs.
    Sort ``ids`` (both parties hold the same set) to agree on a row order for training.
    """

    indices: tuple[int, ...]
    ids: tuple[Identifier, ...]
    peer_set_size: int

    @property
    def size(self) -> int:
        """Size of the intersection."""
        return len(self.indices)


@dataclass(frozen=True, slots=True)
class PsiInitiatorState:
    """The initiator's private state between steps 1 and 3. Never send it."""

    session: PsiSession
    ids: tuple[Identifier, ...]
    sent_order: np.ndarray = field(repr=False, compare=False)
    scalar: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class PsiResponderState:
    """The responder's private state between steps 2 and 4. Never send it."""

    session: PsiSession
    ids: tuple[Identifier, ...]
    sent_order: np.ndarray = field(repr=False, compare=False)
    peer_double_blinded: frozenset[bytes] = field(repr=False)
    peer_set_size: int


def new_psi_session(rng: RandomBytes = secrets.token_bytes) -> PsiSession:
    """Draw a fresh session id and salt (step 0, initiator). ``rng(n)`` returns ``n`` bytes."""
    return PsiSession(session_id=rng(SESSION_ID_SIZE), salt=rng(SALT_SIZE))


def _encode_ids(ids: Sequence[Identifier]) -> list[bytes]:
    """UTF-8 encode identifiers; reject other types and repeats (PSI works on sets)."""
    encoded: list[bytes] = []
    for identifier in ids:
        if isinstance(identifier, str):
            encoded.append(identifier.encode("utf-8"))
        elif isinstance(identifier, bytes):
            encoded.append(identifier)
        else:
            raise TypeError(f"PSI identifiers are str or bytes, got {type(identifier).__name__}")
    if len(set(encoded)) != len(encoded):
        raise ValueError("PSI identifiers repeat; deduplicate the id column before the PSI")
    return encoded


def _hash_own_set(ids: Sequence[Identifier], session: PsiSession) -> bytes:
    """Hash a party's identifiers to points bound to the session."""
    return hash_ids_to_points(_encode_ids(ids), session_id=session.session_id,
                              salt=session.salt)


def _sort_points(blinded: bytes) -> tuple[np.ndarray, bytes]:
    """Shuffle by sorting; return (input index of each sent point, sorted points)."""
    order = lexicographic_order(blinded)
    matrix = np.frombuffer(blinded, dtype=np.uint8).reshape(-1, POINT_SIZE)
    return order, matrix[order].tobytes()


def _draw_scalar(rng: RandomBytes) -> bytes:
    scalar = rng(SCALAR_SIZE)
    if not isinstance(scalar, bytes) or len(scalar) != SCALAR_SIZE:
        raise ValueError(f"rng must return {SCALAR_SIZE} bytes for a PSI scalar")
    return scalar


def _expect(message: PsiMessage, stage: str, session: PsiSession | None) -> None:
    """Check a received message's stage and session before touching its points."""
    if not isinstance(message, PsiMessage):
        raise TypeError(f"expected a PsiMessage, got {type(message).__name__}")
    if session is not None and message.session != session:
        raise StaleRoundError("PSI message belongs to another session (replay or straggler); "
                              "discard it, or restart both parties with one session")
    if message.stage != stage:
        raise ProtocolError(f"expected a {stage!r} PSI message, got {message.stage!r}; "
                            "the parties are out of step: restart the session")


def _result(ids: tuple[Identifier, ...], sent_order: np.ndarray, own_double: bytes,
            peer_double: set[bytes] | frozenset[bytes], peer_set_size: int) -> PsiResult:
    """Map matched sent positions back to input positions."""
    matched = [position for position, point in enumerate(split_points(own_double))
               if point in peer_double]
    indices = tuple(sorted(int(sent_order[position]) for position in matched))
    return PsiResult(indices, tuple(ids[index] for index in indices), peer_set_size)


def initiator_start(
    ids: Sequence[Identifier],
    session: PsiSession,
    *,
    rng: RandomBytes = secrets.token_bytes,
    workers: int | None = None,
) -> tuple[PsiInitiatorState, PsiMessage]:
    """Step 1 (initiator): blind the own identifiers and build the first message.

    Parameters
    ----------
    ids : sequence of str or bytes
        Distinct identifiers (str are UTF-8 encoded).
    session : PsiSession
        From :func:`new_psi_session`; the responder reads it from the message.
    rng : callable, default ``secrets.token_bytes``
        Source of the secret scalar; must be a CSPRNG outside tests.
    workers : int, optional
        Processes for blinding large sets (default: all usable cores).

    Returns
    -------
    (PsiInitiatorState, PsiMessage)
        State to keep, and the ``initiator-blinded`` message to send.
    """
    scalar = _draw_scalar(rng)
    order, blinded = _sort_points(
        blind_points(scalar, _hash_own_set(ids, session), workers=workers))
    state = PsiInitiatorState(session, tuple(ids), order, scalar)
    message = PsiMessage(STAGE_INITIATOR_BLINDED, session.session_id, session.salt, blinded)
    return state, message


def responder_reply(
    ids: Sequence[Identifier],
    message: PsiMessage,
    *,
    session: PsiSession | None = None,
    rng: RandomBytes = secrets.token_bytes,
    workers: int | None = None,
) -> tuple[PsiResponderState, PsiMessage]:
    """Step 2 (responder): double-blind the initiator's points, blind the own identifiers.

    Parameters
    ----------
    ids : sequence of str or bytes
        The responder's distinct identifiers.
    message : PsiMessage
        The initiator's ``initiator-blinded`` message.
    session : PsiSession, optional
        If the session was agreed out of band, the message must belong to it; otherwise the
        session is taken from the message.
    rng, workers
        As in :func:`initiator_start`.

    Raises
    ------
    MalformedPointError
        A received point is non-canonical, repeated or of low order.
    StaleRoundError, ProtocolError
        Wrong session or stage.
    """
    _expect(message, STAGE_INITIATOR_BLINDED, session)
    check_received_points(message.blinded)
    session = message.session
    scalar = _draw_scalar(rng)
    # One pass over the peer's points then the own hashed points: one process pool, and a
    # low-order point is numbered by its position in the peer's message.
    both = blind_points(scalar, message.blinded + _hash_own_set(ids, session), workers=workers)
    peer_double = both[:len(message.blinded)]
    order, blinded = _sort_points(both[len(message.blinded):])
    state = PsiResponderState(session, tuple(ids), order, frozenset(split_points(peer_double)),
                              point_count(message.blinded))
    reply = PsiMessage(STAGE_RESPONDER_REPLY, session.session_id, session.salt, blinded,
                       peer_double)
    return state, reply


def initiator_finish(
    state: PsiInitiatorState, reply: PsiMessage, *, workers: int | None = None
) -> tuple[PsiResult, PsiMessage]:
    """Step 3 (initiator): learn the intersection and return the responder's double blinding.

    Raises
    ------
    MalformedMessageError
        The reply holds a different number of double-blinded points than were sent.
    MalformedPointError
        A received point is non-canonical, repeated or of low order.
    StaleRoundError, ProtocolError
        Wrong session or stage.
    """
    _expect(reply, STAGE_RESPONDER_REPLY, state.session)
    if point_count(reply.double_blinded) != len(state.ids):
        raise MalformedMessageError(
            f"responder returned {point_count(reply.double_blinded)} double-blinded points for "
            f"{len(state.ids)} sent; discard the reply and restart the session")
    check_received_points(reply.double_blinded)
    peer_size = check_received_points(reply.blinded)
    peer_double = blind_points(state.scalar, reply.blinded, workers=workers)
    result = _result(state.ids, state.sent_order, reply.double_blinded,
                     set(split_points(peer_double)), peer_size)
    session = state.session
    final = PsiMessage(STAGE_INITIATOR_RETURN, session.session_id, session.salt,
                       double_blinded=peer_double)
    return result, final


def responder_finish(state: PsiResponderState, final: PsiMessage) -> PsiResult:
    """Step 4 (responder): learn the intersection from the returned double blinding.

    Raises
    ------
    MalformedMessageError
        The message holds a different number of points than the responder sent.
    MalformedPointError, StaleRoundError, ProtocolError
        As in :func:`initiator_finish`.
    """
    _expect(final, STAGE_INITIATOR_RETURN, state.session)
    if point_count(final.double_blinded) != len(state.ids):
        raise MalformedMessageError(
            f"initiator returned {point_count(final.double_blinded)} double-blinded points for "
            f"{len(state.ids)} sent; discard the message and restart the session")
    check_received_points(final.double_blinded)
    return _result(state.ids, state.sent_order, final.double_blinded,
                   state.peer_double_blinded, state.peer_set_size)


def psi_intersect(
    initiator_ids: Sequence[Identifier],
    responder_ids: Sequence[Identifier],
    *,
    rng: RandomBytes = secrets.token_bytes,
    workers: int | None = None,
) -> tuple[PsiResult, PsiResult]:
    """Run both parties of one PSI session locally, every message through bytes serde.

    For tests, demos and benchmarks: in a deployment each party runs its own steps and the
    bytes cross the network. Same security assumption as the module.

    Returns
    -------
    (PsiResult, PsiResult)
        The initiator's and the responder's view of the intersection.
    """
    session = new_psi_session(rng)
    state_a, first = initiator_start(initiator_ids, session, rng=rng, workers=workers)
    state_b, reply = responder_reply(
        responder_ids, psi_message_from_bytes(psi_message_to_bytes(first)),
        rng=rng, workers=workers)
    result_a, final = initiator_finish(
        state_a, psi_message_from_bytes(psi_message_to_bytes(reply)), workers=workers)
    result_b = responder_finish(state_b, psi_message_from_bytes(psi_message_to_bytes(final)))
    return result_a, result_b
