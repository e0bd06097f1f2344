"""Benchmark one SecAgg+ round: fedcredit's masking (protocols.secagg) vs Flower's legacy SecAgg+.

Measures, for each ``--banks`` size and ``--params`` floats per bank, with every party in this
one process (one after the other, one core):

* per-bank time of each step: key generation + advert, key sharing (Shamir + sealing),
  masking (quantisation, key agreement, PRG expansion, serialisation), unmasking reply;
* coordinator time: summing the masked vectors (deserialised) and unmasking (rebuilding
  secrets, expanding and removing the residual masks, dequantising);
* ``critical path`` = the slowest bank's own work + the coordinator's work (each bank on its
  own machine, transport not counted), and ``wall`` = everything in this process;
* the same with ``--dropout`` of the banks leaving after key sharing (their pairwise masks are
  rebuilt from key shares).

Three implementations on the same sizes, neighbours ``k`` and threshold ``t``:

* ``ours``: ``protocols.secagg`` on fixed-point integers modulo 2**32 (``--aggregation secagg``,
  the coordinator sees the sum), AES-CTR masks;
* ``ours-mod-n``: the same protocol with masks modulo a 2048-bit odd modulus on packed plaintexts
  (the masking overhead on top of packed Paillier; encryption itself is timed by
  scripts/bench_aggregation.py and is not included);
* ``flower``: Flower 1.42's legacy SecAgg+: the client stage handlers of
  ``flwr.client.mod.secure_aggregation.secaggplus_mod`` (``_setup``, ``_share_keys``,
  ``_collect_masked_vectors``, ``_unmask``, called directly with the ConfigRecords the workflow
  sends) and the coordinator's arithmetic of ``flwr.server.workflow.SecAggPlusWorkflow``
  (``collect_masked_vectors_stage`` sum and ``unmask_stage`` loop, re-run statement by statement
  with the same ``flwr.common.secure_aggregation`` primitives, without the Grid messaging).

Example::

    .venv/bin/python scripts/bench_secagg.py --banks 10 100 --params 100000 --json runs/bench_secagg.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from protocols.aggregation.packing import PackingCodec
from protocols.secagg.client import MaskingClient
from protocols.secagg.config import MaskingConfig
from protocols.secagg.graph import default_degree
from protocols.secagg.messages import MaskedInput, SealedShares, message_from_bytes, message_to_bytes
from protocols.secagg.unmasking import residual_mask, unmask_requests

CLIP = 8.0
QUANT_BITS = 22  # Flower's default quantization_range = 2**22
MODULUS = 2**32  # Flower's default modulus_range
CLIENT_STEPS = ("setup", "share_keys", "mask", "unmask")


@dataclass
class Timings:
    """Per-bank and coordinator step times of one round: wall (perf_counter) and CPU seconds
    (process_time, all threads; steadier than wall on a shared machine)."""

    client: dict[int, dict[str, float]] = field(default_factory=dict)
    client_cpu: dict[int, dict[str, float]] = field(default_factory=dict)
    server: dict[str, float] = field(default_factory=dict)
    server_cpu: dict[str, float] = field(default_factory=dict)
    exact: bool = False

    def add(self, party: int, step: str, seconds: float, cpu: float) -> None:
        for table, value in ((self.client, seconds), (self.client_cpu, cpu)):
            table.setdefault(party, {}).setdefault(step, 0.0)
            table[party][step] += value

    @staticmethod
    def _side(client: dict[int, dict[str, float]], server: dict[str, float]) -> dict[str, Any]:
        totals = [sum(steps.values()) for steps in client.values()]
        per_step = {s: float(np.mean([c.get(s, 0.0) for c in client.values()]))
                    for s in CLIENT_STEPS}
        server_total = sum(server.values())
        return {"client_mean_s": float(np.mean(totals)), "client_max_s": float(max(totals)),
                "client_steps_mean_s": per_step, "server_s": server_total,
                "server_steps_s": dict(server),
                "critical_path_s": float(max(totals)) + server_total,
                "wall_s": float(sum(totals)) + server_total}

    def summary(self) -> dict[str, Any]:
        return {**self._side(self.client, self.server), "exact_sum": self.exact,
                "cpu": self._side(self.client_cpu, self.server_cpu)}


def _timed(timings: Timings, party: int, step: str, fn: Callable[[], Any]) -> Any:
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    timings.add(party, step, time.perf_counter() - start, time.process_time() - cpu)
    return out


def _updates(banks: int, params: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(0.0, 0.5, size=params).astype(np.float32) for _ in range(banks)]


def run_ours(updates: list[np.ndarray], *, degree: int, threshold: int, dropped: set[int],
             mod_n: int | None = None) -> Timings:
    """One round of protocols.secagg; ``mod_n`` masks packed plaintexts modulo n instead."""
    banks, params = len(updates), updates[0].size
    if mod_n is None:
        codec = PackingCodec(lo=-CLIP, hi=CLIP, bits=QUANT_BITS, max_parties=banks)
        encode: Callable[[np.ndarray], Any] = codec.quantize
        length, modulus = params, MODULUS
    else:
        codec = PackingCodec(lo=-CLIP, hi=CLIP, bits=16, max_parties=banks, key_bits=2048)
        encode, length, modulus = codec.pack, codec.n_ciphertexts(params), mod_n
    config = MaskingConfig(n_parties=banks, degree=degree, threshold=threshold,
                           modulus=modulus, length=length, run_id="bench", round=1)
    _ = config.neighbours  # the public graph is derived once per round by every party
    t = Timings()
    clients = {u: _timed(t, u, "setup", lambda u=u: MaskingClient(config, u)) for u in range(banks)}
    adverts = {u: _timed(t, u, "setup", clients[u].advertise) for u in range(banks)}
    sealed: dict[int, list[SealedShares]] = {u: [] for u in range(banks)}
    for u, client in clients.items():
        peers = [adverts[v] for v in sorted(client.neighbours)]
        for message in _timed(t, u, "share_keys", lambda c=client, p=peers: c.share_keys(p)):
            sealed[message.recipient].append(message)
    survivors = set(range(banks)) - dropped
    blobs: dict[int, bytes] = {}
    for u in sorted(survivors):
        def mask(u: int = u) -> bytes:
            y = clients[u].mask(encode(updates[u]), sealed[u])
            if mod_n is None:
                return message_to_bytes(MaskedInput(sender=u, tag=config.tag, values=y))
            return b"".join(int(v).to_bytes(256, "big") for v in y)
        blobs[u] = _timed(t, u, "mask", mask)
    start, cpu0 = time.perf_counter(), time.process_time()
    ring, total = config.ring, config.ring.zeros(length)
    for u in sorted(survivors):
        if mod_n is None:
            values = message_from_bytes(blobs[u])
            assert isinstance(values, MaskedInput)
            total = ring.add(total, values.values)
        else:
            blob = blobs[u]
            total = ring.add(total, ring.element(
                [int.from_bytes(blob[i:i + 256], "big") for i in range(0, len(blob), 256)]))
    t.server["sum"] = time.perf_counter() - start
    t.server_cpu["sum"] = time.process_time() - cpu0
    requests = unmask_requests(config, sharers=set(range(banks)), survivors=survivors)
    replies = [_timed(t, r.recipient, "unmask",
                      lambda r=r: message_from_bytes(message_to_bytes(clients[r.recipient].unmask(r))))
               for r in requests]
    start, cpu0 = time.perf_counter(), time.process_time()
    residual = residual_mask(config, adverts=adverts, sharers=set(range(banks)),
                             survivors=survivors, replies=replies)  # type: ignore[arg-type]
    unmasked = ring.sub(total, residual)
    if mod_n is None:
        result = unmasked.astype(np.float64) * codec.step + len(survivors) * codec.lo
    t.server["unmask"] = time.perf_counter() - start
    t.server_cpu["unmask"] = time.process_time() - cpu0
    if mod_n is None:
        expected = np.sum([updates[u].astype(np.float64) for u in survivors], axis=0)
        t.exact = bool(np.allclose(result, expected, atol=len(survivors) * codec.step))
    else:
        packed = [sum(col) % mod_n for col in zip(*(codec.pack(updates[u]) for u in survivors),
                                                  strict=True)]
        t.exact = [int(v) for v in unmasked] == packed
    return t


def run_flower(updates: list[np.ndarray], *, degree: int, threshold: int,
               dropped: set[int]) -> Timings:
    """One round of Flower 1.42's legacy SecAgg+ (client handlers + coordinator arithmetic)."""
    mod = importlib.import_module("flwr.client.mod.secure_aggregation.secaggplus_mod")
    from flwr.common import ConfigRecord, bytes_to_ndarray, ndarrays_to_parameters
    from flwr.common.secure_aggregation import ndarrays_arithmetic as arith
    from flwr.common.secure_aggregation.crypto.shamir import combine_shares
    from flwr.common.secure_aggregation.crypto.symmetric_encryption import generate_shared_key
    from flwr.common.secure_aggregation.quantization import dequantize
    from flwr.common.secure_aggregation.secaggplus_constants import Key
    from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen
    from flwr.supercore.primitives.asymmetric import bytes_to_private_key, bytes_to_public_key

    banks = len(updates)
    nids = list(range(1, banks + 1))
    share_num = degree + 1  # Flower counts the bank itself among its share holders
    order = nids[:]
    random.Random(0).shuffle(order)
    half = share_num >> 1
    neighbours = {nid: {order[(i + o) % banks] for o in range(-half, half + 1)}
                  for i, nid in enumerate(order)}
    t = Timings()
    setup_cfg = ConfigRecord({Key.SAMPLE_NUMBER: banks, Key.SHARE_NUMBER: share_num,
                              Key.THRESHOLD: threshold, Key.CLIPPING_RANGE: CLIP,
                              Key.TARGET_RANGE: 2**QUANT_BITS, Key.MOD_RANGE: MODULUS,
                              Key.MAX_WEIGHT: 1000.0})
    states = {nid: mod.SecAggPlusState(nid=nid) for nid in nids}
    keys = {nid: _timed(t, nid, "setup", lambda n=nid: mod._setup(states[n], setup_cfg))
            for nid in nids}
    forward: dict[int, tuple[list[int], list[bytes]]] = {nid: ([], []) for nid in nids}
    for nid in nids:
        cfg = ConfigRecord({str(v): [keys[v][Key.PUBLIC_KEY_1], keys[v][Key.PUBLIC_KEY_2]]
                            for v in sorted(neighbours[nid])})
        out = _timed(t, nid, "share_keys", lambda n=nid, c=cfg: mod._share_keys(states[n], c))
        for dst, ct in zip(out[Key.DESTINATION_LIST], out[Key.CIPHERTEXT_LIST], strict=True):
            forward[dst][0].append(nid)
            forward[dst][1].append(ct)
    active = [nid for nid in nids if nid - 1 not in dropped]
    masked: dict[int, list[bytes]] = {}
    for nid in active:
        cfg = ConfigRecord({Key.CIPHERTEXT_LIST: forward[nid][1], Key.SOURCE_LIST: forward[nid][0]})
        params = ndarrays_to_parameters([updates[nid - 1]])
        out = _timed(t, nid, "mask", lambda n=nid, c=cfg, p=params:
                     mod._collect_masked_vectors(states[n], c, 1000, p))
        masked[nid] = out[Key.MASKED_PARAMETERS]
    start, cpu0 = time.perf_counter(), time.process_time()
    vector = None
    for nid in active:  # collect_masked_vectors_stage
        vec = [bytes_to_ndarray(b) for b in masked[nid]]
        vector = vec if vector is None else arith.parameters_addition(vector, vec)
    assert vector is not None
    vector = arith.parameters_mod(vector, MODULUS)
    t.server["sum"] = time.perf_counter() - start
    t.server_cpu["sum"] = time.process_time() - cpu0
    active_set, dead = set(active), set(nids) - set(active)
    collected: dict[int, list[bytes]] = {nid: [] for nid in nids}
    for nid in active:
        cfg = ConfigRecord({Key.ACTIVE_NODE_ID_LIST: sorted(neighbours[nid] & active_set),
                            Key.DEAD_NODE_ID_LIST: sorted(neighbours[nid] & dead)})
        out = _timed(t, nid, "unmask", lambda n=nid, c=cfg: mod._unmask(states[n], c))
        for owner, share in zip(out[Key.NODE_ID_LIST], out[Key.SHARE_LIST], strict=True):
            collected[owner].append(share)
    start, cpu0 = time.perf_counter(), time.process_time()
    shapes = arith.get_parameters_shape(vector)
    for nid, shares in collected.items():  # unmask_stage, statement by statement
        secret = combine_shares(shares)
        if nid in active_set:
            vector = arith.parameters_subtraction(vector, pseudo_rand_gen(secret, MODULUS, shapes))
        else:
            for other in neighbours[nid] - {nid}:
                shared = generate_shared_key(bytes_to_private_key(secret),
                                             bytes_to_public_key(keys[other][Key.PUBLIC_KEY_1]))
                pairwise = pseudo_rand_gen(shared, MODULUS, shapes)
                vector = (arith.parameters_addition(vector, pairwise) if nid > other
                          else arith.parameters_subtraction(vector, pairwise))
    vector = arith.parameters_mod(vector, MODULUS)
    q_total, vector = arith.factor_extract(vector)
    result = dequantize(vector, CLIP, 2**QUANT_BITS)[0] - (len(active) - 1) * CLIP
    result = result * (2**QUANT_BITS / q_total)
    t.server["unmask"] = time.perf_counter() - start
    t.server_cpu["unmask"] = time.process_time() - cpu0
    # Flower's workflow returns the example-weighted mean (all weights equal here), not the sum
    expected = np.mean([updates[nid - 1].astype(np.float64) for nid in active], axis=0)
    t.exact = bool(np.allclose(result, expected, atol=2 * 2 * CLIP / 2**QUANT_BITS))
    return t


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--banks", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--params", type=int, default=100_000, help="floats per bank")
    parser.add_argument("--dropout", type=float, default=0.1,
                        help="fraction of banks leaving after key sharing, second scenario")
    parser.add_argument("--skip-flower", action="store_true")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH")
    return parser.parse_args(argv)


