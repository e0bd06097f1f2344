"""The fault drills themselves (see :mod:`fedcredit.deploy.fault_drills` for what each checks).

Each function runs one drill in its own folder below ``base`` and returns a
:class:`~fedcredit.deploy.fault_drills.DrillResult`; a drill that cannot run here (no right
to mount a tmpfs) returns ``passed=False`` with a note saying so, never a fake pass.
"""

from __future__ import annotations

import csv
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedcredit.deploy.errors import DeploymentError
from fedcredit.deploy.fault_drills import (
    BAD_CELL,
    BANK,
    DrillOptions,
    DrillResult,
    Launch,
    audit_records,
    dropouts,
    kill_tree,
    leaks,
    process_pid,
    remove,
    restart_bank,
    rounded,
    rounds_done,
    same_model,
    trained_in_round_after,
)
from fedcredit.deploy.launch_plan import Layout
from server.audit import verify_audit

REJOIN_DELAY_S = 10.0
TMPFS_BYTES = 40 * 2**20
"""Above the coordinator's 32 MiB room check, so the run starts; then filled."""


def baseline(base: Path, opt: DrillOptions) -> DrillResult:
    """The uninterrupted run the other drills compare their model with."""
    out = base / "baseline"
    remove(out)
    launch = Launch(["--out", str(out), *opt.launch_args()], base / "baseline.log")
    code = launch.wait(opt.timeout)
    return DrillResult("baseline", code == 0, recover_s=rounded(time.monotonic() - launch.t0),
                       note=f"exit {code}; uninterrupted wall time in recover_s")


def kill_bank(base: Path, opt: DrillOptions, *, restart: bool = False) -> DrillResult:
    """SIGKILL bank ``BANK`` after round 1 (and, with ``restart``, start it again)."""
    name = "restart-bank" if restart else "kill-bank"
    out = base / name
    remove(out)
    launch = Launch(["--out", str(out), *opt.launch_args()], base / f"{name}.log")
    launch.until(lambda: rounds_done(out) >= 1, opt.timeout, "round 1 checkpoint")
    kill_tree(process_pid(out, f"bank-{BANK}"))
    killed, done_at = time.monotonic(), rounds_done(out)
    node: subprocess.Popen[bytes] | None = None
    try:
        if restart:
            time.sleep(REJOIN_DELAY_S)
            node = restart_bank(out, BANK, Layout(out).logs / f"bank-{BANK}-restarted.log")
        detected = launch.until(lambda: bool(dropouts(out)), opt.timeout, "recorded dropout")
        recovered = None
        if restart:
            recovered = launch.until(lambda: trained_in_round_after(out, BANK, done_at + 1),
                                     opt.timeout, f"bank {BANK} training again")
        code = launch.wait(opt.timeout)
    finally:
        if node is not None:
            kill_tree(node.pid)
            node.wait(timeout=30)
    end = recovered if restart else time.monotonic()
    dropped = dropouts(out)
    passed = code == 0 and bool(dropped) and (not restart or recovered is not None)
    return DrillResult(name, passed, rounded(detected - killed), rounded((end or killed) - killed),
                       note=f"exit {code}; killed after round {done_at}; dropouts: "
                            f"{dropped[:2]}"[:400])


def superlink_resume(base: Path, opt: DrillOptions, reference: Path | None) -> DrillResult:
    """SIGKILL the SuperLink after round 2; ``--resume``; compare with ``reference``."""
    out = base / "superlink-resume"
    remove(out)
    first = Launch(["--out", str(out), *opt.launch_args()], base / "superlink-resume.log")
    first.until(lambda: rounds_done(out) >= min(2, opt.rounds - 1), opt.timeout,
                "round 2 checkpoint")
    kill_tree(process_pid(out, "superlink"))
    killed = time.monotonic()
    code = first.wait(opt.timeout)
    detected = time.monotonic()
    hinted = "--resume" in first.text()
    second = Launch(["--resume", str(out), "--timeout", str(opt.timeout)],
                    base / "superlink-resume.resumed.log")
    resumed = second.wait(opt.timeout)
    equal = same_model(out, reference) if reference is not None and resumed == 0 else None
    intact = verify_audit(Layout(out).coordinator_run).ok
    passed = code != 0 and hinted and resumed == 0 and intact and equal is not False
    return DrillResult("superlink-resume", passed, rounded(detected - killed),
                       rounded(time.monotonic() - killed), equal,
                       f"first launch exit {code} (resume command printed: {hinted}); resumed "
                       f"exit {resumed}; audit chain intact: {intact}")


