"""A recording is untrusted input: bad lines, over-long lines, damaged gzip streams
and hostile values are counted or stated in one line, never a traceback, and
whatever came before a problem is kept. Writing one never glues a run onto a
damaged file or onto a file that is not a recording."""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import sqlite3
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from rtkit.cli import main
from rtkit.collector import Collector
from rtkit.pipeline import MAX_SYMBOLS
from rtkit.recording import (
    RecordingWriter,
    encode_event,
    encode_frame,
    parse_line,
    read_recording,
)
from rtkit.replay import Replay, replay
from rtkit.sim.dialects import get_dialect
from rtkit.sim.market import Market
from rtkit.sim.record import write_recording
from rtkit.store import TickStore
from rtkit.validate import MAX_SYMBOL_CHARS

T0 = 1_764_000_000_000_000_000

ROOT = Path(__file__).resolve().parents[1]  # the RSS scripts import tests.conftest


def good_lines(tmp_path, trades: int = 1_000) -> list[bytes]:
    """The lines of a clean recording of ``trades`` trades (an open event first)."""
    src = tmp_path / "good.jsonl"
    write_recording(src, trades=trades, seed=5)
    return src.read_bytes().splitlines(keepends=True)


def stored(db) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT count(*) FROM ticks").fetchone()[0]


def reject_rows(db) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT reason, detail, frame_bytes FROM rejects").fetchall()


