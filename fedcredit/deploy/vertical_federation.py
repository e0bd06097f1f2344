"""A vertical job on one machine: one SuperLink, a bank node and a credit-center node.

Same steps and guarantees as :class:`~fedcredit.deploy.local_federation.LocalFederation` (TLS,
node authentication, ``flwr run``, every process stopped afterwards), with two parties:

* ``bank-0`` holds ``bank.csv`` (entity key, its features, the label);
* ``center`` holds ``center.csv`` (entity key, its features, no label).

Each node folder holds only its own file, the CA certificate, its authentication key and a
``node.toml`` (``role = "bank"`` or ``"center"``). The run config carries ``mode =
"vertical"`` and the ``vertical-*`` settings; the deployed ServerApp runs
:class:`server.vertical.VerticalRun` and writes what the coordinator learns (PSI sizes,
federated AUC/KS, IV table). The centralised and bank-only baselines need both files: the
launcher, acting as the researcher who staged them, computes them after the run with the
run's salt (:func:`fedcredit.simulation.vertical.vertical_baselines`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fedcredit.deploy.certs import write_private
from fedcredit.deploy.errors import DeploymentError
from fedcredit.deploy.flower_commands import toml_value
from fedcredit.deploy.launch_plan import LaunchOptions, app_config_keys, free_port
from fedcredit.deploy.local_federation import JOINED, LocalFederation
from fedcredit.deploy.local_parties import write_roster
from fedcredit.simulation.vertical import vertical_baselines
from federation.data.embedded import read_bytes
from federation.data.synthetic import write_enterprise_pair
from federation.run.config import resolve_data_path
from federation.run.results import RunResults, VerticalResults
from federation.run.vertical_config import VerticalConfig, vertical_run_config
from federation.wire.vertical import V_ENCRYPT, V_SETUP, V_STREAM

READY = f"Receiving: {V_SETUP.message_type}"
TRAINING = f"Receiving: {V_ENCRYPT.message_type}"
VERTICAL_MILESTONES = ((JOINED, "a node joined"),
                       (READY, "federation ready: the coordinator's setup request reached "
                               "a party"),
                       (TRAINING, "training started: the first mini-batch request reached "
                                  "a party"))
STREAM_MILESTONES = (*VERTICAL_MILESTONES[:-1],
                     (f"Receiving: {V_STREAM.message_type}",
                      "training started: the first epoch's peer-stream request reached a party"))
"""The same, for ``transport = "stream"`` (no per-batch Flower message)."""
BASELINE_NOTE = ("centralized and bank_only: computed by the launcher after the run from both "
                 "staged files with the run's salt (the coordinator holds neither file)")


@dataclass(frozen=True, slots=True)
class PartyFolder:
    """Where one vertical party (``bank`` or ``center``) keeps its files."""

    role: str
    root: Path

    @property
    def name(self) -> str:
        """Node name (also the name of its authentication key)."""
        return "bank-0" if self.role == "bank" else "center"

    @property
    def data(self) -> Path:
        """The party's own file."""
        return self.root / f"{self.role}.csv"

    @property
    def node_toml(self) -> Path:
        """The party's node configuration."""
        return self.root / "node.toml"

    @property
    def flwr_home(self) -> Path:
        """The SuperNode's Flower home."""
        return self.root / "flwr-home"


def party_node_toml(party: PartyFolder, cfg: VerticalConfig, *, coordinator: str,
                    runtime_port: int, ca_cert: Path | None, auth_key: Path | None,
                    trusted_entities: Path | None = None) -> Path:
    """Write ``party``'s ``node.toml`` (the file the institution would write by hand)."""
    node: dict[str, str | int | bool] = {"role": party.role, "name": party.name}
    data: dict[str, str | int | bool] = {"path": str(party.data), "id-col": cfg.id_col}
    if party.role == "bank":
        node["bank-index"] = 0
        data["target"] = cfg.target
    sections: dict[str, dict[str, str | int | bool]] = {
        "node": node, "data": data, "keys": {}, "coordinator": {"address": coordinator},
        "runtime": {"port": runtime_port}}
    if ca_cert is None or auth_key is None:
        sections["coordinator"]["insecure"] = True
    else:
        sections["keys"] = {"root-certificates": str(ca_cert), "auth-private-key": str(auth_key)}
    if trusted_entities is not None:
        sections["keys"]["trusted-entities"] = str(trusted_entities)
    if not sections["keys"]:
        del sections["keys"]
    text = "".join(f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in body.items())
                   + "\n" for name, body in sections.items())
    if cfg.transport == "stream":  # the node may connect to the coordinator's relay
        text += f"[policy]\npeer-relay-hosts = [{toml_value(cfg.relay_host)}]\n"
    return write_private(party.node_toml, text.encode(), force=True)


