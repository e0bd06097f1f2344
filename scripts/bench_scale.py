"""Benchmark horizontal runs at scale: seconds per round against the number of simulated banks.

One row per (banks, aggregation): a ``fedcredit`` horizontal run (LR, the embedded UCI rows
spread over the banks, iid, seed 0) in Flower's simulation engine, and beside it, in the same
invocation, the **floor**: Flower's own bare simulation of the same number of clients doing
nothing (a trivial ServerApp/ClientApp pair run with ``flwr.simulation.run_simulation``, the
same backend settings, two request/reply exchanges per round: a plain round's train and
evaluate steps before they were merged into one exchange, stop 31; its seconds per message are
what a row compares with).

Each run is a child process of this script, so its resident memory can be measured: the peak,
sampled every half second, of the summed RSS of the child and all its descendants (the Ray
head, raylet and workers; shared pages count once per process, so this is an upper bound).
CPU seconds are sampled the same way (user + system time of every process of the tree, the
last sample of each; a process's final half second may be missed): on a shared, loaded box
they move much less than wall time. ``cpu_s`` is the whole tree, split into ``cpu_driver_s``
(the coordinator process: key ceremony, ServerApp, Flower's in-memory link),
``cpu_actors_s`` (the Ray actor processes that run the banks' ClientApps) and
``cpu_ray_s`` (Ray's own GCS, raylet and helper processes).

Per row (``--json PATH``, list ``rows``): ``banks``, ``rounds``, ``aggregation``, ``wall_s``
(the whole child: key ceremony, Ray start, preprocessing, rounds, finalize; no baselines),
``keys_s`` (the key ceremony), ``seconds_per_round`` (mean of the coordinator's round times),
``messages_per_round`` (requests the coordinator sent per round, counted from round 2 on),
``seconds_per_message`` (per round / messages per round), ``floor_seconds_per_round`` and
``floor_seconds_per_message`` (the bare Flower run's), ``overhead_per_message_s`` (the
difference: what fedcredit adds to each message), ``peak_rss_mb``, ``floor_peak_rss_mb``,
``round_seconds`` and ``later_seconds_per_round`` (rounds after the first: a process opens
each bank's keys and imports torch in the first round it serves), ``round_cpu_s`` (CPU
seconds of the whole process tree in each round after the first, from the half-second
samples: flat when the work per round is, however the box's load moves the wall time),
``floor_round_seconds``,
``auc`` (the federated test AUC of the last round), ``cpu_s`` (and its split, above; the
floor's as ``floor_cpu_s``) and ``timed_out`` (no result: the run hit
``--max-seconds`` or failed twice; its timings are then missing).

Example::

    .venv/bin/python scripts/bench_scale.py --banks 10 100 --rounds 5 \\
        --aggregation plain paillier secagg --json runs/bench_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FLOOR_EXCHANGES = 2
"""Request/reply exchanges per round of the floor (a plain round took two before stop 31)."""
SAMPLE_S = 0.5


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _rss_mb(pids: list[int]) -> float:
    total_kb = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
        except OSError:
            continue
    return total_kb / 1024


def _cpu_ticks(pid: int) -> int | None:
    """User + system clock ticks of ``pid`` so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _role(pid: int, root: int) -> str:
    """``driver`` (the child itself), ``actors`` (Ray actor processes) or ``ray`` (the rest)."""
    if pid == root:
        return "driver"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "ray"
    return "actors" if cmd.startswith(b"ray::") else "ray"  # Ray retitles its workers


