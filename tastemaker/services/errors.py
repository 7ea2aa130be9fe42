"""Domain errors; the gRPC interceptor maps each to one status code."""

from __future__ import annotations


class InvalidArgument(ValueError):
    """A request field is invalid; the message names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"`{field}` {reason}")
        self.field = field
