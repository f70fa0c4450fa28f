"""The Collector against the real simulator over a real loopback socket."""

import signal
import socket
import sqlite3
import threading
import time

import pytest

import rtkit
from rtkit.runtime import registry
from rtkit.sim import Faults, Simulator
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOLS = ["BTC-USDT", "ETH-USDT"]


def stored_rows(db):
    return sqlite3.connect(db).execute(
        "SELECT symbol, trade_id, timestamp, price, volume, side FROM ticks ORDER BY symbol, "
        "CAST(trade_id AS INTEGER)").fetchall()


def expected_rows(trades):
    return sorted(((t.symbol, str(t.trade_id), t.ts_ns, float(t.price), float(t.volume), t.side)
                   for t in trades), key=lambda r: (r[0], int(r[1])))


def assert_accounted(stats):
    assert stats["frames"] == stats["tick_frames"] + stats["control"] + stats["rejected_frames"]
    assert stats["ticks"] == (stats["stored"] + stats["duplicates"] + stats["pending"]
                              + stats["dropped_overflow"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_trade_sent_is_stored_with_identical_values(db):
    with Simulator("binance", rate=4000, count=3000, seed=11) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.2)
        assert c.running  # start() returned at once, threads are up
        wait_for(lambda: c.stats["ticks"] >= 3000)
        c.stop()
        assert c.status == "stopped"
        assert stored_rows(db) == expected_rows(sim.trades)
    s = c.stats
    assert (s["stored"], s["pending"], s["rejected"], s["control"]) == (3000, 0, 0, 1)
    assert_accounted(s)
    run = sqlite3.connect(db).execute("SELECT status, counters FROM runs").fetchone()
    assert run[0] == "stopped" and '"stored": 3000' in run[1]


@pytest.mark.parametrize(
    "faults", [Faults(drop_every=700), Faults(close_every=700, close_code=1011)],
    ids=["abrupt-drop", "close-frame"])
def test_reconnects_resubscribes_and_loses_nothing(db, faults):
    with Simulator("binance", rate=4000, count=2500, seed=5, faults=faults, overlap=200) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.2,
                          backoff_initial_s=0.05)
        wait_for(lambda: c.stats["stored"] >= 2500 and sim.wait_generated(timeout_s=0), 20)
        c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)
        assert sim.connections >= 3
    s = c.stats
    assert s["reconnects"] >= 2 and s["connections"] == sim.connections
    assert s["duplicates"] > 0  # the overlap the simulator re-sent on each resubscribe
    assert s["reconnect_marks"] == s["connections"] - 1
    assert s["gaps"] == 0  # the overlap covered every drop
    assert_accounted(s)
    assert "connection" in s["last_error"] or "closed" in s["last_error"]
    marks = sqlite3.connect(db).execute("SELECT count(*) FROM gaps WHERE kind='reconnect'")
    assert marks.fetchone()[0] == s["reconnect_marks"]


def test_stop_before_first_connect_returns_fast(db):
    c = rtkit.Collector("binance", SYMBOLS, url=f"ws://127.0.0.1:{free_port()}/ws", db=db)
    t = time.monotonic()
    c.stop()
    assert time.monotonic() - t < 0.5 and c.status == "stopped"
    c2 = rtkit.collect("binance", SYMBOLS, url=f"ws://127.0.0.1:{free_port()}/ws", db=db)
    t = time.monotonic()
    c2.stop()
    assert time.monotonic() - t < 2.0


def test_stop_during_backoff(db):
    c = rtkit.collect("binance", SYMBOLS, url=f"ws://127.0.0.1:{free_port()}/ws", db=db,
                      backoff_initial_s=5.0)
    wait_for(lambda: c.status == "backoff")
    assert "retry in" in c.status.reason and "ConnectionRefused" in c.status.reason
    t = time.monotonic()
    c.stop()
    assert time.monotonic() - t < 2.0 and not c.running


def test_backoff_grows_instead_of_a_tight_loop(db):
    port = free_port()
    c = rtkit.collect("binance", SYMBOLS, url=f"ws://127.0.0.1:{port}/ws", db=db,
                      backoff_initial_s=0.1, backoff_max_s=0.4)
    time.sleep(1.5)  # measuring a rate over a fixed window: the sleep is the measurement
    attempts = c.stats["reconnects"]
    c.stop()
    assert 2 <= attempts <= 15


