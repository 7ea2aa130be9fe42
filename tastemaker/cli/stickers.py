"""`tastemaker` commands: sticker catalog, training and suggestions."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from tastemaker.cli.common import (
    UsageError,
    load_rewarded,
    settings_of,
)
from tastemaker.stickers.bundle import DEFAULT_HEAD_WEIGHT

if TYPE_CHECKING:
    from tastemaker.stickers.bundle import Bundle
    from tastemaker.training.modeling.sticker_pairs import StickerPair


def cmd_stickers_import_cldr(args: argparse.Namespace) -> int:
    from tastemaker.stickers.catalog import CatalogError, import_cldr, write_catalog

    try:
        count = write_catalog(import_cldr(args.cldr), args.out)
    except CatalogError as exc:
        raise UsageError(str(exc)) from exc
    print(f"wrote {count} stickers to {args.out}")
    return 0


def cmd_stickers_corpus(args: argparse.Namespace) -> int:
    from tastemaker.training.modeling.chat_corpus import CorpusError, write_corpus

    if args.variants <= 0:
        raise UsageError(f"--variants must be positive, got {args.variants}")
    try:
        count = write_corpus(args.chat, args.out, args.variants, args.seed)
    except CorpusError as exc:
        raise UsageError(str(exc)) from exc
    print(f"wrote {count:,} chat messages to {args.out} (train on them: stickers train --pairs {args.out})")
    return 0


def _pairs(paths: list[Path], catalog: set[str]) -> list[StickerPair]:
    """The pairs of every file; skipped lines are reported on stderr with their line numbers."""
    import sys

    from tastemaker.training.modeling.sticker_pairs import PairsError, read_pairs

    out: list[StickerPair] = []
    for path in paths:
        try:
            read = read_pairs(path, catalog)
        except PairsError as exc:
            raise UsageError(f"--pairs {exc}") from exc
        if read.problems:
            print(f"warning: {read.summary()}", file=sys.stderr)
        out += read.pairs
    return out


def cmd_stickers_train(args: argparse.Namespace) -> int:
    from tastemaker.stickers.bundle import save_bundle
    from tastemaker.stickers.catalog import CatalogError, read_catalog
    from tastemaker.stickers.encoder import sticker_text
    from tastemaker.stickers.typeahead import prefix_table
    from tastemaker.training.modeling.sticker_logs import LoggedPair
    from tastemaker.training.modeling.sticker_training import train_encoder

    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--dim", args.dim)):
        if value <= 0:
            raise UsageError(f"{flag} must be positive, got {value}")
    if not 0.0 <= args.head_weight <= 1.0:
        raise UsageError(f"--head-weight must be in [0, 1], got {args.head_weight}")
    try:
        stickers = read_catalog(args.catalog)
    except CatalogError as exc:
        raise UsageError(str(exc)) from exc
    pairs = _pairs(args.pairs or [], {s.sticker_id for s in stickers})
    logged = []
    if args.logs is not None:
        from tastemaker.training.modeling.sticker_logs import logged_pairs

        try:
            logged = logged_pairs(load_rewarded(args), clip=args.ips_clip or None)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        if not logged:
            raise UsageError(f"{args.logs} holds no sticker sent after a SuggestStickers decision")
    # a message with several fitting stickers is one draw among them
    sent = [LoggedPair(p.text, sid, 1.0 / len(p.sticker_ids)) for p in pairs for sid in p.sticker_ids]
    trained = train_encoder(
        stickers, version=args.version, epochs=args.epochs, logged=logged + sent, hold_out_names=args.hold_out_names,
        batch_size=args.batch_size, dim=args.dim,
    )  # fmt: skip
    head = None
    if sent:
        from tastemaker.training.modeling.sticker_head_training import train_head

        learned = train_head([p.message for p in sent], [p.sticker_id for p in sent], [p.weight for p in sent])
        head = learned.head
        print(f"trained the chat head on {len(pairs):,} messages ({len(head.labels)} stickers, "
              f"{len(head.rows):,} features, {learned.epochs} epochs) in {learned.seconds:.0f} s")  # fmt: skip
    manifest = {"pairs": len(pairs), "pairs_files": [str(p) for p in args.pairs or []]}
    learned_texts = [p.text for p in pairs] + [phrase for s in stickers for phrase in sticker_text(s)]
    index = save_bundle(
        args.out, trained.encoder, stickers, args.catalog, manifest, head, args.head_weight, prefix_table(learned_texts)
    )
    from_pairs = f", {len(sent):,} from --pairs" if sent else ""
    print(f"trained {trained.encoder.version} on {trained.pairs:,} pairs ({len(logged):,} from the logs{from_pairs}) "
          f"in {trained.seconds:.0f} s; "
          f"indexed {len(index)} stickers ({index.backend}) → {args.out}")  # fmt: skip
    print(f"serve it with TASTEMAKER_STICKER_MODEL={args.out}")
    return 0


def _bundle(model: str) -> Bundle:
    from tastemaker.stickers.bundle import load_bundle
    from tastemaker.stickers.encoder import EncoderError
    from tastemaker.stickers.head import HeadError

    try:
        return load_bundle(Path(model))
    except (EncoderError, HeadError, ValueError, OSError) as exc:
        raise UsageError(f"--model {model}: {exc}") from exc


def cmd_stickers_evaluate(args: argparse.Namespace) -> int:
    from tastemaker.optional import MissingExtra
    from tastemaker.training.evaluation.sticker_quality import format_table, rank_bm25, rank_model, table

    bundle = _bundle(args.model)
    pairs = _pairs(args.pairs, set(bundle.catalog))
    try:
        bm25 = rank_bm25(bundle, pairs)
    except MissingExtra as exc:
        raise UsageError(str(exc)) from exc
    model = rank_model(bundle, pairs)
    head = f", head weight {bundle.head_weight:g}" if bundle.head is not None else ", no head"
    files = ", ".join(map(str, args.pairs))
    print(f"{args.model} ({bundle.encoder.version}{head}) on {len(pairs):,} messages of {files}, "
          f"ranked among {len(bundle.index.index):,} stickers; BM25 over the same catalog's phrases")  # fmt: skip
    print(format_table(table(pairs, model, bm25)))
    return 0


def cmd_stickers_suggest(args: argparse.Namespace) -> int:
    from tastemaker.services.errors import InvalidArgument
    from tastemaker.services.stickers import StickerService

    try:
        args.text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("the message is not valid UTF-8") from None
    model = args.model or settings_of(args).sticker_model
    if not model:
        raise UsageError("give --model DIR or set TASTEMAKER_STICKER_MODEL (`tastemaker stickers train --out DIR`)")
    bundle = _bundle(model)
    service = StickerService(bundle, rng=__import__("numpy").random.default_rng(args.seed))
    try:
        result = service.suggest("cli", args.text, args.lang or "", args.k, partial=args.partial)
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from exc
    for s in result.suggestions:
        sticker = bundle.catalog.get(s.sticker_id)
        name = sticker.phrases.get(args.lang or "en", sticker.phrases.get("en")) if sticker else None
        emoji = sticker.emoji if sticker else "?"
        print(f"{emoji}  {s.sticker_id:<24} {s.score:6.3f}  p={s.propensity:.3f}  {name.name if name else ''}")
    return 0


def _learned_texts(args: argparse.Namespace, bundle: Bundle) -> list[str]:
    """The chat messages the bundle learned from: --pairs, else the pairs files its manifest names
    (those still on disk); the catalog's phrases are added by the export itself."""
    import json

    paths = list(args.pairs or [])
    if not paths:
        manifest = json.loads((Path(args.model) / "manifest.json").read_text(encoding="utf-8"))
        paths = [Path(p) for p in manifest.get("pairs_files", []) if Path(p).is_file()]
    return [p.text for p in _pairs(paths, set(bundle.catalog))]