def cli(argv, capsys) -> tuple[int, str, str]:
    """``rtkit …`` in-process: an exception escaping main() fails the test (a traceback)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# --- item 1: every field of a line is checked; a bad line is a counted reject ----------

BAD_LINES = {
    "size beyond int64": {"received_at": T0, "venue": "binance",
                          "too_large": 9_223_372_036_854_775_808, "frame_b64": "eyJ9"},
    "negative size": {"received_at": T0, "venue": "binance", "too_large": -5,
                      "frame_b64": "eyJ9"},
    "time beyond int64": {"received_at": 2**63, "venue": "binance", "frame": "{}"},
    "negative time": {"received_at": -1, "venue": "binance", "frame": "{}"},
    "time as text": {"received_at": "1764000000", "venue": "binance", "frame": "{}"},
    "time as float": {"received_at": 1.5e18, "venue": "binance", "frame": "{}"},
    "venue a list": {"received_at": T0, "venue": ["binance"], "frame": "{}"},
    "venue a number": {"received_at": T0, "venue": 7, "frame": "{}"},
    "venue far too long": {"received_at": T0, "venue": "b" * 10_000, "frame": "{}"},
    "frame a number": {"received_at": T0, "venue": "binance", "frame": 12},
    "no frame": {"received_at": T0, "venue": "binance"},
    "frame_b64 not base64": {"received_at": T0, "venue": "binance", "frame_b64": "**"},
    "binary not a bool": {"received_at": T0, "venue": "binance", "frame_b64": "eyJ9",
                          "binary": "yes"},
    "unknown event": {"event": "reopen", "received_at": T0, "venue": "binance"},
    "symbols a string": {"event": "open", "received_at": T0, "venue": "binance",
                         "symbols": "BTCUSDT"},
    "a JSON list": [1, 2, 3],
}


@pytest.mark.parametrize("bad", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_hostile_line_is_a_counted_reject_and_the_rest_is_stored(tmp_path, db, bad):
    lines = good_lines(tmp_path)
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"".join(lines[:500]) + json.dumps(bad).encode() + b"\n"
                     + b"".join(lines[500:]))
    s = replay(path, db=db)
    assert s["stored"] == 1_000 and stored(db) == 1_000
    assert s["rejected_by_reason"] == {"bad_recording_line": 1} and s["bad_lines"] == 1
    assert s["frames"] == len(lines) - 2  # the bad line is no frame: the accounting holds
    assert s["frames"] == s["tick_frames"] + s["control"] + s["rejected_frames"]
    [(reason, detail, size)] = reject_rows(db)
    assert reason == "bad_recording_line" and detail.startswith("line 501: ")
    assert size == len(json.dumps(bad)) + 1


def test_symbols_as_a_string_do_not_subscribe_characters(tmp_path, db):
    path = tmp_path / "r.jsonl"
    path.write_bytes(json.dumps({"event": "open", "received_at": T0, "venue": "binance",
                                 "symbols": ["BTC-USDT"]}).encode() + b"\n"
                     + json.dumps(BAD_LINES["symbols a string"]).encode() + b"\n")
    entries = list(read_recording(path))
    assert entries[0].symbols == ("BTC-USDT",)
    assert type(entries[1]).__name__ == "BadLine" and "'symbols'" in entries[1].detail


# --- item 19: the CLI says one line or counts a reject, and keeps what came before ------

def test_cli_replay_of_an_empty_file(tmp_path, db, capsys):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    code, out, err = cli(["replay", path, "--db", db, "--json"], capsys)
    assert code == 0
    summary = json.loads(out.splitlines()[-1])
    assert summary["frames"] == summary["stored"] == summary["rejected"] == 0
    assert "holds no lines" in err and len(err.strip().splitlines()) == 1
    code, out, _ = cli(["replay", path, "--db", db], capsys)
    assert code == 0 and out.startswith("frames 0")


def test_cli_replay_of_a_gz_that_is_not_gzip(tmp_path, db, capsys):
    path = tmp_path / "fake.jsonl.gz"
    path.write_bytes(encode_event("open", T0, "binance") + encode_frame(T0, "binance", "{}"))
    code, out, err = cli(["replay", path, "--db", db], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "is not a gzip file" in err


def test_cli_replay_of_a_file_that_is_no_recording(tmp_path, db, capsys):
    path = tmp_path / "prices.jsonl"
    path.write_bytes(b"symbol,price\nBTC-USDT,1\n" * 1000)
    code, _, err = cli(["replay", path, "--db", db], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "is not an rtkit recording: its first line is not one (line 1: not JSON" in err
    assert not reject_rows(db)  # not a thousand rejects for a file that is something else


@pytest.mark.parametrize("bad", [
    {"received_at": T0, "venue": ["binance"], "frame": "{}"},
    {"received_at": 10**30, "venue": "binance", "frame": "{}"},
    {"event": "open", "received_at": T0, "venue": "binance", "symbols": "BTCUSDT"},
], ids=["venue a list", "received_at 10**30", "symbols a string"])
def test_cli_replay_counts_a_hostile_line(tmp_path, db, capsys, bad):
    lines = good_lines(tmp_path, 200)
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"".join(lines[:100]) + json.dumps(bad).encode() + b"\n"
                     + b"".join(lines[100:]))
    code, out, _ = cli(["replay", path, "--db", db, "--json"], capsys)
    summary = json.loads(out.splitlines()[-1])
    assert code == 0 and summary["stored"] == 200 == stored(db)
    assert summary["rejected_by_reason"] == {"bad_recording_line": 1}


def test_an_error_half_way_keeps_what_was_replayed_before_it(tmp_path, db, capsys):
    lines = good_lines(tmp_path, 300)  # one trade per frame
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"".join(lines[:201]) + encode_frame(T0, "nasdaq", "{}")
                     + b"".join(lines[201:]))
    code, out, err = cli(["replay", path, "--db", db], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "unknown venue 'nasdaq'" in err
    assert stored(db) == 200  # every tick before the bad venue is in SQLite


# --- item 2: a damaged gzip stream replays up to the damage --------------------------

def crashed_gzip_member(lines: list[bytes]) -> bytes:
    """What a run killed mid-way leaves: a gzip member, flushed line by line, no trailer."""
    out = bytearray(gzip.compress(b"")[:10])  # the member header
    deflate = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    for line in lines:
        out += deflate.compress(line) + deflate.flush(zlib.Z_SYNC_FLUSH)
    return bytes(out)


def test_a_gzip_member_without_trailer_then_another_replays_up_to_the_damage(
        tmp_path, db, caplog):
    first, second = good_lines(tmp_path, 400), good_lines(tmp_path, 100)
    path = tmp_path / "restarted.jsonl.gz"
    path.write_bytes(crashed_gzip_member(first[:301]) + gzip.compress(b"".join(second)))
    with pytest.raises(zlib.error):  # what the old reader died of
        gzip.decompress(path.read_bytes())
    s = replay(path, db=db)
    assert s["stored"] == 300 == stored(db)  # every line before the damage
    assert "cut short or damaged after 301 lines" in caplog.text


def test_a_gzip_cut_mid_stream_replays_up_to_the_cut(tmp_path, db, capsys):
    lines = good_lines(tmp_path, 400)
    whole = crashed_gzip_member(lines[:301])
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole + b"\x00garbage after the sync flush")
    code, out, err = cli(["replay", path, "--db", db, "--json"], capsys)
    assert code == 0 and json.loads(out.splitlines()[-1])["stored"] == 300 == stored(db)
    assert "cut short or damaged" in err


# --- items 2 and 21: writing never glues onto a damaged file or a stranger's file -----

def test_a_recording_that_does_not_end_cleanly_is_left_alone(tmp_path, caplog):
    lines = good_lines(tmp_path, 50)
    path = tmp_path / "run.jsonl.gz"
    path.write_bytes(crashed_gzip_member(lines))
    before = path.read_bytes()
    w = RecordingWriter(path)
    w.event("open", T0, "binance")
    w.close()
    assert path.read_bytes() == before
    assert w.path == tmp_path / "run.1.jsonl.gz"
    assert "does not end cleanly" in caplog.text and "run.1.jsonl.gz" in caplog.text
    assert [e.event for e in read_recording(w.path)] == ["open"]
    # a plain recording whose last line was cut by a crash goes beside it as well
    plain = tmp_path / "run.jsonl"
    plain.write_bytes(b"".join(lines) + b'{"received_at": 1, "ven')
    w = RecordingWriter(plain)
    w.close()
    assert w.path == tmp_path / "run.1.jsonl"


def test_a_run_killed_before_its_first_line(tmp_path, db, caplog):
    path = tmp_path / "run.jsonl.gz"
    path.write_bytes(crashed_gzip_member([]))  # a gzip header, and nothing after it
    assert replay(path, db=db)["frames"] == 0
    assert "cut short or damaged after 0 lines" in caplog.text
    w = RecordingWriter(path)
    w.close()
    assert w.path == tmp_path / "run.1.jsonl.gz"  # not refused: a new file beside it


def test_a_clean_recording_is_appended_to(tmp_path, db):
    path = tmp_path / "run.jsonl.gz"
    first = write_recording(path, trades=100, seed=5)
    w = RecordingWriter(path)
    dialect, market = get_dialect("binance"), Market(9)
    later = dialect.encode([market.trade("BTC-USDT", T0 + 10**12 + i) for i in range(10)])
    w.event("open", T0 + 10**12, "binance")
    for i, frame in enumerate(later):
        w.frame(T0 + 10**12 + i, "binance", frame)
    w.close()
    assert w.path == path
    s = replay(path, db=db)  # both runs, one after the other
    assert s["frames"] == first["frames"] + len(later) and s["connections"] == 2


def test_a_file_that_is_no_recording_is_refused_and_untouched(tmp_path, db):
    notes = tmp_path / "notes.txt"
    notes.write_text("my research notes\n")
    with pytest.raises(ValueError, match="exists and is not an rtkit recording"):
        Collector("binance", ["BTC-USDT"], db=db, record_raw=notes)
    assert notes.read_text() == "my research notes\n"


# --- item 20: a recording path that cannot be written fails at construction ----------

def test_an_unwritable_recording_path_fails_at_construction(tmp_path, db, capsys):
    a_file = tmp_path / "somefile"
    a_file.write_text("")
    with pytest.raises(ValueError, match="cannot write the recording"):
        Collector("binance", ["BTC-USDT"], db=db, record_raw=a_file / "x.jsonl")
    code, _, err = cli(["collect", "binance", "BTC-USDT", "--db", db, "--url",
                        "ws://127.0.0.1:9/ws", "--duration", "5",
                        "--record", a_file / "x.jsonl"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "cannot write the recording" in err and "somefile/x.jsonl" in err


# --- item 9: a line is read with a bound; an over-long one is a counted frame_too_large --

def write_with_a_long_line(path, lines: list[bytes], at: int, frame_bytes: int) -> None:
    """A gzip recording with, before ``lines[at]``, one frame line of ``frame_bytes``
    (written a MiB at a time, so this process never holds it)."""
    chunk = b"x" * (1024 * 1024)
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.writelines(lines[:at])
        fh.write(b'{"received_at": %d, "venue": "binance", "frame": "' % (T0 + 1))
        for _ in range(frame_bytes // len(chunk)):
            fh.write(chunk)
        fh.write(b'"}\n')
        fh.writelines(lines[at:])


def test_an_over_long_line_is_a_counted_frame_too_large(tmp_path, db):
    from rtkit.recording import max_line_bytes

    lines = good_lines(tmp_path, 300)
    path = tmp_path / "long.jsonl.gz"
    write_with_a_long_line(path, lines, 150, 3 * 1024 * 1024)
    assert max_line_bytes(100_000) < 3 * 1024 * 1024
    s = replay(path, db=db, max_frame_bytes=100_000)
    assert s["stored"] == 300 == stored(db)
    assert s["rejected_by_reason"] == {"frame_too_large": 1}
    assert s["frames"] == len(lines) - 1  # the venue in its head makes it a frame, refused
    [(reason, detail, size)] = reject_rows(db)
    wrapper = len(b'{"received_at": %d, "venue": "binance", "frame": ""}\n' % (T0 + 1))
    assert reason == "frame_too_large" and size == 3 * 1024 * 1024 + wrapper


RSS_SCRIPT = """
import json, sys
from tests.conftest import peak_rss_kib
from rtkit.replay import replay
replay(sys.argv[1], db=sys.argv[3])
before = peak_rss_kib()
s = replay(sys.argv[2], db=sys.argv[4])
print(json.dumps({"before_kib": before, "after_kib": peak_rss_kib(), **s}))
"""


def replay_growth(small, attack, tmp_path, what: str) -> tuple[float, dict]:
    """Peak RSS growth (MiB) of a child replaying ``attack`` over its own peak after
    replaying ``small``, and the attack's summary; the figure is printed for -s runs."""
    out = subprocess.run([sys.executable, "-c", RSS_SCRIPT, small, attack,
                          tmp_path / "a.sqlite", tmp_path / "b.sqlite"],
                         capture_output=True, text=True, timeout=120, check=True, cwd=ROOT)
    s = json.loads(out.stdout.splitlines()[-1])
    before, after = s["before_kib"] / 1024, s["after_kib"] / 1024
    print(f"peak RSS {before:.0f} MiB → {after:.0f} MiB (+{after - before:.0f} MiB) for {what}")
    return after - before, s


