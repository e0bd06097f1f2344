"""Coordinator checkpoints: everything needed to resume a run after a crash or restart.

Written after every round (every tree of a boosted-tree run) into ``DIR/checkpoint.json``:
the run config, run id, layout, the combined sealed vectors (ciphertexts under Paillier: the
checkpoint holds no secret), rounds done, per-round history and timings, row counts and the
audit head; for boosted trees also the combined bins and last level and the banks' sealed
state blob. Banks are stateless between requests, so resuming from round r+1 gives the same
model as an uninterrupted run with the same seeds.

Crash consistency (protocol step: the coordinator's commit of a round). The round's audit
record is the write-ahead entry: it is appended and fsync'd first
(:class:`server.audit.AuditLog`); the checkpoint naming that record's hash is the commit,
written to ``checkpoint.json.tmp``, fsync'd, renamed over ``checkpoint.json`` and the folder
fsync'd (:func:`save_checkpoint`). A crash or a full disk between the two leaves audit
records after the checkpoint's head; :func:`open_run_folder` reconciles them on resume: it
verifies the chain up to the checkpoint's head and appends one ``rollback`` record that voids
them (the log stays append-only, so heads the banks already signed stay valid), then the
round runs again. Before any work :func:`check_room` proves the folder writable and roomy.
Every failure here is one line (:class:`CheckpointError`).

Security assumption: the checkpoint is the coordinator's own file; it is checked against the
audit chain on resume, and the chain against the banks' signed heads by
``fedcredit audit verify --bank-heads``.
"""

from __future__ import annotations

import base64
import errno
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from federation.errors import ConfigError, RunFolderError
from federation.ml.preprocess import FeatureLayout
from federation.run.config import RunConfig
from federation.run.folder import RunFolder, probe_writable
from federation.steps.secure_sum import Sealed
from server.audit import ROLLBACK_KIND, AuditLog, verify_audit
from server.participation import Participation
from server.run_state import FederatedResult, RoundRecord

SCHEMA_VERSION = 1
TEMP_SUFFIX = ".tmp"
"""A file being written; a run folder holding one was interrupted mid-write."""
MIN_ROOM_BYTES = 32 * 1024 * 1024
"""Free space a run needs before it starts: two checkpoints (the old one stays until the new
one is renamed over it) plus the audit log; a Paillier checkpoint of a few hundred features is
a few MiB, a boosted-tree one with its sealed state blob up to ten."""


class CheckpointError(RunFolderError):
    """The run folder cannot take (or give back) a consistent checkpoint; one line, with what
    to do."""


def _sealed_doc(sealed: Sealed | None) -> dict[str, Any] | None:
    if sealed is None:
        return None
    doc = asdict(sealed)
    for name in ("payload", "contributors"):
        doc[name] = base64.b64encode(getattr(sealed, name)).decode("ascii")
    return doc


def _sealed_from(doc: dict[str, Any] | None) -> Sealed | None:
    if doc is None:
        return None
    return Sealed(**{**doc, "payload": base64.b64decode(doc["payload"]),
                     "contributors": base64.b64decode(doc.get("contributors", ""))})


def save_checkpoint(folder: str | Path, cfg: RunConfig, state: FederatedResult,
                    audit_head: str) -> Path:
    """Write ``folder/checkpoint.json`` atomically."""
    doc = {
        "v": SCHEMA_VERSION, "config": cfg.to_user_config(), "run_id": state.run_id,
        "layout": state.layout.to_json() if state.layout else None,
        "stats_sum": _sealed_doc(state.stats_sum), "weights_sum": _sealed_doc(state.weights_sum),
        "hist_sum": _sealed_doc(state.hist_sum), "hist_round": state.hist_round,
        "rounds_done": state.rounds_done,
        "round_seconds": state.round_seconds, "round_banks": state.round_banks,
        "participation": [asdict(p) for p in state.participation],
        "history": [asdict(h) for h in state.history],
        "train_rows": {str(k): v for k, v in state.train_rows.items()},
        "weights_rows": state.weights_rows,
        "dropouts": state.dropouts, "audit_head": audit_head,
        "bins_sum": _sealed_doc(state.bins_sum), "level_sum": _sealed_doc(state.level_sum),
        "tree_state": (base64.b64encode(state.tree_state).decode("ascii")
                       if state.tree_state is not None else None),
        "tree_seq": state.tree_seq, "tree_banks": list(state.tree_banks),
    }
    path = RunFolder(Path(folder)).checkpoint
    durable_write_text(path, json.dumps(doc))
    return path


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_write_text(path: Path, text: str) -> None:
    """Write ``path`` so that a crash leaves either the old file or the new one, whole.

    ``path.tmp`` is written and fsync'd, renamed over ``path``, and the folder fsync'd (the
    rename itself is durable). On failure the temporary file is removed.

    Raises
    ------
    CheckpointError
        Writing failed (disk full, read-only, permissions): one line naming the file.
    """
    tmp = path.with_name(path.name + TEMP_SUFFIX)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise CheckpointError(
            f"cannot write {path}: {exc.strerror or exc}; the previous checkpoint is intact. "
            + _fix_for(exc)) from exc


