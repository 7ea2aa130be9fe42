"""Runs N copies of a worker command as child processes (one consumer group member each),
restarts any that die, and stops them all on SIGINT/SIGTERM. Children get SIGTERM if the
supervisor itself is killed."""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time

from tastemaker.services.embedded import _die_with_parent

log = logging.getLogger(__name__)


def supervise(commands: list[list[str]], stop: threading.Event, restart_delay_s: float = 1.0) -> int:
    children: list[subprocess.Popen[bytes]] = []

    def start(command: list[str]) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(command, preexec_fn=_die_with_parent)
        log.info("started worker pid %d: %s", child.pid, " ".join(command[-4:]))
        return child

    try:
        children = [start(c) for c in commands]
        while not stop.is_set():
            for i, child in enumerate(children):
                code = child.poll()
                if code is not None:
                    log.error("worker pid %d exited with %d; restarting in %.0f s", child.pid, code, restart_delay_s)
                    stop.wait(restart_delay_s)
                    if not stop.is_set():
                        children[i] = start(commands[i])
            stop.wait(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return 0
