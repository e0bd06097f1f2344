"""Run a real local federation: one SuperLink and K bank SuperNodes as separate processes.

    .venv/bin/python scripts/local_federation.py --banks 3 --out runs/local \
        --data german --target bad --rounds 3

    .venv/bin/python scripts/local_federation.py --mode vertical --out runs/local-vertical

    .venv/bin/python scripts/local_federation.py --resume runs/local

The vertical job runs one bank and one credit-center node (synthetic pair of --rows rows per
party unless --bank-data/--center-data are given), 1 epoch of batch 128 by default; its
SuperLink keeps its state in memory (a vertical run has no checkpoint to resume; ``--link-state
file`` keeps a database anyway).
Everything runs on loopback over TLS with node authentication (fresh certificates in
OUT/certs unless --certs names a folder from ``fedcredit certs``); ``--insecure`` turns both
off and must be given explicitly. Writes OUT/results.json like ``fedcredit simulate`` (plus
startup time and the deployment facts) and stops every process it started, also on failure
or Ctrl-C (their PIDs are listed in OUT/processes.json). Exit status 2 on a failed run.

Faults: a bank process that exits is reported and the run goes on with the others while
``--min-banks`` answer (default max(3, ceil(2K/3))); each step waits at most
``--round-timeout`` s for a bank. A run that fails after its first checkpoint prints the
command that continues it: ``--resume OUT`` restarts every process with the first launch's
certificates, keys and options and continues from the last checkpoint (the coordinator
verifies its audit log against the checkpoint first); the model equals that of an
uninterrupted run.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fedcredit.deploy.launch_plan import (  # noqa: E402
    LAUNCH_DEFAULTS,
    LINK_STATE_BY_MODE,
    LINK_STATES,
    LOCAL_DATA,
    LOCAL_TARGET,
    Layout,
    load_launch,
    resume_hint,
)
from fedcredit.deploy.local_federation import LaunchOptions, LocalFederation  # noqa: E402
from fedcredit.deploy.processes import become_subreaper  # noqa: E402
from fedcredit.deploy.vertical_federation import VerticalLocalFederation  # noqa: E402
from federation.run.config import AGGREGATIONS, RunConfig  # noqa: E402
from federation.run.folder import RunFolder  # noqa: E402
from federation.run.results import VerticalResults  # noqa: E402
from federation.run.vertical_config import VerticalConfig  # noqa: E402
from protocols.errors import FedCreditError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("horizontal", "vertical"), default="horizontal",
                   help="horizontal: K banks with the same columns; vertical: one bank and "
                        "one credit-center node with different columns of shared entities.")
    p.add_argument("--banks", type=int, default=None,
                   help="Number of bank nodes (horizontal; required there).")
    p.add_argument("--out", type=Path, default=None, help="New, empty run folder.")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="Continue the run of a previous launch's --out folder from its last "
                        "checkpoint (same certificates, keys and options; other options but "
                        "--timeout are ignored).")
    p.add_argument("--data", default=LOCAL_DATA,
                   help="Credit CSV split into the banks' own files, or an embedded data set: "
                        f"uci, german (default: {LOCAL_DATA}).")
    p.add_argument("--target", default=None,
                   help=f"Target column, 1 = bad (default: {LOCAL_TARGET}; vertical: "
                        f"{VerticalConfig().target}).")
    p.add_argument("--id-col", default="", help="Entity key column.")
    p.add_argument("--rounds", type=int, default=LAUNCH_DEFAULTS["rounds"], help="Federated rounds.")
    p.add_argument("--aggregation", default=LAUNCH_DEFAULTS["aggregation"], choices=AGGREGATIONS)
    p.add_argument("--seed", type=int, default=LAUNCH_DEFAULTS["seed"],
                   help="Seed of the split and the model.")
    p.add_argument("--certs", type=Path, default=None,
                   help="Folder from `fedcredit certs` (default: issue fresh ones in OUT/certs).")
    p.add_argument("--allow-plain", action="store_true",
                   help="Write a [policy] letting the banks accept --aggregation plain or "
                        "secagg (the coordinator then sees every bank's aggregates, or their "
                        "sums); without it the banks refuse both.")
    p.add_argument("--insecure", action="store_true",
                   help="Run WITHOUT TLS and node authentication (throwaway test beds only).")
    p.add_argument("--bank-data", default="",
                   help="Vertical: the bank's file (with --center-data; default: a synthetic "
                        "pair is staged).")
    p.add_argument("--center-data", default="", help="Vertical: the credit center's file.")
    p.add_argument("--rows", type=int, default=LAUNCH_DEFAULTS["rows"],
                   help="Vertical: rows per party of the synthetic pair.")
    p.add_argument("--epochs", type=int, default=LAUNCH_DEFAULTS["epochs"], help="Vertical: training epochs.")
    p.add_argument("--batch-size", type=int, default=LAUNCH_DEFAULTS["batch_size"],
                   help="Vertical: mini-batch size.")
    p.add_argument("--min-banks", type=int, default=RUN_DEFAULTS.min_banks,
                   help="Banks that must answer each step (0: max(3, ceil(2K/3)), never below "
                        "the banks' [policy] min-contributors).")
    p.add_argument("--round-timeout", type=float, default=RUN_DEFAULTS.round_timeout,
                   help="Seconds the coordinator waits for a bank's answer to one step.")
    p.add_argument("--timeout", type=float, default=LAUNCH_DEFAULTS["timeout"],
                   help="Give up after this many s.")
    p.add_argument("--link-state", choices=LINK_STATES, default="",
                   help="Where the SuperLink keeps its state: file (OUT/superlink/state.db, "
                        "needed by --resume after a SuperLink crash) or memory (faster, lost "
                        "when it stops). Default: "
                        + ", ".join(f"{m} {s}" for m, s in LINK_STATE_BY_MODE.items()) + ".")
    p.add_argument("--record-wire", action="store_true",
                   help="Every node records the messages it gets and sends (OUT/bank-<k>/"
                        "wire.jsonl, merged into OUT/wire.jsonl; `fedcredit audit wire`).")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="Further run-config setting, e.g. --set learning-rate=0.1.")
    return p.parse_args(argv)


def _extra(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair!r}: write KEY=VALUE.")
        out[key.strip()] = value.strip()
    return out


RUN_DEFAULTS = RunConfig()


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _route_stop_signals() -> None:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP end the launch through its cleanup.

    SIGINT is routed explicitly: a process started in the background by a non-interactive
    shell (``cmd &`` in a script, a CI job) inherits SIGINT ignored, and Python then leaves it
    ignored, so Ctrl-C or ``kill -INT`` would not stop the launcher (it ran on to the end of
    the run). SIGHUP inherited ignored (``nohup``) stays ignored: the operator asked for that.
    """
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _interrupt)


