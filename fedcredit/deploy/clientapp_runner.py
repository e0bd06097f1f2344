"""One long-lived ClientApp process per SuperNode, instead of one process per message (issue 14).

With ``--isolation subprocess`` Flower 1.42's SuperExec starts a new ``flwr-clientapp``
process for every message a node gets: a Python start, our imports (numpy, torch, the
protocols), the app bundle's installation and loading, one message, exit - seconds per
message, and nothing the app warms up (the Paillier randomizer pool, decryption tables)
survives to the next. :class:`ClientAppRunner` is what ``flower-superexec`` and
``flwr-clientapp`` do together, in one loop that imports our modules once:

1. ask the SuperNode's Runtime API for a ClientApp task (``AcquireTask``, as SuperExec does)
   whenever the SuperNode signals one on a pipe (``--wake-fd``: the paced SuperNode writes a
   byte per pulled message), at least once a second; without the pipe, every 10 ms growing to
   0.2 s (each ask is an HTTP call, ~4 ms of CPU on this box);
2. with the task's token, pull the task's input - message, Context, run, FAB - push the
   reply message and the task's output (sub-status and Context), using Flower's own
   ``flwr.supernode.runtime.run_clientapp`` functions and task heartbeat (a message part not
   stored yet is asked for again after 20 ms, doubling: :func:`pace_task_input_pulls`);
3. install and load a FAB once per FAB hash (Flower's ``install_from_fab`` and ClientApp
   loader), then call the ClientApp in this process.

What stays per run: the Context. Flower's SuperNode keeps one Context per run (series) and
hands it over with each task; the runner uses it for that one call and pushes it back, so a
run's node state never lives in the runner between messages. What is per process: imported
modules and what they cache by content (e.g. a key's decryption table), as in Flower's
simulation engine, whose Ray actors are long-lived too. A ClientApp that raises gets Flower's
error reply (``CLIENT_APP_RAISED_EXCEPTION`` or ``LOAD_CLIENT_APP_EXCEPTION`` with the same
reason text) and the task is marked failed; the runner goes on with the next task.

The node's own SuperNode starts it (:mod:`fedcredit.deploy.supernode_main`) with
``--parent-pid``: it exits when the SuperNode does (Flower's parent monitor), and it is in the
node runner's process group, which the runner ends.

Security assumption: the same as Flower's ``--isolation process``: the runner talks only to
its own SuperNode on loopback; the code it runs is the FAB the SuperNode verified against
``--trusted-entities`` (the SuperNode checks before it creates the task), loaded from the
installed environment. A ClientApp in this process can see what earlier messages of *other*
runs left in module-level state of our own code; fedcredit's apps keep run state in the Context
only (``clients.node_state``).

Run as ``python -m fedcredit.deploy.clientapp_runner --runtime-api-address HOST:PORT``.
"""

from __future__ import annotations

import argparse
import functools
import os
import select
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from logging import ERROR, INFO
from types import ModuleType

from flwr.app import Context, Error, Message
from flwr.clientapp.client_app import ClientApp, LoadClientAppError
from flwr.common.constant import ErrorCode, SubStatus
from flwr.proto.runtime_pb2 import AcquireTaskRequest  # pylint: disable=E0611
from flwr.supercore import log
from flwr.supercore.constant import TaskType
from flwr.supercore.fab import Fab
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
from flwr.supercore.protobuf.client import ProtobufClientInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.run import Run
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supernode.runtime.run_clientapp import pull_task_input, push_message, push_task_output

from fedcredit.deploy.node_pacing import GrowingWait, paced_object_pulls

ACQUIRE_MAX_WAIT_S = 0.2
"""Longest wait between two asks for a task (the launcher's SuperExec poll interval)."""
WAKE_FALLBACK_S = 1.0
"""With a wake pipe: ask anyway after this long without a signal."""
COMPONENT = "flwr-clientapp"


def pipe_waiter(fd: int) -> Callable[[float], None]:
    """``wake(seconds)`` on the read end ``fd`` of the SuperNode's wake pipe: returns when a
    byte arrives (all waiting bytes are drained) or after ``seconds``; exits the process when
    the SuperNode closed its end (it stopped)."""
    def wake(seconds: float) -> None:
        ready, _, _ = select.select([fd], [], [], seconds)
        if ready and not os.read(fd, 4096):
            raise SystemExit(0)  # end of file: the SuperNode is gone

    return wake

AppLoader = Callable[[Run, Fab], ClientApp]


def pace_task_input_pulls(module: ModuleType | None = None) -> bool:
    """Ask the SuperNode again for a task's message part after 20 ms, doubling
    (:func:`~fedcredit.deploy.node_pacing.paced_object_pulls`), not Flower 1.42's 1 s,
    doubling: the SuperNode creates a task before it has stored the message's parts, so a
    runner that asks on its 1 s fallback may find a part missing, and then waited a second for
    it (seen twice in a ``--rows 3000`` vertical launch). Applies to
    ``flwr.supernode.runtime.run_clientapp`` (``pull_task_input``) in this process;
    idempotent; False where that module has no such function."""
    if module is None:
        from flwr.supernode.runtime import run_clientapp

        module = run_clientapp
    pull = getattr(module, "pull_and_inflate_object_from_tree", None)
    if pull is None:
        return False
    if not (isinstance(pull, functools.partial) and "initial_backoff" in pull.keywords):
        setattr(module, "pull_and_inflate_object_from_tree",  # noqa: B010
                paced_object_pulls(pull))
    return True


