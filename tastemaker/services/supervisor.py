"""Runs N copies of a worker command as child processes (stream workers in one consumer group, or
servers sharing a port), restarts any that die, and stops them all on SIGINT/SIGTERM. Children get SIGTERM if the
supervisor itself is killed."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time

from tastemaker.services.embedded import _die_with_parent

log = logging.getLogger(__name__)


def _own_group_dying_with_parent() -> None:  # runs in the child between fork and exec
    os.setpgrp()
    _die_with_parent()


def supervise(
    commands: list[list[str]],
    stop: threading.Event,
    restart_delay_s: float = 1.0,
    environments: list[dict[str, str]] | None = None,
) -> int:
    """Run every command (child i with `environments[i]`, else this process's environment)."""
    children: list[subprocess.Popen[bytes]] = []

    def start(command: list[str], index: int) -> subprocess.Popen[bytes]:
        env = environments[index] if environments else None
        # its own process group: a terminal's Ctrl-C reaches the supervisor only, which then stops
        # each child once (a second signal would make a server give up its in-flight requests)
        child = subprocess.Popen(command, preexec_fn=_own_group_dying_with_parent, env=env)
        log.info("started worker pid %d: %s", child.pid, " ".join(command[-4:]))
        return child

    try:
        children = [start(c, i) for i, c in enumerate(commands)]
        while not stop.is_set():
            for i, child in enumerate(children):
                code = child.poll()
                if code is not None:
                    log.error("worker pid %d exited with %d; restarting in %.0f s", child.pid, code, restart_delay_s)
                    stop.wait(restart_delay_s)
                    if not stop.is_set():
                        children[i] = start(commands[i], i)
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
