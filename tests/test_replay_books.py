"""Replay rebuilds the books: a recording keeps the keeper's start and every REST
answer where the live keeper took it, so a replay into a fresh database makes the
same ``book_deltas``, ``book_events`` and ``quotes`` rows as the live run, with no
network and no wall clock; forged REST events are counted bad lines."""

from __future__ import annotations

import random
import sqlite3
import threading
import time

import orjson
import pytest

import rtkit
from rtkit import venues
from rtkit.books import BookMessage, rules
from rtkit.books.keeper import keeper_for
from rtkit.books.parse import binance as binance_parse
from rtkit.books.rules.binance import BinanceSpotRule
from rtkit.buffer import RingBuffer
from rtkit.cli import main
from rtkit.kinds import Rows
from rtkit.pipeline import Pipeline
from rtkit.recording import (
    MAX_RECORDED_LEVELS,
    BookPoll,
    BooksStart,
    RecordingWriter,
    RestEntry,
    encode_rest_answer,
    parse_line,
    read_recording,
)
from rtkit.replay import replay
from rtkit.sim import Faults, Simulator
from rtkit.store import TickStore
from rtkit.venues import Adapter
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")

#: every column of each table: none is wall-clock by nature (the books' start is recorded)
TABLES = {
    "book_deltas": "venue, symbol, timestamp, received_at, seq, is_snapshot, side, price, size",
    "book_events": "venue, symbol, at, from_state, to_state, reason, seq, not_live_s",
    "quotes": "venue, symbol, timestamp, received_at, bid_price, bid_size, ask_price, ask_size, "
              "seq",
}


def rows(db, table: str) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return sorted(con.execute(f"SELECT {TABLES[table]} FROM {table}").fetchall(),
                      key=repr)


def assert_same_books(live, replayed, tables=tuple(TABLES)) -> None:
    for table in tables:
        assert rows(replayed, table) == rows(live, table), table


def test_a_bybit_run_with_book_faults_replays_to_the_same_books(tmp_path):
    live, recording = tmp_path / "live.sqlite", tmp_path / "run.jsonl.gz"
    sim = Simulator("bybit", rate=200, count=300, book_rate=1_000.0, book_count=1_500, seed=5,
                    faults=Faults(book_drop_every=200, book_close_every=700))
    sim.start()
    c = rtkit.Collector("bybit", ["BTC-USDT", "ETH-USDT"], url=sim.url, db=live,
                        kinds=["trades", "quotes", "book"], record_raw=recording,
                        backoff_initial_s=0.05, flush_interval_s=0.2)
    try:
        c.start()
        wait_for(lambda: sim.books.messages >= 1_500 and c.stats["book_resyncs"] >= 2
                 and c.stats["stored"] >= 300, 60)
    finally:
        c.stop()
        sim.stop()
    s = c.stats
    assert s["book_desyncs"] >= 2 and c.reconnects >= 1  # faults were seen and healed
    summary = replay(recording, tmp_path / "replayed.sqlite")
    assert summary["bad_lines"] == 0 and summary["rows_not_collected"] == 0
    assert summary["book_deltas"] == s["book_deltas"] and summary["quotes"] == s["quotes"]
    assert_same_books(live, tmp_path / "replayed.sqlite")
    with sqlite3.connect(live) as con:
        events = con.execute("SELECT count(*) FROM book_events WHERE to_state = 'desynced'")
        assert events.fetchone()[0] == s["book_desyncs"]
    starts = [e for e in read_recording(recording) if type(e) is BooksStart]
    assert [(e.venue, e.symbols, e.max_levels) for e in starts] == [
        ("bybit", ("BTC-USDT", "ETH-USDT"), 50)]


