"""Decision ids that only this deployment can mint, bound to the client served and to the reward
window (`TASTEMAKER_DECISION_KEY`, shared by every serving replica and the joiner):

    <nonce>.<served_at_ms hex>.<reward_window_ms hex>.<HMAC-SHA256(key, those | client id), 128 bits>

`check` tells a genuine id from a forged one (any change breaks the MAC), from one served to
another client (the MAC binds the client id), and from one whose reward window has closed (a
replay of an old id). Without a key, ids are random and every id passes (the default on a
laptop). Pure functions of the key and the id: no I/O."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid


class DecisionIds:
    def __init__(self, key: bytes = b"") -> None:
        if key and len(key) < 16:
            raise ValueError("TASTEMAKER_DECISION_KEY must be at least 16 bytes")
        self._key = key

    @property
    def signed(self) -> bool:
        return bool(self._key)

    def _mac(self, body: str, client_id: str) -> str:
        return hmac.new(self._key, f"{body}|{client_id}".encode(), hashlib.sha256).hexdigest()[:32]

    def mint(self, served_at_ms: int, reward_window_ms: int, client_id: str = "") -> str:
        if not self._key:
            return uuid.uuid4().hex
        body = f"{secrets.token_hex(8)}.{served_at_ms:x}.{reward_window_ms:x}"
        return f"{body}.{self._mac(body, client_id)}"

    def check(self, decision_id: str, client_id: str, now_ms: int) -> str | None:
        """None when `decision_id` was minted here for `client_id` and its window is open; else why not."""
        if not self._key:
            return None
        parts = decision_id.split(".")
        if len(parts) != 4:
            return "was not issued by this deployment"
        body, mac = ".".join(parts[:3]), parts[3]
        if not hmac.compare_digest(mac.encode(), self._mac(body, client_id).encode()):
            return "was not issued by this deployment to this client"
        try:
            served_at_ms, window_ms = int(parts[1], 16), int(parts[2], 16)
        except ValueError:
            return "was not issued by this deployment"
        if now_ms > served_at_ms + window_ms:
            return f"has a reward window that closed {now_ms - served_at_ms - window_ms} ms ago"
        return None
