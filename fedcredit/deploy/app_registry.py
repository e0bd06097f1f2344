"""The federation's app registry: hands the SuperLink the signed release, nothing else.

Flower 1.42 attaches signatures to a FAB only when the SuperLink fetches it from an app
registry (``flwr run @publisher/app==x.y.z``): it POSTs ``{"app_id", "app_version"}`` to
``$FLWR_SUPERGRID_API_URL/hub/fetch-fab``, expects ``{"fab_url", "verifications"}`` and
downloads ``fab_url`` (``flwr/supercore/utils.py``, ``request_download_link``;
``flwr/superlink/servicer/control/control_handlers.py``, ``_get_remote_fab``). The address is
read from the environment of the SuperLink process (``flwr/supercore/constant.py``), so the
launcher starts the SuperLink with ``FLWR_SUPERGRID_API_URL`` pointing here.

This server listens on loopback only and serves the releases signed with
:func:`fedcredit.deploy.release.sign_app` (one folder each). It holds no secret: a node
checks each signature against its own trusted-entities file, so a registry that served a
forged bundle would only make the nodes refuse the run.

Run as ``python -m fedcredit.deploy.app_registry --port P RELEASE_DIR [...]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fedcredit.deploy.release import SignedRelease, read_release

FETCH_PATH = "/hub/fetch-fab"
FAB_PREFIX = "/fab/"
HOST = "127.0.0.1"


def registry_url(port: int) -> str:
    """The ``FLWR_SUPERGRID_API_URL`` of a registry on loopback ``port``."""
    return f"http://{HOST}:{port}"


def make_handler(releases: dict[str, SignedRelease], base_url: str) -> type[BaseHTTPRequestHandler]:
    """A request handler serving ``releases`` (keyed by ``@publisher/name==version``)."""
    by_hash = {r.fab_sha256: r for r in releases.values()}

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            if self.path != FETCH_PATH:
                self._send(404, b'{"detail": "not found"}')
                return
            try:
                asked = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                spec = f"{asked['app_id']}=={asked['app_version']}"
            except (ValueError, KeyError, TypeError):
                self._send(400, b'{"detail": "expected app_id and app_version"}')
                return
            release = releases.get(spec)
            if release is None:
                self._send(404, json.dumps({"detail": f"{spec} is not a signed release"}).encode())
                return
            self._send(200, json.dumps({
                "fab_url": f"{base_url}{FAB_PREFIX}{release.fab_sha256}",
                "verifications": [release.verification()]}).encode())

        def do_GET(self) -> None:  # noqa: N802
            release = by_hash.get(self.path.removeprefix(FAB_PREFIX))
            if not self.path.startswith(FAB_PREFIX) or release is None:
                self._send(404, b'{"detail": "not found"}')
                return
            self._send(200, release.fab.read_bytes(), "application/octet-stream")

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            sys.stderr.write(f"app-registry: {format % args}\n")

    return Handler


def serve(port: int, folders: list[Path]) -> None:
    """Serve the signed releases in ``folders`` on loopback ``port`` until stopped."""
    releases = {r.app_spec: r for r in map(read_release, folders)}
    server = ThreadingHTTPServer((HOST, port), make_handler(releases, registry_url(port)))
    print(f"app registry on {registry_url(port)}: {', '.join(releases)}", flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """``python -m fedcredit.deploy.app_registry --port P RELEASE_DIR [...]``."""
    parser = argparse.ArgumentParser(description="Serve signed fedcredit releases to the "
                                     "SuperLink (loopback only).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("releases", nargs="+", type=Path)
    args = parser.parse_args(argv)
    serve(args.port, args.releases)
    return 0


if __name__ == "__main__":
    sys.exit(main())
