"""A local bank + credit-center pair of services on loopback (tests, the benchmark, the docs).

:func:`build_testbed` writes, into one folder: a synthetic bank/center pair keyed by USCC
(:mod:`federation.data.synthetic`), an LR scorecard of both parties' columns (the plaintext
reference trainer of the vertical LR, :func:`federation.ml.taylor_lr.fit_taylor_lr`, on the
joined rows), each party's registry with its own part promoted, API keys, node TOMLs and service
TOMLs. :class:`ServiceProcess` runs ``fedcredit serve`` as a real process on a free port.

The joined training here is a test-bed shortcut: in a deployment the vertical LR is trained by
``fedcredit vertical`` and neither party ever sees the other's columns.
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from fedcredit.service.auth import add_key
from fedcredit.service.registry import ModelRegistry
from federation.data.synthetic import CENTER_FEATURES, ID_COLUMN, TARGET_COLUMN, generate_enterprise_pair
from federation.data.table import load_credit_csv
from federation.ml.preprocess import pooled_preprocessor
from federation.ml.taylor_lr import fit_taylor_lr
from federation.run.folder import SCORECARD_FILE
from federation.scorecard.linear import LinearScorecard
from federation.scorecard.scale import RiskGrades, ScorecardScale

MODEL_NAME = "sme-default"


@dataclass(frozen=True)
class Testbed:
    """The files of a local pair (see the module docstring)."""

    __test__ = False  # not a pytest test class despite its name

    folder: Path
    bank_config: Path
    center_config: Path
    bank_port: int
    center_port: int
    app_key: str
    bank_operator_key: str
    center_operator_key: str
    bank_key_at_center: str
    shared_usccs: tuple[str, ...]
    bank_only_usccs: tuple[str, ...]
    scorecard: Path

    @property
    def bank_url(self) -> str:
        """The bank service's base URL."""
        return f"http://127.0.0.1:{self.bank_port}"

    @property
    def center_url(self) -> str:
        """The center service's base URL."""
        return f"http://127.0.0.1:{self.center_port}"


def free_port() -> int:
    """A loopback port free now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fit_scorecard(folder: Path, bank_csv: Path, center_csv: Path) -> LinearScorecard:
    import pandas as pd

    bank = pd.read_csv(bank_csv, dtype={ID_COLUMN: str})
    center = pd.read_csv(center_csv, dtype={ID_COLUMN: str})
    joined_csv = folder / "joined-training-only.csv"
    bank.merge(center, on=ID_COLUMN).to_csv(joined_csv, index=False)
    table = load_credit_csv(joined_csv, target=TARGET_COLUMN, id_col=ID_COLUMN)
    joined_csv.unlink()
    prep = pooled_preprocessor([table])
    w = fit_taylor_lr(prep.transform(table).astype(np.float64), table.y, epochs=5,
                      batch_size=256, learning_rate=0.5, l2=0.001, seed=0)
    return LinearScorecard.from_lr(prep, [w[1:][None, :], w[:1]], scale=ScorecardScale(),
                                   grades=RiskGrades(), target=TARGET_COLUMN, id_column=ID_COLUMN)


def _node_toml(path: Path, role: str, name: str, data: Path, target: str) -> None:
    index = "bank-index = 0\n" if role == "bank" else ""
    target_line = f'target = "{target}"\n' if target else ""
    path.write_text(f'[node]\nrole = "{role}"\nname = "{name}"\n{index}\n[data]\npath = "{data}"\n'
                    f'id-col = "{ID_COLUMN}"\n{target_line}\n[coordinator]\n'
                    'address = "127.0.0.1:9093"\ninsecure = true\n', encoding="utf-8")


def build_testbed(folder: Path, *, enterprises: int = 2000, seed: int = 0,
                  rate_limit: float = 100_000.0, reload_seconds: float = 0.5,
                  database: dict[str, str] | None = None) -> Testbed:
    """Write a bank/center pair with promoted parts, keys and settings into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    bank_df, center_df, truth = generate_enterprise_pair(enterprises, 0.8, seed)
    bank_csv, center_csv = folder / "bank.csv", folder / "center.csv"
    bank_df.to_csv(bank_csv, index=False)
    center_df.to_csv(center_csv, index=False)
    card = _fit_scorecard(folder, bank_csv, center_csv)
    scorecard = folder / SCORECARD_FILE
    scorecard.write_text(card.to_json(), encoding="utf-8")
    for party in ("bank", "center"):
        ModelRegistry(folder / party / "registry").promote(
            card, name=MODEL_NAME, part=party, source=str(scorecard),
            center_columns=CENTER_FEATURES)
    keys = {p: folder / p / "service-keys.json" for p in ("bank", "center")}
    bank_key_at_center = add_key(keys["center"], "bank-0", ("partial-score",))
    center_operator = add_key(keys["center"], "center-operator", ("operator",))
    app_key = add_key(keys["bank"], "loan-desk", ("score",))
    bank_operator = add_key(keys["bank"], "bank-0-operator", ("operator",))
    (folder / "bank" / "center.key").write_text(bank_key_at_center + "\n", encoding="utf-8")
    _node_toml(folder / "bank" / "node.toml", "bank", "bank-0", bank_csv, TARGET_COLUMN)
    _node_toml(folder / "center" / "node.toml", "center", "center", center_csv, "")
    ports = {"bank": free_port(), "center": free_port()}
    databases = database or {}
    for party in ("bank", "center"):
        extra = (f'center-url = "http://127.0.0.1:{ports["center"]}"\ncenter-key = "center.key"\n'
                 if party == "bank" else "")
        db = databases.get(party, f"sqlite:///queries-{party}.db")
        (folder / party / "service.toml").write_text(
            f'[service]\nnode-config = "node.toml"\nregistry = "registry"\nmodel = "{MODEL_NAME}"\n'
            f'api-keys = "service-keys.json"\nport = {ports[party]}\ndatabase = "{db}"\n'
            f"rate-limit = {rate_limit}\nrate-burst = {int(rate_limit)}\n"
            f"reload-seconds = {reload_seconds}\n{extra}", encoding="utf-8")
    in_center = set(center_df[ID_COLUMN])
    shared = tuple(u for u in bank_df[ID_COLUMN] if u in in_center)
    bank_only = tuple(u for u in bank_df[ID_COLUMN] if u not in in_center)
    del truth
    return Testbed(folder, folder / "bank" / "service.toml", folder / "center" / "service.toml",
                   ports["bank"], ports["center"], app_key, bank_operator, center_operator,
                   bank_key_at_center, shared, bank_only, scorecard)


class ServiceProcess:
    """``fedcredit serve --config CONFIG`` as a child process (stopped by :meth:`stop`)."""

    def __init__(self, config: Path, port: int, *, log: Path,
                 tls: ssl.SSLContext | None = None) -> None:
        self.config, self.port, self.log_path, self.tls = config, port, log, tls
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> ServiceProcess:
        """Start the process and wait until ``/healthz`` answers (over TLS with ``tls``)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fedcredit.cli.main", "serve", "--config", str(self.config),
                 "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout_s
        url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/healthz"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fedcredit serve exited with {self.proc.returncode}; see "
                                   f"{self.log_path}")
            try:
                if httpx.get(url, timeout=1.0, verify=self.tls or True).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"fedcredit serve did not answer within {timeout_s:g} s; see "
                           f"{self.log_path}")

    def kill(self) -> None:
        """SIGKILL: the process dies without any cleanup (the kill-the-center test)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait (uvicorn finishes in-flight requests and closes the log)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
