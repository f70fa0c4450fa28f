"""Storage faults under a running Collector: a lock held by another process, a full
disk, a database that vanishes or cannot be written. Ticks wait in memory, the
status says why, nothing is lost once the database works again, and ``stop()``
still returns."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import subprocess
import time

import pytest

import rtkit
from rtkit.sim import Simulator
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOLS = ["BTC-USDT", "ETH-USDT"]


def stored_rows(db) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return sorted(conn.execute(
            "SELECT symbol, trade_id, timestamp, price, volume, side FROM ticks").fetchall())


def expected_rows(trades) -> list[tuple]:
    return sorted((t.symbol, str(t.trade_id), t.ts_ns, float(t.price), float(t.volume), t.side)
                  for t in trades)


def assert_accounted(s: dict) -> None:
    assert s["frames"] == s["tick_frames"] + s["control"] + s["rejected_frames"]
    assert s["ticks"] == s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"]


@contextlib.contextmanager
def tmpfs(folder, size: str, readonly: bool = False):
    """A small filesystem of its own at ``folder`` (needs root: CI runs as root)."""
    folder.mkdir()
    options = f"size={size}" + (",ro" if readonly else "")
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                              capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        pytest.skip("no `mount` command: a tmpfs of its own is how this test gets a full or "
                    "read-only disk")
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}): "
                    "it takes root, which CI has")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=10)


def fill(folder) -> os.PathLike:
    """Write a file until the filesystem is full; returns it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def locked(db) -> sqlite3.Connection:
    """Another process's write lock on ``db`` (roll it back to release)."""
    blocker = sqlite3.connect(db, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    return blocker


# --- a lock held by someone else ------------------------------------------------------------
def test_lock_held_for_seconds_ticks_wait_in_memory_and_nothing_is_lost(db):
    with Simulator("binance", rate=2000, count=7000, seed=2) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        wait_for(lambda: c.stats["stored"] > 0)
        blocker = locked(db)
        try:
            at_lock = c.stats["ticks"]
            wait_for(lambda: c.status == "storage_error")
            assert "database is locked" in c.status.reason
            assert "ticks kept in memory, retrying" in c.status.reason
            # ticks keep arriving while the lock is held, and the flush keeps retrying
            # (each try waits 0.5 s for the lock: three take about two seconds)
            wait_for(lambda: c.stats["flush_failures"] >= 3, 10)
            s = c.stats
            assert s["ticks"] >= at_lock + 2000 and s["pending"] > 2000
            assert len(c.df) == s["ticks"]  # all of them readable from the notebook
            stored_while_locked = s["stored"]
        finally:
            blocker.rollback()
            blocker.close()
        assert stored_while_locked < 7000
        wait_for(lambda: c.stats["stored"] == 7000, 10)
        assert c.status == "live" and c.status.reason == ""
        c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)
    assert c.status == "stopped"
    assert_accounted(c.stats)


def test_lock_held_when_collection_starts(db):
    rtkit.TickStore(db).close()  # the file exists, as when a notebook reruns a cell
    blocker = locked(db)
    with Simulator("binance", rate=2000, count=1000, seed=2) as sim:
        try:
            c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
            wait_for(lambda: c.status == "storage_error" and c.stats["ticks"] > 0)
        finally:
            blocker.rollback()
            blocker.close()
        wait_for(lambda: c.stats["stored"] == 1000, 10)
        c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("stopped",)]


# --- a full disk ------------------------------------------------------------------------------
def test_disk_full_holds_ticks_until_space_is_freed(tmp_path):
    with tmpfs(tmp_path / "small", "8m") as folder:
        db = folder / "ticks.sqlite"
        with Simulator("binance", rate=2000, count=4000, seed=3) as sim:
            c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
            wait_for(lambda: c.stats["stored"] > 0)
            filler = fill(folder)
            wait_for(lambda: c.status == "storage_error", 10)
            assert "full" in c.status.reason
            at_full = c.stats["ticks"]
            wait_for(lambda: c.stats["ticks"] >= at_full + 500)  # collection goes on
            assert c.stats["pending"] >= 500
            filler.unlink()
            wait_for(lambda: c.stats["stored"] == 4000, 10)
            assert c.status == "live"
            c.stop()
            assert stored_rows(db) == expected_rows(sim.trades)
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert_accounted(c.stats)


def test_stop_while_the_disk_is_full_returns_and_says_what_was_not_written(tmp_path):
    with tmpfs(tmp_path / "small", "8m") as folder:
        db = folder / "ticks.sqlite"
        with Simulator("binance", rate=2000, count=1500, seed=3) as sim:
            c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
            wait_for(lambda: c.stats["stored"] > 0)
            fill(folder)
            wait_for(lambda: c.status == "storage_error" and c.stats["ticks"] == 1500, 10)
            t = time.monotonic()
            c.stop()
            assert time.monotonic() - t < 2.5
        s = c.stats
        assert s["pending"] > 0 and s["stored"] + s["pending"] == 1500
        assert c.status == "failed"
        assert f"stopped with {s['pending']:,} ticks not written" in c.status.reason
        assert "full" in c.status.reason
        assert len(c.df) == 1500  # still in memory, for the notebook to keep
        assert_accounted(s)


# --- a database that cannot be written -------------------------------------------------------
def test_read_only_filesystem_is_refused_at_once_with_what_to_do(tmp_path):
    with (tmpfs(tmp_path / "ro", "1m", readonly=True) as folder,
          pytest.raises(rtkit.StoreError, match="folder you can write to")):
        rtkit.Collector("binance", SYMBOLS, db=folder / "ticks.sqlite")


def test_database_folder_replaced_by_a_file_then_restored(tmp_path):
    folder = tmp_path / "data"
    db = folder / "ticks.sqlite"
    with Simulator("binance", rate=2000, count=3000, seed=4) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        wait_for(lambda: c.stats["stored"] > 0)
        aside = tmp_path / "aside"
        folder.rename(aside)  # works as root, unlike chmod
        folder.write_text("not a folder")
        # first the check finds the file gone from its path ("moved, replaced or
        # deleted"), then making it again fails: the reason says so, and what to do
        wait_for(lambda: c.status == "storage_error"
                 and "cannot write the database" in c.status.reason)
        assert "a folder you can write to" in c.status.reason
        at_break = c.stats["ticks"]
        wait_for(lambda: c.stats["ticks"] >= at_break + 500)
        folder.unlink()
        aside.rename(folder)
        wait_for(lambda: c.stats["stored"] == 3000, 10)
        assert c.status == "live"
        c.stop()
        assert stored_rows(db) == expected_rows(sim.trades)  # nothing lost, one file


def test_database_deleted_while_collecting_is_noticed_not_written_into_the_void(tmp_path,
                                                                                 caplog):
    folder = tmp_path / "data"
    db = folder / "ticks.sqlite"
    with Simulator("binance", rate=2000, count=3000, seed=4) as sim:
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        wait_for(lambda: c.stats["stored"] > 0)
        shutil.rmtree(folder)  # SQLite itself would go on writing to the unlinked file
        wait_for(lambda: c.stats["stored"] == 3000, 10)
        c.stop()
        after = stored_rows(db)  # a new file at the same path took the ticks that followed
    assert 0 < len(after) < 3000 and set(after) <= set(expected_rows(sim.trades))
    assert any("was moved, replaced or deleted" in m for m in caplog.messages)
    assert "was moved, replaced or deleted" in c.stats["last_error"]
