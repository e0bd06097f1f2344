"""The SuperNode a fedcredit node runs: Flower's ``flower-supernode``, paced, with one
long-lived ClientApp process (issue 14).

``python -m fedcredit.deploy.supernode_main ARGS`` takes ``flower-supernode``'s arguments
(:func:`fedcredit.deploy.flower_commands.supernode_command` writes them) and, on Flower 1.42.x:

* shortens the SuperNode's fixed 3 s idle and 0.5 s reply sleeps to growing waits
  (:mod:`fedcredit.deploy.node_pacing`);
* runs it with ``--isolation process`` and starts :mod:`fedcredit.deploy.clientapp_runner`
  beside it (``--parent-pid``: it ends with the SuperNode), which serves every ClientApp task
  in one process instead of Flower's SuperExec starting a ``flwr-clientapp`` per message; the
  SuperNode wakes it through a pipe for each message it pulls (no polling).

Then it calls Flower's own ``flower_supernode()`` in this process. On any other Flower
release, with ``FEDCREDIT_STOCK_SUPERNODE=1`` in the environment, or when the arguments
already choose an ``--isolation``, the stock behaviour stays (the plain ``flower-supernode``
is exec'd when the release is another one; see docs/deployment.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable

from fedcredit.deploy import node_pacing

STOCK_ENV = "FEDCREDIT_STOCK_SUPERNODE"
"""Set to 1 to run Flower's stock SuperNode (per-message ClientApp processes, fixed sleeps)."""
RUNTIME_HOST = "127.0.0.1"
"""Where the SuperNode serves its Runtime API (Flower's default ``--host``; the launcher and
``fedcredit node`` never change it)."""
DEFAULT_RUNTIME_PORT = 9094
"""Flower 1.42's default ``--port`` of the Runtime API."""


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value of ``flag`` in ``argv`` (``--flag V`` or ``--flag=V``), else None."""
    for index, arg in enumerate(argv):
        if arg == flag and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def wants_fast_node(argv: list[str], version: str, env: dict[str, str] | None = None) -> bool:
    """Whether to run the long-lived ClientApp runner (else Flower's per-message processes)."""
    env = dict(os.environ) if env is None else env
    return (version.startswith(node_pacing.FLOWER_RELEASES) and env.get(STOCK_ENV) != "1"
            and flag_value(argv, "--isolation") is None
            and flag_value(argv, "--host") in (None, RUNTIME_HOST)
            and flag_value(argv, "--ssl-certfile") is None)


def runner_command(argv: list[str], parent_pid: int, wake_fd: int) -> list[str]:
    """The ClientApp runner for the SuperNode started with ``argv``; it waits for a byte on
    ``wake_fd`` (a pipe's read end) before it asks for a task."""
    port = flag_value(argv, "--port") or str(DEFAULT_RUNTIME_PORT)
    return [sys.executable, "-m", "fedcredit.deploy.clientapp_runner", "--runtime-api-address",
            f"{RUNTIME_HOST}:{port}", "--parent-pid", str(parent_pid), "--wake-fd",
            str(wake_fd)]


RESTART_DELAY_S = 1.0
"""Pause before a ClientApp runner that exited is started again."""


def supervise(command: list[str], stopping: threading.Event, *, pass_fds: tuple[int, ...] = (),
              delay_s: float = RESTART_DELAY_S) -> int:
    """Run ``command`` again whenever it exits, until ``stopping`` is set; how many times it
    was started. (A ClientApp that crashes its process - not an exception, those become error
    replies - costs the node that one message, not every later one.)"""
    starts = 0
    while not stopping.is_set():
        # the runner waits (Flower's retry) until the SuperNode serves its Runtime API
        with subprocess.Popen(command, pass_fds=pass_fds) as runner:  # noqa: S603
            starts += 1
            status = runner.wait()
        if stopping.wait(delay_s):
            break
        print(f"fedcredit node: the ClientApp runner exited ({status}); starting it again",
              file=sys.stderr, flush=True)
    return starts


def start_runner(argv: list[str]) -> Callable[[], None]:
    """Start the ClientApp runner beside this SuperNode (again if it dies, until the SuperNode
    stops); returns the call that wakes it."""
    from flwr.supercore.exit import add_exit_handler

    read_end, write_end = os.pipe()
    stopping = threading.Event()
    add_exit_handler(stopping.set)
    threading.Thread(target=supervise, name="clientapp-runner", daemon=True, args=(
        runner_command(argv, os.getpid(), read_end), stopping),
        kwargs={"pass_fds": (read_end,)}).start()

    def wake() -> None:
        try:
            os.write(write_end, b"\1")
        except BlockingIOError:  # the pipe is full of unread wake-ups: the runner is awake
            pass

    os.set_blocking(write_end, False)
    return wake


def main(argv: list[str] | None = None) -> None:
    """Become the SuperNode (never returns normally: Flower exits the process)."""
    import flwr

    args = list(sys.argv[1:] if argv is None else argv)
    if not wants_fast_node(args, flwr.__version__):
        if not flwr.__version__.startswith(node_pacing.FLOWER_RELEASES):
            from fedcredit.deploy.flower_commands import flower_bin

            binary = flower_bin("flower-supernode")
            os.execvp(binary, [binary, *args])
    else:
        node_pacing.install(on_message=start_runner(args))
        args += ["--isolation", "process"]
    from flwr.supernode.cli import flower_supernode

    sys.argv = ["flower-supernode", *args]
    flower_supernode()


if __name__ == "__main__":
    main()
