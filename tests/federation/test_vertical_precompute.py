"""Encryption randomness drawn while a vertical party waits (issue 14, part 6): a pooled
randomizer is used once, ciphertexts from the pool decrypt, and the background thread fills
the pool only while no step of the process runs."""

from __future__ import annotations

import time

import pytest
from phe.paillier import EncryptedNumber

from federation.steps import vertical_precompute
from federation.steps.vertical_precompute import pooled_table, step_running
from protocols.paillier.fast import encrypt_packed
from protocols.paillier.keys import generate_paillier_keypair


def test_the_pool_fills_only_between_steps_and_each_randomizer_is_used_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vertical_precompute, "_PRECOMPUTER", vertical_precompute._Precomputer())
    public, private = generate_paillier_keypair(512, allow_insecure_test_key=True)
    table = pooled_table(private, rows=20)  # the first step of a process: no thread yet
    time.sleep(0.2)
    assert len(table.pool) == 0
    with step_running():
        assert pooled_table(private, rows=20) is table  # one pool per key and process
        time.sleep(0.2)
        assert len(table.pool) == 0  # paused while a step runs
    deadline = time.monotonic() + 60
    while len(table.pool) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(table.pool) >= 20
    with step_running():
        ready = list(table.pool)
        cts = encrypt_packed(list(range(30)), public, table=table)  # 20+ pooled, rest inline
        assert len(table.pool) == 0
    assert [private.decrypt(EncryptedNumber(public, c)) for c in cts] == list(range(30))
    assert len(set(cts)) == 30 and len({int(r) for r in ready}) == len(ready)
    assert all(((1 + m * public.n) * int(r)) % public.nsquare == c
               for m, r, c in zip(range(len(ready)), ready, cts, strict=False))