def disk_full(base: Path, opt: DrillOptions, reference: Path | None) -> DrillResult:
    """The coordinator's folder on a tmpfs filled after round 1; resume once room is freed."""
    out = base / "disk-full"
    remove(out)
    launch = Launch(["--out", str(out), *opt.launch_args()], base / "disk-full.log")
    run_dir = Layout(out).coordinator_run
    launch.until(lambda: Layout(out).coordinator.is_dir(), 120, "coordinator folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs",
                              str(run_dir)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        launch.proc.terminate()
        launch.wait(60)
        return DrillResult("disk-full", False, note="skipped: mounting a small tmpfs needs "
                           f"root here ({mounted.stderr.strip()[:120]}); the ENOSPC path is "
                           "covered by tests/server/test_checkpoint.py")
    try:
        return _fill_and_resume(base, opt, launch, out, run_dir, reference)
    finally:
        subprocess.run(["umount", "-l", str(run_dir)], check=False, capture_output=True)


def _fill_and_resume(base: Path, opt: DrillOptions, launch: Launch, out: Path, run_dir: Path,
                     reference: Path | None) -> DrillResult:
    launch.until(lambda: rounds_done(out) >= 1, opt.timeout, "round 1 checkpoint")
    filler = run_dir / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:  # fill the tmpfs, then give back a few KiB: the audit record fits, the checkpoint not
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - 3 * 4096))
    full = time.monotonic()
    code = launch.wait(opt.timeout)
    detected = time.monotonic()
    text = launch.text()
    one_line = "Traceback" not in text.split("error:", 1)[-1].splitlines()[0] \
        if "error:" in text else False
    kinds = [r.get("kind") for r in audit_records(out)]
    filler.unlink()
    second = Launch(["--resume", str(out), "--timeout", str(opt.timeout)],
                    base / "disk-full.resumed.log")
    resumed = second.wait(opt.timeout)
    equal = same_model(out, reference) if reference is not None and resumed == 0 else None
    after = [r.get("kind") for r in audit_records(out)]
    intact = verify_audit(run_dir).ok
    stale = sorted(p.name for p in run_dir.glob("*.tmp"))
    passed = code != 0 and one_line and resumed == 0 and intact and not stale and \
        equal is not False
    return DrillResult("disk-full", passed, rounded(detected - full),
                       rounded(time.monotonic() - full), equal,
                       f"first launch exit {code}, one-line error: {one_line}; audit kinds at "
                       f"the failure {kinds[-3:]}, after resume rollback records "
                       f"{after.count('rollback')}; resumed exit {resumed}; chain intact: "
                       f"{intact}; stale temporaries: {stale}")


def bad_file(base: Path, opt: DrillOptions) -> DrillResult:
    """A non-numeric cell in bank ``BANK``'s file; it must not leave the bank."""
    out = base / "bad-file"
    remove(out)
    launch = Launch(["--out", str(out), *opt.launch_args()], base / "bad-file.log")
    spoiled = _spoil_when_written(launch, out, BANK)
    detected = launch.until(lambda: bool(dropouts(out)), opt.timeout, "recorded dropout")
    code = launch.wait(opt.timeout)
    return _bad_file_result(launch, out, BANK, code, rounded(detected - spoiled))


