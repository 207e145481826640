"""moto's server with SQS ReceiveMessage made atomic, as it is on SQS.

moto's threaded server checks "is this message visible?" and marks it received without a
lock, so two consumers polling at the same instant can both be handed the same message — a
race SQS does not have (a message received is hidden from every other ReceiveMessage until
its visibility timeout ends). Left alone, it makes the queue contract's concurrency test flaky
for reasons that are moto's, not ours. This runs ``moto.server.main`` with each receive
serialised by one lock; long polls wait outside the lock so they never block other requests.

Run as ``python -m tests.support.emulators.moto_sqs_atomic -H 127.0.0.1 -p PORT``.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from moto.core.utils import unix_time
from moto.server import main
from moto.sqs.models import SQSBackend

_LOCK = threading.Lock()
_POLL_S = 0.05
_receive = SQSBackend.receive_message


def _atomic_receive(
    self: SQSBackend,
    queue_name: str,
    count: int,
    wait_seconds_timeout: int,
    visibility_timeout: int,
    message_attribute_names: list[str] | None = None,
) -> Any:
    deadline = unix_time() + wait_seconds_timeout
    while True:
        with _LOCK:  # check-visible-and-hide happens for one caller at a time
            got = _receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
        if got or unix_time() >= deadline:
            return got
        time.sleep(_POLL_S)


SQSBackend.receive_message = _atomic_receive  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
