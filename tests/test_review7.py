"""Review of the fast writer process start-up, the flushes that wait for a starting
child and the back-to-back flushes (commits 3c8ee89, 6f26d97, d713923)."""

from __future__ import annotations

import pytest

from rtkit.kinds.quotes import QUOTES
from rtkit.kinds.sql import create_table
from rtkit.runtime import writer_child
from rtkit.runtime.writer_process import ProcessSink
from rtkit.sinks import RunEnd
from rtkit.store import TickStore
from tests.conftest import wait_for
from tests.test_writer_process import RUN, T0, Batch, taken_over, tick

pytestmark = pytest.mark.usefixtures("no_thread_leak")


def test_a_writer_process_whose_file_has_the_kinds_table_imports_no_sqlite_utils(
        db, tmp_path, monkeypatch):
    """A quote (or book) feed is what turns fast and starts the child; its file has the
    table from the first run on. The child must not import sqlite-utils (and numpy with
    it, ~125 ms in its first flush) to make a table that is there."""
    with TickStore(db) as store:
        create_table(store.db, QUOTES)
    loaded = tmp_path / "modules"
    monkeypatch.setattr(writer_child, "_CHILD_CODE", writer_child._CHILD_CODE + (
        f"\nimport sys\nopen({str(loaded)!r}, 'w').write(' '.join(sys.modules))"))
    sink = ProcessSink(db)
    sink.probe()
    sink.open(RUN)
    wait_for(lambda: taken_over(sink), 30)
    quote = ("binance", "BTC-USDT", T0, T0 + 5, 100.0, 1.0, 100.5, 2.0, 0)
    try:
        inserted = sink.write(Batch([tick(1)], [], [], {"quotes": [quote]}), [])
        assert inserted == 1 and inserted.kinds == {"quotes": 1}
    finally:
        sink.close(RunEnd(T0, "stopped", {}))
    wait_for(loaded.exists, 10)
    modules = set(loaded.read_text().split())
    assert "rtkit.sinks.sqlite" in modules  # it did write
    assert not {"sqlite_utils", "numpy"} & modules


def test_a_table_a_kind_lacks_is_still_made_on_its_first_rows(db):
    with TickStore(db) as store:
        quote = ("binance", "BTC-USDT", T0, T0 + 5, 100.0, 1.0, 100.5, 2.0, 0)
        store.write([], records={"quotes": [quote]})
        assert store.conn.execute("SELECT count(*) FROM quotes").fetchone() == (1,)