def test_stop_while_storage_is_locked_returns_and_keeps_counts(db):
    with Simulator("binance", rate=3000, count=1500, seed=2) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        wait_for(lambda: c.stats["stored"] > 0)
        blocker = sqlite3.connect(db, timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            wait_for(lambda: c.stats["ticks"] >= 1500)
            wait_for(lambda: "storage" in c.stats["last_error"])
            assert c.stats["pending"] > 0
            t = time.monotonic()
            c.stop()
            assert time.monotonic() - t < 2.5
        finally:
            blocker.rollback()
            blocker.close()
    s = c.stats
    assert_accounted(s)
    assert s["pending"] > 0 and s["stored"] + s["pending"] == 1500  # held in memory, counted


def test_storage_lock_released_in_time_loses_nothing(db):
    with Simulator("binance", rate=3000, count=1500, seed=2) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        wait_for(lambda: c.stats["stored"] > 0)
        blocker = sqlite3.connect(db, timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")
        wait_for(lambda: "storage" in c.stats["last_error"])
        blocker.rollback()
        blocker.close()
        wait_for(lambda: c.stats["stored"] == 1500)
        c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)


def test_notebook_thread_reads_while_ticks_arrive(db):
    with Simulator("binance", rate=20000, count=20000, seed=4) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db)
        seen = 0
        while c.stats["ticks"] < 20000:
            df = c.df
            s = c.stats
            assert len(df) <= s["ticks"] or s["ticks"] == 0
            if len(df):
                # per symbol the ids arrive in order with no hole: no torn or lost row
                for _, g in df.groupby("symbol", observed=True):
                    ids = g["trade_id"].to_numpy()
                    assert (ids[1:] - ids[:-1] == 1).all()
            seen += 1
        c.stop()
    assert seen > 3


def test_same_name_replaces_running_collector_and_stop_all(db):
    with Simulator("binance", rate=500, seed=1) as sim:
        a = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, name="cell-1")
        b = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, name="cell-1")
        assert not a.running and a.status == "stopped" and b.running
        c = rtkit.collect("binance", ["SOL-USDT"], url=sim.url, db=db, name="other")
        rtkit.stop_all()
        assert not b.running and not c.running


@pytest.mark.parametrize("interrupted", ["_recv_thread", "_write_thread"])
def test_ctrl_c_while_stop_waits_still_ends_the_collector(db, interrupted):
    """A real SIGINT arrives while stop() joins one of the threads: stop() raises
    KeyboardInterrupt, yet the collector is never `live` again, its threads end
    within stop's bound, it leaves the registry, and a second stop() is quick."""
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with Simulator("binance", rate=2000, seed=1) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, name="interrupted",
                          flush_interval_s=0.1)
        wait_for(lambda: c.status == "live" and c.stats["stored"] > 0)
        thread = getattr(c, interrupted)
        join = thread.join

        def join_then_ctrl_c(timeout=None):
            signal.raise_signal(signal.SIGINT)  # Python raises KeyboardInterrupt right here
            join(timeout)

        thread.join = join_then_ctrl_c
        with pytest.raises(KeyboardInterrupt):
            c.stop()
        del thread.join  # one Ctrl-C
        assert c.status in ("stopping", "stopped")  # not `live`, though it never finished
        wait_for(lambda: not c.running, 4)  # stop()'s 2 s, with room for a loaded machine
        assert c.status == "stopped" and registry.running("interrupted") is None
        stats = c.stats
        assert stats["pending"] == 0 and stats["stored"] > 0  # the final flush happened
        t = time.monotonic()
        c.stop()
        assert time.monotonic() - t < 0.5 and c.status == "stopped"
    runs = sqlite3.connect(db).execute("SELECT status FROM runs").fetchall()
    assert runs == [("stopped",)]


def test_stale_stream_is_reconnected(db):
    with Simulator("binance", rate=2000, count=200, seed=1) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, stale_after_s=0.5,
                          backoff_initial_s=0.05)
        wait_for(lambda: c.stats["reconnects"] >= 1, 10)
        assert "no data for 0.5s" in c.stats["last_error"]
        c.stop()
        assert c.stats["stored"] == 200


def test_rejected_subscription_is_reported_then_failed(db):
    faults = Faults(reject_symbols=("DOGE-USDT",))
    with Simulator("binance", rate=100, seed=1, faults=faults) as sim:
        c = rtkit.collect("binance", ["DOGE-USDT"], url=sim.url, db=db, stale_after_s=0.3,
                          backoff_initial_s=0.05)
        wait_for(lambda: c.status == "failed", 15)
        assert "invalid symbol DOGE-USDT" in c.status.reason
        assert "invalid symbol DOGE-USDT" in c.stats["venue_error"]
        c.stop()
        assert c.status == "failed"


def test_record_raw_replays_to_the_same_ticks(tmp_path, db):
    rec = tmp_path / "run.jsonl.gz"
    with Simulator("binance", rate=4000, count=1000, seed=8, faults=Faults(drop_every=400)) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, record_raw=rec,
                          backoff_initial_s=0.05)
        wait_for(lambda: c.stats["stored"] >= 1000 and c.stats["pending"] == 0)
        c.stop()
    again = rtkit.replay(rec, db=tmp_path / "replayed.sqlite")
    assert again["frames"] == c.stats["frames"]
    assert again["stored"] == 1000 and again["duplicates"] == c.stats["duplicates"]
    assert again["connections"] == c.stats["connections"]
    assert stored_rows(tmp_path / "replayed.sqlite") == stored_rows(db)


