"""`tastemaker` commands: sticker catalog, training and suggestions."""

from __future__ import annotations

import argparse
from pathlib import Path

from tastemaker.services.cli.common import (
    UsageError,
    _load_rewarded,
    _settings,
)


def cmd_stickers_import_cldr(args: argparse.Namespace) -> int:
    from tastemaker.stickers.catalog import CatalogError, import_cldr, write_catalog

    try:
        count = write_catalog(import_cldr(args.cldr), args.out)
    except CatalogError as exc:
        raise UsageError(str(exc)) from exc
    print(f"wrote {count} stickers to {args.out}")
    return 0


def cmd_stickers_train(args: argparse.Namespace) -> int:
    from tastemaker.stickers.bundle import save_bundle
    from tastemaker.stickers.catalog import CatalogError, read_catalog
    from tastemaker.training.modeling.sticker_training import train_encoder

    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--dim", args.dim)):
        if value <= 0:
            raise UsageError(f"{flag} must be positive, got {value}")
    try:
        stickers = read_catalog(args.catalog)
    except CatalogError as exc:
        raise UsageError(str(exc)) from exc
    logged = []
    if args.logs is not None:
        from tastemaker.training.modeling.sticker_logs import logged_pairs

        try:
            logged = logged_pairs(_load_rewarded(args), clip=args.ips_clip or None)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        if not logged:
            raise UsageError(f"{args.logs} holds no sticker sent after a SuggestStickers decision")
    trained = train_encoder(
        stickers, version=args.version, epochs=args.epochs, logged=logged, hold_out_names=args.hold_out_names,
        batch_size=args.batch_size, dim=args.dim,
    )  # fmt: skip
    index = save_bundle(args.out, trained.encoder, stickers, args.catalog)
    print(f"trained {trained.encoder.version} on {trained.pairs:,} pairs ({trained.logged_pairs:,} from the logs) "
          f"in {trained.seconds:.0f} s; "
          f"indexed {len(index)} stickers ({index.backend}) → {args.out}")  # fmt: skip
    print(f"serve it with TASTEMAKER_STICKER_MODEL={args.out}")
    return 0


def cmd_stickers_suggest(args: argparse.Namespace) -> int:
    from tastemaker.services.errors import InvalidArgument
    from tastemaker.services.stickers import StickerService
    from tastemaker.stickers.bundle import load_bundle
    from tastemaker.stickers.encoder import EncoderError

    try:
        args.text.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("the message is not valid UTF-8") from None
    model = args.model or _settings(args).sticker_model
    if not model:
        raise UsageError("give --model DIR or set TASTEMAKER_STICKER_MODEL (`tastemaker stickers train --out DIR`)")
    try:
        bundle = load_bundle(Path(model))
    except (EncoderError, ValueError, OSError) as exc:
        raise UsageError(f"--model {model}: {exc}") from exc
    service = StickerService(bundle.encoder, bundle.index, rng=__import__("numpy").random.default_rng(args.seed))
    try:
        result = service.suggest("cli", args.text, args.lang or "", args.k)
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from exc
    for s in result.suggestions:
        sticker = bundle.catalog.get(s.sticker_id)
        name = sticker.phrases.get(args.lang or "en", sticker.phrases.get("en")) if sticker else None
        emoji = sticker.emoji if sticker else "?"
        print(f"{emoji}  {s.sticker_id:<24} {s.score:6.3f}  p={s.propensity:.3f}  {name.name if name else ''}")
    return 0


def add_stickers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    stickers = sub.add_parser("stickers", help="message-to-sticker retrieval: catalog, training, suggestions")
    stickers_sub = stickers.add_subparsers(dest="stickers_command", required=True, metavar="ACTION")
    importer = stickers_sub.add_parser("import-cldr", help="build the catalog from CLDR emoji annotations")
    importer.add_argument("--cldr", type=Path, required=True, help="the cldr-annotations-full package directory")
    importer.add_argument("--out", type=Path, required=True, help="catalog file to write (.jsonl)")
    importer.set_defaults(func=cmd_stickers_import_cldr)
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
        "--ips-clip", type=float, default=10.0, help="clip of a logged pair's 1/propensity weight (0: unweighted)"
    )
    st_train.set_defaults(func=cmd_stickers_train)
    st_suggest = stickers_sub.add_parser("suggest", help="stickers for a message, as SuggestStickers answers")
    st_suggest.add_argument("text", help="the message")
    st_suggest.add_argument("--lang", choices=("en", "hi", "bn", "ta", "te", "mr", "gu", "kn", "ml", "pa"))
    st_suggest.add_argument("-k", type=int, default=5, help="how many (default 5)")
    st_suggest.add_argument("--model", help="bundle directory (default TASTEMAKER_STICKER_MODEL)")
    st_suggest.add_argument("--seed", type=int, help="exploration seed, for repeatable output")
    st_suggest.set_defaults(func=cmd_stickers_suggest)
