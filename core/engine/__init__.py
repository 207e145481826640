"""The durable step engine: one step per job, idempotent, resumable anywhere.

Flow of one job (docs/engine.md tells it at length):

1. Load the run. A finished run, or a step no longer in its ``pending`` set (folded by an
   earlier delivery), is acknowledged.
2. Claim the step: its record is written with put_if_absent (or put_if_match over an expired
   lease), so two deliveries of one job never execute it twice at the same time. The
   record is read only when the claim meets one.
3. Execute exactly one step: an agent turn, a tool call, a condition, a fan-out, a gather, a
   join, or a wait. Its outcome is recorded on the step record before anything else changes.
4. Advance the run with compare-and-swap: remove the key from ``pending``, start the
   nodes whose edges fire, mark dead paths skipped, count join arrivals, settle the status.
5. Enqueue the steps the advance added, then acknowledge.

A crash between any two of these is repaired by redelivery: the recorded outcome is replayed
instead of executed, and the advance is a no-op if it already happened. No step assumes it
runs in the same process as the one before.

The package has three parts:

- ``_lifecycle``: :class:`Engine`, steps 1-5 and the crash repair between them; it knows no
  node kind.
- ``_executors``: step 3, one executor per node kind, registered by kind with
  ``@executor(NodeClass)``; each gets a :class:`StepContext` (``_context``).
- ``_fold``: step 4's change to the run record, a pure function of the run, the blueprint,
  the step's key and outcome, and ``now``.
"""

from __future__ import annotations

from agentfn.engine._context import ModelFactory, NodeOutputs, RunContext, StepContext
from agentfn.engine._executors import EXECUTORS, execute, executor
from agentfn.engine._fold import fail_run, fold, seed
from agentfn.engine._lifecycle import NOT_RETRYABLE, Engine

__all__ = [
    "EXECUTORS",
    "NOT_RETRYABLE",
    "Engine",
    "ModelFactory",
    "NodeOutputs",
    "RunContext",
    "StepContext",
    "execute",
    "executor",
    "fail_run",
    "fold",
    "seed",
]