def test_a_200_mb_line_costs_a_bounded_memory(tmp_path):
    """Peak RSS of a child replaying a ~200 KB .gz holding one 200 MB line, over
    the same child's peak after replaying a small recording."""
    lines = good_lines(tmp_path, 2_000)
    small, attack = tmp_path / "small.jsonl.gz", tmp_path / "attack.jsonl.gz"
    with gzip.open(small, "wb") as fh:
        fh.writelines(lines)
    write_with_a_long_line(attack, lines, 1_000, 200 * 1024 * 1024)
    assert attack.stat().st_size < 2 * 1024 * 1024
    grew_mib, s = replay_growth(small, attack, tmp_path, "a 200 MiB line")
    n_stored = s["stored"]
    too_large = s["rejected_by_reason"].get("frame_too_large", 0)
    assert (n_stored, too_large) == (2_000, 1)
    assert grew_mib < 100


def test_a_binary_frame_given_as_text_is_recorded_as_its_utf8_bytes(tmp_path):
    """encode_frame(..., binary=True) took ``bytes | str`` but failed on text (mypy found it)."""
    entry = parse_line(encode_frame(T0, "binance", "é{}", binary=True))
    assert (entry.frame, entry.binary) == ("é{}".encode(), True)


# --- the symbols of 'open' events are bounded like a live feed's -------------------------

