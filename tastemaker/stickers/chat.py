"""How people type chat, as far as the sticker encoder needs to know: the filler words around the
words that carry meaning, the spelling variants of romanised Indian languages ("bahut", "bohot",
"bhot"), typos and stretched letters. The encoder trains on catalog phrases rewritten this way
(`training/modeling/sticker_training.py`), and the demo's simulated chat users write so
(`chat_world.py`). Nothing here comes from the hand-written chat set the quality is measured on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: chat filler per language, typed around the words that carry the meaning
FILLER: dict[str, tuple[str, ...]] = {
    "en": ("so", "lol", "omg", "haha", "rn", "sooo", "ok", "really", "so much", "today"),
    "hi": ("yaar", "bhai", "bahut", "kya", "arre", "na", "hai", "aaj"),
    "bn": ("re", "khub", "dada", "na", "ekdom", "aj"),
    "ta": ("da", "machan", "romba", "semma", "dei", "iruku"),
    "te": ("ra", "chala", "mama", "ante", "baga", "undi"),
    "mr": ("re", "khup", "bhava", "na", "ekdum", "aaj"),
    "gu": ("bhai", "bahu", "yaar", "ne", "ekdam", "che"),
    "kn": ("maga", "tumba", "guru", "alva", "sakkath", "ide"),
    "ml": ("da", "aliya", "nalla", "alle", "machane", "aanu"),
    "pa": ("veere", "bahut", "ji", "yaar", "oye", "hai"),
}

#: the same kind of filler in each language's own script, for messages typed natively
NATIVE_FILLER: dict[str, tuple[str, ...]] = {
    "en": FILLER["en"],
    "hi": ("यार", "भाई", "बहुत", "क्या", "अरे", "ना", "है", "आज", "हो", "मुझे"),
    "bn": ("রে", "খুব", "দাদা", "না", "একদম", "আজ", "আমি", "তো"),
    "ta": ("டா", "மச்சான்", "ரொம்ப", "செம்ம", "டேய்", "இருக்கு"),
    "te": ("రా", "చాలా", "మామ", "అంటే", "బాగా", "ఉంది"),
    "mr": ("रे", "खूप", "भावा", "ना", "एकदम", "आज", "आहे"),
    "gu": ("ભાઈ", "બહુ", "યાર", "ને", "એકદમ", "છે", "આજે"),
    "kn": ("ಮಗಾ", "ತುಂಬಾ", "ಗುರು", "ಅಲ್ವಾ", "ಸಕ್ಕತ್", "ಇದೆ"),
    "ml": ("ഡാ", "അളിയാ", "നല്ല", "അല്ലേ", "മച്ചാനേ", "ആണ്"),
    "pa": ("ਵੀਰੇ", "ਬਹੁਤ", "ਜੀ", "ਯਾਰ", "ਓਏ", "ਹੈ"),
}

#: how a romanised spelling drifts: each pair rewrites the first into the second
SPELLINGS: tuple[tuple[str, str], ...] = (
    ("aa", "a"), ("a", "aa"), ("ee", "i"), ("i", "ee"), ("oo", "u"), ("u", "oo"), ("ah", "a"),
    ("w", "v"), ("v", "w"), ("sh", "s"), ("s", "sh"), ("z", "j"), ("ph", "f"), ("bh", "b"),
    ("dh", "d"), ("th", "t"), ("kh", "k"), ("gh", "g"), ("au", "o"), ("ai", "e"), ("ou", "o"),
    ("a", "o"), ("tt", "t"), ("ll", "l"), ("nn", "n"),
)  # fmt: skip


def spelling_variant(word: str, rng: np.random.Generator) -> str:
    """`word` with one spelling drift applied at one place (unchanged when none applies)."""
    rules = [(a, b) for a, b in SPELLINGS if a in word]
    if not rules:
        return word
    a, b = rules[int(rng.integers(len(rules)))]
    places = [i for i in range(len(word)) if word.startswith(a, i)]
    at = places[int(rng.integers(len(places)))]
    return word[:at] + b + word[at + len(a) :]


def typo(word: str, rng: np.random.Generator) -> str:
    """A dropped, doubled or swapped letter, or a stretched last letter ("sooo")."""
    if len(word) < 4:
        return word + word[-1] * int(rng.integers(1, 3)) if word else word
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(4))
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    if kind == 2:
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    return word + word[-1] * int(rng.integers(1, 3))


def chat_message(
    words: Sequence[str],
    language: str,
    romanised: bool,
    rng: np.random.Generator,
    english: Sequence[str] = (),
    emoji: str = "",
) -> str:
    """`words` (a sticker's keywords) written as a chat message: filler around them, romanised
    spellings drifting, a typo now and then, sometimes an English keyword of the same sticker
    (code-mixing) or the emoji itself."""
    out = [spelling_variant(w, rng) if romanised and rng.random() < 0.5 else w for w in words]
    if out and rng.random() < 0.15:
        i = int(rng.integers(len(out)))
        out[i] = typo(out[i], rng)
    if english and language != "en" and rng.random() < 0.2:
        out.insert(int(rng.integers(len(out) + 1)), str(rng.choice(list(english))))
    filler = (FILLER if romanised else NATIVE_FILLER).get(language, ())
    for _ in range(int(rng.integers(0, 3)) if filler else 0):
        out.insert(int(rng.integers(len(out) + 1)), str(rng.choice(list(filler))))
    if emoji and rng.random() < 0.15:
        out.append(emoji)
    return " ".join(out)