def bad_file_and_kill_bank(base: Path, opt: DrillOptions, *,
                           killed: int = BANK + 1) -> tuple[DrillResult, DrillResult]:
    """Both fast drills in one launch (the CI test's: one federation instead of two): bank
    ``BANK``'s file gets the bad cell, bank ``killed`` is SIGKILLed after round 1. Needs
    ``opt.banks - 2 >= min-banks`` (e.g. 5 banks with ``--min-banks 3``)."""
    out = base / "bad-file-kill-bank"
    remove(out)
    launch = Launch(["--out", str(out), *opt.launch_args()], base / "bad-file-kill-bank.log")
    spoiled = _spoil_when_written(launch, out, BANK)
    detected = launch.until(lambda: bool(dropouts(out)), opt.timeout, "recorded dropout")
    launch.until(lambda: rounds_done(out) >= 1, opt.timeout, "round 1 checkpoint")
    kill_tree(process_pid(out, f"bank-{killed}"))
    killed_at, done_at = time.monotonic(), rounds_done(out)
    noticed = launch.until(lambda: bool(_not_bad_file(dropouts(out))), opt.timeout,
                           "the killed bank's dropout")
    code = launch.wait(opt.timeout)
    dropped = _not_bad_file(dropouts(out))
    kill = DrillResult("kill-bank", code == 0 and bool(dropped), rounded(noticed - killed_at),
                       rounded(time.monotonic() - killed_at),
                       note=f"exit {code}; killed bank {killed} after round {done_at}; later "
                            f"dropouts: {dropped[:2]}"[:400])
    return _bad_file_result(launch, out, BANK, code, rounded(detected - spoiled)), kill


def _not_bad_file(dropped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Dropouts for another reason than the bad file (which recurs at every step)."""
    return [d for d in dropped if "the bank's data file" not in str(d.get("reason", ""))]


def _spoil_when_written(launch: Launch, out: Path, index: int) -> float:
    """Once the launcher wrote the banks' files (before their nodes start), put the bad
    cell into bank ``index``'s; the monotonic time it was done."""
    launch.until(lambda: "the gateway answers" in launch.text(), 300, "slices written")
    _spoil_cell(Layout(out).bank(index).data, row=12)
    return time.monotonic()


def _bad_file_result(launch: Launch, out: Path, index: int, code: int,
                     detect_s: float | None) -> DrillResult:
    """Passed when the run completed, the coordinator's reason names the file, column and
    row, and neither the cell's value nor the bank's path is anywhere outside the bank."""
    layout = Layout(out)
    bank = layout.bank(index)
    reasons = " ".join(str(d.get("reason", "")) for d in dropouts(out))
    found = leaks(out, [BAD_CELL], allowed=[bank.root, layout.logs / f"{bank.name}.log"])
    coordinator_side = [layout.coordinator, *(layout.logs / f"{name}.log" for name in
                                              ("flwr-run", "superlink", "gateway"))]
    found += [f for f in leaks(out, [str(bank.data)], allowed=[])
              if any((out / f).is_relative_to(c) for c in coordinator_side)]
    found += [str(launch.log)] if BAD_CELL in launch.text() else []
    named = "the bank's data file" in reasons and "row 13" in reasons
    passed = code == 0 and named and not found
    return DrillResult("bad-file", passed, detect_s,
                       note=f"exit {code}; reason at the coordinator: {reasons[:200]}; value or "
                            f"path found outside the bank: {found}")


def _spoil_cell(path: Path, *, row: int) -> None:
    """Put :data:`BAD_CELL` into the first numeric feature column (not the ID, whose values
    are text, nor the target) of data row ``row`` (0-based)."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    column = next(i for i, (name, v) in enumerate(zip(rows[0], rows[1], strict=True))
                  if _number(v) and name.lower() not in ("id", "uscc", "bad"))  # a feature
    rows[row + 1][column] = BAD_CELL
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def _number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


DRILLS: dict[str, Callable[..., DrillResult]] = {
    "kill-bank": kill_bank,
    "restart-bank": lambda base, opt, _ref: kill_bank(base, opt, restart=True),
    "superlink-resume": superlink_resume,
    "disk-full": disk_full,
    "bad-file": bad_file,
}
"""Drill name -> function(base, options, reference run folder or None)."""


def run_drill(name: str, base: Path, opt: DrillOptions, reference: Path | None) -> DrillResult:
    """Run one drill; a drill that breaks down is a failed drill with the reason."""
    started = time.monotonic()
    try:
        if name in ("kill-bank", "bad-file"):
            return DRILLS[name](base, opt)
        return DRILLS[name](base, opt, reference)
    except DeploymentError as exc:
        return DrillResult(name, False, note=f"drill broke down after "
                           f"{time.monotonic() - started:.0f} s: {exc}"[:400])
