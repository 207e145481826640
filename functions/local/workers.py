"""Local worker processes: the laptop stand-in for a queue-triggered cloud function.

``agentfn run`` starts N of them as real OS processes sharing the run store and the SQLite
queue, so a run locally exercises the same cross-process path as on a cloud.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from types import FrameType

from agentfn.functions.runtime import build_engine
from agentfn.settings import Settings


def serve_worker(settings: Settings, *, poll_s: float = 0.05) -> int:
    """Work until SIGTERM/SIGINT; the job in hand is finished first (graceful shutdown)."""
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    engine = build_engine(settings)
    return engine.work(stop=stopping.is_set, poll_s=poll_s)


class WorkerPool:
    """N ``agentfn worker`` processes, stopped together."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> WorkerPool:
        env = {**os.environ, **self.settings.as_env()}
        for _ in range(self.count):
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "agentfn", "worker"],
                    env=env,
                    stdin=subprocess.DEVNULL,
                )
            )
        return self

    def alive(self) -> int:
        return sum(p.poll() is None for p in self.processes)

    def __exit__(self, *exc: object) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
