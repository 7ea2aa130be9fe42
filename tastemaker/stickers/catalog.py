"""The sticker catalog and its importer from the Unicode CLDR emoji annotations.

Catalog format (JSON lines, one sticker per line, UTF-8):

    {"sticker_id": "emoji-1f600", "emoji": "😀", "pack": "face",
     "phrases": {"en": {"name": "grinning face", "keywords": ["face", "grin"]}, "hi": {...}, ...},
     "romanised": {"hi": {"name": "muskuraata chehra", "keywords": [...]}, ...},
     "metadata": {"source": "cldr-annotations-full 48.2.0"}}

- `sticker_id`: unique, stable; `pack`: a grouping to filter by; `phrases[lang].name` is the short
  name (CLDR `tts`), `keywords` the search words (CLDR `default`); `romanised` holds Latin-script
  forms of the Indic phrases (`indic-transliteration`, ITRANS lower-cased), for users who type
  "dil" for दिल.

`tastemaker stickers import-cldr` builds it from npm's `cldr-annotations-full` (`make stickers-catalog`
installs that package and runs it): every emoji is a sticker, in English and nine Indian languages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LANGUAGES = ("en", "hi", "bn", "ta", "te", "mr", "gu", "kn", "ml", "pa")
#: indic-transliteration's scheme for each Indic language's script
SCRIPTS = {
    "hi": "devanagari", "mr": "devanagari", "bn": "bengali", "ta": "tamil", "te": "telugu",
    "gu": "gujarati", "kn": "kannada", "ml": "malayalam", "pa": "gurmukhi",
}  # fmt: skip
CLDR_VERSION = "48.2.0"


@dataclass(frozen=True)
class Phrases:
    name: str
    keywords: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "keywords": list(self.keywords)}


@dataclass(frozen=True)
class Sticker:
    sticker_id: str
    emoji: str
    pack: str
    phrases: dict[str, Phrases]
    romanised: dict[str, Phrases] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "sticker_id": self.sticker_id,
            "emoji": self.emoji,
            "pack": self.pack,
            "phrases": {lang: p.as_dict() for lang, p in self.phrases.items()},
            "romanised": {lang: p.as_dict() for lang, p in self.romanised.items()},
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Sticker:  # type: ignore[type-arg]
        def phrases(block: dict) -> dict[str, Phrases]:  # type: ignore[type-arg]
            return {lang: Phrases(str(p["name"]), tuple(p.get("keywords", ()))) for lang, p in block.items()}

        return cls(
            sticker_id=str(data["sticker_id"]),
            emoji=str(data.get("emoji", "")),
            pack=str(data.get("pack", "")),
            phrases=phrases(data.get("phrases", {})),
            romanised=phrases(data.get("romanised", {})),
            metadata={str(k): str(v) for k, v in data.get("metadata", {}).items()},
        )

    def languages(self) -> set[str]:
        return set(self.phrases)


class CatalogError(ValueError):
    pass


def read_catalog(path: Path) -> list[Sticker]:
    stickers, seen = [], set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot read the catalog ({exc})") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            sticker = Sticker.from_dict(json.loads(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise CatalogError(f"{path}:{number}: not a sticker ({exc})") from exc
        if sticker.sticker_id in seen:
            raise CatalogError(f"{path}:{number}: sticker_id {sticker.sticker_id!r} repeats")
        seen.add(sticker.sticker_id)
        stickers.append(sticker)
    if not stickers:
        raise CatalogError(f"{path}: no stickers")
    return stickers


def write_catalog(stickers: Iterable[Sticker], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for sticker in stickers:
            out.write(json.dumps(sticker.as_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count


def is_emoji(text: str) -> bool:
    """Emoji (not ASCII symbols or lone skin-tone modifiers), by code point."""
    points = [ord(c) for c in text]
    if all(0x1F3FB <= p <= 0x1F3FF for p in points):
        return False
    return any(p >= 0x1F000 or 0x2300 <= p <= 0x2BFF for p in points)


#: languages whose final inherent vowel is not pronounced (दिल is "dil", not "dila")
SCHWA_DELETION = ("hi", "mr", "pa", "gu")
_VOWELS = set("aeiou")


def romanise(text: str, language: str) -> str:
    """Latin-script form of an Indic phrase as people type it: ITRANS, lower-cased, and for
    Hindi-like languages without each word's final inherent "a" after a consonant."""
    from indic_transliteration import sanscript  # type: ignore[import-untyped]

    scheme = getattr(sanscript, SCRIPTS[language].upper())
    latin = str(sanscript.transliterate(text, scheme, sanscript.ITRANS)).lower()
    latin = "".join(c for c in latin if c.isascii() and (c.isalnum() or c == " "))
    if language not in SCHWA_DELETION:
        return latin
    words = []
    for word in latin.split():
        if len(word) > 2 and word.endswith("a") and word[-2] not in _VOWELS:
            word = word[:-1]
        words.append(word)
    return " ".join(words)


def import_cldr(cldr_root: Path, languages: Sequence[str] = LANGUAGES) -> list[Sticker]:
    """Every emoji with an English annotation becomes a sticker; pack = the first word of its
    English short name ("face", "cat", "flag", ...)."""
    annotations = {}
    for language in languages:
        path = cldr_root / "annotations" / language / "annotations.json"
        try:
            annotations[language] = json.loads(path.read_text(encoding="utf-8"))["annotations"]["annotations"]
        except (OSError, KeyError, ValueError) as exc:
            raise CatalogError(f"{path}: not a CLDR annotations file ({exc})") from exc
    stickers = []
    for emoji, english in annotations["en"].items():
        if not is_emoji(emoji) or "tts" not in english:
            continue
        phrases, romanised = {}, {}
        for language in languages:
            entry = annotations[language].get(emoji)
            if not entry or "tts" not in entry:
                continue
            phrases[language] = Phrases(entry["tts"][0], tuple(entry.get("default", ())))
            if language in SCRIPTS:
                romanised[language] = Phrases(
                    romanise(entry["tts"][0], language), tuple(romanise(k, language) for k in entry.get("default", ()))
                )
        name = english["tts"][0]
        stickers.append(
            Sticker(
                sticker_id="emoji-" + "-".join(f"{ord(c):x}" for c in emoji),
                emoji=emoji,
                pack=name.split()[0].lower().strip(":"),
                phrases=phrases,
                romanised=romanised,
                metadata={"source": f"cldr-annotations-full {CLDR_VERSION}"},
            )
        )
    return stickers
