"""Start Flower's processes and make sure every one of them is gone afterwards.

Each process is started in its own session (process group) with its output in a log file;
on Linux it also gets SIGTERM if the launcher dies (``PR_SET_PDEATHSIG``).
Flower processes start helpers of their own (SuperExec, ServerApp and ClientApp processes),
some in new sessions, so the supervisor also records every descendant it ever sees, with its
start time (so a reused PID is never mistaken for ours). :meth:`ProcessSupervisor.stop_all`
sends SIGTERM to all of them, waits, then SIGKILLs what is left. The record is written to a
JSON file so that a test (or an operator) can check afterwards that nothing survived.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from fedcredit.deploy.errors import DeploymentError

_LINUX = sys.platform.startswith("linux")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Interrupted|Exit)\w*: \S")
"""The line a Python traceback ends with (``server.errors.FederationError: step ...``)."""
_ERROR_LINE = re.compile(r"^(?!.*\b(INFO|DEBUG)\b).*(\berror\b|\bfailed\b)", re.IGNORECASE)
"""Any other line that reports an error (Flower's ``ERROR :`` lines, ``error: ...``), not
an INFO or DEBUG line that merely names a logger (``[uvicorn.error]``)."""
_BOXED = re.compile(r"^╭─ (\w+) ─+╮\n((?:│.*│\n?)+)╰─+╯", re.MULTILINE)
"""A message the ``flwr`` CLI prints in a box (``╭─ Error ─╮ │ text │ ╰─╯``)."""


def _unbox(match: re.Match[str]) -> str:
    """A boxed ``flwr`` CLI message as one line: ``Error: text``."""
    body = " ".join(ln.strip("│ ") for ln in match.group(2).splitlines())
    return f"{match.group(1)}: {' '.join(body.split())}"


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """One process the supervisor started or saw below one it started."""

    name: str
    pid: int
    start_ticks: int
    """Start time in clock ticks after boot (``/proc/<pid>/stat`` field 22); 0 if unknown."""


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name, or None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def start_ticks(pid: int) -> int:
    """When ``pid`` started (clock ticks after boot), 0 when unknown (no /proc)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else 0


def is_running(record: ProcessRecord) -> bool:
    """Whether the recorded process still runs (a zombie or a reused PID does not count)."""
    fields = _stat_fields(record.pid)
    if fields is None:
        if Path("/proc").is_dir():
            return False
        try:  # no /proc (macOS): fall back to signal 0
            os.kill(record.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if fields[0] in ("Z", "X"):
        return False
    return record.start_ticks in (0, int(fields[19]))


def _children_map() -> dict[int, list[int]]:
    """Parent PID -> child PIDs of every process visible now."""
    children: dict[int, list[int]] = {}
    if Path("/proc").is_dir():
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
                children.setdefault(int(fields[1]), []).append(int(entry.name))
        return children
    out = subprocess.run(["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True,
                         check=False).stdout
    for line in out.splitlines():
        pid, ppid = (int(v) for v in line.split())
        children.setdefault(ppid, []).append(pid)
    return children


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` now (children first)."""
    children, found = _children_map(), []
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop(0)
        found.append(child)
        stack.extend(children.get(child, []))
    return found


def load_records(path: Path) -> list[ProcessRecord]:
    """Records written by :meth:`ProcessSupervisor.save`."""
    return [ProcessRecord(**item) for item in json.loads(path.read_text())["processes"]]


class ProcessSupervisor:
    """Starts named processes, tracks their descendants, and stops all of them.

    Use as a context manager: leaving the block (normally, on an error or on Ctrl-C) stops
    everything that was started. With ``reap_orphans`` (set it only in a process that made
    itself a child subreaper, see :func:`become_subreaper`) orphans are reaped too.
    """

    def __init__(self, record_file: Path | None = None, *, reap_orphans: bool = False) -> None:
        self.record_file = record_file
        self.reap_orphans = reap_orphans
        self.popens: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.seen: dict[tuple[int, int], ProcessRecord] = {}

    def __enter__(self) -> ProcessSupervisor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def start(self, name: str, argv: Sequence[str], *, env: Mapping[str, str], log: Path,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start ``argv`` in its own session, output to ``log``; record it under ``name``."""
        if name in self.popens:
            raise DeploymentError(f"a process named '{name}' was already started.")
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as handle:
            try:
                popen = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdout=handle,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True,
                                         preexec_fn=_die_with_parent if _LINUX else None)
            except OSError as exc:
                raise DeploymentError(f"cannot start {name} ({argv[0]}): {exc}.") from exc
        self.popens[name], self.logs[name] = popen, log
        self._remember(name, popen.pid)
        self.save()
        return popen

    def _remember(self, name: str, pid: int) -> None:
        record = ProcessRecord(name, pid, start_ticks(pid))
        self.seen.setdefault((record.pid, record.start_ticks), record)

    def refresh(self) -> None:
        """Record every current descendant of the started processes (and, when reaping
        orphans, every other child of this process: orphans re-parented to it)."""
        children = _children_map()
        roots = [(name, popen.pid) for name, popen in self.popens.items()]
        if self.reap_orphans:
            known = {popen.pid for popen in self.popens.values()}
            roots += [("orphan", pid) for pid in children.get(os.getpid(), []) if pid not in known]
        for name, root in roots:
            if name == "orphan":
                self._remember(name, root)
            stack = list(children.get(root, []))
            while stack:
                pid = stack.pop()
                self._remember(f"{name}/child", pid)
                stack.extend(children.get(pid, []))
        self.save()

    def save(self) -> None:
        """Write the records to ``record_file`` (when given)."""
        if self.record_file is None:
            return
        self.record_file.parent.mkdir(parents=True, exist_ok=True)
        payload = {"supervisor_pid": os.getpid(),
                   "processes": [asdict(r) for r in self.seen.values()]}
        tmp = self.record_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        os.replace(tmp, self.record_file)

    def exited(self, name: str) -> int | None:
        """Exit code of process ``name``, or None while it runs."""
        return self.popens[name].poll()

    def log_tail(self, name: str, lines: int = 15) -> str:
        """The last lines of process ``name``'s log (for error messages)."""
        try:
            text = self.logs[name].read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def failure_note(self, name: str) -> str:
        """One line for an error message about process ``name``: the last exception line of
        its log (else its last line that reports an error; ANSI colours removed), and the
        log's path.
        The rest of the log (a traceback of frames inside Flower or the app) stays in the
        file: it tells the operator nothing the error line does not."""
        try:
            text = _ANSI.sub("", self.logs[name].read_text(errors="replace"))
        except (KeyError, OSError):
            return "no log"
        lines = [ln.strip() for ln in _BOXED.sub(_unbox, text).splitlines()]
        errors = [ln for ln in lines if _EXCEPTION_LINE.search(ln)] or \
            [ln for ln in lines if _ERROR_LINE.search(ln)]
        cause = f"last error: {errors[-1][:300]}; " if errors else ""
        return f"{cause}log: {self.logs[name]}"

    def running(self) -> list[ProcessRecord]:
        """Recorded processes that still run."""
        return [r for r in self.seen.values() if is_running(r)]

    def stop(self, name: str, *, grace: float = 5.0) -> None:
        """Stop one started process (and its descendants) now."""
        self.refresh()
        prefix = (name, f"{name}/child")
        self._terminate([r for r in self.seen.values() if r.name in prefix], grace)

    def stop_many(self, names: Sequence[str], *, grace: float = 5.0) -> None:
        """SIGTERM the named processes and their children together, SIGKILL after ``grace``."""
        self.refresh()
        prefixes = {p for name in names for p in (name, f"{name}/child")}
        self._terminate([r for r in self.seen.values() if r.name in prefixes], grace)

    def stop_all(self, *, grace: float = 5.0) -> None:
        """SIGTERM every recorded process and its process group, wait up to ``grace`` s,
        SIGKILL the rest; then catch stragglers started meanwhile; reap."""
        self.refresh()
        self._terminate(list(self.seen.values()), grace)
        for _ in range(3):
            self.refresh()
            left = self.running()
            if not left:
                break
            self._terminate(left, 1.0)
        self.save()

    def _terminate(self, records: list[ProcessRecord], grace: float) -> None:
        _signal_all(records, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(is_running(r) for r in records):
            self._reap()
            time.sleep(0.05)
        _signal_all([r for r in records if is_running(r)], signal.SIGKILL)
        pids = {r.pid for r in records}
        for popen in self.popens.values():
            if popen.pid in pids:
                try:
                    popen.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    pass
        self._reap()

    def _reap(self) -> None:
        for popen in self.popens.values():
            popen.poll()
        if not self.reap_orphans:
            return
        try:  # orphans re-parented to us (the launcher is a child subreaper)
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass


def _signal_all(records: list[ProcessRecord], sig: signal.Signals) -> None:
    """Signal each running process and its process group (never this process's group)."""
    own_group = os.getpgrp()
    for record in records:
        if not is_running(record):
            continue
        try:
            group = os.getpgid(record.pid)
            if group != own_group:
                os.killpg(group, sig)
            os.kill(record.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the launcher dies (Linux), so even a
    SIGKILLed launcher leaves no node behind."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PDEATHSIG
    except (OSError, AttributeError):
        pass


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux), so none is lost."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False