def cmd_stickers_export_device(args: argparse.Namespace) -> int:
    from tastemaker.optional import MissingExtra
    from tastemaker.training.modeling.device_export import export_device

    if args.budget_bytes <= 0:
        raise UsageError(f"--budget-bytes must be positive, got {args.budget_bytes}")
    if not 0.0 <= args.epsilon <= 1.0:
        raise UsageError(f"--epsilon must be in [0, 1], got {args.epsilon}")
    from tastemaker.stickers.bundle import DEVICE_BUNDLE, save_prefixes

    bundle = _bundle(args.model)
    texts = _learned_texts(args, bundle)
    out = args.out or Path(args.model) / DEVICE_BUNDLE
    try:
        done = export_device(bundle, out, texts, args.budget_bytes, args.epsilon)
    except MissingExtra as exc:
        raise UsageError(str(exc)) from exc
    except ValueError as exc:
        raise UsageError(f"--budget-bytes {exc}") from exc
    print(f"wrote {done.path} ({done.bytes:,} bytes, version {done.version}, sha256 {done.sha256}): "
          f"{done.encoder_rows:,} encoder rows, {done.head_rows:,} head rows, ranked on {len(texts):,} chat "
          f"messages and the catalog's phrases, in {done.seconds:.0f} s")  # fmt: skip
    if not bundle.prefixes:  # the server's typeahead (`partial`) completes words from the same table
        save_prefixes(Path(args.model), done.prefixes)
    print(f'try it: tastemaker device suggest --bundle {out} "happy birthday"')
    return 0


