"""A replay of a run that backfilled ends each gap as the live run did (issue 14): the
same ``gaps`` table, column by column, and the same ``backfilled``, ``gaps_open`` and
completeness, from the recording's ``rest_trades`` and ``gap_finished`` events. Live
runs against the simulator's WebSocket and REST sides on loopback."""

from __future__ import annotations

import contextlib
import sqlite3

import orjson
import pytest

import rtkit
from rtkit.gaps import CANNOT_FILL
from rtkit.recording import GAP_ENDS, MAX_GAP_WHY_CHARS, GapFinished, parse_line
from rtkit.sim import Faults, Simulator, get_dialect
from rtkit.sim.rest import SimRest
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")

RATE = 4_000


def rows(db, table: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        order = "id" if table == "gaps" else "venue, symbol, trade_id"
        return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def settled(c, sim) -> bool:
    """Every frame sent is seen, every gap written and ended (or left for no backfill)."""
    s = c.stats
    return sim.all_sent and s["pending"] == 0 and s["gaps_open"] == 0 and s["gaps"] + \
        s["reconnect_marks"] > 0


def live(venue: str, db, record, faults: Faults, *, count: int = 2_000, seed: int = 31,
         broadcast: bool = False, tape_size: int | None = None, rest_faults=(),
         done=settled, **options):
    """Collect ``venue`` (recorded to ``record``) from a simulator that loses trades,
    until ``done(c, sim)``; the collector, stopped."""
    symbol = get_dialect(venue).example_symbols[0]
    rest_options = {} if tape_size is None else {"tape_size": tape_size}
    with Simulator(venue, rate=RATE, count=count, seed=seed, faults=faults,
                   broadcast=broadcast) as sim, SimRest(sim, **rest_options) as rest:
        for status, n in rest_faults:
            rest.inject(status, n, retry_after_s=60)
        c = rtkit.collect(venue, [symbol], url=sim.url, db=db, flush_interval_s=0.05,
                          record_raw=record, **options)
        try:
            wait_for(lambda: done(c, sim), 30)
        finally:
            c.stop()
    return c


#: each run: the venue, its simulator's faults, the collector's options, and what its
#: gaps must end as (the statuses, and a word of each why)
RUNS = {
    # lost trades (one-trade gaps, filled) and a reconnect that loses more than
    # backfill_max (partial); the second connection is clean
    "filled and partial": ("binance", dict(
        faults=Faults(lose_every=97, drop_every=1000, faulty_connections=(1,)), count=4_000,
        broadcast=True, backfill_max=10, backoff_initial_s=0.3), {
            "filled": None, "partial": "larger than backfill_max (10)"}),
    "a ban (418)": ("binance", dict(faults=Faults(lose_every=500), rest_faults=[(418, 1)]),
                    {"unfillable": "budget exhausted"}),
    "older than kept": ("okx", dict(faults=Faults(lose_every=300), tape_size=5),
                        {"unfillable": "older than the venue keeps"}),
    # ids the venue skipped (never traded: none to fetch), found with two connections
    # open: each gap is held for the other's copy first (GAP_HOLD_S; a replay's are held
    # until its end); those of the stream's last seconds are still held at stop (pending)
    "held by redundancy, then not kept": ("binance", dict(
        faults=Faults(skip_id_every=250), count=12_000, broadcast=True, redundancy=2,
        backoff_initial_s=0.05), {"unfillable": "older than the venue keeps",
                                  "pending": None}),
    "venue cannot (bybit)": ("bybit", dict(
        faults=Faults(drop_every=100), count=None, backoff_initial_s=0.05,
        done=lambda c, sim: sim.connections >= 3 and c.stats["reconnect_marks"] >= 2),
        {"unfillable": CANNOT_FILL}),
}


@pytest.mark.parametrize("name", RUNS)
def test_a_replay_ends_every_gap_as_the_live_run_did(name, db, tmp_path):
    venue, options, ends = RUNS[name]
    record = tmp_path / "raw.jsonl"
    c = live(venue, db, record, **options)
    gaps = rows(db, "gaps")
    assert gaps, "the run lost no trade: nothing to compare"
    statuses = {row[8]: row[9] for row in gaps if row[8] is not None}
    assert set(statuses) == set(ends), gaps  # each end this run is here to show
    for status, word in ends.items():
        assert (statuses[status] is None) if word is None else word in statuses[status]

    replayed = tmp_path / "replayed.sqlite"
    summary = rtkit.replay(record, db=replayed)
    # column by column, the times too: seen_at is the frame's, filled_at the ledger's
    # (the event's time), claimed_at is NULL once a gap is ended, in both
    assert rows(replayed, "gaps") == gaps
    assert rows(replayed, "ticks") == rows(db, "ticks")  # received_at of REST ones: fetched
    live_stats = c.stats
    for key in ("backfilled", "gaps_open", "gaps", "missing_trades", "completeness",
                "stored"):
        assert summary[key] == live_stats[key], key
    assert summary["bad_lines"] == 0 and summary["gaps_unmatched"] == 0


def test_a_recording_from_before_gap_events_leaves_its_gaps_pending(db, tmp_path):
    """An older recording (REST pages, no ``gap_finished``) still replays: its ticks
    come back, its gaps stay ``pending`` as that replay always made them."""
    record = tmp_path / "raw.jsonl"
    live("binance", db, record, Faults(lose_every=97))
    old = tmp_path / "old.jsonl"
    old.write_bytes(b"".join(line for line in record.read_bytes().splitlines(keepends=True)
                             if b'"gap_finished"' not in line))
    replayed = tmp_path / "replayed.sqlite"
    summary = rtkit.replay(old, db=replayed)
    assert rows(replayed, "ticks") == rows(db, "ticks")
    assert {row[8] for row in rows(replayed, "gaps")} == {"pending"}
    assert summary["backfilled"] == 0 and summary["gaps_open"] == summary["gaps"] > 0


def test_a_replay_into_a_file_that_has_the_gaps_already_ends_only_its_own(db, tmp_path):
    """Replaying twice into one file: the second replay's rows are ended, the first's
    stay as they were, and the second counts no duplicate ending."""
    record = tmp_path / "raw.jsonl"
    live("binance", db, record, Faults(lose_every=300))
    replayed = tmp_path / "replayed.sqlite"
    rtkit.replay(record, db=replayed)
    first = rows(replayed, "gaps")
    again = rtkit.replay(record, db=replayed)
    both = rows(replayed, "gaps")
    assert both[:len(first)] == first and len(both) == 2 * len(first)
    assert [r[1:] for r in both[len(first):]] == [r[1:] for r in first]
    assert again["gaps_unmatched"] == 0


# --- a recording is untrusted: a forged gap_finished is a counted reject ------------------

T0 = 1_764_000_000_000_000_000


def gap_line(**changes) -> dict:
    return {"event": "gap_finished", "received_at": T0, "venue": "binance",
            "symbol": "BTC-USDT", "first_missing": "5", "last_missing": "9", "seen_at": T0,
            "kind": "ids", "status": "partial", "filled": 3, "why": "older than the venue keeps",
            **changes}


def test_a_gap_finished_event_is_parsed_strictly():
    event = parse_line(orjson.dumps(gap_line()))
    assert event == GapFinished(T0, "binance", "BTC-USDT", "5", "9", T0, "ids", "partial", 3,
                                "older than the venue keeps")
    assert GAP_ENDS == ("filled", "partial", "unfillable")


HOSTILE_GAP_EVENTS = {
    "status pending": {"status": "pending"},
    "status unknown": {"status": "done"},
    "status a list": {"status": ["filled"]},
    "kind unknown": {"kind": "id_reset"},
    "filled negative": {"filled": -1},
    "filled beyond int64": {"filled": 2**63},
    "filled a float": {"filled": 3.0},
    "filled as text": {"filled": "3"},
    "no filled": {"filled": None},
    "why far too long": {"why": "w" * (MAX_GAP_WHY_CHARS + 1)},
    "a line of 2 MiB": {"why": "w" * (2 << 20)},  # read whole (one long string), refused
    "why a number": {"why": 5},
    "why empty": {"why": ""},
    "filled with a why": {"status": "filled", "filled": 5},
    "partial without a why": {"why": None},
    "unfillable with trades": {"status": "unfillable", "filled": 2},
    "partial without trades": {"filled": 0},
    "ids far too long": {"first_missing": "9" * 65},
    "ids as numbers": {"first_missing": 5},
    "symbol far too long": {"symbol": "S" * 10_000},
    "no symbol": {"symbol": None},
    "seen_at negative": {"seen_at": -1},
    "no seen_at": {"seen_at": None},
}


@pytest.mark.parametrize("change", HOSTILE_GAP_EVENTS.values(), ids=HOSTILE_GAP_EVENTS.keys())
def test_a_hostile_gap_finished_line_is_a_counted_reject(tmp_path, db, change):
    from tests.test_recording_hardening import good_lines, reject_rows, stored

    lines = good_lines(tmp_path)
    bad = orjson.dumps(gap_line(**change))
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"".join(lines[:500]) + bad + b"\n" + b"".join(lines[500:]))
    s = rtkit.replay(path, db=db)
    assert s["stored"] == 1_000 and stored(db) == 1_000
    assert s["rejected_by_reason"] == {"bad_recording_line": 1} and s["bad_lines"] == 1
    [(reason, detail, size)] = reject_rows(db)
    assert reason == "bad_recording_line" and detail.startswith("line 501: ")
    assert size == len(bad) + 1