def open_event(symbols: list[str], at: int = T0) -> bytes:
    return encode_event("open", at, "binance", symbols)


@pytest.mark.parametrize("symbols", [
    [f"B{i:06d}-USDT" for i in range(MAX_SYMBOLS + 1)],  # more than MAX_SYMBOLS
    ["BTC-USDT", "B" * (MAX_SYMBOL_CHARS + 1) + "-USDT"],  # a symbol too long to trade
], ids=["too many", "too long"])
def test_an_open_event_with_symbols_beyond_the_bounds_is_a_counted_reject(tmp_path, db,
                                                                          symbols):
    lines = good_lines(tmp_path)
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"".join(lines[:500]) + open_event(symbols) + b"".join(lines[500:]))
    s = replay(path, db=db)
    assert s["stored"] == 1_000 == stored(db)
    assert s["rejected_by_reason"] == {"bad_recording_line": 1}
    [(reason, detail, _)] = reject_rows(db)
    assert reason == "bad_recording_line" and detail.startswith("symbols of an 'open' event")


def test_open_events_subscribing_a_million_symbols_cost_a_bounded_memory(tmp_path):
    """Peak RSS of a child replaying 150 'open' events of 10,000 new symbols each
    (each event under MAX_SYMBOLS, 1.5 million in all), over the same child's peak
    after a small recording: the symbols subscribed are bounded, not the events."""
    small, attack = tmp_path / "small.jsonl", tmp_path / "attack.jsonl"
    small.write_bytes(b"".join(good_lines(tmp_path, 2_000)))
    events = 150
    with open(attack, "wb") as fh:
        for e in range(events):
            fh.write(open_event([f"B{e:03d}{i:05d}-USDT" for i in range(10_000)]))
    grew_mib, s = replay_growth(small, attack, tmp_path, "1.5 million symbols in 'open' events")
    connections = s["connections"]
    bad = s["rejected_by_reason"].get("bad_recording_line", 0)
    assert grew_mib < 60
    assert connections == events and bad == events - MAX_SYMBOLS // 10_000


