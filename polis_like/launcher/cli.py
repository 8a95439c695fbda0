"""The ``polis-like`` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import PolisLikeError
from . import admin


def _analyze(args: argparse.Namespace) -> int:
    from ..analysis import analyze_export
    from ..report import to_json, to_text

    progress = None
    if args.replay:
        from tqdm import tqdm

        bar = tqdm(
            total=0, unit="vote", unit_scale=True, file=sys.stderr, desc="replay", leave=False
        )

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

    conversation, result = analyze_export(
        args.dir,
        reducer=args.reducer,
        seed=args.seed,
        replay=args.replay,
        window_s=args.window,
        projection_scale=args.projection_scale,
        progress=progress,
    )
    if args.replay:
        bar.close()
    if args.timings:
        stages = ", ".join(
            f"{name} {seconds * 1000:.1f} ms" for name, seconds in result.timings.items()
        )
        print(f"timings of the last update: {stages}", file=sys.stderr)
    if args.format == "text":
        sys.stdout.write(to_text(conversation, result))
    else:
        document = to_json(
            conversation,
            result,
            reducer=args.reducer,
            seed=args.seed,
            replay=args.replay,
            projection_scale=args.projection_scale,
        )
        # dumps, not dump: dump encodes piece by piece in Python, dumps in C (10x faster)
        sys.stdout.write(json.dumps(document, ensure_ascii=False, allow_nan=False) + "\n")
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
        "analyze",
        help="run the opinion math on a Pol.is export folder (or .zip)",
        description="Run the Pol.is opinion math on an export folder (votes.csv and "
        "comments.csv, or participants-votes.csv alone) or a .zip of one.",
    )
    analyze.add_argument("dir", metavar="DIR", help="the export folder or .zip")
    analyze.add_argument(
        "--reducer",
        choices=("pca", "umap"),
        default="pca",
        help="how participants are placed in 2-D (default: pca)",
    )
    analyze.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    analyze.add_argument(
        "--replay",
        action="store_true",
        help="feed the votes in time order through the incremental update, "
        "as the Pol.is worker saw them",
    )
    analyze.add_argument(
        "--window",
        type=_positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="with --replay: votes this close in time form one update (default: 10)",
    )
    analyze.add_argument(
        "--projection-scale",
        choices=("polis", "visible"),
        default="polis",
        help="count moderated-out statements in the map's scale, as Pol.is does "
        "(default), or only the statements participants could see",
    )
    analyze.add_argument(
        "--format",
        choices=("json", "text"),
        default="json",
        help="json (default) or text for people",
    )
    analyze.add_argument(
        "--timings", action="store_true", help="print the time of each stage of the math on stderr"
    )
    analyze.set_defaults(handler=_analyze)
    _service_commands(commands)
    return parser


def _service_commands(commands) -> None:
    url_help = "the database (default: $DATABASE_URL, else SQLite in the instance folder)"

    db = commands.add_parser("db", help="manage the database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="migrate the database to the newest schema")
    upgrade.add_argument("--database-url", help=url_help)
    upgrade.set_defaults(handler=_db_upgrade)

    admin.add_commands(commands, url_help)

    serve = commands.add_parser(
        "serve", help="run the web server (gunicorn processes, uvicorn event loops)"
    )
    _listen_options(serve)
    serve.add_argument(
        "--workers", type=int, help="processes (default: $POLIS_LIKE_WEB_WORKERS, else 2)"
    )
    serve.add_argument(
        "--threads",
        type=int,
        help="request threads per process (default: $POLIS_LIKE_WEB_THREADS, else 8)",
    )
    serve.add_argument("--database-url", help=url_help)
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser("worker", help="run the math worker")
    worker.add_argument(
        "--once", action="store_true", help="bring every conversation up to date once, then exit"
    )
    worker.add_argument("--database-url", help=url_help)
    worker.set_defaults(handler=_worker)

    imp = commands.add_parser(
        "import", help="import a Pol.is export folder or .zip as a new conversation"
    )
    imp.add_argument("path", metavar="PATH")
    imp.add_argument("--topic", help="the topic (default: the export's)")
    imp.add_argument("--database-url", help=url_help)
    imp.set_defaults(handler=_import)

    exp = commands.add_parser("export", help="write a conversation as the five Pol.is CSV files")
    exp.add_argument("conversation_id", type=int, metavar="ID")
    exp.add_argument("dir", metavar="DIR")
    exp.add_argument(
        "--exact",
        action="store_true",
        help="write every text exactly as stored, as Pol.is does, to import on another server "
        "(by default a text that begins with = + - @, a tab or a carriage return gets a leading "
        "' so that a spreadsheet shows it instead of running it as a formula)",
    )
    exp.add_argument("--database-url", help=url_help)
    exp.set_defaults(handler=_export)

    run = commands.add_parser(
        "run", help="set up (migrate, admin, demo conversation) and run the web server and a worker"
    )
    _listen_options(run)
    run.add_argument("--database-url", help=url_help)
    run.set_defaults(handler=_run)


def _listen_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--host", help="the address to listen on (default: $POLIS_LIKE_HOST, else 127.0.0.1)"
    )
    command.add_argument(
        "--port", type=int, help="the port to listen on (default: $POLIS_LIKE_PORT, else 8000)"
    )


def _settings(args: argparse.Namespace):
    """The settings, with this command's options over the environment's."""
    from ..settings import read_settings

    options = {"database_url": args.database_url}
    for name, setting in (
        ("host", "host"),
        ("port", "port"),
        ("workers", "web_workers"),
        ("threads", "web_threads"),
    ):
        options[setting] = getattr(args, name, None)
    return read_settings(**options)


def _db_upgrade(args: argparse.Namespace) -> int:
    from ..storage.db import database_url
    from ..storage.migrate import upgrade

    upgrade(args.database_url)
    print(f"database is up to date: {_safe(database_url(args.database_url))}")
    return 0


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _serve(args: argparse.Namespace) -> int:
    from ..storage.migrate import ensure_current
    from .service import check_port, serve

    settings = _settings(args)
    check_port(settings.host, settings.port)
    ensure_current(settings.resolved_database_url()).dispose()
    serve(settings)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from .service import run_worker

    run_worker(_settings(args), once=args.once)
    return 0


def _import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..storage.db import session_factory
    from ..storage.migrate import migrated_engine
    from ..storage.transfer import import_export

    with (
        migrated_engine(args.database_url) as engine,
        tqdm(
            total=0, unit="row", unit_scale=True, file=sys.stderr, desc="import", leave=False
        ) as bar,
    ):

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            conversation_id = import_export(
                session_factory(engine), args.path, topic=args.topic, progress=progress
            )
        except OSError as error:  # a file the readers did not expect to fail
            return _failed(f"cannot import {args.path}: {error.strerror or error}")
    print(f"imported conversation {conversation_id}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..storage.db import session_factory
    from ..storage.migrate import migrated_engine
    from ..storage.models import MAX_ID
    from ..storage.transfer import write_conversation

    if not 0 <= args.conversation_id <= MAX_ID:
        return _failed(f"no conversation {args.conversation_id}")
    if os.path.exists(args.dir) and not os.path.isdir(args.dir):
        return _failed(f"{args.dir} is a file; give a folder to write the five files into")
    with migrated_engine(args.database_url) as engine, session_factory(engine)() as session:
        try:
            write_conversation(session, args.conversation_id, args.dir, exact=args.exact)
        except OSError as error:
            where = error.filename or args.dir
            return _failed(f"cannot write {where}: {error.strerror or error}")
    print(f"wrote conversation {args.conversation_id} to {args.dir}")
    return 0


def _failed(message: str) -> int:
    """Print ``message`` as the command's one-line error; the exit status of a failure."""
    print(f"polis-like: error: {message}", file=sys.stderr)
    return 2


def _run(args: argparse.Namespace) -> int:
    from .service import run_all

    return run_all(_settings(args))


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