def forged_run(tmp_path, events: list[dict]) -> tuple:
    """A recording of one-trade gaps (ids 3, 6, 9… skipped), then ``events``; replayed."""
    lines = [b'{"event":"open","received_at":1,"venue":"binance","symbols":["BTC-USDT"]}\n']
    for tid in range(1, 31):
        if tid % 3:
            frame = ('{"e":"trade","s":"BTCUSDT","t":%d,"p":"1","q":"1","T":1764000000000,'
                     '"m":true}' % tid)
            lines.append(orjson.dumps({"received_at": T0 + tid, "venue": "binance",
                                       "frame": frame}) + b"\n")
    lines += [orjson.dumps(e) + b"\n" for e in events]
    path = tmp_path / "forged.jsonl"
    path.write_bytes(b"".join(lines))
    db = tmp_path / "forged.sqlite"
    return rtkit.replay(path, db=db), rows(db, "gaps")


def test_a_forged_gap_finished_ends_no_gap_it_does_not_name_and_no_gap_twice(tmp_path):
    real = gap_line(first_missing="3", last_missing="3", seen_at=T0 + 4, status="filled",
                    filled=1, why=None)
    summary, gaps = forged_run(tmp_path, [
        real, real,  # the same gap ended twice: once
        gap_line(first_missing="6", last_missing="6", seen_at=T0 + 7, status="partial",
                 filled=5),  # more trades than the gap misses: a reject
        gap_line(first_missing="9", last_missing="9", seen_at=T0 + 999, status="unfillable",
                 filled=0),  # no gap seen then: unmatched
        gap_line(venue="okx", first_missing="9", last_missing="9", seen_at=T0 + 10,
                 status="unfillable", filled=0),  # another venue's: unmatched
    ])
    ended = {row[3]: (row[8], row[11], row[10]) for row in gaps}
    assert ended["3"] == ("filled", 1, T0) and ended["6"][0] == ended["9"][0] == "pending"
    assert summary["backfilled"] == 1 and summary["gaps_open"] == summary["gaps"] - 1 == 8
    assert summary["gaps_unmatched"] == 3  # the second 'real', and the two others
    assert summary["rejected_by_reason"] == {"bad_recording_line": 1}


