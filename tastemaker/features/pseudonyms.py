"""Pseudonymous user ids (`TASTEMAKER_USER_ID_KEY`): with a key, the id a user is stored under in
Redis and logged under on Kafka is `u.` + HMAC-SHA256(key, id) (128 bits, hex) — the same for the
same user everywhere this key is used, unlinkable to the real id without it. Without a key, ids
are used as they come."""

from __future__ import annotations

import hashlib
import hmac


class Pseudonyms:
    def __init__(self, key: bytes = b"") -> None:
        if key and len(key) < 16:
            raise ValueError("TASTEMAKER_USER_ID_KEY must be at least 16 bytes")
        self._key = key

    @property
    def enabled(self) -> bool:
        return bool(self._key)

    def of(self, user_id: str) -> str:
        if not self._key:
            return user_id
        return "u." + hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()[:32]
