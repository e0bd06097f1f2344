"""Register several node public keys at the SuperLink in one ``flwr`` CLI process.

Equivalent to running ``flwr supernode register KEY.pub fedcredit`` once per key (what the
credit center does by hand, see docs/deployment.md), but it pays the CLI's start-up cost once:
on a small machine that is seconds saved before the first round. Reads the connection from
``$FLWR_HOME/config.toml``. Prints one JSON line per key; exit status 1 if any failed.

    python -m fedcredit.deploy.register_nodes nodes/bank-0.pub nodes/bank-1.pub
"""

from __future__ import annotations

import sys

from fedcredit.deploy.flower_commands import register_command


def main(argv: list[str] | None = None) -> int:
    """Register every public key named on the command line."""
    from flwr.cli.app import app  # the `flwr` command itself

    keys = sys.argv[1:] if argv is None else argv
    failed = 0
    for key in keys:
        args = register_command(key)[1:]  # drop the executable: same arguments as the CLI
        try:
            app(args, standalone_mode=False)
        except SystemExit as exc:
            failed += int(bool(exc.code))
        except Exception as exc:  # noqa: BLE001 - report every key, then fail
            print(f"error: registering {key} failed: {exc}", file=sys.stderr)
            failed += 1
        sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
