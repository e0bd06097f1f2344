"""A real federation on one machine: one SuperLink, K bank SuperNodes, ``flwr run``.

Every party is a separate OS process on loopback, talking Flower's deployment protocol over
TLS with node authentication (unless ``insecure`` is asked for explicitly). Steps:

1. certificates (CA, SuperLink certificate, one authentication key per bank), the run config,
   a staged copy of the app (:mod:`fedcredit.deploy.app_bundle`) bundled and signed with the
   federation's release key (:mod:`fedcredit.deploy.release`; made fresh unless ``--certs``
   holds ``release.key``);
2. the app registry serving that signed release (loopback), ``flower-superlink`` on loopback
   only (its Control API has no account authentication) and the Fleet gateway the banks dial
   (:mod:`fedcredit.deploy.fleet_gateway`: Fleet calls only); meanwhile each bank's own folder
   (data slice, key share, ``node.toml`` with the trusted-entities file, see
   :mod:`fedcredit.deploy.local_parties`); wait until both answer TLS;
3. ``flwr run @fedcredit/fedcredit==<version> --stream`` on the loopback Control API (the
   SuperLink fetches the signed release from the registry; the coordinator starts and waits
   for the banks), then
   ``flwr supernode register`` for each bank's public key, then each bank node the way a bank
   starts it (``fedcredit node``, i.e. :mod:`fedcredit.deploy.node_runner`);
4. wait for the run to end, check its status with ``flwr ls``, read the coordinator's
   ``results.json``, add timings and the deployment facts, write ``OUT/results.json``. A bank
   process that exits is reported, not fatal: the coordinator goes on with the others while
   ``min-banks`` of them answer (as in a real deployment, where the credit center cannot see
   the banks' processes); the SuperLink or the gateway exiting ends the launch;
5. stop every process started (also on an error, a timeout or Ctrl-C) and record their PIDs
   in ``OUT/processes.json``.

Fault tolerance: the SuperLink keeps its state in ``OUT/superlink/state.db`` (``--database``;
a vertical launch, which has no checkpoint to resume, keeps it in memory unless
``link_state="file"``: :data:`~fedcredit.deploy.launch_plan.LINK_STATE_BY_MODE`), the bank
nodes retry a lost coordinator a bounded time (``[coordinator] max-retries``,
``max-wait-time`` in their ``node.toml``), and ``OUT/launch.json`` records the options so that
``--resume OUT`` (:meth:`LocalFederation.run` with ``resume``) restarts every process with the
same certificates, keys and bank folders and continues the coordinator's run from its last
checkpoint (the ServerApp verifies the audit chain against the checkpoint's head first).

Timings in ``results.json`` (seconds since launch, observed in the banks' SuperNode logs):
``federation_ready_seconds`` until the coordinator's first request reaches a bank,
``startup_seconds`` until the first round starts (a train request reaches a bank), and
``first_round_seconds`` until the first round has finished.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from fedcredit.deploy.app_bundle import stage_app
from fedcredit.deploy.app_registry import registry_url
from fedcredit.deploy.certs import CertificatePaths, CertificateRequest, write_federation_certificates
from fedcredit.deploy.errors import DeploymentError, InsecureRefusedError, TLSHandshakeError
from fedcredit.deploy.flower_commands import (
    LinkSettings,
    cli_config_toml,
    flat_toml,
    gateway_command,
    registry_command,
    run_command,
    runtime_env,
    status_command,
    superlink_command,
)
from fedcredit.deploy.launch_plan import (
    LOOPBACK,
    LaunchOptions,
    Layout,
    check_out_folder,
    check_writable,
    free_port,
    run_config_values,
    save_launch,
)
from fedcredit.deploy.local_parties import (
    BankFolder,
    bank_node_toml,
    distribute_keys,
    write_bank_slices,
    write_roster,
)
from fedcredit.deploy.processes import ProcessSupervisor
from fedcredit.deploy.release import ReleasePaths, SignedRelease, sign_app, write_release_key
from fedcredit.deploy.tls_check import check_tls
from federation.run.config import REPO_ROOT
from federation.run.folder import WIRE_FILE, RunFolder
from federation.run.results import (
    Deployment,
    DeploymentNode,
    HorizontalResults,
    RunResults,
    read_results,
)
from federation.steps.secure_sum import summation_scheme
from federation.wire.records import STEP_SCHEMA, STEP_TRAIN
from federation.wire.transcript import merge_transcripts
from server.roster import JoinRule, JoinVerdict

READY_TIMEOUT_S = 30.0
POLL_S = 0.25
JOINED = "SuperNode ID:"
READY = f"Receiving: {STEP_SCHEMA.message_type}"
ROUND_ONE = f"Receiving: {STEP_TRAIN.message_type}"
"""The first ``train`` request (FedAvg's ``train``, or a boosted-tree run's ``train.tree_level``)."""
MILESTONES = ((JOINED, "a bank node joined"),
              (READY, "federation ready: the coordinator's first request reached a bank"),
              (ROUND_ONE, "first round started: a train request reached a bank"))
"""Lines of Flower 1.42's SuperNode log that mark progress (observed in the banks' logs)."""
RUN_ID_RE = re.compile(r"Successfully started run (\d+)")

class LocalFederation:
    """Runs one local federation; :meth:`run` returns what it wrote to ``results.json``."""

    milestones: tuple[tuple[str, str], ...] = MILESTONES
    """Log markers of progress, in order (the last one ends the watching)."""

    def __init__(self, options: LaunchOptions, *, say: Callable[[str], None] = print,
                 reap_orphans: bool = False) -> None:
        self.opt, self._say = options, say
        self.layout = Layout(options.out.resolve())
        self.cfg = options.run_config(self.layout)
        self.port = free_port()
        self.address = f"{LOOPBACK}:{self.port}"
        """The SuperLink (Fleet, Control, Runtime APIs): loopback only, for ``flwr``."""
        self.fleet_port = free_port()
        self.fleet_address = f"{LOOPBACK}:{self.fleet_port}"
        """The Fleet gateway: the one address the banks dial (Fleet calls only)."""
        self.registry_port = free_port()
        self.sup = ProcessSupervisor(self.layout.processes, reap_orphans=reap_orphans)
        self.t0 = time.monotonic()
        self.milestone_at: dict[str, float] = {}
        self.certs: CertificatePaths | None = None
        self.release_key = ReleasePaths(self.layout.release_key)
        self.release: SignedRelease | None = None
        self.exited_banks: dict[str, int] = {}
        """Bank processes that exited during the run, with their exit status."""
        self.link_state_existed = False

    def say(self, text: str) -> None:
        """Progress line with the seconds since launch."""
        self._say(f"[{time.monotonic() - self.t0:6.1f} s] {text}")

    @property
    def banks(self) -> list[BankFolder]:
        """Every bank's folder."""
        return [self.layout.bank(k) for k in range(self.opt.banks)]

    def run(self) -> RunResults:
        """Prepare, start, run, collect; always stop every process started."""
        self.t0 = time.monotonic()
        self.prepare_coordinator()
        try:
            self.start_superlink()
            self.prepare_banks()  # while the SuperLink boots
            self.wait_for_superlink()
            if self.link_state_existed:  # resume: the SuperLink's state lists the old sessions
                self.start_nodes()
                self.wait_for_nodes()
                self.start_run()
            else:
                self.start_run()  # the coordinator waits for the banks to join
                self.register_nodes()
                self.start_nodes()
            run_id = self.wait_for_run()
            return self.collect(run_id)
        finally:
            self.say("stopping every process started ...")
            # banks first, while the SuperLink can still record their clean deactivation
            # (a node restarted later is then not refused for its stale session)
            self.sup.stop_many([b.name for b in self.banks])
            self.sup.stop_all()
            left = self.sup.running()
            if left:
                self.say(f"WARNING: still running: {', '.join(str(r.pid) for r in left)}")
            if self.opt.record_wire:
                merge_transcripts([self.wire_part(b.node_toml) for b in self.banks],
                                  RunFolder(self.layout.out).wire)

    @staticmethod
    def wire_part(node_toml: Path) -> Path:
        """A node's own transcript, beside its node.toml (``--record-wire``)."""
        return node_toml.with_name(WIRE_FILE)

    # ---------------------------------------------------------------- preparation
    def prepare_coordinator(self) -> None:
        """Certificates, the run config and the ``flwr`` CLI's connection (a resume reuses the
        first launch's certificates and keys)."""
        if self.opt.resume:
            check_writable(self.layout.out)
            self.say(f"resuming the run in {self.layout.coordinator_run} from its checkpoint")
            self._keep_previous_logs()
        else:
            check_out_folder(self.opt.out)
            self.layout.out.mkdir(parents=True, exist_ok=True)
            save_launch(self.opt, self.layout)
        self.certs = self.certificates()
        self.layout.coordinator.mkdir(parents=True, exist_ok=True)
        self.layout.run_config_file.write_text(flat_toml(self.run_config_values()))
        stage_app(self.layout.app)
        self.release = self.sign_release()
        self.layout.cli_home.mkdir(parents=True, exist_ok=True)
        (self.layout.cli_home / "config.toml").write_text(
            cli_config_toml(self.address, self.certs.ca_cert if self.certs else None))

    def _keep_previous_logs(self) -> None:
        """Move the interrupted launch's logs aside (``logs.1``, ``logs.2``, ...), so that
        this launch's milestones are read from its own logs."""
        if not self.layout.logs.is_dir():
            return
        number = 1
        while self.layout.logs.with_name(f"logs.{number}").exists():
            number += 1
        self.layout.logs.rename(self.layout.logs.with_name(f"logs.{number}"))

    def sign_release(self) -> SignedRelease:
        """Bundle the staged app and sign it with the release key (``--certs``' or a new one)."""
        if self.opt.certs is not None and ReleasePaths(self.opt.certs).private_key.is_file():
            self.release_key = ReleasePaths(self.opt.certs.resolve())
        elif not (self.opt.resume and self.release_key.private_key.is_file()):
            write_release_key(self.layout.release_key)
        release = sign_app(self.layout.app, self.release_key.private_key, self.layout.release)
        self.say(f"signed {release.app_spec} (sha256 {release.fab_sha256[:12]}) with "
                 f"{release.key_id}")
        return release

    def run_config_values(self) -> dict[str, Any]:
        """The run config handed to ``flwr run``."""
        return run_config_values(self.cfg, self.opt)

    def prepare_banks(self) -> None:
        """Each bank's data slice, key share and ``node.toml``; the coordinator's keys."""
        if self.opt.resume:
            self.say("reusing the banks' data slices and key shares")
        else:
            self.say(f"writing {self.opt.banks} bank data slices and key shares ...")
            write_bank_slices(self.cfg, self.banks)
            distribute_keys(self.cfg, self.layout.out / "ceremony",
                            self.layout.coordinator_keys, self.banks)
            if self.certs is not None:
                write_roster(self.layout.coordinator_keys,
                             [self.certs.node_pub(b.name) for b in self.banks])
        scheme = summation_scheme(self.cfg.aggregation)
        if not scheme.needs_paillier_key:
            seen = "the banks' summed updates" if scheme.masked else "every bank's updates"
            self.say(f"WARNING: --allow-plain: the banks accept a '{self.cfg.aggregation}' run; "
                     f"the coordinator sees {seen} (and so the model)." if self.opt.allow_plain
                     else f"note: the banks' [policy] allows encrypted runs only, so they will "
                     f"refuse this '{self.cfg.aggregation}' run (the coordinator would see "
                     f"{seen}); pass --allow-plain to let them accept it.")
        for bank in self.banks:
            bank_node_toml(bank, self.cfg, coordinator=self.fleet_address,
                           runtime_port=free_port(),
                           ca_cert=self.certs.ca_cert if self.certs else None,
                           auth_key=self.certs.node_key(bank.name) if self.certs else None,
                           trusted_entities=self.release_key.trusted_entities,
                           allow_plain=self.opt.allow_plain)

    def certificates(self) -> CertificatePaths | None:
        """The certificates to use: given, freshly issued, or none (explicit --insecure)."""
        if self.opt.insecure:
            self.say("WARNING: --insecure: no TLS and no node authentication; every byte "
                     "between the nodes and the SuperLink travels in clear text.")
            return None
        if self.opt.certs is None and self.opt.resume:
            return CertificatePaths(self.layout.certs)
        if self.opt.certs is None:
            names = tuple(b.name for b in self.banks)
            self.say("issuing a CA, the SuperLink certificate and bank authentication keys ...")
            return write_federation_certificates(self.layout.certs,
                                                 CertificateRequest(nodes=names))
        paths = CertificatePaths(self.opt.certs.resolve())
        needed = [paths.ca_cert, paths.server_cert, paths.server_key,
                  *(paths.node_key(b.name) for b in self.banks),
                  *(paths.node_pub(b.name) for b in self.banks)]
        missing = [str(p) for p in needed if not p.is_file()]
        if missing:
            raise InsecureRefusedError(
                f"refusing to run without TLS: {', '.join(missing)} missing; create them with "
                "`fedcredit certs`, or pass --insecure explicitly for a throwaway test bed.")
        return paths

    # ---------------------------------------------------------------- processes
    def start_superlink(self) -> None:
        """Start the app registry, the SuperLink on loopback and the Fleet gateway (see
        :meth:`wait_for_superlink`)."""
        certs = self.certs
        if self.release is None:
            raise DeploymentError("sign the release before starting the SuperLink.")
        link = self.link_settings()
        # in memory: a new SuperLink knows no node, so the nodes are always registered
        self.link_state_existed = link.database is not None and link.database.is_file()
        self.layout.link_database.parent.mkdir(parents=True, exist_ok=True)  # its folder
        self.sup.start("registry", registry_command(self.registry_port, [self.release.folder]),
                       log=self.layout.logs / "registry.log", env=runtime_env(self.layout.link_home),
                       cwd=REPO_ROOT)
        self.say(f"starting the SuperLink on {self.address} (loopback only) and the Fleet "
                 f"gateway on {self.fleet_address} "
                 f"({'TLS + node authentication' if certs else 'INSECURE'}) ...")
        self.sup.start("superlink", superlink_command(link), log=self.layout.logs / "superlink.log",
                       env=runtime_env(self.layout.link_home,
                                       registry=registry_url(self.registry_port)),
                       cwd=self.layout.out)
        self.sup.start("gateway", gateway_command(self.fleet_address, self.address, link),
                       log=self.layout.logs / "gateway.log", env=runtime_env(self.layout.link_home),
                       cwd=REPO_ROOT)

    def link_settings(self) -> LinkSettings:
        """The SuperLink's address, certificates and state: ``OUT/superlink/state.db``, or
        none (in memory) when :attr:`LaunchOptions.link_in_memory`."""
        certs = self.certs
        return LinkSettings(LOOPBACK, self.port, certs.ca_cert if certs else None,
                            certs.server_cert if certs else None,
                            certs.server_key if certs else None, node_auth=certs is not None,
                            database=None if self.opt.link_in_memory else self.layout.link_database)

    def wait_for_superlink(self) -> None:
        """Wait until the SuperLink and the gateway answer (verified TLS when secure)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        for name, port in (("superlink", self.port), ("gateway", self.fleet_port)):
            while not self._answers(self.certs, port):
                self._check_alive(["registry", "superlink", "gateway"])
                if time.monotonic() > deadline:
                    raise DeploymentError(
                        f"the {name} did not answer on {LOOPBACK}:{port} within "
                        f"{READY_TIMEOUT_S:.0f} s; {self.sup.failure_note(name)}")
                time.sleep(POLL_S / 2)
            self.say(f"the {name} answers")

    def _answers(self, certs: CertificatePaths | None, port: int) -> bool:
        try:
            if certs is None:
                socket.create_connection((LOOPBACK, port), timeout=1).close()
            else:
                check_tls(f"{LOOPBACK}:{port}", certs.ca_cert, timeout=1)
            return True
        except TLSHandshakeError:
            raise
        except DeploymentError:
            return False
        except OSError:
            return False

    def register_nodes(self) -> None:
        """Register every bank's public key (``flwr supernode register``, one CLI process)."""
        if self.certs is None:
            return
        if self.link_state_existed:
            self.say("the SuperLink's database still holds the registered node keys")
            return
        self.say(f"registering {len(self.banks)} node authentication keys ...")
        argv = [sys.executable, "-m", "fedcredit.deploy.register_nodes",
                *(str(self.certs.node_pub(b.name)) for b in self.banks)]
        self.sup.start("register", argv, env=runtime_env(self.layout.cli_home), cwd=REPO_ROOT,
                       log=self.layout.logs / "register.log")
        try:
            code = self.sup.popens["register"].wait(timeout=READY_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise DeploymentError("registering the bank keys did not finish in time.") from exc
        if code != 0:
            raise DeploymentError(f"registering the bank keys failed (exit {code}); "
                                  f"{self.sup.failure_note('register')}")

    def start_run(self) -> None:
        """``flwr run @publisher/app==version --stream`` on the loopback Control API (the
        SuperLink fetches the signed release from the registry; ends when the run ends)."""
        if self.release is None:
            raise DeploymentError("sign the release before starting the run.")
        self.say(f"flwr run {self.release.app_spec} ...")
        self.sup.start("flwr-run", run_command(self.release.app_spec, self.layout.run_config_file),
                       env=runtime_env(self.layout.cli_home), cwd=self.layout.coordinator,
                       log=self.layout.logs / "flwr-run.log")

    def start_nodes(self) -> None:
        """Start every bank node the way a bank does: ``fedcredit node --config node.toml``."""
        self.say(f"starting {len(self.banks)} nodes ({', '.join(b.name for b in self.banks)}) ...")
        for bank in self.banks:
            argv = [sys.executable, "-m", "fedcredit.deploy.node_runner", "--config",
                    str(bank.node_toml)]
            if self.opt.record_wire:
                argv += ["--record-wire", str(self.wire_part(bank.node_toml))]
            self.sup.start(bank.name, argv, env=runtime_env(bank.flwr_home), cwd=REPO_ROOT,
                           log=self.layout.logs / f"{bank.name}.log")

    def wait_for_nodes(self, timeout: float = 180.0) -> None:
        """On resume, before ``flwr run``: wait until the bank nodes are active again.

        The SuperLink's database still lists the nodes' previous sessions as online until
        they miss two heartbeats; a coordinator started meanwhile would count them, send its
        first request and get "Node Unavailable" back for nodes that are still re-activating
        (``fedcredit node`` retries them, see :mod:`fedcredit.deploy.node_runner`).
        The wait follows the coordinator's join rule (:class:`server.roster.JoinRule`) with
        what only the launcher knows, which bank processes exited: those are not waited for
        (the coordinator goes on without them, as a round does, while ``min-banks`` are
        active); a bank whose ``fedcredit node`` still runs is waited for up to ``timeout``
        (re-activating can take Flower's heartbeat patience of 60 s), then the run goes on
        with the active ones if they are at least ``min-banks``. Waiting less would start a
        resume without a bank that was about to rejoin, and its model would differ from the
        uninterrupted run's.
        """
        rule = JoinRule(self.opt.banks, self.cfg.required_banks, timeout, timeout)
        started = time.monotonic()
        while True:
            self._note_exits()
            active = self._active_banks()
            verdict = rule.verdict(len(active), time.monotonic() - started,
                                   lost=len(self.exited_banks))
            if verdict is JoinVerdict.GO:
                break
            if verdict is JoinVerdict.FAIL:
                raise DeploymentError(
                    f"only {len(active)} of {self.opt.banks} bank nodes are active again, "
                    f"min-banks = {rule.required} needed (waited {time.monotonic() - started:.0f}"
                    f" s; logs in {self.layout.logs}).")
            time.sleep(POLL_S * 2)
        missing = [b.name for b in self.banks if b.name not in active]
        self.say("every bank node is active again" if not missing else
                 f"{len(active)} of {self.opt.banks} bank nodes are active again; the run goes "
                 f"on without {', '.join(missing)} (min-banks = {rule.required})")

    def _active_banks(self) -> list[str]:
        """Banks whose node process runs and whose log shows it joined."""
        active = []
        for bank in self.banks:
            log = self.sup.logs[bank.name]
            if bank.name not in self.exited_banks and log.exists() and \
                    JOINED in log.read_text(errors="replace"):
                active.append(bank.name)
        return active

    def _check_alive(self, names: list[str]) -> None:
        for name in names:
            code = self.sup.exited(name)
            if code is not None:
                raise DeploymentError(f"{name} stopped (exit {code}) before the run finished; "
                                      f"{self.sup.failure_note(name)}")

    # ---------------------------------------------------------------- the run
    def wait_for_run(self) -> int:
        """Wait for ``flwr run --stream`` to end while every node stays up; the run id."""
        deadline = self.t0 + self.opt.timeout
        tick = 0
        while self.sup.exited("flwr-run") is None:
            if time.monotonic() > deadline:
                raise DeploymentError(f"the run did not finish within {self.opt.timeout:.0f} s "
                                      f"(logs in {self.layout.logs}).")
            self._check_alive(["superlink", "gateway"])
            self._note_exits()
            self._note_milestones()
            if tick % 8 == 0:
                self.sup.refresh()
            tick += 1
            time.sleep(POLL_S)
        self._note_milestones()
        match = RUN_ID_RE.search(self.sup.logs["flwr-run"].read_text(errors="replace"))
        if self.sup.exited("flwr-run") != 0 or match is None:
            raise DeploymentError(f"flwr run failed; {self.sup.failure_note('flwr-run')}")
        return int(match.group(1))

    def _note_exits(self) -> None:
        """Report each bank process that exited (once); the run goes on without it."""
        for bank in self.banks:
            code = self.sup.exited(bank.name)
            if code is not None and bank.name not in self.exited_banks:
                self.exited_banks[bank.name] = code
                self.say(f"{bank.name} exited (status {code}); the coordinator goes on with "
                         f"the other banks while min-banks = {self.cfg.required_banks} of "
                         f"{self.opt.banks} answer (its log: {self.sup.logs[bank.name]})")

    def _note_milestones(self) -> None:
        """Report milestones the bank logs show, with the time they were first seen."""
        if self.milestones[-1][0] in self.milestone_at:
            return
        texts = [self.sup.logs[b.name].read_text(errors="replace") for b in self.banks
                 if b.name in self.sup.logs and self.sup.logs[b.name].exists()]
        for marker, text in self.milestones:
            if marker not in self.milestone_at and any(marker in t for t in texts):
                self.milestone_at[marker] = time.monotonic()
                self.say(text)

    def since_launch(self, marker: str) -> float | None:
        """Seconds from launch to a milestone (None if it was not seen)."""
        return self.milestone_at[marker] - self.t0 if marker in self.milestone_at else None

    def run_status(self, run_id: int) -> dict[str, Any]:
        """The run's row from ``flwr ls`` once it has finished (polled until the deadline:
        the log stream may end before the run does)."""
        deadline = self.t0 + self.opt.timeout
        while True:
            out = subprocess.run(status_command(run_id), capture_output=True, text=True,
                                 env=runtime_env(self.layout.cli_home), timeout=60,
                                 cwd=self.layout.coordinator)
            try:
                row = json.loads(out.stdout)["runs"][0]
            except (ValueError, KeyError, IndexError):
                raise DeploymentError(f"flwr ls failed: {out.stdout}{out.stderr}") from None
            if str(row.get("status", "")).startswith("finished"):
                return dict(row)
            if time.monotonic() > deadline:
                raise DeploymentError(f"run {run_id} is still {row.get('status')} after "
                                      f"{self.opt.timeout:.0f} s (logs in {self.layout.logs}).")
            self._check_alive(["superlink"])
            self._note_exits()
            time.sleep(2.0)

    def collect(self, run_id: int) -> RunResults:
        """Check the run completed; write ``OUT/results.json``; return what it holds."""
        row = self.run_status(run_id)
        if row["status"] != "finished:completed":
            raise DeploymentError(self.failed_run(run_id, row))
        coordinator = read_results(RunFolder(self.layout.coordinator_run).results)
        results = self.payload(coordinator, run_id, row)
        results.write(RunFolder(self.layout.out).results)
        return results

    def failed_run(self, run_id: int, row: Mapping[str, Any]) -> str:
        """One line for a run that did not complete: its status and Flower's details (which
        hold the ServerApp's exception message, the line its traceback ends with), then the
        coordinator log's path; the traceback stays in the log (frames inside Flower and the
        SuperLink's copy of the app tell the operator nothing more). Without details, the
        log's last error line stands in for them."""
        details = " ".join(str(row.get("status-details") or "").split())
        where = (f"coordinator log: {self.sup.logs['flwr-run']}" if details
                 else self.sup.failure_note("flwr-run"))
        return f"run {run_id} ended as {row['status']}" + \
            (f" ({details})" if details else "") + f"; {where}"

    def payload(self, coordinator: RunResults, run_id: int,
                row: Mapping[str, Any]) -> RunResults:
        """``results.json``: the coordinator's results plus timings and deployment facts."""
        if not isinstance(coordinator, HorizontalResults):
            raise DeploymentError("the coordinator wrote the results of a vertical run for a "
                                  "horizontal one; check the run config's mode.")
        history = coordinator.history or ()
        startup = self.since_launch(ROUND_ONE)
        first_round = startup + history[0].seconds if startup is not None and history else None
        return replace(
            coordinator, dataset=str(self.opt.data_path), banks=self.opt.banks,
            rounds=self.opt.rounds, aggregation=self.opt.aggregation,
            wall_seconds=time.monotonic() - self.t0, startup_seconds=startup,
            federation_ready_seconds=self.since_launch(READY),
            first_round_seconds=first_round,
            deployment=self.deployment_facts(run_id, row))

    def deployment_facts(self, run_id: int, row: Mapping[str, Any]) -> Deployment:
        """The ``deployment`` section of ``results.json``."""
        secure = self.certs is not None
        return Deployment(
            engine=f"flower {version('flwr')} deployment runtime (SuperLink, SuperNodes, "
                   "flwr run)",
            tls=secure, node_auth=secure, superlink=self.address,
            run_id=str(run_id), status=row["status"],
            nodes=tuple(DeploymentNode(name=b.name, pid=self.sup.popens[b.name].pid,
                                       data=str(b.data)) for b in self.banks),
            coordinator_results=str(RunFolder(self.layout.coordinator_run).results),
            logs=str(self.layout.logs), processes=str(self.layout.processes))