class VerticalLocalFederation(LocalFederation):
    """Runs one local vertical job; :meth:`run` returns what it wrote to ``results.json``."""

    milestones = VERTICAL_MILESTONES

    def __init__(self, options: LaunchOptions, **kwargs: Any) -> None:
        if options.mode != "vertical":
            raise DeploymentError("VerticalLocalFederation needs --mode vertical.")
        super().__init__(options, **kwargs)
        settings = {"id-col": options.id_col or "uscc", "target": options.target or "default",
                    "transport": "stream", **options.extra}  # it writes both nodes' policy
        self.vcfg = replace(VerticalConfig.from_user_config(settings), bank_data="",
                            center_data="", epochs=options.epochs,
                            batch_size=options.batch_size, seed=options.seed,
                            out=str(self.layout.coordinator_run))
        if self.vcfg.transport == "stream":
            self.milestones = STREAM_MILESTONES

    @property
    def banks(self) -> list[PartyFolder]:  # type: ignore[override]
        """The two parties' folders (bank first)."""
        return [PartyFolder(role, self.layout.out / "nodes" / role) for role in ("bank", "center")]

    def _note_exits(self) -> None:
        """A vertical run needs both parties and has no checkpoint: a party's node that exits
        (e.g. its file lacks the target column) ends the launch now, naming the party and its
        node's last error, instead of after the coordinator's wait for two nodes."""
        for party in self.banks:
            code = self.sup.exited(party.name)
            if code is not None:
                raise DeploymentError(
                    f"the {party.role} node exited (status {code}) before the run finished; a "
                    f"vertical run needs both parties; {self.sup.failure_note(party.name)}")

    def run_config_values(self) -> dict[str, Any]:
        """``mode = "vertical"`` and the ``vertical-*`` settings (the parties' paths empty:
        each node reads its own file from its node config). With certificates the coordinator's
        roster names the two parties' node keys (``vertical-keys-dir``): it sends work to no
        other node."""
        certs = getattr(self, "certs", None)
        if certs is not None:
            write_roster(self.layout.coordinator_keys,
                         [certs.node_pub(party.name) for party in self.banks])
            self.vcfg = replace(self.vcfg, keys_dir=str(self.layout.coordinator_keys))
        values = vertical_run_config(self.vcfg)
        missing = sorted(set(values) - app_config_keys())
        if missing:
            raise DeploymentError(f"pyproject.toml [tool.flwr.app.config] lacks "
                                  f"{', '.join(missing)}; add them.")
        return values

    def prepare_banks(self) -> None:
        """Stage each party's file in its own folder; write the node TOMLs."""
        bank, center = self.banks
        for party in (bank, center):
            party.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.opt.bank_data:
            self.say("copying the bank's and the center's files into their node folders ...")
            # read_bytes: a .csv.gz (an embedded data set, uci/german) lands as a plain CSV
            bank.data.write_bytes(read_bytes(resolve_data_path(self.opt.bank_data)))
            center.data.write_bytes(read_bytes(resolve_data_path(self.opt.center_data)))
        else:
            self.say(f"staging a synthetic pair ({self.opt.rows} rows per party) ...")
            staged = self.layout.out / "staging"
            bank_file, center_file = write_enterprise_pair(staged, self.opt.rows,
                                                           seed=self.opt.seed)
            shutil.move(bank_file, bank.data)
            shutil.move(center_file, center.data)
            shutil.rmtree(staged)
        for party in (bank, center):
            party.data.chmod(0o600)
            party_node_toml(party, self.vcfg, coordinator=self.fleet_address,
                            runtime_port=free_port(),
                            ca_cert=self.certs.ca_cert if self.certs else None,
                            auth_key=self.certs.node_key(party.name) if self.certs else None,
                            trusted_entities=self.release_key.trusted_entities)

    def payload(self, coordinator: RunResults, run_id: int,
                row: Mapping[str, Any]) -> RunResults:
        """The coordinator's results, the baselines, timings and deployment facts."""
        if not isinstance(coordinator, VerticalResults):
            raise DeploymentError("the coordinator wrote the results of a horizontal run for "
                                  "a vertical one; check the run config's mode.")
        bank, center = self.banks
        staged = replace(self.vcfg, bank_data=str(bank.data), center_data=str(center.data))
        baselines = vertical_baselines(staged, coordinator.run_id)
        facts = self.deployment_facts(run_id, row)
        facts = replace(facts, nodes=tuple(replace(node, role=party.role)
                                           for node, party in zip(facts.nodes, (bank, center), strict=True)))
        return replace(
            coordinator, bank_data=str(bank.data), center_data=str(center.data),
            centralized=baselines.centralized, bank_only=baselines.bank_only,
            baselines=BASELINE_NOTE, wall_seconds=time.monotonic() - self.t0,
            federation_ready_seconds=self.since_launch(READY),
            training_started_seconds=self.since_launch(self.milestones[-1][0]),
            deployment=facts)
