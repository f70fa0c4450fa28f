"""``rtkit demo | collect | replay | sim``: the Python API, from a shell, with the same words."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import json
import logging
import re
import signal
import sys
import threading
import time
from pathlib import Path

from rtkit import __version__
from rtkit.analysis import ohlcv
from rtkit.backfill import DEFAULT_BACKFILL_MAX
from rtkit.collector import Collector
from rtkit.replay import REPLAY_DB, replay
from rtkit.rest.budget import BUDGET_SHARE, MAX_SHARE
from rtkit.rest.endpoints import VENUES as REST_VENUES
from rtkit.runtime.writer_process import DEFAULT_WRITER, WRITERS
from rtkit.sim import Faults, SimRest, Simulator, dialect_names
from rtkit.store import DEFAULT_DB, TickStore
from rtkit.venues import adapter_options, venue_names

DEMO_DB = Path("data") / "demo.sqlite"
DEMO_SYMBOLS = ["BTC-USDT", "ETH-USDT"]


class _Progress:
    """One live line on stderr: rewritten in place on a terminal, once a second otherwise."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def show(self, stats: dict, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.25 if self.tty else 1.0):
            return
        self.last = now
        line = (f"{stats['status']:<10} ticks {stats['ticks']:>9,}  "
                f"{stats['ticks_per_s']:>9,.0f}/s  "
                f"stored {stats['stored']:>9,}  pending {stats['pending']:>7,}  "
                f"rejected {stats['rejected']:>5,}  reconnects {stats['reconnects']}")
        if stats["status"] in ("backoff", "failed") and stats.get("status_reason"):
            line += f"  ({_shorten(stats['status_reason'])})"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


#: characters of a backoff/failed reason shown on the progress line
PROGRESS_REASON_CHARS = 80


