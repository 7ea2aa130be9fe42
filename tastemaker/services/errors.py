"""Domain errors; the gRPC interceptor maps each to one status code."""

from __future__ import annotations


class InvalidArgument(ValueError):
    """A request field is invalid; the message names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"`{field}` {reason}")
        self.field = field


class Refused(PermissionError):
    """The caller may not do this (e.g. report an outcome for a decision it was not served);
    mapped to PERMISSION_DENIED, or FAILED_PRECONDITION when `expired`."""

    def __init__(self, field: str, reason: str, expired: bool = False) -> None:
        super().__init__(f"`{field}` {reason}")
        self.field = field
        self.expired = expired
