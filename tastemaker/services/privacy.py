"""What the decision logs say about a user: the user id pseudonymised when TASTEMAKER_USER_ID_KEY
is set (the same pseudonym the feature store keys the user by), and only the context keys in
TASTEMAKER_LOGGED_CONTEXT_KEYS (comma-separated; `*`, the default, logs every key). Scoring still
sees the whole request context; what is not logged cannot be re-read by evaluation or retraining."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tastemaker.features.pseudonyms import Pseudonyms


@dataclass(frozen=True)
class LogPolicy:
    pseudonyms: Pseudonyms = field(default_factory=Pseudonyms)
    #: context keys written to the decision log; None: all of them
    context_keys: frozenset[str] | None = None

    @classmethod
    def parse(cls, user_id_key: str = "", logged_context_keys: str = "*") -> LogPolicy:
        keys = (
            None
            if logged_context_keys.strip() == "*"
            else frozenset(k.strip() for k in logged_context_keys.split(",") if k.strip())
        )
        return cls(Pseudonyms(user_id_key.encode()), keys)

    def user(self, user_id: str) -> str:
        return self.pseudonyms.of(user_id)

    def context(self, context: Mapping[str, str]) -> dict[str, str]:
        if self.context_keys is None:
            return dict(context)
        return {k: v for k, v in context.items() if k in self.context_keys}
