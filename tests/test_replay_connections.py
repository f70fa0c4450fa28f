"""A recording says which connection each frame came on, and when each connection
opened and closed: a replay of a ``redundancy=2`` run, or of a run across
make-before-break handovers, feeds each book and each symbol's quotes from one
connection and moves them where the live run did, so it rebuilds the same
``book_deltas``, ``book_events``, ``quotes``, ``ticks`` and ``gaps``, column by column.
A forged connection number is a counted bad line; a recording without numbers replays
as one stream, as before."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3

import pytest

from rtkit.recording import (
    MAX_CONNECTION_NUMBER,
    Event,
    Frame,
    RecordingWriter,
    encode_event,
    encode_frame,
    parse_line,
    read_recording,
)
from rtkit.replay import replay
from rtkit.replay_connections import MAX_OPEN_CONNECTIONS
from rtkit.sim import Faults
from tests.conftest import wait_for
from tests.test_make_before_break import CASES as HANDOVER_CASES
from tests.test_recording_hardening import T0, good_lines, reject_rows, stored
from tests.test_redundancy_books import Run
from tests.test_replay_books import TABLES

pytestmark = pytest.mark.usefixtures("no_thread_leak")

#: every column of each table compared (``book_*`` and ``quotes`` as the book replay
#: tests compare them; a trade's and a gap's row whole)
COLUMNS = {**TABLES, "ticks": "*", "gaps": "*"}


def table(db, name: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return sorted(con.execute(f"SELECT {COLUMNS[name]} FROM {name}").fetchall(), key=repr)


def assert_replays_alike(live, recording, tmp_path) -> dict:
    replayed = tmp_path / "replayed.sqlite"
    summary = replay(recording, replayed)
    assert summary["bad_lines"] == 0
    for name in COLUMNS:
        assert table(replayed, name) == table(live, name), name
    return summary


def cut_the_source_of_the_first_book(run: Run) -> None:
    """Once both connections bring the books and every book is good: the connection
    that feeds the first symbol's book is cut (lost: its books move to the other)."""
    c = run.c
    wait_for(lambda: c.stats["book_ignored"] > 200 and c.stats["books_good"] == 2, 20)
    number = c.pipeline.books.sources.of[run.symbols[0]]
    c.receiver._sockets[number - 1].sock.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize("venue", ["bybit", "binance", "kraken", "coinbase"])
def test_a_redundant_run_whose_source_is_cut_replays_to_the_same_rows(venue, tmp_path):
    """Bybit (snapshot on the socket), Binance (REST snapshots, recorded), Kraken
    (checksums) and Coinbase (each connection numbers its frames): two connections, one
    cut mid-run and replaced by a third."""
    live, recording = tmp_path / "live.sqlite", tmp_path / "run.jsonl.gz"
    run = Run(venue, live, Faults(), kinds=("trades", "quotes", "book"),
              record_raw=recording)
    s = run.to_the_end(lambda: cut_the_source_of_the_first_book(run))
    assert s["connections"] >= 3 and s["book_source_switches"] >= 1
    assert s["book_ignored"] > 0 and s["quotes_ignored"] > 0  # both streams came
    summary = assert_replays_alike(live, recording, tmp_path)
    assert summary["book_source_switches"] == s["book_source_switches"]
    assert summary["connections"] == s["connections"]


@pytest.mark.parametrize("venue", ["binance", "okx"])
def test_a_run_across_handovers_replays_to_the_same_rows(venue, tmp_path):
    """The venue ends each connection every second (Binance by its lifetime, OKX with a
    notice): in each overlap the new connection's copies are left out, and at the old
    one's close the books move to the new one, in the replay as live."""
    faults, options = HANDOVER_CASES[venue]
    live, recording = tmp_path / "live.sqlite", tmp_path / "run.jsonl.gz"
    run = Run(venue, live, faults, redundancy=1, kinds=("trades", "quotes", "book"),
              record_raw=recording, **options)
    s = run.to_the_end()
    assert s["handovers"] >= 2 and s["book_source_switches"] >= 2
    assert_replays_alike(live, recording, tmp_path)


# --- the format -------------------------------------------------------------------------

def test_frames_name_their_connection_only_while_two_are_open(tmp_path):
    path = tmp_path / "run.jsonl"
    w = RecordingWriter(path)
    w.event("open", T0, "bybit", ["BTC-USDT"], 1)
    w.frame(T0 + 1, "bybit", "{}", False, 1)
    w.event("open", T0 + 2, "bybit", ["BTC-USDT"], 2)
    w.frame(T0 + 3, "bybit", "{}", False, 2)
    w.frame(T0 + 4, "bybit", b"\xff", True, 1)
    w.event("close", T0 + 5, "bybit", (), 1, True)
    w.frame(T0 + 6, "bybit", "{}", False, 2)
    w.event("close", T0 + 7, "bybit", (), 2, False, True)
    w.close()
    lines = path.read_bytes().splitlines()
    assert lines[1] == b'{"received_at":%d,"venue":"bybit","frame":"{}"}' % (T0 + 1)
    assert lines[3].endswith(b',"conn":2}') and lines[4].endswith(b',"conn":1}')
    assert b"conn" not in lines[6]
    assert list(read_recording(path)) == [
        Event("open", T0, "bybit", ("BTC-USDT",), connection=1), Frame(T0 + 1, "bybit", "{}"),
        Event("open", T0 + 2, "bybit", ("BTC-USDT",), connection=2),
        Frame(T0 + 3, "bybit", "{}", connection=2),
        Frame(T0 + 4, "bybit", b"\xff", True, connection=1),
        Event("close", T0 + 5, "bybit", connection=1, handover=True),
        Frame(T0 + 6, "bybit", "{}"),
        Event("close", T0 + 7, "bybit", connection=2, stopping=True)]