def add_stickers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    stickers = sub.add_parser("stickers", help="message-to-sticker retrieval: catalog, training, suggestions")
    stickers_sub = stickers.add_subparsers(dest="stickers_command", required=True, metavar="ACTION")
    importer = stickers_sub.add_parser("import-cldr", help="build the catalog from CLDR emoji annotations")
    importer.add_argument("--cldr", type=Path, required=True, help="the cldr-annotations-full package directory")
    importer.add_argument("--out", type=Path, required=True, help="catalog file to write (.jsonl)")
    importer.set_defaults(func=cmd_stickers_import_cldr)
    corpus = stickers_sub.add_parser(
        "corpus",
        help="compose the hand-written chat corpus (data/chat) into a pairs file",
        description="Compose the chat phrases of data/chat (intents.txt and one file per language, written by "
        "hand) into chat messages as people type them — filler words, romanised spelling variants, typos, two "
        "phrases in one message — each paired with its intent's stickers, as JSON lines for `stickers train --pairs`.",
    )  # fmt: skip
    corpus.add_argument("--chat", type=Path, default=Path("data/chat"), help="the source folder (default data/chat)")
    corpus.add_argument("--out", type=Path, required=True, help="pairs file to write (.jsonl)")
    corpus.add_argument("--variants", type=int, default=4, help="messages composed per phrase at most (default 4)")
    corpus.add_argument("--seed", type=int, default=0, help="composition seed (default 0)")
    corpus.set_defaults(func=cmd_stickers_corpus)
    st_train = stickers_sub.add_parser("train", help="train the two-tower encoder (TFRS) and index the catalog")
    st_train.add_argument("--catalog", type=Path, required=True, help="catalog .jsonl (`stickers import-cldr`)")
    st_train.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    st_train.add_argument("--epochs", type=int, default=6, help="passes over the training pairs (default 6)")
    st_train.add_argument(
        "--batch-size", type=int, default=8192,
        help="pairs per step (default 8192); each step also pools the whole catalog, so larger batches train faster",
    )  # fmt: skip
    st_train.add_argument("--dim", type=int, default=64, help="embedding dimension (default 64)")
    st_train.add_argument("--version", help="version name (default stickers-TIMESTAMP)")
    st_train.add_argument(
        "--hold-out-names", action="store_true",
        help="keep the CLDR short names out of training entirely (for `bench_stickers --model`)",
    )  # fmt: skip
    st_train.add_argument(
        "--logs", type=Path,
        help="rewarded decisions (.jsonl/.parquet export): also learn from (message, sent sticker) pairs",
    )  # fmt: skip
    st_train.add_argument(
        "--pairs", type=Path, action="append", metavar="FILE",
        help="(message, sticker) pairs to learn from, JSON lines {\"text\": …, \"sticker_id\": …} (or \"stickers\": "
             "[…], several fitting ones): an app's send history, a chat corpus, a public data set; repeatable. "
             "Trains the chat head beside the encoder; bad lines are reported with their line numbers and skipped",
    )  # fmt: skip
    st_train.add_argument(
        "--head-weight", type=float, default=DEFAULT_HEAD_WEIGHT,
        help=f"the chat head's share of the served blend, in [0, 1] (default {DEFAULT_HEAD_WEIGHT:g}; "
             "used only with --pairs)",
    )  # fmt: skip
    st_train.add_argument(
        "--ips-clip", type=float, default=10.0, help="clip of a logged pair's 1/propensity weight (0: unweighted)"
    )
    st_train.set_defaults(func=cmd_stickers_train)
    st_eval = stickers_sub.add_parser(
        "evaluate",
        help="hit@1, hit@10, MRR and macro-F1 of a bundle on (message, sticker) pairs, per language, beside BM25",
        description="Rank the bundle's whole catalog for each message of the pairs files (as served, without "
        "exploration or the per-user re-rank) and print, per language and overall, hit@1, hit@10, MRR and the "
        "macro-F1 of the top suggestion, beside BM25 over the same catalog's phrases in the same run.",
    )  # fmt: skip
    st_eval.add_argument("--model", required=True, help="bundle directory (`stickers train --out`)")
    st_eval.add_argument(
        "--pairs", type=Path, required=True, action="append", metavar="FILE",
        help="JSON lines {\"text\", \"sticker_id\" or \"stickers\", optional \"language\"}; repeatable",
    )  # fmt: skip
    st_eval.set_defaults(func=cmd_stickers_evaluate)
    st_export = stickers_sub.add_parser(
        "export-device",
        help="write the device bundle (LiteRT encoder, int8 stickers and head, tokeniser spec) of a model",
        description="Write one file an app downloads to suggest stickers offline: the message tower as a LiteRT "
        "flatbuffer over the feature rows that matter most (ranked on the chat the model learned from and the "
        "catalog's phrases, as many as --budget-bytes allows), the sticker vectors and the chat head in int8, "
        "the tokeniser spec and a typeahead prefix table, each member's SHA-256 in its manifest. "
        "`tastemaker device suggest --bundle FILE` answers from it.",
    )  # fmt: skip
    st_export.add_argument("--model", required=True, help="bundle directory (`stickers train --out`)")
    st_export.add_argument(
        "--out", type=Path, help="device bundle file to write (default MODEL/device-bundle.zip, which serve streams)"
    )
    st_export.add_argument(
        "--pairs", type=Path, action="append", metavar="FILE",
        help="the chat pairs the model learned from (default: the files its manifest names, if still there)",
    )  # fmt: skip
    st_export.add_argument(
        "--budget-bytes", type=int, default=5_000_000, help="the bundle's size at most (default 5,000,000)"
    )
    st_export.add_argument("--epsilon", type=float, default=0.1, help="the device's exploration (default 0.1)")
    st_export.set_defaults(func=cmd_stickers_export_device)
    st_suggest = stickers_sub.add_parser("suggest", help="stickers for a message, as SuggestStickers answers")
    st_suggest.add_argument("text", help="the message")
    st_suggest.add_argument("--lang", choices=("en", "hi", "bn", "ta", "te", "mr", "gu", "kn", "ml", "pa"))
    st_suggest.add_argument("-k", type=int, default=5, help="how many (default 5)")
    st_suggest.add_argument("--model", help="bundle directory (default TASTEMAKER_STICKER_MODEL)")
    st_suggest.add_argument("--seed", type=int, help="exploration seed, for repeatable output")
    st_suggest.add_argument("--partial", action="store_true", help="the last word may be unfinished (typeahead)")
    st_suggest.set_defaults(func=cmd_stickers_suggest)
