"""The multilingual chat corpus the default sticker model learns from: hand-written phrases composed
into chat messages, each paired with the stickers of its intent.

Source (`data/chat/`, written by hand for this project):
- `intents.txt`: one intent a line, `name: sticker-id sticker-id …` (the stickers that answer it);
- `<language>.txt`: one intent a line, `intent | native | romanised | code-mixed`, phrases split
  by ";" (English has the native column only).

Each phrase becomes up to `variants` distinct messages, as people type them: the phrase itself,
with the language's chat filler around it, romanised spellings drifting ("bhook" → "bhuk"), a
typo or stretched letter, two phrases of the intent in one message, punctuation. The intents are
the clusters of Hike's design: every message of an intent maps to the same stickers. Nothing here
reads the evaluation chat set (`tests/data/chat_stickers.jsonl`); a test proves no message of it
(or a near copy) is in the corpus.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tastemaker.stickers.catalog import LANGUAGES
from tastemaker.stickers.chat import FILLER, NATIVE_FILLER, spelling_variant, typo
from tastemaker.stickers.text import normalise

FORMS = ("native", "romanised", "code-mixed")
#: what a message can end with
ENDINGS = ("!!", "!", "?", "...", " :)", "!!!")


class CorpusError(ValueError):
    """A source file cannot be read or a line is malformed (the message names file and line)."""


@dataclass(frozen=True)
class ChatPhrase:
    intent: str
    language: str
    form: str
    text: str


def read_intents(path: Path) -> dict[str, tuple[str, ...]]:
    """{intent: its sticker ids} from `intents.txt`."""
    out: dict[str, tuple[str, ...]] = {}
    for number, line in enumerate(_lines(path), 1):
        if not line:
            continue
        name, sep, ids = line.partition(":")
        if not sep or not name.strip() or not ids.split():
            raise CorpusError(f"{path}:{number}: expected `intent: sticker-id …`")
        out[name.strip()] = tuple(ids.split())
    return out


def read_phrases(path: Path, language: str, intents: dict[str, tuple[str, ...]]) -> list[ChatPhrase]:
    """Every phrase of one language's file."""
    out: list[ChatPhrase] = []
    for number, line in enumerate(_lines(path), 1):
        if not line:
            continue
        intent, *columns = [c.strip() for c in line.split("|")]
        if intent not in intents:
            raise CorpusError(f"{path}:{number}: unknown intent {intent!r} (not in intents.txt)")
        if not 1 <= len(columns) <= len(FORMS):
            raise CorpusError(f"{path}:{number}: expected `intent | native | romanised | code-mixed`")
        for form, column in zip(FORMS, columns, strict=False):
            out += [ChatPhrase(intent, language, form, p.strip()) for p in column.split(";") if p.strip()]
    return out


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read ({exc})") from exc
    return ["" if line.lstrip().startswith("#") else line.strip() for line in text.splitlines()]


def _variant(phrase: ChatPhrase, others: list[str], rng: np.random.Generator) -> str:
    """One way of typing the phrase."""
    words = phrase.text.split()
    latin = phrase.form != "native" or phrase.language == "en"
    if phrase.form != "native" and rng.random() < 0.5:  # romanised spellings drift
        words = [spelling_variant(w, rng) if rng.random() < 0.5 else w for w in words]
    if latin and words and rng.random() < 0.2:
        i = int(rng.integers(len(words)))
        words[i] = typo(words[i], rng)
    filler = (FILLER if latin else NATIVE_FILLER)[phrase.language]
    for _ in range(int(rng.integers(0, 3))):
        words.insert(int(rng.choice([0, len(words)])), str(rng.choice(list(filler))))
    if others and rng.random() < 0.25:
        words += str(rng.choice(others)).split()
    text = " ".join(words)
    return text + str(rng.choice(list(ENDINGS))) if rng.random() < 0.3 else text


def compose(directory: Path, variants: int = 4, seed: int = 0) -> list[dict[str, object]]:
    """The corpus: one row per message, `{"text", "stickers", "language", "form", "intent", "phrase"}`
    (`phrase`: the hand-written phrase it was composed from), at most
    `variants` distinct messages per phrase (the phrase itself first)."""
    intents = read_intents(directory / "intents.txt")
    rows: list[dict[str, object]] = []
    seen: set[tuple[str, str]] = set()
    for language in LANGUAGES:
        path = directory / f"{language}.txt"
        if not path.is_file():
            raise CorpusError(f"{path}: missing (one file per language: {', '.join(LANGUAGES)})")
        phrases = read_phrases(path, language, intents)
        by_cell: dict[tuple[str, str], list[str]] = {}
        for p in phrases:
            by_cell.setdefault((p.intent, p.form), []).append(p.text)
        for phrase in phrases:
            # each phrase its own draws: adding or removing a phrase leaves every other's messages as they were
            source = f"{language}|{phrase.intent}|{phrase.form}|{phrase.text}".encode()
            rng = np.random.default_rng([seed, zlib.crc32(source)])
            others = [t for t in by_cell[(phrase.intent, phrase.form)] if t != phrase.text]
            made = 0
            for attempt in range(4 * variants):
                text = phrase.text if attempt == 0 else _variant(phrase, others, rng)
                key = (language, normalise(text))
                if key in seen:
                    continue
                seen.add(key)
                rows.append({"text": text, "stickers": list(intents[phrase.intent]), "language": language,
                             "form": phrase.form, "intent": phrase.intent, "phrase": phrase.text})  # fmt: skip
                made += 1
                if made == variants:
                    break
    return rows


def write_corpus(directory: Path, out: Path, variants: int = 4, seed: int = 0) -> int:
    """Compose the corpus into `out` (JSON lines, a pairs file for `stickers train --pairs`)."""
    rows = compose(directory, variants, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)