def load_installed_app(run: Run, fab: Fab) -> ClientApp:
    """Install ``fab`` into ``$FLWR_HOME`` and load its ClientApp, as ``flwr-clientapp`` does
    (no runtime dependency installation: apps run from the installed environment)."""
    from flwr.cli.install import install_from_fab
    from flwr.clientapp.utils import get_load_client_app_fn

    install_from_fab(fab.content, skip_prompt=True)
    load = get_load_client_app_fn(default_app_ref="", app_path=None, multi_app=True)
    return load(run.fab_id, run.fab_version, fab.hash_str)


@dataclass(frozen=True, slots=True)
class AcquiredTask:
    """A task the SuperNode handed to this runner: its token and its app bundle's hash."""

    token: str
    fab_hash: str


class AppBundleChanged(Exception):
    """A task of another app bundle than the one this process loaded: it needs a fresh process
    (our modules are imported once; :func:`main` re-executes the runner with the task)."""

    def __init__(self, token: str) -> None:
        super().__init__("a task of another app bundle; restart the runner with it")
        self.token = token


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What became of one task: Flower's sub-status and its details ("" when completed)."""

    sub_status: str
    details: str


class ClientAppRunner:
    """Runs every ClientApp task of one SuperNode in this process (see the module docstring).

    Parameters
    ----------
    runtime_api_address
        The SuperNode's Runtime API (``HOST:PORT``, its ``--port``).
    insecure, root_certificates
        As for ``flwr-clientapp``: plain HTTP on loopback unless the SuperNode serves its
        Runtime API with TLS.
    load_app
        Loads a run's ClientApp from its FAB (called once: one bundle per process).
    """

    def __init__(self, runtime_api_address: str, *, insecure: bool = True,
                 root_certificates: bytes | None = None,
                 load_app: AppLoader = load_installed_app) -> None:
        self.address = runtime_api_address
        self.insecure = insecure
        self.root_certificates = root_certificates
        self._load_app = load_app
        self.loaded: tuple[str, ClientApp] | None = None
        """The app bundle's hash and its ClientApp, once loaded."""
        self.tasks_run = 0
        self._acquirer = self._client(RuntimeVersionHttpInterceptor(component_name="SuperExec"))

    def _client(self, *interceptors: ProtobufClientInterceptor) -> RuntimeHttpClient:
        return RuntimeHttpClient.from_server_address(
            server_address=self.address, insecure=self.insecure,
            root_certificates=self.root_certificates, interceptors=list(interceptors),
            retry_invoker=make_simple_http_retry_invoker())

    def acquire(self) -> AcquiredTask | None:
        """Ask the SuperNode for one pending ClientApp task; None when there is none."""
        res = self._acquirer.AcquireTask(AcquireTaskRequest(
            supported_task_types=[TaskType.CLIENT_APP], agentapp_fab_hashes=[]))
        if not (res.HasField("task") and res.token):
            return None
        return AcquiredTask(res.token, res.task.fab_hash)

    def app_for(self, run: Run, fab: Fab) -> ClientApp:
        """The run's ClientApp: installed and loaded at the first task, then reused.

        Raises
        ------
        LoadClientAppError
            The task belongs to another app bundle than the one loaded (its code may differ,
            and our modules are imported once per process): it gets Flower's load error.
        """
        if self.loaded is None:
            self.loaded = (fab.hash_str, self._load_app(run, fab))
            log(INFO, "fedcredit ClientApp runner: loaded app bundle %s", fab.hash_str[:12])
        elif self.loaded[0] != fab.hash_str:
            raise LoadClientAppError(f"this ClientApp runner loaded app bundle "
                                     f"{self.loaded[0][:12]}; bundle {fab.hash_str[:12]} needs "
                                     "a fresh runner")
        return self.loaded[1]

    def run_task(self, token: str) -> TaskOutcome:
        """One task: pull its input, call the ClientApp, push the reply and the task output.

        Never raises for a ClientApp's exception: the reply is then Flower's error message.
        """
        client = self._client(RuntimeVersionHttpInterceptor(component_name=COMPONENT),
                              RuntimeTokenHttpInterceptor(token))
        heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
        heartbeat.start()
        message: Message | None = None
        context: Context | None = None
        reply: Message | None = None
        outcome = TaskOutcome(SubStatus.FAILED, "ClientApp task failed due to unknown reason")
        try:
            message, context, run, fab = pull_task_input(client)
            reply = self.app_for(run, fab)(message=message, context=context)
            outcome = TaskOutcome(SubStatus.COMPLETED, "")
        except Exception as ex:  # noqa: BLE001  (Flower's run_clientapp does the same)
            reply, outcome = _error_reply(ex, message)
        finally:
            try:
                if reply is not None and context is not None:
                    push_message(client, reply, context)
            except Exception as ex:  # noqa: BLE001
                log(ERROR, "Failed to push reply message", exc_info=ex)
                outcome = TaskOutcome(SubStatus.FAILED, f"pushing the reply failed: {ex}")
            push_task_output(client=client, context=context, sub_status=outcome.sub_status,
                             details=outcome.details)
            heartbeat.stop()
            client.close()
            self.tasks_run += 1
        return outcome

    def serve(self, stop: threading.Event, *, wake: Callable[[float], None] | None = None,
              max_wait_s: float = ACQUIRE_MAX_WAIT_S) -> None:
        """Run tasks until ``stop`` is set. With no task pending, ``wake(seconds)`` returns when
        the SuperNode signals a new task or after ``seconds``; without it, ask again after a
        growing wait (at most ``max_wait_s``)."""
        wait = GrowingWait(max_wait_s, first_s=min(0.01, max_wait_s))
        while not stop.is_set():
            task = self.acquire()
            if task is None:
                if wake is None:
                    stop.wait(wait.next_delay())
                else:
                    wake(WAKE_FALLBACK_S)
                continue
            wait.reset()
            if self.loaded is not None and task.fab_hash and task.fab_hash != self.loaded[0]:
                raise AppBundleChanged(task.token)
            self.run_task(task.token)

    def close(self) -> None:
        """Close the connection to the SuperNode."""
        self._acquirer.close()


