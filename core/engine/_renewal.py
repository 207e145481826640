"""Leases of running steps kept alive, so a step longer than the lease is not taken over.

A step claims its record for ``lease_s`` (60 s by default) and its message is hidden as long.
A real model call can take minutes: without renewal the lease ran out, another worker took the
step over, then a third, and the run failed with a false ``WorkerLost``. One daemon thread per
engine renews every running step's record (compare-and-swap, so a takeover is noticed) and its
message's visibility, a third of the lease before it ends — until the step's timeout, after
which it is left to lapse. Registering a step is a dict insert, so a short step pays nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

from agentfn.delivery import Acker
from agentfn.errors import PreconditionFailed
from agentfn.ports import QueueMessage
from agentfn.runs import RunStore, StepRecord

log = logging.getLogger("agentfn.engine")


@dataclass
class Lease:
    """One running step's claim; ``etag`` follows every renewal (under ``lock``)."""

    run_id: str
    record: StepRecord
    etag: str
    message: QueueMessage
    acker: Acker
    deadline: float  # the step's timeout, as a clock time: no renewal after it
    lost: bool = False  # another worker took the step over
    finished: bool = False  # the step returned: renew no more, the etag is the caller's
    lock: threading.Lock = field(default_factory=threading.Lock)


class Renewer:
    def __init__(
        self, store: RunStore, lease_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.lease_s = lease_s
        self.clock = clock
        self._active: dict[int, Lease] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, lease: Lease) -> int:
        """Start renewing ``lease``; returns the handle ``release`` takes."""
        handle = id(lease)
        with self._lock:
            self._active[handle] = lease
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="agentfn-lease-renewer", daemon=True
                )
                self._thread.start()
        return handle

    def release(self, handle: int) -> Lease | None:
        """Stop renewing; the lease's record and etag are final once this returns."""
        with self._lock:
            lease = self._active.pop(handle, None)
        if lease is not None:
            with lease.lock:
                lease.finished = True
        return lease

    def _loop(self) -> None:
        interval = max(0.05, self.lease_s / 3)
        while True:
            self._wake.wait(interval)
            with self._lock:
                leases = list(self._active.values())
            for lease in leases:
                self.renew(lease)

    def renew(self, lease: Lease) -> None:
        """Extend one lease if it is due (a third of the lease left) and not past its timeout."""
        now = self.clock()
        with lease.lock:
            if lease.finished or lease.lost or now >= lease.deadline:
                return
            if lease.record.lease_until - now > self.lease_s * 2 / 3:
                return
            renewed = lease.record.model_copy(update={"lease_until": now + self.lease_s})
            try:
                lease.etag = self.store.put_step(lease.run_id, renewed, lease.etag)
            except PreconditionFailed:
                lease.lost = True  # taken over: its result will not count
                return
            except Exception as exc:  # a failed renewal is retried on the next round
                log.warning("cannot renew the lease of %s: %s", lease.record.key, exc)
                return
            lease.record = renewed
        with suppress(Exception):  # the record is what decides; visibility saves a redelivery
            lease.acker.extend(lease.message, visibility_timeout=self.lease_s)
