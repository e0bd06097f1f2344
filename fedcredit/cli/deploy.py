"""``fedcredit certs``, ``fedcredit node-key`` and ``fedcredit node``: run a real deployment.

* ``certs`` (credit center): the federation's CA, the SuperLink's TLS certificate with the
  right subject alternative names, and optionally authentication key pairs for nodes.
* ``node-key`` (each bank, on its own machine): the node's authentication key pair; only the
  ``.pub`` file goes to the credit center, to be registered with ``flwr supernode register``.
* ``node`` (each institution): validate ``node.toml``, check TLS against the coordinator,
  and run the SuperNode. See docs/deployment.md.
* ``release-key`` (whoever signs releases): the federation's Ed25519 release key and the
  ``trusted-entities.yaml`` every node gets; ``sign-app`` bundles the app and signs it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from fedcredit.cli.products import help_text
from fedcredit.deploy.errors import CertificateError

console = Console()


def certs(
    out: Path = typer.Option(..., help="Output folder (created with mode 0700; files 0600)."),
    host: list[str] | None = typer.Option(None, "--host", help="DNS name nodes use to reach the SuperLink (repeatable; localhost is always included)."),
    ip: list[str] | None = typer.Option(None, "--ip", help="IP address nodes use to reach the SuperLink (repeatable; 127.0.0.1 and ::1 are always included)."),
    node: list[str] | None = typer.Option(None, "--node", help="Also create an authentication key pair for this node name (repeatable)."),
    banks: int = typer.Option(0, help="Shortcut: key pairs for bank-0 .. bank-(K-1)."),
    days: int = typer.Option(365, help="Validity of the SuperLink certificate in days."),
    force: bool = typer.Option(False, help="Replace existing files."),
) -> None:
    """Create the federation's CA, the SuperLink's TLS certificate and node key pairs.

    Keep OUT/ca.key offline; give OUT/ca.pem to every node; start the SuperLink with
    superlink.pem/superlink.key. Node key pairs made here are for test beds; in production
    each bank runs `fedcredit node-key` on its own machine.
    """
    from fedcredit.deploy.certs import CertificateRequest, write_federation_certificates

    names = [*(node or []), *(f"bank-{k}" for k in range(banks))]
    try:
        request = CertificateRequest(hosts=tuple(host or ()), ips=tuple(ip or ()),
                                     nodes=tuple(names), days=days)
    except ValueError as exc:
        raise CertificateError(str(exc)) from exc
    paths = write_federation_certificates(out, request, force=force)
    console.print(f"CA certificate      {paths.ca_cert}  (give to every node)")
    console.print(f"CA private key      {paths.ca_key}  (keep offline)")
    console.print(f"SuperLink cert/key  {paths.server_cert}, {paths.server_key}")
    console.print(f"  valid for: {', '.join(request.san_hosts + request.san_ips)}")
    for name in names:
        console.print(f"node {name:<14} {paths.node_key(name)} (+ .pub to register)")


def node_key(
    name: str = typer.Option(..., help="Node name, e.g. bank-3 (as agreed with the credit center)."),
    out: Path = typer.Option(..., help="Folder; the pair goes to OUT/nodes/NAME.key and .pub."),
    force: bool = typer.Option(False, help="Replace an existing key pair."),
) -> None:
    """Create this node's authentication key pair (ECDSA P-384, OpenSSH format).

    The private key never leaves this machine. Send only the .pub file to the credit center,
    which registers it: flwr supernode register NAME.pub <connection>.
    """
    from fedcredit.deploy.certs import check_node_name, write_node_key

    try:
        check_node_name(name)
    except ValueError as exc:
        raise CertificateError(str(exc)) from exc
    private, public = write_node_key(out, name, force=force)
    console.print(f"private key (keep here): {private}")
    console.print(f"public key (send to the credit center): {public}")


def node(
    config: Path = typer.Option(..., "--config", help="This institution's node TOML file."),
    check: bool = typer.Option(False, "--check", help="Validate and test TLS, then exit without starting the node."),
    record_wire: Path | None = typer.Option(None, "--record-wire", help="Append every message this node gets and sends to this file (check it with `fedcredit audit wire`)."),
) -> None:
    """Start this institution's node (a Flower SuperNode) from its TOML file.

    Validates every setting (a wrong or missing one stops here, naming it), checks the TLS
    handshake with the coordinator against the configured CA, then runs flower-supernode
    with TLS, the node's authentication key and its node config (restarted after a crash,
    it retries until the SuperLink lets the previous session go: ``[coordinator] rejoin-wait``).
    """
    from fedcredit.deploy.node_runner import prepare_node, run_node

    launch = prepare_node(config, record_wire=record_wire)
    cfg = launch.config
    mode = "INSECURE (no TLS)" if cfg.insecure else "TLS + node authentication"
    console.print(f"{cfg.role} {cfg.name}: {cfg.data_path} -> {cfg.coordinator} [{mode}]")
    policy = cfg.policy
    console.print(f"policy: aggregation {', '.join(policy.aggregation)}; sums of >= "
                  f"{policy.min_contributors} banks; release-model "
                  f"{'allowed' if policy.release_model else 'refused'}; short exponents "
                  f"{'allowed' if policy.short_exponents else 'refused'}; keys >= "
                  f"{policy.min_key_bits} bits", markup=False)
    if cfg.trusted_entities is None:
        console.print("WARNING: no '[keys] trusted-entities': this node runs any app bundle "
                      "the coordinator sends; set it to the federation's trusted-entities.yaml.",
                      markup=False)
    else:
        console.print(f"code origin: only app bundles signed by a key in {cfg.trusted_entities}",
                      markup=False)
    if check:
        console.print("configuration and TLS OK.")
        raise typer.Exit(code=0)
    raise typer.Exit(code=run_node(launch))  # rejoins after a crash


def release_key(
    out: Path = typer.Option(..., help="Folder (0700): release.key (keep offline), release.pub, trusted-entities.yaml."),
    force: bool = typer.Option(False, help="Replace an existing release key."),
) -> None:
    """Create the federation's release key (Ed25519) and the nodes' trusted-entities file.

    Every node sets [keys] trusted-entities to OUT/trusted-entities.yaml and then runs only
    app bundles signed with OUT/release.key (fedcredit sign-app). Keep release.key offline.
    """
    from fedcredit.deploy.release import write_release_key

    paths = write_release_key(out, force=force)
    console.print(f"release key (keep offline): {paths.private_key}")
    console.print(f"trusted entities (give to every node): {paths.trusted_entities}")
    console.print(f"public key: {paths.public_key.read_text().strip()}", markup=False)


def sign_app(
    key: Path = typer.Option(..., help="The release key (release.key from fedcredit release-key)."),
    out: Path = typer.Option(..., help="Folder for app.fab and release.json (the app registry serves it)."),
    app_dir: Path = typer.Option(Path("."), "--app", help="The app's folder (its pyproject.toml)."),
) -> None:
    """Bundle the Flower app (as flwr build does) and sign it with the release key.

    Serve OUT with python -m fedcredit.deploy.app_registry --port P OUT, start the SuperLink
    with FLWR_SUPERGRID_API_URL=http://127.0.0.1:P and run flwr run @publisher/name==version.
    """
    from fedcredit.deploy.release import sign_app as sign

    release = sign(app_dir.resolve(), key, out)
    console.print(f"signed {release.app_spec}: {release.fab} (sha256 {release.fab_sha256})",
                  markup=False)
    console.print(f"key id {release.key_id}; run it with: flwr run {release.app_spec} "
                  "<connection>", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``certs``, ``node-key``, ``node``, ``release-key`` and ``sign-app`` to ``app``.

    Usage in ``fedcredit/cli/main.py``: ``from fedcredit.cli.deploy import register as register_deploy``
    then ``register_deploy(app)``.
    """
    for name, command in (("certs", certs), ("node-key", node_key), ("node", node),
                          ("release-key", release_key), ("sign-app", sign_app)):
        app.command(name, help=help_text(command.__doc__))(command)
