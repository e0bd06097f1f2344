"""Benchmark the credit query service end to end: bank -> center on loopback, separate processes.

Starts the test bed of :mod:`fedcredit.service.testbed` (a synthetic bank/center pair keyed by
USCC, the vertical LR's two parts promoted, API keys, SQLite WAL query logs) as two real
``fedcredit serve`` processes, then from this process:

  * single queries (``POST /v1/score``, keyed by USCC, with the center call) at concurrency
    1, 16 and 64 for ``--seconds`` each after a warm-up: sustained queries per second and
    p50/p99 latency (a lean keep-alive HTTP/1.1 client, so the load generator costs little of
    the CPU it shares with the services);
  * batches (``POST /v1/score/batch`` of ``--batch-rows`` rows, one center call each): rows
    per second, best of ``--batches``;
  * afterwards, the number of requests this script sent to the bank and the number of rows in
    the bank's query log (they must be equal: nothing lost).

Writes ``--json PATH`` with ``single_qps_c{1,16,64}``, ``p50_ms_c*``, ``p99_ms_c*``,
``batch_rows_per_s``, ``requests``, ``log_rows`` (and ``center_log_rows``; the CPU time the two
service processes used per query and per 1,000 batch rows, and the bank's share of it, which
the machine's other load does not inflate as much as wall time; the load average before and
after; the settings). ``--concurrency 16 --batches 5`` measures only what the targets name.
Example::

    .venv/bin/python scripts/bench_service.py --json runs/bench_service.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fedcredit.service.testbed import ServiceProcess, build_testbed


class LeanClient:
    """One keep-alive HTTP/1.1 connection: POST JSON, read the status and the body."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        """Send one request and return its HTTP status (reconnects when needed)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.key}"
                f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    async def close(self) -> None:
        """Close the connection."""
        if self.writer is not None:
            self.writer.close()


async def _single(port: int, key: str, usccs: list[str], concurrency: int, seconds: float,
                  warmup: float) -> tuple[int, list[float], int, dict[int, int]]:
    """Closed-loop load: ``concurrency`` clients, each sending the next query when answered."""
    sent = 0
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    bodies = [json.dumps({"uscc": u, "purpose": "loan-approval"}).encode() for u in usccs]

    async def worker(offset: int) -> None:
        nonlocal sent
        client = LeanClient(port, key)
        i = offset
        try:
            while (now := time.perf_counter()) < stop_at:
                sent += 1
                status = await client.post("/v1/score", bodies[i % len(bodies)])
                done = time.perf_counter()
                statuses[status] = statuses.get(status, 0) + 1
                if now >= measure_from:
                    latencies.append(done - now)
                i += concurrency
        finally:
            await client.close()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    completed = len(latencies)
    return completed, latencies, sent, statuses


async def _batches(port: int, key: str, usccs: list[str], rows: int, repeat: int) -> tuple[float, int]:
    body = json.dumps({"purpose": "loan-approval",
                       "rows": [{"uscc": u} for u in usccs[:rows]]}).encode()
    client = LeanClient(port, key)
    best, sent = float("inf"), 0
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            sent += 1
            status = await client.post("/v1/score/batch", body)
            if status != 200:
                raise SystemExit(f"batch request answered {status}")
            best = min(best, time.perf_counter() - started)
    finally:
        await client.close()
    return rows / best, sent


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _services_cpu(*services: ServiceProcess) -> float:
    return sum(_cpu_seconds(s.proc.pid) for s in services if s.proc is not None)


def _count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM queries").fetchone()[0])
    finally:
        conn.close()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated levels")
    parser.add_argument("--enterprises", type=int, default=15000, help="rows each party holds")
    parser.add_argument("--batch-rows", type=int, default=10000)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--folder", type=Path, help="test-bed folder (default: a temporary one)")
    return parser.parse_args()


def main() -> None:
    """Run the benchmark and print (and write) the results."""
    args = _arguments()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench-service-"))
    bed = build_testbed(folder, enterprises=args.enterprises, rate_limit=1e6, reload_seconds=5.0)
    usccs = list(bed.shared_usccs)
    load_before = os.getloadavg()
    center = ServiceProcess(bed.center_config, bed.center_port, log=folder / "center.log").start()
    bank = ServiceProcess(bed.bank_config, bed.bank_port, log=folder / "bank.log").start()
    results: dict[str, object] = {}
    requests = 0
    try:
        for level in (int(c) for c in args.concurrency.split(",")):
            cpu_before, own_before = _services_cpu(bank, center), time.process_time()
            bank_before = _services_cpu(bank)
            done, lat, sent, statuses = asyncio.run(_single(bed.bank_port, bed.app_key, usccs, level,
                                                   args.seconds, args.warmup))
            service_cpu = _services_cpu(bank, center) - cpu_before
            bank_cpu = _services_cpu(bank) - bank_before
            results[f"service_cpu_ms_per_query_c{level}"] = round(1000 * service_cpu / sent, 3)
            results[f"bank_cpu_ms_per_query_c{level}"] = round(1000 * bank_cpu / sent, 3)
            results[f"loadgen_cpu_ms_per_query_c{level}"] = round(
                1000 * (time.process_time() - own_before) / sent, 3)
            requests += sent
            ms = np.asarray(lat) * 1000
            results[f"single_qps_c{level}"] = round(done / args.seconds, 1)
            results[f"p50_ms_c{level}"] = round(float(np.percentile(ms, 50)), 2)
            results[f"p99_ms_c{level}"] = round(float(np.percentile(ms, 99)), 2)
            results[f"statuses_c{level}"] = {str(k): v for k, v in sorted(statuses.items())}
            print(f"c={level}: {done / args.seconds:.0f} q/s, p50 {np.percentile(ms, 50):.1f} ms, "
                  f"p99 {np.percentile(ms, 99):.1f} ms, statuses {statuses}, services' CPU "
                  f"{1000 * service_cpu / sent:.2f} ms/query", flush=True)
        cpu_before, bank_before = _services_cpu(bank, center), _services_cpu(bank)
        rows_per_s, sent = asyncio.run(_batches(bed.bank_port, bed.app_key, usccs,
                                                min(args.batch_rows, len(usccs)), args.batches))
        batch_rows = sent * min(args.batch_rows, len(usccs))
        results["batch_service_cpu_ms_per_1000_rows"] = round(
            1e6 * (_services_cpu(bank, center) - cpu_before) / batch_rows, 2)
        results["batch_bank_cpu_ms_per_1000_rows"] = round(
            1e6 * (_services_cpu(bank) - bank_before) / batch_rows, 2)
        requests += sent
        results["batch_rows_per_s"] = round(rows_per_s)
        print(f"batch of {min(args.batch_rows, len(usccs))}: {rows_per_s:,.0f} rows/s", flush=True)
    finally:
        bank.stop()
        center.stop()
    results["requests"] = requests
    results["log_rows"] = _count(folder / "bank" / "queries-bank.db")
    results["center_log_rows"] = _count(folder / "center" / "queries-center.db")
    results.update({
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(), "seconds_per_level": args.seconds,
        "batch_rows": min(args.batch_rows, len(usccs)),
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
    })
    print(f"requests {requests}, bank log rows {results['log_rows']}, center log rows "
          f"{results['center_log_rows']}; load average before {load_before}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.folder is None:
        shutil.rmtree(folder, ignore_errors=True)  # keep it with --folder (logs, databases)
    if results["log_rows"] != requests:
        raise SystemExit(f"log rows {results['log_rows']} != requests {requests}")


if __name__ == "__main__":
    main()
