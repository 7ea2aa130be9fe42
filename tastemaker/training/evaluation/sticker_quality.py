"""How well a sticker bundle suggests on (message, fitting stickers) pairs, beside BM25 over the same
catalog in the same run: hit@1, hit@10, MRR and the macro-F1 of the top suggestion, per language.

A message's rank is that of its best-placed fitting sticker among the whole catalog (0 = first).
Macro-F1 treats the top suggestion as a prediction: it is right when it is one of the fitting
stickers (its true label is then itself, else the first fitting sticker), and F1 is averaged over
every sticker that is a true or a predicted label (scikit-learn's `f1_score(average="macro")`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tastemaker.optional import require
from tastemaker.stickers.bundle import Bundle
from tastemaker.stickers.encoder import sticker_text
from tastemaker.stickers.scoring import catalog_scores
from tastemaker.stickers.text import normalise
from tastemaker.training.modeling.sticker_pairs import StickerPair
from tastemaker.training.progress import progress

#: BM25 ranks beyond this count as "not found" (reciprocal rank ≈ 0)
BM25_DEPTH = 100
NOT_FOUND = 10_000


@dataclass(frozen=True)
class Quality:
    messages: int
    hit_at_1: float
    hit_at_10: float
    mrr: float
    macro_f1: float


@dataclass(frozen=True)
class Ranked:
    """Per message: the rank of its best fitting sticker, the top suggestion, its true label."""

    ranks: np.ndarray  # (n,) int
    predicted: list[str]
    truth: list[str]


def macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Mean F1 over the labels that are true or predicted somewhere (0 when there is none)."""
    labels = sorted(set(truth) | set(predicted))
    if not labels:
        return 0.0
    t, p = np.array(truth, dtype=object), np.array(predicted, dtype=object)
    scores = []
    for label in labels:
        tp = int(((t == label) & (p == label)).sum())
        wrong = int(((t != label) & (p == label)).sum()) + int(((t == label) & (p != label)).sum())
        scores.append(2 * tp / (2 * tp + wrong) if tp + wrong else 0.0)
    return float(np.mean(scores))


def quality(ranked: Ranked, keep: np.ndarray | None = None) -> Quality:
    """The metrics over the messages `keep` selects (all by default)."""
    chosen = np.ones(len(ranked.ranks), dtype=bool) if keep is None else keep
    ranks = ranked.ranks[chosen]
    if not len(ranks):
        return Quality(0, float("nan"), float("nan"), float("nan"), float("nan"))
    where = np.flatnonzero(chosen)
    f1 = macro_f1([ranked.truth[i] for i in where], [ranked.predicted[i] for i in where])
    return Quality(len(ranks), float((ranks < 1).mean()), float((ranks < 10).mean()),
                   float((1.0 / (ranks + 1)).mean()), f1)  # fmt: skip


def _ranked(fitting: Sequence[tuple[str, ...]], order: list[list[str]]) -> Ranked:
    """From each message's ranked sticker ids (best first; may be cut short)."""
    ranks, predicted, truth = [], [], []
    for fits, ranking in zip(fitting, order, strict=True):
        place = {sid: r for r, sid in enumerate(ranking)}
        ranks.append(min((place[f] for f in fits if f in place), default=NOT_FOUND))
        top = ranking[0] if ranking else ""
        predicted.append(top)
        truth.append(top if top in fits else fits[0])
    return Ranked(np.array(ranks), predicted, truth)


def rank_model(bundle: Bundle, pairs: Sequence[StickerPair], chunk: int = 512) -> Ranked:
    """Each message ranked over the bundle's whole catalog by its served model score (no exploration,
    no per-user re-rank)."""
    fitting = [p.sticker_ids for p in pairs]
    ranks, predicted, truth = [], [], []
    starts = list(range(0, len(pairs), chunk))
    for start in progress(starts, "scoring", min_items=8):
        part = pairs[start : start + chunk]
        ids, scores = catalog_scores(bundle, [p.text for p in part])
        column = {sid: j for j, sid in enumerate(ids)}
        best = np.array([max(scores[i, column[f]] for f in fits if f in column) if any(f in column for f in fits)
                         else np.inf for i, fits in enumerate(fitting[start : start + chunk])])  # fmt: skip
        ranks.append((scores > best[:, None]).sum(axis=1) + np.where(np.isinf(best), NOT_FOUND, 0))
        top = [ids[j] for j in scores.argmax(axis=1)]
        predicted += top
        truth += [t if t in fits else fits[0] for t, fits in zip(top, fitting[start : start + chunk], strict=True)]
    return Ranked(np.concatenate(ranks) if ranks else np.zeros(0, int), predicted, truth)


def rank_bm25(bundle: Bundle, pairs: Sequence[StickerPair]) -> Ranked:
    """Each message ranked by BM25 (`bm25s`) over the phrases the bundle's sticker tower reads."""
    bm25s = require("bm25s", "peers", "the BM25 baseline")
    stickers = [bundle.catalog[m.sticker_id] for m in bundle.index.index.meta if m.sticker_id in bundle.catalog]
    documents = [[t for phrase in sticker_text(s, bundle.encoder.names) for t in normalise(phrase).split()]
                 for s in stickers]  # fmt: skip
    bm25 = bm25s.BM25()
    bm25.index(documents, show_progress=False)
    found, _ = bm25.retrieve(
        [normalise(p.text).split() or ["∅"] for p in pairs], k=min(BM25_DEPTH, len(stickers)), show_progress=False
    )
    order = [[stickers[j].sticker_id for j in row] for row in found]
    return _ranked([p.sticker_ids for p in pairs], order)


def table(pairs: Sequence[StickerPair], model: Ranked, bm25: Ranked) -> list[tuple[str, Quality, Quality]]:
    """(language, the model's quality, BM25's) per language present, then "all"."""
    languages = np.array([p.language or "-" for p in pairs])
    rows = [(lang, quality(model, languages == lang), quality(bm25, languages == lang))
            for lang in sorted(set(languages.tolist()))]  # fmt: skip
    if len(rows) != 1:
        rows.append(("all", quality(model), quality(bm25)))
    return rows


def format_table(rows: list[tuple[str, Quality, Quality]]) -> str:
    head = (
        f"{'language':<10}{'messages':>9}  {'model hit@1 @10 MRR F1':<28}{'BM25 hit@1 @10 MRR F1':<28}{'MRR ahead':>10}"
    )
    lines = [head]
    for lang, q, b in rows:
        mine = f"{q.hit_at_1:.3f} {q.hit_at_10:.3f} {q.mrr:.3f} {100 * q.macro_f1:4.1f}"
        base = f"{b.hit_at_1:.3f} {b.hit_at_10:.3f} {b.mrr:.3f} {100 * b.macro_f1:4.1f}"
        lines.append(f"{lang:<10}{q.messages:>9}  {mine:<28}{base:<28}{q.mrr - b.mrr:>+10.3f}")
    return "\n".join(lines)