def _fix_for(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "Free room on that disk, then resume the run."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "Make the folder writable by the coordinator, then resume the run."
    return "Fix the folder, then resume the run."


def check_room(folder: str | Path, need_bytes: int = MIN_ROOM_BYTES) -> None:
    """Before any work: the run folder exists (or is created), is writable and has room.

    A probe file is written, fsync'd and removed, so a read-only mount, missing permissions or
    an exhausted quota are found before the first request, not at the first checkpoint.

    Raises
    ------
    CheckpointError
        One line naming the folder and what to do.
    """
    path = Path(folder)
    try:
        free = probe_writable(path)
    except OSError as exc:
        raise CheckpointError(f"run folder {path} is not writable ({exc.strerror or exc}); "
                              "give the coordinator a writable folder (setting 'out').") from exc
    if free < need_bytes:
        raise CheckpointError(
            f"run folder {path} has {free / 2**20:.1f} MiB free; the run needs at least "
            f"{need_bytes / 2**20:.0f} MiB for its checkpoints and audit log. Free room "
            "there or choose another folder (setting 'out').")


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove ``*.tmp`` files an interrupted write left in the run folder; the ones removed."""
    path = Path(folder)
    if not path.is_dir():
        return []
    stale = sorted(p for p in path.glob(f"*{TEMP_SUFFIX}") if p.is_file())
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def open_run_folder(folder: str | Path, cfg: RunConfig) -> FederatedResult | None:
    """Prepare the coordinator's run folder before any work; the state to resume, if any.

    Checks the folder is writable with room (:func:`check_room`), removes stale temporary
    files, then either clears a previous run's checkpoint and audit log (a fresh run) or,
    with ``resume``, loads the checkpoint and reconciles the audit log with it
    (:func:`reconcile_audit`).

    Raises
    ------
    CheckpointError
        The folder is unusable, or the audit log contradicts the checkpoint.
    ConfigError
        The checkpoint is missing or damaged.
    """
    check_room(folder)
    remove_stale_temporaries(folder)
    run_folder = RunFolder(Path(folder))
    if not cfg.resume:
        for path in (run_folder.checkpoint, run_folder.audit):
            path.unlink(missing_ok=True)
        return None
    _, state, head = load_checkpoint(folder)
    reconcile_audit(folder, state, head)
    return state


def reconcile_audit(folder: str | Path, state: FederatedResult, head: str) -> int:
    """Make the audit log agree with the checkpoint before a resume; records voided.

    The chain must be intact and hold the checkpoint's head. Records after it were written
    ahead of a checkpoint that never landed (a crash, a full disk): one ``rollback`` record
    voids them, naming their sequence numbers, and sets the log's round back to the
    checkpoint's, so the resumed round is recorded once more, after the rollback.

    Raises
    ------
    CheckpointError
        The chain is broken, or does not hold the checkpoint's head.
    """
    log = AuditLog(folder)  # repairs a torn last line
    verdict = verify_audit(folder, must_contain=head)
    if not verdict.ok:
        raise CheckpointError(
            f"the audit log in {folder} does not match checkpoint.json ({verdict.message}); "
            "the run cannot be resumed from it. Check it with `fedcredit audit verify`.")
    voided = log.after(head)
    if voided:
        log.append(ROLLBACK_KIND, run_id=state.run_id, round=state.rounds_done, to_head=head,
                   voided=voided, reason="written after the last checkpoint, which never "
                   "landed (crash or write failure); the round runs again")
    return len(voided)


def load_checkpoint(folder: str | Path) -> tuple[RunConfig, FederatedResult, str]:
    """Read a checkpoint: (run config, coordinator state, audit head)."""
    path = RunFolder(Path(folder)).checkpoint
    if not path.exists():
        raise ConfigError(f"{path} not found: nothing to resume in {folder} (a run writes it "
                          "after its first round).")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("v") != SCHEMA_VERSION:
            raise ValueError(f"checkpoint version {doc.get('v')}")
        settings = dict(doc["config"])
        # a checkpoint of a release before --early-stopping-metric stopped on the log-loss
        settings.setdefault("early-stopping-metric", "logloss")
        cfg = RunConfig.from_user_config(settings)
        state = FederatedResult(
            run_id=doc["run_id"],
            layout=FeatureLayout.from_json(doc["layout"]) if doc["layout"] else None,
            stats_sum=_sealed_from(doc["stats_sum"]), weights_sum=_sealed_from(doc["weights_sum"]),
            hist_sum=_sealed_from(doc["hist_sum"]), rounds_done=int(doc["rounds_done"]),
            # an older release scored each round's model before its checkpoint
            hist_round=int(doc.get("hist_round", doc["rounds_done"])),
            round_seconds=list(doc["round_seconds"]), round_banks=list(doc["round_banks"]),
            history=[RoundRecord(**h) for h in doc["history"]],
            participation=[Participation(**p) for p in doc.get("participation", [])],
            train_rows={int(k): int(v) for k, v in doc["train_rows"].items()},
            weights_rows=int(doc.get("weights_rows", 0)),  # 0 in older checkpoints: unchecked
            dropouts=list(doc.get("dropouts", [])),
            bins_sum=_sealed_from(doc.get("bins_sum")),
            level_sum=_sealed_from(doc.get("level_sum")),
            tree_state=(base64.b64decode(doc["tree_state"], validate=True)
                        if doc.get("tree_state") is not None else None),
            tree_seq=int(doc.get("tree_seq", 0)),
            tree_banks=tuple(int(b) for b in doc.get("tree_banks", [])),
        )
        return cfg, state, str(doc["audit_head"])
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError,
            RecursionError) as exc:
        raise ConfigError(f"{path} is damaged ({exc}); it cannot be resumed.") from exc
