"""End to end without a socket: recording → adapter → validation → ring → SQLite."""

import gzip
import json
import sqlite3
from importlib import resources

import pytest

from rtkit.cli import main
from rtkit.recording import encode_event, encode_frame, read_recording
from rtkit.replay import replay
from rtkit.sim.record import write_recording


@pytest.fixture
def mixed(tmp_path):
    path = tmp_path / "mixed.jsonl.gz"
    info = write_recording(path, trades=600, duplicates=40, bad_frames=True, seed=3)
    return path, info


def test_every_frame_is_accounted_for(mixed, db):
    path, info = mixed
    s = replay(path, db=db)
    assert s["frames"] == info["frames"]
    assert s["frames"] == s["tick_frames"] + s["control"] + s["rejected_frames"]
    assert s["ticks"] == s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"]
    assert (s["stored"], s["duplicates"], s["pending"]) == (600, 40, 0)
    assert s["control"] == 1
    assert s["rejected_by_reason"] == info["expected_rejects"]
    assert s["rejected"] == sum(info["expected_rejects"].values())


def test_values_in_sqlite_match_what_was_sent(mixed, db):
    path, info = mixed
    replay(path, db=db)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT venue, symbol, trade_id, timestamp, price, volume, side "
                        "FROM ticks ORDER BY timestamp, symbol").fetchall()
    expected = sorted((("binance", t.symbol, str(t.trade_id), t.ts_ns, float(t.price),
                        float(t.volume), t.side) for t in info["trades"]),
                      key=lambda r: (r[3], r[1]))
    assert rows == expected
    rejects = conn.execute("SELECT reason, length(frame), frame_bytes FROM rejects").fetchall()
    too_large = [r for r in rejects if r[0] == "frame_too_large"]
    assert too_large[0][1] == 4096 and too_large[0][2] > 5_000_000  # truncated, size kept
    # nothing malformed reached the ticks table
    assert conn.execute("SELECT count(*) FROM ticks WHERE price <= 0 OR volume <= 0 "
                        "OR price > 1e15 OR price != price").fetchone()[0] == 0


def test_replaying_twice_adds_nothing(mixed, db):
    path, _ = mixed
    replay(path, db=db)
    again = replay(path, db=db)
    assert again["stored"] == 0 and again["duplicates"] == 640


def test_bundled_sample_replays(db):
    sample = resources.files("rtkit") / "samples" / "binance_sample.jsonl.gz"
    s = replay(sample, db=db)
    assert s["stored"] == 2000 and s["duplicates"] == 50 and s["rejected"] == 11


def test_cli_replay_json_last_line(mixed, db, capsys):
    path, info = mixed
    assert main(["replay", str(path), "--db", str(db), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("frames", "ticks", "stored", "duplicates", "rejected", "rejected_by_reason",
                "control"):
        assert key in summary
    assert summary["stored"] == 600


def test_missing_recording_says_what_to_do(tmp_path, db, capsys):
    with pytest.raises(FileNotFoundError, match="give the path of a .jsonl"):
        replay(tmp_path / "nope.jsonl", db=db)
    assert main(["replay", str(tmp_path / "nope.jsonl"), "--db", str(db)]) == 2
    assert "no recording at" in capsys.readouterr().err


def test_bad_recording_line_names_the_line(tmp_path, db, caplog):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(encode_event("open", 1, "binance") + b"not json\n"
                     + encode_event("close", 2, "binance"))
    s = replay(path, db=db)  # a counted reject that names the line, not the end of the replay
    assert s["rejected_by_reason"] == {"bad_recording_line": 1} and s["connections"] == 1
    assert "bad.jsonl, line 2: not JSON" in caplog.text
    row = sqlite3.connect(db).execute("SELECT reason, detail FROM rejects").fetchone()
    assert row[0] == "bad_recording_line" and row[1].startswith("line 2: not JSON")


def test_a_last_line_cut_by_a_crash_is_skipped(mixed, tmp_path, db):
    path, info = mixed
    cut = tmp_path / "cut.jsonl"
    with gzip.open(path, "rb") as fh:
        cut.write_bytes(fh.read() + b'{"received_at": 1, "venue": "binance", "fra')
    s = replay(cut, db=db)
    assert s["stored"] == 600 and s["frames"] == info["frames"]


def test_recording_round_trips_bytes_exactly(tmp_path):
    path = tmp_path / "r.jsonl"
    frames = [("text ünïcode", False), (b"\xff\xfe not utf-8", False), (b"\x00bin", True)]
    path.write_bytes(b"".join(encode_frame(i, "binance", f, b) for i, (f, b) in enumerate(frames)))
    got = [(e.frame, e.binary) for e in read_recording(path)]
    assert got == [("text ünïcode", False), (b"\xff\xfe not utf-8", False), (b"\x00bin", True)]


def test_unknown_venue_in_recording(tmp_path, db):
    path = tmp_path / "r.jsonl"
    path.write_bytes(encode_frame(1, "nasdaq", "{}"))
    with pytest.raises(ValueError, match="unknown venue 'nasdaq'"):
        replay(path, db=db)


def test_a_frame_refused_for_its_size_replays_as_such(tmp_path, db):
    from rtkit.recording import RecordingWriter

    path = tmp_path / "big.jsonl"
    w = RecordingWriter(path)
    w.too_large(5, "binance", b'{"e":"trade","pad":"xxxx', 9_000_000)
    w.close()
    s = replay(path, db=db)
    assert s["rejected_by_reason"] == {"frame_too_large": 1}
    row = sqlite3.connect(db).execute("SELECT reason, frame_bytes FROM rejects").fetchone()
    assert row == ("frame_too_large", 9_000_000)


def test_demo_refuses_to_wipe_a_database_that_is_not_the_demo(tmp_path, capsys):
    db = tmp_path / "mine.sqlite"
    from rtkit.store import TickStore

    with TickStore(db) as store:
        store.start_run(name="research", venue="binance", symbols=["BTC-USDT"], url="ws://x",
                        config={}, started_at=1)
    assert main(["demo", "--db", str(db), "--duration", "0.1"]) == 2
    assert "not from the demo" in capsys.readouterr().err and db.exists()