def test_cli_replay_into_a_locked_database_says_so_in_one_line(tmp_path, db, capsys,
                                                               monkeypatch):
    """A database another program holds (or a full disk) is one line, not a traceback,
    and a second replay once it is free stores every tick once."""
    monkeypatch.setattr(Replay, "store_type", functools.partial(TickStore, busy_timeout_s=0.1))
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"".join(good_lines(tmp_path, 300)))
    TickStore(db).close()
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as blocker:
        blocker.execute("BEGIN EXCLUSIVE")
        code, out, err = cli(["replay", path, "--db", db], capsys)
        blocker.execute("ROLLBACK")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "database is locked" in err and str(db) in err
    code, out, err = cli(["replay", path, "--db", db], capsys)
    assert code == 0 and stored(db) == 300


def test_a_long_line_of_json_structure_costs_a_bounded_memory(tmp_path):
    """Peak RSS of a child replaying a ~25 KB .gz holding one 24 MiB line of
    ``[{},{},…]`` (8 million objects were parsed: +750 MiB) between good lines."""
    lines = good_lines(tmp_path, 2_000)
    small, attack = tmp_path / "small.jsonl.gz", tmp_path / "attack.jsonl.gz"
    with gzip.open(small, "wb") as fh:
        fh.writelines(lines)
    with gzip.open(attack, "wb") as fh:
        fh.writelines(lines[:1_000])
        fh.write(b"[" + b"{}," * (8 * 1024 * 1024) + b"{}]\n")
        fh.writelines(lines[1_000:])
    assert attack.stat().st_size < 200_000
    grew_mib, s = replay_growth(small, attack, tmp_path, "a 24 MiB line of JSON objects")
    bad = s["rejected_by_reason"].get("bad_recording_line", 0)
    assert grew_mib < 100
    assert bad == 1
    assert stored(tmp_path / "b.sqlite") == 2_000