def test_bad_arguments_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="unknown venue"):
        rtkit.Collector("nyse", ["BTC-USDT"], db=tmp_path / "a.sqlite")
    with pytest.raises(ValueError, match="expected e.g. 'BTC-USDT'"):
        rtkit.Collector("binance", ["BTC USDT"], db=tmp_path / "a.sqlite")
    with pytest.raises(ValueError, match="at least one symbol"):
        rtkit.Collector("binance", [], db=tmp_path / "a.sqlite")
    with pytest.raises(ValueError, match="ws:// or wss://"):
        rtkit.Collector("binance", ["BTC-USDT"], url="http://x", db=tmp_path / "a.sqlite")
    blocker = tmp_path / "f"
    blocker.write_text("")
    with pytest.raises(rtkit.StoreError, match="folder you can write to"):
        rtkit.Collector("binance", ["BTC-USDT"], db=blocker / "x.sqlite")


def test_repr_and_status_are_readable(db):
    c = rtkit.Collector("binance", ["btcusdt"], db=db)
    assert c.symbols == ["BTC-USDT"] and c.status == "idle"
    assert "binance:BTC-USDT" in repr(c) and "idle" in repr(c)
    assert c.url == "wss://stream.binance.com:9443/ws"  # real endpoint, TLS by default


def test_no_output_from_background_threads(db, capfd):
    with Simulator("binance", rate=2000, count=500, seed=1, faults=Faults(drop_every=200)) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, backoff_initial_s=0.05)
        wait_for(lambda: c.stats["stored"] >= 500)
        c.stop()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_start_real_time_collection_blocks_for_duration(db):
    with Simulator("binance", rate=1000, seed=1) as sim:
        t = time.monotonic()
        stats = rtkit.start_real_time_collection(sim.url, symbols=["BTC-USDT"], duration_s=1.0,
                                                 db=db)
        assert 0.9 < time.monotonic() - t < 4
    assert stats["stored"] > 0 and stats["status"] == "stopped"


def test_threads_are_daemons_and_named(db):
    with Simulator("binance", rate=100, seed=1) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db)
        # receive, write, and backfill (binance can fill its gaps from REST)
        ours = [t for t in threading.enumerate() if t.name.startswith("rtkit-") and
                c.name in t.name]
        assert len(ours) == 3 and all(t.daemon for t in ours)
        c.stop()


def test_a_collector_that_fails_on_its_own_leaves_no_thread_behind(db):
    # the venue refuses every symbol: the collector ends ``failed`` with nobody calling
    # stop(), and its backfill thread (binance fills gaps from REST) ends with it
    with Simulator("binance", count=0, faults=Faults(reject_symbols=SYMBOLS)) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, backoff_initial_s=0.05)
        assert c.backfiller is not None
        wait_for(lambda: c.status == "failed", 10)
        wait_for(lambda: not [t for t in threading.enumerate()
                              if t.name.startswith("rtkit-") and c.name in t.name], 3)
        assert not c.running and "invalid symbol" in c.status.reason


def test_again_rebuilds_the_same_configuration(db, tmp_path):
    c = rtkit.Collector("binance", ["btcusdt"], db=db, name="n1", capacity=123,
                        flush_interval_s=0.3, channel="aggTrade")
    twin = c.again()
    assert twin is not c and type(twin) is type(c)
    assert (twin.name, twin.symbols, twin.db, twin.ring.capacity, twin.flush_interval_s) == (
        "n1", ["BTC-USDT"], db, 123, 0.3)
    assert twin.adapter.channel == "aggTrade" and twin.status == "idle"


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_stop_during_a_hanging_connect(db, scheme):
    """A server that accepts TCP and then says nothing. During the HTTP upgrade (ws)
    stop() cuts the socket at once; during a TLS handshake (wss) the socket is not
    ours yet, so stop() returns in time saying 'stopping', and the collector stays
    registered until the connect times out, so stop_all() waits for it."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        c = rtkit.collect("binance", SYMBOLS, url=f"{scheme}://127.0.0.1:{port}/ws", db=db,
                          connect_timeout_s=1.5, name="hanging")
        server.settimeout(5)
        conn, _ = server.accept()  # the collector is now inside the upgrade handshake
        t = time.monotonic()
        if scheme == "ws":
            c.stop()
            assert time.monotonic() - t < 2.5  # cut at once, not after connect_timeout_s
            assert c.status == "stopped" and not c.running
            conn.close()
            return
        c.stop(timeout_s=0.3)
        assert time.monotonic() - t < 1.0
        assert c.status == "stopping" and "call stop() again" in c.status.reason
        rtkit.stop_all()  # still registered: waits for the threads this time
        wait_for(lambda: not c.running, 5)
        c.stop()
        conn.close()
        assert c.status == "stopped"
