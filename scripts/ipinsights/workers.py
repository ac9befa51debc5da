"""Pre-forked server workers: several processes accept on one listening socket, as SageMaker's model servers run."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socketserver
import threading
import time
from types import FrameType

LOG = logging.getLogger("seclake.serve")
WORKERS_VARIABLE = "SAGEMAKER_MODEL_SERVER_WORKERS"  # the variable SageMaker's serving containers read
CRASH_LOOP_SECONDS = 2.0  # a worker that dies sooner than this after starting is not started again
PARENT_POLL_SECONDS = 1.0


def default_workers(environ: dict[str, str]) -> int:
    """SAGEMAKER_MODEL_SERVER_WORKERS when set, else one worker per CPU (what SageMaker's model servers do)."""
    text = environ.get(WORKERS_VARIABLE, "").strip()
    if not text:
        return max(1, os.cpu_count() or 1)
    if not text.isdigit() or int(text) < 1:
        message = f"{WORKERS_VARIABLE}={text!r} is not a positive worker count; set it to e.g. 2, or unset it"
        raise ValueError(message)
    return int(text)


def _exit_when_orphaned(parent: int) -> None:
    """A worker whose supervisor was killed (SIGKILL leaves no time to stop it) exits instead of holding the port."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(0)


def run_workers(server: socketserver.TCPServer, count: int) -> int:
    """Fork `count` workers serving `server` (already bound, model loaded: the workers share its memory), start
    again any that dies unexpectedly, and stop them all on SIGTERM or SIGINT. Returns the exit status."""
    server.socket.setblocking(False)  # the workers all wake on a connection; those that lose the accept go on
    children: dict[int, float] = {}  # pid -> when it started
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            _signal(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(count):
        pid = _fork_worker(server)
        children[pid] = time.monotonic()
    LOG.info("serving with %d workers: %s", count, ", ".join(str(pid) for pid in children))
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, time.monotonic())
        if stopping:
            continue
        lived = time.monotonic() - started
        if lived < CRASH_LOOP_SECONDS:
            LOG.error("worker %d exited (status %d) %.1f s after starting: stopping the server", pid, code, lived)
            stop(signal.SIGTERM, None)
            status = 1
            continue
        LOG.warning("worker %d exited (status %d); starting another", pid, code)
        children[_fork_worker(server)] = time.monotonic()
    server.server_close()
    return status


def _fork_worker(server: socketserver.TCPServer) -> int:
    pid = os.fork()
    if pid:
        return pid
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    try:
        server.serve_forever()
    finally:
        os._exit(0)


def _signal(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)
