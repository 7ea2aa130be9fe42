"""Simulated chat users for `tastemaker up --demo`: each writes in one of the ten languages (in
its native script or romanised, some code-mixed with English), sends messages built from a
sticker's own phrases with chat filler around them, looks at the suggestions and sends one of
them with a probability set by how well it fits, where it is shown, and the user's hidden taste.

The messages come from the catalog's keywords, never from the hand-written chat set that
`bench_stickers` measures quality on (`tests/data/chat_stickers.jsonl`), so that retraining on
the demo's logs cannot tune to it.

P(send the sticker at position j) = fit · 0.6 / (1 + j)^0.8 · taste, at most 0.95, where fit is
1 for the sticker the user meant, 0.4 for one sharing a keyword with it in the message's language,
0.03 for any other; taste is 1.6 for stickers of the user's favourite pack, and 3 for the user's
own favourites (a tenth of the stickers, drawn per user: some answer birthdays with 🥳, others
with 🎂), else 1. The user looks top to bottom and sends the first sticker that "fires" (at most
one send per message).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from tastemaker.stickers.catalog import LANGUAGES, Sticker
from tastemaker.stickers.chat import FILLER, NATIVE_FILLER

#: a user's favourites: this share of the stickers, each sent this many times as readily
FAVOURITE_SHARE = 0.1
FAVOURITE_TASTE = 3.0


@dataclass(frozen=True)
class ChatMessage:
    user_id: str
    language: str
    text: str
    #: the sticker the user had in mind
    meant: str


@dataclass(frozen=True)
class ChatUser:
    user_id: str
    language: str
    romanised: bool
    favourite_pack: str
    #: the stickers this user reaches for (taste FAVOURITE_TASTE)
    favourites: frozenset[str] = frozenset()


class ChatWorld:
    def __init__(self, stickers: Sequence[Sticker], n_users: int = 200, seed: int = 0, popular: int = 400) -> None:
        rng = np.random.default_rng(seed)
        # users talk about a popular part of the catalog (faces, hearts, gestures come first in CLDR)
        usable = [s for s in stickers if s.phrases.get("en") and s.phrases["en"].keywords][:popular]
        if not usable:
            raise ValueError("the catalog has no sticker with English keywords to build messages from")
        self._stickers = {s.sticker_id: s for s in usable}
        self._order = [s.sticker_id for s in usable]
        packs = sorted({s.pack for s in usable})
        self.users = [
            ChatUser(
                f"chat-{i:04d}",
                str(rng.choice(LANGUAGES)),
                bool(rng.random() < 0.5),
                str(rng.choice(packs)),
            )
            for i in range(n_users)
        ]
        tastes = np.random.default_rng([seed, 1])  # apart, so that the draws above stay as they were
        self.users = [
            replace(u, favourites=frozenset(s.sticker_id for s in usable if tastes.random() < FAVOURITE_SHARE))
            for u in self.users
        ]
        # keyword → stickers that have it, per (language, script): what else fits a message
        self._sharing: dict[tuple[str, bool, str], set[str]] = {}
        for s in usable:
            for romanised, block in ((False, s.phrases), (True, s.romanised)):
                for language, phrases in block.items():
                    for keyword in phrases.keywords:
                        self._sharing.setdefault((language, romanised, keyword), set()).add(s.sticker_id)
        # Zipf-like popularity over the usable stickers
        weights = 1.0 / np.arange(1, len(usable) + 1) ** 0.8
        self._popularity = weights / weights.sum()

    def _keywords(self, sticker: Sticker, language: str, romanised: bool) -> tuple[str, ...]:
        block = sticker.romanised if romanised and language in sticker.romanised else sticker.phrases
        phrases = block.get(language) or sticker.phrases["en"]
        return phrases.keywords or (phrases.name,)

    def message(self, rng: np.random.Generator) -> ChatMessage:
        user = self.users[int(rng.integers(len(self.users)))]
        sticker = self._stickers[self._order[int(rng.choice(len(self._order), p=self._popularity))]]
        keywords = self._keywords(sticker, user.language, user.romanised)
        words = list(rng.choice(keywords, size=min(len(keywords), int(rng.integers(1, 3))), replace=False))
        if user.language != "en" and rng.random() < 0.2:  # code-mixed: an English word of the same sticker
            words.append(str(rng.choice(self._keywords(sticker, "en", False))))
        filler = (FILLER if user.romanised else NATIVE_FILLER)[user.language]
        if rng.random() < 0.6:
            words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(filler)))
        if rng.random() < 0.1:  # an emoji inside the text
            words.append(sticker.emoji)
        return ChatMessage(user.user_id, user.language, " ".join(words), sticker.sticker_id)

    def fit(self, message: ChatMessage, sticker_id: str) -> float:
        if sticker_id == message.meant:
            return 1.0
        user = self._user(message.user_id)
        meant = self._stickers[message.meant]
        for keyword in self._keywords(meant, user.language, user.romanised):
            if sticker_id in self._sharing.get((user.language, user.romanised, keyword), ()):
                return 0.4
        return 0.03

    def _user(self, user_id: str) -> ChatUser:
        return self.users[int(user_id.rsplit("-", 1)[1])]

    def send_probability(self, message: ChatMessage, sticker_id: str, position: int) -> float:
        user = self._user(message.user_id)
        sticker = self._stickers.get(sticker_id)
        taste = 1.6 if sticker is not None and sticker.pack == user.favourite_pack else 1.0
        if sticker_id in user.favourites:
            taste = FAVOURITE_TASTE
        return min(0.95, self.fit(message, sticker_id) * 0.6 / (1 + position) ** 0.8 * taste)

    def respond(self, message: ChatMessage, shown: Sequence[str], rng: np.random.Generator) -> str | None:
        """The sticker the user sends, or None: the first shown one whose send fires."""
        for position, sticker_id in enumerate(shown):
            if rng.random() < self.send_probability(message, sticker_id, position):
                return sticker_id
        return None
