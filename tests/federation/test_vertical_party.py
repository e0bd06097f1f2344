"""A party's vertical LR setup refuses a peer key below the run's key size (deviating peer)."""

from __future__ import annotations

from typing import Any

import pytest

from federation.run.vertical_config import VerticalConfig
from federation.steps.vertical_party import ROLE_BANK, start_training
from protocols.errors import KeyMismatchError
from protocols.paillier.keys import generate_paillier_keypair, public_key_to_bytes


def test_a_peer_key_shorter_than_the_run_key_size_is_refused() -> None:
    _, own_private = generate_paillier_keypair(512, allow_insecure_test_key=True)
    short_public, _ = generate_paillier_keypair(1024, allow_insecure_test_key=True)
    cfg = VerticalConfig()  # key_bits 2048, as the bank's policy requires
    aligned: Any = object()  # refused before the rows are touched
    with pytest.raises(KeyMismatchError, match="1024 bits, fewer than the run's "
                                               "vertical-key-bits = 2048"):
        start_training(cfg, ROLE_BANK, aligned, run_id="r", rows=5000, bank_features=3,
                       center_features=2, private_key=own_private,
                       peer_public_key=public_key_to_bytes(short_public))