def _shorten(text: str, limit: int = PROGRESS_REASON_CHARS) -> str:
    """One line of at most ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _run_until(collector: Collector, duration_s: float | None, progress: _Progress | None) -> None:
    """Run until the duration is over, Ctrl-C or SIGTERM; then stop (which flushes)."""
    done = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: done.set())
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        collector.start()
        while not done.is_set() and collector.running:
            if deadline is not None and time.monotonic() >= deadline:
                break
            if progress:
                progress.show(collector.stats)
            done.wait(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        collector.stop()
        if progress:
            progress.show(collector.stats, force=True)
            progress.end()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _summary_keys(stats: dict) -> dict:
    keys = ("frames", "ticks", "stored", "duplicates", "rejected", "rejected_by_reason", "control",
            "reconnects", "gaps", "missing_trades", "pending", "dropped_overflow", "status",
            "last_error")
    return {k: stats[k] for k in keys if k in stats}


def _print_summary(summary: dict, db) -> None:
    print(f"frames {summary['frames']:,}  ticks {summary['ticks']:,}  stored {summary['stored']:,}"
          f"  duplicates {summary['duplicates']:,}  rejected {summary['rejected']:,}"
          f"  control {summary['control']:,}")
    if summary.get("rejected_by_reason"):
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary["rejected_by_reason"].items()))
        print(f"rejects by reason: {reasons}")
    if summary.get("book_events"):  # a replay that rebuilt order books
        print(f"books: {summary.get('book_deltas', 0):,} deltas, {summary['book_events']:,} "
              f"events ({summary.get('book_desyncs', 0):,} desyncs, "
              f"{summary.get('book_resyncs', 0):,} resyncs); quotes {summary.get('quotes', 0):,}")
    print(f"database: {db}")


#: the tables a demo database has, and nothing else
_DEMO_TABLES = {"ticks", "rejects", "gaps", "runs"}
_SIDE_FILES = ("-wal", "-shm", "-journal")


def _demo_verdict(db: Path) -> tuple[str, str]:
    """What the demo may do with ``db``, and why: ``("new", …)`` when it is absent,
    ``("replace", …)`` when the demo provably made it, ``("move", …)`` when only demo
    runs wrote it but that cannot be proven (a demo killed before its summary, a table
    or ticks added since), ``("refuse", …)`` for anything else."""
    if not db.exists():
        return "new", ""
    try:
        with TickStore(db, readonly=True) as store:
            tables = {name for (name,) in store.conn.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")}
            if "runs" not in tables:
                return "refuse", "no runs table: not made by a collector"
            runs = store.conn.execute("SELECT name, url, counters FROM runs").fetchall()
            ticks = store.count()
            rejects = store.conn.execute("SELECT count(*) FROM rejects").fetchone()[0]
    except Exception:  # not an SQLite file, or not rtkit's
        return "refuse", "not an rtkit database"
    if not runs:
        return "refuse", "no runs recorded: made by `rtkit replay`, store_data or by hand"
    others = sorted({name for name, _, _ in runs if name != "demo"})
    if others:
        return "refuse", f"runs named {', '.join(map(repr, others))}"
    if tables - _DEMO_TABLES:
        return "move", f"tables added since: {', '.join(sorted(tables - _DEMO_TABLES))}"
    if any(not (url or "").startswith("ws://127.0.0.1:") for _, url, _ in runs):
        return "move", "a run named 'demo' collected from somewhere else than the simulator"
    try:
        counters = [json.loads(c) for _, _, c in runs]
        stored = sum(c["stored"] for c in counters)
        stored_rejects = sum(c["rejected"] - c["rejects_pending"] - c["rejects_dropped"]
                             - c.get("rejects_unstorable", 0) for c in counters)
    except (TypeError, KeyError, ValueError):
        return "move", "a demo run that never finished"
    if (ticks, rejects) != (stored, stored_rejects):
        return "move", (f"it holds {ticks:,} ticks and {rejects:,} rejects where its demo runs "
                        f"stored {stored:,} and {stored_rejects:,}")
    return "replace", ""


def _move_aside(db: Path) -> Path:
    """Rename ``db`` (and its WAL/journal files) to a free name beside it; returns it."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    n = 0
    while True:
        aside = db.with_name(f"{db.stem}.{stamp}{f'-{n}' if n else ''}{db.suffix}")
        if not any(Path(f"{aside}{s}").exists() for s in ("", *_SIDE_FILES)):
            break
        n += 1
    for suffix in _SIDE_FILES:
        if Path(f"{db}{suffix}").exists():
            Path(f"{db}{suffix}").rename(f"{aside}{suffix}")
    db.rename(aside)
    return aside


def cmd_demo(args) -> int:
    db = Path(args.db)
    verdict, why = _demo_verdict(db)
    if verdict == "refuse":
        raise ValueError(f"'{db}' holds data that is not from the demo ({why}); the demo starts "
                         "from an empty file, so pass --db a new path (e.g. data/demo.sqlite)")
    if verdict == "move":
        print(f"rtkit demo: '{db}' may hold more than a demo run ({why}); "
              f"moved it to '{_move_aside(db)}'")
    elif verdict == "replace":  # every row in it is one an earlier demo stored
        for suffix in ("", *_SIDE_FILES):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    print(f"rtkit demo: local {args.venue} simulator on 127.0.0.1 → collector → {db} "
          f"({args.duration:g} s at {args.rate:,.0f} trades/s)")
    with Simulator(args.venue, rate=args.rate, seed=args.seed) as sim:
        collector = Collector(args.venue, DEMO_SYMBOLS, url=sim.url, db=db, name="demo",
                              flush_interval_s=0.5)
        _run_until(collector, args.duration, _Progress())
    stats = collector.stats
    _print_summary(_summary_keys(stats), db)
    with TickStore(db, readonly=True) as store:
        ticks = store.ticks()
    print(f"\n{len(ticks):,} ticks read back from SQLite; 1-minute OHLCV bars:")
    import pandas as pd

    with pd.option_context("display.width", 120, "display.max_columns", 10):
        print(ohlcv(ticks, "1min").round(6).to_string())
    ok = stats["stored"] == len(ticks) and stats["pending"] == 0 and stats["stored"] > 0
    print("\ndemo OK: every collected tick is in SQLite" if ok else "\ndemo FAILED: see above")
    return 0 if ok else 1


