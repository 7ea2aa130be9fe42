"""(message, sticker) pairs from a file: an app's send history or a public data set, no propensities.

JSON lines, one message a line (UTF-8):

    {"text": "happy bday bro", "sticker_id": "emoji-1f382"}
    {"text": "gn", "stickers": ["emoji-1f634", "emoji-1f319"], "language": "en"}

`sticker_id` names the sticker sent; `stickers` instead lists every fitting one (an evaluation
set's form: a hit is any of them; for training each counts as a pair of weight 1/len). `language`
(optional, one of the catalog's languages) groups the evaluation table. A line that is not a JSON
object, has an empty `text`, names no sticker or a sticker the catalog does not hold is a problem
reported with its line number and skipped, never a traceback; blank lines are nothing.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from tastemaker.stickers.catalog import LANGUAGES


@dataclass(frozen=True)
class StickerPair:
    text: str
    #: the fitting stickers (one for a send)
    sticker_ids: tuple[str, ...]
    #: "" when the line names none
    language: str
    line: int


@dataclass(frozen=True)
class PairsFile:
    path: Path
    pairs: tuple[StickerPair, ...]
    #: "line N: why" for each skipped line
    problems: tuple[str, ...]

    def summary(self, shown: int = 5) -> str:
        """One line naming the first `shown` problems and how many more."""
        more = len(self.problems) - shown
        listed = "; ".join(self.problems[:shown]) + (f"; and {more} more" if more > 0 else "")
        return f"{self.path}: skipped {len(self.problems)} of {len(self.problems) + len(self.pairs)} lines ({listed})"


class PairsError(ValueError):
    """The file cannot be read at all, or holds no usable pair."""


def _pair(raw: str, line: int, catalog: Collection[str]) -> StickerPair:
    """The pair on one line, or ValueError saying why not."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("`text` is missing or empty")
    if "sticker_id" in data:
        ids = [data["sticker_id"]]
    elif "stickers" in data and isinstance(data["stickers"], list):
        ids = data["stickers"]
    else:
        raise ValueError("names no sticker (`sticker_id` or a list `stickers`)")
    if not ids or not all(isinstance(i, str) and i for i in ids):
        raise ValueError("a sticker id is empty or not a string")
    unknown = [i for i in ids if i not in catalog]
    if unknown:
        raise ValueError(f"sticker {unknown[0]!r} is not in the catalog")
    language = data.get("language", "")
    if language and language not in LANGUAGES:
        raise ValueError(f"`language` must be one of {', '.join(LANGUAGES)}, got {language!r}")
    return StickerPair(text, tuple(dict.fromkeys(ids)), str(language), line)


def read_pairs(path: Path, catalog: Collection[str]) -> PairsFile:
    """Every usable pair of `path` whose stickers are in `catalog` (a set of sticker ids), and the
    lines skipped with their reason. PairsError when the file cannot be read or no pair is usable."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PairsError(f"{path}: cannot read ({exc})") from exc
    pairs: list[StickerPair] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            pairs.append(_pair(raw, number, catalog))
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
    result = PairsFile(path, tuple(pairs), tuple(problems))
    if not pairs:
        reason = result.summary() if problems else f"{path}: holds no pair"
        raise PairsError(reason)
    return result
