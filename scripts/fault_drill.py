"""Fault drills against a real local federation: passed, seconds to detect and to recover,
and whether the final model equals that of an uninterrupted run.

    .venv/bin/python scripts/fault_drill.py --out runs/drills --json runs/drills/drills.json

Runs an uninterrupted baseline first (the reference model), then each drill of
:mod:`fedcredit.deploy.fault_drills` (kill a bank after round 1; kill and restart it; kill
the SuperLink after round 2 and ``--resume``; fill the coordinator's disk (tmpfs, needs
root); a bad cell in one bank's file), each in its own folder below ``--out``. Exit status 0
when every drill run passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fedcredit.deploy.drill_cases import DRILLS, baseline, run_drill  # noqa: E402
from fedcredit.deploy.fault_drills import DrillOptions, DrillResult, write_results  # noqa: E402
from federation.run.folder import RESULTS_FILE  # noqa: E402

DEFAULTS = DrillOptions()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="Folder for every drill's run.")
    p.add_argument("--json", type=Path, required=True, help="Where to write the report.")
    p.add_argument("--drills", default=",".join(DRILLS),
                   help=f"Comma-separated subset of: {', '.join(DRILLS)}.")
    p.add_argument("--banks", type=int, default=DEFAULTS.banks)
    p.add_argument("--rounds", type=int, default=DEFAULTS.rounds)
    p.add_argument("--data", default=DEFAULTS.data, help="Data set split into the banks' files.")
    p.add_argument("--target", default=DEFAULTS.target)
    p.add_argument("--timeout", type=float, default=DEFAULTS.timeout,
                   help="Seconds one launch may take.")
    p.add_argument("--no-baseline", action="store_true",
                   help="Skip the uninterrupted run (model_equal is then null).")
    p.add_argument("--reuse-baseline", action="store_true",
                   help="Compare with OUT/baseline of an earlier call instead of running it "
                        "again (same --banks, --rounds and data).")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the drills; 0 when every one passed."""
    args = parse_args(argv)
    names = [n.strip() for n in args.drills.split(",") if n.strip()]
    unknown = [n for n in names if n not in DRILLS]
    if unknown:
        print(f"error: unknown drill(s) {', '.join(unknown)}; choose from {', '.join(DRILLS)}.",
              file=sys.stderr)
        return 2
    opt = DrillOptions(banks=args.banks, rounds=args.rounds, data=args.data,
                       target=args.target, timeout=args.timeout)
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[DrillResult] = []
    reference = None
    if args.reuse_baseline and (args.out / "baseline" / RESULTS_FILE).is_file():
        reference = args.out / "baseline"
    elif not args.no_baseline:
        results.append(baseline(args.out, opt))
        reference = args.out / "baseline" if results[-1].passed else None
        _report(results[-1])
    for name in names:
        results.append(run_drill(name, args.out, opt, reference))
        _report(results[-1])
        write_results(results, args.json)
    write_results(results, args.json)
    print(f"report: {args.json}")
    return 0 if all(r.passed for r in results) else 1


def _report(result: DrillResult) -> None:
    print(f"{result.name}: {'PASSED' if result.passed else 'FAILED'}; detect "
          f"{result.detect_s} s, recover {result.recover_s} s, model equal "
          f"{result.model_equal}; {result.note}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
