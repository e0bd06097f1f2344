"""Beyond one box (issue 14, part 5): ``fedcredit simulate`` with ``RAY_ADDRESS`` runs across a
Ray cluster. A head and one worker node start as separate processes on loopback (one CPU
each, so Flower's pool of one-CPU actors must use both); the run completes with every bank,
and the cluster's actor table shows the run's ClientApp actors on both nodes.

The nodes run ``ray start --block`` in a process group of their own, which the fixture ends
by its id (never ``ray stop``, which would stop every Ray process of this user on the box).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 180.0
"""Ray itself gives a node 30 s to register; under load the fixture tries twice."""

CLUSTER_FACTS = """
import json, sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
actors = [a for a in ray._private.state.actors().values()
          if a["ActorClassName"].endswith("ClientAppActor")]
print(json.dumps({"nodes": nodes, "actor_nodes": [a["Address"]["NodeID"] for a in actors]}))
"""
"""A short driver that prints the alive nodes and the node of every ClientApp actor the
cluster ever ran (the GCS keeps dead actors' records)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env |= {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}
    return env


def _start_node(args: list[str], log: Path) -> subprocess.Popen:
    """``ray start ARGS --block`` in its own process group; returns once Ray says the node runs
    (raises RuntimeError with the log's tail if it exits or takes too long)."""
    cmd = [str(BIN / "ray"), "start", *args, "--num-cpus", "1", "--num-gpus", "0",
           "--node-ip-address", "127.0.0.1", "--object-store-memory", str(80 * 2**20),
           "--disable-usage-stats", "--block"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_ray_env(),
                                start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "Ray runtime started" in text:
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    _stop(proc)
    raise RuntimeError("ray start did not come up:\n" + log.read_text(errors="replace")[-2000:])


def _stop(proc: subprocess.Popen) -> None:
    """End a node: SIGTERM to its process group (the block process, GCS, raylet, workers)."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _started(args: list[str], log: Path) -> subprocess.Popen:
    """A node, retried once (Ray's own 30 s registration limit can pass on a loaded box)."""
    try:
        return _start_node(args, log)
    except RuntimeError:
        return _start_node(args, log.with_suffix(".retry.log"))


@pytest.fixture
def two_node_cluster(tmp_path: Path) -> Iterator[str]:
    """``host:port`` of a running head + worker cluster on loopback (stopped afterwards)."""
    if not (BIN / "ray").exists():
        pytest.skip(f"the ray command is not installed beside {sys.executable}")
    address = f"127.0.0.1:{_free_port()}"
    nodes: list[subprocess.Popen] = []
    temp = tempfile.mkdtemp(prefix="fcray")  # short: Ray's sockets live under it (107 bytes)
    try:
        nodes.append(_started(["--head", "--port", address.rsplit(":", 1)[1],
                               "--include-dashboard", "false", "--temp-dir", temp],
                              tmp_path / "head.log"))
        nodes.append(_started(["--address", address], tmp_path / "worker.log"))
        yield address
    finally:
        for proc in reversed(nodes):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)


def _cluster_facts(address: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CLUSTER_FACTS, address], capture_output=True,
                          text=True, timeout=180, env=_ray_env())
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_simulation_runs_across_a_two_node_ray_cluster(two_node_cluster: str,
                                                         tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [str(BIN / "fedcredit"), "simulate", "--data", "german", "--banks", "4", "--rounds", "1",
         "--out", str(out)], capture_output=True, text=True, timeout=600,
        env={**_ray_env(), "RAY_ADDRESS": two_node_cluster, "COLUMNS": "160"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["history"][0]["trained"] == [0, 1, 2, 3]  # every bank, wherever it ran
    cluster = _cluster_facts(two_node_cluster)  # a fresh cluster: only this run's actors
    assert len(cluster["nodes"]) == 2
    # one one-CPU actor per one-CPU node: the pool spread over the head and the worker
    assert sorted(cluster["actor_nodes"]) == sorted(cluster["nodes"])
