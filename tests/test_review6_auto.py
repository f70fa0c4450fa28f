"""Review of writer="auto": what starts its child, and what must not."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rtkit
from rtkit.sim import Simulator
from rtkit.sim.rest import SimRest
from tests.conftest import wait_for
from tests.test_writer_auto import assert_a_child_takes_over
from tests.test_writer_process import children

pytestmark = pytest.mark.usefixtures("no_thread_leak")


def test_one_deep_book_snapshot_on_a_quiet_feed_starts_no_child(db):
    """A depth-5000 snapshot is 10,000 rows at once, then the book moves 50 times a
    second: a burst, not a fast feed, so no writer process."""
    others = set(children(os.getpid()))  # a session's browser or server, say
    sim = Simulator("binance", rate=None, count=0, book_rate=50.0, book_levels=5000, seed=3)
    sim.start()
    rest = SimRest(sim).start()
    c = rtkit.Collector("binance", ["BTC-USDT"], url=sim.url, db=db, kinds=["book"],
                        depth=5000, flush_interval_s=0.2)
    c.start()
    try:
        wait_for(lambda: c.stats["books_good"] == 1, 30)
        wait_for(lambda: c.stats["book_deltas_stored"] >= 10_000, 30)
        messages = c.stats["book_messages"]
        wait_for(lambda: c.stats["book_messages"] >= messages + 25, 30)  # half a second on
        assert c.sink.undecided and c.sink.pid is None
        assert set(children(os.getpid())) <= others  # no process was started
    finally:
        c.stop()
        rest.stop()
        sim.stop()


def test_a_fast_feed_with_a_lake_hands_the_sqlite_writing_to_a_child(db, tmp_path, monkeypatch):
    """With lake= the writer's sink is a Fanout of SQLite and the lake: "auto" must still
    see the SQLite sink's rate trigger (here the threshold is below the 2,000/s feed)."""
    assert_a_child_takes_over(db, monkeypatch, lake=tmp_path / "lake", flush_interval_s=0.1)


OUT_OF_FDS = textwrap.dedent("""
    import os, resource, sys
    import rtkit
    from rtkit.runtime import writer
    from rtkit.sim import Simulator
    from tests.conftest import wait_for

    resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    with Simulator("binance", rate=2000, count=6000, seed=13) as sim:
        c = rtkit.collect("binance", ["BTC-USDT", "ETH-USDT"], url=sim.url, db=sys.argv[1],
                          flush_interval_s=0.1)
        wait_for(lambda: c.stats["stored"] > 0, 20)
        held = []
        try:  # every descriptor but one taken: no pipe for a writer process
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            os.close(held.pop())
        writer.AUTO_ROWS_PER_S = 500  # the feed is fast now
        wait_for(lambda: not c.sink.undecided, 20)
        failed_then = c.status == "failed"
        for fd in held:
            os.close(fd)
        wait_for(lambda: c.stats["stored"] == 6000 or c.status == "failed", 20)
        c.stop()
        print(failed_then, c.status, c.stats["stored"], c.sink.pid)
""")


def test_a_writer_process_that_cannot_get_a_pipe_leaves_the_thread_writing(db):
    """Out of file descriptors when the feed turns fast: the child cannot start, which
    is a refused take-over (this process writes on), not a failed writer thread."""
    done = subprocess.run([sys.executable, "-c", OUT_OF_FDS, str(db)], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "stopped", "6000", "None"]


def test_a_short_flush_interval_still_measures_the_rate(db, monkeypatch):
    """flush_interval_s below a window (0.01 s): each wait is shorter than AUTO_WINDOW_S,
    so the rate must be measured across waits and flushes, or a fast feed never starts
    the child (here the threshold is below the 2,000/s feed)."""
    assert_a_child_takes_over(db, monkeypatch, flush_interval_s=0.01)
