"""Ingest benchmark: the worker's first result for a big imported conversation, and its export.

    python benchmarks/ingest_worker.py                       # SQLite and PostgreSQL, 3 runs each
    python benchmarks/ingest_worker.py --databases sqlite --repeat 1
    python benchmarks/ingest_worker.py --code /tmp/polis-like-main   # another checkout's code

The synthetic conversation of the scale benchmark (100k participants x 1,000 statements, 30 votes
a participant: 3M vote events) is written once as a Pol.is export with the project's writer and
cached (``--cache-dir``). For each database it is imported with ``polis-like import`` into a fresh
SQLite file and a fresh PostgreSQL database (``--postgres-url``; dropped at the end); then:

* **worker**: ``polis-like worker --once`` on a fresh copy of that database, 3 times. Timed by
  this process from the worker process's start to the log line of its published result (the
  result is stored and committed), and from its claim of the conversation (the "computing" log
  line) to that line; the whole process too (it then saves the state and exits).
* **export**: ``polis-like export`` of the conversation (with the worker's result, so with the
  group column), as a whole process: wall time and peak RSS.

Every ``polis-like`` process runs this checkout's code, or ``--code``'s (its working folder,
and first on ``PYTHONPATH``, with this venv's packages), so that one venv measures before and
after.
Prints a markdown report; ``--out`` keeps the raw runs as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402  (benchmarks/ is the script's folder)

N_PARTICIPANTS, N_STATEMENTS, VOTES_EACH = 100_000, 1_000, 30
COMPUTING = re.compile(r"polis_like\.worker conversation (\d+): computing")
PUBLISHED = re.compile(r"polis_like\.worker conversation (\d+): tick (\d+), (\d+) new votes")
DATABASES = ("sqlite", "postgresql")
MB = 1e6


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    code = args.code.resolve()
    export = synthetic_export(args.cache_dir.resolve(), args.seed)
    report: dict = {
        "command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "code": str(code),
        "commit": _commit(code),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_start": os.getloadavg(),
        },
        "export": str(export),
        "databases": {},
    }
    for database in args.databases.split(","):
        print(f"[{database}] importing {export.name}", file=sys.stderr, flush=True)
        with _Database(database, args.postgres_url) as db:
            report["databases"][database] = measure(db, code, export, args.repeat)
        print(
            f"[{database}] {json.dumps(report['databases'][database]['median'])}", file=sys.stderr
        )
    report["machine"]["load_end"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--databases", default=",".join(DATABASES), help="comma-separated: sqlite,postgresql")
    add("--repeat", type=int, default=3, help="runs of each measure; the report shows medians")
    add("--code", type=Path, default=ROOT, help="the checkout whose code the processes run")
    add(
        "--postgres-url",
        default="postgresql://postgres@localhost:5432/postgres",
        help="a PostgreSQL server to make the benchmark's databases on",
    )
    add("--seed", type=int, default=0)
    add(
        "--cache-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "polis-like-bench",
        help="where the synthetic export is kept between runs",
    )
    add("--out", type=Path, help="write the raw results as JSON")
    return parser


def synthetic_export(cache_dir: Path, seed: int) -> Path:
    """The synthetic conversation as a Pol.is export folder (written once, then cached)."""
    folder = cache_dir / (
        f"export-{N_PARTICIPANTS}x{N_STATEMENTS}-v{VOTES_EACH}-s{seed}-g{synthetic.GENERATOR_VERSION}"
    )
    if folder.exists():
        return folder
    sys.path.insert(0, str(ROOT))
    from latency import synthetic_conversation

    from polis_like.io import write_export

    print(f"writing the synthetic export {folder}", file=sys.stderr, flush=True)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    write_export(synthetic_conversation(N_PARTICIPANTS, N_STATEMENTS, seed), partial)
    partial.replace(folder)
    return folder


def measure(db: _Database, code: Path, export: Path, repeat: int) -> dict:
    """Import once, then the worker's first result and the export, ``repeat`` times each."""
    started = time.perf_counter()
    out = _run(_cli(code, "import", str(export), "--database-url", db.template_url), code)
    imported = {"wall_s": time.perf_counter() - started, "peak_rss_mb": out["peak_rss_mb"]}
    found = re.search(r"imported conversation (\d+)", out["stdout"])
    if not found:
        raise RuntimeError(f"the import failed: {out['stderr'][-500:]}")
    cid = int(found.group(1))
    workers, exports = [], []
    url = None
    for i in range(repeat):
        url = db.copy(f"run{i}")
        workers.append(_first_result(code, url, cid))
        print(f"  worker: {json.dumps(workers[-1])}", file=sys.stderr, flush=True)
    assert url is not None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            out = _run(_cli(code, "export", str(cid), f"{tmp}/out", "--database-url", url), code)
            wall = time.perf_counter() - started
            if out["returncode"] != 0:
                raise RuntimeError(f"the export failed: {out['stderr'][-500:]}")
            size = sum(f.stat().st_size for f in Path(tmp, "out").iterdir())
        exports.append({"wall_s": wall, "peak_rss_mb": out["peak_rss_mb"], "bytes": size})
        print(f"  export: {json.dumps(exports[-1])}", file=sys.stderr, flush=True)
    return {
        "import": imported,
        "worker": workers,
        "export": exports,
        "median": {
            "worker": _medians(workers),
            "export": _medians(exports),
        },
    }


