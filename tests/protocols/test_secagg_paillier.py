"""SecAgg+ masks under packed Paillier: the product of all ciphertexts (masks removed by the
coordinator) decrypts to the exact packed sum, while one bank's ciphertext, opened by a
colluding bank holding the private key, is uniform noise modulo n, unrelated to its update."""

from __future__ import annotations

import random
from collections.abc import Collection

import numpy as np
import pytest
from phe.paillier import PaillierPrivateKey, PaillierPublicKey

from protocols.aggregation.encrypted_vector import EncryptedVector
from protocols.aggregation.packing import PackingCodec
from protocols.aggregation.secure_aggregation import decrypt_sum, encrypt_update, encrypted_sum
from protocols.errors import KeyMismatchError
from protocols.paillier.decrypt import decrypt_raw_many
from protocols.secagg.client import MaskingClient
from protocols.secagg.config import MaskingConfig
from protocols.secagg.derivation import agree, pairwise_mask_label
from protocols.secagg.messages import KeyAdvert, SealedShares
from protocols.secagg.paillier_masking import encrypt_masked_update, remove_masks
from protocols.secagg.unmasking import residual_mask, unmask_requests

N, K, T, LENGTH = 10, 6, 3, 2000
KeyPair = tuple[PaillierPublicKey, PaillierPrivateKey]


def _codec() -> PackingCodec:
    return PackingCodec(lo=-1.0, hi=1.0, bits=16, max_parties=N, key_bits=512)


def _updates() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [rng.normal(0.3 * u / N, 0.2, size=LENGTH) for u in range(N)]


def _round(keypair: KeyPair, gone_after_shares: Collection[int] = (),
           ) -> tuple[MaskingConfig, list[MaskingClient], dict[int, KeyAdvert],
                      dict[int, EncryptedVector]]:
    public, _ = keypair
    codec = _codec()
    config = MaskingConfig(n_parties=N, degree=K, threshold=T, modulus=int(public.n),
                           length=codec.n_ciphertexts(LENGTH), run_id="run-p", round=4)
    source = random.Random(5)
    clients = [MaskingClient(config, u, random_bytes=source.randbytes, rng=random.Random(u))
               for u in range(N)]
    adverts = {c.party: c.advertise() for c in clients}
    sealed: dict[int, list[SealedShares]] = {u: [] for u in range(N)}
    for c in clients:
        for message in c.share_keys([adverts[v] for v in sorted(c.neighbours)]):
            sealed[message.recipient].append(message)
    vectors = {u: encrypt_masked_update(_updates()[u], client=clients[u], sealed=sealed[u],
                                        public_key=public, codec=codec, rng=random.Random(u))
               for u in range(N) if u not in gone_after_shares}
    return config, clients, adverts, vectors


@pytest.mark.parametrize("gone", [set(), {2, 5, 7}])
def test_product_of_masked_ciphertexts_decrypts_to_exact_sum(small_keypair: KeyPair,
                                                             gone: set[int]) -> None:
    public, private = small_keypair
    codec = _codec()
    config, clients, adverts, vectors = _round(small_keypair, gone_after_shares=gone)
    survivors = set(vectors)
    total = encrypted_sum([vectors[u] for u in sorted(survivors)], public_key=public,
                          codec=codec)
    requests = unmask_requests(config, sharers=set(range(N)), survivors=survivors)
    replies = [clients[r.recipient].unmask(r) for r in requests]
    residual = residual_mask(config, adverts=adverts, sharers=set(range(N)),
                             survivors=survivors, replies=replies)
    opened = decrypt_sum(remove_masks(total, residual, public_key=public),
                         private_key=private, codec=codec, processes=1)
    packed = [sum(col) for col in zip(*(codec.pack(_updates()[u]) for u in survivors),
                                      strict=True)]
    assert np.array_equal(opened, codec.unpack_sum(packed, LENGTH, len(survivors)))
    plain = decrypt_sum(encrypted_sum([encrypt_update(_updates()[u], public_key=public,
                                                      codec=codec, run_id="run-p", round=4)
                                       for u in sorted(survivors)],
                                      public_key=public, codec=codec),
                        private_key=private, codec=codec, processes=1)
    assert np.array_equal(opened, plain)


def _slots(plaintexts: list[int], codec: PackingCodec) -> np.ndarray:
    width, per = codec.slot_bits, codec.slots_per_ciphertext
    return np.array([(p >> (i * width)) & ((1 << width) - 1)
                     for p in plaintexts for i in range(per)][:LENGTH], dtype=np.float64)


def test_single_ciphertext_opened_by_colluding_key_holder_is_noise(small_keypair: KeyPair,
                                                                   ) -> None:
    """Coordinator + bank v (private key and v's pairwise seed with bank 0 in hand) open
    bank 0's ciphertext: the plaintexts are uniform mod n and uncorrelated with its update."""
    public, private = small_keypair
    codec, n = _codec(), int(public.n)
    config, clients, adverts, vectors = _round(small_keypair)
    colluder = min(clients[0].neighbours)
    pair_seed = agree(clients[colluder]._mask_key, adverts[0].mask_public, purpose=b"pair",
                      tag=config.tag)
    known = config.ring.expand(pair_seed, config.length,
                               label=pairwise_mask_label(config.tag, 0, colluder))
    opened: dict[int, list[int]] = {}
    for u, vector in vectors.items():
        opened[u] = decrypt_raw_many(vector.ciphertexts, private, processes=1)
    opened[0] = [(y - int(m)) % n if colluder > 0 else (y + int(m)) % n
                 for y, m in zip(opened[0], known, strict=True)]
    top = np.array([y * 16 // n for ys in opened.values() for y in ys])
    counts = np.bincount(top, minlength=16)
    expected = len(top) / 16
    assert float(((counts - expected) ** 2 / expected).sum()) < 37.7  # chi2(15), p = 0.001
    truth = codec.quantize(_updates()[0]).astype(np.float64)
    assert abs(np.corrcoef(_slots(opened[0], codec), truth)[0, 1]) < 0.1
    unmasked = encrypt_update(_updates()[0], public_key=public, codec=codec, run_id="r",
                              round=4)
    control = _slots(decrypt_raw_many(unmasked.ciphertexts, private, processes=1), codec)
    assert np.corrcoef(control, truth)[0, 1] > 0.999  # the test would see a leak


def test_masking_ring_must_be_the_paillier_modulus(small_keypair: KeyPair,
                                                   other_small_keypair: KeyPair) -> None:
    config, clients, adverts, vectors = _round(small_keypair)
    with pytest.raises(KeyMismatchError):
        encrypt_masked_update(_updates()[0], client=clients[0], sealed=[],
                              public_key=other_small_keypair[0], codec=_codec())
    with pytest.raises(KeyMismatchError):
        remove_masks(vectors[0], config.ring.zeros(config.length),
                     public_key=other_small_keypair[0])