def test_replay_kinds_narrow_what_is_rebuilt(tmp_path, capsys):
    live, recording = tmp_path / "live.sqlite", tmp_path / "run.jsonl"
    sim = Simulator("bybit", rate=200, count=50, book_rate=500.0, book_count=200, seed=6)
    sim.start()
    c = rtkit.Collector("bybit", ["BTC-USDT"], url=sim.url, db=live,
                        kinds=["trades", "quotes", "book"], record_raw=recording,
                        flush_interval_s=0.2)
    try:
        c.start()
        wait_for(lambda: c.stats["book_messages"] >= 200 and c.stats["stored"] >= 50, 30)
    finally:
        c.stop()
        sim.stop()
    only = tmp_path / "trades.sqlite"
    assert main(["replay", str(recording), "--db", str(only), "--kinds", "trades", "--json"]) == 0
    summary = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["stored"] == 50 and summary["rows_not_collected"] > 0
    with sqlite3.connect(only) as con:
        assert not con.execute("SELECT name FROM sqlite_master WHERE name = 'book_deltas'"
                               ).fetchall()
    books = tmp_path / "books.sqlite"
    assert main(["replay", str(recording), "--db", str(books), "--kinds", "trades,book"]) == 0
    said = capsys.readouterr().out
    assert "books: " in said and " events (0 desyncs, 0 resyncs); quotes 0" in said, said
    assert rows(books, "book_deltas") == rows(live, "book_deltas")
    assert rows(books, "book_events") == rows(live, "book_events")


# --- a venue whose books start from a REST snapshot -------------------------------------
SYMBOL, NATIVE = "BTC-USDT", "BTCUSDT"
T0 = 1_764_000_000_000_000_000


class RestBookAdapter(Adapter):
    """Binance spot's book messages (``rtkit.books.parse.binance``) kept by Binance's rule:
    a book that starts from a REST snapshot, on a venue of the test's own (no quotes
    channel: its quotes are derived from the book)."""

    name = "restbook"
    book_rule = "binance"
    kinds = ("trades", "quotes", "book")
    quotes_channel = False
    default_url = "ws://127.0.0.1:9"

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        return []

    def parse(self, frame, received_at_ns: int):
        parsed = binance_parse.parse(frame, received_at_ns)
        return Rows(book=parsed.book)


class RestVenue:
    """A venue's book that moves by diffs (``U``/``u``); ``fetch`` answers its snapshot
    from a worker thread, failing where asked."""

    def __init__(self, seed: int, fail: tuple[int, ...] = (), hold_from: int = 0) -> None:
        #: fetches from this one on wait for ``release`` (a run stopped while asking)
        self.hold_from, self.release = hold_from, threading.Event()
        self.rng = random.Random(seed)
        self.u = 1000
        self.bids = {f"{100 - i}.00": "1.0" for i in range(1, 6)}
        self.asks = {f"{100 + i}.00": "1.0" for i in range(1, 6)}
        self.lock = threading.Lock()
        self.fetches, self.fail = 0, fail
        self.ms = 0  # the venue's clock: the time of its latest diff

    def diff(self, ms: int) -> str:
        with self.lock:
            self.ms = ms
            first = self.u + 1
            self.u += self.rng.randint(1, 3)
            changed = {}
            for side, book, base, sign in (("b", self.bids, 100, -1), ("a", self.asks, 100, 1)):
                price = f"{base + sign * self.rng.randint(1, 8)}.00"
                size = "0" if self.rng.random() < 0.3 else f"{self.rng.randint(1, 9)}.5"
                if size == "0":
                    book.pop(price, None)
                else:
                    book[price] = size
                changed[side] = [[price, size]]
            return orjson.dumps({"e": "depthUpdate", "E": ms, "s": NATIVE, "U": first,
                                 "u": self.u, **changed}).decode()

    def fetch(self, symbol: str) -> BookMessage:
        with self.lock:
            self.fetches += 1
            held = self.hold_from and self.fetches >= self.hold_from
        if held:
            self.release.wait(10)
            raise ConnectionError("the run stopped")
        with self.lock:
            if self.fetches in self.fail:
                raise ConnectionError("venue said 503")
            body = {"lastUpdateId": self.u,
                    "bids": [list(x) for x in sorted(self.bids.items(),
                                                     key=lambda x: -float(x[0]))],
                    "asks": [list(x) for x in sorted(self.asks.items(),
                                                     key=lambda x: float(x[0]))]}
            at = self.ms * 1_000_000  # taken at the venue's time (an audit waits for it)
        return binance_parse.rest_snapshot(body, symbol, at)


class UnprovenBinanceRule(BinanceSpotRule):
    """Binance's rule without its proof: a lost diff goes unseen until an audit."""

    name = "unproven"
    verified = False

    def follows(self, msg, previous):
        return None

    def bridges(self, msg, snapshot):
        return None


