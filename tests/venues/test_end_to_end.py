"""Every venue the simulator speaks, end to end over a real loopback socket:
simulator (that venue's dialect) → Collector → SQLite, values compared exactly."""

import sqlite3

import pytest

import rtkit
from rtkit.sim import Faults, Simulator, dialect_names, get_dialect
from rtkit.venues import get_adapter
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
VENUES = dialect_names()


def rows(db):
    return sorted(sqlite3.connect(db).execute(
        "SELECT symbol, trade_id, timestamp, price, volume, side FROM ticks").fetchall())


def expected(dialect, trades):
    return sorted((t.symbol, dialect.expected_trade_id(t), t.ts_ns, float(t.price),
                   float(t.volume), t.side) for t in trades)


@pytest.mark.parametrize("venue", VENUES)
def test_simulated_venue_end_to_end(venue, db, tmp_path):
    dialect = get_dialect(venue)
    recording = tmp_path / "raw.jsonl.gz"
    with Simulator(venue, rate=3000, count=1200, seed=3) as sim:
        c = rtkit.collect(venue, list(dialect.example_symbols), url=sim.url, db=db,
                          flush_interval_s=0.2, record_raw=recording)
        wait_for(lambda: c.stats["stored"] >= 1200, 20)
        c.stop()
        assert rows(db) == expected(dialect, sim.trades)
    s = c.stats
    assert s["rejected"] == 0 and s["gaps"] == 0 and s["stored"] == 1200
    assert s["frames"] == s["tick_frames"] + s["control"] + s["rejected_frames"]
    # the raw recording of the run replays to the very same rows
    replayed = tmp_path / "replayed.sqlite"
    summary = rtkit.replay(recording, db=replayed)
    assert summary["frames"] == s["frames"] and summary["stored"] == 1200
    assert rows(replayed) == rows(db)


@pytest.mark.parametrize("venue", VENUES)
def test_gaps_reported_only_where_ids_allow(venue, db):
    dialect = get_dialect(venue)
    with Simulator(venue, rate=3000, count=600, seed=3,
                   faults=Faults(skip_id_every=100)) as sim:
        c = rtkit.collect(venue, list(dialect.example_symbols), url=sim.url, db=db)
        wait_for(lambda: c.stats["stored"] >= 600, 20)
        c.stop()
        skipped = sim.market.skipped_ids
    gaps = sqlite3.connect(db).execute(
        "SELECT count(*), coalesce(sum(missing), 0) FROM gaps WHERE kind LIKE 'ids%'").fetchone()
    if get_adapter(venue).ids_consecutive:
        assert skipped == 6 and gaps == (6, 6) and c.stats["missing_trades"] == 6
    else:
        assert gaps == (0, 0) and c.stats["gaps"] == 0


@pytest.mark.parametrize("venue", VENUES)
def test_reconnect_overlap_is_not_a_gap(venue, db):
    dialect = get_dialect(venue)
    with Simulator(venue, rate=3000, count=900, seed=9, overlap=150,
                   faults=Faults(drop_every=250)) as sim:
        c = rtkit.collect(venue, list(dialect.example_symbols), url=sim.url, db=db,
                          backoff_initial_s=0.05)
        wait_for(lambda: c.stats["stored"] >= 900, 20)
        c.stop()
        assert rows(db) == expected(dialect, sim.trades)
    # venues that batch trades send fewer frames, hence fewer drops: at least one, each a
    # reconnect, none of them a gap
    assert c.stats["gaps"] == 0 and sim.connections >= 2
    assert c.stats["reconnects"] == sim.connections - 1
