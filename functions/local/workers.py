"""Local worker processes: the laptop stand-in for a queue-triggered cloud function.

``agentfn run`` starts N of them as real OS processes sharing the run store and the SQLite
queue, so a run locally exercises the same cross-process path as on a cloud.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from agentfn.functions.runtime import build_engine
from agentfn.json_logs import install_json_logging
from agentfn.settings import Settings

log = logging.getLogger("agentfn.workers")
LOG_LEVEL_ENV = "AGENTFN_LOG_LEVEL"  # a worker's log level, set by the pool that starts it


def serve_worker(settings: Settings, *, poll_s: float = 0.5) -> int:
    """Work until SIGTERM/SIGINT; the job in hand is finished first (graceful shutdown)."""
    install_json_logging(os.environ.get(LOG_LEVEL_ENV, "INFO"))
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    engine = build_engine(settings)
    return engine.work(stop=stopping.is_set, poll_s=poll_s)


class WorkerPool:
    """N ``agentfn worker`` processes, supervised: one that exits is started again (after a
    growing pause if it keeps dying), and ``state()`` says how many are alive."""

    def __init__(
        self, settings: Settings, count: int, *, check_s: float = 0.5, log_level: str = "WARNING"
    ) -> None:
        self.settings = settings
        self.count = count
        self.check_s = check_s
        # What the workers log (JSON lines on their stderr): warnings beside `agentfn run`'s
        # progress display, everything beside `agentfn serve`'s own log.
        self.log_level = log_level
        self.processes: list[subprocess.Popen[bytes]] = []
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)

    def _start_one(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "agentfn", "worker"],
            env={**os.environ, **self.settings.as_env(), LOG_LEVEL_ENV: self.log_level},
            stdin=subprocess.DEVNULL,
        )

    def __enter__(self) -> WorkerPool:
        with self._lock:
            self.processes = [self._start_one() for _ in range(self.count)]
        if self.count:
            self._supervisor.start()
        return self

    def _supervise(self) -> None:
        pause = {i: 0.0 for i in range(self.count)}
        due = {i: 0.0 for i in range(self.count)}
        while not self._stopping.wait(self.check_s):
            now = time.monotonic()
            with self._lock:
                for i, process in enumerate(self.processes):
                    if process.poll() is None or now < due[i]:
                        continue
                    log.error(
                        "worker %d exited with code %s; starting it again", i, process.returncode
                    )
                    self.processes[i] = self._start_one()
                    self.restarts += 1
                    # A worker that dies at once again waits longer each time (at most 30 s).
                    pause[i] = min(30.0, max(1.0, pause[i] * 2))
                    due[i] = now + pause[i]

    def alive(self) -> int:
        with self._lock:
            return sum(p.poll() is None for p in self.processes)

    def state(self) -> dict[str, object]:
        """For /healthz: ok when every worker is running."""
        alive = self.alive()
        return {
            "ok": alive == self.count,
            "alive": alive,
            "expected": self.count,
            "restarts": self.restarts,
        }

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=5)
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