def _row(name: str, s: dict[str, Any]) -> str:
    c = s["cpu"]
    return (f"  {name:<11} CPU: bank mean {c['client_mean_s']:7.3f} s  max {c['client_max_s']:7.3f}"
            f" s  coordinator {c['server_s']:7.3f} s  critical {c['critical_path_s']:7.3f} s"
            f"  all {c['wall_s']:8.2f} s | wall: critical {s['critical_path_s']:7.3f} s"
            f"  all {s['wall_s']:8.2f} s | exact {s['exact_sum']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python " + shlex.join(["scripts/bench_secagg.py", *(argv or sys.argv[1:])])
    mod_n = random.Random(1).getrandbits(2048) | (1 << 2047) | 1
    results: dict[str, Any] = {"schema_version": 1, "command": command, "params": args.params,
                               "modulus": MODULUS, "quantization_bits": QUANT_BITS, "runs": []}
    print(command)
    warm = _updates(4, 1000)  # first calls (imports, cipher back ends) are not measured
    run_ours(warm, degree=3, threshold=2, dropped=set())
    run_ours(warm, degree=3, threshold=2, dropped=set(), mod_n=mod_n)
    if not args.skip_flower:
        run_flower(warm, degree=2, threshold=2, dropped=set())
    for banks in args.banks:
        degree = default_degree(banks)
        threshold = degree // 2 + 1
        updates = _updates(banks, args.params)
        for fraction in (0.0, args.dropout):
            dropped = set(range(0, banks, max(1, round(1 / fraction))) if fraction else set())
            run: dict[str, Any] = {"banks": banks, "degree": degree, "threshold": threshold,
                                   "dropped": len(dropped)}
            run["ours"] = run_ours(updates, degree=degree, threshold=threshold,
                                   dropped=dropped).summary()
            run["ours_mod_n"] = run_ours(updates, degree=degree, threshold=threshold,
                                         dropped=dropped, mod_n=mod_n).summary()
            if not args.skip_flower:
                run["flower"] = run_flower(updates, degree=degree, threshold=threshold,
                                           dropped=dropped).summary()
                flower, ours = run["flower"]["cpu"], run["ours"]["cpu"]
                run["flower_over_ours_critical_cpu"] = (flower["critical_path_s"]
                                                        / ours["critical_path_s"])
                run["flower_over_ours_all_cpu"] = flower["wall_s"] / ours["wall_s"]
            results["runs"].append(run)
            print(f"{banks} banks x {args.params} params, k={degree}, t={threshold}, "
                  f"{len(dropped)} dropped after sharing")
            for name in ("ours", "ours_mod_n", "flower"):
                if name in run:
                    print(_row(name, run[name]))
            if "flower" in run:
                print(f"  Flower / ours (CPU): critical path "
                      f"{run['flower_over_ours_critical_cpu']:.1f}x, all parties "
                      f"{run['flower_over_ours_all_cpu']:.1f}x")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