def _first_result(code: Path, url: str, cid: int) -> dict:
    """One ``polis-like worker --once``: seconds from its start (and from its claim of the
    conversation) to the log line of its published result, and the whole process."""
    argv = _cli(code, "worker", "--once", "--database-url", url)
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env=_env(code),
        cwd=code,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put((time.perf_counter(), line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    claimed = published = None
    n_votes = None
    tail: list[str] = []
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    ended = time.perf_counter()
    reader.join()
    while not lines.empty():
        at, line = lines.get()
        tail = (tail + [line.strip()])[-3:]
        if (m := COMPUTING.search(line)) and int(m.group(1)) == cid and claimed is None:
            claimed = at
        if (m := PUBLISHED.search(line)) and int(m.group(1)) == cid and published is None:
            published, n_votes = at, int(m.group(3))
    if published is None or claimed is None:
        raise RuntimeError(f"the worker published no result: {' | '.join(tail)}")
    return {
        "start_to_result_s": published - started,
        "claim_to_result_s": published - claimed,
        "process_s": ended - started,
        "peak_rss_mb": usage.ru_maxrss * 1024 / MB,
        "votes_read": n_votes,
    }


def _cli(code: Path, *arguments: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from polis_like.launcher.cli import main; sys.exit(main())",
        *arguments,
    ]


def _env(code: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(code)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault(
        "POLIS_LIKE_INSTANCE", str(Path(tempfile.gettempdir()) / "polis-like-bench-instance")
    )
    return env


def _run(argv: list[str], code: Path) -> dict:
    """Run a child to its end: its output, exit status and peak RSS."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, env=_env(code), cwd=code, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "returncode": proc.returncode,
            "stdout": out.read(),
            "stderr": err.read()[-5000:],
            "peak_rss_mb": usage.ru_maxrss * 1024 / MB,
        }


class _Database:
    """A fresh database to import into (the template), and fresh copies of it to run on."""

    def __init__(self, kind: str, postgres_url: str) -> None:
        self.kind = kind
        self.postgres_url = postgres_url
        self.tmp = Path(tempfile.mkdtemp(prefix="polis-like-ingest-"))
        self.names: list[str] = []
        self.prefix = f"polis_like_ingest_{os.getpid()}"
        if kind == "sqlite":
            self.template_url = f"sqlite:///{self.tmp / 'template.db'}"
        elif kind == "postgresql":
            self.template_url = self._create(f"{self.prefix}_template")
        else:
            raise SystemExit(f"unknown database {kind!r}; choose among {', '.join(DATABASES)}")

    def __enter__(self) -> _Database:
        return self

    def __exit__(self, *_) -> None:
        for name in self.names:
            try:
                _pg_admin(self.postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as error:
                print(f"  could not drop {name}: {error}", file=sys.stderr)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def copy(self, name: str) -> str:
        """A fresh copy of the template; its URL."""
        if self.kind == "sqlite":
            for old in self.tmp.glob("run*.db*"):
                old.unlink()  # one copy at a time: the files are large
            template = self.tmp / "template.db"
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{template}{suffix}").exists():
                    shutil.copyfile(f"{template}{suffix}", self.tmp / f"{name}.db{suffix}")
            return f"sqlite:///{self.tmp / f'{name}.db'}"
        for old in [n for n in self.names if not n.endswith("_template")]:
            _pg_admin(self.postgres_url, f'DROP DATABASE IF EXISTS "{old}" WITH (FORCE)')
            self.names.remove(old)
        return self._create(f"{self.prefix}_{name}", template=f"{self.prefix}_template")

    def _create(self, name: str, template: str | None = None) -> str:
        statement = f'CREATE DATABASE "{name}"'
        if template:
            statement += f' TEMPLATE "{template}"'
        _pg_admin(self.postgres_url, statement)
        self.names.append(name)
        from sqlalchemy.engine import make_url

        return make_url(self.postgres_url).set(database=name).render_as_string(hide_password=False)


def _pg_admin(url: str, statement: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(statement)


def _medians(runs: list[dict]) -> dict:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    return {k: statistics.median(r[k] for r in runs) for k in keys}


def _commit(code: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(code), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return out.stdout.strip() + (" (with changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def markdown(report: dict) -> str:
    """The report as a markdown table (medians)."""
    lines = [
        (
            f"`{report['command']}` (code {report['commit'] or report['code']}; "
            f"{report['machine']['cpus']} cores, load {report['machine']['load_start'][0]:.1f} "
            f"at the start)"
        ),
        "",
        (
            "| database | import (s) | worker: start to result (s) | claim to result (s) "
            "| worker process (s) | worker peak RSS (MB) | export (s) | export peak RSS (MB) |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in report["databases"].items():
        w, e = entry["median"]["worker"], entry["median"]["export"]
        lines.append(
            f"| {name} | {entry['import']['wall_s']:.1f} | {w['start_to_result_s']:.2f} "
            f"| {w['claim_to_result_s']:.2f} | {w['process_s']:.2f} | {w['peak_rss_mb']:.0f} "
            f"| {e['wall_s']:.2f} | {e['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
