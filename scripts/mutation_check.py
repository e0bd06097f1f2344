"""Mutation check (issue 17, part 5): do the tests catch the bugs they are named after?

Applies each deliberate bug of :data:`MUTATIONS`, one at a time, to a temporary copy of the
committed tree (``git archive HEAD``; the working tree and other people's edits are left
alone), runs the tests that should catch it, and prints a table. A bug is *caught* when those
tests fail. The same tests must pass on the unmutated copy first, or the table means nothing.
Exit 0 when every bug is caught, 1 otherwise. Not part of CI (minutes of pytest runs).

    .venv/bin/python scripts/mutation_check.py [--only NAME ...] [--keep]

The copy imports its own modules (``PYTHONPATH`` ahead of the editable install; checked for
every mutation) and finds the data sets through ``../shared`` beside it (a link to the one
beside this checkout).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    """One deliberate bug: replace ``old`` (exactly once) by ``new`` in ``path``."""

    name: str
    what: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    module: str  # imported from the copy to prove the copy, not the checkout, is tested


MUTATIONS: tuple[Mutation, ...] = (
    Mutation("audit-verifier-ignores-prev",
             "the verifier no longer checks that a record names its predecessor",
             "server/audit.py",
             'elif record.get("prev") != prev:', "elif False:",
             ("tests/server/test_audit.py",), "server.audit"),
    Mutation("audit-records-not-chained",
             "records are written without their predecessor's hash",
             "server/audit.py",
             '**fields, "prev": self.head}', '**fields, "prev": GENESIS}',
             ("tests/server/test_audit.py",), "server.audit"),
    Mutation("psi-input-order",
             "PSI sends the blinded points in input order instead of sorted",
             "protocols/psi/ecdh.py",
             "    order = lexicographic_order(blinded)\n",
             "    order = np.arange(len(blinded) // POINT_SIZE)\n",
             ("tests/protocols/test_psi.py",), "protocols.psi.ecdh"),
    Mutation("ks-one-sided",
             "the histogram KS takes the largest gap one way round only",
             "federation/ml/metrics.py",
             "ks = float(np.max(np.abs(np.cumsum(bad) / n_bad - np.cumsum(good) / n_good)))",
             "ks = float(np.max(np.cumsum(good) / n_good - np.cumsum(bad) / n_bad))",
             ("tests/federation/test_metrics.py",), "federation.ml.metrics"),
    Mutation("auc-ties-counted-whole",
             "the histogram AUC counts a tie within a bin as a win",
             "federation/ml/metrics.py",
             "(good_below + 0.5 * good)", "(good_below + good)",
             ("tests/federation/test_metrics.py",), "federation.ml.metrics"),
    Mutation("psi-parser-refuses-everything",
             "the PSI message parser rejects every message (with a named error)",
             "protocols/psi/messages.py",
             '    reader = ByteReader(data, "PSI message")\n',
             '    raise MalformedMessageError("refused")\n'
             '    reader = ByteReader(data, "PSI message")\n',
             ("tests/fuzz/test_fuzz_psi.py",), "protocols.psi.messages"),
    Mutation("serde-parser-refuses-everything",
             "the encrypted-vector parser rejects every vector (with a named error)",
             "protocols/aggregation/serde.py",
             '    reader = ByteReader(data, "encrypted vector")\n',
             '    raise MalformedMessageError("refused")\n'
             '    reader = ByteReader(data, "encrypted vector")\n',
             ("tests/fuzz/test_fuzz_serde.py",), "protocols.aggregation.serde"),
    Mutation("replay-guard-ignores-round",
             "the replay guard accepts an update of another round",
             "protocols/identity/signing.py",
             "if (statement.step, statement.round) != (expected_step, expected_round):",
             "if statement.step != expected_step:",
             ("tests/server/test_exchange.py",), "protocols.identity.signing"),
    Mutation("signature-not-checked",
             "the coordinator admits replies without checking their signatures",
             "server/exchange.py",
             "            if sealed_round is not None:\n                self._check_signature(",
             "            if False:\n                self._check_signature(",
             ("tests/server/test_exchange.py",), "server.exchange"),
    Mutation("recorder-drops-replies",
             "the wire recorder writes the request but not the reply",
             "clients/wire_recorder.py",
             "    append_line(path, line_to_json(line_of(reply,",
             "    0 and append_line(path, line_to_json(line_of(reply,",
             ("tests/clients/test_wire_recorder.py",), "clients.wire_recorder"),
    Mutation("transcript-skips-metric-records",
             "the transcript leaves MetricRecords out (they were never scanned)",
             "federation/wire/transcript.py",
             "        elif isinstance(rec, (ConfigRecord, MetricRecord)):",
             "        elif isinstance(rec, ConfigRecord):",
             ("tests/fedcredit/test_audit_wire.py",), "federation.wire.transcript"),
    Mutation("scanner-file-order-only",
             "the scanner searches labels in file order only, not the parties' own orders",
             "fedcredit/audit_wire/targets.py",
             "    label_keys, label_orders = _label_keys(orders)",
             "    label_keys, label_orders = _label_keys(orders[:1])",
             ("tests/fedcredit/test_audit_wire.py",), "fedcredit.audit_wire.targets"),
    Mutation("allow-list-allows-everything",
             "the allow-list accepts any record, key, kind, dtype and size",
             "federation/wire/allowlist.py",
             "    rows = [r for r in allow if message_type in r.types",
             "    return None\n    rows = [r for r in allow if message_type in r.types",
             ("tests/fedcredit/test_audit_wire.py",), "federation.wire.allowlist"),
)


def copy_tree(dest: Path) -> Path:
    """The committed tree (``git archive HEAD``) under ``dest/repo``, ``dest/shared`` linked
    to the ``shared`` folder beside this checkout."""
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=REPO, check=True,
                             capture_output=True).stdout
    root = dest / "repo"
    root.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(root, filter="data")
    shared = REPO.parent / "shared"
    if shared.exists():
        (dest / "shared").symlink_to(shared)
    return root


def run_tests(root: Path, tests: tuple[str, ...], module: str) -> tuple[bool, str, float]:
    """(passed, last line of pytest's output, seconds); fails loudly when ``module`` would not
    come from the copy."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    where = subprocess.run([sys.executable, "-c", f"import {module}; print({module}.__file__)"],
                           cwd=root, env=env, capture_output=True, text=True, check=True)
    if not Path(where.stdout.strip()).is_relative_to(root):
        raise SystemExit(f"{module} is imported from {where.stdout.strip()}, not the copy.")
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           "-m", "not deploy", *tests], cwd=root, env=env, capture_output=True,
                          text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    return proc.returncode == 0, (lines[-1] if lines else proc.stderr[-200:]), \
        time.perf_counter() - started


