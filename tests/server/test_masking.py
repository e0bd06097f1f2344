"""The coordinator's SecAgg+ routing: each bank gets its own neighbours' key adverts only."""

from __future__ import annotations

from typing import Any, cast

from federation.steps.masking import session_config
from server.masking import CoordinatorMasking, MaskingSession

BANKS = 40


def _coordinator() -> CoordinatorMasking:
    config = session_config(n_banks=BANKS, modulus=2**64, length=3, run_id="run", kind="weights",
                            round_index=1)
    advertised = [b for b in range(BANKS) if b != 7]  # bank 7 never advertised
    masking = CoordinatorMasking(cast(Any, None), cast(Any, None), cast(Any, None), run_id="run")
    masking.sessions["weights:1"] = MaskingSession(
        "weights:1", config, {b: cast(Any, object()) for b in advertised},
        tuple(f"advert-{b}".encode() for b in advertised),
        tuple(f"signature-{b}".encode() for b in advertised))
    return masking


def test_each_bank_gets_the_adverts_of_its_neighbours_with_their_signatures() -> None:
    masking = _coordinator()
    graph = masking.sessions["weights:1"].config.neighbours
    for bank in range(BANKS):
        sent = masking._forwarded_adverts(["weights:1"], bank)
        near = sorted(b for b in graph[bank] if b != 7)
        assert sent["adverts"]["weights:1"] == tuple(f"advert-{b}".encode() for b in near)
        assert sent["signatures"]["weights:1"] == tuple(f"signature-{b}".encode() for b in near)
        assert len(near) < BANKS - 1  # fewer than every advert: SecAgg+'s k, not K


def test_a_node_whose_bank_is_unknown_gets_every_advert() -> None:
    masking = _coordinator()
    session = masking.sessions["weights:1"]
    sent = masking._forwarded_adverts(["weights:1"], None)
    assert sent["adverts"]["weights:1"] == session.advert_blobs
    assert sent["signatures"]["weights:1"] == session.signatures