def test_many_forged_gap_events_are_all_counted_and_held_within_a_bound(tmp_path):
    import rtkit.replay_gaps as replay_gaps

    n = 5 * replay_gaps.MAX_HELD_OUTCOMES
    events = [gap_line(first_missing=str(10**6 + i), last_missing=str(10**6 + i),
                       status="unfillable", filled=0) for i in range(n)]
    most = 0
    add = replay_gaps.GapOutcomes.add

    def counting_add(self, event):
        nonlocal most
        most = max(most, len(self.held))
        return add(self, event)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(replay_gaps.GapOutcomes, "add", counting_add)
        summary, gaps = forged_run(tmp_path, events)
    assert most < replay_gaps.MAX_HELD_OUTCOMES  # never more held: written, then given up
    assert summary["gaps_unmatched"] == n and summary["bad_lines"] == 0
    assert {row[8] for row in gaps} == {"pending"}


def test_the_pending_gaps_looked_up_are_bounded(tmp_path, monkeypatch):
    """Beyond MAX_INDEXED_GAPS pending rows, a row is not looked up: its event is
    counted unmatched, the rows before it are still ended."""
    import rtkit.replay_gaps as replay_gaps

    monkeypatch.setattr(replay_gaps, "MAX_INDEXED_GAPS", 4)
    events = [gap_line(first_missing=str(tid), last_missing=str(tid), seen_at=T0 + tid + 1,
                       status="unfillable", filled=0) for tid in range(3, 31, 3)]
    summary, gaps = forged_run(tmp_path, events)
    assert [row[8] for row in gaps] == ["unfillable"] * 4 + ["pending"] * 5
    assert summary["gaps_unmatched"] == len(events) - 4 == 6