def _reliability(args: argparse.Namespace) -> dict[str, Any]:
    """``--min-banks``/``--round-timeout`` as run-config settings (horizontal runs)."""
    if args.mode == "vertical":
        return {}
    return {"min-banks": args.min_banks, "round-timeout": args.round_timeout}


def _auc(metrics: Any) -> str:
    """A baseline's AUC, or n/a when the results hold none."""
    return "n/a" if metrics is None else f"{metrics.auc:.4f}"


def _print_resume(out: Path) -> None:
    """After a failure past the first checkpoint: the command that continues the run."""
    if Layout(out.resolve()).checkpoint.is_file():
        print(f"the run has a checkpoint; continue it with:\n  {resume_hint(out)}",
              file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the launcher; 0 on a completed run, 2 on failure, 130 on interrupt."""
    args = parse_args(argv)
    vertical = args.mode == "vertical"
    if (args.out is None) == (args.resume is None):
        print("error: give --out for a new launch, or --resume RUN_DIR to continue one.",
              file=sys.stderr)
        return 2
    if not vertical and args.banks is None and args.resume is None:
        print("error: --banks is required for a horizontal federation.", file=sys.stderr)
        return 2
    _route_stop_signals()
    out = args.out or args.resume
    try:
        options = load_launch(args.resume, timeout=args.timeout) if args.resume else \
            LaunchOptions(
            banks=args.banks or 1, out=args.out, data_path=args.data,
            target=args.target or (VerticalConfig().target if vertical else LOCAL_TARGET),
            id_col=args.id_col,
            rounds=args.rounds, aggregation=args.aggregation, seed=args.seed,
            insecure=args.insecure, allow_plain=args.allow_plain, certs=args.certs,
            timeout=args.timeout,
            extra={**_reliability(args), **_extra(args.set)}, mode=args.mode,
            bank_data=args.bank_data, center_data=args.center_data, rows=args.rows,
            epochs=args.epochs, batch_size=args.batch_size, record_wire=args.record_wire,
            link_state=args.link_state)
        vertical = options.mode == "vertical"
        kind = VerticalLocalFederation if vertical else LocalFederation
        launcher = kind(options, reap_orphans=become_subreaper())
        results = launcher.run()
    except FedCreditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        _print_resume(out)
        return 2
    except KeyboardInterrupt:
        print("interrupted; every process started was stopped.", file=sys.stderr)
        _print_resume(out)
        return 130
    fed, path = results.federated, RunFolder(out).results
    if fed is None:  # a results format where the federated metrics may be absent
        print(f"the run completed without federated metrics; results: {path}")
        return 0
    if isinstance(results, VerticalResults):
        print(f"vertical: intersection {results.psi.intersection}; federated AUC "
              f"{fed.auc:.4f} KS {fed.ks:.4f}; centralized AUC "
              f"{_auc(results.centralized)}; bank-only AUC "
              f"{_auc(results.bank_only)}; wall {results.wall_seconds:.1f} s; "
              f"results: {path}")
        return 0
    startup = "n/a" if results.startup_seconds is None else f"{results.startup_seconds:.1f} s"
    print(f"federated AUC {fed.auc:.4f} KS {fed.ks:.4f}; startup to first round {startup}; "
          f"wall {results.wall_seconds:.1f} s; results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