def check(mutations: tuple[Mutation, ...], root: Path) -> list[tuple[Mutation, str, float]]:
    """Baseline, then every mutation; rows of (mutation, verdict, seconds)."""
    rows = []
    baseline: dict[tuple[str, ...], tuple[bool, str]] = {}
    for mutation in mutations:
        target = root / mutation.path
        original = target.read_text(encoding="utf-8")
        if original.count(mutation.old) != 1:
            rows.append((mutation, "NOT APPLIED (the code changed; update the mutation)", 0.0))
            continue
        if mutation.tests not in baseline:
            baseline[mutation.tests] = run_tests(root, mutation.tests, mutation.module)[:2]
        passed, last = baseline[mutation.tests]
        if not passed:
            rows.append((mutation, f"BASELINE FAILS ({last})", 0.0))
            continue
        target.write_text(original.replace(mutation.old, mutation.new), encoding="utf-8")
        try:
            passed, last, seconds = run_tests(root, mutation.tests, mutation.module)
        finally:
            target.write_text(original, encoding="utf-8")
        rows.append((mutation, "MISSED" if passed else f"caught ({last})", seconds))
        print(f"{mutation.name}: {rows[-1][1]}", file=sys.stderr, flush=True)
    return rows


def table(rows: list[tuple[Mutation, str, float]]) -> str:
    """A Markdown table of the results."""
    out = ["| bug | what | tests | result | s |", "|---|---|---|---|---:|"]
    for mutation, verdict, seconds in rows:
        out.append(f"| {mutation.name} | {mutation.what} | {', '.join(mutation.tests)} | "
                   f"{verdict} | {seconds:.0f} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="Mutation names to run.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary copy.")
    args = parser.parse_args()
    chosen = tuple(m for m in MUTATIONS if args.only is None or m.name in args.only)
    dest = Path(tempfile.mkdtemp(prefix="fedcredit-mutation-"))
    try:
        rows = check(chosen, copy_tree(dest))
    finally:
        if not args.keep:
            shutil.rmtree(dest, ignore_errors=True)
    print(table(rows))
    return 0 if rows and all(v.startswith("caught") for _, v, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
