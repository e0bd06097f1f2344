"""``fedcredit serve`` (the credit query service) and ``fedcredit service-key`` (its API keys).

``fedcredit serve --config service.toml`` runs one institution's service (bank or center role,
from the node TOML the settings name) under uvicorn until stopped. ``fedcredit service-key
--keys service-keys.json --institution bank-0 --scope partial-score`` issues a key: it is printed
once, only its hash is stored (thin over :mod:`fedcredit.service`).
"""

from __future__ import annotations

import gc
from pathlib import Path

import typer
from rich.console import Console

console = Console()


def serve(
    config: Path = typer.Option(..., "--config", help="The institution's service TOML (\\[service] table; docs/service.md)."),
    host: str | None = typer.Option(None, "--host", help="Listen address (overrides '\\[service] host')."),
    port: int | None = typer.Option(None, "--port", help="Listen port (overrides '\\[service] port')."),
) -> None:
    """Run the credit query service of one institution (bank or center role) until stopped."""
    import uvicorn

    from fedcredit.service.app import create_app, hot_path_front
    from fedcredit.service.settings import load_service_settings

    settings = load_service_settings(config, host=host, port=port)
    app = create_app(settings)
    console.print(f"{settings.role} service of {settings.institution} on "
                  f"{settings.host}:{settings.port}, model "
                  f"{app.state.core.holder.served[0].label}", highlight=False, soft_wrap=True)
    tls = {}
    if settings.tls_certificate is not None and settings.tls_key is not None:
        tls = {"ssl_certfile": str(settings.tls_certificate), "ssl_keyfile": str(settings.tls_key)}
    # the loaded model, tables and libraries are long-lived: keep them out of the collector's
    # full passes, which otherwise stall requests for tens of ms (a p99 outlier)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)  # a 10,000-row batch allocates ~100,000 objects
    # uvloop and httptools (uvicorn[standard]); no access log, proxy-header or Server/Date header
    # work per request: the query log is the record of every request
    uvicorn.run(hot_path_front(app), host=settings.host, port=settings.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=10, loop="uvloop", http="httptools",
                proxy_headers=False, server_header=False, date_header=False,
                **tls)  # type: ignore[arg-type]


def service_key(
    keys: Path = typer.Option(..., "--keys", help="The service's API key file ('\\[service] api-keys'); created if missing."),
    institution: str = typer.Option(..., "--institution", help="Who the key is for (a bank's node name, an application, 'operator')."),
    scope: list[str] = typer.Option(..., "--scope", help="partial-score (a bank at the center), score (a bank's application), operator; repeat for several."),  # noqa: B008
    out: Path | None = typer.Option(None, "--out", help="Write the key to this file (mode 0600) instead of printing it."),
) -> None:
    """Issue an API key; the key is shown once, the file keeps only its SHA-256."""
    from fedcredit.service.auth import add_key

    key = add_key(keys, institution, tuple(scope))
    if out is None:
        console.print(key, highlight=False)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch(mode=0o600)
    out.chmod(0o600)  # also when the file was there before
    out.write_text(key + "\n", encoding="utf-8")
    console.print(f"key for {institution} written to {out}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``service-key`` to ``app``."""
    from fedcredit.cli.products import help_text

    for name, command in (("serve", serve), ("service-key", service_key)):
        app.command(name, help=help_text(command.__doc__))(command)
