"""The vertical peer stream end to end in one process: the coordinator's relay, both parties'
links and the epoch loop train the same weights as the one-process protocol driver; an outsider
without the session key cannot take a party's place; a tampered or replayed frame fails the
epoch (transport "stream", issue 14 part 6)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import numpy as np
import pytest

from clients.peer_link import PeerLink, PeerStreamError
from federation.steps.vertical_party import apply_update
from federation.steps.vertical_stream import stream_epoch
from federation.wire.peer_frames import (
    STEP_ENCRYPT,
    STEP_HELLO,
    PeerFrameError,
    new_session_key,
    seal_frame,
)
from protocols.paillier.keys import generate_paillier_keypair
from protocols.vertical_lr.config import VerticalLRConfig, min_batch_rows
from protocols.vertical_lr.local import train_vertical_lr_local
from protocols.vertical_lr.steps import (
    ROLE_BANK,
    ROLE_CENTER,
    initial_state,
    make_bank_party,
    make_center_party,
)
from server.peer_relay import PeerRelay

EPOCHS = 2


@pytest.fixture(scope="module")
def keys() -> Any:
    return (generate_paillier_keypair(1024, allow_insecure_test_key=True),
            generate_paillier_keypair(1024, allow_insecure_test_key=True))


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    rows = 2 * min_batch_rows(3, 2) + 17
    x_bank, x_center = rng.normal(size=(rows, 3)), rng.normal(size=(rows, 2))
    y = (x_bank[:, 0] + x_center[:, 1] + rng.normal(size=rows) > 0).astype(float)
    return {"x_bank": x_bank, "x_center": x_center, "y": y}


def _parties(data: dict[str, np.ndarray], keys: Any) -> dict[str, Any]:
    (pk_b, sk_b), (pk_c, sk_c) = keys
    config = VerticalLRConfig("stream-test", len(data["y"]), 3, 2, min_batch_rows(3, 2), 0.5,
                              0.01, 3)
    return {ROLE_BANK: make_bank_party(data["x_bank"], data["y"], config=config,
                                       private_key=sk_b, peer_public_key=pk_c),
            ROLE_CENTER: make_center_party(data["x_center"], config=config, private_key=sk_c,
                                           peer_public_key=pk_b)}


def test_the_streamed_epochs_train_the_protocol_drivers_weights(data: Any, keys: Any) -> None:
    parties = _parties(data, keys)
    out: dict[str, Any] = {}
    frames: list[Any] = []
    epoch_keys = [new_session_key() for _ in range(EPOCHS)]
    relays = [PeerRelay(key, on_frame=frames.append) for key in epoch_keys]
    for relay in relays:
        relay.start()
    # each party walks the epochs; each epoch has its own relay (as the coordinator runs them)
    threads = []
    for role in (ROLE_BANK, ROLE_CENTER):
        def walk(role: str = role) -> None:
            state, pending = initial_state(parties[role]), None
            try:
                for epoch, (relay, key) in enumerate(zip(relays, epoch_keys, strict=True)):
                    with PeerLink(role, key, relay.host, relay.port) as link:
                        state, pending = stream_epoch(role, parties[role], state, link,
                                                      epoch=epoch, pending=pending)
                assert pending is not None
                out[role] = apply_update(role, parties[role], state, pending.secrets,
                                         pending.opened).weights
            except Exception as exc:  # noqa: BLE001 - reported to the test thread
                out[role] = exc
        threads.append(threading.Thread(target=walk))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for relay in relays:
        relay.close()
    assert not any(isinstance(v, Exception) for v in out.values()), out
    config = parties[ROLE_BANK].config
    reference = train_vertical_lr_local(
        data["x_bank"], data["y"], data["x_center"], epochs=EPOCHS,
        batch_size=config.batch_size, learning_rate=0.5, l2=0.01, seed=3, keys=keys,
        run_id="stream-test")
    np.testing.assert_array_equal(np.array(out[ROLE_BANK]), reference.bank_weights)
    np.testing.assert_array_equal(np.array(out[ROLE_CENTER]), reference.center_weights)
    # 3 frames per party per batch went through the relays, none of them a hello
    assert len(frames) == EPOCHS * config.n_batches * 3 * 2
    assert all(f.step != STEP_HELLO for f in frames)
    assert sum(r.refused for r in relays) == 0


def _wait_for(condition: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def _hello(key: bytes, sender: str) -> bytes:
    return seal_frame(key, sender=sender, step=STEP_HELLO, epoch=0, batch=0, seq=0,
                      payload=sender.encode())


def test_an_outsider_without_the_key_is_refused_and_the_parties_still_pair() -> None:
    key = new_session_key()
    with PeerRelay(key) as relay:
        outsider = socket.create_connection((relay.host, relay.port))
        outsider.sendall(_hello(new_session_key(), ROLE_BANK))  # the wrong key
        assert outsider.recv(1) == b""  # closed at its hello
        outsider.close()
        with PeerLink(ROLE_BANK, key, relay.host, relay.port) as bank, \
                PeerLink(ROLE_CENTER, key, relay.host, relay.port) as center:
            bank.send(STEP_ENCRYPT, 0, 0, b"ciphertexts")
            assert center.receive(STEP_ENCRYPT, 0, 0) == b"ciphertexts"
        assert relay.refused == 1


def test_a_second_connection_in_a_taken_role_is_refused() -> None:
    key = new_session_key()
    with PeerRelay(key) as relay:
        with PeerLink(ROLE_BANK, key, relay.host, relay.port):
            _wait_for(lambda: ROLE_BANK in relay.parties)  # the first one holds the role
            twin = socket.create_connection((relay.host, relay.port))
            twin.sendall(_hello(key, ROLE_BANK))
            assert twin.recv(1) == b""
            twin.close()
    assert relay.refused == 1


class _Tamper:
    """A man in the middle on the relay's port: forwards the bank's bytes with one change."""

    def __init__(self, relay: PeerRelay, change: Any) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.relay, self.change = relay, change
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        upstream = socket.create_connection((self.relay.host, self.relay.port))
        data = b""
        conn.settimeout(2.0)
        try:
            while True:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pass
        upstream.sendall(self.change(data))
        threading.Event().wait(1.0)
        upstream.close()
        conn.close()


@pytest.mark.parametrize("change", ["flip", "replay"])
def test_a_tampered_or_replayed_frame_fails_the_receiver(change: str) -> None:
    key = new_session_key()
    with PeerRelay(key) as relay:
        def altered(data: bytes) -> bytes:
            if change == "flip":
                return data[:-1] + bytes([data[-1] ^ 1])
            frame = data[len(_hello(key, ROLE_BANK)):]  # the one data frame, sent twice
            return data + frame
        middle = _Tamper(relay, altered)
        with PeerLink(ROLE_CENTER, key, relay.host, relay.port) as center:
            with PeerLink(ROLE_BANK, key, "127.0.0.1", middle.port) as bank:
                bank.send(STEP_ENCRYPT, 0, 0, b"residuals")
                if change == "flip":
                    with pytest.raises(PeerFrameError, match="does not open"):
                        center.receive(STEP_ENCRYPT, 0, 0)
                else:
                    assert center.receive(STEP_ENCRYPT, 0, 0) == b"residuals"
                    with pytest.raises(PeerStreamError, match="seq"):
                        center.receive(STEP_ENCRYPT, 0, 1)


def test_a_party_that_never_joins_ends_the_epoch_for_the_other_naming_it() -> None:
    key = new_session_key()
    with PeerRelay(key, hello_timeout_s=3.0) as relay:
        with PeerLink(ROLE_BANK, key, relay.host, relay.port) as bank:
            with pytest.raises(PeerStreamError, match="lost the peer stream"):
                bank.receive(STEP_ENCRYPT, 0, 0)
    assert relay.errors == ["the center did not join the peer stream within 3 s."]


def test_a_party_that_stops_mid_epoch_ends_the_other_ones_wait() -> None:
    key = new_session_key()
    with PeerRelay(key) as relay:
        with PeerLink(ROLE_CENTER, key, relay.host, relay.port) as center:
            with PeerLink(ROLE_BANK, key, relay.host, relay.port) as bank:
                bank.send(STEP_ENCRYPT, 0, 0, b"residuals")
            assert center.receive(STEP_ENCRYPT, 0, 0) == b"residuals"
            with pytest.raises(PeerStreamError, match="the bank's step 2"):  # the bank is gone
                center.receive(2, 0, 0)


def test_a_fixed_relay_port_serves_one_epoch_after_another() -> None:
    """A deployment behind a firewall fixes ``vertical-relay-port``: each epoch's relay binds it
    again after the last one's connections closed."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    for epoch in range(2):
        key = new_session_key()
        with PeerRelay(key, port=port) as relay:
            assert relay.port == port
            with PeerLink(ROLE_BANK, key, "127.0.0.1", port) as bank, \
                    PeerLink(ROLE_CENTER, key, "127.0.0.1", port) as center:
                center.send(STEP_ENCRYPT, epoch, 0, b"partials")
                assert bank.receive(STEP_ENCRYPT, epoch, 0) == b"partials"