def _error_reply(ex: Exception, message: Message | None) -> tuple[Message | None, TaskOutcome]:
    """Flower's error reply for a ClientApp (or its loading) that raised."""
    code = ErrorCode.CLIENT_APP_RAISED_EXCEPTION
    reason = str(type(ex)) + ":<'" + str(ex) + "'>"
    if isinstance(ex, LoadClientAppError):
        code = ErrorCode.LOAD_CLIENT_APP_EXCEPTION
        reason = "An exception was raised when attempting to load `ClientApp`"
    log(ERROR, "ClientApp raised an exception", exc_info=ex)
    reply = Message(Error(code=code, reason=reason), reply_to=message) if message else None
    return reply, TaskOutcome(SubStatus.FAILED, reason)


def main(argv: list[str] | None = None) -> int:
    """``python -m fedcredit.deploy.clientapp_runner --runtime-api-address HOST:PORT``."""
    from flwr.supercore.app_utils import start_parent_process_monitor

    parser = argparse.ArgumentParser(description="Run a SuperNode's ClientApp tasks in one "
                                                 "long-lived process.")
    parser.add_argument("--runtime-api-address", required=True, help="The SuperNode's "
                        "Runtime API, HOST:PORT.")
    parser.add_argument("--root-certificates", default=None, help="CA of a TLS Runtime API "
                        "(default: plain HTTP on loopback).")
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="Exit when this process (the SuperNode) exits.")
    parser.add_argument("--wake-fd", type=int, default=None,
                        help="Read end of a pipe the SuperNode writes a byte to per new task "
                             "(default: poll).")
    parser.add_argument("--first-token", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    certificates = None
    if args.root_certificates:
        with open(args.root_certificates, "rb") as handle:
            certificates = handle.read()
    if args.parent_pid is not None:
        start_parent_process_monitor(args.parent_pid)
    pace_task_input_pulls()
    runner = ClientAppRunner(args.runtime_api_address, insecure=certificates is None,
                             root_certificates=certificates)
    log(INFO, "fedcredit ClientApp runner: serving %s in one process", args.runtime_api_address)
    restart_with: str | None = None
    try:
        if args.first_token:
            runner.run_task(args.first_token)
        wake = None if args.wake_fd is None else pipe_waiter(args.wake_fd)
        runner.serve(threading.Event(), wake=wake)
    except KeyboardInterrupt:  # the parent monitor's SIGINT, or Ctrl-C
        pass
    except AppBundleChanged as changed:
        restart_with = changed.token
    finally:
        runner.close()
    if restart_with is not None:  # a fresh process loads the new bundle and runs the task
        log(INFO, "fedcredit ClientApp runner: a task of another app bundle; restarting")
        if args.wake_fd is not None:
            os.set_inheritable(args.wake_fd, True)
        os.execv(sys.executable, [sys.executable, *restart_command(
            sys.argv[1:] if argv is None else argv, restart_with)])
    return 0


def restart_command(argv: list[str], token: str) -> list[str]:
    """``-m fedcredit.deploy.clientapp_runner`` with ``argv``, its task now ``token``."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--first-token":
            skip = True
        elif not arg.startswith("--first-token="):
            kept.append(arg)
    return ["-m", "fedcredit.deploy.clientapp_runner", *kept, "--first-token", token]


if __name__ == "__main__":
    sys.exit(main())