class CpuMeter:
    """CPU seconds of a process tree by role, from the last sample of each process."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.ticks: dict[int, tuple[str, int]] = {}
        self.hz = os.sysconf("SC_CLK_TCK")
        self.series: list[tuple[float, float]] = []
        """(epoch seconds, CPU seconds of the whole tree so far) after each sample."""

    def sample(self, pids: list[int]) -> None:
        for pid in pids:
            ticks = _cpu_ticks(pid)
            if ticks is None:
                continue
            known = self.ticks.get(pid, ("ray", 0))[0]
            role = known if known != "ray" else _role(pid, self.root)  # retitled late
            self.ticks[pid] = (role, ticks)
        self.series.append((time.time(), sum(t for _, t in self.ticks.values()) / self.hz))

    def between(self, ends: list[float]) -> list[float]:
        """CPU seconds of the tree between consecutive times of ``ends`` (epoch seconds),
        interpolated between samples: what each round after the first cost, whatever the
        load (a round that grows in CPU grows in work, not in waiting)."""
        def at(when: float) -> float:
            before = [(t, c) for t, c in self.series if t <= when]
            after = [(t, c) for t, c in self.series if t > when]
            if not before or not after:
                return before[-1][1] if before else 0.0
            (t0, c0), (t1, c1) = before[-1], after[0]
            return c0 + (c1 - c0) * (when - t0) / (t1 - t0)
        return [round(at(b) - at(a), 2) for a, b in zip(ends[:-1], ends[1:], strict=True)]

    def seconds(self) -> dict[str, float]:
        out = {"cpu_s": 0.0, "cpu_driver_s": 0.0, "cpu_actors_s": 0.0, "cpu_ray_s": 0.0}
        for role, ticks in self.ticks.values():
            out["cpu_s"] += ticks / self.hz
            out[f"cpu_{role}_s"] += ticks / self.hz
        return {k: round(v, 1) for k, v in out.items()}


def _partial(output: str, cpu: CpuMeter) -> dict[str, Any] | None:
    """What a run stopped at its limit had done: the rounds it finished (seconds since its
    start at each, so the setup and each round's time) and its CPU so far; None if none."""
    marks = [json.loads(ln) for ln in output.splitlines() if ln.startswith('{"progress"')]
    if not marks:
        return None
    at = [0.0] + [m["seconds"] for m in marks]
    requests = [m["requests"] for m in marks]
    return {"partial": True, "rounds_done": marks[-1]["progress"],
            "first_round_end_s": marks[0]["seconds"],
            "round_seconds": [b - a for a, b in zip(at[1:-1], at[2:], strict=True)],
            "messages_per_round": ((requests[-1] - requests[0]) / (len(requests) - 1)
                                   if len(requests) > 1 else None)} | cpu.seconds()


def run_child(args: list[str], max_seconds: float,
              attempts: int = 2) -> tuple[dict[str, Any] | None, float]:
    """Run ``python bench_scale.py --child ...`` in its own session; return its JSON result
    (None when it failed; with ``"partial": True``, what it had done, when it ran past
    ``max_seconds``) and the peak RSS of its process tree.
    A failed run is tried again (``attempts`` in all; on a loaded machine Ray's start-up can
    exceed its fixed 30 s wait for the raylet); a timed-out one is not."""
    for attempt in range(attempts):
        result, peak, timed_out = _child_once(args, max_seconds)
        if result is not None or timed_out or attempt == attempts - 1:
            return result, peak
    return None, 0.0


def _child_once(args: list[str], max_seconds: float) -> tuple[dict[str, Any] | None, float, bool]:
    """One child run; its JSON result gains the tree's CPU seconds (:class:`CpuMeter`)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL,
                                start_new_session=True, cwd=ROOT)
        peak, deadline, cpu = 0.0, time.monotonic() + max_seconds, CpuMeter(proc.pid)
        while proc.poll() is None:
            pids = _descendants(proc.pid)
            peak = max(peak, _rss_mb(pids))
            cpu.sample(pids)
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                out.seek(0)
                return _partial(out.read().decode(errors="replace"), cpu), peak, True
            time.sleep(SAMPLE_S)
        out.seek(0)
        lines = [ln for ln in out.read().decode(errors="replace").splitlines()
                 if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return None, peak, False
    result = json.loads(lines[-1])
    if result.get("round_ends"):
        result["round_cpu_s"] = cpu.between(result["round_ends"])
    # the driver's own count is exact (it reports it); the sampled one may miss its end
    sampled = cpu.seconds()
    exact = result.get("driver_cpu_s")
    if exact is not None and exact > sampled["cpu_driver_s"]:
        sampled["cpu_s"] = round(sampled["cpu_s"] + exact - sampled["cpu_driver_s"], 1)
        sampled["cpu_driver_s"] = round(exact, 1)
    return result | sampled, peak, False


def child_floor(banks: int, rounds: int) -> dict[str, Any]:
    """Flower's bare simulation: ``banks`` clients answering empty messages, ``rounds`` rounds
    of :data:`FLOOR_EXCHANGES` exchanges each; seconds of each round as the server saw them."""
    from flwr.app import Context, Message, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.simulation import run_simulation

    from fedcredit.simulation.backend import simulation_backend
    from fedcredit.simulation.horizontal import quiet_runtime

    client = ClientApp()

    @client.query()
    def nothing(msg: Message, context: Context) -> Message:
        return Message(RecordDict(), reply_to=msg)

    server = ServerApp()
    seconds: list[float] = []

    @server.main()
    def main(grid: Grid, context: Context) -> None:
        nodes: list[int] = []
        while len(nodes) < banks:
            nodes = list(grid.get_node_ids())
            time.sleep(0.05)
        for _ in range(rounds):
            started = time.perf_counter()
            for _ in range(FLOOR_EXCHANGES):
                replies = grid.send_and_receive([Message(RecordDict(), dst_node_id=n,
                                                         message_type="query") for n in nodes])
                if sum(1 for r in replies if not r.has_error()) != len(nodes):
                    raise RuntimeError("a floor client failed")
            seconds.append(time.perf_counter() - started)

    quiet_runtime()
    started = time.perf_counter()
    run_simulation(server_app=server, client_app=client, num_supernodes=banks,
                   backend_config=simulation_backend(banks))
    return {"wall_s": time.perf_counter() - started, "round_seconds": seconds,
            "messages_per_round": FLOOR_EXCHANGES * banks, "driver_cpu_s": _own_cpu_s()}


def _own_cpu_s() -> float:
    """CPU seconds of this process (its threads included; not its children)."""
    usage = os.times()
    return usage.user + usage.system


def child_run(banks: int, rounds: int, aggregation: str, out: str) -> dict[str, Any]:
    """One fedcredit horizontal run (key ceremony + federation, no baselines)."""
    from fedcredit.simulation.horizontal import fresh_run_folder, run_federation
    from federation.run.config import RunConfig

    started = time.perf_counter()
    cfg = fresh_run_folder(RunConfig(banks=banks, rounds=rounds, aggregation=aggregation,
                                     model="lr", out=out), lambda _: None)
    keys_s = time.perf_counter() - started
    requests: list[int] = [0]
    marks: dict[int, int] = {}

    def observe(direction: str, message: Any) -> None:
        if direction == "request":
            requests[0] += 1

    ends: dict[int, float] = {}

    def mark(done: int) -> None:
        marks.setdefault(done, requests[0])
        ends.setdefault(done, time.time())
        # progress so far, for the parent to report if it has to stop this run at its limit
        print(json.dumps({"progress": done, "seconds": time.perf_counter() - started,
                          "requests": requests[0]}), flush=True)

    result = run_federation(cfg, observer=observe, on_progress=mark)
    later = [marks[r] - marks[r - 1] for r in range(2, rounds + 1) if r in marks and r - 1 in marks]
    return {"wall_s": time.perf_counter() - started, "keys_s": keys_s,
            "driver_cpu_s": _own_cpu_s(), "round_seconds": list(result.round_seconds),
            "messages_per_round": (sum(later) / len(later)) if later else None,
            "round_ends": [ends[r] for r in sorted(ends)],
            "auc": result.history[-1].auc if result.history else None}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def bench_row(banks: int, rounds: int, aggregation: str, floor: dict[str, Any] | None,
              floor_rss: float, max_seconds: float) -> dict[str, Any]:
    """One JSON row: a fedcredit run beside the floor of the same number of banks."""
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        run, rss = run_child(["run", str(banks), str(rounds), aggregation, tmp], max_seconds)
    partial = run if run is not None and run.get("partial") else None
    row: dict[str, Any] = {"banks": banks, "rounds": rounds, "aggregation": aggregation,
                           "timed_out": run is None or partial is not None,
                           "peak_rss_mb": round(rss, 1), "floor_peak_rss_mb": round(floor_rss, 1)}
    if partial is not None:  # stopped at --max-seconds: what it had done, then no totals
        row["before_timeout"] = {k: v for k, v in partial.items() if k != "partial"}
        run = None
    per_round = _mean(run["round_seconds"]) if run else None
    floor_round = _mean(floor["round_seconds"]) if floor else None
    per_message = (per_round / run["messages_per_round"]
                   if run and per_round is not None and run["messages_per_round"] else None)
    floor_message = (floor_round / floor["messages_per_round"]
                     if floor and floor_round is not None else None)
    row |= {
        "wall_s": run["wall_s"] if run else None, "keys_s": run["keys_s"] if run else None,
        "seconds_per_round": per_round, "messages_per_round": run and run["messages_per_round"],
        "seconds_per_message": per_message, "floor_seconds_per_round": floor_round,
        "floor_wall_s": floor["wall_s"] if floor else None,
        "floor_seconds_per_message": floor_message,
        "overhead_per_message_s": (per_message - floor_message
                                   if per_message is not None and floor_message is not None
                                   else None),
        "auc": run["auc"] if run else None,
        "round_seconds": run["round_seconds"] if run else None,
        "round_cpu_s": run.get("round_cpu_s") if run else None,
        "later_seconds_per_round": (_mean(run["round_seconds"][1:])
                                    if run and len(run["round_seconds"]) > 1 else None),
        "floor_round_seconds": floor["round_seconds"] if floor else None,
        "floor_cpu_s": floor.get("cpu_s") if floor else None,
    }
    for name in ("cpu_s", "cpu_driver_s", "cpu_actors_s", "cpu_ray_s"):
        row[name] = run.get(name) if run else None
    return row


def _fmt(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--banks", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--aggregation", nargs="+", default=["plain", "paillier", "secagg"])
    parser.add_argument("--max-seconds", type=float, default=1800.0,
                        help="Stop a run (row marked timed_out) after this many seconds.")
    parser.add_argument("--json", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run every row; print a table; write ``--json``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":  # one measured run, its result as one JSON line
        kind, banks, rounds = argv[1], int(argv[2]), int(argv[3])
        result = (child_floor(banks, rounds) if kind == "floor"
                  else child_run(banks, rounds, argv[4], argv[5]))
        print(json.dumps(result))
        return 0
    args = parse_args(argv)
    load_start = os.getloadavg()
    rows = []
    for banks in args.banks:
        floor, floor_rss = run_child(["floor", str(banks), str(args.rounds)], args.max_seconds)
        for aggregation in args.aggregation:
            row = bench_row(banks, args.rounds, aggregation, floor, floor_rss, args.max_seconds)
            rows.append(row)
            _write(args.json, argv, load_start, rows)  # what is measured so far
            print(f"{banks:>5} banks {aggregation:<9} s/round {_fmt(row['seconds_per_round'])} "
                  f"(floor {_fmt(row['floor_seconds_per_round'])})  s/message "
                  f"{_fmt(row['seconds_per_message'], 4)} (floor "
                  f"{_fmt(row['floor_seconds_per_message'], 4)})  wall {_fmt(row['wall_s'], 1)} s"
                  f"  CPU {_fmt(row['cpu_s'], 1)} s (floor {_fmt(row['floor_cpu_s'], 1)})"
                  f"  peak RSS {row['peak_rss_mb']:.0f} MB"
                  + ("  TIMED OUT" if row["timed_out"] else "")
                  + _before_timeout(row.get("before_timeout")), flush=True)
    _write(args.json, argv, load_start, rows)
    return 0 if all(not r["timed_out"] for r in rows) else 1


def _before_timeout(done: dict[str, Any] | None) -> str:
    if not done:
        return ""
    rounds = done["round_seconds"]
    return (f" after {done['rounds_done']} rounds (first round done at "
            f"{done['first_round_end_s']:.0f} s; later rounds {_fmt(_mean(rounds))} s each)")


def _write(path: Path | None, argv: list[str], load_start: tuple[float, ...],
           rows: list[dict[str, Any]]) -> None:
    if path is None:
        return
    result = {"command": " ".join(["scripts/bench_scale.py", *argv]), "cpus": os.cpu_count(),
              "load_avg_start": load_start, "load_avg_end": os.getloadavg(), "rows": rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
