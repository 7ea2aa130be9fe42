"""Every Kafka topic Tastemaker reads or writes, named once (as `keys.py` names every Redis key)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """The public topic names, under a configurable prefix (default `tastemaker`)."""

    prefix: str = "tastemaker"

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def decisions(self) -> str:
        return f"{self.prefix}.decisions"

    @property
    def outcomes(self) -> str:
        return f"{self.prefix}.outcomes"

    @property
    def rewarded(self) -> str:
        return f"{self.prefix}.rewarded"

    @property
    def events_dlq(self) -> str:
        return f"{self.prefix}.events.dlq"

    def consumer_group(self, role: str) -> str:
        """Consumer groups are named after the prefix, so deployments sharing a broker stay apart."""
        return f"{self.prefix}.{role}"

    def all(self) -> list[str]:
        return [self.events, self.decisions, self.outcomes, self.rewarded, self.events_dlq]
