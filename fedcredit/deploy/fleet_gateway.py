"""The only listener the banks reach: Flower's Fleet API, and nothing else of the SuperLink.

Flower 1.42's ``flower-superlink`` serves the Fleet, Control and Runtime APIs from one
FastAPI app on one ``--host``/``--port`` (``flwr/superlink/main.py``, ``create_app``: the three
routers on one app; ``flwr/superlink/cli/flower_superlink.py``, ``_run_superlink_http_api``:
one ``uvicorn.run``; ``--control-api-address`` and ``--fleet-api-address`` are deprecated and
ignored for HTTP). The open-source Control API has no account authentication, so whoever
reaches that port can register node keys and start runs.

So the SuperLink listens on loopback only (the operator's ``flwr`` commands and the
coordinator's own ServerApp run on that host), and this gateway listens where the banks dial:
it terminates TLS with the SuperLink's certificate and forwards ``POST /v1/fleet/<call>`` for
the calls a SuperNode makes (``flwr/supernode/fleet_http_client.py``) to the SuperLink over
loopback TLS, headers (the node's signature) and body unchanged. Any other path or method is
answered 404 here and never reaches the SuperLink. A production site can do the same with
nginx or Envoy (docs/deployment.md).

Run as ``python -m fedcredit.deploy.fleet_gateway --listen HOST:PORT --superlink
127.0.0.1:PORT --ca ca.pem --cert superlink.pem --key superlink.key``.
"""

from __future__ import annotations

import argparse
import ssl
import sys

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FLEET_PREFIX = "/v1/fleet/"
FLEET_CALLS = frozenset({
    "register-node", "activate-node", "deactivate-node", "unregister-node",
    "send-node-heartbeat", "pull-messages", "push-messages", "get-run", "get-fab",
    "push-object", "pull-object", "confirm-message-received"})
"""The Fleet calls of Flower 1.42's SuperNode (``FleetHttpClient``), the only ones forwarded."""
HOP_HEADERS = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "upgrade",
                         "proxy-connection", "te", "trailer", "content-length",
                         "accept-encoding"})


def create_gateway(upstream: str, ca_cert: str | None) -> Starlette:
    """The gateway app forwarding the Fleet calls to ``upstream`` (``https://127.0.0.1:P``)."""
    verify = ssl.create_default_context(cafile=ca_cert) if ca_cert else False
    client = httpx.AsyncClient(base_url=upstream, verify=verify, timeout=None)

    async def forward(request: Request) -> Response:
        call = request.path_params["call"]
        if call not in FLEET_CALLS:
            return JSONResponse({"detail": "not a Fleet call"}, status_code=404)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        reply = await client.post(FLEET_PREFIX + call, content=await request.body(),
                                  headers=headers)
        kept = {k: v for k, v in reply.headers.items() if k.lower() not in HOP_HEADERS
                and k.lower() != "content-encoding"}
        return Response(reply.content, status_code=reply.status_code, headers=kept)

    async def refuse(request: Request) -> Response:
        return JSONResponse({"detail": "only the Fleet API is served here"}, status_code=404)

    return Starlette(routes=[
        Route(FLEET_PREFIX + "{call}", forward, methods=["POST"]),
        Route("/{rest:path}", refuse, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
    ])  # the client lives as long as the gateway process


def main(argv: list[str] | None = None) -> int:
    """``python -m fedcredit.deploy.fleet_gateway --listen H:P --superlink H:P ...``."""
    parser = argparse.ArgumentParser(description="Serve only the SuperLink's Fleet API.")
    parser.add_argument("--listen", required=True, help="HOST:PORT the banks dial.")
    parser.add_argument("--superlink", required=True, help="The SuperLink on loopback, HOST:PORT.")
    parser.add_argument("--ca", help="CA certificate (omit with --insecure).")
    parser.add_argument("--cert", help="TLS certificate shown to the banks.")
    parser.add_argument("--key", help="Its private key.")
    parser.add_argument("--insecure", action="store_true", help="Plain HTTP (test beds only).")
    args = parser.parse_args(argv)
    if not args.insecure and not (args.ca and args.cert and args.key):
        parser.error("give --ca, --cert and --key, or --insecure explicitly.")
    host, _, port = args.listen.rpartition(":")
    scheme = "http" if args.insecure else "https"
    app = create_gateway(f"{scheme}://{args.superlink}", None if args.insecure else args.ca)
    print(f"fleet gateway on {args.listen} -> {scheme}://{args.superlink} "
          f"(Fleet calls only)", flush=True)
    uvicorn.run(app, host=host.strip("[]"), port=int(port), log_level="warning",
                ssl_certfile=None if args.insecure else args.cert,
                ssl_keyfile=None if args.insecure else args.key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
