"""The release key and signed bundles, checked with Flower 1.42's own verifier.

``_verify_fab`` and the trusted-entities loader are what a SuperNode runs
(``flwr/supernode/start_client_internal.py``, ``flwr/supernode/cli/flower_supernode.py``);
the registry's reply goes through the SuperLink's own ``request_download_link`` and
``_format_verification`` (``flwr/supercore/utils.py``, ``control_handlers.py``).
"""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from flwr.supercore.fab import Fab
from flwr.supernode.cli.flower_supernode import (
    _try_obtain_trusted_entities,
    _validate_public_keys_ed25519,
)
from flwr.supernode.start_client_internal import _verify_fab

from fedcredit.deploy.app_bundle import stage_app
from fedcredit.deploy.app_registry import FETCH_PATH, HOST, make_handler
from fedcredit.deploy.launch_plan import free_port
from fedcredit.deploy.release import (
    ReleaseError,
    ReleasePaths,
    SignedRelease,
    read_release,
    sign_app,
    write_release_key,
)

NOW = 1_790_000_000


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReleasePaths, SignedRelease]:
    root = tmp_path_factory.mktemp("release")
    keys = write_release_key(root / "key")
    app = stage_app(root / "app")
    return keys, sign_app(app, keys.private_key, root / "signed", now=NOW)


def flower_verifies(release: SignedRelease, trusted: Path, fab: bytes | None = None) -> bool:
    """What a SuperNode with ``--trusted-entities trusted`` decides for this bundle."""
    entities = _try_obtain_trusted_entities(trusted)
    assert entities is not None
    _validate_public_keys_ed25519(entities)
    content = release.fab.read_bytes() if fab is None else fab
    verifications = {release.key_id: json.dumps({"signature": release.signature,
                                                 "signed_at": release.signed_at}),
                     "valid_license": "Valid"}
    return _verify_fab(Fab("", content, verifications), entities)


def test_flower_accepts_the_signed_bundle(signed: tuple[ReleasePaths, SignedRelease]) -> None:
    keys, release = signed
    assert release.app_spec.startswith("@fedcredit/fedcredit==")
    assert flower_verifies(release, keys.trusted_entities)


def test_flower_refuses_a_changed_bundle(signed: tuple[ReleasePaths, SignedRelease]) -> None:
    keys, release = signed
    assert not flower_verifies(release, keys.trusted_entities,
                               fab=release.fab.read_bytes() + b"\0")


def test_flower_refuses_another_key(signed: tuple[ReleasePaths, SignedRelease],
                                    tmp_path: Path) -> None:
    _, release = signed
    other = write_release_key(tmp_path / "other")
    assert not flower_verifies(release, other.trusted_entities)


def test_key_files_are_private(signed: tuple[ReleasePaths, SignedRelease]) -> None:
    keys, _ = signed
    assert stat.S_IMODE(keys.private_key.stat().st_mode) == 0o600
    with pytest.raises(Exception, match="exists"):
        write_release_key(keys.root)


def test_a_swapped_bundle_is_refused_on_read(signed: tuple[ReleasePaths, SignedRelease],
                                             tmp_path: Path) -> None:
    _, release = signed
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "release.json").write_text((release.folder / "release.json").read_text())
    (copy / "app.fab").write_bytes(b"not the signed bundle")
    with pytest.raises(ReleaseError, match="fab_sha256"):
        read_release(copy)
    with pytest.raises(ReleaseError, match="sign-app"):
        read_release(tmp_path / "missing")


@pytest.fixture()
def registry(signed: tuple[ReleasePaths, SignedRelease]) -> Iterator[str]:
    _, release = signed
    port = free_port()
    base = f"http://{HOST}:{port}"
    server = ThreadingHTTPServer((HOST, port), make_handler({release.app_spec: release}, base))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield base
    server.shutdown()
    server.server_close()


def test_the_superlink_gets_the_signature_from_the_registry(
    signed: tuple[ReleasePaths, SignedRelease], registry: str,
) -> None:
    import requests
    from flwr.supercore.utils import request_download_link
    from flwr.superlink.servicer.control.control_handlers import _format_verification

    keys, release = signed
    app_id, version = release.app_spec.split("==")
    url, verifications, _ = request_download_link(app_id, version, registry + FETCH_PATH,
                                                  "fab_url")
    content = requests.get(url, timeout=10).content
    assert verifications is not None
    entities = _try_obtain_trusted_entities(keys.trusted_entities)
    assert entities is not None
    assert _verify_fab(Fab("", content, _format_verification(verifications)), entities)
    with pytest.raises(ValueError, match="not found"):
        request_download_link(app_id, "9.9.9", registry + FETCH_PATH, "fab_url")


def test_cli_release_key_and_sign_app(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from fedcredit.cli.deploy import register

    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    runner = CliRunner()
    res = runner.invoke(app, ["release-key", "--out", str(tmp_path / "key")])
    assert res.exit_code == 0, res.output
    assert "trusted-entities.yaml" in "".join(res.output.split())  # rich wraps long lines
    staged = stage_app(tmp_path / "app")
    res = runner.invoke(app, ["sign-app", "--key", str(tmp_path / "key" / "release.key"),
                              "--app", str(staged), "--out", str(tmp_path / "signed")])
    assert res.exit_code == 0, res.output
    release = read_release(tmp_path / "signed")
    assert f"flwrrun{release.app_spec}" in "".join(res.output.split())
    assert flower_verifies(release, ReleasePaths(tmp_path / "key").trusted_entities)
    res = runner.invoke(app, ["sign-app", "--key", str(tmp_path / "key" / "release.pub"),
                              "--app", str(staged), "--out", str(tmp_path / "bad")])
    assert isinstance(res.exception, ReleaseError)