class AuditedAdapter(RestBookAdapter):
    name = "restaudit"
    book_rule = "unproven"


def live_rest_run(tmp_path, venue: RestVenue, diffs: int, drop_every: int,
                  adapter: Adapter | None = None) -> tuple:
    """What a receive thread does, step by step: each read's frames recorded, fed, then the
    keeper polled (REST answers come back on its worker threads meanwhile), and now and
    then a poll between reads."""
    adapter = adapter or RestBookAdapter()
    adapter.configure(adapter.kinds, None)
    keeper = keeper_for(adapter, [SYMBOL], fetch=venue.fetch, audit_every_s=0.2)
    pipeline = Pipeline(adapter, RingBuffer(1_000), symbols=[SYMBOL], kinds=adapter.kinds,
                        books=keeper)
    path, db = tmp_path / "rest.jsonl", tmp_path / "live.sqlite"
    recorder = RecordingWriter(path)
    keeper.record_to(recorder)
    now = T0
    recorder.event("open", now, adapter.name, [SYMBOL])
    pipeline.connection_opened(now)
    sent = 0
    try:
        while sent < diffs or not venue.hold_from and (keeper._asked or keeper._retry):
            now += 5_000_000
            frames = []
            if sent < diffs:
                for _ in range(2):
                    frame = venue.diff(now // 1_000_000)
                    sent += 1
                    if sent % drop_every:
                        frames.append(frame)
            for frame in frames:
                recorder.frame(now, adapter.name, frame)
            if frames:
                pipeline.process_frames(frames, now)
            pipeline.book_tick(now)
            time.sleep(0.0005)  # the next read: an answer may come back meanwhile
            if sent % 7 == 0:  # the receive loop's quarter-second poll, between reads
                pipeline.book_tick(now + 1_000_000)
            assert now < T0 + 60 * 10**9, f"never settled: {keeper.last_fetch_error}"
    finally:
        keeper.close()
        venue.release.set()
        recorder.close()
    store = TickStore(db)
    batch = pipeline.take()
    pipeline.done(batch, store.write(*batch))
    store.close()
    return path, db, pipeline.stats()


@pytest.fixture
def restbook(monkeypatch):
    monkeypatch.setitem(venues._REGISTRY.entries(), RestBookAdapter.name, RestBookAdapter)
    monkeypatch.setitem(venues._REGISTRY.entries(), AuditedAdapter.name, AuditedAdapter)
    monkeypatch.setitem(rules._REGISTRY.entries(), "unproven", UnprovenBinanceRule)


@pytest.mark.usefixtures("restbook")
def test_a_rest_snapshot_venue_replays_to_the_same_books(tmp_path):
    venue = RestVenue(seed=3, fail=(2,))
    path, live, stats = live_rest_run(tmp_path, venue, diffs=1_200, drop_every=150)
    assert stats["book_desyncs"] >= 5 and stats["book_snapshot_failures"] == 1
    assert all(rows(live, table) for table in TABLES)
    entries = list(read_recording(path))
    answers = [e for e in entries if type(e) is RestEntry and not e.request]
    asked = [e for e in entries if type(e) is RestEntry and e.request]
    assert len(answers) == len(asked) == venue.fetches == stats["book_snapshot_requests"]
    assert sum(e.message is None for e in answers) == 1  # the failed one, with its error
    assert any(type(e) is BookPoll for e in entries)  # polls between reads are kept
    replayed = tmp_path / "replayed.sqlite"
    summary = replay(path, replayed)
    assert summary["bad_lines"] == 0 and summary["book_desyncs"] == stats["book_desyncs"]
    assert summary["book_snapshot_failures"] == 1
    # the replayed keeper asked what the live one asked, when it did (retries by the clock)
    assert summary["book_snapshot_requests"] == stats["book_snapshot_requests"]
    assert_same_books(live, replayed)


@pytest.mark.usefixtures("restbook")
def test_a_run_stopped_while_a_snapshot_was_asked_replays_to_the_same_books(tmp_path):
    venue = RestVenue(seed=9, hold_from=3)  # the 3rd request never comes back
    path, live, stats = live_rest_run(tmp_path, venue, diffs=600, drop_every=150)
    assert stats["book_snapshot_requests"] == 3 and stats["book_desyncs"] >= 2
    replayed = tmp_path / "replayed.sqlite"
    summary = replay(path, replayed)
    assert summary["book_snapshot_requests"] == 3
    assert_same_books(live, replayed)  # no "holds no answer" row: the live run waited too


@pytest.mark.usefixtures("restbook")
def test_audited_books_replay_to_the_same_audits(tmp_path):
    """A venue without proof: lost diffs are caught by audits asked by the clock (every
    0.2 s of the run's time), each compared where the live keeper compared it."""
    venue = RestVenue(seed=8)
    path, live, stats = live_rest_run(tmp_path, venue, diffs=1_600, drop_every=90,
                                      adapter=AuditedAdapter())
    with sqlite3.connect(live) as con:
        audits = con.execute("SELECT count(*) FROM book_events WHERE reason LIKE 'audit:%'"
                             ).fetchone()[0]
    assert audits >= 2 and stats["book_desyncs"] == audits
    asked = [e for e in read_recording(path) if type(e) is RestEntry and e.request]
    assert {e.purpose for e in asked} == {"resync", "audit"}
    replayed = tmp_path / "replayed.sqlite"
    summary = replay(path, replayed)
    assert summary["bad_lines"] == 0 and summary["book_desyncs"] == audits
    assert summary["book_snapshot_requests"] == stats["book_snapshot_requests"]
    assert_same_books(live, replayed)


@pytest.mark.usefixtures("restbook")
def test_a_snapshot_the_recording_cannot_answer_is_a_book_event(tmp_path):
    path, live, _ = live_rest_run(tmp_path, RestVenue(seed=4), diffs=100, drop_every=1_000)
    old = tmp_path / "old.jsonl"  # as recorded before REST answers were kept
    old.write_bytes(b"".join(line for line in path.read_bytes().splitlines(keepends=True)
                             if b'"rest_' not in line))
    replayed = tmp_path / "replayed.sqlite"
    summary = replay(old, replayed)
    assert summary["book_deltas"] == 0 and summary["bad_lines"] == 0
    [event] = [e for e in rows(replayed, "book_events") if "no answer" in e[5]]
    assert event[3:5] == ("buffering", "buffering") and event[2] == T0 + 5_000_000
    assert "the recording holds no answer to the resync snapshot" in event[5]
    assert rows(live, "book_deltas")  # the live run had its book


def test_rest_answers_round_trip_through_the_recording_exactly():
    odd = BookMessage(SYMBOL, 5, 6, True, [("1.5", "2"), (" 1.4", "3,0")], [], seq=-1,
                      first_seq=2**63 - 1, prev_seq=None, checksum=-2**31, source="rest")
    plain = BookMessage(SYMBOL, 5, 6, False, [("1.5", "2")], [("1.6", "0.001"), ("1.7", "4")],
                        seq=9, source="rest")
    for msg in (odd, plain):
        line = encode_rest_answer(7, "binance", SYMBOL, "resync", msg)
        assert parse_line(line) == RestEntry(7, "binance", SYMBOL, "resync", message=msg)
    assert b'"asks":"1.6 0.001,1.7 4"' in encode_rest_answer(7, "binance", SYMBOL, "audit", plain)
    failed = encode_rest_answer(7, "binance", SYMBOL, "audit", None, "x" * 5_000)
    entry = parse_line(failed)
    assert entry.purpose == "audit" and entry.message is None and len(entry.error) == 1_000


def test_forged_book_events_are_counted_bad_lines_never_an_exception(tmp_path):
    good = {"timestamp": 1, "received_at": 2, "is_snapshot": True, "bids": "1 1",
            "asks": "2 1", "seq": 3, "first_seq": None, "prev_seq": None, "checksum": None}

    def answer(**changes):
        line = {"event": "rest_snapshot", "received_at": 5, "venue": "bybit",
                "symbol": "BTC-USDT", "purpose": "snapshot", "message": good}
        line.update(changes)
        return line

    many = ",".join(["1 1"] * (MAX_RECORDED_LEVELS + 1))
    forged = [
        answer(message={**good, "bids": many}),  # more levels than a recording may carry
        answer(message={**good, "asks": [["2", "1"]] * (MAX_RECORDED_LEVELS + 1)}),
        answer(message={**good, "bids": "1 " + "9" * 65}),  # a size of 65 characters
        answer(message={**good, "bids": "1 1 1"}),
        answer(message={**good, "bids": [["1", 1]]}),
        answer(message={**good, "seq": 2**64 - 1}),  # made 2e30 in the file
        answer(message={**good, "seq": "3"}),
        answer(message={**good, "checksum": 1.5}),
        answer(message={**good, "is_snapshot": 1}),
        answer(message={**good, "timestamp": -1}),
        answer(message="1 1"),
        answer(purpose="resync"),
        answer(symbol="X" * 33),
        answer(symbol=None),
        answer(error="503"),  # an error beside a message
        {"event": "rest_snapshot", "received_at": 5, "venue": "bybit", "symbol": "BTC-USDT",
         "purpose": "audit", "error": "e" * 1_001},
        answer(symbol="DOGE-USDT"),  # a book the run did not keep
        {"event": "rest_request", "received_at": 5, "venue": "bybit", "symbol": "BTC-USDT",
         "purpose": 1},
        {"event": "books", "received_at": 1, "venue": "bybit", "symbols": ["A-B"] * 10_001,
         "max_levels": 50, "derive_quotes": False, "audit_every_ns": 0},
        {"event": "books", "received_at": 1, "venue": "bybit", "symbols": ["A-B"],
         "max_levels": -50, "derive_quotes": False, "audit_every_ns": 0},
        {"event": "books", "received_at": 1, "venue": "bybit", "symbols": ["A-B"],
         "max_levels": 50, "derive_quotes": "no", "audit_every_ns": 0},
        {"event": "books", "received_at": 1, "venue": "bybit", "symbols": "A-B",
         "max_levels": 50, "derive_quotes": False, "audit_every_ns": 0},
        {"event": "books", "received_at": 1, "venue": "bybit", "symbols": ["A-B"],
         "max_levels": 50, "derive_quotes": False, "audit_every_ns": 0, "rest": "yes"},
        {"event": "book_poll", "received_at": -1, "venue": "bybit"},
    ]
    lines = [{"event": "books", "received_at": 1, "venue": "bybit", "symbols": ["BTC-USDT"],
              "max_levels": 50, "derive_quotes": False, "audit_every_ns": 0},
             {"event": "open", "received_at": 2, "venue": "bybit", "symbols": ["BTC-USDT"]},
             *forged, answer()]  # the last one is well formed: a Bybit book takes none
    recording = tmp_path / "forged.jsonl"
    text = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    recording.write_bytes(text.replace(b'"seq":18446744073709551615', b'"seq":2' + b"0" * 30))
    summary = replay(recording, tmp_path / "replay.sqlite")
    assert summary["bad_lines"] == len(forged)
    assert summary["rejected_by_reason"] == {"bad_recording_line": len(forged)}
    assert summary["book_deltas"] == 0


def test_two_runs_in_one_recording_each_start_their_books(tmp_path):
    """A second run appended to the recording made new books: the replay makes them anew
    at the second ``books`` event, as the live run did."""
    live, recording = tmp_path / "live.sqlite", tmp_path / "runs.jsonl"
    for seed in (12, 13):
        sim = Simulator("bybit", rate=100, count=20, book_rate=500.0, book_count=300, seed=seed,
                        faults=Faults(book_drop_every=120))
        sim.start()
        c = rtkit.Collector("bybit", ["BTC-USDT"], url=sim.url, db=live, kinds=["book"],
                            record_raw=recording, flush_interval_s=0.2)
        try:
            c.start()
            wait_for(lambda c=c: c.stats["book_messages"] >= 300 and c.stats["book_resyncs"]
                     >= 1, 30)
        finally:
            c.stop()
            sim.stop()
    starts = [e for e in read_recording(recording) if type(e) is BooksStart]
    assert len(starts) == 2
    replayed = tmp_path / "replayed.sqlite"
    replay(recording, replayed, kinds=["book"])
    assert_same_books(live, replayed, ("book_deltas", "book_events"))
    with sqlite3.connect(replayed) as con:  # each run's book started from subscribing
        firsts = con.execute("SELECT count(*) FROM book_events WHERE from_state = "
                             "'subscribing'").fetchone()[0]
    assert firsts == 2
