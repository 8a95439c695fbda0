"""The ``polis-like`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__
from .errors import PolisLikeError


def _analyze(args: argparse.Namespace) -> int:
    from .analysis import analyze_export
    from .report import to_json, to_text

    progress = None
    if args.replay:
        from tqdm import tqdm

        bar = tqdm(total=0, unit="vote", unit_scale=True, file=sys.stderr, desc="replay",
                   leave=False)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

    conversation, result = analyze_export(args.dir, reducer=args.reducer, seed=args.seed,
                                          replay=args.replay, window_s=args.window,
                                          projection_scale=args.projection_scale,
                                          progress=progress)
    if args.replay:
        bar.close()
    if args.timings:
        stages = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in result.timings.items())
        print(f"timings of the last update: {stages}", file=sys.stderr)
    if args.format == "text":
        sys.stdout.write(to_text(conversation, result))
    else:
        document = to_json(conversation, result, reducer=args.reducer, seed=args.seed,
                           replay=args.replay, projection_scale=args.projection_scale)
        json.dump(document, sys.stdout, ensure_ascii=False, allow_nan=False)
        sys.stdout.write("\n")
    return 0


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError("the window must be more than 0 seconds")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="polis-like", description=__doc__)
    parser.add_argument("--version", action="version", version=f"polis-like {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    analyze = commands.add_parser(
        "analyze", help="run the opinion math on a Pol.is export folder (or .zip)",
        description="Run the Pol.is opinion math on an export folder (votes.csv and "
                    "comments.csv, or participants-votes.csv alone) or a .zip of one.")
    analyze.add_argument("dir", metavar="DIR", help="the export folder or .zip")
    analyze.add_argument("--reducer", choices=("pca", "umap"), default="pca",
                         help="how participants are placed in 2-D (default: pca)")
    analyze.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    analyze.add_argument("--replay", action="store_true",
                         help="feed the votes in time order through the incremental update, "
                              "as the Pol.is worker saw them")
    analyze.add_argument("--window", type=_positive_seconds, default=10.0, metavar="SECONDS",
                         help="with --replay: votes this close in time form one update "
                              "(default: 10)")
    analyze.add_argument("--projection-scale", choices=("visible", "polis"), default="visible",
                         help="count only the statements participants could see in the map's "
                              "scale (default), or also moderated-out ones, as Pol.is does")
    analyze.add_argument("--format", choices=("json", "text"), default="json",
                         help="json (default) or text for people")
    analyze.add_argument("--timings", action="store_true",
                         help="print the time of each stage of the math on stderr")
    analyze.set_defaults(handler=_analyze)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``polis-like`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except PolisLikeError as error:
        print(f"polis-like: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
