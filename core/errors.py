"""Typed errors for the whole system.

Every error a user can cause or see is one of these. The CLI maps them to exit codes and the
HTTP layer to status codes in one place each, so a handler never invents its own mapping.
"""

from __future__ import annotations

import math


class AgentfnError(Exception):
    """Base class. ``field`` names the offending input when there is one."""

    code = "error"
    status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message

    def headers(self) -> dict[str, str]:
        """HTTP headers an answer of this error carries (e.g. ``allow``, ``retry-after``)."""
        return {}


class UserError(AgentfnError):
    """Something the caller can fix: bad input, unknown name, unsafe expression."""

    code = "invalid_request"
    status = 400


class ValidationFailed(UserError):
    """Input did not match its schema."""

    code = "validation_error"
    status = 422


class BlueprintError(UserError):
    """A workflow, agent or model file is invalid; the message carries file and line."""

    code = "invalid_blueprint"
    status = 422


class PlanError(UserError):
    """A collaboration plan that cannot run; ``field`` names the offending subtask's field."""

    code = "invalid_plan"
    status = 422


class ExpressionError(UserError):
    """An expression is unsafe, malformed, or failed while evaluating."""

    code = "invalid_expression"
    status = 422


class NotFound(AgentfnError):
    code = "not_found"
    status = 404


class PreconditionFailed(AgentfnError):
    """A conditional write lost: the key exists, or its etag changed."""

    code = "precondition_failed"
    status = 412


class Conflict(AgentfnError):
    """The request contradicts the current state (e.g. signalling a finished run)."""

    code = "conflict"
    status = 409


class ConfigError(UserError):
    """A setting (URL, path, extra) is missing or wrong."""

    code = "config_error"


class ToolError(AgentfnError):
    """A tool raised or rejected its arguments."""

    code = "tool_error"


class ModelError(AgentfnError):
    """A model call failed in a way retrying will not fix."""

    code = "model_error"
    status = 502


class TransientModelError(ModelError):
    """Timeouts, rate limits, 5xx: worth retrying with backoff."""

    code = "model_unavailable"
    status = 503


class CircuitOpen(TransientModelError):
    """The breaker is open: calls fail fast until the reset timeout passes."""

    code = "circuit_open"


class StepFailed(AgentfnError):
    """A step may not be retried (bad output, max agent steps reached)."""

    code = "step_failed"


class WorkerLost(StepFailed):
    """Every delivery of a step died before recording anything (crash, kill, timeout)."""

    code = "worker_lost"


class StepTimeout(AgentfnError):
    """A step ran longer than its ``timeout_s``; retried like any failure."""


class Unauthorized(AgentfnError):
    """Missing or wrong API key."""

    code = "unauthorized"
    status = 401


class Forbidden(AgentfnError):
    """The key is valid but its role does not grant what the route needs."""

    code = "forbidden"
    status = 403


class MethodNotAllowed(AgentfnError):
    """``field`` lists the methods the path allows."""

    code = "method_not_allowed"
    status = 405

    def headers(self) -> dict[str, str]:
        return {"allow": self.field or ""}


class QuotaExceeded(AgentfnError):
    """A tenant's quota is used up for now; ``retry_after`` says when to come back."""

    code = "quota_exceeded"
    status = 429

    def __init__(self, message: str, *, retry_after: float, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"retry-after": str(max(1, math.ceil(self.retry_after)))}


class ProtocolError(UserError):
    """A request the HTTP server itself cannot take (bad request line, unknown method, header
    too large); ``status`` is the one the server chose."""

    code = "protocol_error"

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.status = status


class PayloadTooLarge(AgentfnError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(AgentfnError):
    code = "unsupported_media_type"
    status = 415


class CorruptRecord(AgentfnError):
    """A stored record no longer parses (a torn write, a hand edit, a full disk)."""

    code = "corrupt_record"
    status = 500


class InternalError(AgentfnError):
    code = "internal"
    status = 500
