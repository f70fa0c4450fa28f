"""Review of the streamed flush (issue 17): the pipe to the writer process stays in step
whatever a part of a flush holds, and a flush cut off by ``kill -9`` leaves none of it."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest

from rtkit.pipeline_queue import Batch
from rtkit.runtime import writer_child, writer_process
from rtkit.runtime.writer_process import ProcessSink
from rtkit.store import TickStore
from tests.conftest import wait_for
from tests.test_writer_process import RUN, T0, taken_over, tick

pytestmark = pytest.mark.usefixtures("no_thread_leak")


class _NotInTheChild:
    """Pickles in the parent; unpickling it in the child raises ValueError."""

    def __reduce__(self):
        return (int, ("not a number",))


def test_a_part_the_child_cannot_unpickle_is_answered_at_once_and_the_pipe_stays_in_step(
        db, monkeypatch):
    """A later part of the trades that fails to unpickle in the child is the write's error,
    answered at once; the child reads the parts behind it and serves the next flush."""
    monkeypatch.setattr(writer_child, "CHUNK_ROWS", 1000)
    monkeypatch.setattr(writer_process, "ANSWER_TIMEOUT_S", 20.0)
    ticks = [tick(i) for i in range(5_000)]
    bad = list(ticks)
    bad[3500] = ("binance", "BTC-USDT", "3500", _NotInTheChild(), T0, 100.0, 0.5, "buy")
    sink = ProcessSink(db)
    sink.probe()
    sink.open(RUN)
    wait_for(lambda: taken_over(sink), 30)
    try:
        pid = sink.pid
        started = time.monotonic()
        with pytest.raises(ValueError, match="not a number"):
            sink.write(Batch(bad, [], []), [])
        waited = time.monotonic() - started
        assert waited < writer_process.ANSWER_TIMEOUT_S / 2, waited  # not a child that hangs
        assert sink.is_open and sink.pid == pid  # the same child, in step
        assert sink.write(Batch(ticks, [], []), []) == 5_000
    finally:
        sink.close()
    with TickStore(db, readonly=True) as store:
        assert store.count() == 5_000


def _write_locked(path) -> bool:
    """Another connection holds the file's write lock (a transaction under way)."""
    conn = sqlite3.connect(path, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()
    return False


def test_a_child_killed_in_the_middle_of_a_streamed_flush_leaves_none_of_it(db):
    """The first parts were inserted (the child holds the write lock, waiting for the
    next part) when it is killed: none of the flush is in the file."""
    child = writer_child.WriterChild(db, TickStore)
    try:
        child.call(("open", RUN, None, None), 30)
        rows = [tick(i) for i in range(3_000)]
        child.send(("write", [], [rows[:1000], [], []], 2))
        child.send((0, rows[1000:2000]))
        wait_for(lambda: _write_locked(db), 30)
        os.kill(child.pid, signal.SIGKILL)
        child.proc.wait(30)
    finally:
        child.end()
    with TickStore(db) as store:  # opened for writing: recovers the file
        assert store.count() == 0
        assert store.write(rows) == 3_000


def test_a_child_stuck_in_sqlite_in_the_middle_of_a_streamed_flush_is_lost_within_the_bound(
        db, tmp_path, monkeypatch):
    """The child stops reading the parts while its SQLite stalls: the parent's sending of
    the parts waits at most ANSWER_TIMEOUT_S, as its wait for the answer does, and the
    child is ended as lost."""
    from tests.review5_stores import STALL_FILE, STALL_MOST_S, StallingStore

    release = tmp_path / "release"
    monkeypatch.setenv(STALL_FILE, str(release))
    monkeypatch.setattr(writer_child, "CHUNK_ROWS", 1000)
    monkeypatch.setattr(writer_process, "ANSWER_TIMEOUT_S", 2.0)
    ticks = [tick(i) for i in range(30_000)]  # 30 parts: far more than a pipe holds
    sink = ProcessSink(db, StallingStore)
    sink.probe()
    sink.open(RUN)
    wait_for(lambda: taken_over(sink), 30)
    try:
        started = time.monotonic()
        with pytest.raises(writer_child.ChildLost) as lost:
            sink.write(Batch(ticks, [], []), [])
        waited = time.monotonic() - started
        assert waited < STALL_MOST_S / 2, waited
        assert "stopped reading a flush" in str(lost.value)
    finally:
        release.touch()
        sink.close()
    with TickStore(db, readonly=True) as store:
        assert store.count() == 0
