"""A file rtkit makes has 16 KiB pages; a file made before keeps its own."""

import sqlite3

from rtkit.store import TickStore
from rtkit.store_schema import PAGE_BYTES

T0 = 1_700_000_000_000_000_000
ROWS = [("binance", "BTC-USDT", str(i), T0 + i, T0 + i + 1, 100.0 + i, 0.5, "buy")
        for i in range(3000)]


def _page_size(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()


def test_a_new_file_gets_the_larger_pages_and_keeps_them_across_opens(tmp_path):
    path = tmp_path / "new.sqlite"
    store = TickStore(path)
    assert store.write(ROWS) == len(ROWS)
    store.close()
    assert PAGE_BYTES == 16384 and _page_size(path) == PAGE_BYTES
    again = TickStore(path)
    assert again.write(ROWS) == 0  # the same trades: already stored
    again.close()
    assert _page_size(path) == PAGE_BYTES
    assert len(TickStore(path, readonly=True).ticks()) == len(ROWS)


def test_a_file_made_with_other_pages_keeps_them_and_is_written_as_before(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA page_size=4096")
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    store = TickStore(path, adopt=True)
    assert store.write(ROWS) == len(ROWS)
    store.close()
    assert _page_size(path) == 4096
    assert len(TickStore(path, readonly=True).ticks()) == len(ROWS)