def test_a_long_frame_line_is_still_read_whole(tmp_path):
    """A line over LINE_OVERHEAD_BYTES is one long frame: quotes and backslashes in it
    are inside its string, however many."""
    from rtkit.recording import LINE_OVERHEAD_BYTES, parse_line

    frame = '{"pad": "' + '\\"{},[]' * (LINE_OVERHEAD_BYTES // 4) + '"}'
    line = encode_frame(T0, "binance", frame)
    assert len(line) > 2 * LINE_OVERHEAD_BYTES
    assert parse_line(line).frame == frame


def test_a_million_open_events_cost_a_bounded_memory(tmp_path):
    """Peak RSS of a child replaying a ~230 KB .gz of a million 'open' events (each
    a ``reconnect`` gaps row): they are written as they come, like frames, not all
    held until the end."""
    small, attack = tmp_path / "small.jsonl.gz", tmp_path / "attack.jsonl.gz"
    with gzip.open(small, "wb") as fh:
        fh.writelines(good_lines(tmp_path, 10))
    events = 1_000_000
    with gzip.open(attack, "wb") as fh:
        fh.write(encode_event("open", T0, "binance") * events)
    grew_mib, s = replay_growth(small, attack, tmp_path, f"{events:,} 'open' events")
    connections = s["connections"]
    # the growth left is SQLite's page cache filling with the million gaps rows (at most
    # 64 MiB) and one write interval of rows; holding every row until the end was +191
    assert grew_mib < 80
    assert connections == events


def test_the_scan_of_a_long_line_is_linear_even_with_a_string_that_never_ends():
    """``"\\"\\"\\"…`` never closes its string: a scan that tried again from every
    quote took quadratic time (30,000 pairs: 10 s). It costs what a frame line of the
    same escapes costs, within a small factor."""
    from rtkit.recording import _structure_over

    def cost(line: bytes) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            _structure_over(line, 64 * 1024)
            best = min(best, time.perf_counter() - start)
        return best

    hostile = b'"' + b'\\"' * 30_000
    frame = encode_frame(T0, "binance", '"' * 30_000)  # the same escapes, in a whole line
    assert cost(hostile) < 6 * cost(frame)


def test_a_frame_of_control_characters_costs_a_bounded_memory(tmp_path):
    """A 4 MiB frame (within max_frame_bytes) of control characters is a 24 MiB line
    of ``\\u0001`` escapes: scanning it must not cost memory per escape (+528 MiB
    with a backtracking pattern)."""
    lines = good_lines(tmp_path, 2_000)
    small, attack = tmp_path / "small.jsonl.gz", tmp_path / "attack.jsonl.gz"
    with gzip.open(small, "wb") as fh:
        fh.writelines(lines)
    with gzip.open(attack, "wb") as fh:
        fh.writelines(lines[:1_000])
        fh.write(encode_frame(T0, "binance", "\x01" * (4 * 1024 * 1024 - 100)))
        fh.writelines(lines[1_000:])
    grew_mib, s = replay_growth(small, attack, tmp_path, "a 4 MiB frame of control characters")
    n_stored = s["stored"]
    assert grew_mib < 100
    assert n_stored == 2_000