def test_a_single_connection_run_records_no_connection_on_its_frames(tmp_path):
    """The overhead of a run on one connection: none on a frame (its open and close
    events say ``"conn":1``, a few bytes per connection)."""
    path = tmp_path / "run.jsonl"
    w = RecordingWriter(path)
    w.event("open", T0, "bybit", ["BTC-USDT"], 1)
    for i in range(100):
        w.frame(T0 + i, "bybit", '{"a":1}', False, 1)
    w.close()
    frames = path.read_bytes().splitlines()[1:]
    assert b"".join(frames) == b"".join(encode_frame(T0 + i, "bybit", '{"a":1}').strip()
                                        for i in range(100))


CONN_LINES = {
    "conn as text": {"received_at": T0, "venue": "binance", "frame": "{}", "conn": "1"},
    "conn zero": {"received_at": T0, "venue": "binance", "frame": "{}", "conn": 0},
    "conn negative": {"received_at": T0, "venue": "binance", "frame": "{}", "conn": -1},
    "conn a float": {"received_at": T0, "venue": "binance", "frame": "{}", "conn": 1.0},
    "conn oversized": {"received_at": T0, "venue": "binance", "frame": "{}",
                       "conn": MAX_CONNECTION_NUMBER + 1},
    "conn far oversized": {"received_at": T0, "venue": "binance", "frame": "{}",
                           "conn": 10**40},
    "conn a list": {"received_at": T0, "venue": "binance", "frame_b64": "eyJ9",
                    "conn": [1] * 1000},
    "close's handover not a bool": {"event": "close", "received_at": T0, "venue": "binance",
                                    "conn": 1, "handover": 1},
    "an open that stops": {"event": "open", "received_at": T0, "venue": "binance",
                           "conn": 1, "stopping": True},
}


@pytest.mark.parametrize("bad", CONN_LINES.values(), ids=CONN_LINES.keys())
def test_a_forged_connection_field_is_a_counted_bad_line(tmp_path, db, bad):
    lines = good_lines(tmp_path)
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"".join(lines[:500]) + json.dumps(bad).encode() + b"\n"
                     + b"".join(lines[500:]))
    with pytest.raises(ValueError):
        parse_line(json.dumps(bad).encode())
    s = replay(path, db=db)
    assert s["stored"] == 1_000 and stored(db) == 1_000
    assert s["rejected_by_reason"] == {"bad_recording_line": 1} and s["bad_lines"] == 1
    [(reason, detail, _)] = reject_rows(db)
    assert reason == "bad_recording_line" and detail.startswith("line 501: ")


def test_a_frame_of_a_connection_never_opened_is_a_counted_bad_line(tmp_path, db):
    lines = good_lines(tmp_path)  # an 'open' first: give it a number
    opened = json.loads(lines[0])
    assert opened["event"] == "open"
    venue = opened["venue"]
    forged = encode_frame(T0, venue, "{}", connection=7)  # fed, it would be another reject
    numbered = encode_event("open", opened["received_at"], venue, opened.get("symbols", ()),
                            connection=1)
    path = tmp_path / "forged.jsonl"
    path.write_bytes(numbered + b"".join(lines[1:500]) + forged + b"".join(lines[500:]))
    s = replay(path, db=db)
    assert s["stored"] == 1_000
    assert s["rejected_by_reason"] == {"bad_recording_line": 1}
    [(reason, detail, _)] = reject_rows(db)
    assert reason == "bad_recording_line" and "connection 7" in detail


def test_opens_that_never_close_are_followed_at_most_a_few_at_a_time(tmp_path, db):
    """A forged file opening connection after connection: the replay follows at most
    MAX_OPEN_CONNECTIONS (the oldest is taken as closed, a counted bad line)."""
    path = tmp_path / "opens.jsonl"
    opens = 3 * MAX_OPEN_CONNECTIONS
    path.write_bytes(b"".join(encode_event("open", T0 + n, "bybit", ["BTC-USDT"], n)
                              + encode_frame(T0 + n, "bybit", "{}", connection=n)
                              for n in range(1, opens + 1)))
    s = replay(path, db=db)
    assert s["connections"] == opens
    assert s["rejected_by_reason"].get("bad_recording_line") == opens - MAX_OPEN_CONNECTIONS
