"""The ``fedcredit`` command line (typer). Every expected failure prints one line, exit 2.

Commands live in small modules that register themselves here: ``simulate`` and ``resume``
(fedcredit/cli/simulate.py), ``check`` and ``audit`` (fedcredit/cli/ops.py), ``score``, ``report`` and
``export-scorecard`` (fedcredit/cli/products.py), ``certs``, ``node-key`` and ``node``
(fedcredit/cli/deploy.py), ``vertical`` and ``generate`` (fedcredit/cli/vertical.py), ``keys``
(fedcredit/cli/keys.py), ``datasets`` (fedcredit/cli/datasets.py), ``serve`` and
``service-key`` (fedcredit/cli/serve.py), ``models`` (fedcredit/cli/models.py).
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from fedcredit.cli.datasets import register as register_datasets
from fedcredit.cli.deploy import register as register_deploy
from fedcredit.cli.keys import keys_app
from fedcredit.cli.models import register as register_models
from fedcredit.cli.ops import register as register_ops
from fedcredit.cli.products import register as register_products
from fedcredit.cli.serve import register as register_serve
from fedcredit.cli.simulate import register as register_simulate
from fedcredit.cli.vertical import register as register_vertical
from protocols.errors import FedCreditError
from server.errors import RunInterrupted

app = typer.Typer(
    help="fedcredit: privacy-preserving federated credit analytics (banks + credit center).",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """fedcredit: privacy-preserving federated credit analytics (banks + credit center)."""


register_simulate(app)
register_vertical(app)
register_ops(app)
register_products(app)
register_deploy(app)
register_datasets(app)
app.add_typer(keys_app, name="keys")
register_serve(app)
register_models(app)


def main() -> None:
    """Console entry point: named errors become one line on stderr and exit code 2."""
    try:
        app()
    except RunInterrupted as exc:
        err_console.print(f"[bold yellow]stopped:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(3)
    except KeyboardInterrupt:
        err_console.print("[bold yellow]interrupted:[/] rounds completed so far are checkpointed; "
                          "continue with: fedcredit simulate --resume OUT (the run folder)")
        sys.exit(130)
    except FedCreditError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