def _say_where_recording_goes(requested: Path, collector: Collector, existed: bool) -> None:
    """Before collecting, one line on stderr when ``--record`` is not a new file."""
    if collector.record_raw != requested:
        print(f"rtkit collect: '{requested}' does not end cleanly (an earlier run was killed?) "
              f"and is left as it is; recording to '{collector.record_raw}'", file=sys.stderr)
    elif existed:
        print(f"rtkit collect: appending to the recording '{requested}'", file=sys.stderr)


def cmd_collect(args) -> int:
    record = Path(args.record).expanduser() if args.record else None
    existed = record is not None and record.is_file() and record.stat().st_size > 0
    options = dict(args.option)
    known = adapter_options(args.venue)
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"--option {key}: not an option of {args.venue}{hint}; its options: "
                             f"{', '.join(known) or 'none'}")
    collector = Collector(args.venue, args.symbols, db=args.db, url=args.url,
                          rest_url=args.rest_url, record_raw=record,
                          flush_interval_s=args.flush_interval,
                          kinds=[k for item in args.kinds for k in item.split(",") if k],
                          lake=args.lake, name=args.name, venue_options=options,
                          depth=args.depth, audit_every_s=args.audit_every,
                          redundancy=args.redundancy, writer=args.writer,
                          backfill=args.backfill, backfill_max=args.backfill_max,
                          rest_budget_share=args.rest_budget_share)
    if record is not None:
        _say_where_recording_goes(record, collector, existed)
    _run_until(collector, args.duration, _Progress())
    summary = _summary_keys(collector.stats)
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary, args.db)
    status = collector.status
    if str(status) == "failed":
        print(f"rtkit collect: failed: {status.reason or 'no reason given'}", file=sys.stderr)
        return 1
    if collector.connections == 0:
        print(f"rtkit collect: never connected: {collector.last_error or 'no reason given'}",
              file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def _warnings_on_stderr():
    """rtkit's warnings (a damaged recording, a bad line…) as lines on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("rtkit")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def cmd_replay(args) -> int:
    try:
        with _warnings_on_stderr():
            kinds = None if args.kinds is None else \
                [k for item in args.kinds for k in item.split(",") if k]
            summary = replay(args.file, db=args.db, lake=args.lake, progress=args.progress,
                             kinds=kinds)
    except FileNotFoundError:
        raise
    except OSError as exc:  # a read error half-way: what came before is stored
        raise ValueError(f"cannot read '{args.file}': {exc}") from None
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary, args.db)
    if summary.get("interrupted"):
        print(f"rtkit replay: interrupted (Ctrl-C): the summary above is what was stored; "
              f"replay '{args.file}' again to finish (a tick already stored is not stored "
              "twice)", file=sys.stderr)
        return 130  # the shell's code for a run ended by SIGINT
    return 0


def cmd_export(args) -> int:
    from rtkit.lake import export

    started = time.perf_counter()
    counts = export(args.db, args.lake, progress=not args.json)
    took = time.perf_counter() - started
    if args.json:
        print(json.dumps(counts))
    else:
        rows = sum(v for k, v in counts.items() if not k.startswith("skipped_"))
        shown = ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "no records"
        print(f"exported {shown} from {args.db} into {args.lake} "
              f"({rows / max(took, 1e-9):,.0f} rows/s)")
    return 0


def cmd_import(args) -> int:
    from rtkit.lake import read, to_store

    df = read(args.lake, args.kind, venue=args.venue, symbol=args.symbol, start=args.start,
              end=args.end)
    new = to_store(df, args.db, args.kind)
    print(f"imported {new:,} new {args.kind} of {len(df):,} read from {args.lake} into {args.db}")
    return 0


def cmd_lake_compact(args) -> int:
    from rtkit.lake.compact import MIN_AGE_S, compact  # pyarrow loads only for the lake

    min_age = MIN_AGE_S if args.min_age is None else args.min_age

    def say(m) -> None:
        if not args.json:
            print(f"merged {m.files:,} files of {m.partition}: {m.rows_in:,} rows → "
                  f"{m.rows_out:,} ({m.duplicates:,} duplicates dropped), "
                  f"{m.bytes_in:,} → {m.bytes_out:,} bytes as {m.output}", flush=True)

    report = compact(args.root, kind=args.kind, min_age_s=min_age, progress=say)
    summary = report.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"compacted {summary['partitions_merged']:,} of {summary['partitions_seen']:,} "
              f"partitions: {summary['files_in']:,} files → {summary['files_out']:,}, "
              f"{summary['duplicates_dropped']:,} duplicates dropped, "
              f"{summary['bytes_in']:,} → {summary['bytes_out']:,} bytes; "
              f"{summary['files_left_young']:,} files younger than {min_age:g} s left")
        if report.unreadable:
            n = len(report.unreadable)
            print(f"{n:,} file{'' if n == 1 else 's'} could not be read, left as "
                  f"{'it is' if n == 1 else 'they are'}:")
            for path, why in report.unreadable:
                print(f"  {path}: {why}")
    return 0


def _fault_fields() -> list[dataclasses.Field]:
    """The Faults fields that have a command-line flag of the same name."""
    return [f for f in dataclasses.fields(Faults) if f.metadata.get("kind")]


def cmd_sim(args) -> int:
    faults = Faults(**{f.name: getattr(args, f.name) for f in _fault_fields()})
    sim = Simulator(args.venue, port=args.port, rate=args.rate or None, count=args.count,
                    seed=args.seed, overlap=args.overlap, faults=faults).start()
    rest = SimRest(sim).start() if args.venue in REST_VENUES else None
    try:
        with _sigterm_as_ctrl_c():  # before the line that says it is ready
            print(f"rtkit sim: {args.venue} on {sim.url} (Ctrl-C to stop)", flush=True)
            if rest is not None:  # its own line: the first one is read by scripts for the url
                print(f"REST API on {rest.url} (collect with --url {sim.url} "
                      f"--rest-url {rest.url})", flush=True)
            sim.run_for(args.duration)
    except KeyboardInterrupt:
        sim.stop()
    finally:
        if rest is not None:
            rest.stop()
    print(f"served {len(sim.trades):,} trades in {sim.frames_sent:,} frames "
          f"over {sim.connections} connection(s)")
    sent = ", ".join(f"{k} {v:,}" for k, v in sorted(sim.sent.items()))
    print(f"frames by category: {sent or 'none'}")
    return 0


def _ctrl_c(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigterm_as_ctrl_c():
    """SIGTERM (kill, a service manager, a test) ends the command as Ctrl-C does: with
    its summary. Main thread only, where signals arrive; the old handler comes back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _venue_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` from the command line: the value a JSON scalar when it reads as one
    (``true``, ``3``, ``0.5``, ``null``, ``"x"``), else the text as it is."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except ValueError:
        return key.strip(), value
    return key.strip(), parsed if not isinstance(parsed, (dict, list)) else value


def _fault_metavar(name: str) -> str:
    """The placeholder a fault flag's value gets in --help, from its field name."""
    if name.endswith("_per_s"):
        return "RATE"
    return "SECONDS" if name.endswith("_s") else "N"


def _plain(text: str | None) -> str:
    """A docstring as --help shows it: without reST's double backticks."""
    return (text or "").replace("``", "")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rtkit", description=_plain(__doc__))
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="simulator → collector → SQLite, then a summary")
    d.add_argument("--venue", default="binance", choices=dialect_names())
    d.add_argument("--duration", type=float, default=6.0, help="seconds to collect (default 6)")
    d.add_argument("--rate", type=float, default=2_000.0, help="trades/s the simulator sends")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--db", default=str(DEMO_DB), help="database file (default: %(default)s)")
    d.set_defaults(func=cmd_demo)

    c = sub.add_parser("collect", help="collect live trades until --duration, Ctrl-C or SIGTERM")
    c.add_argument("venue", choices=venue_names())
    c.add_argument("symbols", nargs="+", help="e.g. BTC-USDT ETH-USDT")
    c.add_argument("--db", default=str(DEFAULT_DB), help="database file (default: %(default)s)")
    c.add_argument("--url", help="endpoint instead of the venue's public one")
    c.add_argument("--rest-url", metavar="BASE",
                   help="REST base http(s)://host:port instead of the venue's (rtkit appends "
                        "the venue's paths; default: derived from --url when given)")
    c.add_argument("--duration", type=float, help="seconds (default: until stopped)")
    c.add_argument("--record", help="also write every raw frame to this .jsonl[.gz] file")
    c.add_argument("--flush-interval", type=float, default=1.0, help="seconds between flushes")
    c.add_argument("--kinds", nargs="+", default=["trades"], metavar="KIND",
                   help="kinds of record to collect (default: trades), e.g. trades,quotes,book")
    c.add_argument("--depth", type=int, help="order book depth, where the venue offers a choice")
    c.add_argument("--audit-every", type=float, default=60.0, metavar="SECONDS",
                   help="check an unverified order book against a REST snapshot this often "
                   "(default: 60; 0: never)")
    c.add_argument("--lake", help="also write the records as Parquet under this folder")
    c.add_argument("--name", help="the run's name in the database (default: VENUE:SYMBOLS)")
    c.add_argument("--redundancy", type=int, default=1, choices=(1, 2),
                   help="connections on the same streams, each trade kept once (default 1)")
    c.add_argument("--writer", choices=WRITERS, help="write SQLite in a thread of this process "
                   "(thread), in a process of its own (process), or in the thread until rows "
                   f"come faster than 50,000 a second (auto). Default: {DEFAULT_WRITER}")
    c.add_argument("--no-backfill", dest="backfill", action="store_false",
                   help="leave id gaps pending instead of filling them from the venue's REST "
                   "trade history")
    c.add_argument("--backfill-max", type=int, default=DEFAULT_BACKFILL_MAX, metavar="N",
                   help="trades one gap is filled with at most; a larger gap ends 'partial' "
                   f"(default {DEFAULT_BACKFILL_MAX:,})")
    c.add_argument("--rest-budget-share", type=float, default=BUDGET_SHARE, metavar="SHARE",
                   help="the share of the venue's published REST rate limit that book snapshots "
                   f"and backfill may use, 0 < SHARE <= {MAX_SHARE} (default {BUDGET_SHARE}: "
                   "half, leaving the rest to other programs on this IP)")
    c.add_argument("--option", action="append", type=_venue_option, default=[],
                   metavar="KEY=VALUE", help="a venue option (Collector's venue_options), "
                   "repeatable; the value is read as JSON when it is a number, true/false or null")
    c.add_argument("--json", action="store_true", help="last stdout line: the summary as JSON")
    c.set_defaults(func=cmd_collect)

    r = sub.add_parser("replay", help="push a raw-frame recording through the pipeline")
    r.add_argument("file")
    r.add_argument("--db", default=str(REPLAY_DB),
                   help="database file (default: %(default)s, its own file, not the one "
                        "rtkit collect fills)")
    r.add_argument("--lake", help="also write the records as Parquet under this folder")
    r.add_argument("--json", action="store_true", help="last stdout line: the summary as JSON")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a progress bar on stderr with rate and ETA (default: on a terminal)")
    r.add_argument("--kinds", nargs="+", default=None, metavar="KIND",
                   help="kinds of record to rebuild, e.g. trades,book (default: every kind "
                        "the venue offers, so whatever the recording carries)")
    r.set_defaults(func=cmd_replay)

    x = sub.add_parser("export", help="copy every record of an SQLite file into a Parquet lake")
    x.add_argument("db", help="the SQLite file (a collector's db=)")
    x.add_argument("--lake", required=True, help="the lake's folder (created if absent)")
    x.add_argument("--json", action="store_true", help="stdout: the rows per kind as JSON")
    x.set_defaults(func=cmd_export)

    m = sub.add_parser("import", help="a slice of a Parquet lake into an SQLite file")
    m.add_argument("lake", help="the lake's folder")
    m.add_argument("--db", default=str(DEFAULT_DB), help="database file (default: %(default)s)")
    m.add_argument("--kind", default="trades", help="kind of record (default: trades)")
    m.add_argument("--venue")
    m.add_argument("--symbol")
    m.add_argument("--start", help="first time (inclusive), e.g. '2026-11-24 10:00' (UTC)")
    m.add_argument("--end", help="end time (exclusive)")
    m.set_defaults(func=cmd_import)

    s = sub.add_parser("sim", help="run the local exchange simulator on 127.0.0.1")
    s.add_argument("venue", choices=dialect_names())
    s.add_argument("--port", type=int, default=0, help="default: any free port")
    s.add_argument("--rate", type=float, default=1_000.0,
                   help="trades/s (0: as fast as the socket takes them)")
    s.add_argument("--count", type=int, help="stop sending after this many trades")
    s.add_argument("--seed", type=int)
    s.add_argument("--overlap", type=int, default=100,
                   help="recent trades re-sent on each (re)subscribe (default 100)")
    s.add_argument("--duration", type=float, help="seconds to serve (default: until Ctrl-C)")
    injected = s.add_argument_group("faults", "misbehaviour to inject (rtkit.sim.Faults)")
    for f in _fault_fields():
        flag, kind, text = "--" + f.name.replace("_", "-"), f.metadata["kind"], f.metadata["help"]
        if kind is bool:
            injected.add_argument(flag, action="store_true", help=text)
        elif kind is tuple:
            injected.add_argument(flag, nargs="+", default=(), metavar="SYMBOL", help=text)
        else:
            injected.add_argument(flag, type=kind, default=f.default, help=text,
                                  metavar=_fault_metavar(f.name))
    s.set_defaults(func=cmd_sim)

    lake = sub.add_parser("lake", help="keep a Parquet lake (--lake) in shape")
    lake_sub = lake.add_subparsers(dest="lake_command", required=True)
    k = lake_sub.add_parser("compact", help="merge each partition's small files into one, "
                            "dropping duplicates; safe while collectors write and readers read")
    k.add_argument("root", help="the lake's folder")
    k.add_argument("--kind", help="only this kind of record (default: all)")
    k.add_argument("--min-age", type=float, metavar="SECONDS",
                   help="leave files younger than this (default: rtkit.lake.compact.MIN_AGE_S, "
                        "10)")
    k.add_argument("--json", action="store_true", help="print the summary as JSON")
    k.set_defaults(func=cmd_lake_compact)
    return p


#: keyword arguments the API's messages name, and the option that sets each on the command line
_KEYWORD_OPTIONS = {"db": "--db", "lake": "--lake", "record_raw": "--record", "url": "--url",
                   "rest_url": "--rest-url", "backfill_max": "--backfill-max",
                   "rest_budget_share": "--rest-budget-share",
                   "depth": "--depth", "audit_every_s": "--audit-every"}


def _as_cli_words(message: str) -> str:
    """An API error message with its keyword arguments (``db=``) named as CLI options."""
    for keyword, option in _KEYWORD_OPTIONS.items():
        message = re.sub(rf"(?<![\w.]){keyword}=(?=\s|$)", option, message)
    return message


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"rtkit {args.command}: {_as_cli_words(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
